"""``decaylens audit``: which of a user's own parameters their own optimizer decays, by how much
and how, measured by stepping their objects (``measure``), reported per tensor with flags
(``findings``) and in words (``text``)."""

import importlib.util
import sys
from pathlib import Path

import backends
from backends import auditors
from backends.contract import NotAuditable
from harness.audit import measure
from harness.audit.findings import Audit, finding, with_shared_flags
from harness.errors import UsageError


def audit(backend, target):
    """The Audit of ``target``, ``FILE.py:FUNCTION``: the function's return value, what the user
    trains with, stepped by the backend's auditor."""
    _auditor(backend)  # first: the framework's environment (KERAS_BACKEND, ...) before the user's imports
    return audit_objects(backend, call(target), target)


def audit_objects(backend, objects, target):
    """The Audit of ``objects`` (what a user's function returns), named ``target`` in the document."""
    auditor = _auditor(backend)
    try:
        audited = auditor.audit(objects, measure.stepping())
    except NotAuditable as error:
        raise UsageError(f"{target}: {error}; return what --backend {backend} trains with") from None
    except Exception as error:  # the user's optimizer or model, stepped as they built it: theirs to fix
        raise UsageError(f"{target}: stepping your optimizer raised {_error(error)}; fix the setup") from None
    found = []
    for i, parameter in enumerate(audited.parameters):
        gradient = measure.gradient(i, parameter.shape).reshape(-1)[measure.samples(i, _size(parameter.shape))]
        measured = measure.measure(audited.values[i], audited.lrs[i], parameter.nominal, gradient)
        found.append(finding(parameter, measured, audited.lrs[i]))
    versions = backends.load(backend).versions()
    return Audit(target, backend, versions, audited.optimizer, audited.scheduler, tuple(with_shared_flags(found)))


def _auditor(backend):
    if backend not in auditors.NAMES:
        raise UsageError(f"--backend {backend!r}: no such backend; allowed: {', '.join(auditors.NAMES)}")
    return auditors.load(backend)


def _size(shape):
    size = 1
    for n in shape:
        size *= n
    return size


def call(target):
    """The value the user's ``FILE.py:FUNCTION`` returns; UsageError in one line where the file is
    missing or not Python, the function is not there, or it raises."""
    path, colon, name = target.rpartition(":")
    if not colon or not path.endswith(".py") or not name.isidentifier():
        raise UsageError(
            f"{target!r}: not FILE.py:FUNCTION; write the path of your Python file and the function's name"
        )
    if not Path(path).is_file():
        raise UsageError(f"{path}: no such file; give the path of the Python file that defines {name}")
    module_name = f"decaylens_user_{Path(path).stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # the user's module: anything it raises is theirs to fix
        raise UsageError(f"{path}: importing it raised {_error(error)}; fix the file") from None
    function = getattr(module, name, None)
    if not callable(function):
        raise UsageError(f"{path}: defines no function {name!r}; name one it defines")
    try:
        return function()
    except Exception as error:  # the user's function: report it, do not crash
        raise UsageError(f"{target}: the function raised {_error(error)}; fix it") from None


def _error(error):
    """The error's type and the first line of its message."""
    return f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0]}"
