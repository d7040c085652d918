"""Loss against λ per framework and API, the λ a validation set picks against the best on test, and
L1 against L2."""

import itertools

import numpy as np

from harness.document import Heading, Text, table
from harness.figures import Panel, Series
from harness.report.context import figure, number, present
from harness.report.needs import Sweeps

TITLE = "λ sweep"
NEEDS = (Sweeps("penalty.strength", 3),)
SPARSE = 1e-3  # |wᵢ| below this counts as zero in "L1 versus L2"
LOSSES = {  # which loss: its value at the end of a run
    "training": lambda r: r.result.final.train_loss,
    "validation": lambda r: r.result.epochs.valid_loss[-1],
    "test": lambda r: r.result.final.test_loss,
}


def _strength(run):
    return run.case.penalty.strength


def build(ctx, spec_runs):
    runs, names = spec_runs.runs, present(spec_runs.runs)
    valid = runs[0].case.data.n_valid > 0
    out = [
        Heading(3, TITLE),
        Text(
            "Final training, validation and test loss (mean ½e², no penalty) against λ, per framework and penalty "
            "API; the λ axis is linear below the smallest λ > 0 and logarithmic above."
        ),
    ]
    chosen = []
    for optimizer, kind in dict.fromkeys((r.case.optimizer.name, r.case.penalty.kind) for r in runs):
        mine = [r for r in runs if (r.case.optimizer.name, r.case.penalty.kind) == (optimizer, kind) and r.ok]
        out.append(
            _losses_figure(f"{spec_runs.slug}-sweep-{optimizer}-{kind}", f"{optimizer}, {kind}", mine, names, valid)
        )
        by_backend = ([r for r in mine if r.backend == backend] for backend in names)
        chosen += [(optimizer, kind, points[0].backend, *_chosen(points)) for points in by_backend if points and valid]
    if valid:
        out += [
            Heading(4, "λ chosen on the validation set"),
            Text(
                f"The λ with the lowest validation loss ({runs[0].case.data.n_valid} held-out examples) against the "
                "λ with the lowest test loss, and the test loss of each."
            ),
            table(
                (
                    "optimizer",
                    "API",
                    "backend",
                    "chosen λ",
                    "its test loss",
                    "best λ on test",
                    "best test loss",
                    "same",
                ),
                chosen,
            ),
        ]
    else:
        out.append(Text("No validation set (`data.n_valid = 0`): choosing λ on validation needs `data.n_valid > 0`."))
    return out + _sparsity(spec_runs, names)


def _losses_figure(name, what, runs, names, valid):
    """The final training, validation (where there is a validation set: ``valid``) and test loss of ``runs``
    against λ, a series per backend."""
    return figure(
        name,
        f"{what}: loss against λ",
        tuple(
            Panel(
                f"{which} loss",
                "λ",
                "mean ½e²",
                tuple(Series(b, b, *curve([r for r in runs if r.backend == b], _strength, loss)) for b in names),
                "symlog",
            )
            for which, loss in LOSSES.items()
            if which != "validation" or valid
        ),
    )


def _chosen(points):
    """The λ the validation loss picks among one backend's ``points`` and its test loss, the best λ on test and
    its test loss, and whether they are the same run."""
    pick, best = min(points, key=LOSSES["validation"]), min(points, key=LOSSES["test"])
    test = LOSSES["test"]
    same = "yes" if pick is best else "**no**"
    return f"{_strength(pick):g}", number(test(pick)), f"{_strength(best):g}", number(test(best)), same


def curve(runs, x, y):
    """(xs, ys) of the runs, in order of x."""
    return tuple(zip(*sorted((x(r), y(r)) for r in runs))) or ((), ())


def _sparsity(spec_runs, names):
    mine = [r for r in spec_runs.runs if r.ok and r.case.penalty.in_loss]
    if {r.case.penalty.kind for r in mine} != {"l1_loss", "l2_loss"}:
        return []
    measures = {  # title: (measure of the final w, y scale)
        "‖w‖₁": (lambda w: float(np.abs(w).sum()), "log"),
        "‖w‖₂": (lambda w: float(np.sqrt(np.sum(w * w))), "log"),
        f"fraction |wᵢ| < {SPARSE:g}": (lambda w: float(np.mean(np.abs(w) < SPARSE)), "linear"),
    }
    measured = [
        (r, [measure(np.asarray(r.result.final.w)) for measure, _ in measures.values()])
        for r in sorted(mine, key=lambda r: (r.case.penalty.kind, _strength(r)))
    ]

    def series(backend, kind, index):
        points = [
            (_strength(r), values[index])
            for r, values in measured
            if (r.backend, r.case.penalty.kind) == (backend, kind)
        ]
        return Series(f"{backend}, {kind}", backend, *(tuple(zip(*points)) or ((), ())), kind == "l1_loss")

    panels = tuple(
        Panel(
            title,
            "λ",
            title,
            tuple(series(b, kind, i) for b, kind in itertools.product(names, ("l2_loss", "l1_loss"))),
            "symlog",
            yscale,
        )
        for i, (title, (_, yscale)) in enumerate(measures.items())
    )
    rows = {}
    for r, values in measured:
        rows.setdefault((r.case.penalty.kind, f"{_strength(r):g}"), {})[r.backend] = " / ".join(
            f"{v:.3g}" for v in values
        )
    return [
        Heading(4, "L1 versus L2"),
        Text(
            f"The penalty λ‖w‖₁ (l1_loss) against (λ/2)‖w‖² (l2_loss): the final weights' ‖w‖₁, ‖w‖₂ and the fraction "
            f"of weights with |wᵢ| < {SPARSE:g}, against λ (solid L2, dashed L1). Plain SGD on λ‖w‖₁ steps by "
            "lr·λ·sign(wᵢ), so the weights it drives to 0 keep jittering around it by about lr·λ."
        ),
        figure(f"{spec_runs.slug}-l1-l2", "L1 versus L2: size and sparsity of the final weights against λ", panels),
        table(
            ("API", "λ", *(f"{b}: ‖w‖₁ / ‖w‖₂ / fraction" for b in names)),
            [(*key, *(cells.get(b, "missing") for b in names)) for key, cells in rows.items()],
        ),
    ]
