"""Judgements read off the fingerprints: what each API's λ does, whether it is an L2 penalty in
the loss, whether the full runs agree, and the rule comparisons ``harness.equivalents`` builds on.
Plain data: the report renders it, the tests check it from small fingerprints."""

import dataclasses
import itertools
from dataclasses import dataclass

from harness import diff
from harness.case import FRAMEWORK_KINDS, OPTIMIZERS, ROLES
from harness.explain import CONVENTION_NAMES, NONE, PLACEMENTS, Form
from harness.fingerprint import ApiKey, ConventionKey, ProbeKey, api
from harness.probes import BIAS_MODES, KINDS
from harness.steps import STATES


@dataclass(frozen=True)
class Semantics:
    """What the nominal λ of one API does with one optimizer, from its probes with the bias
    spared (``spared``), decayed (``decayed``) and left to the API's default (``default``, None
    where the API has none to probe)."""

    backend: str
    optimizer: str
    kind: ApiKey
    spared: object
    decayed: object
    default: object

    @property
    def placement(self):
        """Where λ enters (a PLACEMENTS key or NONE), or None when the spared probe found no rule."""
        return self.spared.explained.form.placement if self.spared.matched else None

    @property
    def times_lr(self):
        """Whether the decay is multiplied by lr; None where there is no decay or no rule."""
        return self.placement != "decoupled" if self.placement not in (None, NONE) else None

    @property
    def through_state(self):
        """Whether the decay goes through momentum or Adam's moments; None for plain SGD, no decay or no rule."""
        decays = self.placement not in (None, NONE)
        return self.placement in ("coupled", "l1") if decays and self.optimizer != "sgd" else None

    @property
    def bias_honoured(self):
        """``decay_bias`` false spares the bias and true decays it."""
        return bias_decayed(self.spared) is False and bias_decayed(self.decayed) is True


def bias_decayed(probe):
    """Whether the probe's run decayed the bias; None if there is no such probe, it found no rule
    or cannot tell."""
    if probe is None or not probe.matched or probe.explained.bias_ambiguous:
        return None
    return probe.explained.rule.decay_bias


def semantics(fingerprints):
    """A Semantics per backend × optimizer × API probed, in OPTIMIZERS and KINDS order, each API's
    variants after it (``kind`` as ``fingerprint.api`` names it, probed with the bias spared only)."""
    found = []
    for fingerprint in fingerprints:
        variants = [key for key in fingerprint.penalties if key.variant]
        for optimizer in OPTIMIZERS:
            for kind in KINDS:
                probes = [fingerprint.penalties.get(ProbeKey(optimizer, kind, bias)) for bias in BIAS_MODES]
                if probes[0] is not None:
                    found.append(Semantics(fingerprint.backend, optimizer, ApiKey(kind), *probes))
                for key in variants:
                    if (key.optimizer, key.kind) == (optimizer, kind):
                        found.append(
                            Semantics(fingerprint.backend, optimizer, api(key), fingerprint.penalties[key], None, None)
                        )
    return found


def conventions(fingerprint):
    """{ConventionKey: the Rule field's value the framework's optimizer follows} from the convention
    probes; a probe the framework cannot run, or that found no rule, gives its outcome instead."""
    return {
        key: getattr(probe.explained.rule, key.field) if probe.matched else probe.outcome()
        for key, probe in fingerprint.conventions.items()
    }


def resolved(fingerprint, optimizer, explained):
    """``explained``'s rule with each convention the run left open set as ``fingerprint``'s
    convention probe of ``optimizer`` found it (where it found one)."""
    found = {}
    for field in explained.ambiguous:
        probe = fingerprint.conventions.get(ConventionKey(optimizer, field))
        if probe is not None and probe.matched:
            found[field] = getattr(probe.explained.rule, field)
    return dataclasses.replace(explained.rule, **found)


def convention_value(field, value):
    """A convention's value in words (or a probe's outcome, as it is)."""
    if field == "eps":
        return {"outside": "ε outside √ or max"}.get(value) or CONVENTION_NAMES.get((field, value), value)
    if field == "loss":
        return {"half_mse": "½e²", "mse": "e²"}.get(value, value)
    if field == "momentum_decay":
        return "no momentum schedule" if value is None else f"ψ = {value:g}" if isinstance(value, float) else value
    return {True: "yes", False: "no"}.get(value, value) if isinstance(value, bool) else value


def scale(source, target):
    """k_source / k_target for the first place λ enters in both Explanations (their own rule or an
    equivalent one), so that the target at λ' = scale·λ follows the source at λ; None if they
    share no place (a growth, k < 0, and a decay share none: λ' would be negative)."""
    for form in source.forms:
        for other in target.forms:
            if form.placement == other.placement != NONE and form.multiplier * other.multiplier > 0:
                return form.multiplier / other.multiplier
    return None


# placement -> what the decay is multiplied by under a learning-rate schedule
FOLLOWS = {
    NONE: "no decay",
    "coupled": "scheduled lr, coupled",
    "l1": "scheduled lr, l1",
    "decoupled_lr": "scheduled lr",
    "decoupled_base": "base lr",
    "decoupled_multiplier": "multiplier η",
    "decoupled": "nothing",
    "decoupled_ratio": "scheduled lr, in the trust ratio",
}


def follows(probe):
    """What a schedule probe's decay follows (FOLLOWS), or the probe's outcome where it found no rule."""
    return FOLLOWS[probe.explained.form.placement] if probe.matched else probe.outcome()


# A decay beside the step: the powers of the base lr α and of the schedule's multiplier η in its
# coefficient (the decay × the scheduled lr is α·η·kλ).
SCALINGS = {"decoupled_lr": (1, 1), "decoupled_base": (1, 0), "decoupled_multiplier": (0, 1), "decoupled": (0, 0)}


def scaling(source, target, scheduled=False):
    """(factor, p) such that the target at λ' = factor·lr^p·λ puts λ where the source does at λ:
    the first place both Explanations share (p = 0), else two decays beside the step whose
    coefficients differ by the base lr's power p, and, when ``scheduled``, follow η alike (a
    decay × η is × lr/α once the lr varies only with η); None if there is neither."""
    factor = scale(source, target)
    if factor is not None:
        return factor, 0
    for form in source.forms:
        for other in target.forms:
            a, b = SCALINGS.get(form.placement), SCALINGS.get(other.placement)
            if a and b and (not scheduled or a[1] == b[1]) and form.multiplier * other.multiplier > 0:
                return form.multiplier / other.multiplier, a[0] - b[0]
    return None


def multiplier_unseen(explained):
    """Whether the run leaves λ's multiplier open: its forms put λ in one place with several k."""
    placements = [form.placement for form in explained.forms]
    return len(placements) != len(set(placements))


def same_rule(a, b):
    """Whether two Explanations name the same semantics: the same bias handling and a place
    with multiplier in common; two unmatched ones, the same closest rule."""
    if not (a.matched and b.matched):
        return str(a) == str(b)
    return a.rule.decay_bias == b.rule.decay_bias and bool(set(a.forms) & set(b.forms))


# Why an API's λ is no L2 penalty in the loss at any λ' (``Verdict.why``), in words; the state a decay beside
# the step bypasses is the optimizer's (``steps.STATES``).
WHY = {
    "no effect": "λ has no effect",
    "not × lr": "λ is not multiplied by lr",
    "bypasses": "λ bypasses the {state}",
    "grows": "λ grows the weights",
    "bias": "cannot spare the bias",
    "multiplier unseen": "the probe cannot tell λ's multiplier ({forms} all fit)",
    "elsewhere": "λ enters as {placement}",
}

STATE_WORDS = {"momentum": "momentum", "normalisation": "normalisation of the step", "sign": "sign of the step",
               "step": "step"}  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    """An API's probe against the same framework's ``l2_loss`` probe: ``outcome`` is ``same`` (the
    same trajectory), ``convert`` (the same with λ' = ``factor``·λ), ``never`` (no λ' does), ``unknown``
    (the probe cannot tell), ``unsupported`` or ``unexplained``; ``why`` (a key of WHY) says why not,
    about the API's ``form`` and the ``optimizer``; ``detail``: an unsupported or unexplained probe's
    outcome, or the forms a multiplier-blind probe fits."""

    outcome: str
    factor: float | None = None
    why: str = ""
    form: Form | None = None
    optimizer: str = ""
    detail: str = ""

    @property
    def reason(self):
        """Why, in words (the probe's outcome for an unsupported or unexplained one)."""
        if not self.why:
            return self.detail
        words = WHY[self.why].format(
            state=STATE_WORDS[STATES.get(self.optimizer, "step")],
            forms=self.detail,
            placement=PLACEMENTS.get(self.form.placement, "") if self.form else "",
        )
        return f"{words} ({self.form.name})" if self.form is not None and self.why != "multiplier unseen" else words


def same_bias(a, b):
    return a.rule.decay_bias == b.rule.decay_bias or a.bias_ambiguous or b.bias_ambiguous


def verdict(probe, l2_probe, optimizer):
    """The Verdict of ``probe`` (an API, bias spared) against ``l2_probe`` with ``optimizer``."""
    if probe.status != "ok":
        return Verdict(probe.status, detail=probe.reason)
    if not (probe.matched and l2_probe.matched):
        return Verdict("unexplained", detail=(l2_probe if probe.matched else probe).outcome())
    api, l2 = probe.explained, l2_probe.explained
    if not same_bias(api, l2):
        return Verdict("never", why="bias")
    factor = scale(l2, api)
    if factor is not None and (multiplier_unseen(api) or multiplier_unseen(l2)):
        forms = ", ".join(f.name for f in (api if multiplier_unseen(api) else l2).forms)
        return Verdict("unknown", why="multiplier unseen", detail=forms)
    if factor is not None:
        return Verdict("same") if factor == 1 else Verdict("convert", factor)
    placement = api.form.placement
    why = "grows" if api.form.multiplier < 0 else {
        NONE: "no effect", "decoupled": "not × lr", "decoupled_lr": "bypasses"
    }.get(placement, "elsewhere")  # fmt: skip
    return Verdict("never", why=why, form=api.form, optimizer=optimizer)


def verdicts(fingerprints):
    """{(backend, optimizer, kind): Verdict} of every framework API probed (bias spared) with its l2_loss twin."""
    found = {}
    for fingerprint, optimizer, kind in itertools.product(fingerprints, OPTIMIZERS, FRAMEWORK_KINDS):
        probe = fingerprint.penalties.get(ProbeKey(optimizer, kind, False))
        reference = fingerprint.penalties.get(ProbeKey(optimizer, "l2_loss", False))
        if probe and reference:
            found[fingerprint.backend, optimizer, kind] = verdict(probe, reference, optimizer)
    return found


@dataclass(frozen=True)
class RunCheck:
    """A full run of an API (λ > 0, bias spared) against its verdict: its l2_loss twin (the same case with
    the penalty in the loss) is ``parting`` from it at that step, or None where they coincide; ``agrees``
    when they coincide exactly where the verdict is same."""

    backend: str
    optimizer: str
    kind: str
    strength: float
    outcome: str
    parting: int | None

    @property
    def agrees(self):
        return (self.parting is None) == (self.outcome == "same")


def check_runs(runs, results, found):
    """The RunCheck of every trained run of ``runs`` (report Runs) of a framework API at λ > 0 (bias spared)
    whose l2_loss twin is among ``results`` ({(backend, case id): Result}) and whose verdict in ``found``
    (``verdicts``) is same, convert or never; each (backend, case) once."""
    checked = {}
    for run in runs:
        penalty = run.case.penalty
        judged = found.get((run.backend, run.case.optimizer.name, penalty.kind))
        if not (run.trained and penalty.in_framework and penalty.spares_bias and penalty.strength > 0):
            continue
        twin = results.get((run.backend, run.case.replace({"penalty.kind": "l2_loss"}).id))
        if twin is None or not twin.trained or judged is None or judged.outcome not in ("same", "convert", "never"):
            continue
        checked.setdefault(
            (run.backend, run.case.id),
            RunCheck(run.backend, run.case.optimizer.name, penalty.kind, penalty.strength, judged.outcome,
                     diff.result_parting(run.result, twin)),
        )  # fmt: skip
    return list(checked.values())


@dataclass(frozen=True)
class Roles:
    """Which of a model's roles a run's rule decays, against what its case asked: ``decayed``; ``more``,
    decayed though asked to spare; ``fewer``, spared though asked to decay (a bias left to the
    framework's default asks neither); ``unseen``, those whose decay the run cannot tell."""

    decayed: tuple
    more: tuple
    fewer: tuple
    unseen: tuple


def roles(explained, case):
    """The Roles of a matched explanation of a run of ``case`` (ROLES order)."""
    present = [role for role in ROLES if any(role in layer.roles for layer in case.layers)]
    seen = [role for role in present if role not in explained.unseen]
    decayed = tuple(role for role in seen if explained.rule.decays(role))
    asked = {role: case.penalty.decays(role) for role in present}
    more = tuple(role for role in decayed if asked[role] is False)
    fewer = tuple(role for role in seen if asked[role] is True and role not in decayed)
    return Roles(decayed, more, fewer, tuple(role for role in present if role in explained.unseen))


@dataclass(frozen=True)
class Agreement:
    """The full runs of one API (λ > 0, bias spared; ``scheduled``: under a varying schedule) against the rule
    of its probe (the penalty probe, bias spared, or the schedule probe): the ``probe``'s outcome, the
    number of ``runs``, how many ``agree`` (``same_rule``), and each ``disagreeing`` one, "spec label: rule"."""

    backend: str
    optimizer: str
    kind: str
    variant: str
    scheduled: bool
    probe: str
    runs: int
    agree: int
    disagreeing: tuple


def agreement(fingerprints, runs, schedule):
    """The Agreement of each API with full runs among ``runs`` ((spec name, report Run)), against its
    penalty probe, or under a varying schedule its schedule probe of the ``schedule`` kind."""
    probes = {(f.backend, k.optimizer, k.kind, k.decay_bias, k.variant): p for f in fingerprints
              for k, p in f.penalties.items()}  # fmt: skip
    probes |= {(f.backend, k.optimizer, k.kind, "scheduled", k.variant): p for f in fingerprints
               for k, p in f.schedules.items() if k.schedule == schedule}  # fmt: skip
    found = {}
    for name, run in runs:
        penalty = run.case.penalty
        probed = "scheduled" if run.case.schedule.varies else False  # the probe's bias is spared
        key = (run.backend, run.case.optimizer.name, penalty.kind, probed, penalty.variant)
        if not (run.ok and key in probes and penalty.spares_bias and penalty.strength > 0 and penalty.in_framework):
            continue
        probe, explained = probes[key], run.result.explained
        agrees = probe.status == "ok" and same_rule(probe.explained, explained)
        counted, agree, disagreeing = found.get(key, (0, 0, ()))
        disagreeing += () if agrees else (f"{name} {run.label}: {explained}",)
        found[key] = (counted + 1, agree + agrees, disagreeing)
    agreements = []
    for (backend, optimizer, kind, scheduled, variant), counts in found.items():
        outcome = probes[backend, optimizer, kind, scheduled, variant].outcome()
        agreements.append(Agreement(backend, optimizer, kind, variant, bool(scheduled), outcome, *counts))
    return agreements
