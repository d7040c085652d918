"""The native calls an adapter makes, each written once: run and recorded in one step.

``calls("torch.optim.SGD", groups, lr=0.1)`` looks the dotted path up from the roots the
adapter named (``Calls(torch=torch)``) or the values it named, calls what it finds with these
arguments, returns the result and keeps the line ``torch.optim.SGD([model.weight], lr=0.1)``:
the text is made from the very path and arguments that ran, so it cannot drift from them.
Arguments show as a user would write them: a named value by its name (``let``, ``name``), the
result of an earlier call by that call's text (the earlier line is folded into this one),
lists, tuples and dicts element by element, anything else by ``repr``. A path through a module
that lacks the next name (an API of another release of the framework) raises ``Unsupported``.
"""

import sys
import types
from dataclasses import dataclass

from backends.contract import Unsupported


@dataclass(frozen=True)
class Shown:
    """An argument that runs as ``value`` and is shown as ``text``: a value a fast path passes
    in place of the user's (which the adapter then sets another way, and says so)."""

    value: object
    text: str


class Calls:
    """A recorder of native calls; ``text`` is the calls made so far, in order."""

    def __init__(self, **roots):
        self._roots = dict(roots)  # first segment of a path -> module or value
        self._lines = []  # call texts in order; None where folded into a later call
        self._names = {}  # id(value) -> (value, name)
        self._results = {}  # id(result) -> (result, index of its line), for unnamed results

    def __call__(self, path, *args, **kwargs):
        """Call the object at the dotted ``path`` with these arguments, record it, return its result."""
        head, *rest = path.split(".")
        target = self._roots[head]
        for name in rest:
            if isinstance(target, types.ModuleType) and not hasattr(target, name):
                version = getattr(sys.modules.get(target.__name__.partition(".")[0]), "__version__", "")
                raise Unsupported(f"the installed {target.__name__} {version} has no {name} ({path})")
            target = getattr(target, name)
        shown = [*map(self._show, args), *(f"{key}={self._show(value)}" for key, value in kwargs.items())]
        result = target(*map(_value, args), **{key: _value(value) for key, value in kwargs.items()})
        if _nameable(result):  # a number or None is shown as itself, never as the call that returned it
            self._results[id(result)] = (result, len(self._lines))
        self._lines.append(f"{path}({', '.join(shown)})")
        return result

    def let(self, name, path, *args, **kwargs):
        """``name = path(...)``: the call recorded as an assignment; its result shows as ``name``
        in later calls and can start a later path (``name.method``)."""
        result = self(path, *args, **kwargs)
        self._lines[-1] = f"{name} = {self._lines[-1]}"
        self._roots[name] = result
        if _nameable(result):
            self._results.pop(id(result))
            self.name(result, name)
        return result

    def name(self, value, text):
        """Show ``value`` (an object, not a number or a string) as ``text`` in later calls."""
        if not _nameable(value):
            raise TypeError(f"name {text!r}: only objects can be named, not {value!r}")
        self._names[id(value)] = (value, text)
        return value

    def shown(self, value):
        """How ``value`` shows in a recorded call: its name, or its ``repr``."""
        return self._show(value)

    def say(self, text):
        """Record a step that is not one call: code run every step (a loss), or a setting."""
        self._lines.append(text)

    @property
    def text(self):
        return "; ".join(line for line in self._lines if line is not None)

    def _show(self, value):
        if id(value) in self._names and self._names[id(value)][0] is value:
            return self._names[id(value)][1]
        if id(value) in self._results and self._results[id(value)][0] is value:
            _, index = self._results.pop(id(value))
            text, self._lines[index] = self._lines[index], None
            return text
        if isinstance(value, Shown):
            return value.text
        if type(value) is list:
            return "[" + ", ".join(map(self._show, value)) + "]"
        if type(value) is tuple:
            return "(" + ", ".join(map(self._show, value)) + ("," if len(value) == 1 else "") + ")"
        if type(value) is dict:
            return "{" + ", ".join(f"{self._show(k)}: {self._show(v)}" for k, v in value.items()) + "}"
        return repr(value)


def _nameable(value):
    """Whether ``value`` can stand for one call or name: not None, a number or a string, which
    are shared objects (one ``1.0`` may be another's)."""
    return not (value is None or isinstance(value, bool | int | float | complex | str | bytes))


def _value(argument):
    """What an argument runs as: ``Shown`` values unwrapped, at any depth of lists, tuples and dicts."""
    if isinstance(argument, Shown):
        return argument.value
    if type(argument) in (list, tuple):
        return type(argument)(map(_value, argument))
    if type(argument) is dict:
        return {key: _value(value) for key, value in argument.items()}
    return argument
