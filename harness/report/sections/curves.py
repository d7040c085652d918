"""Loss per epoch of every framework, one figure per penalty API, and the final ‖w‖ of every case."""

from harness.document import Heading, Text, table
from harness.figures import Panel, Series
from harness.report.context import figure, pivot, present
from harness.report.needs import Trained
from harness.spec import describe

TITLE = "Loss curves"
NEEDS = (Trained(),)
FIXED = ("optimizer.name", "penalty.kind")  # one figure per value of these; the series vary in the rest


def build(ctx, spec_runs):
    runs = spec_runs.runs
    optimizer = next(
        r.case.optimizer.name for r in runs if r.trained
    )  # the figures: its first optimizer; the table: all
    out = [
        Heading(3, TITLE),
        Text(
            f"Training and test loss (mean ½e², no penalty) per epoch with {optimizer}, every framework on one figure "
            "per penalty API; solid λ = 0, dashed λ > 0. Markers are spaced per framework, so that curves lying on "
            "top of each other stay visible."
        ),
    ]
    for kind in dict.fromkeys(r.case.penalty.kind for r in runs if r.case.optimizer.name == optimizer):
        mine = [r for r in runs if r.trained and (r.case.optimizer.name, r.case.penalty.kind) == (optimizer, kind)]
        out.append(
            figure(
                f"{spec_runs.slug}-curves-{optimizer}-{kind}",
                f"{optimizer}, {kind}: loss per epoch",
                tuple(
                    Panel(
                        f"{which} loss",
                        "epoch",
                        "mean ½e²",
                        tuple(
                            Series(_label(r), r.backend, *per_epoch(r, which), r.case.penalty.strength > 0)
                            for r in mine
                        ),
                    )
                    for which in ("training", "test")
                ),
            )
        )
    names = present(runs)
    return out + [
        Heading(4, "Final ‖w‖"),
        Text("‖w‖₂ after the last step (the bias not included)."),
        table(("case", *names), pivot(runs, lambda r: (r.label,), lambda r: r.final("w_norm"), names)),
    ]


def _label(run):
    """The series of a run: its backend and the point values its figure does not fix."""
    rest = describe({k: v for k, v in run.point.items() if k not in FIXED})
    return run.backend if rest == "the case" else f"{run.backend}, {rest}"


def per_epoch(run, which):
    """(epochs, losses): the stored training loss at the end of each epoch, or the test loss."""
    if which == "training":
        losses = run.result.steps.train_loss[:: run.case.steps // run.case.train.epochs]
    else:
        losses = run.result.epochs.test_loss
    return tuple(range(len(losses))), tuple(losses)
