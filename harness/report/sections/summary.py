"""Per optimizer and framework API: the same as l2_loss at the same λ, after a conversion, or never;
checked against every full run that has its l2_loss twin."""

import itertools

import backends
from harness import verdict
from harness.case import FRAMEWORK_KINDS, OPTIMIZERS
from harness.document import Heading, Items, Text, table

TITLE = "Summary: is weight decay an L2 penalty in the loss?"


def cell(found):
    """A Verdict as a table cell."""
    if found.outcome == "same":
        return "**same**"
    if found.outcome == "convert":
        return f"**convert**: λ' = {found.factor:g}·λ"
    if found.outcome == "never":
        return f"**never**: {found.reason}"
    if found.outcome == "unknown":
        return f"unknown: {found.reason}"
    return found.outcome if found.outcome == "unsupported" else found.reason


def build(ctx):
    out = [Heading(2, TITLE)]
    if not ctx.fingerprints:
        return out + [Text("No fingerprint yet: run `decaylens probe --backend NAME` in each framework env.")]
    names = [f.backend for f in ctx.fingerprints]
    found = verdict.verdicts(ctx.fingerprints)
    rows = [
        (
            optimizer,
            kind,
            *(cell(found[b, optimizer, kind]) if (b, optimizer, kind) in found else "not probed" for b in names),
        )
        for optimizer, kind in itertools.product(OPTIMIZERS, FRAMEWORK_KINDS)
        if any((b, optimizer, kind) in found for b in names)
    ]
    out += [
        Text(
            "For each optimizer, does passing λ to a framework's weight-decay API (bias spared) train exactly like "
            "(λ/2)‖w‖² written into the loss with the same λ? **same**: the same trajectory; **convert**: the same "
            "trajectory when the API is given λ' instead, as shown; **never**: no λ' gives it, "
            "because λ enters the update "
            "elsewhere. Derived from each framework's probes (`decaylens probe`: tiny problems that tell the rules "
            "apart) of the API and of its own l2_loss."
        ),
        table(("optimizer", "API", *names), rows),
    ]
    missing = [b for b in backends.NAMES if b not in names]
    out += (
        [Text("No fingerprint for " + ", ".join(missing) + ": run `decaylens probe --backend NAME`.")]
        if missing
        else []
    )
    return out + _check(ctx, found)


def _check(ctx, found):
    """The full runs checked against the verdicts (``verdict.check_runs``), in words."""
    runs = [run for spec_runs in ctx.specs for run in spec_runs.runs]
    checks = verdict.check_runs(runs, ctx.results, found)
    if not checks:
        return []
    wrong = [
        f"{c.backend} {c.optimizer} {c.kind} λ={c.strength:g}: the verdict is {c.outcome}, but the runs "
        + ("coincide" if c.parting is None else f"part at step {c.parting}")
        for c in checks
        if not c.agrees
    ]
    if wrong:
        return [
            Text(f"Checked against the full runs: {len(wrong)} of {len(checks)} disagree with the probes:"),
            Items(tuple(wrong)),
        ]
    return [
        Text(
            f"Checked against the full runs of every spec: in all {len(checks)} runs of an API at λ > 0 that have an "
            "l2_loss twin (the same case with the penalty in the loss), the run keeps to its twin at every step "
            "exactly where the verdict is **same**, and parts from it elsewhere (λ is not converted there)."
        )
    ]
