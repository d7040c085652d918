"""Which frameworks have results, per spec and status, and the command that makes what is missing."""

import backends
from harness import store
from harness.document import Heading, Text, table

TITLE = "Frameworks in this report"


def build(ctx):
    rows = []
    for backend in backends.NAMES:
        cells, notes = [], []
        for spec_runs in ctx.specs:
            mine = [run for run in spec_runs.runs if run.backend == backend]
            statuses = [run.status for run in mine]
            cells.append(", ".join(f"{statuses.count(s)} {s}" for s in (*store.STATUSES, "missing") if s in statuses))
            errors = [run.result.reason for run in mine if run.status == "error"]
            notes += [f"{spec_runs.spec.name}: {len(errors)} failed, e.g. {errors[0]}"] if errors else []
        if not any(name == backend for name, _ in ctx.results):
            notes.insert(
                0,
                f"missing: no results in `{ctx.results_dir}/{backend}/`; "
                f"run `decaylens run --backend {backend}` (tox -e {backend})",
            )
        elif any("missing" in cell for cell in cells):
            notes.append(f"cases without a result: `decaylens run --backend {backend}` computes just those")
        rows.append((backend, *cells, "; ".join(notes) or "complete"))
    return [
        Heading(2, TITLE),
        Text(
            "Cases per spec and status. A framework with no results, or whose runs failed, is marked here and "
            "missing from the figures; every section still renders with the others."
        ),
        table(("backend", *(f"`{s.spec.name}`" for s in ctx.specs), "notes"), rows),
    ]
