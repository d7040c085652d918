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
import math
import warnings
from dataclasses import dataclass

from backends.contract import Statement
from harness import forms
from harness.errors import UsageError
from harness.fingerprint import CallKey

MAX_TEXT = 10_000  # characters of pasted code port reads (a snippet, not a program)
GROUPS = ("params", "parameters")  # where torch and Paddle take their parameter groups
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
    wanted, schedules = _catalog(fingerprint)
    scheduled = [s for s in statements if s.head in schedules]
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
        known = sorted({p.head for _, p in _calls(fingerprint) if p.head})
        raise UsageError(
            f"no {fingerprint.backend} API port knows calls {', '.join(heads)}; it reads {', '.join(known)}"
        )
    if match.why:
        raise UsageError(f"cannot read the code as {fingerprint.backend}'s {key.optimizer} {key.kind}: {match.why}")
    values, defaulted = _values(match)
    schedule = _schedule(match, scheduled, schedules, values, defaulted)
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
    ``_schedule_probes``), made once per fingerprint."""
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
        _CATALOGS[id(fingerprint)] = (fingerprint, (wanted, _schedule_probes(fingerprint)))
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
    groups = _groups(mine)
    if groups is not None:
        mine = _canonical(mine, groups, slots, match)
    own = forms.nodes(mine)
    probe = {path: node for path, node, _ in forms.arguments(theirs)}
    calls = [n for n in own.values() if isinstance(n, ast.Call)]
    objects = [path for path, node in own.items() if _is_object(node)]  # the user's own, in the probe's place
    probed = forms.nodes(theirs)
    for path in objects:
        if path in probed and not _is_number(forms.literal(probed[path])):
            match.names[ast.unparse(probed[path])] = ast.unparse(own[path])
            if any(isinstance(n, ast.Dict) for n in ast.walk(probed[path])):  # the probe's groups, which spare
                match.distance += 1
    if _order(mine) != _order(theirs) and sorted(_order(mine)) == sorted(_order(theirs)):
        match.distance += 2
        match.why = match.why or f"its calls come in another order: {', '.join(_order(mine))}"
    for path in slots:
        node = own.get(path) if path in own else _called(own, path)
        if node is None or _is_number(forms.literal(node)):
            continue
        if slots[path] == forms.Expression(("value", "optimizer.lr")):
            match.lr_nodes.append((mine, path, node))
        else:
            match.distance += 1
            match.why = match.why or f"{_show(path)} is {ast.unparse(node)}, where port reads a number"
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
            match.left_out.append(f"{_show(path)}={ast.unparse(node)}")
    for path, node in probe.items():
        if path in slots or path in own or any(path[: len(p)] == p for p in [*under, *objects]) or "#" in path:
            continue
        if isinstance(node, ast.Name | ast.Attribute | ast.Lambda | ast.List):
            match.distance += 1
            match.why = match.why or f"it gives no {_show(path)} (the probe's {ast.unparse(node)})"
        elif forms.literal(node) != forms.default_at(theirs, path):
            match.distance += 1
            match.why = match.why or f"it leaves {_show(path)} at its default, the probe sets {ast.unparse(node)}"


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
            match.why = match.why or f"{_show(path)} is {a!r}, the probe's {b!r}"
        return
    if isinstance(b, ast.Name):
        if ast.unparse(mine) != CHAINED:
            match.names[b.id] = ast.unparse(mine)
    elif isinstance(b, ast.AST) and isinstance(a, ast.AST):
        match.names[ast.unparse(theirs)] = ast.unparse(mine)
    else:
        match.distance += 1
        match.why = match.why or f"{_show(path)} is {ast.unparse(mine)}, the probe's {ast.unparse(theirs)}"


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


def _is_number(value):
    return isinstance(value, int | float) and not isinstance(value, bool)


def _show(path):
    return ".".join(map(str, path))


def _groups(parsed):
    """The parameter-group list of a call (a list of dicts each with a 'params' key, passed as its
    params or parameters), as (the argument's name, [dict node, ...]); None without one."""
    own = forms.nodes(parsed)
    for name in GROUPS:
        node = own.get((name,))
        if isinstance(node, ast.List) and node.elts and all(_is_group(e) for e in node.elts):
            return name, node.elts
    return None


def _is_group(node):
    return isinstance(node, ast.Dict) and any(isinstance(k, ast.Constant) and k.value == "params" for k in node.keys)


def _canonical(parsed, groups, slots, match):
    """The user's call with its parameter groups as the probe writes them: the decaying groups first,
    one λ and lr on the call itself, the spared ones (λ = 0) after with ``'weight_decay': 0.0``; every
    group's λ and lr read (a group's own, else the call's); UsageError where the groups decay at
    several λ or train at several lr, which one answer cannot say."""
    name, elements = groups
    call = forms.outermost(parsed.tree)
    keywords = {k.arg: k for k in call.keywords}
    strength = next((p[0] for p, e in slots.items() if e == forms.Expression(("value", "penalty.strength"))), None)
    lr = next((p[0] for p, e in slots.items() if e == forms.Expression(("value", "optimizer.lr"))), None)
    read = []
    for element in elements:
        own = {k.value: v for k, v in zip(element.keys, element.values) if isinstance(k, ast.Constant)}
        λ = _group_value(own.get(strength), keywords.get(strength))
        rate = _group_value(own.get(lr), keywords.get(lr))
        read.append((ast.unparse(own["params"]), λ, rate))
    decaying = [group for group in read if group[1] != 0]
    rates = {rate for _, _, rate in read}
    if len({λ for _, λ, _ in decaying}) > 1 or len(rates) > 1:
        shown = "; ".join(f"{p}: λ = {_text(λ)}, lr = {_text(r)}" for p, λ, r in read)
        raise UsageError(f"the parameter groups train with several λ or lr ({shown}); port answers for one of each")
    match.groups = tuple(read)
    spared = [p for p, λ, _ in read if λ == 0]
    decayed = [p for p, λ, _ in read if λ != 0]
    λ = decaying[0][1] if decaying else 0.0
    text = ast.unparse(call.func) + "(" + _joined(decayed, spared, name)
    extra = {k: v for k, v in keywords.items() if k not in (strength, lr, name)}
    given = [(lr, next(iter(rates))), (strength, λ if decaying else None)]
    text += "".join(f", {k}={_text(v)}" for k, v in given if k and v is not None)
    text += "".join(f", {k}={ast.unparse(v.value)}" for k, v in extra.items())
    if call.args and not isinstance(call.args[0], ast.List) or len(call.args) > 1:
        raise UsageError("beside parameter groups, port reads the lr and the rest by keyword (lr=1e-3, ...)")
    return forms.Parsed(_assigned(parsed, text + ")"), parsed.signatures)


def _group_value(own, keyword):
    """A group's λ or lr: its own entry, else the call's keyword, else None (the framework's default)."""
    node = own if own is not None else keyword.value if keyword is not None else None
    value = None if node is None else forms.literal(node)
    if isinstance(value, ast.AST):
        raise UsageError(f"a parameter group's value {ast.unparse(node)} is not a number; port reads numbers")
    return value


def _text(value):
    return "default" if value is None else repr(value)


def _joined(decayed, spared, name):
    """The groups argument as the probe writes it, the user's parameters in it."""
    groups = []
    if decayed:
        groups.append("{'params': " + _concatenated(decayed) + "}")
    if spared:
        groups.append("{'params': " + _concatenated(spared) + ", 'weight_decay': 0.0}")
    return f"{name}=[{', '.join(groups)}]" if name != GROUPS[0] else f"[{', '.join(groups)}]"


def _concatenated(texts):
    return texts[0] if len(texts) == 1 else " + ".join(f"list({t})" for t in texts)


def _assigned(parsed, text):
    target = parsed.target
    return f"{target} = {text}" if target else text


def _values(match):
    """({field: value}, [fields at the framework's default]) of the user's call, from each slot of the
    probe's statements: the user's number there, else the framework's default at that argument."""
    values, defaulted, pending = {}, [], []
    for mine, theirs, slots in match.pairs:
        own = forms.nodes(mine)
        for path, expression in slots.items():
            node = own.get(path)
            number = forms.literal(node) if node is not None else None
            if node is not None and not _is_number(number):
                continue  # a schedule in the lr's place
            if node is None:
                number = forms.default_at(theirs, path)
                number = 0.0 if number is None else number  # a default of None turns the feature off: no momentum, no λ
                if not _is_number(number):
                    raise UsageError(
                        f"cannot tell the default of {_show(path)} in {theirs.head}(...) from its signature; give it"
                    )
                defaulted.append(expression[-1] if expression[0] == "value" else expression[1])
            pending.append((expression, number))
    for _ in range(2):  # an expression of two fields is solved once the other is known
        for expression, number in pending:
            solved = expression.solve(number, values)
            if solved is not None:
                values.setdefault(*solved)
    return values, [field for field in dict.fromkeys(defaulted) if field in values]


def _schedule_probes(fingerprint):
    """{head: (schedule kind, its statement (Parsed), its slots)} of the statements that the schedule
    call probes add to the probe of the same API without a schedule."""
    calls = fingerprint.calls
    found = {}
    for key, probe in calls.items():
        plain = calls.get(key._replace(schedule="constant"))
        if key.schedule == "constant" or probe.status != "ok" or plain is None or plain.status != "ok":
            continue
        heads = {p.head for p in forms.parsed(plain.statements)}
        for parsed in forms.parsed(probe.statements):
            if parsed.head and parsed.head not in heads:
                found[parsed.head] = (key.schedule, parsed, forms.slots(parsed, forms.ALL_SENTINELS))
    return found


def _schedule(match, scheduled, schedules, values, defaulted):
    """The schedule kind the user's code gives (in its own statement, or as the lr), its values read
    into ``values``; None for a constant lr. UsageError for an lr port cannot read."""
    given = [s for s in scheduled]
    for mine, path, node in match.lr_nodes:
        if isinstance(node, ast.Name):
            assigned = [s for s in scheduled if s.target == node.id]
            if not assigned:
                raise UsageError(
                    f"the lr is {node.id}, which the code does not define; port reads a number or a schedule"
                )
        elif isinstance(node, ast.Call) and forms.dotted(node.func):
            head = forms.dotted(node.func).rpartition(".")[2]
            if head not in schedules:
                known = ", ".join(sorted(schedules))
                raise UsageError(f"the lr is {head}(...), a schedule port does not read; it reads {known}")
            given.append(forms.Parsed(f"schedule = {ast.unparse(node)}"))
        else:
            raise UsageError(f"the lr is {ast.unparse(node)}; port reads a number or a schedule")
    if not given:
        return None
    if len(given) > 1:
        raise UsageError("the code gives several schedules; port reads one")
    kind, theirs, slots = schedules[given[0].head]
    mine = forms.Parsed(given[0].text, theirs.signatures)
    own = forms.nodes(mine)
    for path, expression in slots.items():
        node = own.get(path)
        number = forms.literal(node) if node is not None else forms.default_at(theirs, path)
        if not _is_number(number):
            raise UsageError(f"cannot read {_show(path)} of {theirs.head}(...) as a number")
        solved = expression.solve(number, values)
        if solved is not None and (solved[0] not in values or math.isclose(values[solved[0]], solved[1])):
            values[solved[0]] = solved[1]
            if node is None:
                defaulted.append(solved[0])
    return kind


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
