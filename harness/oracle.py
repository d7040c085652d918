"""NumPy float64 reference of every semantic rule a framework's weight decay may follow.

Parameters p = (w, b) of the model (``harness.network``), minibatch B of n examples, error
e = ŷ − y; each tensor (the linear model's w and b, an MLP's every Wₗ and bₗ) has its own norm
where an optimizer reads one (LAMB's trust ratio, Adafactor's scale).

Data gradient, by loss convention (∇ of ``harness.network.gradient``):
    half_mse  L = (1/n) Σ ½e²   ->  g = ∇L, for the linear model (1/n) Σ e·(x, 1)
    mse       L = (1/n) Σ e²    ->  g = 2∇(half_mse)
Penalty / decay, on the tensors whose role the rule decays (``Rule.decays``: every weight, the
biases with ``decay_bias``, less the ``spared`` roles), given a coefficient c:
    coupled          g += c·p            (= (c/2)‖w‖² in the loss: decay added to the gradient
                                          before momentum, Adam's moments or any other state)
    l1               g += c·sign(p)      (= c·‖w‖₁ in the loss)
    decoupled_lr     p −= lrₜ·c·p        (beside the optimizer's step, multiplied by the step's lr)
    decoupled_base   p −= lr·c·p         (multiplied by the base lr, whatever the schedule)
    decoupled_multiplier  p −= ηₜ·c·p    (multiplied by the schedule's multiplier: Loshchilov & Hutter)
    decoupled        p −= c·p            (beside the optimizer's step, lr not applied)
    decoupled_ratio  r += c·p            (added to LAMB's update inside its trust ratio, then × lrₜ·ratio)
    lr_decay         lrₜ = lr·ηₜ / (1 + c·(t − 1))   (λ enters the learning rate, not p)
Learning rate at step t = 1, 2, …: lrₜ = lr·ηₜ with ηₜ = the schedule's multiplier at count
t − 1 + ``schedule_offset`` (``multipliers``): 0 when the first step reads η₀, 1 when it reads η₁.
The decoupled decays are applied first, to the parameters the step then updates; a step that
reads p (LAMB's trust ratio, Adafactor's scale) reads the decayed p when ``scale_after_decay``.

Each optimizer's step is stated in ``harness.steps``.
"""

import dataclasses
from dataclasses import dataclass

import numpy as np

from harness import network
from harness.steps import Step


@dataclass(frozen=True)
class Rule:
    """One semantics for the penalty: where the nominal λ enters the update and how scaled
    (the coefficients), and the optimizer's own conventions where frameworks' versions differ."""

    loss: str = "half_mse"
    coupled: float = 0.0
    l1: float = 0.0
    decoupled_lr: float = 0.0
    decoupled_base: float = 0.0
    decoupled_multiplier: float = 0.0
    decoupled: float = 0.0
    decoupled_ratio: float = 0.0
    lr_decay: float = 0.0
    decay_bias: bool = False
    spared: tuple = ()  # roles (harness.case.ROLES) not decayed besides the biases decay_bias spares
    eps: str = "outside"
    momentum_decay: float | None = 0.004  # NAdam's ψ, or None for NAdam without a momentum schedule
    scale_after_decay: bool = False
    relative_step: bool = True
    lr_ignored: bool = False
    momentum_scaled: bool = False
    schedule_offset: int = 0

    def __post_init__(self):
        object.__setattr__(self, "spared", tuple(self.spared))  # a stored rule's list, hashable

    def decays(self, role):
        """Whether the decay applies to the parameters of ``role``: weights unless spared, biases
        with ``decay_bias`` unless spared."""
        return (role.endswith("_weight") or self.decay_bias) and role not in self.spared


def simulate(rule, case, arrays, start=None):
    """Train ``case``'s optimizer on ``arrays`` under ``rule``, in float64.

    The data and initial weights are first rounded to the case's dtype, so a float32
    backend differs from the oracle only by its arithmetic. ``start`` = (w0, b0)
    replaces the arrays' initial weights (for framework-native initialization).
    Returns ``(w, b)`` of shapes (steps + 1, weights) and (steps + 1,) for the linear model,
    (steps + 1, biases) for an MLP: before and after every step (``harness.network``).
    """
    w, b = simulate_rules([rule], case, arrays, start)
    return w[0], b[0]


def simulate_rules(rules, case, arrays, start=None, along=None):
    """``simulate`` under every rule of ``rules`` at once: one run over a leading rules axis,
    each row following its own rule. Returns ``(w, b)`` with a leading rules axis. A rule that
    diverges yields inf or nan from then on, silently: diverging is a result, as it is for a framework.

    ``along`` = a run's (w, b), as ``simulate`` returns them: then each step starts from the
    run's own parameters before it, so step t is each rule's prediction of the run's step t from
    its step t − 1, with the optimizer's state built along the run (its gradients taken at the
    run's parameters): rounding and a sign flip of L1 near 0 cannot compound.
    """

    def as_case_dtype(array):
        return np.asarray(array).astype(case.model.dtype).astype(np.float64)

    x, y = as_case_dtype(arrays.x_train), as_case_dtype(arrays.y_train)
    w0, b0 = start if start is not None else (arrays.w0, arrays.b0)
    p = np.tile(network.joined(as_case_dtype(w0), as_case_dtype(b0)), (len(rules), 1))
    step = Step(rules, case, network.tensors(case), multipliers(case.schedule, case.steps))
    order = arrays.batch_order()
    trajectory = np.empty((len(rules), len(order) + 1, p.shape[1]))
    if along is not None:
        run = network.joined(*along)
        p = np.tile(run[0], (len(rules), 1))
    trajectory[:, 0] = p
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for t, batch in enumerate(order, start=1):
            if along is not None:  # every rule steps from the run's parameters: one gradient serves all
                g = network.gradient(case, run[t - 1], x[batch], y[batch])
                p = np.broadcast_to(run[t - 1], p.shape)
            else:
                g = network.gradient(case, p, x[batch], y[batch])
            p = step(p, step.grad_scale * g, t)
            trajectory[:, t] = p
    return network.split(case, trajectory)


def multipliers(schedule, steps):
    """The schedule's ηₖ for k = 0, …, ``steps`` (``harness.case.Schedule`` states each kind), float64."""
    k = np.arange(steps + 1, dtype=np.float64)

    def cosine(k, span):
        return schedule.floor + (1 - schedule.floor) * 0.5 * (1 + np.cos(np.pi * np.minimum(k, span) / span))

    if schedule.kind == "step":
        return schedule.factor ** np.floor(k / schedule.interval)
    if schedule.kind == "cosine":
        return cosine(k, steps)
    if schedule.kind == "warmup_cosine":
        warmup = schedule.warmup
        return np.where(k < warmup, k / warmup, cosine(k - warmup, steps - warmup))
    return np.ones_like(k)


def loss_penalty_rule(case, eps="outside"):
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
        spared=penalty.spare,
        eps=eps,
        momentum_decay=case.optimizer.momentum_decay,
    )


DECAYS = ("coupled", "l1", "decoupled_lr", "decoupled_base", "decoupled_multiplier", "decoupled", "decoupled_ratio")


def decay_per_step(rule, case, arrays):
    """The share of w the rule's decay takes at each step t = 1 … T, along the rule's own run:
    ⟨w̃ₜ − wₜ, wₜ₋₁⟩ / ‖wₜ₋₁‖², where wₜ is the rule's step from wₜ₋₁ and w̃ₜ the step of the same
    rule without its decay from wₜ₋₁ (its optimizer state built along the run from its own
    gradients). For a decay beside the step this is its coefficient, e.g. lrₜ·kλ for × lr; a
    coupled decay's share also carries what it did to the optimizer's state."""
    w, b = simulate(rule, case, arrays)
    undecayed = dataclasses.replace(rule, **dict.fromkeys(DECAYS, 0.0), lr_decay=0.0)
    predicted, _ = simulate_rules([rule, undecayed], case, arrays, along=(w, b))
    before = w[:-1]
    return np.sum((predicted[1, 1:] - predicted[0, 1:]) * before, axis=1) / np.sum(before * before, axis=1)
