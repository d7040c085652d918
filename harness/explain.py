"""Which oracle rule reproduces a run: the semantics of a nominal λ, found from trajectories.

The catalog crosses every place the nominal λ can enter the update (``harness.oracle``; only
the L1 rule for ``l1_loss``; the inverse-time lr decay too for ``lr_decay``; LAMB's trust ratio
for ``lamb``) with multipliers k ∈ {½, 1, 2}, bias decayed or not, the two loss conventions
(when the case's loss is the framework's ``native`` one) and the conventions in which
frameworks' versions of the case's optimizer differ (``conventions``). A run is explained by a
rule only if the rule predicts every step of the run from the run's own previous parameters
within the run's step tolerance; otherwise it is unexplained, with the closest rule and its
gap. Never forced. When several rules match (at λ = 0 all do; without momentum, coupled and
decoupled × lr are the same update), the first in catalog order is the explanation and the
others are listed as equivalent: no decay, then coupled, decoupled × lr, decoupled (then the
trust-ratio and lr-decay placements), each with k = ½, 1, 2; bias not decayed before decayed;
each convention's values in the order ``conventions`` gives.
"""

import dataclasses
import itertools
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from harness import diff, oracle

MULTIPLIERS = (0.5, 1.0, 2.0)
# The float64 values of the trajectories of the rules simulated at once (2 GiB): a wide MLP's catalog is
# simulated a few rules at a time, where a small model's is simulated whole, in one pass.
SIMULATED_VALUES = 2**28
# Tried only where no rule of the catalog explains a framework API's run: a "decay" that adds k·λ·w to
# the parameters instead of taking it (decoupled ×−1: w ← w·(1 + λ) − step, an optax
# add_decayed_weights chained after the lr scaling, whose output the update adds).
GROWTH = ("decoupled", -1.0)
# Where λ enters the update: the oracle.Rule field that takes k·λ, and its display name.
PLACEMENTS = {
    "coupled": "coupled",  # gradient += k·λ·w, before momentum / Adam's moments
    "decoupled_lr": "decoupled × lr",  # w -= lrₜ·k·λ·w beside the optimizer step (the scheduled lr)
    "decoupled_base": "decoupled × base lr",  # w -= lr·k·λ·w: the base lr, whatever the schedule
    "decoupled_multiplier": "decoupled × η",  # w -= ηₜ·k·λ·w: the schedule's multiplier (Loshchilov & Hutter)
    "decoupled": "decoupled",  # w -= k·λ·w beside the optimizer step, lr not applied
    "decoupled_ratio": "decoupled in the trust ratio",  # LAMB: update += k·λ·w before its trust ratio
    "lr_decay": "lr decay",  # lr_t = lr / (1 + k·λ·(t − 1)): λ decays the learning rate, not w
    "l1": "l1",  # gradient += k·λ·sign(w)
}
# How each convention value reads in an explanation, where it is not the Rule's default.
CONVENTION_NAMES = {
    ("eps", "outside_uncorrected"): "ε before bias correction",
    ("eps", "inside"): "ε inside √ or max",
    ("eps", "none"): "no ε",
    ("momentum_decay", None): "no momentum schedule",
    ("scale_after_decay", True): "reads p after the decay",
    ("relative_step", False): "step lr, not min(lr, 1/√t)",
    ("lr_ignored", True): "step ignores lr",
    ("momentum_scaled", True): "momentum of lr-scaled steps",
    ("schedule_offset", 1): "first step reads η₁",
}
NONE = "none"  # the placement of a rule in which λ has no effect
ROLE_NAMES = {
    "hidden_weight": "hidden weights", "hidden_bias": "hidden biases", "output_weight": "output weight",
    "output_bias": "output bias",
}  # fmt: skip


@dataclass(frozen=True)
class Form:
    """Where λ enters the update (a key of PLACEMENTS, or NONE) and its multiplier k: the rule uses k·λ."""

    placement: str
    multiplier: float

    @property
    def name(self):
        return "no decay" if self.placement == NONE else f"{PLACEMENTS[self.placement]} ×{self.multiplier:g}"


class Outcome(NamedTuple):
    """What a run's explanation says, as a structure: what golden fingerprints and pins compare (its
    words, ``Explanation.summary``, may change). ``forms``: ((placement, k), ...), its own first, k None
    where λ has no effect; ``bias``: decayed (True), not (False) or "unseen"; ``spared``, ``unseen``:
    the roles it spares and those whose decay the run cannot tell; ``conventions``: ((field, value), ...)
    of the optimizer's conventions off the Rule's defaults that the run tells."""

    matched: bool
    forms: tuple
    bias: bool | str
    spared: tuple
    unseen: tuple
    loss: str
    conventions: tuple


@dataclass(frozen=True)
class Explanation:
    """The rule that reproduces a run (or, unmatched, the closest one) and where λ enters in it."""

    form: Form
    rule: oracle.Rule
    gap: float  # largest relative gap between a step of the run and the rule's step from the run's previous one
    matched: bool  # gap within the run's diff.STEP_TOLERANCE
    equivalents: tuple = ()  # Forms of the other matching rules
    drift: float | None = None  # largest per-step relative gap of the rule run on its own from the run's start
    bias_ambiguous: bool = False  # the same rule with the bias decayed the other way matches too
    ambiguous: tuple = ()  # the convention fields another value of which matches too (the run cannot tell)
    unseen: tuple = ()  # an MLP's roles whose decay the run cannot tell (a rule deciding otherwise matches too)

    @property
    def forms(self):
        """Every (placement, k) that reproduces the run: its own first, then the equivalent ones."""
        return (self.form, *self.equivalents)

    @property
    def outcome(self):
        """The Outcome: this explanation as a structure."""
        forms = tuple((f.placement, None if f.placement == NONE else f.multiplier) for f in self.forms)
        bias = "unseen" if self.bias_ambiguous else self.rule.decay_bias
        spared = tuple(role for role in self.rule.spared if role not in self.unseen)
        conventions = tuple(told_conventions(self.rule, self.ambiguous))
        return Outcome(self.matched, forms, bias, spared, tuple(self.unseen), self.rule.loss, conventions)

    @property
    def summary(self):
        """The rule in words, or ``unexplained (closest: <rule>)``: what a golden fingerprint pins."""
        name = self.form.name + (f" (≡ {', '.join(f.name for f in self.equivalents)})" if self.equivalents else "")
        bias = "bias decayed" if self.rule.decay_bias else "bias not decayed"
        bias = "bias decay not seen" if self.bias_ambiguous else bias
        shown = [role for role in self.rule.spared if role not in self.unseen]
        spared = [f"{' and '.join(ROLE_NAMES[r] for r in shown)} not decayed"] if shown else []
        spared += [f"{' and '.join(ROLE_NAMES[r] for r in self.unseen)} decay not seen"] if self.unseen else []
        conventions = convention_names(self.rule, self.ambiguous)
        text = ", ".join([name, bias, *spared, f"loss {self.rule.loss}", *conventions])
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
            "bias_ambiguous": self.bias_ambiguous,
            "ambiguous": list(self.ambiguous),
            "unseen": list(self.unseen),
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
            bias_ambiguous=bool(found.get("bias_ambiguous", False)),
            ambiguous=tuple(found.get("ambiguous", ())),
            unseen=tuple(found.get("unseen", ())),
        )


def told_conventions(rule, ambiguous=()):
    """[(field, value)] of the rule's optimizer conventions that differ from the Rule's defaults, but
    for the ``ambiguous`` ones, which the run does not tell."""
    default = oracle.Rule()
    found = []
    for field in dataclasses.fields(oracle.Rule):
        value = getattr(rule, field.name)
        if field.name in ambiguous or value == getattr(default, field.name):
            continue
        if (field.name, value) in CONVENTION_NAMES or (field.name == "momentum_decay" and value is not None):
            found.append((field.name, value))
    return found


def convention_names(rule, ambiguous=()):
    """The rule's told conventions (``told_conventions``) in words."""
    return [
        CONVENTION_NAMES.get((field, value)) or f"momentum schedule ψ = {value:g}"
        for field, value in told_conventions(rule, ambiguous)
    ]


def conventions(case):
    """{Rule field: values tried} for the conventions in which frameworks' versions of the case's
    optimizer differ, each field's first value the one tried first."""
    opt = case.optimizer
    # A momentum of raw steps × the current lr and one of lr-scaled steps part only when lr changes.
    varies = case.penalty.kind == "lr_decay" or case.schedule.varies
    scaled = {"momentum_scaled": (False, True)} if varies else {}
    counted = {"schedule_offset": (0, 1)} if case.schedule.varies else {}
    return counted | {
        "momentum": scaled,
        "nesterov": scaled,
        "adam": {"eps": ("outside", "outside_uncorrected")},
        "radam": {"eps": ("outside", "outside_uncorrected")},
        "rmsprop": {"eps": ("outside", "inside")} | (scaled if opt.momentum else {}),
        "adagrad": {"eps": ("outside", "inside")},
        "adamax": {"eps": ("inside", "outside", "none")},
        "nadam": {"momentum_decay": tuple(dict.fromkeys((opt.momentum_decay, 1.0, None)))},
        "lamb": {"scale_after_decay": (False, True)},
        "adafactor": {"scale_after_decay": (False, True), "relative_step": (True, False)},
        "adadelta": {"lr_ignored": (False, True)},
    }.get(opt.name, {})


def placements(case):
    """Where λ may enter for this case's penalty and optimizer, in catalog order."""
    if case.penalty.kind == "l1_loss":
        return ("l1",)
    found = ["coupled", "decoupled_lr"]
    found += ["decoupled_base", "decoupled_multiplier"] if case.schedule.varies else []  # else × lr and × 1
    found += ["decoupled"]
    found += ["decoupled_ratio"] if case.optimizer.name == "lamb" else []
    found += ["lr_decay"] if case.penalty.kind == "lr_decay" else []
    return tuple(found)


def role_sets(case):
    """(decay_bias, spared) of each set of the model's roles a decay may apply to, in catalog order:
    bias not decayed, then decayed; each with no role spared, then one, then two, and so on (of an
    MLP's roles), so long as some weight decays and, with decay_bias, some bias."""
    roles = [role for layer in case.layers for role in layer.roles]
    weights, biases = [r for r in roles if r.endswith("_weight")], [r for r in roles if r.endswith("_bias")]
    found = []
    for bias in (False, True):
        decayed = weights + (biases if bias else [])
        for size in range(len(decayed) + 1):
            for spared in itertools.combinations(sorted(decayed, key=roles.index), size):
                if set(weights) <= set(spared) or bias and set(biases) <= set(spared):
                    continue
                found.append((bias, spared))
    return found


def candidates(case, strength=None, where=None, multipliers=MULTIPLIERS):
    """Every (Form, Rule) the catalog tries for this case, in catalog order; ``strength``
    replaces the case's λ (a fitted one, where the API was given none), ``where`` the
    placements (``placements(case)``), ``multipliers`` the k tried at each."""
    strength = case.penalty.strength if strength is None else strength
    where = placements(case) if where is None else where
    losses = ("half_mse", "mse") if case.train.loss == "native" else (case.train.loss,)
    tried = conventions(case)
    forms = [(Form(NONE, 0.0), {})] + [
        (Form(placement, k), {placement: k * strength}) for placement in where for k in multipliers
    ]
    base = {"momentum_decay": case.optimizer.momentum_decay}
    for (form, decay), (bias, spared), loss, values in itertools.product(
        forms, role_sets(case), losses, itertools.product(*tried.values())
    ):
        if form.placement == NONE and (bias or spared):
            continue
        values = base | dict(zip(tried, values))
        yield form, oracle.Rule(loss=loss, decay_bias=bias, spared=spared, **values, **decay)


def explain(case, arrays, trajectory, strength=None):
    """The first catalog rule that predicts every step of ``trajectory`` from the run's own
    previous parameters within the run's step tolerance, with the other matching rules as
    equivalents; else the closest rule, marked unmatched. Either way with its drift: the gap of
    the rule run on its own from the run's initial weights. ``strength`` replaces the case's λ.
    A framework API that no rule of the catalog explains is tried as L1 (λ·sign(w) in the
    gradient: an L1 regularizer), then as a growth (``GROWTH``), which explains it if it matches;
    else the closest stays."""
    worst = {}  # rule -> its largest step gap, for every rule tried
    found = _explain(case, arrays, trajectory, strength, placements(case), worst)
    for where, multipliers in ((("l1",), MULTIPLIERS), ((GROWTH[0],), (GROWTH[1],))):
        if not found.matched and case.penalty.in_framework:
            other = _explain(case, arrays, trajectory, strength, where, worst, multipliers)
            found = other if other.matched else found
    run = (trajectory.w, trajectory.b)
    with np.errstate(all="ignore"):
        alone = diff.relative_gaps(run, oracle.simulate(found.rule, case, arrays, start=(run[0][0], run[1][0])))
    return dataclasses.replace(found, drift=float(alone.max()) if np.isfinite(alone).all() else float("inf"))


def _explain(case, arrays, trajectory, strength, where, worst, multipliers=MULTIPLIERS):
    """``explain``'s rule over the catalog of the placements ``where`` and ``multipliers``, without its
    drift; ``worst`` keeps each rule's largest step gap, so that no rule is simulated twice."""
    run = (trajectory.w, trajectory.b)
    tolerance = diff.tolerance(case.model.dtype, trajectory.hyperparameter_dtype, diff.STEP_TOLERANCE)
    catalog = list(candidates(case, strength, where, multipliers))

    def judge(rules):
        """Try the rules not tried yet: (the first of ``rules`` that matches, else the closest; it matches)."""
        new = [rule for rule in dict.fromkeys(rules) if rule not in worst]  # at λ = 0 most rules are one
        at_once = max(1, SIMULATED_VALUES // ((case.steps + 1) * case.parameters))
        for start in range(0, len(new), at_once):
            some = new[start : start + at_once]
            with np.errstate(all="ignore"):
                gaps = diff.relative_gaps(run, oracle.simulate_rules(some, case, arrays, along=run))
            worst.update(zip(some, np.where(np.isfinite(gaps).all(axis=-1), gaps.max(axis=-1), np.inf).tolist()))
        best = next((rule for rule in rules if worst[rule] <= tolerance), None)
        return (best, True) if best is not None else (min(rules, key=worst.get), False)

    _search(case, [rule for _, rule in catalog], judge)
    tried = [
        Explanation(form, rule, gap, matched=gap <= tolerance)
        for form, rule in catalog
        if (gap := worst.get(rule)) is not None
    ]
    matches = [e for e in tried if e.matched]
    if not matches:
        found = min(tried, key=lambda e: e.gap)
    elif matches[0].form.placement == NONE:
        found = matches[0]
    else:
        first = matches[0]
        others = dict.fromkeys(e.form for e in matches if e.form != first.form and e.form.placement != NONE)
        flipped = dataclasses.replace(first.rule, decay_bias=not first.rule.decay_bias)
        found = dataclasses.replace(
            first, equivalents=tuple(others), bias_ambiguous=any(e.rule == flipped for e in matches)
        )
    if found.matched:
        same_form = [e.rule for e in matches if (e.form, e.rule.decay_bias) == (found.form, found.rule.decay_bias)]
        fields = [f for f, values in conventions(case).items() if len({getattr(r, f) for r in same_form}) > 1]
        found = dataclasses.replace(found, ambiguous=tuple(fields))
    if found.matched and found.form.placement != NONE and len(role_sets(case)) > 2:
        found = dataclasses.replace(found, bias_ambiguous=False, unseen=_unseen(case, found, matches))
    return found


def _unseen(case, found, matches):
    """The roles whose decay differs among the matching rules of the found rule's form and
    conventions: the run cannot tell whether they decay (a one-element tensor's decay under LAMB's
    trust ratio, or a decay smaller than the run's tolerance)."""
    same = [e.rule for e in matches if e.form == found.form and _holds(e.rule, _besides_roles(found.rule))]
    present = [role for layer in case.layers for role in layer.roles]
    return tuple(role for role in present if len({rule.decays(role) for rule in same}) > 1)


def _besides_roles(rule):
    """Every field of the rule (its decay, its conventions) but the roles it decays."""
    return {field: value for field, value in vars(rule).items() if field not in ("decay_bias", "spared")}


def _search(case, rules, judge):
    """Try the catalog's ``rules`` with ``judge``: all at once for the linear model; for an MLP, whose
    role sets multiply the catalog, in stages, each from the best rule of the one before (the first
    that matches, else the closest): every placement with the roles the case asks for, all roles
    decayed, or the biases spared, in the first values of the optimizer's conventions; then every
    value of the conventions; then every role set (``role_sets``). If none matches, every rule."""
    if len(role_sets(case)) <= 2:
        judge(rules)
        return
    penalty, first = case.penalty, {field: values[0] for field, values in conventions(case).items()}
    asked = {(penalty.decay_bias is not False, penalty.spare), (False, ()), (True, ())}
    best, _ = judge([r for r in rules if (r.decay_bias, r.spared) in asked and _holds(r, first)])
    for varied in (tuple(first), ("decay_bias", "spared")):
        kept = {field: getattr(best, field) for field in vars(best) if field not in varied}
        best, matched = judge([r for r in rules if _holds(r, kept)])
    if not matched:
        judge(rules)


def _holds(rule, values):
    """Whether the rule's fields have these values."""
    return all(getattr(rule, field) == value for field, value in values.items())


# Fitted defaults are rounded to this many significant digits before the rule is checked with
# them: a default is a short decimal (1e-2, 4e-3), and float32 hyperparameters blur the 4th digit.
DEFAULT_DIGITS = 3


def fit_strength(case, arrays, trajectory, placements=("decoupled_lr", "decoupled")):
    """The λ an API applied when given none (``penalty.omit_strength``): for each decoupled
    placement and each no-decay rule of the catalog, the least-squares c of the run's steps of w
    against the rule's, both predicted from the run's own previous parameters (each step's
    residual is lr·c·w or c·w); the fits tried best first (smallest residual left, then in the
    order of ``placements``), each rounded to DEFAULT_DIGITS, until one explains the run as that
    placement ×1. With a constant lr, c·w and lr·(c/lr)·w are one step: pass the placement the
    API is known to use (its penalty probe's) to read its λ rather than lr·λ. Returns (c,
    Explanation): (0.0, …) when no decay is seen, (None, the closest rule) when no fitted λ
    explains the run."""
    run = (trajectory.w, trajectory.b)
    closest = explain(case, arrays, trajectory, strength=0.0)
    if closest.matched:
        return 0.0, closest
    undecayed = [rule for form, rule in candidates(case, 0.0) if form.placement == NONE]
    with np.errstate(all="ignore"):
        w, _ = oracle.simulate_rules(undecayed, case, arrays, along=run)
    residuals, fits = w[:, 1:] - run[0][1:], []
    for order, placement in enumerate(placements):
        basis = {"decoupled_lr": case.optimizer.lr, "decoupled": 1.0}[placement] * np.asarray(run[0][:-1], np.float64)
        for residual in residuals:
            c = np.sum(residual * basis) / np.sum(basis * basis)
            left = float(f"{np.sum((residual - c * basis) ** 2):.3g}")  # equal fits, to rounding, go in order
            fits.append((left, order, placement, float(f"{c:.{DEFAULT_DIGITS}g}")))
    for _, _, placement, fitted in sorted(fits):
        if fitted > 0:
            found = explain(case, arrays, trajectory, strength=fitted)
            if found.matched and found.form == Form(placement, 1.0):
                return fitted, found
    return None, closest
