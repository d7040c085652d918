"""Judgements read off the fingerprints: what each API's λ does, whether it is an L2 penalty in
the loss, and which setting of another framework gives the same training. Plain data: the
report renders it, the tests check it from small fingerprints."""

from dataclasses import dataclass

from harness.explain import NONE, PLACEMENTS
from harness.fingerprint import BIAS_MODES, KINDS, OPTIMIZERS, ProbeKey


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
    """Whether the probe's run decayed the bias; None if it found no rule."""
    return probe.explained.rule.decay_bias if probe.matched else None


def semantics(fingerprints):
    """A Semantics per backend × optimizer × API probed, in OPTIMIZERS and KINDS order."""
    found = []
    for fingerprint in fingerprints:
        for optimizer in OPTIMIZERS:
            for kind in KINDS:
                probes = [fingerprint.penalties.get(ProbeKey(optimizer, kind, bias)) for bias in BIAS_MODES]
                if probes[0] is not None:
                    found.append(Semantics(fingerprint.backend, optimizer, kind, *probes))
    return found


def conventions(fingerprint):
    """{"Adam ε": "after_correction" | "before_correction", "native loss": "half_mse" | "mse"}
    from the convention probes; a probe that found no rule gives its outcome instead."""
    eps, loss = fingerprint.conventions["adam_eps"], fingerprint.conventions["native_loss"]
    return {
        "Adam ε": eps.explained.rule.adam_eps if eps.matched else eps.outcome(),
        "native loss": loss.explained.rule.loss if loss.matched else loss.outcome(),
    }


def scale(source, target):
    """k_source / k_target for the first place λ enters in both Explanations (their own rule or an
    equivalent one), so that the target at λ' = scale·λ follows the source at λ; None if they
    share no place."""
    for form in source.forms:
        for other in target.forms:
            if form.placement == other.placement != NONE:
                return form.multiplier / other.multiplier
    return None


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
    ``reason`` says why), ``unsupported`` or ``unexplained`` (``reason``: the probe's outcome)."""

    outcome: str
    factor: float | None = None
    reason: str = ""


def verdict(probe, l2_probe, optimizer):
    """The Verdict of ``probe`` (an API, bias spared) against ``l2_probe`` with ``optimizer``."""
    if probe.status != "ok":
        return Verdict(probe.status, reason=probe.reason)
    if not (probe.matched and l2_probe.matched):
        return Verdict("unexplained", reason=(l2_probe if probe.matched else probe).outcome())
    api, l2 = probe.explained, l2_probe.explained
    if api.rule.decay_bias != l2.rule.decay_bias:
        return Verdict("never", reason="cannot spare the bias")
    factor = scale(l2, api)
    if factor is not None:
        return Verdict("same") if factor == 1 else Verdict("convert", factor)
    why = {
        NONE: "λ has no effect",
        "decoupled": "λ is not multiplied by lr",
        "decoupled_lr": "λ bypasses " + ("Adam's normalisation" if optimizer == "adam" else "momentum"),
    }.get(api.form.placement, PLACEMENTS.get(api.form.placement, api.form.placement))
    return Verdict("never", reason=f"{why} ({api.form.name})")


@dataclass(frozen=True)
class Conversion:
    """How a target framework reproduces a source API's run: penalty ``kind`` at λ' = ``factor``·λ,
    or, with ``kind`` None, no setting does and ``reason`` says why."""

    kind: str | None
    factor: float | None = None
    reason: str = ""


def conversions(fingerprints):
    """For every backend × optimizer × API (bias spared) whose λ has an effect, the Conversion of
    each other backend: ``{(source, optimizer, kind): {target: Conversion}}``.

    A target API matches when it puts λ in the same place (the same oracle rule up to the
    multiplier); its λ is then scaled by k_source / k_target. With Adam the two backends must
    also place ε alike (their ε probes), or no setting reproduces the run exactly. The
    target's own API of the same kind is tried first, l2_loss last.
    """
    found, eps = {}, {}
    for fingerprint in fingerprints:
        probe = fingerprint.conventions["adam_eps"]
        if probe.matched:
            eps[fingerprint.backend] = probe.explained.rule.adam_eps
        for key, probe in fingerprint.penalties.items():
            if key.decay_bias is False and probe.matched:
                found[fingerprint.backend, key.optimizer, key.kind] = probe.explained
    backends = list(dict.fromkeys(backend for backend, _, _ in found))
    result = {}
    for (source, optimizer, kind), explained in found.items():
        if explained.form.placement == NONE or kind == "l2_loss":
            continue
        targets = {}
        for target in backends:
            if target == source:
                continue
            if optimizer == "adam" and eps.get(source) != eps.get(target):
                where = {b: eps.get(b, "?").replace("_", " ") for b in (source, target)}
                reason = f"Adam's ε sits {where[source]} in {source}, {where[target]} in {target}"
                targets[target] = Conversion(None, reason=reason)
                continue
            options = {k: e for (b, o, k), e in found.items() if (b, o) == (target, optimizer)}
            preferred = sorted(options, key=lambda k: (k != kind, k == "l2_loss"))
            targets[target] = _convert(explained, {k: options[k] for k in preferred})
        result[source, optimizer, kind] = targets
    return result


def _convert(explained, options):
    for kind, candidate in options.items():
        factor = scale(explained, candidate)
        if factor is not None:
            return Conversion(kind, factor)
    places = [f"{kind} is {PLACEMENTS.get(c.form.placement, 'no decay')}" for kind, c in options.items()]
    return Conversion(None, reason=", ".join(places) or "no API")
