"""Experiment specs: TOML files validated strictly and expanded into cases.

A spec has the sections ``[data] [model] [train] [optimizer] [penalty]`` (every
key optional, defaults below are the reference experiment), an optional
``[sweep]`` of dotted keys mapped to lists (the cases are their cartesian
product, in file order) and optional ``[overrides.<backend>]`` tables of dotted
keys that replace the shared value for one backend only.

An optional ``[factors]`` table names groups of the override keys (``loss =
["train.loss"]``); every override key must be in exactly one. A backend then runs its
overrides one factor at a time: for each sweep point, the shared case (point key
``"overrides" = "none"``), each factor's keys alone (``= <factor>``) and all of them
(``= "all"``). A variant that leaves a backend's case unchanged is left out.

Combinations that make no sense (``adamw`` without ``adam``, a strength with
penalty ``none``, a batch that does not divide the training set) are errors in
a plain spec and are left out of a sweep.
"""

import dataclasses
import hashlib
import itertools
import json
import math
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import backends


class SpecError(ValueError):
    """A spec is invalid; the message is one line naming file, key and allowed values."""


# --------------------------------------------------------------------------- value checks


@dataclass(frozen=True)
class Number:
    """An int or float in [low, high]; ``open_low`` excludes ``low``."""

    kind: type
    low: float | None = None
    high: float | None = None
    open_low: bool = False

    def allowed(self):
        name = "an integer" if self.kind is int else "a finite number"
        low = f"> {self.low}" if self.open_low else f">= {self.low}"
        if self.low is not None and self.high is not None:
            return f"{name} {low} and <= {self.high}"
        return f"{name} {low}" if self.low is not None else name

    def check(self, value):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError
        if self.kind is int and not isinstance(value, int):
            raise ValueError
        if not math.isfinite(value) or abs(value) > 1e300:
            raise ValueError
        value = self.kind(value)
        if self.low is not None and (value < self.low or (self.open_low and value == self.low)):
            raise ValueError
        if self.high is not None and value > self.high:
            raise ValueError
        return value


@dataclass(frozen=True)
class Choice:
    values: tuple

    def allowed(self):
        return "one of " + ", ".join(json.dumps(v) for v in self.values)

    def check(self, value):
        if not any(value == allowed and type(value) is type(allowed) for allowed in self.values):
            raise ValueError
        return value


def _field(default, check):
    return dataclasses.field(default=default, metadata={"check": check})


Count = Number(int, 1, 10**6)
Positive = Number(float, 0, open_low=True)
NonNegative = Number(float, 0)
Real = Number(float)
Fraction = Number(float, 0, 1)
Bool = Choice((True, False))

# --------------------------------------------------------------------------- the case


class _Section:
    """Values are checked and coerced (3 -> 3.0 for a float key) on construction."""

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = _checked(f"{type(self).__name__.lower()}.{field.name}", field, getattr(self, field.name))
            object.__setattr__(self, field.name, value)


def _checked(dotted, field, value, prefix=""):
    check = field.metadata["check"]
    try:
        return check.check(value)
    except ValueError:
        raise SpecError(
            f"{prefix}{dotted} = {json.dumps(value, default=str)} is not allowed; allowed: {check.allowed()}"
        ) from None


@dataclass(frozen=True)
class Data(_Section):
    """y = true_b + Σᵢ true_w·xᵢ + ε, x ~ N(0, x_std²), ε ~ N(0, noise_std²)."""

    n_train: int = _field(20, Count)
    n_valid: int = _field(0, Number(int, 0, 10**6))
    n_test: int = _field(100, Count)
    dim: int = _field(200, Count)
    x_std: float = _field(1.0, Positive)
    true_w: float = _field(0.01, Real)
    true_b: float = _field(0.05, Real)
    noise_std: float = _field(0.01, NonNegative)
    seed: int = _field(0, Number(int, 0, 2**63 - 1))


@dataclass(frozen=True)
class Model(_Section):
    """A linear model ŷ = x·w + b. ``shared``: w ~ N(0, init_std²), b ~ N(0, bias_init_std²)
    drawn by the harness; ``native``: the framework's default initializers."""

    kind: str = _field("linear", Choice(("linear",)))
    init: str = _field("shared", Choice(("shared", "native")))
    init_std: float = _field(1.0, NonNegative)
    bias_init_std: float = _field(0.0, NonNegative)
    dtype: str = _field("float64", Choice(("float64", "float32")))


@dataclass(frozen=True)
class Train(_Section):
    """Minibatch training; loss ``half_mse`` = mean ½e², ``mse`` = mean e², ``native`` =
    the framework's idiomatic regression loss."""

    epochs: int = _field(100, Number(int, 1, 10**5))
    batch_size: int = _field(5, Count)
    shuffle: bool = _field(True, Bool)
    loss: str = _field("half_mse", Choice(("half_mse", "mse", "native")))


@dataclass(frozen=True)
class Optimizer(_Section):
    name: str = _field("sgd", Choice(("sgd", "momentum", "nesterov", "adam")))
    lr: float = _field(0.003, Positive)
    momentum: float = _field(0.9, Number(float, 0, 1))
    beta1: float = _field(0.9, Fraction)
    beta2: float = _field(0.999, Fraction)
    eps: float = _field(1e-8, NonNegative)


MAX_ARRAY_VALUES = 10**8  # float64 data, every step's batch (gathered once) and the trajectory stay under ~1 GB each
MAX_POINTS = 10**4  # a sweep this large is a typo, not an experiment

PENALTY_KINDS = ("none", "l2_loss", "l1_loss", "weight_decay", "adamw", "regularizer")


@dataclass(frozen=True)
class Penalty(_Section):
    """``l2_loss``: (λ/2)·‖w‖² in the loss; ``l1_loss``: λ·‖w‖₁ in the loss;
    ``weight_decay``: the optimizer's own argument; ``adamw``: the dedicated decoupled
    optimizer; ``regularizer``: the layer regularizer API. λ = strength. ``decay_bias``:
    true, false, or ``"default"`` = whatever the framework's API does when the user says
    nothing about the bias (for the three framework APIs only)."""

    kind: str = _field("none", Choice(PENALTY_KINDS))
    strength: float = _field(0.0, NonNegative)
    decay_bias: bool | str = _field(False, Choice((False, True, "default")))


SECTIONS = {"data": Data, "model": Model, "train": Train, "optimizer": Optimizer, "penalty": Penalty}


@dataclass(frozen=True)
class Case:
    """One fully resolved experiment: what a backend runs and a results file records."""

    data: Data = Data()
    model: Model = Model()
    train: Train = Train()
    optimizer: Optimizer = Optimizer()
    penalty: Penalty = Penalty()

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, sections):
        return cls(**{name: SECTIONS[name](**values) for name, values in sections.items()})

    @property
    def id(self):
        """First 16 hex digits of the SHA-256 of the canonical JSON of the case."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def steps(self):
        return self.train.epochs * (self.data.n_train // self.train.batch_size)

    def replace(self, values):
        """A copy with dotted keys replaced: ``{"optimizer.lr": 0.03}``."""
        sections = self.to_dict()
        for key, value in values.items():
            section, name = key.split(".")
            sections[section][name] = value
        return Case.from_dict(sections)

    def problem(self):
        """Why this combination makes no sense, or None."""
        penalty, optimizer = self.penalty, self.optimizer
        if penalty.kind == "adamw" and optimizer.name != "adam":
            return (
                f"penalty.kind = \"adamw\" needs optimizer.name = \"adam\" (got \"{optimizer.name}\"); "
                f"allowed with \"{optimizer.name}\": "
                + ", ".join(k for k in PENALTY_KINDS if k != "adamw")
            )
        if penalty.kind == "none" and penalty.strength != 0:
            return (
                f"penalty.strength = {penalty.strength} has no effect with penalty.kind = \"none\"; "
                "allowed: 0, or another penalty kind"
            )
        if penalty.decay_bias == "default" and penalty.kind in ("l2_loss", "l1_loss"):
            return (
                f"penalty.decay_bias = \"default\" is the framework's own bias handling, which "
                f"penalty.kind = \"{penalty.kind}\" (written into the loss) has not; allowed: true, false"
            )
        if self.train.batch_size > self.data.n_train or self.data.n_train % self.train.batch_size:
            return (
                f"train.batch_size = {self.train.batch_size} must divide data.n_train = "
                f"{self.data.n_train}; allowed: a divisor of {self.data.n_train}"
            )
        data = self.data
        if (data.n_train + data.n_valid + data.n_test) * data.dim > MAX_ARRAY_VALUES:
            return (
                f"data.dim × (n_train + n_valid + n_test) = {data.dim * (data.n_train + data.n_valid + data.n_test)}; "
                f"allowed: at most {MAX_ARRAY_VALUES} values"
            )
        if self.train.epochs * data.n_train * data.dim > MAX_ARRAY_VALUES:
            return (
                f"train.epochs × data.n_train × data.dim = {self.train.epochs * data.n_train * data.dim} "
                f"(the batches of every step); allowed: at most {MAX_ARRAY_VALUES}"
            )
        return None


# --------------------------------------------------------------------------- the spec


@dataclass(frozen=True)
class Spec:
    name: str
    source: str
    cases_by_backend: dict  # backend -> tuple of (point, Case); point = sweep values

    @property
    def sweep_keys(self):
        points = next(iter(self.cases_by_backend.values()))
        return tuple(points[0][0]) if points else ()

    def cases(self, backend):
        """The (point, case) pairs this backend runs; point maps each swept key to its value."""
        return self.cases_by_backend[backend]


def builtin_names():
    return sorted(p.name.removesuffix(".toml") for p in resources.files("harness").joinpath("specs").iterdir() if p.name.endswith(".toml"))


def load(name_or_path):
    """Load a built-in spec by name or a spec file by path, validating everything."""
    path = Path(name_or_path)
    if path.suffix != ".toml" and name_or_path in builtin_names():
        text = resources.files("harness").joinpath("specs").joinpath(f"{name_or_path}.toml").read_text()
        return parse(text, name=name_or_path, source=f"{name_or_path} (built-in)")
    if not path.is_file():
        raise SpecError(
            f"{name_or_path}: no such spec file or built-in spec; built-in specs: {', '.join(builtin_names())}"
        )
    return parse(path.read_text(), name=path.stem, source=str(path))


def parse(text, name="spec", source="<spec>"):
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SpecError(f"{source}: not valid TOML: {error}") from None
    return from_document(document, name, source)


def from_document(document, name="spec", source="<spec>"):
    """Validate a parsed TOML document and expand it into every backend's cases."""
    unknown = set(document) - set(SECTIONS) - {"sweep", "overrides", "factors"}
    if unknown:
        raise SpecError(
            f"{source}: unknown section [{_show(sorted(unknown)[0])}]; allowed sections: "
            + ", ".join([*SECTIONS, "sweep", "overrides", "factors"])
        )
    base = {}
    for section in SECTIONS:
        table = document.get(section, {})
        if not isinstance(table, dict):
            raise SpecError(f"{source}: {section} = {table!r} is not allowed; allowed: a table [{section}]")
        for key, value in table.items():
            dotted = f"{section}.{key}"
            base[dotted] = _check(source, dotted, value)
    sweep = _dotted_table(source, "sweep", document.get("sweep", {}))
    for key, values in sweep.items():
        if not isinstance(values, list) or not values:
            raise SpecError(f"{source}: {_show('sweep.' + key)} = {values!r} is not allowed; allowed: a non-empty list of values")
        sweep[key] = [_check(source, key, value, prefix="sweep.") for value in values]
    overrides = document.get("overrides", {})
    if not isinstance(overrides, dict):
        raise SpecError(f"{source}: overrides = {overrides!r} is not allowed; allowed: tables [overrides.<backend>]")
    for backend, table in overrides.items():
        if backend not in backends.NAMES:
            raise SpecError(
                f"{source}: unknown backend in [overrides.{_show(backend)}]; allowed backends: {', '.join(backends.NAMES)}"
            )
        flat = _dotted_table(source, f"overrides.{backend}", table)
        overrides[backend] = {k: _check(source, k, v, prefix=f"overrides.{backend}.") for k, v in flat.items()}

    if math.prod(len(values) for values in sweep.values()) > MAX_POINTS:
        raise SpecError(
            f"{source}: [sweep] has {math.prod(len(v) for v in sweep.values())} combinations; allowed: at most {MAX_POINTS}"
        )
    factors = _factors(source, document.get("factors"), overrides)
    shared = Case().replace(base)
    points = [dict(zip(sweep, values)) for values in itertools.product(*sweep.values())]
    cases_by_backend = {}
    for backend in backends.NAMES:
        cases, seen, first_problem = [], set(), None
        for variant, values in _variants(factors, overrides.get(backend, {})):
            for point in points:
                swept = shared.replace(point)
                case = swept.replace(values)
                problem = case.problem()
                if problem is None:
                    if case.id not in seen:  # a variant that changes nothing is left out
                        seen.add(case.id)
                        cases.append((point if factors is None else {"overrides": variant, **point}, case))
                    continue
                if swept.problem() is None:
                    alone = f" with factor {json.dumps(variant)} alone" if variant not in ("none", "all") else ""
                    raise SpecError(f"{source}: [overrides.{backend}]{alone}: {problem}")
                if not sweep:
                    raise SpecError(f"{source}: {problem}")
                first_problem = first_problem or problem
        if not cases:
            raise SpecError(f"{source}: the sweep leaves no valid case; for example: {first_problem}")
        cases_by_backend[backend] = tuple(cases)
    return Spec(name=name, source=source, cases_by_backend=cases_by_backend)


def _variants(factors, overrides):
    """(name, override values) of each variant of a backend's cases: all its overrides, or
    with ``factors``: none, each factor's keys alone, then all."""
    if factors is None:
        return [("all", overrides)]
    alone = [(name, {k: v for k, v in overrides.items() if k in keys}) for name, keys in factors.items()]
    return [("none", {}), *alone, ("all", overrides)]


def _factors(source, table, overrides):
    """``[factors]`` validated: factor name -> tuple of dotted keys, or None when absent."""
    if table is None:
        return None
    allowed = 'a table of factor names mapped to non-empty lists of dotted keys like "train.loss"'
    if not isinstance(table, dict) or not table:
        raise SpecError(f"{source}: factors = {table!r} is not allowed; allowed: {allowed}")
    factors, owner = {}, {}
    for name, keys in table.items():
        if name in ("none", "all"):
            raise SpecError(f"{source}: factors.{name} is not allowed; allowed: any factor name but \"none\" and \"all\"")
        if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
            raise SpecError(f"{source}: {_show('factors.' + name)} = {keys!r} is not allowed; allowed: {allowed}")
        for key in keys:
            _field_of(source, key, prefix=f"factors.{name}.")
            if key in owner:
                raise SpecError(
                    f"{source}: {_show(key)} is in factors.{_show(owner[key])} and factors.{_show(name)}; allowed: one factor per key"
                )
            owner[key] = name
        factors[name] = tuple(keys)
    for backend, values in overrides.items():
        for key in values:
            if key not in owner:
                raise SpecError(
                    f"{source}: [overrides.{backend}] key {_show(key)} is in no factor; allowed: keys of [factors]: "
                    + ", ".join(owner)
                )
    return factors


def _show(name):
    """A key as typed, quoted and escaped when it is not a plain dotted name."""
    return name if re.fullmatch(r"[\w.-]+", name, re.ASCII) else json.dumps(name)


def _dotted_table(source, name, table):
    """Flatten ``{"optimizer": {"lr": [..]}}`` and ``{"optimizer.lr": [..]}`` alike."""
    if not isinstance(table, dict):
        raise SpecError(f"{source}: {name} = {table!r} is not allowed; allowed: a table of dotted keys like \"optimizer.lr\"")
    flat = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{inner}": v for inner, v in value.items()})
        else:
            flat[key] = value
    return flat


def _check(source, dotted, value, prefix=""):
    field = _field_of(source, dotted, prefix)
    try:
        return _checked(dotted, field, value, prefix)
    except SpecError as error:
        raise SpecError(f"{source}: {error}") from None


def _field_of(source, dotted, prefix=""):
    """The Case field a dotted key names; SpecError if there is none."""
    section, _, key = dotted.partition(".")
    if section not in SECTIONS:
        raise SpecError(
            f"{source}: unknown key {_show(prefix + dotted)}; allowed: keys that start with one of {', '.join(SECTIONS)}"
        )
    fields = {f.name: f for f in dataclasses.fields(SECTIONS[section])}
    if key not in fields:
        raise SpecError(
            f"{source}: unknown key {_show(prefix + dotted)}; allowed keys in [{section}]: {', '.join(fields)}"
        )
    return fields[key]
