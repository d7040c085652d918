"""The native calls an adapter makes, each written once: run and recorded in one step.

``calls("torch.optim.SGD", groups, lr=0.1)`` looks the dotted path up from the roots the
adapter named (``Calls(torch=torch)``) or the values it named, calls what it finds with these
arguments, returns the result and keeps the statement ``torch.optim.SGD([model.weight], lr=0.1)``:
the text is made from the very path and arguments that ran, so it cannot drift from them.
Arguments show as a user would write them: a named value by its name (``let``, ``name``), the
result of an earlier call by that call's text (the earlier statement is folded into this one),
lists, tuples and dicts element by element, anything else by ``repr``. A path through a module
that lacks the next name (an API of another release of the framework) raises ``Unsupported``.

What is not one call is said by its kind (``Statement.kind``): ``code`` a user writes once (a
mask), ``loss`` the loss computed at every step, ``penalty`` a penalty added to it at every step,
``note`` prose. Each call keeps the parameters and defaults of what it called, read from the
framework (``signature``), so that a user's call can be read with the framework's own defaults.
"""

import ast
import inspect
import sys
import types
from dataclasses import dataclass, field

from backends.contract import Statement, Unsupported


@dataclass(frozen=True)
class Shown:
    """An argument that runs as ``value`` and is shown as ``text``: a value a fast path passes
    in place of the user's (which the adapter then sets another way, and says so)."""

    value: object
    text: str


@dataclass
class _Line:
    kind: str
    text: str
    signatures: dict = field(default_factory=dict)  # path -> signature of each call folded into the line


class Calls:
    """A recorder of native calls; ``statements`` are the calls and code so far, in order."""

    def __init__(self, **roots):
        self._roots = dict(roots)  # first segment of a path -> module or value
        self._lines = []  # _Lines in order; None where folded into a later call
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
        signatures = {}
        shown = [*(self._show(a, signatures) for a in args)]
        shown += [f"{key}={self._show(value, signatures)}" for key, value in kwargs.items()]
        result = target(*map(_value, args), **{key: _value(value) for key, value in kwargs.items()})
        if _nameable(result):  # a number or None is shown as itself, never as the call that returned it
            self._results[id(result)] = (result, len(self._lines))
        signatures[path] = signature(target)
        self._lines.append(_Line("call", f"{path}({', '.join(shown)})", signatures))
        return result

    def let(self, name, path, *args, **kwargs):
        """``name = path(...)``: the call recorded as an assignment; its result shows as ``name``
        in later calls and can start a later path (``name.method``)."""
        result = self(path, *args, **kwargs)
        self._lines[-1].text = f"{name} = {self._lines[-1].text}"
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

    def defaults(self, path, target, **config):
        """Keep the parameters and defaults of ``target`` under ``path``, how a user names what they
        configure without calling it (an optimizer a Trainer makes from its name), a default the
        signature leaves None replaced by the value the framework's own object holds (``config``)."""
        found = [
            (name, repr(config[name]) if name in config else default, how) for name, default, how in signature(target)
        ]
        self._lines.append(_Line("note", f"the defaults of {path} are {_name(target)}'s", {path: tuple(found)}))

    def shown(self, value):
        """How ``value`` shows in a recorded call: its name, or its ``repr``."""
        return self._show(value, {})

    def code(self, text):
        """Record Python a user writes, run once (a mask, a parameter list), beside the code that runs it."""
        self._lines.append(_Line("code", text))

    def loss(self, text):
        """Record the loss computed at every step, beside the function that computes it."""
        self._lines.append(_Line("loss", text))

    def penalty(self, text):
        """Record a penalty added to the loss at every step, beside the function that computes it."""
        self._lines.append(_Line("penalty", text))

    def note(self, text):
        """Record what is not code: how a value was set, what runs every step."""
        self._lines.append(_Line("note", text))

    @property
    def statements(self):
        """The Statements recorded so far, in order."""
        return tuple(Statement(line.kind, line.text, line.signatures) for line in self._lines if line is not None)

    @property
    def text(self):
        return "; ".join(statement.text for statement in self.statements)

    def _show(self, value, signatures):
        if id(value) in self._names and self._names[id(value)][0] is value:
            return self._names[id(value)][1]
        if id(value) in self._results and self._results[id(value)][0] is value:
            _, index = self._results.pop(id(value))
            line, self._lines[index] = self._lines[index], None
            signatures.update(line.signatures)
            return line.text
        if isinstance(value, Shown):
            return value.text
        if type(value) is list:
            return "[" + ", ".join(self._show(v, signatures) for v in value) + "]"
        if type(value) is tuple:
            return "(" + ", ".join(self._show(v, signatures) for v in value) + ("," if len(value) == 1 else "") + ")"
        if type(value) is dict:
            items = (f"{self._show(k, signatures)}: {self._show(v, signatures)}" for k, v in value.items())
            return "{" + ", ".join(items) + "}"
        return repr(value)


def signature(target):
    """((name, default, how), ...) of the parameters ``target`` takes, as its signature states them:
    the default as Python literal text, ``"…"`` for an object that has no literal, None where there is
    none; ``how`` is ``"p"`` (by position or name), ``"k"`` (by name only) or ``"*"`` (the rest of the
    positional arguments). A class whose ``__init__`` passes ``**kwargs`` on takes its bases' parameters
    too, by name; () when Python cannot read the signature (a builtin)."""
    try:
        own = inspect.signature(target)
    except (TypeError, ValueError):
        return ()
    found, chain = {}, [own]
    if inspect.isclass(target):
        chain += [inspect.signature(base.__init__) for base in target.__mro__[1:] if "__init__" in vars(base)]
    for depth, step in enumerate(chain):
        for parameter in step.parameters.values():
            if parameter.kind == parameter.VAR_KEYWORD or parameter.name == "self":
                continue
            how = {parameter.VAR_POSITIONAL: "*", parameter.KEYWORD_ONLY: "k"}.get(parameter.kind, "p")
            found.setdefault(parameter.name, (parameter.name, _literal(parameter.default), "k" if depth else how))
        if not any(p.kind == p.VAR_KEYWORD for p in step.parameters.values()):
            break
    return tuple(found.values())


def _literal(default):
    if default is inspect.Parameter.empty:
        return None
    text = repr(default)
    try:
        return text if ast.literal_eval(text) == default else "…"
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return "…"


def _name(target):
    return f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', repr(target))}".lstrip(".")


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
