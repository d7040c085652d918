"""Framework adapters. Each module trains a case with its framework's own APIs, by the contract
of ``backends.contract`` (a new one starts from ``backends/_template.py``). This registry maps
backend names to modules; frameworks are imported lazily, only by ``load``. Nothing here
imports ``harness``: the harness depends on the backends, not the other way round.
"""

import importlib
import os

# backend name -> (module, environment variables the framework reads at import time)
_MODULES = {
    "torch": ("backends.torch", {}),
    "tensorflow": ("backends.keras", {"TF_USE_LEGACY_KERAS": "0", "KERAS_BACKEND": "tensorflow"}),
    "tensorflow-keras2": ("backends.keras", {"TF_USE_LEGACY_KERAS": "1"}),
    "keras-jax": ("backends.keras", {"TF_USE_LEGACY_KERAS": "0", "KERAS_BACKEND": "jax", "JAX_ENABLE_X64": "1"}),
    "keras-torch": ("backends.keras", {"TF_USE_LEGACY_KERAS": "0", "KERAS_BACKEND": "torch"}),
    "jax": ("backends.jax", {}),
    "mxnet": ("backends.mxnet", {}),
    "paddle": ("backends.paddle", {}),
    "mlx": ("backends.mlx", {}),
}

NAMES = tuple(_MODULES)
# adapter module -> the backends it serves, where more than one: the same user code on several backends
_SERVED = {module: tuple(name for name in NAMES if _MODULES[name][0] == module) for module, _ in _MODULES.values()}
SHARED_CODE = {module: names for module, names in _SERVED.items() if len(names) > 1}


class MissingFramework(RuntimeError):
    """The backend's framework is not installed in this environment."""


_loaded = {}  # module -> the backend it was first loaded for


def load(name):
    """Import and return the adapter module of backend ``name`` (a ``contract.Adapter``)."""
    module, environ = _MODULES[name]
    first = _loaded.setdefault(module, name)
    if _MODULES[first][1] != environ:
        raise MissingFramework(
            f"backend {name!r} cannot run in a process that already loaded {first!r}; "
            f"run it in its own environment: tox -e {name}"
        )
    os.environ.update(environ)
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingFramework(
            f"backend {name!r} needs {error.name!r}, which is not installed here; "
            f"run it in its own environment: tox -e {name}"
        ) from error
