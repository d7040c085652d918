"""Auditors: each steps a user's own model and optimizer, as they built them, the way
``backends.contract.Stepping`` says, and hands back ``backends.contract.Audited``. One module per
framework, by the contract ``audit(objects, stepping) -> Audited`` (``NotAuditable`` for objects
it does not take; ``TAKES`` says what it takes); a backend's auditor loads after its adapter, so
the framework's environment variables are set (``load``)."""

import importlib

import backends

# backend -> the auditor module that serves it
_MODULES = {
    "torch": "backends.auditors.torch",
    "tensorflow": "backends.auditors.keras",
    "tensorflow-keras2": "backends.auditors.keras",
    "keras-jax": "backends.auditors.keras",
    "keras-torch": "backends.auditors.keras",
    "jax": "backends.auditors.optax",
    "mxnet": "backends.auditors.gluon",
    "paddle": "backends.auditors.paddle",
    "mlx": "backends.auditors.mlx",
}
NAMES = tuple(_MODULES)


def load(name):
    """The auditor of backend ``name``, its framework imported as its adapter imports it."""
    backends.load(name)
    try:
        return importlib.import_module(_MODULES[name])
    except ImportError as error:
        raise backends.MissingFramework(
            f"the {name} auditor needs {error.name!r}, which is not installed here; run it in its env: tox -e {name}"
        ) from error
