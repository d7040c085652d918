"""A user's snippet read as one of the source framework's APIs, with every value the API takes.

The snippet is parsed, never run. Its statements are matched with the call probes of the source's
fingerprint (``harness.forms``): each probe's statements that carry a value or spare parameters
against the user's statements of the same function, argument by argument, on the paths the
framework's own signatures give (so ``SGD(params, 0.1)`` is ``SGD(params, lr=0.1)``). The probe
whose statements differ least is the user's API and bias handling: its slots give the user's lr,
λ and hyperparameters, and each one the user leaves out is the framework's default there, read from
the framework (``default_at``). A schedule given as the lr (or a torch scheduler) is read the same
way against the schedule call probes; parameter groups (a list of ``{'params': ...}`` dicts) are
read for the λ and lr of each group, the ones with λ = 0 being the spared parameters.
"""

import ast
import warnings
from dataclasses import dataclass

from backends.contract import Statement
from harness import forms
from harness.errors import UsageError
from harness.fingerprint import CallKey
from harness.port import groups, schedules

MAX_TEXT = 10_000  # characters of pasted code port reads (a snippet, not a program)
TARGETS = ("optimizer", "trainer", "scheduler", "schedule")  # the names the probes give what trains


@dataclass(frozen=True)
class Reading:
    """The user's snippet as ``key``'s API of ``backend``: ``values`` {case field or forms.STEPS:
    value}, of which ``defaulted`` are the framework's defaults; ``left_out``: the user's arguments
    that no value of decaylens's case stands for, as written (``amsgrad=True``); ``names``: {a name of
    the probe's statements: the user's expression in its place} (``spared``: ``no_decay``);
    ``groups``: the user's parameter groups read, (their parameters, λ, lr) each; ``sparing``: the
    user's statements of the framework's sparing idiom; ``statements``: the user's, as written, and
    what trains bound to the probe's name for it."""

    backend: str
    key: CallKey
    values: dict
    defaulted: tuple
    left_out: tuple
    names: dict
    groups: tuple
    sparing: tuple
    statements: tuple

    @property
    def lr(self):
        return self.values["optimizer.lr"]

    @property
    def strength(self):
        return self.values.get("penalty.strength", 0.0)


def parse(text):
    """The user's statements, each a ``forms.Parsed``; UsageError saying why the text is not Python."""
    if not isinstance(text, str) or not text.strip():
        raise UsageError("no code given; paste the optimizer call as written, e.g. 'torch.optim.SGD(params, lr=0.1)'")
    if len(text) > MAX_TEXT:
        raise UsageError(f"the code is {len(text)} characters; allowed: at most {MAX_TEXT} (paste the optimizer part)")
    try:
        with warnings.catch_warnings():  # a user's odd string ("\(") is read, not warned about
            warnings.simplefilter("ignore")
            tree = ast.parse(text.strip())
        found = [
            forms.Parsed(ast.unparse(node)) for node in tree.body if not isinstance(node, ast.Import | ast.ImportFrom)
        ]
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        why = getattr(error, "msg", None) or type(error).__name__
        raise UsageError(f"cannot parse the code as Python ({why}); paste the optimizer call as written") from None
    if not any(statement.head for statement in found):
        raise UsageError("the code calls no function; paste the optimizer call, e.g. 'torch.optim.SGD(params, lr=0.1)'")
    return found


def read(text, fingerprint):
    """The Reading of the user's ``text`` among ``fingerprint``'s call probes; UsageError naming what
    port cannot read, and what it can."""
    statements = parse(text)
    wanted, known = _catalog(fingerprint)
    scheduled = [s for s in statements if s.head in known]
    rest = [s for s in statements if s not in scheduled]
    tried = [(_match(rest, statements_of), key, probe) for key, probe, statements_of in wanted]
    if not tried:
        raise UsageError(
            f"the {fingerprint.backend} fingerprint has no call probes; make it again with decaylens probe"
        )
    bias_order = {"default": 0, True: 1, False: 2}  # of equally close probes, the API as it is by default
    match, key, probe = min(tried, key=lambda t: (not t[0].pairs, t[0].distance, bias_order[t[1].decay_bias]))
    if not match.pairs:
        heads = sorted({s.head for s in rest if s.head})
        readable = sorted({p.head for _, p in _calls(fingerprint) if p.head})
        raise UsageError(
            f"no {fingerprint.backend} API port knows calls {', '.join(heads)}; it reads {', '.join(readable)}"
        )
    if match.why:
        raise UsageError(f"cannot read the code as {fingerprint.backend}'s {key.optimizer} {key.kind}: {match.why}")
    values, defaulted = _values(match)
    schedule = schedules.read(match, scheduled, known, values, defaulted)
    if "optimizer.lr" not in values:
        raise UsageError(
            f"cannot read the lr of the code as {fingerprint.backend}'s {key.optimizer}; give it as a number"
        )
    if schedule is not None:
        key = key._replace(schedule=schedule)
    return Reading(
        fingerprint.backend, key, values, tuple(defaulted), tuple(match.left_out), match.names, match.groups,
        tuple(match.sparing), tuple(_runnable(statements, match)),
    )  # fmt: skip


@dataclass
class _Match:
    """The user's statements against a probe's: ``pairs`` (user's Parsed, probe's Parsed, its slots);
    ``distance``: the arguments, flags and statements that differ; ``why``: the first of them, in
    words; ``left_out``, ``names``, ``groups`` as Reading has them; ``lr_nodes``: the user's
    expression where the probe has the lr (a schedule), by pair."""

    pairs: list
    distance: int
    why: str
    left_out: list
    names: dict
    groups: tuple
    lr_nodes: list
    sparing: list


_CATALOGS = {}  # id(fingerprint) -> (fingerprint, its _catalog): a fingerprint's call probes are parsed once


def _catalog(fingerprint):
    """([(key, probe, its wanted statements)] of the fingerprint's ok call probes without a schedule, the
    statements that carry a value or spare parameters each as (Parsed, its slots, whether it spares);
    ``schedules.probes``), made once per fingerprint."""
    if id(fingerprint) not in _CATALOGS or _CATALOGS[id(fingerprint)][0] is not fingerprint:
        wanted = []
        for key, probe in fingerprint.calls.items():
            if probe.status == "ok" and key.schedule == "constant":
                spared = _spared_heads(fingerprint, key)
                parsed = [p for p in forms.parsed(probe.statements) if p.kind in ("call", "penalty")]
                found = [(p, slots, p.head in spared) for p in parsed
                         if (slots := forms.slots(p, forms.ALL_SENTINELS)) or p.head in spared]  # fmt: skip
                wanted.append((key, probe, found))
        if len(_CATALOGS) > 16:  # a process reads a few fingerprints; tests, many
            _CATALOGS.clear()
        _CATALOGS[id(fingerprint)] = (fingerprint, (wanted, schedules.probes(fingerprint)))
    return _CATALOGS[id(fingerprint)][1]


def _match(user, wanted):
    """How the user's statements compare with a call probe's ``wanted`` statements (``_catalog``)."""
    match = _Match([], 0, "", [], {}, (), [], [])
    free, origin = [], {}  # the user's statements, a chain split in two; the user's text of each
    for statement in user:
        for part in _unchained(statement):
            free.append(part)
            origin[id(part)] = statement.text
    for parsed, slots, sparing in wanted:
        mine = next((u for u in free if u.head and u.head == parsed.head), None)
        if mine is None:
            match.distance += 1
            if parsed.kind != "penalty":  # code that writes no penalty into its loss has λ = 0 there
                match.why = match.why or f"it has no {parsed.head} statement ({_short(parsed.text)})"
            continue
        free.remove(mine)
        if sparing and origin[id(mine)] not in match.sparing:
            match.sparing.append(origin[id(mine)])
        mine = forms.Parsed(mine.text, parsed.signatures)
        match.pairs.append((mine, parsed, slots))
        _compare(mine, parsed, slots, match)
    for statement in free:
        if statement.head and statement.kind == "call" and statement.target not in (None, *TARGETS[:1]):
            continue  # the user's own objects (a model, a mask made by a call)
        if statement.head:
            match.distance += 1
            match.why = match.why or f"the probe of this API has no {statement.head}(...) statement"
    return match


CHAINED = "_chained"  # the name port gives the call a method is called on, in a chain it reads as two statements


def _unchained(statement):
    """A statement that calls a method on a call's result (``net.collect_params('.*bias').setattr('wd_mult',
    0.0)``) as the two a probe records (``spared = net.collect_params(...)``; ``spared.setattr(...)``)."""
    copy = forms.Parsed(statement.text, statement.signatures, statement.kind)  # matching must not change the user's
    call = forms.outermost(copy.tree)
    inner = call.func.value if call is not None and isinstance(call.func, ast.Attribute) else None
    if not (isinstance(inner, ast.Call) and forms.dotted(inner.func)):
        return [copy]
    call.func.value = ast.Name(CHAINED)
    return [forms.Parsed(f"{CHAINED} = {ast.unparse(inner)}"), forms.Parsed(ast.unparse(copy.tree))]


def _parsed(statement):
    return forms.Parsed(statement.text, statement.signatures, statement.kind)


def _short(text):
    return repr(text if len(text) <= 70 else text[:67] + "...")


def _compare(mine, theirs, slots, match):
    """Compare one user statement with the probe's of the same function, argument by argument."""
    found = groups.found(mine)
    if found is not None:
        mine = groups.canonical(mine, found, slots, match)
    own = forms.nodes(mine)
    probe = {path: node for path, node, _ in forms.arguments(theirs)}
    calls = [n for n in own.values() if isinstance(n, ast.Call)]
    objects = [path for path, node in own.items() if _is_object(node)]  # the user's own, in the probe's place
    probed = forms.nodes(theirs)
    for path in objects:
        if path in probed and not forms.is_number(forms.literal(probed[path])):
            match.names[ast.unparse(probed[path])] = ast.unparse(own[path])
            if any(isinstance(n, ast.Dict) for n in ast.walk(probed[path])):  # the probe's groups, which spare
                match.distance += 1
    if _order(mine) != _order(theirs) and sorted(_order(mine)) == sorted(_order(theirs)):
        match.distance += 2
        match.why = match.why or f"its calls come in another order: {', '.join(_order(mine))}"
    for path in slots:
        node = own.get(path) if path in own else _called(own, path)
        if node is None or forms.is_number(forms.literal(node)):
            continue
        if slots[path] == forms.Expression(("value", "optimizer.lr")):
            match.lr_nodes.append((mine, path, node))
        else:
            match.distance += 1
            match.why = match.why or f"{forms.shown(path)} is {ast.unparse(node)}, where port reads a number"
    under = [path for _, path, _ in match.lr_nodes]
    for path, node, _ in forms.arguments(mine):
        if path in slots or any(path[: len(p)] == p for p in under) or node in calls:
            continue
        if path in objects and path in probed:
            continue
        if path in probe:
            _same(path, node, probe[path], match)
        elif not _at_default(theirs, path, node):
            match.distance += 1
            match.left_out.append(f"{forms.shown(path)}={ast.unparse(node)}")
    for path, node in probe.items():
        if path in slots or path in own or any(path[: len(p)] == p for p in [*under, *objects]) or "#" in path:
            continue
        if isinstance(node, ast.Name | ast.Attribute | ast.Lambda | ast.List):
            match.distance += 1
            match.why = match.why or f"it gives no {forms.shown(path)} (the probe's {ast.unparse(node)})"
        elif forms.literal(node) != forms.default_at(theirs, path):
            match.distance += 1
            match.why = match.why or f"it leaves {forms.shown(path)} at its default, the probe sets {ast.unparse(node)}"


def _is_object(node):
    """Whether a node is the user's own object (a name, an attribute, a call of no arguments such as
    ``model.parameters()``), not a number, a string or a container of them."""
    return isinstance(node, ast.Name | ast.Attribute) or (
        isinstance(node, ast.Call) and not (node.args or node.keywords)
    )


def _same(path, mine, theirs, match):
    """A user's argument where the probe has a fixed one: the same literal, or the user's own object
    in place of the probe's (a name for its spared parameters, its mask)."""
    a, b = forms.literal(mine), forms.literal(theirs)
    if not isinstance(a, ast.AST) and not isinstance(b, ast.AST):
        if a != b:
            match.distance += 1
            match.why = match.why or f"{forms.shown(path)} is {a!r}, the probe's {b!r}"
        return
    if isinstance(b, ast.Name):
        if ast.unparse(mine) != CHAINED:
            match.names[b.id] = ast.unparse(mine)
    elif isinstance(b, ast.AST) and isinstance(a, ast.AST):
        match.names[ast.unparse(theirs)] = ast.unparse(mine)
    else:
        match.distance += 1
        match.why = match.why or f"{forms.shown(path)} is {ast.unparse(mine)}, the probe's {ast.unparse(theirs)}"


def _at_default(parsed, path, node):
    """Whether the user's argument at ``path`` is what the framework gives when it is left out."""
    value = forms.literal(node)
    default = forms.default_at(parsed, path)
    return not isinstance(value, ast.AST) and default is not ... and value == default


def _called(own, path):
    """The user's call whose arguments sit at ``path`` (the call node at path + its name), if any."""
    return next((n for p, n in own.items() if p[:-1] == path and isinstance(n, ast.Call)), None)


def _order(parsed):
    """The last names of the calls with arguments inside the statement's outermost call, in order."""
    call = forms.outermost(parsed.tree)
    found = [n for n in ast.walk(call) if isinstance(n, ast.Call) and n is not call and (n.args or n.keywords)]
    found.sort(key=lambda n: (n.lineno, n.col_offset))
    return [forms.dotted(n.func).rpartition(".")[2] for n in found if forms.dotted(n.func)]


def _values(match):
    """({field: value}, [fields at the framework's default]) of the user's call, from each slot of the
    probe's statements: the user's number there, else the framework's default at that argument."""
    values, defaulted, pending = {}, [], []
    for mine, theirs, slots in match.pairs:
        own = forms.nodes(mine)
        for path, expression in slots.items():
            node = own.get(path)
            number = forms.literal(node) if node is not None else None
            if node is not None and not forms.is_number(number):
                continue  # a schedule in the lr's place
            if node is None:
                number = forms.default_at(theirs, path)
                number = 0.0 if number is None else number  # a default of None turns the feature off: no momentum, no λ
                if not forms.is_number(number):
                    where = f"{forms.shown(path)} in {theirs.head}(...)"
                    raise UsageError(f"cannot tell the default of {where} from its signature; give it")
                defaulted.append(expression[-1] if expression[0] == "value" else expression[1])
            pending.append((expression, number))
    for _ in range(2):  # an expression of two fields is solved once the other is known
        for expression, number in pending:
            solved = expression.solve(number, values)
            if solved is not None:
                values.setdefault(*solved)
    return values, [field for field in dict.fromkeys(defaulted) if field in values]


def _spared_heads(fingerprint, key):
    """The functions a call probe sparing the bias calls that its sibling decaying it does not: the
    framework's sparing idiom (``exclude_from_weight_decay``, ``setattr``)."""
    if key.decay_bias is not False:
        return set()
    sibling = sibling_of(fingerprint, key)
    if sibling is None:
        return set()
    return {_parsed(s).head for s in _probe_statements(key, fingerprint)} - {
        _parsed(s).head for s in sibling.statements
    }


def sibling_of(fingerprint, key):
    """The call probe of ``key``'s API decaying the bias (of the API called the default way, where a
    variant is probed sparing the bias only); None if there is none."""
    for variant in dict.fromkeys((key.variant, "")):
        found = fingerprint.calls.get(key._replace(decay_bias=True, variant=variant, schedule="constant"))
        if found is not None and found.status == "ok":
            return found
    return None


def _probe_statements(key, fingerprint):
    return fingerprint.calls[key].statements


def _calls(fingerprint):
    return [
        (key, _parsed(s)) for key, probe in fingerprint.calls.items() for s in probe.statements if probe.status == "ok"
    ]


def _runnable(statements, match):
    """The user's statements as Statements to run, each that makes what the probe trains with (its
    ``optimizer``, ``trainer``) followed by that name bound to it where the user calls it otherwise."""
    found = []
    for statement in statements:
        found.append(Statement("call" if statement.head else "code", statement.text))
        paired = next((theirs for mine, theirs, _ in match.pairs if mine.head == statement.head), None)
        if paired is None or paired.target not in TARGETS or statement.target == paired.target:
            continue
        if statement.target is None:
            found[-1] = Statement("call", f"{paired.target} = {statement.text}")
        else:
            found.append(Statement("code", f"{paired.target} = {statement.target}"))
    return found
