"""What an optimizer does to each parameter, measured from a few of its steps on the user's own
objects (``backends.contract.Stepping``), never from its name. Four runs of ``STEPS`` (2) steps:

    zero        w₀ = w,   gradient 0     the decay alone: the factor per step fₜ = ⟨wₜ, wₜ₋₁⟩ / ⟨wₜ₋₁, wₜ₋₁⟩
    zero ×2     w₀ = 2w,  gradient 0     a decay proportional to w shrinks 2w by the same factor
    gradient    w₀ = w,   gradient g     the step the optimizer takes for a gradient: its lr
    gradient ×2 w₀ = w,   gradient 2g    a step ∝ g (SGD-like) or ∝ sign(g) (Adam-like)

with w and g seeded N(0, 1) tensors of each parameter's shape. Where λ enters (explain.PLACEMENTS):

    decoupled_lr   sₜ = 1 − fₜ the same at both scales, constant over steps (/ lrₜ under a schedule),
                   sₜ = lrₜ·k·λ for the nominal λ and lr
    decoupled      the same, sₜ = k·λ: lr not applied
    coupled        a shrink that depends on the scale (λ·w through an adaptive step: about lr·sign(w)
                   whatever λ) or grows over the steps (λ·w through momentum)
    coupled_or_decoupled_lr   proportional and constant, the optimizer linear in g without
                   momentum (plain SGD): the two are the same update
    decoupled_untold          proportional and constant, the nominal λ unread: × lr or not untold
    none           the zero-gradient run leaves w as it was
    nonfinite      a step made w NaN or infinite (an optimizer that cannot step this dtype)
    frozen         no run changes w: the optimizer never updates it
"""

import math
from dataclasses import dataclass

import numpy as np

from backends.contract import Stepping

STEPS = 2  # the second zero-gradient step shows momentum; the second gradient step, its absence
RUNS = ((1.0, 0.0), (2.0, 0.0), (1.0, 1.0), (1.0, 2.0))  # (weight scale, gradient scale): zero, zero ×2, g, 2g
ZERO, ZERO_TWICE, GRADIENT, GRADIENT_TWICE = range(len(RUNS))
SAMPLES = 256  # values recorded of each tensor: enough to average float32 rounding of a 1e-7 decay to < 1 %
SEED = 20261207
# A ratio of two measured shrinks that should be 1 (or ½): float32 rounding of a decay of lr·λ ≥ 1e-7 over
# SAMPLES values stays under 2 %; a coupled decay through Adam halves at twice the scale, through momentum
# 0.9 nearly doubles on the second step: 15 % parts them with room on both sides.
RATIO_TOLERANCE = 0.15
# The unit roundoff of each dtype: a decay 1 − x with x below it rounds to 1 (for bfloat16, 2⁻⁸ near 1).
ROUNDOFF = {"bfloat16": 2.0**-8, "float16": 2.0**-11, "float32": 2.0**-24, "float64": 2.0**-53}


def stepping():
    """The runs every auditor makes: seeded weights and gradients, SAMPLES evenly spaced values."""
    return Stepping(RUNS, STEPS, weights, gradient, samples)


def weights(i, shape):
    """Parameter i's weights before scaling: N(0, 1), float32, seeded by i."""
    return np.random.default_rng((SEED, i, 0)).standard_normal(shape, dtype=np.float32)


def gradient(i, shape):
    """Parameter i's gradient before scaling: N(0, 1), float32, seeded by i."""
    return np.random.default_rng((SEED, i, 1)).standard_normal(shape, dtype=np.float32)


def samples(i, size):
    """The flat indices of parameter i recorded: min(size, SAMPLES) of them, evenly spaced."""
    return np.unique(np.linspace(0, size - 1, min(size, SAMPLES)).round().astype(np.int64))


@dataclass(frozen=True)
class Measured:
    """One parameter's measurement. ``shrinks``: sₜ = 1 − fₜ of each step of the zero-gradient run
    (negative: the parameter grows); ``lr``: the first step's lr, measured from the gradient runs
    (NaN where they cannot tell it); ``response``: ``linear`` (a step ∝ g), ``normalized`` (∝ sign g)
    or ``unknown``; ``placement``: where λ enters (the module docstring); ``k``: the measured shrink
    over lr·λ (decoupled_lr, coupled_or_decoupled_lr) or λ (decoupled), None where it is not a
    multiple of them; ``moved``: whether the zero-gradient and the gradient runs changed the values."""

    shrinks: tuple
    lr: float
    response: str
    placement: str
    k: float | None
    moved: tuple

    @property
    def factor(self):
        """The first step's factor per step, 1 − s₁."""
        return 1.0 - self.shrinks[0]


def measure(values, lrs, nominal, gradient_samples):
    """The Measured of one parameter from its sampled ``values`` (runs, steps + 1, samples), the lr
    its group states for each step (``lrs``, NaN where unread), its ``nominal`` hyperparameters and the
    sampled values of its gradient before scaling."""
    v = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        return Measured((math.nan,) * (v.shape[1] - 1), math.nan, "unknown", "nonfinite", None, (True, True))
    moved = tuple(bool(np.any(v[run] != v[run, 0])) for run in (ZERO, GRADIENT))
    shrinks = tuple(_shrink(v[ZERO, t], v[ZERO, t + 1]) for t in range(v.shape[1] - 1))
    response, lr = _response(v, gradient_samples)
    if not any(moved):
        return Measured(shrinks, lr, response, "frozen", None, moved)
    if not moved[0]:
        return Measured(shrinks, lr, response, "none", None, moved)
    placement, k = _placement(v, shrinks, lrs, nominal, response, lr)
    return Measured(shrinks, lr, response, placement, k, moved)


def _shrink(before, after):
    return float(1.0 - np.dot(after, before) / np.dot(before, before))


def _near(ratio, target, tolerance=RATIO_TOLERANCE):
    return math.isfinite(ratio) and abs(ratio / target - 1.0) < tolerance


def _response(v, g):
    """How the first step answers a gradient: ``linear`` with its lr, ``normalized`` with its lr, or unknown."""
    step = [v[run, 1] - v[run, 0] - (v[ZERO, 1] - v[ZERO, 0]) for run in (GRADIENT, GRADIENT_TWICE)]
    gg = float(np.dot(g, g))
    if gg == 0:
        return "unknown", math.nan
    linear = [-float(np.dot(s, scale * g)) / (scale * scale * gg) for s, scale in zip(step, (1.0, 2.0), strict=True)]
    if linear[0] > 0 and _near(linear[1], linear[0]):
        return "linear", linear[0]
    signed = [-float(np.mean((v[run, 1] - v[run, 0]) * np.sign(g))) for run in (GRADIENT, GRADIENT_TWICE)]
    if signed[0] > 0 and _near(signed[1], signed[0]):
        return "normalized", signed[0]
    return "unknown", math.nan


def _placement(v, shrinks, lrs, nominal, response, lr):
    """Where λ enters a parameter the zero-gradient run moves, and k (module docstring)."""
    twice = _shrink(v[ZERO_TWICE, 0], v[ZERO_TWICE, 1])
    if not _near(twice, shrinks[0]):
        return "coupled", None  # λ·w through an adaptive step: not proportional to w
    scheduled = np.asarray(lrs, dtype=np.float64)
    relative = (
        scheduled / scheduled[0] if np.all(np.isfinite(scheduled)) and scheduled[0] > 0 else np.ones(len(shrinks))
    )
    if not all(_near(s / r, shrinks[0]) for s, r in zip(shrinks[1:], relative[1:], strict=False)):
        return "coupled", None  # λ·w through momentum: the shrink grows over the steps
    decay, stated_lr = nominal.get("weight_decay"), nominal.get("lr")
    lr_used = stated_lr if stated_lr is not None and stated_lr > 0 else lr
    if response == "linear" and _no_momentum(v, relative[1]):
        return "coupled_or_decoupled_lr", _multiple(shrinks[0], lr_used * decay if decay else math.nan)
    if not decay or not math.isfinite(lr_used) or shrinks[0] == 0:
        return "decoupled_untold", None  # no λ, or no lr, to tell × lr from without
    by_lr, alone = shrinks[0] / (lr_used * decay), shrinks[0] / decay
    if abs(math.log(abs(by_lr))) <= abs(math.log(abs(alone))):  # the nearer to k = 1
        return "decoupled_lr", _multiple(shrinks[0], lr_used * decay)
    return "decoupled", _multiple(shrinks[0], decay)


def _no_momentum(v, lr_ratio):
    """The gradient run's second step, less the decay's, equals its first × lr₂/lr₁: no momentum carried."""
    first = v[GRADIENT, 1] - v[GRADIENT, 0] - (v[ZERO, 1] - v[ZERO, 0])
    second = v[GRADIENT, 2] - v[GRADIENT, 1] - (v[ZERO, 2] - v[ZERO, 1])
    scale = float(np.dot(first, first))
    return scale > 0 and _near(float(np.dot(second, first)) / scale, lr_ratio)


def _multiple(shrink, unit):
    """shrink / unit, where unit is a finite non-zero lr·λ or λ, else None."""
    return shrink / unit if math.isfinite(unit) and unit != 0 else None
