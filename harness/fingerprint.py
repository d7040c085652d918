"""The semantic fingerprint: what each backend's penalty APIs do with the nominal λ.

Derived by running tiny probe problems through the real adapter and explaining each
trajectory with ``harness.explain``; nothing here is typed in. The probe problem has
two weights and a bias, chosen so the candidate rules part at once:

    x = [[1, 0], [2, 0]], y = [1, −1], w₀ = (1, 1), b₀ = 1, λ = 0.5, lr = 0.1, μ = 0.9,
    batch 1, no shuffling, 3 epochs (6 steps), float64.

The second weight has no data gradient, so only the penalty moves it (a coupled decay
then goes through momentum and Adam's normalisation, a decoupled one does not); the
first has a changing data gradient, so multipliers and Adam's moments show; the bias
starts far from 0, so decaying it shows. Two more probes read the framework's Adam ε
convention (ε = 0.1, comparable to the gradients) and its native loss convention.
"""

import platform

import numpy as np

from harness import explain, run
from harness.data import Arrays
from harness.spec import Case
from harness.trajectory import Unsupported

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam")
APIS = ("l2_loss", "weight_decay", "adamw", "regularizer")
BIAS_MODES = (False, True, "default")

PROBE = Case().replace({
    "data.n_train": 2, "data.n_test": 1, "data.dim": 2,
    "train.epochs": 3, "train.batch_size": 1, "train.shuffle": False, "train.loss": "half_mse",
    "model.init": "shared", "model.dtype": "float64",
    "optimizer.lr": 0.1, "optimizer.momentum": 0.9, "penalty.strength": 0.5,
})
_X = np.array([[1.0, 0.0], [2.0, 0.0]])
PROBE_ARRAYS = Arrays(
    x_train=_X, y_train=np.array([1.0, -1.0]), x_valid=np.zeros((0, 2)), y_valid=np.zeros(0),
    x_test=_X[:1], y_test=np.array([0.0]), w0=np.array([1.0, 1.0]), b0=np.array(1.0),
    batches=np.tile(np.arange(2).reshape(1, 2, 1), (3, 1, 1)),
)


def probe_cases():
    """(key, case) of every probe: key = (optimizer, api, decay_bias), or a convention name."""
    for optimizer in OPTIMIZERS:
        for api in APIS:
            if api == "adamw" and optimizer != "adam":
                continue
            for bias in BIAS_MODES:
                if not (bias == "default" and api == "l2_loss"):
                    values = {"optimizer.name": optimizer, "penalty.kind": api, "penalty.decay_bias": bias}
                    yield (optimizer, api, bias), PROBE.replace(values)
    yield "adam_eps", PROBE.replace({"optimizer.name": "adam", "optimizer.eps": 0.1, "penalty.strength": 0.0})
    yield "native_loss", PROBE.replace({"train.loss": "native", "penalty.strength": 0.0})


def probe(backend, adapter, command):
    """Run every probe through ``adapter``; the document ``semantics-<backend>.json`` holds."""
    entries = []
    for key, case in probe_cases():
        entry = {"probe": list(key) if isinstance(key, tuple) else key}
        try:
            trajectory = adapter.train(case, PROBE_ARRAYS)
        except Unsupported as why:
            entry.update(status="unsupported", reason=str(why))
        else:
            entry.update(status="ok", api=trajectory.api, explained=explain.explain(case, PROBE_ARRAYS, trajectory).to_dict())
        entries.append(entry)
    return {
        "backend": backend,
        "versions": run.versions(adapter),
        "command": command,
        "platform": platform.platform(),
        "probes": entries,
    }


def outcome(entry):
    """One line: what a probe found."""
    if entry["status"] != "ok":
        return f"unsupported: {entry['reason']}"
    return entry["explained"]["text"]


def changes(golden, fresh):
    """Readable lines for every probe whose outcome differs between two documents."""
    before = {_label(e["probe"]): outcome(e) for e in golden["probes"]}
    after = {_label(e["probe"]): outcome(e) for e in fresh["probes"]}
    return [
        f"{label}: was {before.get(label, 'not probed')}, now {after.get(label, 'not probed')}"
        for label in dict.fromkeys([*before, *after])
        if before.get(label) != after.get(label)
    ]


def _label(key):
    if isinstance(key, str):
        return {"adam_eps": "Adam's ε convention", "native_loss": "the native loss"}.get(key, key)
    optimizer, api, bias = key
    return f"{optimizer} {api} (decay_bias = {str(bias).lower() if isinstance(bias, bool) else repr(bias)})"


# --------------------------------------------------------------------------- the table

COLUMNS = ("backend", "optimizer", "API", "λ enters", "× lr", "through momentum / Adam", "bias by default", "decay_bias honoured")


def table(documents):
    """The fingerprint rows (dicts keyed by COLUMNS) of every backend × optimizer × API."""
    rows = []
    for document in documents:
        entries = {tuple(e["probe"]) if isinstance(e["probe"], list) else e["probe"]: e for e in document["probes"]}
        for optimizer in OPTIMIZERS:
            for api in APIS:
                if (optimizer, api, False) in entries:
                    rows.append(_row(document["backend"], optimizer, api, entries))
    return rows


def conventions(documents):
    """backend -> {"Adam ε": ..., "native loss": ...} from the convention probes."""
    found = {}
    for document in documents:
        entries = {e["probe"]: e for e in document["probes"] if isinstance(e["probe"], str)}
        eps, loss = entries["adam_eps"], entries["native_loss"]
        found[document["backend"]] = {
            "Adam ε": eps["explained"]["adam_eps"].replace("_", " ") if _matched(eps) else outcome(eps),
            "native loss": {"half_mse": "½e²", "mse": "e²"}[loss["explained"]["loss"]] if _matched(loss) else outcome(loss),
        }
    return found


def _matched(entry):
    return entry["status"] == "ok" and entry["explained"]["matched"]


def _row(backend, optimizer, api, entries):
    row = dict.fromkeys(COLUMNS, "")
    row.update(backend=backend, optimizer=optimizer, API=api)
    off = entries[optimizer, api, False]
    if off["status"] != "ok":
        row["λ enters"] = outcome(off)
        return row
    found = off["explained"]
    if not found["matched"]:
        row["λ enters"] = found["text"]
        return row
    placement, k = found["placement"], found["multiplier"]
    row["λ enters"] = {
        "none": "no effect",
        "coupled": f"gradient += {k:g}·λ·w",
        "decoupled × lr": f"w −= lr·{k:g}·λ·w (decoupled)",
        "decoupled": f"w −= {k:g}·λ·w (decoupled, no lr)",
        "l1": f"gradient += {k:g}·λ·sign(w)",
    }[placement] + (f" ≡ {', '.join(found['equivalents'])}" if found["equivalents"] else "")
    row["× lr"] = "no" if placement == "decoupled" else "yes"
    row["through momentum / Adam"] = (
        "—" if optimizer == "sgd" or placement == "none" else "yes" if placement in ("coupled", "l1") else "no"
    )
    default = entries.get((optimizer, api, "default"))
    if default is not None:
        row["bias by default"] = _bias(default)
    on = entries[optimizer, api, True]
    honoured = _bias(off) == "not decayed" and _bias(on) == "decayed"
    row["decay_bias honoured"] = "yes" if honoured else f"no (false: {_bias(off)}, true: {_bias(on)})"
    return row


def _bias(entry):
    if not _matched(entry):
        return "unexplained"
    return "decayed" if entry["explained"]["decay_bias"] else "not decayed"


# --------------------------------------------------------------------------- conversions


def forms(explained):
    """The (placement, k) pairs that reproduce a run: its rule and every equivalent one."""
    pairs = [(explained["placement"], explained["multiplier"])]
    for name in explained["equivalents"]:
        placement, _, k = name.rpartition(" ×")
        pairs.append((placement, float(k)))
    return pairs


def conversions(documents):
    """For every backend × optimizer × API (bias not decayed), the setting of each other
    backend that gives the same trajectory: ``{(source, optimizer, api): {target: text}}``.

    A target API matches when it puts λ in the same place (the same oracle rule up to the
    multiplier); its λ is then scaled by k_source / k_target. With Adam the two backends
    must also place ε alike (their ε probes), or no setting reproduces the run exactly.
    """
    found, eps = {}, {}
    for document in documents:
        for e in document["probes"]:
            if e["probe"] == "adam_eps" and _matched(e):
                eps[document["backend"]] = e["explained"]["adam_eps"]
            elif isinstance(e["probe"], list) and e["probe"][2] is False and _matched(e):
                found[document["backend"], e["probe"][0], e["probe"][1]] = e["explained"]
    result = {}
    for (source, optimizer, api), explained in found.items():
        if explained["placement"] == "none" or api == "l2_loss":
            continue
        targets = {}
        for target in dict.fromkeys(b for b, _, _ in found):
            if target == source:
                continue
            if optimizer == "adam" and eps.get(source) != eps.get(target):
                targets[target] = (
                    f"none exists: Adam's ε sits {eps.get(source, '?').replace('_', ' ')} in {source}, "
                    f"{eps.get(target, '?').replace('_', ' ')} in {target}"
                )
                continue
            options = {a: e for (b, o, a), e in found.items() if (b, o) == (target, optimizer)}
            preferred = sorted(options, key=lambda a: (a != api, a == "l2_loss"))  # the same API first, the loss last
            targets[target] = _convert(explained, {a: options[a] for a in preferred})
        result[source, optimizer, api] = targets
    return result


def scale(source, target):
    """k_source / k_target for the first place λ enters in both rules (their own or an
    equivalent one), so that the target at λ' = scale·λ follows the source at λ; None if
    they share no place."""
    for placement, k in forms(source):
        for other, k_other in forms(target):
            if placement == other and placement != "none":
                return k / k_other
    return None


def _convert(explained, options):
    for api, candidate in options.items():
        factor = scale(explained, candidate)
        if factor is not None:
            return f"{api} with λ' = {'' if factor == 1 else f'{factor:g}·'}λ"
    reasons = [f"{api} is {candidate['placement']}" for api, candidate in options.items()]
    return "none exists: " + (", ".join(reasons) if reasons else "no API")
