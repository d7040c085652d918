"""The semantic fingerprint document: what each probe of one backend found (``harness.probes``
makes it), keyed by what was probed, versioned, migrated from earlier schemas, and compared with
the golden one."""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from backends.contract import Statement
from harness import explain, files, forms, legacy

# The largest fingerprint read: today's are under 2 MB, their call probes' signatures most of it.
FINGERPRINT_BYTES = 32 * 2**20
RELEASES = "releases"  # the subdirectory of the fingerprints of other releases than the pinned ones


def document_path(directory, backend, release=""):
    """Where a fingerprint of ``backend`` lives in ``directory``: ``semantics-<backend>.json``, or for
    a ``release`` other than the pinned one (the release matrix) ``releases/semantics-<backend>@<release>.json``."""
    if release:
        return Path(directory, RELEASES, f"semantics-{backend}@{release}.json")
    return Path(directory, f"semantics-{backend}.json")


# 1 (no schema_version): probes keyed by a list or a name, explanations flat, with their text; 2: keyed by
# NamedTuples, explanations structured (schedules, roles and probes_sha256 came later, with defaults); 3: call probes
SCHEMA_VERSION = 3


class ProbeKey(NamedTuple):
    """A penalty probe: penalty ``kind`` with ``optimizer`` and the bias ``decay_bias`` (a Penalty value),
    called the framework's default way or as its ``variant`` (the adapter's ``VARIANTS``)."""

    optimizer: str
    kind: str
    decay_bias: bool | str
    variant: str = ""

    @property
    def label(self):
        bias = str(self.decay_bias).lower() if isinstance(self.decay_bias, bool) else repr(self.decay_bias)
        return f"{self.optimizer} {api(self)} (decay_bias = {bias})"


class ConventionKey(NamedTuple):
    """A convention probe: which value ``optimizer``'s version follows for the Rule ``field``."""

    optimizer: str
    field: str

    @property
    def label(self):
        return f"{self.optimizer}'s {self.field} convention"


class DefaultKey(NamedTuple):
    """A default probe: the λ penalty ``kind`` of ``optimizer`` applies when given none."""

    optimizer: str
    kind: str

    @property
    def label(self):
        return f"{self.optimizer} {self.kind} given no λ"


class ScheduleKey(NamedTuple):
    """A schedule probe: penalty ``kind`` of ``optimizer`` (bias spared) under the ``schedule`` kind
    of SCHEDULE_PROBES, which tells where λ's decay follows the schedule (``harness.explain``)."""

    optimizer: str
    kind: str
    schedule: str
    variant: str = ""

    @property
    def label(self):
        return f"{self.optimizer} {api(self)} under a {self.schedule} schedule"


class RoleKey(NamedTuple):
    """A role probe: penalty ``kind`` of ``optimizer`` on the probe MLP, asked to spare parameters as
    ``sparing`` says (a key of ``harness.probes.SPARINGS``), which tells which roles the framework's
    idiom really decays; called the default way or as its ``variant``."""

    optimizer: str
    kind: str
    sparing: str
    variant: str = ""

    @property
    def label(self):
        return f"{self.optimizer} {api(self)} on an MLP, {self.sparing}"


class CallKey(NamedTuple):
    """A call probe: how penalty ``kind`` of ``optimizer`` is written with the bias ``decay_bias`` (a
    Penalty value), called the default way or as its ``variant``, under the ``schedule`` kind; every
    number it gives the framework is one of ``harness.forms.SENTINELS`` (its statements show where
    each goes)."""

    optimizer: str
    kind: str
    decay_bias: bool | str
    variant: str = ""
    schedule: str = "constant"

    @property
    def label(self):
        bias = str(self.decay_bias).lower() if isinstance(self.decay_bias, bool) else repr(self.decay_bias)
        under = "" if self.schedule == "constant" else f" under a {self.schedule} schedule"
        return f"how {self.optimizer} {api(self)} (decay_bias = {bias}) is written{under}"


class ApiKey(NamedTuple):
    """A penalty API: its penalty ``kind`` and the adapter's ``variant`` of it ("" for the default call).
    An identity: compared and used as a key; its ``label`` (also its ``str``) only shows it."""

    kind: str
    variant: str = ""

    @property
    def label(self):
        """``adamw``, or with a variant ``adamw [eta_multiplier]``."""
        return f"{self.kind} [{self.variant}]" if self.variant else self.kind

    def __str__(self):
        return self.label


def api(key):
    """The ApiKey of a probe key (one without a variant is the default call)."""
    return ApiKey(key.kind, getattr(key, "variant", ""))


STATUSES = ("ok", "unsupported", "error")  # of a probe


@dataclass(frozen=True)
class Probe:
    """One probe's outcome: ``status`` ok (the ``api`` that ran, the rule that ``explained`` it),
    unsupported (the framework cannot express it) or error (the framework raised), with a ``reason``;
    ``note``: the adapter's account of an unexplained run; ``strength``: a default probe's fitted λ
    (None where no fitted λ explains the run); ``dtype``: the probe's, float32 where the framework
    refuses the float64 probe; ``statements``: a call probe's (``contract.Statement``), with the
    signatures of what they call."""

    status: str
    reason: str = ""
    api: str | None = None
    explained: explain.Explanation | None = None
    note: str = ""
    strength: float | None = None
    dtype: str = "float64"
    statements: tuple = ()

    @property
    def matched(self):
        """An ok probe that a rule explains (a call probe, not explained, never is)."""
        return self.status == "ok" and self.explained is not None and self.explained.matched

    def outcome(self):
        """One line: what the probe found (an unexplained probe's closest rule with its gap, and its account)."""
        if self.status != "ok":
            return f"{self.status}: {self.reason}"
        in_float32 = " (in float32)" if self.dtype != "float64" else ""
        return str(self.explained) + in_float32 + (f"; {self.note}" if self.note and not self.matched else "")

    @property
    def pinned(self):
        """What the golden test compares, as a structure, never its words: the status and reason of a probe
        that did not run; the explanation's ``Outcome`` (no gap), dtype and a default probe's fitted λ; for a
        call probe, where each value goes and the defaults there (``forms.pinned``)."""
        if self.status != "ok":
            return self.status, self.reason
        if self.explained is None:
            return forms.pinned(self.statements)
        # a fitted λ to 6 significant digits, as its text showed it: its last bits vary by CPU
        fitted = None if self.strength is None else float(f"{self.strength:g}")
        return self.explained.outcome, self.dtype, fitted

    def to_json(self):
        explained = self.explained.to_json() if self.explained else None
        found = {"status": self.status, "reason": self.reason, "api": self.api, "explained": explained,
                 "note": self.note, "strength": self.strength, "dtype": self.dtype}  # fmt: skip
        if self.statements:
            found["statements"] = [[s.kind, s.text, {p: list(map(list, sig)) for p, sig in s.signatures.items()}]
                                   for s in self.statements]  # fmt: skip
        return found

    @classmethod
    def from_json(cls, found):
        explained = found.get("explained")
        statements = tuple(
            Statement(kind, text, {path: tuple(map(tuple, sig)) for path, sig in signatures.items()})
            for kind, text, signatures in found.get("statements", ())
        )
        return cls(
            found["status"], found.get("reason") or "", found.get("api"),
            explain.Explanation.from_json(explained) if explained else None,
            found.get("note") or "", found.get("strength"), found.get("dtype", "float64"), statements,
        )  # fmt: skip


# document part -> its key
KEYS = {
    "penalties": ProbeKey, "conventions": ConventionKey, "defaults": DefaultKey, "schedules": ScheduleKey,
    "roles": RoleKey, "calls": CallKey,
}  # fmt: skip


@dataclass(frozen=True)
class Fingerprint:
    """Every probe of one backend, by kind: ``penalties`` by ProbeKey, ``conventions`` by
    ConventionKey, ``defaults`` by DefaultKey, ``schedules`` by ScheduleKey, ``roles`` by RoleKey,
    ``calls`` by CallKey (each of the last three empty in a document written before they were probed);
    ``probes_sha256``: of every probe's key and case id (``probes.digest``), "" in a document written
    before it was kept."""

    backend: str
    versions: dict
    command: str
    platform: str
    penalties: dict
    conventions: dict
    defaults: dict
    schedules: dict
    roles: dict
    calls: dict = field(default_factory=dict)
    probes_sha256: str = ""

    @property
    def probes(self):
        """Every (key, Probe) of every kind."""
        return [item for part in KEYS for item in getattr(self, part).items()]

    def to_json(self):
        document = {"schema_version": SCHEMA_VERSION, "backend": self.backend, "versions": self.versions,
                    "command": self.command, "platform": self.platform,
                    "probes_sha256": self.probes_sha256}  # fmt: skip
        for part in KEYS:
            document[part] = [key._asdict() | probe.to_json() for key, probe in getattr(self, part).items()]
        return json.dumps(document, indent=1, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, document):
        """The Fingerprint of a parsed document of any schema so far; ValueError saying what is wrong."""
        if not isinstance(document, dict):
            raise ValueError("not a fingerprint document (not a JSON object)")
        version = document.get("schema_version", 1)
        if not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION:
            raise ValueError(f"schema_version = {version!r}; this decaylens reads 1 to {SCHEMA_VERSION}")
        try:
            for update in _MIGRATIONS[version - 1 :]:
                document = update(document)
        except (KeyError, TypeError, AttributeError, ValueError) as error:
            raise ValueError(f"malformed schema {version} fingerprint document ({error!r})") from None
        try:
            parts = {
                part: {
                    key(*(entry[f] if f in entry else key._field_defaults[f] for f in key._fields)): Probe.from_json(
                        entry
                    )
                    for entry in document.get(part, [])
                }
                for part, key in KEYS.items()
            }
            top = [document[field] for field in ("backend", "versions", "command", "platform")]
            found = cls(*top, **parts, probes_sha256=document.get("probes_sha256", ""))
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"malformed fingerprint document ({error!r})") from None
        return found.check()

    def check(self):
        """This fingerprint, when its fields have their types and each probe is one of ``STATUSES``, an ok
        one explained (or a call probe's statements); ValueError naming the first that is not."""
        text = [self.backend, self.command, self.platform, self.probes_sha256]
        if not all(isinstance(value, str) for value in text) or not isinstance(self.versions, dict):
            raise ValueError("malformed fingerprint document (backend, versions, command or platform)")
        for key, probe in self.probes:
            if probe.status not in STATUSES or not isinstance(probe.reason, str):
                raise ValueError(f"malformed probe {key.label}: status {probe.status!r}")
            if probe.status == "ok" and probe.explained is None and not isinstance(key, CallKey):
                raise ValueError(f"malformed probe {key.label}: ok, and no rule")
        return self

    def save(self, path):
        files.write_atomically(path, self.to_json())

    @classmethod
    def load(cls, path):
        """The fingerprint in ``path`` (a regular file of at most FINGERPRINT_BYTES); ValueError naming the
        file and what is wrong."""
        try:
            return cls.from_json(json.loads(files.read_bounded(path, FINGERPRINT_BYTES)))
        except (ValueError, RecursionError) as error:
            raise ValueError(f"{path}: not a fingerprint document ({error})") from None


_V1_STRENGTH = 0.5  # λ of the penalty probes when fingerprints had no schema_version (conventions: λ = 0)
_V1_CONVENTIONS = {"adam_eps": ("adam", "eps"), "native_loss": ("sgd", "loss")}


def _update_to_2(document):
    """Schema 2 keys probes by name (the fields of ProbeKey, ConventionKey) and stores explanations
    as structures."""
    penalties, conventions = [], []
    for entry in document["probes"]:
        probe = {k: v for k, v in entry.items() if k != "probe"}
        key = entry["probe"]
        if probe.get("explained"):
            strength = _V1_STRENGTH if isinstance(key, list) else 0.0
            probe["explained"] = legacy.explanation(probe["explained"], strength)
        if isinstance(key, list):
            penalties.append(ProbeKey(*key)._asdict() | probe)
        else:
            conventions.append(ConventionKey(*_V1_CONVENTIONS[key])._asdict() | probe)
    rest = {k: v for k, v in document.items() if k != "probes"}
    return rest | {"schema_version": 2, "penalties": penalties, "conventions": conventions, "defaults": []}


def _update_to_3(document):
    """Schema 3 adds the call probes (``calls``); a schema 2 document has none."""
    return document | {"schema_version": 3, "calls": document.get("calls", [])}


_MIGRATIONS = (_update_to_2, _update_to_3)  # _MIGRATIONS[v - 1] reads schema v as v + 1


def changes(golden, fresh):
    """Readable lines for every probe whose pinned outcome differs between two Fingerprints."""
    before = {key.label: probe for key, probe in golden.probes}
    after = {key.label: probe for key, probe in fresh.probes}

    def outcome(probe):
        return probe.outcome() if probe else "not probed"

    return [
        f"{label}: was {outcome(before.get(label))}, now {outcome(after.get(label))}"
        for label in dict.fromkeys([*before, *after])
        if (before[label].pinned if label in before else None) != (after[label].pinned if label in after else None)
    ]
