"""Which oracle rule reproduces a run: the semantics of a nominal λ, found from trajectories.

The catalog crosses every place the nominal λ can enter the update (``harness.oracle``; only
the L1 rule for ``l1_loss``) with multipliers k ∈ {½, 1, 2}, bias decayed or not, the two
loss conventions (when the case's loss is the framework's ``native`` one) and the two Adam ε
conventions. A run is explained by a rule only if the rule's trajectory stays within the
run's tolerance at every step; otherwise it is unexplained, with the closest rule and its
gap. Never forced. When several rules match (at λ = 0 all do; without momentum, coupled and
decoupled × lr are the same update), the first in catalog order is the explanation and the
others are listed as equivalent: no decay, then coupled, decoupled × lr, decoupled, each
with k = ½, 1, 2; bias not decayed before decayed; Adam ε after the bias correction before
ε before it.
"""

import dataclasses
import itertools
from dataclasses import dataclass

import numpy as np

from harness import diff, oracle

MULTIPLIERS = (0.5, 1.0, 2.0)
# Where λ enters the update: the oracle.Rule field that takes k·λ, and its display name.
PLACEMENTS = {
    "coupled": "coupled",  # gradient += k·λ·w, before momentum / Adam's moments
    "decoupled_lr": "decoupled × lr",  # w -= lr·k·λ·w beside the optimizer step
    "decoupled": "decoupled",  # w -= k·λ·w beside the optimizer step, lr not applied
    "l1": "l1",  # gradient += k·λ·sign(w)
}
NONE = "none"  # the placement of a rule in which λ has no effect


@dataclass(frozen=True)
class Form:
    """Where λ enters the update (a key of PLACEMENTS, or NONE) and its multiplier k: the rule uses k·λ."""

    placement: str
    multiplier: float

    @property
    def name(self):
        return "no decay" if self.placement == NONE else f"{PLACEMENTS[self.placement]} ×{self.multiplier:g}"


@dataclass(frozen=True)
class Explanation:
    """The rule that reproduces a run (or, unmatched, the closest one) and where λ enters in it."""

    form: Form
    rule: oracle.Rule
    gap: float  # largest relative gap between a step of the run and the rule's step from the run's previous one
    matched: bool  # gap within the run's diff.STEP_TOLERANCE
    equivalents: tuple = ()  # Forms of the other matching rules
    drift: float | None = None  # largest per-step relative gap of the rule run on its own from the run's start

    @property
    def forms(self):
        """Every (placement, k) that reproduces the run: its own first, then the equivalent ones."""
        return (self.form, *self.equivalents)

    @property
    def summary(self):
        """The rule in words, or ``unexplained (closest: <rule>)``: what a golden fingerprint pins."""
        name = self.form.name + (f" (≡ {', '.join(f.name for f in self.equivalents)})" if self.equivalents else "")
        bias = "bias decayed" if self.rule.decay_bias else "bias not decayed"
        text = f"{name}, {bias}, loss {self.rule.loss}"
        if self.rule.adam_eps != oracle.Rule().adam_eps:
            text += f", Adam ε {self.rule.adam_eps.replace('_', ' ')}"
        return text if self.matched else f"unexplained (closest: {text})"

    def __str__(self):
        return self.summary if self.matched else f"{self.summary[:-1]}, gap {self.gap:.2g})"

    def to_json(self):
        return {
            "form": dataclasses.asdict(self.form),
            "rule": dataclasses.asdict(self.rule),
            "gap": self.gap,
            "matched": self.matched,
            "equivalents": [dataclasses.asdict(form) for form in self.equivalents],
            "drift": self.drift,
        }

    @classmethod
    def from_json(cls, found):
        return cls(
            form=Form(**found["form"]),
            rule=oracle.Rule(**found["rule"]),
            gap=float(found["gap"]),
            matched=bool(found["matched"]),
            equivalents=tuple(Form(**form) for form in found["equivalents"]),
            drift=found.get("drift"),
        )


def from_legacy(old, strength):
    """The ``to_json`` form of an explanation stored before it was structured (result schema
    2, fingerprint without a schema_version): placements by display name ("decoupled × lr"),
    equivalents as text ("decoupled × lr ×1"), the rule's fields flat, and the gap of the rule
    run on its own (which then decided the match, and is its drift); ``strength`` is the λ of its
    case, which the rule's coefficient is k times."""
    placement = {name: key for key, name in PLACEMENTS.items()} | {NONE: NONE}

    def form(name, multiplier):
        return {"placement": placement[name], "multiplier": float(multiplier)}

    own = form(old["placement"], old["multiplier"])
    coefficient = {own["placement"]: own["multiplier"] * strength} if own["placement"] != NONE else {}
    equivalents = [form(*text.rsplit(" ×", 1)) for text in old["equivalents"]]
    rule = oracle.Rule(loss=old["loss"], decay_bias=old["decay_bias"], adam_eps=old["adam_eps"], **coefficient)
    return {
        "form": own,
        "rule": dataclasses.asdict(rule),
        "gap": old["gap"],
        "matched": old["matched"],
        "equivalents": equivalents,
        "drift": old["gap"],
    }


def candidates(case):
    """Every (Form, Rule) the catalog tries for this case, in catalog order."""
    strength = case.penalty.strength
    placements = ("l1",) if case.penalty.kind == "l1_loss" else ("coupled", "decoupled_lr", "decoupled")
    losses = ("half_mse", "mse") if case.train.loss == "native" else (case.train.loss,)
    eps_conventions = oracle.ADAM_EPS if case.optimizer.name == "adam" else oracle.ADAM_EPS[:1]
    forms = [(Form(NONE, 0.0), {})] + [
        (Form(placement, k), {placement: k * strength}) for placement in placements for k in MULTIPLIERS
    ]
    for (form, decay), bias, loss, eps in itertools.product(forms, (False, True), losses, eps_conventions):
        if form.placement == NONE and bias:
            continue
        yield form, oracle.Rule(loss=loss, decay_bias=bias, adam_eps=eps, **decay)


def explain(case, arrays, trajectory):
    """The first catalog rule that predicts every step of ``trajectory`` from the run's own
    previous parameters within the run's step tolerance, with the other matching rules as
    equivalents; else the closest rule, marked unmatched. Either way with its drift: the gap of
    the rule run on its own from the run's initial weights."""
    run = (trajectory.w, trajectory.b)
    tolerance = diff.tolerance(case.model.dtype, trajectory.hyperparameter_dtype, diff.STEP_TOLERANCE)
    catalog = list(candidates(case))
    rules = list(dict.fromkeys(rule for _, rule in catalog))  # at λ = 0 most rules are one
    with np.errstate(all="ignore"):
        gaps = diff.relative_gaps(run, oracle.simulate_rules(rules, case, arrays, along=run))
    worst = dict(zip(rules, np.where(np.isfinite(gaps).all(axis=-1), gaps.max(axis=-1), np.inf).tolist()))
    tried = [Explanation(form, rule, worst[rule], matched=worst[rule] <= tolerance) for form, rule in catalog]
    matches = [e for e in tried if e.matched]
    if not matches:
        found = min(tried, key=lambda e: e.gap)
    elif matches[0].form.placement == NONE:
        found = matches[0]
    else:
        others = dict.fromkeys(e.form for e in matches if e.form != matches[0].form and e.form.placement != NONE)
        found = dataclasses.replace(matches[0], equivalents=tuple(others))
    with np.errstate(all="ignore"):
        alone = diff.relative_gaps(run, oracle.simulate(found.rule, case, arrays, start=(run[0][0], run[1][0])))
    return dataclasses.replace(found, drift=float(alone.max()) if np.isfinite(alone).all() else float("inf"))
