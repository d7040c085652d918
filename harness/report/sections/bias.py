"""The learned bias and the test loss with the bias spared, decayed, and left to each API's default."""

import json

from harness.document import Heading, Text, table
from harness.report.context import pivot, present
from harness.report.needs import Sweeps

TITLE = "Bias decay on versus off"
NEEDS = (Sweeps("penalty.decay_bias", 2),)


def _cell(run):
    return f"b {run.final('b')}, test {run.final('test_loss')}" if run.ok else run.final("b")


def build(ctx, spec_runs):
    runs, names = spec_runs.runs, present(spec_runs.runs)
    ordered = sorted(runs, key=lambda r: r.case.penalty.strength)
    out = [
        Heading(3, TITLE),
        Text(
            "The learned bias b and the test loss with the bias spared (`decay_bias = false`), decayed (`true`), and "
            f"left to the API's default (`\"default\"`), at each λ; the data's true bias is "
            f"{runs[0].case.data.true_b:g}."
        ),
        table(("λ", "API", "decay_bias", *names), pivot(ordered, _key, _cell, names)),
    ]
    largest = max(r.case.penalty.strength for r in runs)
    at = {
        (r.backend, r.case.penalty.kind, r.case.penalty.decay_bias): r
        for r in runs
        if r.ok and r.case.penalty.strength == largest
    }
    for (backend, kind, bias), spared in at.items():
        decayed = at.get((backend, kind, True))
        if bias is False and decayed:
            return out + [
                Text(
                    f"At λ = {largest:g} ({kind}, {backend}), decaying the bias takes it from {spared.final('b')} "
                    f"to {decayed.final('b')}, and the test loss from {spared.final('test_loss')} to "
                    f"{decayed.final('test_loss')}."
                )
            ]
    return out


def _key(run):
    penalty = run.case.penalty
    return f"{penalty.strength:g}", penalty.kind, json.dumps(penalty.decay_bias)
