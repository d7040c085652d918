"""Backend fixtures: a test parametrized by backend runs in that backend's tox env.

``DECAYLENS_BACKEND`` names the env's framework backend (set by tox.ini). There, a
missing framework fails the test; elsewhere, tests of other backends skip.

A test that takes the ``backend``, ``load_adapter``, ``auditor`` or ``client`` fixture is marked
``framework``: a framework env runs those (``pytest -m framework``), the core env all the others
(``pytest -m "not framework"``), so no harness test runs once per framework.
"""

import dataclasses
import functools
import importlib
import os

import fake_backend
import pytest
from hypothesis import settings

import backends
from backends import auditors
from harness import probes, spec
from harness.case import Case

# CI runs the property tests on a fixed seed, so a red run is always reproducible.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

ENV_BACKEND = os.environ.get("DECAYLENS_BACKEND", "")


def fake_fingerprint(name="fake", **settings):
    """The fingerprint of ``fake_backend.make(**settings)`` as backend ``name``: probed once a session
    for each settings (a fingerprint takes ≈ 1.5 s), so a test must not change it in place."""
    return dataclasses.replace(_probed(**settings), backend=name)


@functools.cache
def _probed(**settings):
    return probes.probe("fake", fake_backend.make(**settings), "test")


def pytest_collection_modifyitems(items):
    for item in items:
        if {"backend", "load_adapter", "auditor", "client"} & set(item.fixturenames):
            item.add_marker(pytest.mark.framework)


def _load_adapter(name):
    if name != ENV_BACKEND:
        pytest.skip(f"{name} runs in its own environment (tox -e {name})")
    try:
        return backends.load(name)
    except backends.MissingFramework as error:
        pytest.fail(f"this environment declares backend {name}, but: {error}")


def reference_case(backend, **values):
    """The d2l case of ``backend`` with dotted keys replaced, e.g. ``optimizer__name="adam"``."""
    _, case = spec.load("d2l").cases(backend)[0]
    return case.replace({key.replace("__", "."): value for key, value in values.items()})


# A small MLP on a nonlinear target where every role's decay moves a step well past the step
# tolerance: 4 inputs, 3 hidden units, 10 steps of 4 examples, biases started away from 0.
MLP = {
    "data.dim": 4, "data.n_train": 8, "data.n_test": 8, "data.target": "square", "data.true_w": 0.5,
    "model.kind": "mlp", "model.hidden": [3], "model.bias_init_std": 0.5, "train.epochs": 5, "train.batch_size": 4,
    "optimizer.lr": 0.01,
}  # fmt: skip
# How a spec asks to spare parameters: (decay_bias, spare).
SPARING = {
    "decay all": (True, []),
    "spare biases": (False, []),
    "spare the output layer": (True, ["output_weight", "output_bias"]),
}


def mlp_case(sparing="decay all", **values):
    """The small MLP case (``MLP``) sparing as ``SPARING[sparing]`` says, with dotted keys replaced
    (``penalty__kind="l2_loss"``)."""
    decay_bias, spare = SPARING[sparing]
    case = Case().replace(MLP | {"penalty.decay_bias": decay_bias, "penalty.spare": spare})
    return case.replace({key.replace("__", "."): value for key, value in values.items()})


@pytest.fixture
def use_adapters(monkeypatch):
    """``use_adapters(adapter)``: ``backends.load`` returns ``adapter`` (e.g. ``fake_backend.make()``)
    for every backend; ``use_adapters(function)``: it returns ``function(name)``."""

    def use(adapters):
        monkeypatch.setattr(backends, "load", adapters if callable(adapters) else lambda name: adapters)

    return use


@pytest.fixture
def load_adapter():
    """``load_adapter(name)``: backend ``name``'s adapter module; the test skips outside its env."""
    return _load_adapter


@pytest.fixture(params=backends.NAMES)
def backend(request):
    """(name, adapter module) for each backend; skipped outside the backend's env."""
    return request.param, _load_adapter(request.param)


@pytest.fixture(params=auditors.NAMES)
def auditor(request):
    """(name, auditor module) for each backend; skipped outside the backend's env."""
    _load_adapter(request.param)
    return request.param, auditors.load(request.param)


@pytest.fixture
def client():
    """``client(name, module=name)``: a real client of decaylens audit (tests/clients/test_<name>.py), e.g.
    ``transformers``, in the tox env that declares it (``DECAYLENS_CLIENT``, where a missing library fails);
    elsewhere the test skips."""

    def load(name, module=None):
        if os.environ.get("DECAYLENS_CLIENT") != name:
            pytest.skip(f"the {name} client runs in its own environment (tox -e audit-{name})")
        try:
            return importlib.import_module(module or name)
        except ImportError as error:
            pytest.fail(f"this environment declares the {name} client, but: {error}")

    return load


@pytest.fixture(scope="session")
def made(tmp_path_factory):
    """(spec paths, results directory): every shrunk built-in spec run by every fake backend, with their
    fingerprints (tests/reported.py), once a session."""
    import reported  # it reads this module's fake_fingerprint

    return reported.make(tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="session")
def rendered(made, tmp_path_factory):
    """(REPORT.md text, report directory, results directory) of the report over ``made``, once a session."""
    import reported

    return reported.render(*made, tmp_path_factory.mktemp("out"))
