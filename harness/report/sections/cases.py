"""Every case of a spec: its status, final weights and losses, rule and native calls, per backend."""

from harness.document import Heading, Text, table
from harness.report.context import by_case, number

TITLE = "Every case"
NEEDS = ()


def build(ctx, spec_runs):
    rows, last = [], None
    for label, case_runs in by_case(spec_runs.runs).items():
        for run in case_runs:
            result = run.result
            if result is None:
                source = spec_runs.spec.source.removesuffix(" (built-in)")
                command = f"`decaylens run --backend {run.backend} --spec {source}`"
                cells = ("missing", "", "", "", "", f"no result: {command}")
            else:
                final = result.final
                cells = (
                    result.status + (f": {result.reason}" if result.reason else ""),
                    *(number(getattr(final, key)) if final else "" for key in ("w_norm", "train_loss", "test_loss")),
                    run.rule if run.ok else "",
                    f"`{result.api}`" if result.api else "",
                )
            rows.append(("" if label == last else label, run.backend, *cells))
            last = label
    return [
        Heading(3, TITLE),
        Text(
            "Final weights of every case: ‖w‖₂, and the data loss mean ½(ŷ − y)² (no penalty) on the training and "
            "test sets, computed by the harness from each backend's weights."
        ),
        table(
            ("case", "backend", "status", "‖w‖", "train loss", "test loss", "explained as", "native API"), rows, False
        ),
    ]
