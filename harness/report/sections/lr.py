"""Where each framework blows up as lr grows, and the ½ in the loss as a factor 2 in lr."""

from harness.diff import result_parting as parting
from harness.document import Heading, Text, table
from harness.figures import Panel, Series
from harness.report.context import figure, pivot, present
from harness.report.needs import Sweeps
from harness.report.sections.sweep import curve

TITLE = "Learning rate and the ½ in the loss"
NEEDS = (Sweeps("optimizer.lr", 2), Sweeps("train.loss", 2))
LOSS_NAMES = {"half_mse": "½e²", "mse": "e²"}


def _lr(run):
    return run.case.optimizer.lr


def _last_loss(run):
    return run.result.steps.train_loss[-1]


def build(ctx, spec_runs):
    runs, names = spec_runs.runs, present(spec_runs.runs)
    first = runs[0].case
    panels = tuple(
        Panel(
            loss,
            "lr",
            "training loss (mean ½e²)",
            tuple(
                Series(
                    b,
                    b,
                    *curve(
                        [r for r in runs if r.trained and (r.backend, r.case.train.loss) == (b, loss)], _lr, _last_loss
                    ),
                )
                for b in names
            ),
            "log",
        )
        for loss in dict.fromkeys(r.case.train.loss for r in runs)
    )
    return [
        Heading(3, TITLE),
        Text(
            f"{first.optimizer.name} with penalty {first.penalty.kind}, in {first.model.dtype}, at each lr, "
            "with mean ½e² "
            "(`half_mse`), mean e² (`mse`) and each framework's native regression loss, as the spec varies them. Each "
            "cell: the training loss at the end as a multiple of the initial one (bold when it grew), or the step at "
            "which the weights became non-finite."
        ),
        figure(f"{spec_runs.slug}-lr", "training loss at the last finite step against lr", panels),
        table(("loss", "lr", *names), pivot(runs, lambda r: (r.case.train.loss, f"{_lr(r):g}"), _growth, names)),
        *_half(runs, names),
    ]


def _growth(run):
    if not run.trained:
        return run.final("train_loss")
    losses = run.result.steps.train_loss
    if run.status == "diverged":
        return f"**non-finite at step {len(losses)}**"
    ratio = losses[-1] / losses[0]
    return f"**×{ratio:.2g}**" if ratio > 1 else f"×{ratio:.2g}"


def _half(runs, names):
    """The ½ in the loss as a factor 2 in lr, and each native loss's convention, from the runs."""
    index = {(r.backend, r.case.train.loss, r.case.optimizer.lr): r.result for r in runs if r.trained}
    rows = []
    for backend in names:
        pairs = [
            (e, index[backend, "half_mse", 2 * lr])
            for (b, loss, lr), e in index.items()
            if (b, loss) == (backend, "mse") and (backend, "half_mse", 2 * lr) in index
        ]
        natives = [
            (r, index.get((backend, other, lr)))
            for (b, loss, lr), r in index.items()
            if (b, loss) == (backend, "native")
            for other in LOSS_NAMES
        ]
        like = sorted({other.case.train.loss for r, other in natives if other and parting(r, other) is None})
        rows.append(
            (
                backend,
                len(pairs),
                "; ".join(
                    f"lr {e.case.optimizer.lr:g}: step {parting(e, h, finite=True)}"
                    for e, h in pairs
                    if parting(e, h, finite=True) is not None
                )
                or "none",
                "; ".join(
                    f"lr {e.case.optimizer.lr:g}: e² at step {_stop(e)}, ½e² at step {_stop(h)}"
                    for e, h in pairs
                    if _stop(e) != _stop(h)
                )
                or "none",
                " and ".join(LOSS_NAMES[loss] for loss in like) or "neither",
            )
        )
    return [
        Text(
            "The gradient of mean e² is twice that of mean ½e², so e² at lr should be the very same run as ½e² at "
            "2·lr: the ½ is a factor 2 in the effective learning rate. Each such pair of runs is compared step by "
            "step while both are finite (stored ‖w‖, the framework's tolerance), and by the step at which each "
            "becomes non-finite (in float32, e²'s gradient 2e·x may overflow a step before ½e²'s). The native loss "
            "is compared with both conventions at the same lr."
        ),
        table(
            (
                "backend",
                "pairs (e² at lr, ½e² at 2·lr)",
                "pairs that part while finite",
                "pairs that become non-finite at different steps",
                "native loss runs like",
            ),
            rows,
        ),
    ]


def _stop(result):
    """The first non-finite step of a diverged run, or "none"."""
    return len(result.steps.w_norm) if result.status == "diverged" else "none"
