"""The comparison report: ``reports/index.html`` and ``reports/REPORT.md`` from the results.

Every number is read from the results files (``<results>/<backend>/*.json``) and the
fingerprint documents (``<results>/semantics-<backend>.json``), loaded once into a
``context.Context``; every verdict is derived from them (``harness.verdict``). Then the
sections, one module each under ``sections/``, run in the declared order: ``FIRST``, the
introduction, ``OVERVIEW``; for each spec, every section of ``PER_SPEC`` whose ``NEEDS`` its
cases meet (built-in spec or the user's own: no section knows a spec's name); ``CLOSING``. A framework or spec without
results is named with the command that makes them, and files that cannot be trusted are
listed and skipped.
"""

from pathlib import Path

from harness import document, figures, files
from harness.document import Heading, Items, Text
from harness.figures import Figure
from harness.report import context
from harness.report.sections import (
    bias,
    book,
    cases,
    curves,
    environment,
    frameworks,
    glance,
    layers,
    lr,
    partings,
    roles,
    schedule,
    scheduled,
    semantics,
    shared_code,
    summary,
    sweep,
)  # fmt: skip

FIRST = (glance,)  # the answer, before the introduction: within the page's first screen
OVERVIEW = (frameworks, summary, shared_code, semantics, scheduled, roles)
PER_SPEC = (curves, partings, book, sweep, bias, lr, schedule, layers, cases)
CLOSING = (environment,)


def blocks(specs, results):
    """The report as blocks (``harness.document``) for Specs over a results directory."""
    ctx = context.load(specs, results)
    out = [Heading(1, "decaylens report")]
    for section in FIRST:
        out += section.build(ctx)
    out += [
        Text(
            "Specs: " + ", ".join(s.spec.source for s in ctx.specs) + f"; results from `{results}`. "
            "Every number and every rule below was derived from runs: each backend's weights after every step, "
            "evaluated by the harness in NumPy and matched step by step against the NumPy oracle's rules "
            "(`harness/oracle.py`)."
        ),
    ]
    for section in OVERVIEW:
        out += section.build(ctx)
    for spec_runs in ctx.specs:
        out += _spec(ctx, spec_runs)
    for section in CLOSING:
        out += section.build(ctx)
    return out + ([Heading(2, "Skipped files"), Items(tuple(ctx.problems))] if ctx.problems else [])


def _spec(ctx, spec_runs):
    """A spec's heading, then every section whose needs its cases meet, and which were left out."""
    spec = spec_runs.spec
    counts = sorted({len(spec.cases(b)) for b in spec.cases_by_backend})
    swept = [key for key in _point_keys(spec_runs) if key != "overrides"]
    out = [
        Heading(2, f"Spec `{spec.name}`"),
        Text(
            f"`{spec.source}`: {'–'.join(map(str, counts))} cases per backend"
            + (f", sweeping {', '.join(f'`{key}`' for key in swept)}" if swept else "")
            + (f", with `[factors]` {', '.join(spec.factors)}" if spec.factors else "")
            + "."
        ),
    ]
    if not spec_runs.has_results:
        command = f"decaylens run --backend NAME --spec {spec.source.removesuffix(' (built-in)')}"
        return (
            out
            + [Text(f"No results for spec `{spec.name}` yet: run `{command}` for each framework (tox -e NAME).")]
            + (cases.build(ctx, spec_runs))
        )
    unmet = {section: [str(need) for need in section.NEEDS if not need.met(spec_runs)] for section in PER_SPEC}
    left_out = [f"{section.TITLE} (needs {' and '.join(needs)})" for section, needs in unmet.items() if needs]
    out += [Text("Not shown for this spec: " + "; ".join(left_out) + ".")] if left_out else []
    for section, needs in unmet.items():
        out += [] if needs else section.build(ctx, spec_runs)
    return out


def _point_keys(spec_runs):
    return list(dict.fromkeys(key for run in spec_runs.runs for key in run.point))


def write(specs, results, out):
    """Write ``out/REPORT.md`` with its figures in ``out/figures/``, and ``out/index.html``;
    return the two reports' paths. Figures are drawn where matplotlib is installed."""
    report = blocks(specs, results)
    drawn = {b.name: figures.svg(b) for b in report if isinstance(b, Figure)} if figures.available() else {}
    for stale in Path(out, "figures").glob("*.svg"):  # from an earlier report
        stale.unlink()
    for name, svg in drawn.items():
        files.write_atomically(f"{out}/figures/{name}.svg", svg)
    paths = [f"{out}/REPORT.md", f"{out}/index.html"]
    files.write_atomically(paths[0], document.markdown(report, drawn))
    files.write_atomically(paths[1], document.page(report, drawn, "decaylens report"))
    return paths
