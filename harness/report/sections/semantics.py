"""The fingerprint: what each API's nominal λ does, each framework's conventions, the conversions
between frameworks, and whether the full runs follow the probes' rules."""

from harness import equivalents, verdict
from harness.document import Heading, Text, table
from harness.explain import NONE
from harness.fingerprint import ApiKey
from harness.probes import SCHEDULE_PROBES

TITLE = "What the nominal λ does"
STEP = next(iter(SCHEDULE_PROBES))  # the schedule probe that full runs under a schedule are checked against
COLUMNS = (
    "backend",
    "optimizer",
    "API",
    "λ enters",
    "× lr",
    "through momentum / Adam",
    "bias by default",
    "decay_bias honoured",
)
ENTERS = {  # placement -> the update it makes, given k
    NONE: "no effect",
    "coupled": "gradient += {k}·λ·w",
    "decoupled_lr": "w −= lr·{k}·λ·w (decoupled)",
    "decoupled": "w −= {k}·λ·w (decoupled, no lr)",
    "decoupled_ratio": "update += {k}·λ·w inside the trust ratio",
    "lr_decay": "lr / (1 + {k}·λ·(t − 1)): a learning-rate decay",
    "l1": "gradient += {k}·λ·sign(w)",
}


def build(ctx):
    out = [Heading(2, TITLE)]
    if not ctx.fingerprints:
        return out + [Text("No fingerprint yet: run `decaylens probe --backend NAME`.")]
    out += [
        Text(
            "From tiny probe problems run through each framework's real API (`decaylens probe`): where λ enters the "
            "update, whether it is scaled by lr and goes through momentum or Adam's normalisation, whether the bias "
            "decays when the user says nothing, and whether the adapter's request to spare or decay the bias is "
            "honoured. `l2_loss` is the penalty (λ/2)‖w‖² written into the loss, for comparison."
        ),
        table(COLUMNS, [row(found) for found in verdict.semantics(ctx.fingerprints)]),
        *_conventions(ctx),
        *_defaults(ctx),
    ]
    conversions = equivalents.conversions(ctx.fingerprints)
    if conversions:
        targets = [f.backend for f in ctx.fingerprints]
        out += [
            Heading(3, "The same trajectory in another framework"),
            Text("For each API at nominal λ, the setting of every other framework that reproduces it step by step:"),
            table(
                ("backend", "optimizer", "API", *targets),
                [
                    (source, optimizer, kind, *(conversion(found[t]) if t in found else "—" for t in targets))
                    for (source, optimizer, kind), found in conversions.items()
                ],
            ),
        ]
    return out + _agreement(ctx)


def _conventions(ctx):
    """One row per optimizer convention probed, one column per framework."""
    names = [f.backend for f in ctx.fingerprints]
    found = {f.backend: verdict.conventions(f) for f in ctx.fingerprints}
    keys = list(dict.fromkeys(key for values in found.values() for key in values))
    rows = [
        (
            key.optimizer,
            key.field,
            *(verdict.convention_value(key.field, found[b].get(key, "not probed")) for b in names),
        )
        for key in keys
    ]
    return [
        Text("Conventions in which frameworks' versions of one optimizer differ, each read off a probe at λ = 0 "
             "that parts its values (a large ε, an lr large enough for a relative step, the native loss):"),
        table(("optimizer", "convention", *names), rows),
    ]  # fmt: skip


def _defaults(ctx):
    """The λ each decoupled API applies when given none, fitted from its run."""
    names = [f.backend for f in ctx.fingerprints]
    rows = {}
    for f in ctx.fingerprints:
        for key, probe in f.defaults.items():
            rows.setdefault((key.optimizer, key.kind), {})[f.backend] = _default(probe)
    if not rows:
        return []
    cells = [(*key, *(found.get(b, "—") for b in names)) for key, found in rows.items()]
    return [
        Text("The λ each decoupled API applies when the user passes none: the optimizer given no weight-decay "
             "argument, its λ fitted from the run's steps and checked by the rule it then makes:"),
        table(("optimizer", "API", *names), cells),
    ]  # fmt: skip


def _default(probe):
    if probe.status != "ok":
        return probe.outcome()
    if probe.strength is None:
        return f"no fitted λ explains it ({probe.outcome()})"
    return "none" if probe.strength == 0 else f"λ = {probe.strength:g} ({probe.explained.form.name})"


def row(found):
    """One fingerprint table row of a Semantics."""
    cells = dict.fromkeys(COLUMNS, "")
    cells.update(backend=found.backend, optimizer=found.optimizer, API=found.kind)
    if not found.spared.matched:
        cells["λ enters"] = found.spared.outcome()
        return cells
    explained = found.spared.explained
    equivalents = ", ".join(form.name for form in explained.equivalents)
    cells["λ enters"] = ENTERS[found.placement].format(k=f"{explained.form.multiplier:g}") + (
        f" ≡ {equivalents}" if equivalents else ""
    )
    cells["× lr"] = "yes" if found.times_lr is not False else "no"
    cells["through momentum / Adam"] = "—" if found.through_state is None else "yes" if found.through_state else "no"
    if found.default is not None:
        cells["bias by default"] = _bias(found.default)
    if found.decayed is None:
        cells["decay_bias honoured"] = "—"
    elif found.bias_honoured:
        cells["decay_bias honoured"] = "yes"
    else:
        cells["decay_bias honoured"] = f"no (false: {_bias(found.spared)}, true: {_bias(found.decayed)})"
    return cells


def _bias(probe):
    decayed = verdict.bias_decayed(probe)
    if decayed is None:
        return "not seen" if probe.matched else "unexplained"
    return "decayed" if decayed else "not decayed"


def conversion(found):
    """A Conversion as a table cell."""
    if found.kind is None:
        return f"none exists: {found.reason}"
    factor = "" if found.factor == 1 else f"{found.factor:g}·"
    lr = {0: "", 1: "·lr", -1: "/lr"}.get(found.lr_power, f"·lr^{found.lr_power}")
    return f"{found.kind} with λ' = {factor}λ{lr}"


def _agreement(ctx):
    """``verdict.agreement`` of every full run with its probe, as a table."""
    runs = [(spec_runs.spec.name, run) for spec_runs in ctx.specs for run in spec_runs.runs]
    rows = {}
    for found in verdict.agreement(ctx.fingerprints, runs, STEP):
        label = ApiKey(found.kind, found.variant).label + (" (scheduled)" if found.scheduled else "")
        agree = f"{found.agree} of {found.runs}"
        rows[found] = {
            "backend": found.backend, "optimizer": found.optimizer, "API": label, "probe": found.probe,
            "runs": found.runs, "agree": f"**{agree}**" if found.disagreeing else agree,
            "disagreeing": "; ".join(found.disagreeing) or "—",
        }  # fmt: skip
    if not rows:
        return []
    return [
        Heading(3, "Probe versus the full runs"),
        Text(
            "The rule each full run of a framework API follows (λ > 0, bias spared, every spec), found independently "
            "of the probe (a run under a varying schedule: of the schedule probe); a disagreement is shown, not hidden."
        ),
        table(("backend", "optimizer", "API", "probe", "runs", "agree", "disagreeing"), rows.values()),
    ]
