"""Which oracle rule reproduces a run: the semantics of a nominal λ, found from trajectories.

The catalog crosses every way the nominal λ can enter the update (``harness.oracle``;
only the L1 rule for ``l1_loss``) with multipliers k ∈ {½, 1, 2}, bias decayed or not,
the two loss conventions (when the case's loss is the framework's ``native`` one) and
the two Adam ε conventions. A run is explained by a rule only if the rule's trajectory
stays within the run's tolerance at every step; otherwise it is unexplained, with the
closest rule and its gap. Never forced. When several rules match (at λ = 0 all do;
without momentum, coupled and decoupled × lr are the same update), the first in catalog
order is the explanation and the others are listed as equivalent: no decay, then
coupled, decoupled × lr, decoupled, each with k = ½, 1, 2; bias not decayed before
decayed; Adam ε after the bias correction before ε before it.
"""

import itertools
from dataclasses import dataclass

import numpy as np

from harness import diff, oracle

MULTIPLIERS = (0.5, 1.0, 2.0)
# Where λ enters the update, by the name the fingerprint uses; each maps k·λ to a Rule field.
PLACEMENTS = {
    "coupled": "coupled",  # gradient += k·λ·w, before momentum / Adam's moments
    "decoupled × lr": "decoupled_lr",  # w -= lr·k·λ·w beside the optimizer step
    "decoupled": "decoupled",  # w -= k·λ·w beside the optimizer step, lr not applied
    "l1": "l1",  # gradient += k·λ·sign(w)
}


@dataclass(frozen=True)
class Explanation:
    placement: str  # a key of PLACEMENTS, or "none" (λ has no effect)
    multiplier: float  # k: the rule uses k·λ
    rule: oracle.Rule
    gap: float  # largest per-step relative gap between the run and the rule
    matched: bool  # gap within diff.tolerance of the run
    equivalents: tuple = ()  # "placement ×k" of the other matching rules

    @property
    def name(self):
        return "no decay" if self.placement == "none" else f"{self.placement} ×{self.multiplier:g}"

    def __str__(self):
        name = self.name + (f" (≡ {', '.join(self.equivalents)})" if self.equivalents else "")
        bias = "bias decayed" if self.rule.decay_bias else "bias not decayed"
        text = f"{name}, {bias}, loss {self.rule.loss}"
        if self.rule.adam_eps != oracle.Rule().adam_eps:
            text += f", Adam ε {self.rule.adam_eps.replace('_', ' ')}"
        return text if self.matched else f"unexplained (closest: {text}, gap {self.gap:.2g})"

    def to_dict(self):
        return {
            "text": str(self), "placement": self.placement, "multiplier": self.multiplier,
            "decay_bias": self.rule.decay_bias, "loss": self.rule.loss, "adam_eps": self.rule.adam_eps,
            "gap": self.gap, "matched": self.matched, "equivalents": list(self.equivalents),
        }


def candidates(case):
    """Every (placement, k, Rule) the catalog tries for this case, in catalog order."""
    strength = case.penalty.strength
    names = ("l1",) if case.penalty.kind == "l1_loss" else ("coupled", "decoupled × lr", "decoupled")
    losses = ("half_mse", "mse") if case.train.loss == "native" else (case.train.loss,)
    eps_conventions = oracle.ADAM_EPS if case.optimizer.name == "adam" else oracle.ADAM_EPS[:1]
    placements = [("none", 0.0, {})] + [
        (name, k, {PLACEMENTS[name]: k * strength}) for name in names for k in MULTIPLIERS
    ]
    for (name, k, decay), bias, loss, eps in itertools.product(placements, (False, True), losses, eps_conventions):
        if name == "none" and bias:
            continue
        yield name, k, oracle.Rule(loss=loss, decay_bias=bias, adam_eps=eps, **decay)


def explain(case, arrays, trajectory):
    """The first catalog rule that reproduces ``trajectory`` at every step within tolerance,
    started from the run's own initial weights, with the other matching rules as
    equivalents; else the closest rule, marked unmatched."""
    start = (trajectory.w[0], trajectory.b[0])
    run = (trajectory.w, trajectory.b)
    tolerance = diff.tolerance(case.model.dtype, trajectory.hyperparameter_dtype)
    catalog = list(candidates(case))
    rules = list(dict.fromkeys(rule for _, _, rule in catalog))  # at λ = 0 most rules are one
    with np.errstate(all="ignore"):
        gaps = diff.relative_gaps(run, oracle.simulate_rules(rules, case, arrays, start))
    worst = dict(zip(rules, np.where(np.isfinite(gaps).all(axis=-1), gaps.max(axis=-1), np.inf).tolist()))
    tried = [Explanation(placement, k, rule, worst[rule], matched=worst[rule] <= tolerance) for placement, k, rule in catalog]
    matches = [e for e in tried if e.matched]
    if not matches:
        return min(tried, key=lambda e: e.gap)
    first = matches[0]
    if first.placement == "none":
        return first
    others = dict.fromkeys(e.name for e in matches if e.name != first.name and e.placement != "none")
    return Explanation(first.placement, first.multiplier, first.rule, first.gap, True, tuple(others))
