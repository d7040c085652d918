"""Which setting of another framework trains as a source API does: read off the two fingerprints'
probes (a rule that puts λ in the same place, with the same conventions), scaled by their multipliers
and the power of lr between them."""

from dataclasses import dataclass

from harness.explain import NONE, PLACEMENTS, Explanation, Form
from harness.fingerprint import api
from harness.oracle import Rule
from harness.verdict import convention_value, conventions, multiplier_unseen, same_bias, scaling

# Rule fields of an optimizer's own conventions
CONVENTIONS = (
    "eps", "momentum_decay", "scale_after_decay", "relative_step", "lr_ignored", "momentum_scaled", "schedule_offset",
)  # fmt: skip


@dataclass(frozen=True)
class Conversion:
    """How a target framework reproduces a source API's run: the API ``kind`` (a ``fingerprint.ApiKey``)
    at λ' = ``factor``·lr^``lr_power``·λ (lr the base learning rate), or, with ``kind`` None, no setting
    does and ``reason`` says why."""

    kind: object
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
        if explained.form.placement == NONE or kind.kind == "l2_loss":
            continue
        targets = {}
        for target in backends:
            if target == source:
                continue
            if reason := convention_gap(by_backend[source], by_backend[target], optimizer):
                targets[target] = Conversion(None, reason=reason)
                continue
            options = {k: e for (b, o, k), e in found.items() if (b, o) == (target, optimizer)}
            preferred = sorted(options, key=lambda k: (k != kind, k.kind != kind.kind, k.kind == "l2_loss"))
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
        if not same_bias(explained, candidate):
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
