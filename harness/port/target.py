"""A target API's statements written with the user's values, from its call probes (``harness.forms``).

The call probe of the target's API records the statements that use it, every number in its place;
the answer is the statements of it that carry a value, spare parameters, add a penalty to the loss
or set a schedule, each number replaced by the user's (λ' for λ), the probe's parameter lists by
the user's names for them, and a schedule's statements (from the target's schedule call probe)
added where that framework puts them.
"""

import ast
import math

from backends.contract import Statement
from harness import forms
from harness.fingerprint import CallKey
from harness.port.source import sibling_of
from harness.probes import SCHEDULED_CALL

LR = forms.Expression(("value", "optimizer.lr"))


def lines(fingerprint, key, values, names):
    """(printed, bindings): the target's statements for ``key`` (its API and bias) with ``values``, under
    ``key.schedule``'s schedule; ``names`` {probe name: the user's} renames the probe's parameter lists.
    ``bindings`` are the probe's own statements that give the user's names their meaning on the
    probe's model, which ``--check`` runs first."""
    probe = fingerprint.calls[key._replace(schedule="constant")]
    sibling = sibling_of(fingerprint, key)
    sparing = set() if sibling is None else {p.head for p in forms.parsed(sibling.statements)}
    parsed = forms.parsed(probe.statements)
    chosen = _chosen(parsed, sparing)
    printed, bindings, lr_at = [], [], None
    for statement in parsed:
        if statement not in chosen:
            continue
        if statement.kind == "code" and statement.target in names:
            bindings.append(Statement("code", f"{names[statement.target]} = {_value_text(statement)}"))
            continue
        slots = forms.slots(statement, forms.ALL_SENTINELS)
        written = _written(statement, slots, values, names, bindings)
        if LR in slots.values():
            lr_at = (len(printed), [path for path, e in slots.items() if e == LR], statement.signatures)
        printed.append(Statement(statement.kind, written.unparse(), statement.signatures))
    if key.schedule != "constant":
        printed = _scheduled(fingerprint, key.schedule, printed, lr_at, values)
    return printed, bindings


def _chosen(parsed, sparing):
    """The statements a user writes: those that carry a probe value or add a penalty, the calls of the
    sparing idiom (functions the probe decaying the bias does not call), and the code defining a
    name these use (a mask, a parameter list)."""
    chosen = [s for s in parsed if s.kind == "penalty" or forms.slots(s, forms.ALL_SENTINELS)]
    chosen += [s for s in parsed if s.kind == "call" and s.head and s.head not in sparing and s not in chosen]
    used = {n.id for s in chosen for n in ast.walk(s.tree) if isinstance(n, ast.Name)}
    for statement in reversed(parsed):
        if statement.kind == "code" and statement.target in used and statement not in chosen:
            chosen.append(statement)
            used |= {n.id for n in ast.walk(statement.tree) if isinstance(n, ast.Name)}
    return [s for s in parsed if s in chosen]


def _value_text(statement):
    return ast.unparse(statement.tree.body[0].value)


def _written(statement, slots, values, names, bindings):
    """A copy of ``statement`` with the number at each of its ``slots`` replaced by its value, the probe's
    names by the user's, and a list of every model parameter by ``params`` (bound for --check in
    ``bindings``)."""
    written = forms.Parsed(statement.text, statement.signatures, statement.kind)
    for path, node, replace in forms.arguments(written):
        if path in slots and all(field in values for field in slots[path][1:]):
            replace(ast.Constant(short(slots[path].of(values))))
    if statement.kind == "call":
        written.tree = _Params(bindings).visit(written.tree)
    for node in ast.walk(written.tree):
        if isinstance(node, ast.Name) and node.id in names:
            node.id = names[node.id]
    return written


class _Params(ast.NodeTransformer):
    """Writes a call's list of the probe model's parameters as ``params``, the user's own, and keeps
    ``params = [...]`` in ``bindings`` for --check."""

    def __init__(self, bindings):
        self.bindings = bindings

    def visit_List(self, node):
        if node.elts and all(_parameter(element) for element in node.elts):
            binding = Statement("code", f"params = {ast.unparse(node)}")
            if binding not in self.bindings:
                self.bindings.append(binding)
            return ast.Name("params")
        return self.generic_visit(node)


def _parameter(node):
    """Whether a node names a model parameter (``model.weight``, ``model.layers[0].bias``)."""
    return isinstance(node, ast.Attribute) and node.attr in ("weight", "bias", "kernel")


def short(value):
    """A float as its shortest round-trip repr (0.1·3 ≈ 0.30000000000000004 prints as 0.3 when equal
    to 12 digits); an integral value of an integer field stays an int."""
    if isinstance(value, int):
        return value
    rounded = float(f"{value:.12g}")
    return rounded if math.isclose(rounded, value, rel_tol=1e-12) else value


def _scheduled(fingerprint, schedule, printed, lr_at, values):
    """``printed`` under ``schedule``: the statements the target's schedule call probe adds to its probe
    without one, written with ``values`` and placed before or after the optimizer's as there; and the
    lr of the optimizer's statement (``lr_at``: its index, the lr's paths, its signatures) replaced, or
    joined, as the schedule probe's optimizer statement has it."""
    optimizer, kind = SCHEDULED_CALL
    plain = fingerprint.calls.get(CallKey(optimizer, kind, "default"))
    scheduled = fingerprint.calls.get(CallKey(optimizer, kind, "default", "", schedule))
    if plain is None or scheduled is None or {plain.status, scheduled.status} != {"ok"} or lr_at is None:
        raise LookupError(f"{fingerprint.backend} has no call probe of a {schedule} schedule")
    before, after = forms.parsed(plain.statements), forms.parsed(scheduled.statements)
    anchor = next(s for s in before if LR in forms.slots(s, forms.ALL_SENTINELS).values())
    moved = next(s for s in after if s.head == anchor.head)
    index, paths, signatures = lr_at
    target = forms.Parsed(printed[index].text, signatures, "call")
    _move_lr(anchor, moved, target, paths)
    heads, texts = {s.head for s in before}, {s.text for s in before}
    new = [
        s
        for s in after
        if (s.kind == "call" and s.head not in heads) or (s.kind in ("code", "note") and s.text not in texts)
    ]
    position = after.index(moved)

    def written(statement):
        if statement.kind in ("code", "note"):  # the schedule's own definitions, as the probe wrote them
            return Statement(statement.kind, statement.text)
        slots = forms.slots(statement, forms.ALL_SENTINELS)
        return Statement(statement.kind, _written(statement, slots, values, {}, []).unparse(), statement.signatures)

    early = [written(s) for s in new if after.index(s) < position]
    late = [written(s) for s in new if after.index(s) > position]
    optimizer_statement = Statement("call", target.unparse(), signatures)
    return [*printed[:index], *early, optimizer_statement, *late, *printed[index + 1 :]]


def _move_lr(plain, scheduled, target, paths):
    """Give ``target``'s lr (at ``paths``) what the schedule probe's statement has where its probe without
    one has the lr: another expression in its place, or an entry added beside it (MXNet's lr_scheduler)."""
    old, new = forms.nodes(plain), forms.nodes(scheduled)
    anchors = [p for p, e in forms.slots(plain, forms.ALL_SENTINELS).items() if e == LR]
    replaces = {p: r for p, _, r in forms.arguments(target)}
    for anchor in anchors:
        node = new.get(anchor)
        if node is not None and not isinstance(forms.literal(node), int | float):
            for path in paths:
                replaces[path](node)
        for added, value in new.items():
            if added not in old and added[:-1] == anchor[:-1] and isinstance(added[-1], str):
                for path in paths:
                    _add_beside(target, path, added[-1], value)


def _add_beside(target, path, name, value):
    """Add ``name=value`` to the dict or call that holds the argument at ``path`` in ``target``."""
    holder = forms.nodes(target).get(path[:-1]) if len(path) > 1 else forms.outermost(target.tree)
    if isinstance(holder, ast.Dict):
        holder.keys.append(ast.Constant(name))
        holder.values.append(value)
    elif isinstance(holder, ast.Call):
        holder.keywords.append(ast.keyword(name, value))
