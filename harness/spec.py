"""Experiment specs: TOML files validated strictly and expanded into cases (``harness.case``).

A spec has the sections ``[data] [model] [train] [optimizer] [penalty]`` (every key
optional, the defaults are the reference experiment), an optional ``[sweep]`` of dotted keys
mapped to lists (the cases are their cartesian product, in file order) and optional
``[overrides.<backend>]`` tables of dotted keys that replace the shared value for one backend.

An optional ``[factors]`` table names groups of the override keys (``loss = ["train.loss"]``);
every override key must be in exactly one. A backend then runs its overrides one factor at a
time: for each sweep point, the shared case (point key ``"overrides" = "none"``), each
factor's keys alone (``= <factor>``) and all of them (``= "all"``). A variant that leaves a
backend's case unchanged is left out.

Combinations that make no sense (``adamw`` without ``adam``, a strength with penalty
``none``, a batch that does not divide the training set) are errors in a plain spec and are
left out of a sweep. Loading never changes the document it is given.
"""

import itertools
import json
import math
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import backends
from harness import files, problems
from harness.case import SECTIONS, Case, field, show
from harness.checks import checked
from harness.errors import SpecError

MAX_POINTS = 10**4  # a sweep this large is a typo, not an experiment
MAX_SPEC_BYTES = 1 << 20  # a spec is a page of TOML; a larger file is not one
TABLES = (*SECTIONS, "sweep", "overrides", "factors")


@dataclass(frozen=True)
class Spec:
    name: str
    source: str
    cases_by_backend: dict  # backend -> tuple of (point, Case); point = sweep values
    factors: tuple = ()  # the names of its [factors], in order

    def cases(self, backend):
        """The (point, case) pairs this backend runs; point maps each swept key to its value."""
        return self.cases_by_backend[backend]


def builtin_names():
    specs = resources.files("harness").joinpath("specs")
    return sorted(p.name.removesuffix(".toml") for p in specs.iterdir() if p.name.endswith(".toml"))


def load(name_or_path):
    """Load a built-in spec by name or a spec file by path, validating everything."""
    path = Path(name_or_path)
    if path.suffix != ".toml" and name_or_path in builtin_names():
        text = resources.files("harness").joinpath("specs", f"{name_or_path}.toml").read_text()
        return parse(text, name=name_or_path, source=f"{name_or_path} (built-in)")
    if not path.exists():
        raise SpecError(
            f"{name_or_path}: no such spec file or built-in spec; built-in specs: {', '.join(builtin_names())}"
        )
    return parse(files.read_text(path, "a TOML spec file", MAX_SPEC_BYTES), name=path.stem, source=str(path))


def parse(text, name="spec", source="<spec>"):
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SpecError(f"{source}: not valid TOML: {error}") from None
    except RecursionError:  # tomllib parses nested arrays and tables by recursion
        raise SpecError(f"{source}: not valid TOML: nested deeper than Python's parser goes") from None
    return from_document(document, name, source)


def from_document(document, name="spec", source="<spec>"):
    """Validate a parsed TOML document and expand it into every backend's cases."""
    unknown = sorted(set(document) - set(TABLES))
    if unknown:
        raise SpecError(f"{source}: unknown section [{show(unknown[0])}]; allowed sections: {', '.join(TABLES)}")
    base = {}
    for section in SECTIONS:
        table = document.get(section, {})
        if not isinstance(table, dict):
            raise SpecError(f"{source}: {section} = {table!r} is not allowed; allowed: a table [{section}]")
        base |= {f"{section}.{key}": _check(source, f"{section}.{key}", value) for key, value in table.items()}
    sweep = _sweep(source, document.get("sweep", {}))
    overrides = _overrides(source, document.get("overrides", {}))
    factors = _factors(source, document.get("factors"), overrides)
    shared = Case().replace(base)
    points = [dict(zip(sweep, values)) for values in itertools.product(*sweep.values())]
    cases = {
        backend: _cases(source, backend, shared, set(base), points, factors, overrides.get(backend, {}), bool(sweep))
        for backend in backends.NAMES
    }
    return Spec(name=name, source=source, cases_by_backend=cases, factors=tuple(factors or ()))


def _sweep(source, table):
    """``[sweep]`` validated: dotted key -> list of checked values; a section name -> list of
    tables of its keys (``optimizer = [{name = "adadelta", lr = 1.0}, ...]``: values swept together)."""
    sweep = {}
    for key, values in _dotted_table(source, "sweep", table).items():
        if not isinstance(values, list) or not values:
            raise SpecError(
                f"{source}: {show('sweep.' + key)} = {values!r} is not allowed; allowed: a non-empty list of values"
            )
        if key in SECTIONS:
            sweep[key] = [_section_values(source, key, value) for value in values]
        else:
            sweep[key] = [_check(source, key, value, prefix="sweep.") for value in values]
    combinations = math.prod(len(values) for values in sweep.values())
    if combinations > MAX_POINTS:
        raise SpecError(f"{source}: [sweep] has {combinations} combinations; allowed: at most {MAX_POINTS}")
    return sweep


def _section_values(source, section, table):
    """One table of a section sweep, its keys checked: ``{"name": "adadelta", "lr": 1.0}``."""
    if not isinstance(table, dict) or not table:
        raise SpecError(
            f"{source}: sweep.{section} = {table!r} is not allowed; allowed: a non-empty table of [{section}] keys"
        )
    return {key: _check(source, f"{section}.{key}", value, prefix="sweep.") for key, value in table.items()}


def dotted(point):
    """A sweep point's values as dotted keys, a section sweep's table spelled out."""
    flat = {}
    for key, value in point.items():
        if key in SECTIONS:
            flat.update({f"{key}.{name}": v for name, v in value.items()})
        elif key != "overrides":
            flat[key] = value
    return flat


def _overrides(source, table):
    """``[overrides.<backend>]`` validated: backend -> {dotted key: checked value}."""
    if not isinstance(table, dict):
        raise SpecError(f"{source}: overrides = {table!r} is not allowed; allowed: tables [overrides.<backend>]")
    overrides = {}
    for backend, values in table.items():
        if backend not in backends.NAMES:
            raise SpecError(
                f"{source}: unknown backend in [overrides.{show(backend)}]; "
                f"allowed backends: {', '.join(backends.NAMES)}"
            )
        flat = _dotted_table(source, f"overrides.{backend}", values)
        overrides[backend] = {
            key: _check(source, key, value, prefix=f"overrides.{backend}.") for key, value in flat.items()
        }
    return overrides


def _cases(source, backend, shared, given, points, factors, overrides, swept):
    """The (point, case) pairs of one backend: every variant of its overrides at every sweep
    point, without the invalid ones (an error unless the sweep made them) and duplicates. Keys no
    one gives (the shared values ``given``, the point, the overrides) take the optimizer's defaults."""
    cases, seen, first_problem = [], set(), None
    for variant, values in _variants(factors, overrides):
        for point in points:
            at = dotted(point)
            at_point = shared.replace(at).with_optimizer_defaults(given | set(at))
            case = at_point.replace(values).with_optimizer_defaults(given | set(at) | set(values))
            problem = problems.problem(case)
            if problem is None:
                if case.id not in seen:  # a variant that changes nothing is left out
                    seen.add(case.id)
                    cases.append((point if factors is None else {"overrides": variant, **point}, case))
            elif problems.problem(at_point) is None:
                alone = f" with factor {json.dumps(variant)} alone" if variant not in ("none", "all") else ""
                raise SpecError(f"{source}: [overrides.{backend}]{alone}: {problem}")
            elif not swept:
                raise SpecError(f"{source}: {problem}")
            else:
                first_problem = first_problem or problem
    if not cases:
        raise SpecError(f"{source}: the sweep leaves no valid case; for example: {first_problem}")
    return tuple(cases)


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
            raise SpecError(f'{source}: factors.{name} is not allowed; allowed: any factor name but "none" and "all"')
        if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
            raise SpecError(f"{source}: {show('factors.' + name)} = {keys!r} is not allowed; allowed: {allowed}")
        for key in keys:
            _field(source, key, prefix=f"factors.{name}.")
            if key in owner:
                raise SpecError(
                    f"{source}: {show(key)} is in factors.{show(owner[key])} and factors.{show(name)}; "
                    "allowed: one factor per key"
                )
            owner[key] = name
        factors[name] = tuple(keys)
    for backend, values in overrides.items():
        for key in values:
            if key not in owner:
                raise SpecError(
                    f"{source}: [overrides.{backend}] key {show(key)} is in no factor; allowed: keys of [factors]: "
                    + ", ".join(owner)
                )
    return factors


def _dotted_table(source, name, table):
    """A new table of dotted keys from ``{"optimizer": {"lr": ..}}`` and ``{"optimizer.lr": ..}`` alike."""
    if not isinstance(table, dict):
        raise SpecError(
            f'{source}: {name} = {table!r} is not allowed; allowed: a table of dotted keys like "optimizer.lr"'
        )
    flat = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{inner}": v for inner, v in value.items()})
        else:
            flat[key] = value
    return flat


def _field(source, dotted, prefix=""):
    try:
        return field(dotted, prefix)
    except SpecError as error:
        raise SpecError(f"{source}: {error}") from None


def _check(source, dotted, value, prefix=""):
    try:
        return checked(dotted, field(dotted, prefix), value, prefix)
    except SpecError as error:
        raise SpecError(f"{source}: {error}") from None


def describe(point):
    """``sgd, weight_decay, λ=3`` for a sweep point; ``loss overrides, λ=3`` for one factor's."""
    return ", ".join(_describe(k, v) for k, v in point.items()) or "the case"


def _describe(key, value):
    if key == "penalty.strength":
        return f"λ={value:g}"
    if isinstance(value, float) or (isinstance(value, int) and not isinstance(value, bool)):
        return f"{key.partition('.')[2]}={value:g}"
    if key == "overrides":
        return "no overrides" if value == "none" else f"{value} overrides"
    if isinstance(value, dict):  # a section sweep's table: as its dotted keys would read, in order
        return ", ".join(_describe(f"{key}.{name}", v) for name, v in value.items())
    if isinstance(value, bool):
        return f"{key.partition('.')[2]}={str(value).lower()}"
    if isinstance(value, list | tuple):
        return f"{key.partition('.')[2]}={'+'.join(map(str, value)) or 'none'}"
    return str(value)
