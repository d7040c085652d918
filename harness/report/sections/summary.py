"""Per optimizer and framework API: the same as l2_loss at the same λ, after a conversion, or never;
checked against every full run that has its l2_loss twin."""

import itertools

import backends
from harness import verdict
from harness.case import FRAMEWORK_KINDS, OPTIMIZERS
from harness.document import Heading, Items, Text, table
from harness.fingerprint import ProbeKey
from harness.report.context import parting

TITLE = "Summary: is weight decay an L2 penalty in the loss?"


def verdicts(fingerprints):
    """{(backend, optimizer, kind): Verdict} of every framework API probed with its l2_loss twin."""
    found = {}
    for fingerprint, optimizer, kind in itertools.product(fingerprints, OPTIMIZERS, FRAMEWORK_KINDS):
        probe = fingerprint.penalties.get(ProbeKey(optimizer, kind, False))
        reference = fingerprint.penalties.get(ProbeKey(optimizer, "l2_loss", False))
        if probe and reference:
            found[fingerprint.backend, optimizer, kind] = verdict.verdict(probe, reference, optimizer)
    return found


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
    found = verdicts(ctx.fingerprints)
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
    """Every full run of an API at λ > 0 (bias spared) that has its l2_loss twin (the same case with
    the penalty in the loss): does it keep to it exactly where the verdict is same?"""
    checked, wrong, seen = 0, [], set()
    for run in (run for spec_runs in ctx.specs for run in spec_runs.runs):
        penalty = run.case.penalty
        verdict_ = found.get((run.backend, run.case.optimizer.name, penalty.kind))
        if (
            not (run.trained and penalty.in_framework and penalty.spares_bias and penalty.strength > 0)
            or (run.backend, run.case.id) in seen
        ):
            continue
        twin = ctx.results.get((run.backend, run.case.replace({"penalty.kind": "l2_loss"}).id))
        if twin is None or not twin.trained or verdict_ is None or verdict_.outcome not in ("same", "convert", "never"):
            continue
        seen.add((run.backend, run.case.id))
        checked += 1
        step = parting(run.result, twin)
        if (step is None) != (verdict_.outcome == "same"):
            wrong.append(
                f"{run.backend} {run.case.optimizer.name} {penalty.kind} λ={penalty.strength:g}: the verdict is "
                f"{verdict_.outcome}, but the runs " + ("coincide" if step is None else f"part at step {step}")
            )
    if not checked:
        return []
    if wrong:
        return [
            Text(f"Checked against the full runs: {len(wrong)} of {checked} disagree with the probes:"),
            Items(tuple(wrong)),
        ]
    return [
        Text(
            f"Checked against the full runs of every spec: in all {checked} runs of an API at λ > 0 that have an "
            "l2_loss twin (the same case with the penalty in the loss), the run keeps to its twin at every step "
            "exactly where the verdict is **same**, and parts from it elsewhere (λ is not converted there)."
        )
    ]
