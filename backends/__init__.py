"""Framework adapters. Each module trains a case with its framework's own APIs.

Every adapter exports the same two functions, in the same order:

    versions() -> dict[str, str]         the framework's package versions
    train(case, arrays) -> Trajectory    weights before and after every optimizer step

and raises ``harness.trajectory.Unsupported(reason)`` for a combination its
framework cannot express. Frameworks are imported lazily, only by ``load``.
"""

import importlib
import os

# backend name -> (module, environment variables the framework reads at import time)
_MODULES = {
    "torch": ("backends.torch", {}),
    "tensorflow": ("backends.tensorflow", {"TF_USE_LEGACY_KERAS": "0"}),
    "tensorflow-keras2": ("backends.tensorflow", {"TF_USE_LEGACY_KERAS": "1"}),
    "jax": ("backends.jax", {}),
    "mxnet": ("backends.mxnet", {}),
}

NAMES = tuple(_MODULES)


class MissingFramework(RuntimeError):
    """The backend's framework is not installed in this environment."""


_loaded = {}  # module -> the backend it was first loaded for


def load(name):
    """Import and return the adapter module of backend ``name``."""
    module, environ = _MODULES[name]
    first = _loaded.setdefault(module, name)
    if _MODULES[first][1] != environ:
        raise MissingFramework(
            f"backend {name!r} cannot run in a process that already loaded {first!r}; run it in its own environment: tox -e {name}"
        )
    os.environ.update(environ)
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingFramework(
            f"backend {name!r} needs {error.name!r}, which is not installed here; "
            f"run it in its own environment: tox -e {name}"
        ) from error
