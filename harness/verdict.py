"""Judgements read off the fingerprints: what each API's λ does, whether it is an L2 penalty in
the loss, and which setting of another framework gives the same training. Plain data: the
report renders it, the tests check it from small fingerprints."""

import dataclasses
from dataclasses import dataclass

from harness.case import OPTIMIZERS, ROLES
from harness.explain import CONVENTION_NAMES, NONE, PLACEMENTS, Explanation, Form
from harness.fingerprint import ConventionKey, ProbeKey, api
from harness.oracle import Rule
from harness.probes import BIAS_MODES, KINDS


@dataclass(frozen=True)
class Semantics:
    """What the nominal λ of one API does with one optimizer, from its probes with the bias
    spared (``spared``), decayed (``decayed``) and left to the API's default (``default``, None
    where the API has none to probe)."""

    backend: str
    optimizer: str
    kind: str
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
                    found.append(Semantics(fingerprint.backend, optimizer, kind, *probes))
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


@dataclass(frozen=True)
class Verdict:
    """An API's probe against the same framework's ``l2_loss`` probe: ``outcome`` is ``same`` (the
    same trajectory), ``convert`` (the same with λ' = ``factor``·λ), ``never`` (no λ' does;
    ``reason`` says why), ``unknown`` (the probe cannot tell), ``unsupported`` or ``unexplained``
    (``reason``: the probe's outcome)."""

    outcome: str
    factor: float | None = None
    reason: str = ""


def _same_bias(a, b):
    return a.rule.decay_bias == b.rule.decay_bias or a.bias_ambiguous or b.bias_ambiguous


def verdict(probe, l2_probe, optimizer):
    """The Verdict of ``probe`` (an API, bias spared) against ``l2_probe`` with ``optimizer``."""
    if probe.status != "ok":
        return Verdict(probe.status, reason=probe.reason)
    if not (probe.matched and l2_probe.matched):
        return Verdict("unexplained", reason=(l2_probe if probe.matched else probe).outcome())
    api, l2 = probe.explained, l2_probe.explained
    if not _same_bias(api, l2):
        return Verdict("never", reason="cannot spare the bias")
    factor = scale(l2, api)
    if factor is not None and (multiplier_unseen(api) or multiplier_unseen(l2)):
        forms = ", ".join(f.name for f in (api if multiplier_unseen(api) else l2).forms)
        return Verdict("unknown", reason=f"the probe cannot tell λ's multiplier ({forms} all fit)")
    if factor is not None:
        return Verdict("same") if factor == 1 else Verdict("convert", factor)
    if api.form.multiplier < 0:
        return Verdict("never", reason=f"λ grows the weights ({api.form.name})")
    why = {
        NONE: "λ has no effect",
        "decoupled": "λ is not multiplied by lr",
        "decoupled_lr": "λ bypasses " + ("Adam's normalisation" if optimizer == "adam" else "momentum"),
    }.get(api.form.placement, PLACEMENTS.get(api.form.placement, api.form.placement))
    return Verdict("never", reason=f"{why} ({api.form.name})")


# Rule fields of an optimizer's own conventions
CONVENTIONS = (
    "eps", "momentum_decay", "scale_after_decay", "relative_step", "lr_ignored", "momentum_scaled", "schedule_offset",
)  # fmt: skip


@dataclass(frozen=True)
class Conversion:
    """How a target framework reproduces a source API's run: penalty ``kind`` at λ' =
    ``factor``·lr^``lr_power``·λ (lr the base learning rate), or, with ``kind`` None, no setting
    does and ``reason`` says why."""

    kind: str | None
    factor: float | None = None
    reason: str = ""
    lr_power: int = 0


def conversions(fingerprints, schedule=None):
    """For every backend × optimizer × API (bias spared) whose λ has an effect, the Conversion of
    each other backend: ``{(source, optimizer, kind): {target: Conversion}}``; from the penalty
    probes (a constant lr), or, given a ``schedule`` kind of SCHEDULE_PROBES, from those probes.

    A target API matches when it puts λ in the same place (the same oracle rule up to the
    multiplier), or beside the step with another power of lr (``scaling``); its λ is then scaled
    by k_source / k_target and that power of lr. The two backends' versions of the
    optimizer must also follow the same conventions (their convention probes, and the
    conventions the two rules were explained with), or no setting reproduces the run exactly.
    The target's own API of the same kind is tried first, l2_loss last.
    """
    found, by_backend = {}, {fingerprint.backend: fingerprint for fingerprint in fingerprints}
    for fingerprint in fingerprints:
        for key, probe in _probes(fingerprint, schedule):
            found[fingerprint.backend, key.optimizer, api(key)] = probe.explained
    backends = list(dict.fromkeys(backend for backend, _, _ in found))
    result = {}
    for (source, optimizer, kind), explained in found.items():
        if explained.form.placement == NONE or kind == "l2_loss":
            continue
        targets = {}
        for target in backends:
            if target == source:
                continue
            if reason := convention_gap(by_backend[source], by_backend[target], optimizer):
                targets[target] = Conversion(None, reason=reason)
                continue
            options = {k: e for (b, o, k), e in found.items() if (b, o) == (target, optimizer)}
            same = kind.partition(" [")[0]  # the API itself, a variant of it (fingerprint.api) after it
            preferred = sorted(options, key=lambda k: (k != kind, k.partition(" [")[0] != same, k == "l2_loss"))
            targets[target] = convert(explained, {k: options[k] for k in preferred}, scheduled=schedule is not None)
        result[source, optimizer, kind] = targets
    return result


def convention_gap(source, target, optimizer, skip=()):
    """Why ``optimizer`` cannot train alike in the backends of two Fingerprints: the first of the
    source's convention probes of it (but the fields in ``skip``) whose value the target's differs
    from, in words; else ""."""
    mine, theirs = (
        {k.field: v for k, v in conventions(f).items() if k.optimizer == optimizer and k.field not in skip}
        for f in (source, target)
    )
    for field, value in mine.items():
        other = theirs.get(field, "not probed")
        if other != value:
            words = [convention_value(field, found) for found in (value, other)]
            return f"{optimizer}'s {field} convention is {words[0]} in {source.backend}, {words[1]} in {target.backend}"
    return ""


def _probes(fingerprint, schedule):
    """(key, probe) of the matched probes, bias spared, that conversions read: the penalty probes,
    or the schedule probes of the ``schedule`` kind."""
    if schedule is None:
        return [(k, p) for k, p in fingerprint.penalties.items() if k.decay_bias is False and p.matched]
    return [(k, p) for k, p in fingerprint.schedules.items() if k.schedule == schedule and p.matched]


# Loshchilov & Hutter's AdamW (Algorithm 2): the decay is λ·ηₜ·w, × the schedule's multiplier, not × α.
PAPER = Explanation(Form("decoupled_multiplier", 1.0), Rule(decoupled_multiplier=1.0), gap=0.0, matched=True)


def from_paper(fingerprints, schedule="step"):
    """For each backend, the Conversion of Adam's decoupled decay as the paper states it (λ × ηₜ) into
    the backend's ``decoupled`` or ``adamw`` Adam, or a variant of them, from their schedule probes:
    ``{backend: Conversion}``; an API that takes the paper's λ itself (no power of lr) first."""
    found = {}
    for fingerprint in fingerprints:
        probes = {
            api(key): probe
            for key, probe in fingerprint.schedules.items()
            if key.optimizer == "adam" and key.kind in ("decoupled", "adamw") and key.schedule == schedule
        }
        if probes:
            matched = {kind: probe.explained for kind, probe in probes.items() if probe.matched}
            direct = {k: e for k, e in matched.items() if _takes_as_is(convert(PAPER, {k: e}, scheduled=True))}
            found[fingerprint.backend] = (
                convert(PAPER, direct | matched, scheduled=True)
                if matched
                else Conversion(None, reason=next(iter(probes.values())).outcome())
            )
    return found


def _takes_as_is(conversion):
    return conversion.kind is not None and conversion.lr_power == 0


def convert(explained, options, scheduled=False, conventions=True):
    """The Conversion to the first of ``options`` ({kind: Explanation}, in preference order) that puts
    λ where ``explained`` does (``scaling``), on the same parameters (a bias either run cannot tell
    aside), with known multipliers and (unless ``conventions`` is false: the same decay, whatever the
    optimizer's conventions) the same conventions; else none, and why: where each option puts λ, or
    the first convention in which a matching one differs."""
    reasons = []
    for kind, candidate in options.items():
        if not _same_bias(explained, candidate):
            reasons.append(f"{kind} {'decays' if candidate.rule.decay_bias else 'spares'} the bias")
            continue
        scaled = scaling(explained, candidate, scheduled)
        told = [f for f in CONVENTIONS if f not in explained.ambiguous and f not in candidate.ambiguous and conventions]
        apart = [f for f in told if getattr(explained.rule, f) != getattr(candidate.rule, f)]
        known = not (multiplier_unseen(explained) or multiplier_unseen(candidate))
        if scaled is not None and known and not apart:
            return Conversion(kind, scaled[0], lr_power=scaled[1])
        where = PLACEMENTS.get(candidate.form.placement, "no decay")
        if scaled is not None and apart:
            source, target = (convention_value(apart[0], getattr(r.rule, apart[0])) for r in (explained, candidate))
            where += f" but its {apart[0]} convention is {target}, the source's {source}"
        reasons.append(f"{kind} is {where}")
    return Conversion(None, reason=", ".join(reasons) or "no API")


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
