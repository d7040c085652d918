"""The semantic fingerprint: what each backend's penalty APIs do with the nominal λ.

Derived by running tiny probe problems through the real adapter and explaining each
trajectory with ``harness.explain``; nothing here is typed in. The probe problem has
two weights and a bias, chosen so the candidate rules part at once:

    x = [[1, 0], [2, 0]], y = [1, −1], w₀ = (1, 1), b₀ = 1, λ = 0.5, lr = 0.1, μ = 0.9,
    batch 1, no shuffling, 3 epochs (6 steps), float64.

The second weight has no data gradient, so only the penalty moves it (a coupled decay
then goes through momentum and Adam's normalisation, a decoupled one does not); the
first has a changing data gradient, so multipliers and Adam's moments show; the bias
starts far from 0, so decaying it shows. Two more probes read the framework's Adam ε
convention (ε = 0.1, comparable to the gradients) and its native loss convention.
"""

import json
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from harness import explain, files
from harness.attempt import attempt, versions
from harness.case import FRAMEWORK_KINDS, Case
from harness.data import Arrays

SCHEMA_VERSION = 2  # 1 (no schema_version): probes keyed by a list or a name, explanations flat, with their text
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam")
KINDS = ("l2_loss", *FRAMEWORK_KINDS)  # the loss penalty, for comparison, and each framework API
BIAS_MODES = (False, True, "default")
CONVENTIONS = {"adam_eps": "Adam's ε convention", "native_loss": "the native loss"}  # name -> label

PROBE = Case().replace({
    "data.n_train": 2, "data.n_test": 1, "data.dim": 2,
    "train.epochs": 3, "train.batch_size": 1, "train.shuffle": False, "train.loss": "half_mse",
    "model.init": "shared", "model.dtype": "float64",
    "optimizer.lr": 0.1, "optimizer.momentum": 0.9, "penalty.strength": 0.5,
})  # fmt: skip
_X = np.array([[1.0, 0.0], [2.0, 0.0]])
PROBE_ARRAYS = Arrays(
    x_train=_X, y_train=np.array([1.0, -1.0]), x_valid=np.zeros((0, 2)), y_valid=np.zeros(0),
    x_test=_X[:1], y_test=np.array([0.0]), w0=np.array([1.0, 1.0]), b0=np.array(1.0),
    batches=np.tile(np.arange(2).reshape(1, 2, 1), (3, 1, 1)),
)  # fmt: skip


class ProbeKey(NamedTuple):
    """A penalty probe: penalty ``kind`` with ``optimizer`` and the bias ``decay_bias`` (a Penalty value)."""

    optimizer: str
    kind: str
    decay_bias: bool | str

    @property
    def label(self):
        bias = str(self.decay_bias).lower() if isinstance(self.decay_bias, bool) else repr(self.decay_bias)
        return f"{self.optimizer} {self.kind} (decay_bias = {bias})"


@dataclass(frozen=True)
class Probe:
    """One probe's outcome: ``status`` ok (the ``api`` that ran, the rule that ``explained`` it),
    unsupported (the framework cannot express it) or error (the framework raised), with a ``reason``."""

    status: str
    reason: str = ""
    api: str | None = None
    explained: explain.Explanation | None = None

    @property
    def matched(self):
        return self.status == "ok" and self.explained.matched

    def outcome(self):
        """One line: what the probe found (an unexplained probe's closest rule with its gap)."""
        return str(self.explained) if self.status == "ok" else f"{self.status}: {self.reason}"

    @property
    def pinned(self):
        """What the golden test compares: the outcome, without an unexplained probe's gap."""
        return self.explained.summary if self.status == "ok" else self.outcome()

    def to_json(self):
        explained = self.explained.to_json() if self.explained else None
        return {"status": self.status, "reason": self.reason, "api": self.api, "explained": explained}

    @classmethod
    def from_json(cls, found):
        explained = found.get("explained")
        return cls(
            found["status"],
            found.get("reason") or "",
            found.get("api"),
            explain.Explanation.from_json(explained) if explained else None,
        )


@dataclass(frozen=True)
class Fingerprint:
    """Every probe of one backend: ``penalties`` by ProbeKey, ``conventions`` by name (CONVENTIONS)."""

    backend: str
    versions: dict
    command: str
    platform: str
    penalties: dict
    conventions: dict

    def to_json(self):
        document = {
            "schema_version": SCHEMA_VERSION,
            "backend": self.backend,
            "versions": self.versions,
            "command": self.command,
            "platform": self.platform,
            "penalties": [key._asdict() | probe.to_json() for key, probe in self.penalties.items()],
            "conventions": [{"name": name} | probe.to_json() for name, probe in self.conventions.items()],
        }
        return json.dumps(document, indent=1, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, document):
        """The Fingerprint of a parsed document of any schema so far; ValueError saying what is wrong."""
        if not isinstance(document, dict):
            raise ValueError("not a fingerprint document (not a JSON object)")
        if "schema_version" not in document:
            document = _update_to_2(document)
        if document["schema_version"] != SCHEMA_VERSION:
            raise ValueError(
                f"schema_version = {document['schema_version']!r}; this decaylens reads 1 to {SCHEMA_VERSION}"
            )
        try:
            penalties = {
                ProbeKey(p["optimizer"], p["kind"], p["decay_bias"]): Probe.from_json(p) for p in document["penalties"]
            }
            conventions = {c["name"]: Probe.from_json(c) for c in document["conventions"]}
            return cls(
                document["backend"],
                document["versions"],
                document["command"],
                document["platform"],
                penalties,
                conventions,
            )
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"malformed fingerprint document ({error!r})") from None

    def save(self, path):
        files.write_atomically(path, self.to_json())

    @classmethod
    def load(cls, path):
        """The fingerprint in ``path``; ValueError naming the file and what is wrong."""
        try:
            return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise ValueError(f"{path}: not a fingerprint document ({error})") from None


_V1_STRENGTH = 0.5  # λ of the penalty probes when fingerprints had no schema_version (conventions: λ = 0)


def _update_to_2(document):
    """Schema 2 keys penalty probes by name (ProbeKey fields) and stores explanations as structures."""
    penalties, conventions = [], []
    for entry in document["probes"]:
        probe = {k: v for k, v in entry.items() if k != "probe"}
        key = entry["probe"]
        if probe.get("explained"):
            strength = _V1_STRENGTH if isinstance(key, list) else 0.0
            probe["explained"] = explain.from_legacy(probe["explained"], strength)
        if isinstance(key, list):
            penalties.append(ProbeKey(*key)._asdict() | probe)
        else:
            conventions.append({"name": key} | probe)
    rest = {k: v for k, v in document.items() if k != "probes"}
    return rest | {"schema_version": 2, "penalties": penalties, "conventions": conventions}


def probe_cases():
    """(ProbeKey, case) of every penalty probe, then (name, case) of every convention probe."""
    for optimizer in OPTIMIZERS:
        for kind in KINDS:
            if kind == "adamw" and optimizer != "adam":
                continue
            for bias in BIAS_MODES:
                if not (bias == "default" and kind == "l2_loss"):
                    values = {"optimizer.name": optimizer, "penalty.kind": kind, "penalty.decay_bias": bias}
                    yield ProbeKey(optimizer, kind, bias), PROBE.replace(values)
    yield "adam_eps", PROBE.replace({"optimizer.name": "adam", "optimizer.eps": 0.1, "penalty.strength": 0.0})
    yield "native_loss", PROBE.replace({"train.loss": "native", "penalty.strength": 0.0})


def probe(backend, adapter, command):
    """Run every probe through ``adapter`` (an exception in one is that probe's ``error``): its Fingerprint."""
    penalties, conventions = {}, {}
    for key, case in probe_cases():
        (tried,) = attempt(adapter, [case], PROBE_ARRAYS)
        if tried.trajectory is None:
            found = Probe(tried.failure, tried.reason)
        else:
            found = Probe(
                "ok", api=tried.trajectory.api, explained=explain.explain(case, PROBE_ARRAYS, tried.trajectory)
            )
        (penalties if isinstance(key, ProbeKey) else conventions)[key] = found
    return Fingerprint(backend, versions(adapter), command, platform.platform(), penalties, conventions)


def changes(golden, fresh):
    """Readable lines for every probe whose pinned outcome differs between two Fingerprints."""

    def probes(document):
        return {key.label: probe for key, probe in document.penalties.items()} | {
            CONVENTIONS[name]: probe for name, probe in document.conventions.items()
        }

    def outcome(probe):
        return probe.outcome() if probe else "not probed"

    before, after = probes(golden), probes(fresh)
    return [
        f"{label}: was {outcome(before.get(label))}, now {outcome(after.get(label))}"
        for label in dict.fromkeys([*before, *after])
        if (before[label].pinned if label in before else None) != (after[label].pinned if label in after else None)
    ]
