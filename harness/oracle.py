"""NumPy float64 reference of every semantic rule a framework's weight decay may follow.

Parameters p = (w, b), minibatch B of n examples, error e = x·w + b − y.

Data gradient, by loss convention:
    half_mse  L = (1/n) Σ ½e²   ->  g = (1/n) Σ e·(x, 1)
    mse       L = (1/n) Σ e²    ->  g = (2/n) Σ e·(x, 1)
Penalty / decay (on w; on b too when ``decay_bias``), given a coefficient c:
    coupled       g += c·w            (= (c/2)‖w‖² in the loss, or decay added to the
                                       gradient before momentum / Adam's moments)
    l1            g += c·sign(w)      (= c·‖w‖₁ in the loss)
    decoupled_lr  w -= lr·c·w_old     (applied beside the optimizer step, multiplied by lr)
    decoupled     w -= c·w_old        (applied beside the optimizer step, not multiplied by lr)
Optimizer direction u from g, then p -= lr·u:
    sgd       u = g
    momentum  v = μv + g;  u = v
    nesterov  v = μv + g;  u = g + μv
    adam      m = β₁m + (1−β₁)g;  s = β₂s + (1−β₂)g²;  at step t
              eps "after_correction":  u = m̂ / (√ŝ + ε),  m̂ = m/(1−β₁ᵗ), ŝ = s/(1−β₂ᵗ)
              eps "before_correction": u = √(1−β₂ᵗ)/(1−β₁ᵗ) · m / (√s + ε)
"""

from dataclasses import dataclass

import numpy as np

ADAM_EPS = ("after_correction", "before_correction")


@dataclass(frozen=True)
class Rule:
    """One semantics for the penalty: where the nominal λ enters the update, and how scaled."""

    loss: str = "half_mse"
    coupled: float = 0.0
    l1: float = 0.0
    decoupled_lr: float = 0.0
    decoupled: float = 0.0
    decay_bias: bool = False
    adam_eps: str = "after_correction"


def simulate(rule, case, arrays, start=None):
    """Train ``case``'s optimizer on ``arrays`` under ``rule``, in float64.

    The data and initial weights are first rounded to the case's dtype, so a float32
    backend differs from the oracle only by its arithmetic. ``start`` = (w0, b0)
    replaces the arrays' initial weights (for framework-native initialization).
    Returns ``(w, b)`` of shapes (steps + 1, dim) and (steps + 1,): before and after every step.
    """
    as_case_dtype = lambda a: np.asarray(a).astype(case.model.dtype).astype(np.float64)  # noqa: E731
    x, y = as_case_dtype(arrays.x_train), as_case_dtype(arrays.y_train)
    w0, b0 = start if start is not None else (arrays.w0, arrays.b0)
    p = np.append(as_case_dtype(w0), as_case_dtype(b0))
    decays = np.append(np.ones(x.shape[1]), float(rule.decay_bias))
    opt = case.optimizer
    grad_scale = {"half_mse": 1.0, "mse": 2.0}[rule.loss]
    direction = _DIRECTIONS[opt.name]
    state = {"v": np.zeros_like(p), "m": np.zeros_like(p), "s": np.zeros_like(p), "t": 0}

    order = arrays.batch_order()
    trajectory = np.empty((len(order) + 1, p.size))
    trajectory[0] = p
    for step, batch in enumerate(order, start=1):
        xb = np.hstack([x[batch], np.ones((len(batch), 1))])
        error = xb @ p - y[batch]
        g = grad_scale * xb.T @ error / len(batch)
        g = g + decays * (rule.coupled * p + rule.l1 * np.sign(p))
        u = direction(g, state, opt, rule)
        p = p - opt.lr * u - decays * (opt.lr * rule.decoupled_lr + rule.decoupled) * p
        trajectory[step] = p
    return trajectory[:, :-1], trajectory[:, -1]


def _sgd(g, state, opt, rule):
    return g


def _momentum(g, state, opt, rule):
    state["v"] = opt.momentum * state["v"] + g
    return state["v"]


def _nesterov(g, state, opt, rule):
    state["v"] = opt.momentum * state["v"] + g
    return g + opt.momentum * state["v"]


def _adam(g, state, opt, rule):
    state["t"] += 1
    t = state["t"]
    state["m"] = opt.beta1 * state["m"] + (1 - opt.beta1) * g
    state["s"] = opt.beta2 * state["s"] + (1 - opt.beta2) * g * g
    correction1, correction2 = 1 - opt.beta1**t, 1 - opt.beta2**t
    if rule.adam_eps == "after_correction":
        return (state["m"] / correction1) / (np.sqrt(state["s"] / correction2) + opt.eps)
    return np.sqrt(correction2) / correction1 * state["m"] / (np.sqrt(state["s"]) + opt.eps)


_DIRECTIONS = {"sgd": _sgd, "momentum": _momentum, "nesterov": _nesterov, "adam": _adam}


def loss_penalty_rule(case, adam_eps="after_correction"):
    """The rule of a penalty written into the loss, as the spec defines it: (λ/2)‖w‖² for
    ``l2_loss``, λ·‖w‖₁ for ``l1_loss``, nothing for ``none``."""
    kind, strength = case.penalty.kind, case.penalty.strength
    if kind not in ("none", "l2_loss", "l1_loss") or case.train.loss == "native":
        raise ValueError(f"no spec-defined rule for penalty {kind!r} with loss {case.train.loss!r}")
    return Rule(
        loss=case.train.loss,
        coupled=strength if kind == "l2_loss" else 0.0,
        l1=strength if kind == "l1_loss" else 0.0,
        decay_bias=case.penalty.decay_bias,
        adam_eps=adam_eps,
    )
