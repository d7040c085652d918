"""Results: one typed, versioned document per (backend, case) at ``<results>/<backend>/<case_id>.json``.

Files are written to a temporary name in the same directory and renamed, so a reader never
sees a half-written file, whatever happens to the writer. A file of an earlier schema is
read through one migration per schema change (``_MIGRATIONS``), as asv reads its results.
"""

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from backends.contract import Statement
from harness import explain, files, legacy, problems
from harness.case import Case
from harness.errors import SpecError
from harness.fingerprint import RELEASES

SCHEMA_VERSION = 4
STATUSES = ("ok", "diverged", "unsupported", "error")
TRAINED = ("ok", "diverged")  # statuses whose results hold a trajectory


@dataclass(frozen=True)
class Steps:
    """Per optimizer step, index 0 = the initial weights: the training loss (mean ½e², no
    penalty) and ‖w‖₂ (of every weight); for an MLP, each tensor's norm ‖Wₗ‖_F, ‖bₗ‖₂ by name
    (``harness.network.tensors``), else None."""

    train_loss: list
    w_norm: list
    tensor_norms: dict | None = None


@dataclass(frozen=True)
class Epochs:
    """Per epoch, index 0 = the initial weights: the test and validation loss (mean ½e²);
    ``valid_loss`` is None without a validation set."""

    test_loss: list
    valid_loss: list | None


@dataclass(frozen=True)
class Final:
    """After the last step: the weights, the bias (an MLP's every bias, a list), ‖w‖₂, and the
    training and test loss (mean ½e²)."""

    w: list
    b: float | list
    w_norm: float
    train_loss: float
    test_loss: float


@dataclass(frozen=True)
class Result:
    """One backend's run of one case, as stored.

    ``statements``: the native calls and code that ran (``contract.Statement``s, their text only), ``api``
    the same as one line; ``steps``, ``epochs``, ``final``: for a run that trained
    (``TRAINED``), cut before the first non-finite step of a diverged one; ``explained``: the
    rule that reproduces an ok run; ``note``: the adapter's account of an ok run no rule reproduces
    (its ``OWN_BEHAVIOURS``); ``hyperparameter_dtype``: the precision the framework applied its
    hyperparameters in, or computed the update in (``contract.Trajectory``); ``traceback``: of an
    ``error``; ``seconds``: the training's wall time.
    """

    backend: str
    versions: dict
    case: Case
    data_sha256: str
    status: str
    reason: str = ""
    statements: tuple | None = None
    steps: Steps | None = None
    epochs: Epochs | None = None
    final: Final | None = None
    seconds: float | None = None
    hyperparameter_dtype: str | None = None
    explained: explain.Explanation | None = None
    note: str = ""
    traceback: str | None = None
    created: str | None = None
    platform: str | None = None

    @property
    def case_id(self):
        return self.case.id

    @property
    def api(self):
        """The statements that ran as one line of text, ``; ``-joined (None where none ran)."""
        return "; ".join(s.text for s in self.statements) if self.statements else None

    @property
    def trained(self):
        return self.status in TRAINED

    @property
    def ok(self):
        return self.status == "ok"

    def check(self):
        """This result, when each field has its type and a trained run's trajectory has its case's shape,
        finite: what a report may read; BadResult naming the first field that is not."""
        if problem := problems.problem(self.case):
            raise BadResult(f"its case is one decaylens run refuses ({problem})")
        _of("backend", self.backend, str)
        _of("versions", self.versions, dict)
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in self.versions.items()):
            raise BadResult("versions: not {package: version} text")
        for name in ("reason", "note"):
            _of(name, getattr(self, name), str)
        for name in ("traceback", "created", "platform"):
            _of(name, getattr(self, name), str, none=True)
        _of("statements", self.statements, tuple, none=True)
        if not all(s.kind in Statement.KINDS and isinstance(s.text, str) for s in self.statements or ()):
            raise BadResult("statements: not [kind, text] pairs of statement kinds")
        if self.seconds is not None and not _number(self.seconds, at_least=0):
            raise BadResult(f"seconds = {self.seconds!r}: not a time")
        if self.hyperparameter_dtype not in (None, "float32", "float64"):
            raise BadResult(f"hyperparameter_dtype = {self.hyperparameter_dtype!r}: not a dtype")
        parts = (self.steps, self.epochs, self.final)
        if not self.trained:
            if any(part is not None for part in parts):
                raise BadResult(f"a {self.status} result holds a trajectory")
            return self
        if any(part is None for part in parts):
            raise BadResult(f"an {self.status} result without its steps, epochs and final values")
        case, exact = self.case, self.ok  # a diverged run is cut before its first non-finite step
        _series("steps.w_norm", self.steps.w_norm, case.steps + 1, exact)
        _series("steps.train_loss", self.steps.train_loss, len(self.steps.w_norm), True)
        if self.steps.tensor_norms is not None:
            _of("steps.tensor_norms", self.steps.tensor_norms, dict)
            for name, norms in self.steps.tensor_norms.items():
                _series(f"steps.tensor_norms.{name}", norms, len(self.steps.w_norm), True)
        _series("epochs.test_loss", self.epochs.test_loss, case.train.epochs + 1, exact)
        if self.epochs.valid_loss is not None:
            _series("epochs.valid_loss", self.epochs.valid_loss, len(self.epochs.test_loss), True)
        biases = sum(layer.fan_out for layer in case.layers)
        _series("final.w", self.final.w, case.parameters - biases, True)
        if case.model.kind == "linear":
            _series("final.b", [self.final.b], 1, True)
        else:
            _series("final.b", self.final.b, biases, True)
        _series("final values", [self.final.w_norm, self.final.train_loss, self.final.test_loss], 3, True)
        return self

    def to_json(self):
        document = {"schema_version": SCHEMA_VERSION, "case_id": self.case_id}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, Case):
                value = value.to_dict()
            elif isinstance(value, explain.Explanation):
                value = value.to_json()
            elif field.name == "statements" and value is not None:
                value = [[s.kind, s.text] for s in value]
            elif dataclasses.is_dataclass(value):
                value = dataclasses.asdict(value)
            document[field.name] = value
        return json.dumps(document, allow_nan=False, indent=1, ensure_ascii=False)

    @classmethod
    def from_json(cls, document):
        """The Result of a parsed JSON document of any schema so far; BadResult saying what is wrong."""
        if not isinstance(document, dict) or not isinstance(document.get("schema_version"), int):
            raise BadResult("not a decaylens result (no schema_version)")
        version = document["schema_version"]
        if not 1 <= version <= SCHEMA_VERSION:
            raise BadResult(f"schema_version = {version!r}; this decaylens reads schemas 1 to {SCHEMA_VERSION}")
        for migrate in _MIGRATIONS[version - 1 :]:
            document = migrate(document)
        names = [field.name for field in dataclasses.fields(cls)]
        missing = [name for name in ["case_id", *names[:5]] if name not in document]
        if missing:
            raise BadResult(f"malformed result, missing {', '.join(missing)}")
        if document["status"] not in STATUSES:
            raise BadResult(f"malformed result, status {document['status']!r} is not one of {', '.join(STATUSES)}")
        try:
            values = {name: document.get(name) for name in names} | {"case": Case.from_dict(document["case"])}
            parts = {"steps": Steps, "epochs": Epochs, "final": Final}
            values |= {name: part(**values[name]) for name, part in parts.items() if values[name] is not None}
            if values["explained"] is not None:
                values["explained"] = explain.Explanation.from_json(values["explained"])
            if values["statements"] is not None:
                values["statements"] = tuple(Statement(kind, text) for kind, text in values["statements"])
            values["reason"], values["note"] = values["reason"] or "", values["note"] or ""
        except (SpecError, TypeError, ValueError, KeyError, AttributeError) as error:
            raise BadResult(f"malformed result ({error})") from None
        return cls(**values)


def _of(name, value, kind, none=False):
    if not (isinstance(value, kind) or none and value is None):
        raise BadResult(f"{name} = {str(value)[:40]!r}: not {kind.__name__}")


def _number(value, at_least=None):
    finite = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return finite and (at_least is None or value >= at_least)


def _series(name, values, length, exact):
    """BadResult unless ``values`` is a list of finite numbers, ``length`` of them (``exact``) or 1 to ``length``."""
    if not isinstance(values, list) or not all(_number(v) for v in values):
        raise BadResult(f"{name}: not a list of finite numbers")
    if len(values) != length if exact else not 1 <= len(values) <= length:
        raise BadResult(f"{name}: {len(values)} values, where its case has {length}")


def _update_to_2(document):
    """Schema 2 added ``explained`` (the rule of an ok run); a schema 1 result has none."""
    return document | {"schema_version": 2, "explained": document.get("explained")}


def _update_to_3(document):
    """Schema 3 stores explanations as structures (``explain.Explanation.to_json``) and drops
    their ``text``, which is made when a report is rendered."""
    old = document.get("explained")
    strength = (document.get("case") or {}).get("penalty", {}).get("strength", 0.0)
    try:
        explained = legacy.explanation(old, strength) if old is not None else None
    except (KeyError, TypeError, ValueError) as error:
        raise BadResult(f"malformed schema 2 explanation ({error!r})") from None
    return document | {"schema_version": 3, "explained": explained}


def _update_to_4(document):
    """Schema 4 stores the statements that ran, each with its kind, in place of their ``api`` text,
    which becomes one ``note``: the text read back as it was, with no code to run."""
    api = document.get("api")
    statements = [["note", api]] if isinstance(api, str) and api else None
    return {k: v for k, v in document.items() if k != "api"} | {"schema_version": 4, "statements": statements}


_MIGRATIONS = (_update_to_2, _update_to_3, _update_to_4)  # _MIGRATIONS[v - 1] reads schema v as v + 1


class BadResult(ValueError):
    """A results file that is not a readable decaylens result."""


def path_for(results, backend, case_id):
    return Path(results) / backend / f"{case_id}.json"


def write(path, result):
    """Write ``result`` to ``path`` atomically."""
    files.write_atomically(path, result.to_json())


# The largest results file read: a run's per-step norms and final weights take a few MB at the bounds a
# case is held to (harness.case.MAX_ARRAY_VALUES caps the trajectory, not what a file may claim).
RESULT_BYTES = 64 * 2**20


def read(path):
    """The Result in ``path``, checked (``Result.check``); BadResult naming the file and what is wrong."""
    try:
        document = json.loads(files.read_bounded(path, RESULT_BYTES))
    except (files.Unreadable, json.JSONDecodeError, RecursionError) as error:
        raise BadResult(f"{path}: unreadable ({error})") from None
    try:
        return Result.from_json(document).check()
    except BadResult as error:
        raise BadResult(f"{path}: {error}") from None


def is_current(path, case_id, versions):
    """Whether ``path`` holds a finished result of this case made with these versions (an ok
    result that a migration left without its explanation is made again)."""
    try:
        result = read(path)
    except BadResult:
        return False
    explained = result.explained is not None or not result.ok
    return result.case_id == case_id and result.versions == versions and result.status != "error" and explained


def scan(results):
    """Every readable result under ``results``, keyed by (backend, case_id), and one line per
    file skipped: unreadable, of an unknown schema, malformed, or misnamed (its backend and
    case do not hash to its directory and file name)."""
    found, skipped = {}, []
    backends_ = sorted(p for p in Path(results).iterdir() if p.is_dir()) if Path(results).is_dir() else []
    for directory in (p for p in backends_ if p.name != RELEASES):
        if not os.access(directory, os.R_OK | os.X_OK):
            skipped.append(f"{directory}: cannot be read (its results are not in this report); skipped")
    for path in sorted(Path(results).glob("*/*.json")):
        if path.parent.name == RELEASES:  # fingerprints of the release matrix, not results
            continue
        try:
            result = read(path)
        except BadResult as error:
            skipped.append(f"{error}; skipped")
            continue
        if (result.backend, result.case_id) != (path.parent.name, path.stem):
            skipped.append(f"{path}: holds {result.backend} case {result.case_id}, not what its name says; skipped")
        else:
            found[result.backend, result.case_id] = result
    return found, skipped
