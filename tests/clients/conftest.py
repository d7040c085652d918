"""The real clients of ``decaylens audit``: each test file audits one library's own optimizer setup
(tests/clients/test_<client>.py) in the tox env that declares it (``DECAYLENS_CLIENT``), where a
missing library fails; elsewhere its tests skip. They need a framework, so they are ``framework``
tests: the core env never collects them."""

import importlib
import os

import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        if "clients" in item.path.parts:
            item.add_marker(pytest.mark.framework)


@pytest.fixture
def client(request):
    """``client(name)``: the module ``name`` (e.g. ``transformers``), in the env that declares it."""

    def load(name, module=None):
        if os.environ.get("DECAYLENS_CLIENT") != name:
            pytest.skip(f"the {name} client runs in its own environment (tox -e audit-{name})")
        try:
            return importlib.import_module(module or name)
        except ImportError as error:
            pytest.fail(f"this environment declares the {name} client, but: {error}")

    return load
