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
    w, b = simulate_rules([rule], case, arrays, start)
    return w[0], b[0]


def simulate_rules(rules, case, arrays, start=None, along=None):
    """``simulate`` under every rule of ``rules`` at once: one run over a leading rules axis,
    each row following its own rule. Returns ``(w, b)`` of shapes (rules, steps + 1, dim)
    and (rules, steps + 1). A rule that diverges yields inf or nan from then on, silently:
    diverging is a result, as it is for a framework.

    ``along`` = a run's (w, b), (steps + 1, dim) and (steps + 1,): then each step starts from the
    run's own parameters before it, so step t is each rule's prediction of the run's step t from
    its step t − 1, with the optimizer's state built along the run (its gradients taken at the
    run's parameters): rounding and a sign flip of L1 near 0 cannot compound.
    """

    def as_case_dtype(array):
        return np.asarray(array).astype(case.model.dtype).astype(np.float64)

    def column(value):
        return np.array([[value(rule)] for rule in rules], dtype=np.float64)

    x, y = as_case_dtype(arrays.x_train), as_case_dtype(arrays.y_train)
    x = np.hstack([x, np.ones((len(x), 1))])  # p = (w, b): the bias is the weight of a column of ones
    w0, b0 = start if start is not None else (arrays.w0, arrays.b0)
    p = np.tile(np.append(as_case_dtype(w0), as_case_dtype(b0)), (len(rules), 1))
    opt = case.optimizer
    # Per rule (one row each): the loss's gradient scale, and each decay's coefficient on p.
    grad_scale = column(lambda r: {"half_mse": 1.0, "mse": 2.0}[r.loss])
    decays = np.hstack([np.ones((len(rules), x.shape[1] - 1)), column(lambda r: r.decay_bias)])
    coupled, l1 = decays * column(lambda r: r.coupled), decays * column(lambda r: r.l1)
    decoupled = decays * (opt.lr * column(lambda r: r.decoupled_lr) + column(lambda r: r.decoupled))
    eps_after = np.array([[rule.adam_eps == "after_correction"] for rule in rules])
    direction = _DIRECTIONS[opt.name]
    state = {"v": 0.0, "m": 0.0, "s": 0.0, "t": 0}

    order = arrays.batch_order()
    trajectory = np.empty((len(rules), len(order) + 1, p.shape[1]))
    if along is not None:
        run = np.concatenate([np.asarray(along[0], np.float64), np.asarray(along[1], np.float64)[:, None]], axis=1)
        p = np.tile(run[0], (len(rules), 1))
    trajectory[:, 0] = p
    with np.errstate(over="ignore", invalid="ignore"):
        for step, batch in enumerate(order, start=1):
            if along is not None:
                p = np.broadcast_to(run[step - 1], p.shape)
            xb = x[batch]
            error = p @ xb.T - y[batch]
            g = grad_scale * (error @ xb) / len(batch)
            g = g + coupled * p + l1 * np.sign(p)
            u = direction(g, state, opt, eps_after)
            p = p - opt.lr * u - decoupled * p
            trajectory[:, step] = p
    return trajectory[..., :-1], trajectory[..., -1]


def _sgd(g, state, opt, eps_after):
    return g


def _momentum(g, state, opt, eps_after):
    state["v"] = opt.momentum * state["v"] + g
    return state["v"]


def _nesterov(g, state, opt, eps_after):
    state["v"] = opt.momentum * state["v"] + g
    return g + opt.momentum * state["v"]


def _adam(g, state, opt, eps_after):
    state["t"] += 1
    t = state["t"]
    state["m"] = opt.beta1 * state["m"] + (1 - opt.beta1) * g
    state["s"] = opt.beta2 * state["s"] + (1 - opt.beta2) * g * g
    correction1, correction2 = 1 - opt.beta1**t, 1 - opt.beta2**t
    after = (state["m"] / correction1) / (np.sqrt(state["s"] / correction2) + opt.eps)
    before = np.sqrt(correction2) / correction1 * state["m"] / (np.sqrt(state["s"]) + opt.eps)
    return np.where(eps_after, after, before)


_DIRECTIONS = {"sgd": _sgd, "momentum": _momentum, "nesterov": _nesterov, "adam": _adam}


def loss_penalty_rule(case, adam_eps="after_correction"):
    """The rule of a penalty written into the loss, as the spec defines it: (λ/2)‖w‖² for
    ``l2_loss``, λ·‖w‖₁ for ``l1_loss``, nothing for ``none``. The yardstick of the tests
    and of tests/fake_backend.py; the harness itself finds rules with ``harness.explain``."""
    penalty = case.penalty
    if not (penalty.in_loss or penalty.kind == "none") or case.train.loss == "native":
        raise ValueError(f"no spec-defined rule for penalty {penalty.kind!r} with loss {case.train.loss!r}")
    return Rule(
        loss=case.train.loss,
        coupled=penalty.strength if penalty.kind == "l2_loss" else 0.0,
        l1=penalty.strength if penalty.kind == "l1_loss" else 0.0,
        decay_bias=penalty.decays_bias,
        adam_eps=adam_eps,
    )
