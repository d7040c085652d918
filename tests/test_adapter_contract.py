"""Every adapter in backends/ keeps the contract of backends/contract.py, checked on its source
(importing no framework, so this runs in the core env): the same exports in the same order,
the capabilities declared as constants, the same helpers in the same order with the recorder
last, and no import of the harness."""

import ast
import re
from pathlib import Path

import pytest

import backends
from backends import contract
from harness import data
from harness.case import FRAMEWORK_KINDS, OPTIMIZERS, PENALTY_KINDS, field
from harness.errors import SpecError

BACKENDS = Path(backends.__file__).parent
# backends/ holds the adapters (and _template.py, the one to start a new one from), the contract and registry,
# and the adapters' shared helpers, named _*.py (the recorder _calls.py, the layout _layout.py, ...)
HELPERS = sorted(p for p in BACKENDS.glob("_*.py") if p.name not in ("__init__.py", "_template.py"))
AUDITORS = sorted((BACKENDS / "auditors").glob("*.py"))  # backends/auditors/: one a framework, and their helpers
ADAPTERS = sorted(p for p in BACKENDS.glob("*.py") if p not in HELPERS and p.name not in ("__init__.py", "contract.py"))
SIGNATURES = {
    "versions": [], "train": ["case", "arrays"], "train_sweep": ["cases", "arrays"],
    "train_code": ["case", "arrays", "statements"],
}  # fmt: skip


def parsed(path):
    return ast.parse(path.read_text(), filename=str(path))


def top_level(tree):
    """{name: node} of the module's top-level definitions and assignments, in source order."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            found.setdefault(node.name, node)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found.setdefault(target.id, node)
    return found


def test_every_adapter_module_is_registered_and_every_registered_module_exists():
    modules = {module for module, _ in backends._MODULES.values()}
    assert modules == {f"backends.{path.stem}" for path in ADAPTERS if path.stem != "_template"}
    assert "_template.py" in {path.name for path in ADAPTERS}


@pytest.mark.parametrize("path", ADAPTERS, ids=lambda path: path.stem)
def test_an_adapter_exports_the_contract_in_order(path):
    tree = parsed(path)
    assert ast.get_docstring(tree), f"{path.name}: no module docstring"
    names = top_level(tree)
    sweeping = bool(ast.literal_eval(names["SWEEPABLE"].value))
    exports = [name for name in contract.EXPORTS if sweeping or name not in contract.SWEEPING]
    assert "__all__" not in names, f"{path.name}: __all__ re-spells contract.EXPORTS"
    assert all(name in names for name in exports), f"{path.name}: defines none of {set(exports) - set(names)}"
    public = [name for name, node in names.items() if not name.startswith("_") and isinstance(node, ast.FunctionDef)]
    assert public == [name for name in exports if name in SIGNATURES], f"{path.name}: public functions {public}"
    order = list(names)
    positions = [order.index(name) for name in (*exports, *contract.HELPERS)]
    assert positions == sorted(positions), f"{path.name}: defines {[order[i] for i in sorted(positions)]}"
    for name, parameters in SIGNATURES.items():
        if name not in exports:
            continue
        function = names[name]
        assert [a.arg for a in function.args.args] == parameters and ast.get_docstring(function), f"{path.name}: {name}"


@pytest.mark.parametrize("path", ADAPTERS, ids=lambda path: path.stem)
def test_an_adapter_declares_its_capabilities_as_constants(path):
    names = top_level(parsed(path))
    sweepable = ast.literal_eval(names["SWEEPABLE"].value)
    assert isinstance(sweepable, tuple) and all(isinstance(key, str) for key in sweepable)
    for key in sweepable:
        try:
            field(key)
        except SpecError as error:
            pytest.fail(f"{path.name}: SWEEPABLE {key!r}: {error}")
        assert not data.depends_on(key), f"{path.name}: SWEEPABLE {key!r} changes the arrays the cases of a call share"
    target = ast.literal_eval(names["RATIO_TARGET"].value)
    assert isinstance(target, float) and target > 0, f"{path.name}: RATIO_TARGET {target!r}"
    variants = ast.literal_eval(names["VARIANTS"].value)
    assert isinstance(variants, dict), f"{path.name}: VARIANTS is not a dict"
    for (optimizer, kind), named in variants.items():
        assert optimizer in OPTIMIZERS and kind in FRAMEWORK_KINDS and named, f"{path.name}: VARIANTS {kind!r}"
        assert all(re.fullmatch(r"[a-z][a-z0-9_]*", name) and call for name, call in named.items()), path.name
    accounts = ast.literal_eval(names["OWN_BEHAVIOURS"].value)
    assert isinstance(accounts, dict), f"{path.name}: OWN_BEHAVIOURS is not a dict"
    for (optimizer, kind), reason in accounts.items():
        assert optimizer in OPTIMIZERS and kind in (None, *PENALTY_KINDS), f"{path.name}: ({optimizer!r}, {kind!r})"
        assert isinstance(reason, str) and reason, f"{path.name}: ({optimizer!r}, {kind!r}) gives no reason"


@pytest.mark.parametrize("path", ADAPTERS, ids=lambda path: path.stem)
def test_an_adapter_builds_with_the_same_helpers_each_writing_into_the_recorder(path):
    names = top_level(parsed(path))
    for helper in contract.HELPERS:
        function = names.get(helper)
        assert isinstance(function, ast.FunctionDef), f"{path.name}: no {helper}"
        assert function.args.args[-1].arg == "calls" and ast.get_docstring(function), f"{path.name}: {helper}"


@pytest.mark.parametrize("path", ADAPTERS + HELPERS + AUDITORS, ids=lambda path: path.stem)
def test_an_adapter_or_helper_imports_nothing_of_the_harness(path):
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.Import):
            assert not any(alias.name.split(".")[0] == "harness" for alias in node.names), path.name
        elif isinstance(node, ast.ImportFrom):
            assert (node.module or "").split(".")[0] != "harness", path.name


def test_the_contract_check_catches_a_module_out_of_order(tmp_path):
    """The checks above fail on a module whose train comes before versions."""
    source = (BACKENDS / "_template.py").read_text()
    swapped = source.replace("def versions():", "def _versions_later():", 1).replace(
        "def train_code(", 'def versions():\n    """."""\n\n\ndef train_code(', 1
    )
    (tmp_path / "swapped.py").write_text(swapped)
    with pytest.raises(AssertionError, match=r"swapped.py: public functions \['train', 'versions'"):
        test_an_adapter_exports_the_contract_in_order(tmp_path / "swapped.py")


def test_the_contract_check_catches_a_sweepable_module_without_train_sweep(tmp_path):
    """An adapter that declares SWEEPABLE keys defines train_sweep; one that declares none does not."""
    source = (BACKENDS / "_template.py").read_text()
    (tmp_path / "sweeps.py").write_text(source.replace("SWEEPABLE = ()", 'SWEEPABLE = ("optimizer.lr",)', 1))
    with pytest.raises(AssertionError, match=r"sweeps.py: defines none of \{'train_sweep'\}"):
        test_an_adapter_exports_the_contract_in_order(tmp_path / "sweeps.py")
    extra = source.replace("def train_code(", 'def train_sweep(cases, arrays):\n    """."""\n\n\ndef train_code(', 1)
    (tmp_path / "extra.py").write_text(extra)
    with pytest.raises(AssertionError, match=r"extra.py: public functions \[.*'train_sweep'"):
        test_an_adapter_exports_the_contract_in_order(tmp_path / "extra.py")
