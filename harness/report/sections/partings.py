"""Frameworks given the same case that do not train alike: where their runs part, and the rule each follows."""

import itertools

from harness import diff
from harness.diff import result_parting as parting
from harness.document import Heading, Text, table
from harness.report.context import by_case, number
from harness.report.needs import Shared

TITLE = "Where two frameworks part"
NEEDS = (Shared(2),)


def build(ctx, spec_runs):
    rows = []
    for case_runs in by_case(spec_runs.runs).values():
        groups = diff.coinciding([r for r in case_runs if r.trained], lambda a, b: parting(a.result, b.result))
        for a, b in itertools.combinations(groups, 2):
            step = parting(a[0].result, b[0].result)
            rows.append(
                (
                    a[0].label,
                    " = ".join(r.backend for r in a),
                    " = ".join(r.backend for r in b),
                    step,
                    f"{_at(a[0], step)} vs {_at(b[0], step)}",
                    a[0].rule,
                    b[0].rule,
                )
            )
    out = [
        Heading(3, TITLE),
        Text(
            "Frameworks given the same case (the same API with the same nominal λ) that do not train alike: per case, "
            "the groups of frameworks whose runs coincide, the first step at which two groups part beyond tolerance "
            f"(the looser framework's: {diff.TOLERANCE['float64']:g} in float64, "
            f"{diff.TOLERANCE['float32']:g} in float32 "
            "or with float32 hyperparameters), and the oracle rule each group follows. Results store ‖w‖ per step, not "
            "w: as |‖wₐ‖ − ‖w_b‖| ≤ ‖wₐ − w_b‖, the weights have certainly parted by that step, and may have a little "
            "earlier."
        ),
    ]
    if not rows:
        return out + [Text("No two frameworks part: every case trains alike wherever it ran.")]
    return out + [
        table(("case", "group A", "group B", "part at step", "‖w‖ there (A vs B)", "A follows", "B follows"), rows)
    ]


def _at(run, step):
    norms = run.result.steps.w_norm
    return number(norms[step]) if step < len(norms) else "non-finite"
