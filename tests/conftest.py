"""Backend fixtures: a test parametrized by backend runs in that backend's tox env.

``DECAYLENS_BACKEND`` names the env's framework backend (set by tox.ini). There, a
missing framework fails the test; elsewhere, tests of other backends skip.
"""

import os

import pytest
from hypothesis import settings

import backends
from harness import spec

# CI runs the property tests on a fixed seed, so a red run is always reproducible.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

ENV_BACKEND = os.environ.get("DECAYLENS_BACKEND", "")


def load_adapter(name):
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


@pytest.fixture
def use_adapters(monkeypatch):
    """``use_adapters(adapter)``: ``backends.load`` returns ``adapter`` (e.g. ``fake_backend.make()``)
    for every backend; ``use_adapters(function)``: it returns ``function(name)``."""

    def use(adapters):
        monkeypatch.setattr(backends, "load", adapters if callable(adapters) else lambda name: adapters)

    return use


@pytest.fixture(params=backends.NAMES)
def backend(request):
    """(name, adapter module) for each backend; skipped outside the backend's env."""
    return request.param, load_adapter(request.param)
