"""Book mode: each backend's overrides (its concise listing) against the shared case (the from-scratch
listing), and which factor of the listing moves the result."""

import itertools
import json

from harness import diff
from harness.diff import result_tolerance as tolerance
from harness.document import Heading, Text, table
from harness.figures import Panel, Series
from harness.report.context import figure, present
from harness.report.needs import Factors
from harness.report.sections.curves import per_epoch

TITLE = "Book mode: the book's listings"
NEEDS = (Factors(),)


class _Listings:
    """A book spec's runs indexed by (backend, overrides, λ): each backend's from-scratch run and its
    concise listing (a backend whose overrides change nothing has no "all" run: its listing is the scratch run)."""

    def __init__(self, runs):
        self.index = {(r.backend, r.point["overrides"], r.case.penalty.strength): r for r in runs}
        self.strengths = sorted({r.case.penalty.strength for r in runs})
        self.names = present(runs)

    def scratch(self, backend, strength):
        return self.index[backend, "none", strength]

    def concise(self, backend, strength):
        return self.index.get((backend, "all", strength)) or self.scratch(backend, strength)

    def one(self, backend, factor, strength):
        """The from-scratch run with ``factor`` alone set as in the concise listing, or None."""
        return self.index.get((backend, factor, strength))


def build(ctx, spec_runs):
    listings = _Listings(spec_runs.runs)
    if not listings.names:
        return [Heading(3, TITLE), Text("*No results to draw.*")]
    return [
        Heading(3, TITLE),
        *_overview(ctx, spec_runs, listings),
        Heading(4, "What makes each listing differ"),
        Text(
            "Final ‖w‖ and test loss of the from-scratch and the concise listing, and of the from-scratch listing "
            "with one factor at a time changed to the concise listing's value. A factor **moves** the result when "
            "its run's final weights (w, b) differ from the from-scratch run's beyond tolerance; **causes** lists "
            "those factors."
        ),
        table(
            ("backend", "λ", *FINALS, *spec_runs.spec.factors, "causes"),
            [
                _factor_row(spec_runs.spec, listings, b, s)
                for b, s in itertools.product(listings.names, listings.strengths)
            ],
        ),
        _figure(spec_runs, listings),
    ]


FINALS = ("from scratch ‖w‖", "test loss", "concise ‖w‖", "concise test loss")


def _overview(ctx, spec_runs, listings):
    """What the concise listings are, the keys each differs in, and their native calls at the largest λ."""
    top, names = listings.strengths[-1], listings.names
    return [
        Text(
            "Each framework's concise listing of the experiment in *Dive into Deep Learning*, on the shared data: "
            f"the shared values of `{spec_runs.spec.name}` are the from-scratch listing, each `[overrides.<backend>]` "
            "is a concise listing. They differ from the from-scratch listing in these keys:"
        ),
        table(
            ("backend", "differs in", f"native API of the concise listing at λ = {top:g}"),
            [
                (
                    b,
                    "; ".join(_changes(listings.scratch(b, top).case, listings.concise(b, top).case)) or "nothing",
                    _api(listings.concise(b, top)),
                )
                for b in names
            ],
        ),
        *_controlled(ctx, spec_runs, listings.scratch(names[0], top)),
    ]


def _factor_row(spec, listings, backend, strength):
    """One backend's finals at λ, each factor's run alone, and the factors that move the result."""
    scratch, listing = listings.scratch(backend, strength), listings.concise(backend, strength)
    finals = (scratch.final("w_norm"), scratch.final("test_loss"), listing.final("w_norm"), listing.final("test_loss"))
    row = {"backend": backend, "λ": f"{strength:g}", **dict(zip(FINALS, finals))}
    causes = []
    for factor in spec.factors:
        one = listings.one(backend, factor, strength)
        if one is None:
            row[factor] = "not a difference"
        elif not (one.ok and scratch.ok):
            row[factor] = one.final("w_norm")
        else:
            causes += [factor] if _moves(one, scratch) else []
            moves = "**moves**" if factor in causes else "same"
            row[factor] = f"‖w‖ {one.final('w_norm')}, test {one.final('test_loss')}: {moves}"
    return row | {"causes": ", ".join(causes) or "none"}


def _figure(spec_runs, listings):
    """Test loss per epoch of the from-scratch listing and each backend's concise one, a panel per λ."""

    def drawn(strength):  # (label, backend, run, dashed)
        first = ("from scratch", "", listings.scratch(listings.names[0], strength), False)
        return [first] + [(f"{b} concise", b, listings.concise(b, strength), True) for b in listings.names]

    return figure(
        f"{spec_runs.slug}-book",
        "test loss per epoch of the book's listings",
        tuple(
            Panel(
                f"λ = {strength:g}",
                "epoch",
                "test loss (mean ½e²)",
                tuple(
                    Series(label, b, *per_epoch(run, "test"), dashed)
                    for label, b, run, dashed in drawn(strength)
                    if run.trained
                ),
            )
            for strength in listings.strengths
        ),
    )


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
