"""``decaylens port``: a user's optimizer code in one framework, and the lines of another that train alike.

Everything comes from the two backends' fingerprints. The code, parsed (never run), is read as one
of the source's call probes (``harness.port.read``): its API, its bias handling, and every value,
the framework's default where the code gives none. The source's penalty probe of that API says what
its λ does; the target's probes of the same optimizer are tried as ``equivalents.convert`` tries them
(its own API of the same kind first, decaying the bias as the source does); the answer is the
target's call probe written with the user's values and λ' = factor·lr^p·λ (``harness.port.write``),
or why no setting trains alike. ``harness.port.check`` runs both as written.
"""

import dataclasses
from dataclasses import dataclass

from harness import equivalents, forms
from harness.case import Case
from harness.errors import SpecError, UsageError
from harness.explain import PLACEMENTS
from harness.fingerprint import ApiKey, CallKey, ProbeKey, api
from harness.forms import STEPS
from harness.port import target as written_in
from harness.port.source import Reading, read
from harness.probes import SCHEDULE_PROBES

__all__ = ("Answer", "Reading", "describe", "port", "read", "reading", "validated")


def validated(reading):
    """The reading, its values checked as a spec's are (lr > 0, λ ≥ 0, β and μ in range); UsageError
    naming the first that is not."""
    values = {field: value for field, value in reading.values.items() if field != STEPS}
    try:
        case = Case().replace({"optimizer.name": reading.key.optimizer, **values})
    except SpecError as error:
        raise UsageError(f"the code's {error}") from None
    except OverflowError:
        raise UsageError("the code holds a number too large for a float; allowed: numbers a float holds") from None
    if reading.values.get(STEPS, 1) < 1:
        raise UsageError(f"the code's schedule runs {reading.values[STEPS]} steps; allowed: at least 1")
    typed = {field: getattr(getattr(case, field.split(".")[0]), field.split(".")[1]) for field in values}
    return dataclasses.replace(reading, values=reading.values | typed)  # 0 as 0.0 where the field is a float


@dataclass(frozen=True)
class Answer:
    """What ``port`` prints for one target: the ``reading`` of the user's code, the rule its API follows
    (``source``, the source's penalty probe), and the target's ``printed`` statements that train alike
    (empty when no setting does: ``conversion.reason`` says why), with λ' (``strength``), the target's
    API (``key``) and the rule it follows (``rule``); ``bindings``: the target probe's statements that
    give the user's names a meaning on its model (run first by --check); ``unwritten``: the user's values
    that the target's API has no place for; ``caveat``: a convention of the optimizer in which the
    two frameworks differ (the decay is the same, the steps apart by it)."""

    reading: Reading
    source: object
    target: str
    conversion: equivalents.Conversion
    key: CallKey | None = None
    strength: float | None = None
    printed: tuple = ()
    bindings: tuple = ()
    rule: object = None
    unwritten: tuple = ()
    caveat: str = ""


def port(reading, source_fingerprint, target_fingerprint):
    """The Answer to "what is this code of the source's framework in the target's?"."""
    key, target = reading.key, target_fingerprint.backend
    probe = source_fingerprint.penalties.get(ProbeKey(key.optimizer, key.kind, key.decay_bias, key.variant))
    if probe is None or not probe.matched:
        why = probe.outcome() if probe is not None else "not probed"
        reason = f"no rule explains {source_fingerprint.backend}'s probe of it: {why}"
        return Answer(reading, probe, target, equivalents.Conversion(None, reason=reason))
    explained = probe.explained
    if growth := [form for form in explained.forms if form.multiplier < 0]:
        reason = (
            f"its probe follows {growth[0].name}: each step adds λ·w to w, so every weight grows by ×(1 + λ) a step "
            f"(×{1 + reading.strength:.10g} here) where a decay would shrink it; no setting of the target's decays so"
        )
        return Answer(reading, probe, target, equivalents.Conversion(None, reason=reason))
    options = _options(target_fingerprint, key.optimizer, key.kind, explained.rule.decay_bias)
    if reading.strength == 0:  # no decay: any of the target's APIs at λ' = 0 trains alike
        conversion = equivalents.Conversion(next(iter(options), None), 1.0, reason="the target has no probed API")
    else:
        explanations = {label: p.explained for label, (_, p) in options.items()}
        conversion = equivalents.convert(explained, explanations, conventions=False)
    if conversion.kind is None:
        return Answer(reading, probe, target, conversion)
    found, rule = options[conversion.kind]
    strength = written_in.short(conversion.factor * reading.lr**conversion.lr_power * reading.strength)
    call = CallKey(*found, schedule=key.schedule)
    written = target_fingerprint.calls.get(call._replace(schedule="constant"))
    if written is None or written.status != "ok":
        why = "not probed (probe it again)" if written is None else written.outcome()
        reason = f"{target}'s call probe of {key.optimizer} {api(found)}: {why}"
        return Answer(reading, probe, target, equivalents.Conversion(None, reason=reason))
    values = reading.values | {"penalty.strength": strength}
    try:
        printed, bindings = written_in.lines(target_fingerprint, call, values, reading.names)
    except LookupError as error:
        return Answer(reading, probe, target, equivalents.Conversion(None, reason=str(error)))
    printed = [s for s in printed if s.kind != "penalty" or strength]  # λ' = 0: no penalty to write
    # the native loss's convention is the user's loss line, not the optimizer call's
    caveat = equivalents.convention_gap(source_fingerprint, target_fingerprint, key.optimizer, skip=("loss",))
    if (
        not caveat
        and reading.strength
        and (apart := equivalents.convert(explained, {conversion.kind: rule.explained})).kind is None
    ):
        caveat = apart.reason
    caveat = caveat or _schedule_gap(source_fingerprint, target_fingerprint, key)
    unwritten = _unwritten(reading, target_fingerprint.calls[call._replace(schedule="constant")])
    return Answer(
        reading, probe, target, conversion, call, strength, tuple(printed), tuple(bindings), rule, unwritten, caveat
    )


def _schedule_gap(source, target, key):
    """How the two frameworks' schedules count steps apart (the first step reading η₀ or η₁), from the
    schedule probes of ``key``'s optimizer and schedule kind (a cosine's: its warmup probe's); "" when
    they count alike or the code has no schedule."""
    if key.schedule == "constant":
        return ""
    probed = key.schedule if key.schedule in SCHEDULE_PROBES else "warmup_cosine"  # a cosine, as its warmup probe's
    found = []
    for fingerprint in (source, target):
        offsets = {p.explained.rule.schedule_offset for k, p in fingerprint.schedules.items()
                   if (k.optimizer, k.schedule) == (key.optimizer, probed) and p.matched}  # fmt: skip
        found.append(offsets)
    if not all(len(offsets) == 1 for offsets in found) or found[0] == found[1]:
        return ""
    (mine,), (theirs,) = found
    return f"a schedule's first step reads η{'₀₁'[mine]} in {source.backend}, η{'₀₁'[theirs]} in {target.backend}"


def _options(fingerprint, optimizer, kind, decay_bias):
    """{ApiKey: (key, probe)} of the target's matched penalty probes of ``optimizer``, each API once, in
    ``equivalents.conversions``' preference (the same kind first, l2_loss last): the probe that says
    nothing of the bias where it decays the bias as the source does, else the one that asks for it."""
    found = {}
    for key, probe in fingerprint.penalties.items():
        if key.optimizer != optimizer or not probe.matched:
            continue
        if key.decay_bias == "default" and probe.explained.rule.decay_bias != decay_bias:
            continue
        if key.decay_bias in ("default", decay_bias):
            label = api(key)
            if label not in found or key.decay_bias == "default":
                found[label] = (key, probe)
    return dict(
        sorted(
            found.items(), key=lambda item: (item[0] != ApiKey(kind), item[0].variant != "", item[0].kind == "l2_loss")
        )
    )


def _unwritten(reading, probe):
    """The source's values, given or defaulted, that the target's call probe has no place for."""
    placed = {
        e[1]
        for s in probe.statements
        for e in forms.slots(forms.Parsed(s.text, s.signatures, s.kind), forms.ALL_SENTINELS).values()
    }
    skipped = {"optimizer.lr", "penalty.strength", STEPS} | {f for f in reading.values if f.startswith("schedule.")}
    return tuple(f"{f} = {v:g}" for f, v in reading.values.items() if f not in placed and f not in skipped)


def reading(answer_or_reading, rule=None):
    """The line that says what ``port`` read the user's code as."""
    found = answer_or_reading.reading if isinstance(answer_or_reading, Answer) else answer_or_reading
    rule = rule if rule is not None else getattr(answer_or_reading, "source", None)
    key = found.key
    given = [f"{_name(f)} = {v:g}" + (" (default)" if f in found.defaulted else "") for f, v in found.values.items()]
    bias = {False: "its bias-sparing idiom", True: "decaying the bias", "default": "the bias as the API does"}
    what = f"{key.optimizer} {api(key)}, {bias[key.decay_bias]}" + (
        f", a {key.schedule} schedule" if key.schedule != "constant" else ""
    )
    lines = [f"  read as {what}: {', '.join(given)}"]
    if rule is not None and rule.status == "ok":
        lines.append(f"  rule: {rule.explained}; {_per_step(rule.explained, found.lr, found.strength)}")
    if found.groups:
        lines.append(
            "  groups: " + "; ".join(f"{p} (λ = {g if g is not None else 'default'})" for p, g, _ in found.groups)
        )
    if found.left_out:
        lines.append(f"  not carried over (decaylens has no such value): {', '.join(found.left_out)}")
    return lines


def _name(field):
    return field.rpartition(".")[2]


def _per_step(explained, lr, strength):
    """The decay per step (lr·λ_eff, or λ_eff where the lr does not multiply it) and its timescale τ."""
    form = explained.form
    if not strength:
        return "λ = 0: no decay"
    if form.placement not in PLACEMENTS or form.placement in ("lr_decay", "l1"):
        return "no decay per step to state"
    effective = form.multiplier * strength
    per_step = effective if form.placement in ("decoupled", "decoupled_multiplier") else lr * effective
    if per_step <= 0:
        return f"each step adds {-per_step:.3g}·w"
    return f"decays w by {per_step:.3g} of itself a step (τ = 1/{per_step:.3g} = {1 / per_step:.3g} steps)"


def _sparing(name):
    """Whether a name of the probe's statements stands for its sparing idiom (a parameter list, a mask, a filter)."""
    return any(word in name for word in ("spared", "decayed", "mask", "lambda"))


def describe(answer):
    """The lines ``decaylens port`` prints for an Answer's target."""
    if not answer.printed:
        return [f"{answer.target}: no setting trains alike: {answer.conversion.reason}"]
    factor, power = answer.conversion.factor, answer.conversion.lr_power
    scaled = f"{factor:g}" + (f"·lr^{power}" if power else "")
    bias = answer.key.decay_bias
    asked = "" if bias == "default" else f", {'decaying' if bias else 'sparing'} the bias as the source does"
    lines = [f"{answer.target}:"]
    lines += [f"  {s.text}" if s.kind != "note" else f"  # {s.text}" for s in answer.printed]
    lines.append(f"  # {answer.conversion.kind} at λ' = {scaled}·λ = {answer.strength:g}{asked}")
    lines.append(
        f"  # rule: {answer.rule.explained}; {_per_step(answer.rule.explained, answer.reading.lr, answer.strength)}"
    )
    probe_names = [name for name in ("spared", "decayed", "mask") if any(name in s.text for s in answer.printed)]
    if answer.reading.key.decay_bias is False and probe_names:
        yours = [*answer.reading.sparing, *(v for k, v in answer.reading.names.items() if _sparing(k))]
        lines.append(
            f"  # {', '.join(probe_names)}: the probe model's; write yours, to spare what your code spares"
            + (f" ({'; '.join(dict.fromkeys(yours))})" if yours else "")
        )
    if answer.unwritten:
        lines.append(f"  # not written (the target's API has no such argument): {', '.join(answer.unwritten)}")
    if answer.caveat:
        lines.append(f"  # but {answer.caveat}: the decay is the same, the steps part by it (--check measures how far)")
    return lines
