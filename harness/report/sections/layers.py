"""Which parameters of a multi-layer model each framework decays, and each layer's norm over training."""

from harness import network, verdict
from harness.document import Heading, Text, table
from harness.figures import Panel, Series
from harness.report.context import figure, number, pivot, present
from harness.report.needs import Layered
from harness.report.sections.curves import per_epoch
from harness.report.sections.roles import described

TITLE = "Per-layer decay"
NEEDS = (Layered(),)


def build(ctx, spec_runs):
    runs = [r for r in spec_runs.runs if r.case.model.kind == "mlp"]
    names = present(runs)
    trained = [r for r in runs if r.trained]
    out = [
        Heading(3, TITLE),
        Text(
            "Which parameters each framework's penalty reached, by role, as the rule that reproduces the run step by "
            "step says. What the case asked is in the row's name; where a framework's idiom decays more or less than "
            "asked, the cell says so (never corrected), and a role whose decay the run cannot tell is not seen. Then "
            "each weight matrix's Frobenius norm ‖Wₗ‖_F and each bias's ‖bₗ‖₂, at the end and over training."
        ),
        table(("case", *names), pivot(runs, lambda r: (r.label,), _decayed, names)),
        Heading(4, "Final norms per layer"),
        Text("Each tensor's norm after the last step, and the test loss (mean ½e²)."),
        table(("case", *names), pivot(runs, lambda r: (r.label,), _finals, names)),
    ]
    for index, label in enumerate(dict.fromkeys(r.label for r in trained), start=1):
        mine = [r for r in trained if r.label == label]
        tensors = network.tensors(mine[0].case)  # the case's, the same model in every framework
        panels = tuple(Panel(_title(t), "step", "norm", tuple(_norms(r, t.name) for r in mine)) for t in tensors) + (
            Panel(
                "test loss",
                "epoch",
                "mean ½e²",
                tuple(Series(r.backend, r.backend, *per_epoch(r, "test")) for r in mine),
            ),
        )
        out.append(figure(f"{spec_runs.slug}-layers-{index}", f"{label}: each layer's norm and the test loss", panels))
    return out


def _title(tensor):
    return f"‖{tensor.name}‖_F" if tensor.is_weight else f"‖{tensor.name}‖₂"


def _decayed(run):
    """The roles the run's explaining rule decays, in words, or why there is no such rule."""
    explained = run.result.explained if run.ok else None
    if explained is None or not explained.matched or explained.form.placement == "none":
        return run.rule
    return f"{explained.form.name}: {described(verdict.roles(explained, run.case))}"


def _finals(run):
    """Every tensor's final norm and the test loss, as one cell, or the run's status."""
    if not run.ok:
        return run.status
    norms = run.result.steps.tensor_norms
    cells = (f"{_title(t)} {number(norms[t.name][-1])}" for t in network.tensors(run.case))
    return ", ".join(cells) + f"; test {run.final('test_loss')}"


def _norms(run, name):
    norms = run.result.steps.tensor_norms[name]
    return Series(run.backend, run.backend, tuple(range(len(norms))), tuple(norms))
