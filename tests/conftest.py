"""Backend fixtures: a test parametrized by backend runs in that backend's tox env.

``DECAYLENS_BACKEND`` names the env's framework backend (set by tox.ini). There, a
missing framework fails the test; elsewhere, tests of other backends skip.
"""

import os

import pytest
from hypothesis import settings

import backends

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


@pytest.fixture(params=backends.NAMES)
def backend(request):
    """(name, adapter module) for each backend; skipped outside the backend's env."""
    return request.param, load_adapter(request.param)
