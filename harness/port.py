"""``decaylens port``: a user's optimizer call in one framework, and the call in another that trains alike.

Everything comes from the two backends' fingerprints. The call, parsed (never evaluated), is matched
to the penalty probe whose optimizer call it is: the same function, the same flags and strings, the
fewest hyperparameters one gives and the other does not. The probe case's lr and λ tell which
argument of that call is which, and its rule what the user's λ does. The target's probes of the
same optimizer are tried as ``verdict.convert`` tries them (its own API of the same kind first,
decaying the bias as the source does); the answer is the target probe's own call with the probe's
lr, λ and hyperparameters replaced by the user's (λ' = factor·lr^p·λ), or why no setting trains alike.
"""

import ast
import json
import math
from dataclasses import dataclass

import numpy as np

from harness import probes, verdict
from harness.errors import UsageError
from harness.fingerprint import DefaultKey, api
from harness.probes import KINDS

CALL_KINDS = [kind for kind in KINDS if kind != "l2_loss"]  # a penalty that an optimizer call can hold


@dataclass(frozen=True)
class Call:
    """A parsed call: its dotted ``function``, and every literal it holds by ``slot`` (the path of
    argument positions, keywords, dict keys and tuple indices to it, ``("lr",)``, ``("betas", 0)``)."""

    function: str
    literals: dict
    source: ast.Call

    @property
    def name(self):
        """The function's last name: ``AdamW`` of ``torch.optim.AdamW``."""
        return self.function.rpartition(".")[2]


def parse(text):
    """The Call of the user's ``text``; UsageError saying why it is not one."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as error:
        raise UsageError(
            f"cannot parse {text!r} as Python ({error.msg}); paste the optimizer call as written"
        ) from None
    if not isinstance(node, ast.Call) or _dotted(node.func) is None:
        raise UsageError(f"{text!r} is not a call such as torch.optim.SGD(params, lr=0.1); paste the optimizer call")
    return _call(node)


def _call(node):
    return Call(_dotted(node.func), dict(_literals(node)), node)


def _dotted(node):
    """``a.b.c`` of a Name/Attribute chain, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and (head := _dotted(node.value)):
        return f"{head}.{node.attr}"
    return None


def _literals(node, slot=()):
    """(slot, value) of every number, string and bool in a call's arguments, at any depth of tuples,
    lists, dicts and nested calls (a nested call's slots continue its argument's)."""
    if isinstance(node, ast.Call):
        for index, arg in enumerate(node.args):
            yield from _literals(arg, (*slot, index))
        for keyword in node.keywords:
            yield from _literals(keyword.value, (*slot, keyword.arg))
    elif isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)):
        yield slot, node.value
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
        yield slot, -node.operand.value
    elif isinstance(node, (ast.Tuple, ast.List)):
        for index, element in enumerate(node.elts):
            yield from _literals(element, (*slot, index))
    elif isinstance(node, ast.Dict):
        for key, value in zip(node.keys, node.values):
            if isinstance(key, ast.Constant):
                yield from _literals(value, (*slot, key.value))


def _calls_in(api_text):
    """Every call in a probe's recorded ``api`` (``Calls.text``), outermost first, of the statements
    that parse as Python (``name = call(...)`` or a call)."""
    for statement in api_text.split("; "):
        try:
            tree = ast.parse(statement)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _dotted(node.func):
                yield _call(node)


@dataclass(frozen=True)
class Source:
    """The probe a user's call is: its key, probe, case and optimizer call, and the user's lr and λ."""

    key: object
    probe: object
    case: object
    call: Call  # the probe's
    user: Call
    lr: float | None
    strength: float
    given: str  # how λ was found where the call does not give it, else ""


def identify(call, fingerprint):
    """The Source of ``call`` among ``fingerprint``'s penalty probes that say nothing of the bias;
    UsageError naming the calls probed when none is ``call``'s function."""
    candidates = []
    for key, probe in fingerprint.penalties.items():
        if key.kind not in CALL_KINDS or key.decay_bias != "default" or key.variant or probe.status != "ok":
            continue
        for found in _calls_in(probe.api):
            if _functions(found) == _functions(call):
                case = _probe_case(key)
                candidates.append((_distance(call, found, case), CALL_KINDS.index(key.kind), key, probe, case, found))
                break
    if not candidates:
        names = sorted({f.function for k, p in fingerprint.penalties.items() if p.status == "ok" for f in _probed(p)})
        raise UsageError(
            f"no probed {fingerprint.backend} optimizer call is {call.function}; the probed ones: {', '.join(names)}"
        )
    *_, key, probe, case, found = min(candidates, key=lambda c: c[:2])
    slots = _slots(found, case)
    lr = _given(call, slots["lr"], is_lr=True)
    strength = _given(call, slots["strength"])
    placed = [slot for slot in call.literals if slot in found.literals or call.literals[slot] == lr]
    if unplaced := [call.literals[s] for s in call.literals if s not in placed and _number(call.literals[s])]:
        raise UsageError(
            f"cannot tell what {', '.join(map(repr, unplaced))} stand(s) for in {call.function}(...); pass them by "
            f"keyword, as the probed call does: {ast.unparse(found.source)}"
        )
    if not all(value is None or _number(value) for value in (lr, strength)):
        raise UsageError(f"the lr and λ of {call.function}(...) must be numbers, as in {ast.unparse(found.source)}")
    given = ""
    if strength is None:
        default = fingerprint.defaults.get(DefaultKey(key.optimizer, key.kind))
        fitted = default is not None and default.strength is not None
        strength = default.strength if fitted else 0.0
        given = "the API's default, fitted by its default probe" if fitted else "not given: 0 (no probe of its default)"
    return Source(key, probe, case, found, call, lr, float(strength), given)


def _functions(call):
    """The last names of the function of a call and of every call with arguments it nests, itself
    first: (chain, add_decayed_weights, sgd); ``model.parameters()`` and the like are the user's own."""
    nested = [n for n in ast.walk(call.source) if isinstance(n, ast.Call) and (n.args or n.keywords)]
    nested = [n for n in nested if n is not call.source]
    return (call.name, *(_dotted(node.func).rpartition(".")[2] for node in nested))


def _probed(probe):
    """The optimizer calls of a probe's api: what its ``optimizer = …`` or ``trainer = …`` statement calls."""
    statements = [s for s in probe.api.split("; ") if s.startswith(("optimizer = ", "trainer = "))]
    return [next(_calls_in(statement)) for statement in statements if next(_calls_in(statement), None)]


def _probe_case(key):
    return probes.probe_case(key.optimizer, {"penalty.kind": key.kind, "penalty.decay_bias": key.decay_bias})


def _slots(call, case):
    """{"lr": slot, "strength": slot} of a probe's call, by the probe case's values (None if absent)."""

    def slot_of(value):
        return next((slot for slot, found in call.literals.items() if _number(found) and found == value), None)

    return {"lr": slot_of(case.optimizer.lr), "strength": slot_of(case.penalty.strength)}


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _given(call, slot, is_lr=False):
    """The user's number at ``slot`` of the probe's call, or for the lr the first number passed by
    position (``optax.adamw(1e-3)``, ``torch.optim.SGD(params, 0.1)``); None if not given."""
    if slot is None:
        return None
    if slot in call.literals:
        return call.literals[slot]
    positional = [value for s, value in call.literals.items() if len(s) == 1 and isinstance(s[0], int)]
    return next((value for value in positional if _number(value)), None) if is_lr else None


def _distance(user, probed, case):
    """How far the user's call is from a probe's: strings and flags that differ, and numbers one
    gives that the other does not (0 and False count as not given; lr and λ are always given)."""
    slots = _slots(probed, case)
    fixed = {slots["lr"], slots["strength"]}

    def given(literals):
        return {slot: v for slot, v in literals.items() if slot not in fixed and v not in (0, False, "")}

    mine, theirs = given(user.literals), given(probed.literals)
    differ = sum(1 for slot in mine.keys() & theirs.keys() if not _number(mine[slot]) and mine[slot] != theirs[slot])
    positional = [s for s in mine if len(s) == 1 and isinstance(s[0], int) and _number(mine[s])]
    return differ + len((mine.keys() - set(positional)) ^ theirs.keys())


@dataclass(frozen=True)
class Answer:
    """What ``port`` prints: the user's call read (``source``) and the target's statements that train
    alike (``lines``, the user's values in them; empty when no setting does, ``conversion.reason``
    says why), λ' and the target's probe they come from; ``caveat``: a convention of the optimizer in
    which the two frameworks differ (the decay is the same, the steps apart by that convention)."""

    source: Source
    target: str
    conversion: object
    lines: tuple = ()
    strength: float | None = None
    target_key: object = None
    target_probe: object = None
    caveat: str = ""


def port(text, source_fingerprint, target_fingerprint):
    """The Answer to "what is this call of the source's framework in the target's?"."""
    source = identify(parse(text), source_fingerprint)
    optimizer, explained, target = source.key.optimizer, source.probe.explained, target_fingerprint.backend
    if not explained.matched:
        reason = f"no rule explains {source_fingerprint.backend}'s probe of it: {source.probe.outcome()}"
        return Answer(source, target, verdict.Conversion(None, reason=reason))
    options = _options(target_fingerprint, optimizer, source.key.kind, explained.rule.decay_bias)
    explanations = {label: probe.explained for label, (_, probe) in options.items()}
    conversion = verdict.convert(explained, explanations, conventions=False)
    if conversion.kind is None:
        return Answer(source, target, conversion)
    if conversion.lr_power and source.lr is None:
        reason = f"λ' = {conversion.factor:g}·lr^{conversion.lr_power}·λ depends on the lr: give the lr in the call"
        return Answer(source, target, verdict.Conversion(None, reason=reason))
    key, probe = options[conversion.kind]
    strength = _short(
        conversion.factor * (1.0 if source.lr is None else source.lr) ** conversion.lr_power * source.strength
    )
    # the native loss's convention is the user's loss line, not the optimizer call's
    caveat = verdict.convention_gap(source_fingerprint, target_fingerprint, optimizer, skip=("loss",))
    if not caveat and (apart := verdict.convert(explained, {conversion.kind: probe.explained})).kind is None:
        caveat = apart.reason
    lines = tuple(_rewritten(probe.api, _probe_case(key), source, strength))
    return Answer(source, target, conversion, lines, strength, key, probe, caveat)


def _options(fingerprint, optimizer, kind, decay_bias):
    """{label: (key, probe)} of the target's matched penalty probes of ``optimizer``, each API once, in
    ``verdict.conversions``' preference (the same kind first, l2_loss last): the probe that says
    nothing of the bias where it decays the bias as the source does, else the one that asks for it."""
    found = {}
    for key, probe in fingerprint.penalties.items():
        if key.optimizer != optimizer or key.variant or not probe.matched:
            continue
        if key.decay_bias == "default" and probe.explained.rule.decay_bias != decay_bias:
            continue
        if key.decay_bias in ("default", decay_bias):
            label = api(key)
            if label not in found or key.decay_bias == "default":
                found[label] = (key, probe)
    return dict(sorted(found.items(), key=lambda item: (item[0] != kind, item[0] == "l2_loss")))


def _rewritten(api_text, case, source, strength):
    """The target probe's statements that set its lr and λ (every statement, where the probe asks
    for the bias to decay or be spared: its idiom may take several), with the user's values: in the
    arguments of its calls, the probe's lr, λ and the hyperparameters the user gave replaced by the
    user's (only floats: a layer's width 1 is no lr of 1.0); in a penalty written into the loss
    (``loss = loss + c·(…)``), c = λ/2 (l2_loss) or λ (l1_loss) by λ'/2 or λ'."""
    every = case.penalty.decay_bias != "default"
    values = {case.optimizer.lr: source.lr, case.penalty.strength: strength} | _hyperparameters(source)
    values = {probe: user for probe, user in values.items() if user is not None}
    lines = []
    for statement in api_text.split("; "):
        try:
            tree = ast.parse(statement)
        except SyntaxError:
            continue
        term = getattr(tree.body[0].value, "right", None) if statement.startswith("loss = loss + ") else None
        if isinstance(term, ast.BinOp) and isinstance(term.left, ast.Constant):  # loss + c * (…)
            term.left = ast.Constant(_short(strength / 2 if case.penalty.kind == "l2_loss" else strength))
            lines.append(ast.unparse(tree))
            continue
        replace = _Replace(values)
        for node in [n for n in ast.walk(tree) if isinstance(n, ast.Call)]:
            node.args = [replace.visit(arg) for arg in node.args]
            node.keywords = [replace.visit(keyword) for keyword in node.keywords]
        if replace.count or every:
            lines.append(ast.unparse(_params(tree)))
    return lines


def _hyperparameters(source):
    """{the source probe's value: the user's} of every float the user gave beside the lr and λ, at the
    same slot of the call (``betas`` index 1: 0.999 -> 0.98)."""
    slots = _slots(source.call, source.case)
    fixed = {slots["lr"], slots["strength"]}
    return {
        source.call.literals[slot]: value
        for slot, value in source.user.literals.items()
        if slot not in fixed and isinstance(source.call.literals.get(slot), float) and _number(value)
    }


class _Replace(ast.NodeTransformer):
    """Replaces float constants found in ``values`` by their values, counting the replacements; a
    nested call is left to its own visit."""

    def __init__(self, values):
        self.values = values
        self.count = 0

    def visit_Call(self, node):
        return node

    def visit_Constant(self, node):
        if isinstance(node.value, float):
            for probe_value, value in self.values.items():
                if math.isclose(node.value, probe_value, rel_tol=1e-12):
                    self.count += 1
                    return ast.copy_location(ast.Constant(_short(value)), node)
        return node


def _short(value):
    """A float as its shortest round-trip repr (0.1·3 ≈ 0.30000000000000004 prints as 0.3 when equal to 12 digits)."""
    rounded = float(f"{value:.12g}")
    return rounded if math.isclose(rounded, value, rel_tol=1e-12) else value


def statements(api_text):
    """Every statement of a recorded api (``Calls.text``) that parses as Python, as ``ast.unparse``
    writes it, its lists of the model's parameters as ``params``."""
    found = []
    for statement in api_text.split("; "):
        try:
            found.append(ast.unparse(_params(ast.parse(statement))))
        except SyntaxError:
            continue
    return found


def _params(tree):
    """Every list of the probe model's parameters in a call's arguments as ``params``, the user's own."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            node.args = [_as_params(arg) for arg in node.args]
            for keyword in node.keywords:
                keyword.value = _as_params(keyword.value)
    return tree


def _as_params(node):
    listed = isinstance(node, ast.List) and node.elts
    return ast.Name("params") if listed and all(isinstance(e, (ast.Attribute, ast.Name)) for e in node.elts) else node


def reading(source):
    """The line that says what ``port`` read the user's call as."""
    strength = f"λ = {source.strength:g}" + (f" ({source.given})" if source.given else "")
    lr = f"lr = {source.lr:g}" if source.lr is not None else "lr not given"
    return f"  {source.key.optimizer} {api(source.key)}: {source.probe.explained}; {strength}, {lr}"


def describe(answer):
    """The lines ``decaylens port`` prints for an Answer's target."""
    if not answer.lines:
        return [f"{answer.target}: no setting trains alike: {answer.conversion.reason}"]
    factor, power = answer.conversion.factor, answer.conversion.lr_power
    scaled = f"{factor:g}" + (f"·lr^{power}" if power else "")
    bias = answer.target_key.decay_bias
    asked = "" if bias == "default" else f" (asked to {'decay' if bias else 'spare'} the bias, as the source call does)"
    rule = f"{answer.conversion.kind} at λ' = {scaled}·λ = {answer.strength:g}: {answer.target_probe.explained}"
    lines = [f"{answer.target}:", *(f"  {line}" for line in answer.lines), f"  {rule}{asked}"]
    if answer.source.lr is None:
        lines.append(f"  (the call gives no lr: the probe's {answer.source.case.optimizer.lr:g} stands in; put yours)")
    if answer.caveat:
        lines.append(f"  but {answer.caveat}: the decay is the same, the steps part by it (--check measures how far)")
    return lines


def check_cases(answer):
    """(source case, target case): the probe case (its sizes, with the data ``decaylens run`` makes for
    it) of the user's API at their lr and λ, and of the answer's at λ' (the optimizer's other
    hyperparameters its defaults)."""
    lr = {"optimizer.lr": answer.source.lr} if answer.source.lr is not None else {}
    return tuple(
        _probe_case(key).replace(lr | {"penalty.strength": strength})
        for key, strength in ((answer.source.key, answer.source.strength), (answer.target_key, answer.strength))
    )


def gaps(source, target):
    """Per step |‖wₛ‖ − ‖wₜ‖| / ‖wₛ‖ of two stored Results, and the final weights' ‖pₛ − pₜ‖ / ‖pₛ‖ (p = w and b)."""
    a, b = (np.asarray(result.steps.w_norm) for result in (source, target))
    final = [np.concatenate([result.final.w, np.atleast_1d(result.final.b)]) for result in (source, target)]
    return np.abs(a - b) / np.maximum(np.abs(a), 1e-300), float(
        np.linalg.norm(final[0] - final[1]) / np.linalg.norm(final[0])
    )


def toml(case):
    """A spec of the one ``case``, every key given."""
    lines = []
    for section, values in case.to_dict().items():
        lines += [f"[{section}]", *(f"{key} = {_toml_value(value)}" for key, value in values.items()), ""]
    return "\n".join(lines)


def _toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(_toml_value, value)) + "]"
    return repr(value)
