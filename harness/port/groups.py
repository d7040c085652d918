"""Parameter groups as a user writes them (torch's and Paddle's list of ``{'params': ...}`` dicts)
rewritten as the call probes write them: the decaying groups, then the spared ones with λ = 0."""

import ast

from harness import forms
from harness.errors import UsageError

GROUPS = ("params", "parameters")  # where torch and Paddle take their parameter groups


def found(parsed):
    """The parameter-group list of a call (a list of dicts each with a 'params' key, passed as its
    params or parameters), as (the argument's name, [dict node, ...]); None without one."""
    own = forms.nodes(parsed)
    for name in GROUPS:
        node = own.get((name,))
        if isinstance(node, ast.List) and node.elts and all(is_group(e) for e in node.elts):
            return name, node.elts
    return None


def is_group(node):
    """Whether an AST node is one group: a dict with a 'params' key."""
    return isinstance(node, ast.Dict) and any(isinstance(k, ast.Constant) and k.value == "params" for k in node.keys)


def canonical(parsed, groups, slots, match):
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
