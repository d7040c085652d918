"""Book mode: each backend's overrides (its concise listing) against the shared case (the from-scratch
listing), and which factor of the listing moves the result."""

import itertools
import json

from harness import diff
from harness.document import Heading, Text, table
from harness.figures import Panel, Series
from harness.report.context import figure, present, tolerance
from harness.report.needs import Factors
from harness.report.sections.curves import per_epoch

TITLE = "Book mode: the book's listings"
NEEDS = (Factors(),)


def build(ctx, spec_runs):
    spec, runs = spec_runs.spec, spec_runs.runs
    index = {(r.backend, r.point["overrides"], r.case.penalty.strength): r for r in runs}
    strengths = sorted({r.case.penalty.strength for r in runs})
    names = present(runs)
    if not names:
        return [Heading(3, TITLE), Text("*No results to draw.*")]

    def concise(backend, strength):  # a backend whose overrides change nothing has no "all" variant
        return index.get((backend, "all", strength)) or index[backend, "none", strength]

    top = strengths[-1]
    out = [
        Heading(3, TITLE),
        Text(
            "Each framework's concise listing of the experiment in *Dive into Deep Learning*, on the shared data: "
            f"the shared values of `{spec.name}` are the from-scratch listing, each `[overrides.<backend>]` is a "
            "concise listing. They differ from the from-scratch listing in these keys:"
        ),
        table(
            ("backend", "differs in", f"native API of the concise listing at λ = {top:g}"),
            [
                (
                    b,
                    "; ".join(_changes(index[b, "none", top].case, concise(b, top).case)) or "nothing",
                    _api(concise(b, top)),
                )
                for b in names
            ],
        ),
        *_controlled(ctx, spec_runs, index[names[0], "none", top]),
    ]
    rows = []
    for backend, strength in itertools.product(names, strengths):
        scratch, listing = index[backend, "none", strength], concise(backend, strength)
        row = {
            "backend": backend,
            "λ": f"{strength:g}",
            "from scratch ‖w‖": scratch.final("w_norm"),
            "test loss": scratch.final("test_loss"),
            "concise ‖w‖": listing.final("w_norm"),
            "concise test loss": listing.final("test_loss"),
        }
        causes = []
        for factor in spec.factors:
            one = index.get((backend, factor, strength))
            if one is None:
                row[factor] = "not a difference"
            elif not (one.ok and scratch.ok):
                row[factor] = one.final("w_norm")
            else:
                causes += [factor] if _moves(one, scratch) else []
                moves = "**moves**" if factor in causes else "same"
                row[factor] = f"‖w‖ {one.final('w_norm')}, test {one.final('test_loss')}: {moves}"
        rows.append(row | {"causes": ", ".join(causes) or "none"})

    def listings(strength):  # (label, backend, run, dashed)
        return [("from scratch", "", index[names[0], "none", strength], False)] + [
            (f"{b} concise", b, concise(b, strength), True) for b in names
        ]

    return out + [
        Heading(4, "What makes each listing differ"),
        Text(
            "Final ‖w‖ and test loss of the from-scratch and the concise listing, and of the from-scratch listing "
            "with one factor at a time changed to the concise listing's value. A factor **moves** the result when "
            "its run's final weights (w, b) differ from the from-scratch run's beyond tolerance; **causes** lists "
            "those factors."
        ),
        table(
            (
                "backend",
                "λ",
                "from scratch ‖w‖",
                "test loss",
                "concise ‖w‖",
                "concise test loss",
                *spec.factors,
                "causes",
            ),
            rows,
        ),
        figure(
            f"{spec_runs.slug}-book",
            "test loss per epoch of the book's listings",
            tuple(
                Panel(
                    f"λ = {strength:g}",
                    "epoch",
                    "test loss (mean ½e²)",
                    tuple(
                        Series(label, b, *per_epoch(run, "test"), dashed)
                        for label, b, run, dashed in listings(strength)
                        if run.trained
                    ),
                )
                for strength in strengths
            ),
        ),
    ]


def _moves(a, b):
    """Whether two runs' final (w, b) differ beyond the looser run's tolerance."""
    final = (a.result.final.w, a.result.final.b), (b.result.final.w, b.result.final.b)
    return diff.final_moves(*final, tolerance(a.result, b.result))


def _api(run):
    """The native calls a run made, as code, or why there are none."""
    return f"`{run.result.api}`" if run.result and run.result.api else run.status


def _changes(before, after):
    """``key: old → new`` for every value in which two cases differ."""
    a, b = before.to_dict(), after.to_dict()
    return [f"`{s}.{k}`: {json.dumps(a[s][k])} → {json.dumps(b[s][k])}" for s in a for k in a[s] if a[s][k] != b[s][k]]


def _controlled(ctx, spec_runs, scratch):
    """A line naming the case of another spec in the report that the from-scratch listing is: its controlled run."""
    for other in ctx.specs:
        same = next((r for r in other.runs if other is not spec_runs and r.case.id == scratch.case.id), None)
        if same is not None:
            return [
                Text(
                    f"The from-scratch listing at λ = {scratch.case.penalty.strength:g} is case `{scratch.case.id}`, "
                    f"the same case as `{other.spec.name}`'s `{same.label}`: the controlled run of that experiment."
                )
            ]
    return []
