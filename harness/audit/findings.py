"""An audit's findings, one per parameter tensor, and the flags a demanding user wants raised: the
``Audit`` document (``decaylens audit --json``), typed and versioned like the others."""

import json
import math
from collections import Counter
from dataclasses import asdict, dataclass, field

from backends.contract import ROLES
from harness.audit import measure

SCHEMA_VERSION = 1
KIND = "decaylens-audit"
AUDIT_BYTES = 64 * 2**20  # the largest audit read: a 110 M-parameter model's has about 200 tensors
# Flag -> what it says of a parameter.
FLAGS = {
    "decays_norm": "a norm scale or shift that is decayed",
    "decays_bias": "a bias that is decayed",
    "decays_embedding": "an embedding, positional embedding or token that is decayed",
    "grows": 'a "decay" that grows the parameter',
    "rounds_away": "a decay that rounds away in the parameter's dtype",
    "never_updated": "a parameter the optimizer never updates",
    "two_groups": "a parameter in two of the optimizer's groups",
    "mixed_meaning": "one λ that means different things for different groups",
    "nonfinite": "a step that made the parameter NaN or infinite",
}
UNMOVED = ("none", "frozen", "nonfinite")  # the placements with no decay to speak of
DECAYED_FLAGS = {"norm_scale": "decays_norm", "norm_shift": "decays_norm", "bias": "decays_bias",
                 "embedding": "decays_embedding", "positional": "decays_embedding"}  # fmt: skip


@dataclass(frozen=True)
class Finding:
    """What the optimizer does to one parameter tensor (``name``, ``role``: backends.contract.ROLES).
    ``placement``, ``k``, ``lr``: measure.Measured; ``factor``: w's factor per step in the first
    step, 1 − s₁; ``decay``: s₁ = 1 − factor, the fraction of w the first step takes (negative: it
    grows); ``lambda_eff``: s₁ / lr, the λ of a decay × lr that would shrink as much; ``tau``: 1/s₁
    steps, the decay's timescale (None where it does not shrink); ``lrs``: the lr each audited step
    used where the optimizer states it."""

    name: str
    role: str
    shape: tuple
    dtype: str
    groups: tuple
    nominal: dict
    placement: str
    k: float | None
    factor: float | None
    lr: float | None
    lrs: tuple
    flags: tuple = field(default=())

    @property
    def decay(self):
        return None if self.factor is None else 1.0 - self.factor

    @property
    def decays(self):
        return self.placement not in UNMOVED and self.decay is not None and self.decay > 0

    @property
    def lambda_eff(self):
        lr = self.nominal.get("lr") or self.lr
        return self.decay / lr if lr and self.decay is not None and self.placement not in UNMOVED else None

    @property
    def tau(self):
        return 1.0 / self.decay if self.decays else None


def finding(parameter, measured, lrs):
    """The Finding of one ``backends.contract.Parameter``, before the flags that compare parameters."""
    return Finding(
        parameter.name, parameter.role, tuple(parameter.shape), parameter.dtype, tuple(parameter.groups),
        dict(parameter.nominal), measured.placement, measured.k,
        measured.factor if math.isfinite(measured.factor) else None,
        measured.lr if math.isfinite(measured.lr) else None,
        tuple(float(lr) if math.isfinite(lr) else None for lr in lrs), _own_flags(parameter, measured),
    )  # fmt: skip


def _own_flags(parameter, measured):
    if measured.placement == "nonfinite":
        return ("nonfinite",)
    flags = []
    decays = measured.placement not in ("none", "frozen") and measured.shrinks[0] > 0
    if decays and parameter.role in DECAYED_FLAGS:
        flags.append(DECAYED_FLAGS[parameter.role])
    if measured.placement not in ("none", "frozen") and measured.shrinks[0] < 0:
        flags.append("grows")
    if measured.placement == "none" and _rounds_away(parameter):
        flags.append("rounds_away")
    if measured.placement == "frozen":
        flags.append("never_updated")
    if len(parameter.groups) > 1:
        flags.append("two_groups")
    return tuple(flags)


def _rounds_away(parameter):
    """The group states a decay lr·λ > 0 below the dtype's roundoff and the zero-gradient run left w as it was."""
    lr, decay = parameter.nominal.get("lr"), parameter.nominal.get("weight_decay")
    roundoff = measure.ROUNDOFF.get(parameter.dtype)
    return bool(lr and decay and roundoff) and lr * decay < roundoff


def with_shared_flags(findings):
    """``findings`` with mixed_meaning on every decayed parameter whose nominal λ others share with
    another placement (coupled for one group, decoupled for another; under plain SGD the two are one update,
    which agrees with either)."""
    placements = {}
    for f in findings:
        if f.decays and f.nominal.get("weight_decay") and f.placement != "coupled_or_decoupled_lr":
            placements.setdefault(f.nominal["weight_decay"], set()).add(f.placement)
    mixed = {decay for decay, found in placements.items() if len(found) > 1}
    return [
        f if f.nominal.get("weight_decay") not in mixed or not f.decays else _flagged(f, "mixed_meaning")
        for f in findings
    ]


def _flagged(f, flag):
    return Finding(**{**asdict(f), "flags": (*f.flags, flag)})


@dataclass(frozen=True)
class Audit:
    """One audit: the user's ``target`` (FILE.py:FUNCTION) on ``backend`` at ``versions``, its
    ``optimizer`` (and ``scheduler``) as built, and a Finding per parameter tensor."""

    target: str
    backend: str
    versions: dict
    optimizer: str
    scheduler: str | None
    findings: tuple

    def counts(self):
        """({role: tensors}, {role: decayed tensors}, {flag: tensors}) in ROLES and FLAGS order."""
        roles = Counter(f.role for f in self.findings)
        decayed = Counter(f.role for f in self.findings if f.decays)
        flags = Counter(flag for f in self.findings for flag in f.flags)
        return (
            {r: roles[r] for r in ROLES if roles[r]},
            {r: decayed[r] for r in ROLES if roles[r]},
            {flag: flags[flag] for flag in FLAGS if flags[flag]},
        )

    def offending(self, *roles):
        """The findings of ``roles`` (a role, or ``norm`` for both norm roles) that are decayed."""
        wanted = {r for role in roles for r in (("norm_scale", "norm_shift") if role == "norm" else (role,))}
        unknown = wanted - set(ROLES)
        if unknown:
            raise ValueError(f"no role {sorted(unknown)}; roles: norm, {', '.join(ROLES)}")
        return [f for f in self.findings if f.role in wanted and f.decays]

    def to_json(self):
        document = {"schema_version": SCHEMA_VERSION, "kind": KIND, **asdict(self)}
        document["findings"] = [{**asdict(f), "shape": list(f.shape), "groups": list(f.groups)} for f in self.findings]
        return json.dumps(document, indent=1, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text):
        """The Audit in ``text``; ValueError naming the first field that is not as written."""
        document = json.loads(text)
        if not isinstance(document, dict) or document.get("kind") != KIND:
            raise ValueError(f"not a decaylens audit (no kind = {KIND!r})")
        if document.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(
                f"schema_version = {document.get('schema_version')!r}; this decaylens reads {SCHEMA_VERSION}"
            )
        findings = tuple(_read_finding(f) for f in _typed(document, "findings", list))
        strings = {key: _typed(document, key, str) for key in ("target", "backend", "optimizer")}
        scheduler = document.get("scheduler")
        if scheduler is not None and not isinstance(scheduler, str):
            raise ValueError("scheduler is not a string")
        return cls(**strings, versions=_typed(document, "versions", dict), scheduler=scheduler, findings=findings)


def _typed(document, key, kind):
    value = document.get(key)
    if not isinstance(value, kind):
        raise ValueError(f"{key} is not a {kind.__name__}")
    return value


def _read_finding(document):
    if not isinstance(document, dict) or set(document) != set(Finding.__dataclass_fields__):
        raise ValueError("a finding does not have the fields of one")
    if document["role"] not in ROLES or not set(document["flags"]) <= set(FLAGS):
        raise ValueError(f"finding {document['name']!r}: an unknown role or flag")
    factor = document["factor"]
    if factor is not None and (not isinstance(factor, int | float) or not math.isfinite(factor)):
        raise ValueError(f"finding {document['name']!r}: factor is not a finite number")
    return Finding(**{**document, "shape": tuple(document["shape"]), "groups": tuple(document["groups"]),
                      "lrs": tuple(document["lrs"]), "flags": tuple(document["flags"])})  # fmt: skip
