"""What every section reads, loaded once: the specs and their runs, the results and the fingerprints."""

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

import backends
from harness import data, files, store
from harness.audit.findings import AUDIT_BYTES, Audit
from harness.case import Case
from harness.document import Text
from harness.figures import Figure
from harness.fingerprint import RELEASES, Fingerprint
from harness.spec import Spec, describe

AUDITS = "audits"  # the subdirectory of the results that the report reads audits from


@dataclass(frozen=True)
class Run:
    """One case of a spec for one backend, and its stored Result (None: not run yet)."""

    backend: str
    point: dict
    case: Case
    result: store.Result | None

    @property
    def trained(self):
        return self.result is not None and self.result.trained

    @property
    def ok(self):
        return self.result is not None and self.result.ok

    @property
    def label(self):
        return describe(self.point)

    @property
    def status(self):
        return self.result.status if self.result else "missing"

    @property
    def rule(self):
        """The oracle rule that explains the run, as text, or why there is none."""
        if not self.ok:
            return f"{self.status}: {self.result.reason}" if self.result else self.status
        explained = self.result.explained
        if explained is None:
            return "not explained (stored by an earlier decaylens)"
        return str(explained) + (f"; {self.result.note}" if self.result.note else "")

    def final(self, key):
        """A final value (``w_norm``, ``b``, ``train_loss``, ``test_loss``) as text, or the run's status."""
        return number(getattr(self.result.final, key)) if self.ok else self.status


@dataclass(frozen=True)
class SpecRuns:
    """A spec and the run of each of its cases by every backend; ``slug`` names its figures."""

    spec: Spec
    runs: list
    slug: str

    @property
    def has_results(self):
        return any(run.result for run in self.runs)


@dataclass(frozen=True)
class Context:
    results_dir: str
    specs: list  # SpecRuns, in the order given
    results: dict  # (backend, case_id) -> Result, every trusted one in the directory
    fingerprints: list  # Fingerprint, in backends.NAMES order
    problems: list  # one line per file skipped
    releases: list = dataclasses.field(default_factory=list)  # Fingerprints of other releases (RELEASES)
    audits: list = dataclasses.field(default_factory=list)  # harness.audit Audits stored in <results>/audits/


def load(specs, results):
    """The Context of ``specs`` over the results directory ``results``. A result made from
    arrays other than the ones its case gives is skipped, with the files no one can read."""
    found, problems = store.scan(results)
    trusted, made = {}, {}  # made: the arrays' SHA-256 of each case, which several backends ran
    for key, result in found.items():
        if result.case not in made:
            made[result.case] = data.make(result.case).sha256
        if result.data_sha256 == made[result.case]:
            trusted[key] = result
        else:
            path = store.path_for(results, *key)
            problems.append(
                f"{path}: made from other arrays (SHA-256 {result.data_sha256[:16]}…) than its case gives; skipped"
            )
    fingerprints, releases = _fingerprints(Path(results), problems), _fingerprints(Path(results, RELEASES), problems)
    slugs = []
    for spec in specs:
        slug = re.sub(r"[^a-z0-9]+", "-", spec.name.lower()).strip("-") or "spec"
        slugs.append(slug if slug not in slugs else f"{slug}-{len(slugs) + 1}")
    spec_runs = [
        SpecRuns(
            spec,
            [Run(b, point, case, trusted.get((b, case.id))) for b in backends.NAMES for point, case in spec.cases(b)],
            slug,
        )
        for spec, slug in zip(specs, slugs)
    ]
    audits = _audits(Path(results, AUDITS), problems)
    return Context(str(results), spec_runs, trusted, fingerprints, problems, releases, audits)


def _audits(directory, problems):
    """Every readable audit document of ``directory`` (``decaylens audit --json``), by file name."""
    found = []
    for path in sorted(directory.glob("*.json")):
        try:
            found.append(Audit.from_json(files.read_bounded(path, AUDIT_BYTES)))
        except (ValueError, files.Unreadable) as error:
            problems.append(f"{path}: not an audit this decaylens reads ({error}); skipped")
    return found


def _fingerprints(directory, problems):
    """Every readable ``semantics-*.json`` of ``directory``, in backends.NAMES order (a line in
    ``problems`` for each other one)."""
    found = []
    for path in sorted(directory.glob("semantics-*.json")):
        try:
            fingerprint = Fingerprint.load(path)
        except ValueError as error:
            problems.append(f"{error}; skipped")
            continue
        named = path.stem.removeprefix("semantics-").partition("@")[0]
        if fingerprint.backend not in backends.NAMES or fingerprint.backend != named:
            problems.append(
                f"{path}: holds the fingerprint of {fingerprint.backend!r}, not what its name says; skipped"
            )
        else:
            found.append(fingerprint)
    order = {name: i for i, name in enumerate(backends.NAMES)}
    return sorted(found, key=lambda f: order.get(f.backend, len(order)))


# --------------------------------------------------------------------------- helpers for sections


def pivot(runs, key, cell, names):
    """One row per distinct ``key(run)`` (a tuple), in order: the key's cells, then ``cell(run)`` for
    each backend of ``names``, or "missing" where that backend has no such run."""
    rows = {}
    for run in runs:
        rows.setdefault(key(run), {})[run.backend] = cell(run)
    return [(*row, *(cells.get(name, "missing") for name in names)) for row, cells in rows.items()]


def by_case(runs):
    """Runs grouped by sweep point, in spec order."""
    grouped = {}
    for run in runs:
        grouped.setdefault(run.label, []).append(run)
    return grouped


def present(runs):
    """The backends with at least one trained run, in backends.NAMES order."""
    return [b for b in backends.NAMES if any(r.backend == b and r.trained for r in runs)]


def number(value):
    return "" if value is None else f"{value:.4g}"


def figure(name, caption, panels):
    """A Figure of the series that have points, or a line saying there is nothing to draw."""
    panels = tuple(dataclasses.replace(p, series=tuple(s for s in p.series if s.x)) for p in panels)
    if not any(p.series for p in panels):
        return Text(f"*No results to draw: {caption}.*")
    return Figure(name, caption, panels)
