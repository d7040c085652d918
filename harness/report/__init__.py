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

import json
import shutil
import tempfile
from pathlib import Path

from harness import document, figures, files
from harness.document import Heading, Items, Text
from harness.figures import Figure
from harness.report import context
from harness.report.sections import (
    audits,
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
    releases,
    roles,
    schedule,
    scheduled,
    semantics,
    shared_code,
    summary,
    sweep,
)  # fmt: skip

FIRST = (glance,)  # the answer, before the introduction: within the page's first screen
OVERVIEW = (frameworks, summary, shared_code, semantics, scheduled, roles, audits, releases)
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
    return the two reports' paths. The report is made whole in a directory inside ``out`` and then
    moved into place, so that a report that fails leaves the one before as it was. Figures are drawn
    where matplotlib is installed; a figure whose data and matplotlib are those the report there last
    drew it from (``figures.digest``, kept in ``out/figures/digests.json``) is read back instead."""
    report = blocks(specs, results)
    out = Path(out)
    before, shown = out / "figures", [block for block in report if isinstance(block, Figure)]
    shown = shown if figures.available() else []
    digests = {figure.name: figures.digest(figure) for figure in shown}
    drawn_before = _digests(before)
    drawn = {
        figure.name: (before / f"{figure.name}.svg").read_text(encoding="utf-8")
        if drawn_before.get(figure.name) == digests[figure.name] and (before / f"{figure.name}.svg").is_file()
        else figures.svg(figure)
        for figure in shown
    }
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out, prefix=".report-"))
    try:
        for name, svg in drawn.items():
            files.write_atomically(staging / "figures" / f"{name}.svg", svg)
        if digests:
            files.write_atomically(staging / "figures" / "digests.json", json.dumps(digests, indent=1) + "\n")
        files.write_atomically(staging / document.MARKDOWN, document.markdown(report, drawn))
        files.write_atomically(staging / "index.html", document.page(report, drawn, "decaylens report"))
        _put(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [f"{out}/REPORT.md", f"{out}/index.html"]


def _put(staging, out):
    """Move the report made in ``staging`` into ``out``: its figures directory in place of the earlier one,
    then REPORT.md and index.html, each by one rename (nothing else of ``out`` is touched)."""
    figures_dir = out / "figures"
    if figures_dir.exists():  # the earlier report's, which the new one does not link
        figures_dir.rename(staging / "figures-before")
    if (staging / "figures").exists():
        (staging / "figures").rename(figures_dir)
    for name in ("REPORT.md", "index.html"):
        (staging / name).replace(out / name)


def _digests(directory):
    """{figure name: digest} of the figures the last report in ``directory`` drew, {} if none or unreadable."""
    try:
        found = json.loads((directory / "digests.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}
