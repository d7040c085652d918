"""How a penalty API is written in its framework, read from a run of it (a *call probe*).

A call probe is a probe case whose every number the framework is given differs from every other
(``SENTINELS``), so that the statements its run records show where each one went: torch's
``torch.optim.AdamW(params, lr=0.0123, betas=(0.8234, 0.9345), ...)`` takes the lr at ``lr`` and
β₂ at index 1 of ``betas``. ``slots`` reads them back, by value, never typed in; ``harness.port``
reads a user's call at the same places and writes a target's call there.

A place in a statement is a *path*: the outermost call's arguments by the name its signature gives
them (``Statement.signatures``: a positional argument is named as the function names it), the rest
of a ``*args`` by position, list and tuple elements by index, dict entries by key; a call inside an
argument adds its function's last name, and inside a ``*args`` stands for its position, so that the
order of ``optax.chain``'s parts does not change a path.
"""

import ast
import itertools
import math
import warnings

from harness.errors import UsageError

# The value a call probe gives each case field: no two alike, and no sum, difference, product or
# half of two alike (``Expression``), nor equal to another number the probe's statements hold
# (the probe model's widths 1 and 2, a group's weight_decay 0.0).
SENTINELS = {
    "optimizer.lr": 0.0123,
    "optimizer.momentum": 0.8123,
    "optimizer.beta1": 0.8234,
    "optimizer.beta2": 0.9345,
    "optimizer.eps": 3.21e-05,
    "optimizer.rho": 0.8456,
    "optimizer.initial_accumulator": 0.0567,
    "optimizer.momentum_decay": 0.00456,
    "penalty.strength": 0.0678,
}
# ... and a schedule call probe's schedule, over STEPS steps.
SCHEDULE_SENTINELS = {"schedule.factor": 0.3456, "schedule.interval": 5, "schedule.warmup": 7, "schedule.floor": 0.0789}
STEPS = "steps"  # the run's number of steps, a value some schedules take (a cosine's span)
SCHEDULE_STEPS = 46


class Expression(tuple):
    """How a number of a statement is made of case values: ``("value", f)``, ``("half", f)``,
    ``("product", f, g)`` or ``("difference", f, g)`` of the fields f, g (or STEPS)."""

    def of(self, values):
        """The number for ``values`` ({field: value})."""
        how, *fields = self
        a, *b = (values[field] for field in fields)
        return {"value": lambda: a, "half": lambda: a / 2, "product": lambda: a * b[0], "difference": lambda: a - b[0]}[
            how
        ]()

    def solve(self, number, known):
        """(field, value) of the one field of this expression not in ``known`` ({field: value}) that
        makes the expression ``number``; None when every field is known or the others are not."""
        how, *fields = self
        unknown = [field for field in fields if field not in known]
        if len(unknown) != 1:
            return None
        (field,) = unknown
        other = next((known[f] for f in fields if f != field), None)
        if how == "value":
            return field, number
        if how == "half":
            return field, 2 * number
        if how == "product":
            return (field, number / other) if other else None
        return field, (number + other if field == fields[0] else other - number)  # difference: fields[0] − fields[1]


def expressions(values):
    """{number: Expression} of every expression of these ``values`` ({field: value}) a framework's call
    may hold: a value; half a float value (λ/2 of a penalty in the loss); the product of two float values
    (a schedule's floor × lr); STEPS less an integer value (a cosine's span after its warmup)."""
    found = {value: Expression(("value", field)) for field, value in values.items()}
    floats = {field: value for field, value in values.items() if isinstance(value, float)}
    for field, value in floats.items():
        found.setdefault(value / 2, Expression(("half", field)))
    for (f, a), (g, b) in itertools.combinations(floats.items(), 2):
        found.setdefault(a * b, Expression(("product", f, g)))
    for field, value in values.items():
        if STEPS in values and field != STEPS and isinstance(value, int):
            found.setdefault(values[STEPS] - value, Expression(("difference", STEPS, field)))
    return found


def _number(value):
    return isinstance(value, int | float) and not isinstance(value, bool)


def _find(number, known):
    """The expression of ``known`` ({number: Expression}) equal to ``number`` to 12 digits, or None."""
    return next((e for value, e in known.items() if math.isclose(number, value, rel_tol=1e-12)), None)


def slots(statement, values):
    """{path: Expression} of the numbers of a parsed ``statement`` (``parse``) that are made of the
    call probe's ``values``."""
    known = expressions(values)
    found = {}
    for path, node, _ in arguments(statement):
        number = literal(node)
        if _number(number) and (expression := _find(number, known)) is not None:
            found[path] = expression
    return found


class Parsed:
    """A statement parsed: its ``tree`` (an ``ast.Module``), the ``signatures`` of the calls it makes
    ({dotted path: ((name, default, how), ...)}), and its ``head``: the last name of its outermost
    call's function (``AdamW``, ``exclude_from_weight_decay``), None for code that calls nothing and
    for a note (prose, parsed as no code)."""

    def __init__(self, text, signatures=None, kind="call"):
        self.text, self.kind = text, kind
        self.signatures = dict(signatures or {})
        try:
            with warnings.catch_warnings():  # a user's odd string ("\(") is read, not warned about
                warnings.simplefilter("ignore")
                self.tree = ast.parse(text if kind != "note" else "")  # prose: no code
        except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
            raise UsageError(f"cannot parse {_short(text)} as Python ({type(error).__name__}: {error})") from None
        call = outermost(self.tree)
        self.head = dotted(call.func).rpartition(".")[2] if call is not None else None

    @property
    def target(self):
        """The name the statement assigns, or None."""
        node = self.tree.body[0] if len(self.tree.body) == 1 else None
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            return node.targets[0].id
        return None

    def unparse(self):
        return ast.unparse(self.tree)

    def signature(self, function):
        """The signature of a call of ``function`` (dotted) in this statement: its own, else the one
        whose last name is the same (a user's ``optim.AdamW`` is the probe's ``torch.optim.AdamW``)."""
        if function in self.signatures:
            return self.signatures[function]
        last = function.rpartition(".")[2]
        found = [s for path, s in self.signatures.items() if path.rpartition(".")[2] == last]
        return found[0] if len(found) == 1 else None


def parsed(statements):
    """A probe's statements (``contract.Statement``) as ``Parsed``, each knowing the signatures of all
    (a configuration's defaults are kept in a note of their own, ``Calls.defaults``)."""
    signatures = {path: sig for statement in statements for path, sig in statement.signatures.items()}
    return [Parsed(statement.text, signatures, statement.kind) for statement in statements]


def _short(text):
    text = text if len(text) <= 60 else text[:57] + "..."
    return repr(text)


def outermost(tree):
    """The statement's outermost call (``x = f(...)``, ``f(...)``, ``a.b(...)``), or None."""
    node = tree.body[0] if len(tree.body) == 1 else None
    value = node.value if isinstance(node, ast.Assign | ast.Expr) else None
    return value if isinstance(value, ast.Call) and dotted(value.func) else None


def dotted(node):
    """``a.b.c`` of a Name/Attribute chain (a call's result in it kept as ``()``), else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and (head := dotted(node.value)):
        return f"{head}.{node.attr}"
    if isinstance(node, ast.Call) and (head := dotted(node.func)):
        return f"{head}()"
    return None


def literal(node):
    """The number, string, bool or None a node writes (``-0.1`` too), else the node itself."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
        value = node.operand.value
        return -value if _number(value) else node
    return node


def arguments(parsed):
    """(path, node, replace) of every value in the arguments of the statement's outermost call, at any
    depth of nested calls, lists, tuples and dicts; ``replace(new)`` puts a node in its place. A value
    that is an expression (``0.5 * (...)``, a lambda) also yields each number in it, at its path and
    ``"#"``, the number's place in the expression; code that calls nothing (``loss = loss + 0.25 * …``)
    yields its numbers so, from the path ()."""
    call = outermost(parsed.tree)
    if call is not None:
        return list(_walk_call(parsed, call, ()))
    node = parsed.tree.body[0] if len(parsed.tree.body) == 1 else None
    value = getattr(node, "value", None)
    return list(_inner(value, ())) if isinstance(value, ast.AST) else []


def _walk_call(parsed, call, path):
    function = dotted(call.func) or ""
    signature = parsed.signature(function) or ()
    positional = [name for name, _, how in signature if how == "p"]
    varargs = any(how == "*" for _, _, how in signature)
    for index, arg in enumerate(call.args):
        if index < len(positional):
            segment = (positional[index],)
        else:
            segment = () if varargs and _is_call(arg) else (index - len(positional) if varargs else index,)
        yield from _walk(parsed, arg, (*path, *segment), lambda new, i=index: call.args.__setitem__(i, new))
    for keyword in call.keywords:
        if keyword.arg is not None:
            yield from _walk(
                parsed, keyword.value, (*path, keyword.arg), lambda new, k=keyword: setattr(k, "value", new)
            )


def _is_call(node):
    return isinstance(node, ast.Call) and (node.args or node.keywords) and dotted(node.func)


def _walk(parsed, node, path, replace):
    if _is_call(node):
        yield from _walk_call(parsed, node, (*path, dotted(node.func).rpartition(".")[2]))
    elif isinstance(node, ast.List | ast.Tuple):
        for index, element in enumerate(node.elts):
            yield from _walk(parsed, element, (*path, index), lambda new, i=index: node.elts.__setitem__(i, new))
    elif isinstance(node, ast.Dict) and all(isinstance(key, ast.Constant) for key in node.keys):
        for index, (key, value) in enumerate(zip(node.keys, node.values)):
            yield from _walk(parsed, value, (*path, key.value), lambda new, i=index: node.values.__setitem__(i, new))
    else:
        yield path, node, replace
        if not isinstance(node, ast.Constant | ast.Name | ast.Attribute):
            yield from _inner(node, path)


def _inner(node, path):
    """(path + ("#", i), constant, replace) of the i-th number or string in an expression."""
    constants = [n for n in ast.walk(node) if isinstance(n, ast.Constant)]
    for index, constant in enumerate(constants):
        yield (*path, "#", index), constant, lambda new, c=constant: setattr(c, "value", new.value)


def default_at(parsed, path):
    """The default the framework gives the argument at ``path`` of the statement's outermost call when
    it is left out, as a Python value: its signature's (an element of a default tuple; for an entry of
    a configuration dict, the defaults ``Calls.defaults`` keeps under ``<function>.<parameter>``);
    ``...`` where the signatures do not tell."""
    call, rest = outermost(parsed.tree), list(path)
    while call is not None and rest:
        function, segment = dotted(call.func), rest.pop(0)
        names = {name: text for name, text, _ in parsed.signature(function) or ()}
        nested = _argument(parsed, call, segment)
        if segment not in names:  # a call among the *args, named by its function
            call = nested if isinstance(nested, ast.Call) else None
            continue
        if isinstance(nested, ast.Call) and rest and rest[0] == _last(nested):
            call = nested
            rest.pop(0)
            continue
        configuration = parsed.signature(f"{function}.{segment}")
        if configuration is not None and rest:
            names, segment = {name: text for name, text, _ in configuration}, rest.pop(0)
        default = _value(names.get(segment))
        for index in rest:
            if not isinstance(index, int) or not isinstance(default, tuple | list) or index >= len(default):
                return ...
            default = default[index]
        return default
    return ...


def _last(call):
    return dotted(call.func).rpartition(".")[2]


def _argument(parsed, call, segment):
    """The node ``call`` passes for the parameter ``segment`` (by position or by name), or its call among
    the ``*args`` whose function's last name is ``segment``; None if it passes none."""
    positional = [name for name, _, how in parsed.signature(dotted(call.func)) or () if how == "p"]
    for index, arg in enumerate(call.args):
        if index < len(positional) and positional[index] == segment:
            return arg
        if _is_call(arg) and _last(arg) == segment:
            return arg
    return next((keyword.value for keyword in call.keywords if keyword.arg == segment), None)


def nodes(parsed):
    """{path: node} of every argument of the statement's outermost call, on ``arguments``' paths, lists,
    tuples, dicts and calls included (a call at its argument's path, and at that path and its name)."""
    call = outermost(parsed.tree)
    return {} if call is None else dict(_nodes(parsed, call, ()))


def _nodes(parsed, call, path):
    signature = parsed.signature(dotted(call.func) or "") or ()
    positional = [name for name, _, how in signature if how == "p"]
    varargs = any(how == "*" for _, _, how in signature)
    for index, arg in enumerate(call.args):
        if index < len(positional):
            segment = (positional[index],)
        else:
            segment = () if varargs and _is_call(arg) else (index - len(positional) if varargs else index,)
        yield from _nodes_of(parsed, arg, (*path, *segment))
    for keyword in call.keywords:
        if keyword.arg is not None:
            yield from _nodes_of(parsed, keyword.value, (*path, keyword.arg))


def _nodes_of(parsed, node, path):
    if path:
        yield path, node
    if _is_call(node):
        path = (*path, _last(node))
        yield path, node
        yield from _nodes(parsed, node, path)
    elif isinstance(node, ast.List | ast.Tuple):
        for index, element in enumerate(node.elts):
            yield from _nodes_of(parsed, element, (*path, index))
    elif isinstance(node, ast.Dict) and all(isinstance(key, ast.Constant) for key in node.keys):
        for key, value in zip(node.keys, node.values):
            yield from _nodes_of(parsed, value, (*path, key.value))


def _value(text):
    """A default's literal text as a value; ``...`` where it has none (an object, or no default)."""
    if text is None or text == "…":
        return ...
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return ...


ALL_SENTINELS = SENTINELS | SCHEDULE_SENTINELS | {STEPS: SCHEDULE_STEPS}


def pinned(statements):
    """A call probe's outcome as its golden holds it: for each call or penalty statement, its head and,
    for each value of the probe in it, where it goes (the path), of what it is made, and the default
    the framework gives that argument (its text)."""
    found = []
    for statement in parsed(statements):
        if statement.kind not in ("call", "code", "penalty"):
            continue
        for path, expression in sorted(slots(statement, ALL_SENTINELS).items(), key=repr):
            found.append((statement.head, path, tuple(expression), repr(default_at(statement, path))))
    return tuple(found)


def is_number(value):
    """Whether a literal read from code is a number (an int or float, not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def shown(path):
    """An argument's path as text: ``betas.0``."""
    return ".".join(map(str, path))
