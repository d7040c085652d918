"""A schedule in the user's code, read against the schedule call probes: its own statement (a torch
scheduler, an optax schedule bound to a name) or a schedule call given as the lr."""

import ast
import math

from harness import forms
from harness.errors import UsageError


def probes(fingerprint):
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


def read(match, scheduled, schedules, values, defaulted):
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
        if not forms.is_number(number):
            raise UsageError(f"cannot read {forms.shown(path)} of {theirs.head}(...) as a number")
        solved = expression.solve(number, values)
        if solved is not None and (solved[0] not in values or math.isclose(values[solved[0]], solved[1])):
            values[solved[0]] = solved[1]
            if node is None:
                defaulted.append(solved[0])
    return kind
