"""The comparison report: ``reports/index.html`` and ``reports/REPORT.md`` from the results.

Every number is read from the results files (``<results>/<backend>/*.json``) and the
fingerprint documents (``<results>/semantics-<backend>.json``), and every verdict is derived
from them. Each built-in spec feeds sections of its own (``SECTIONS``, by spec name; a spec
file named like one plays its part); every spec gets the table of every case. A framework
or spec without results is named with the reason and the command that makes them, and
files that cannot be trusted are listed and skipped.

Where two runs are compared, they are compared through what results store per step, ‖w‖
(not w): since |‖wₐ‖ − ‖w_b‖| ≤ ‖wₐ − w_b‖, a gap there beyond tolerance means the weights
have parted. Final weights are stored whole and compared whole.
"""

import dataclasses
import datetime
import itertools
import json
import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import backends
from harness import diff, document, figures, files, fingerprint, store
from harness.document import Heading, Items, Text, table
from harness.figures import Figure, Panel, Series
from harness.run import describe
from harness.spec import Spec

SPARSE = 1e-3  # |wᵢ| below this counts as zero in "L1 versus L2"
TRAINED = ("ok", "diverged")  # statuses whose records hold a trajectory


@dataclass(frozen=True)
class Run:
    """One case of a spec for one backend, and its stored record (None: not run)."""

    backend: str
    point: dict
    case: object
    record: dict | None

    @property
    def trained(self):
        return self.record is not None and self.record["status"] in TRAINED

    @property
    def ok(self):
        return self.record is not None and self.record["status"] == "ok"

    @property
    def label(self):
        return describe(self.point)

    def final(self, key):
        """A final value (``w_norm``, ``b``, ``train_loss``, ``test_loss``) as text, or the status."""
        if not self.ok:
            return self.record["status"] if self.record else "missing"
        return _number(self.record["final"][key])


def semantics(results):
    """The fingerprint documents ``semantics-<backend>.json`` under ``results``, and problems."""
    documents, problems = [], []
    for path in sorted(Path(results).glob("semantics-*.json")):
        try:
            found = json.loads(path.read_text())
            fingerprint.table([found])
        except (OSError, ValueError, KeyError, TypeError) as error:
            problems.append(f"{path}: not a fingerprint document ({error!r}); skipped")
            continue
        documents.append(found)
    order = {name: i for i, name in enumerate(backends.NAMES)}
    return sorted(documents, key=lambda d: order.get(d["backend"], len(order))), problems


def blocks(specs, results):
    """The report as blocks (``harness.document``) for one Spec or several over a results directory."""
    order = lambda spec: list(SECTIONS).index(spec.name) if spec.name in SECTIONS else len(SECTIONS)  # noqa: E731
    specs = [specs] if isinstance(specs, Spec) else sorted(specs, key=order)
    records, problems = store.scan(results)
    documents, more = semantics(results)
    runs = {
        spec.name: [Run(b, point, case, records.get((b, case.id))) for b in backends.NAMES for point, case in spec.cases(b)]
        for spec in specs
    }
    out = [
        Heading(1, "decaylens report"),
        Text("Specs: " + ", ".join(spec.source for spec in specs) + f"; results from `{results}`. "
             "Every number and every rule below was derived from runs: each backend's weights after every step, "
             "evaluated by the harness in NumPy and matched step by step against the NumPy oracle's rules "
             "(`harness/oracle.py`)."),
        *_frameworks(specs, runs, records, results),
        *_summary(documents, runs.get("d2l")),
        *_fingerprint(documents),
        *_agreement(documents, runs),
    ]
    by_name = {spec.name: spec for spec in specs}
    for name, section in SECTIONS.items():
        if name in runs and any(run.record for run in runs[name]):
            out += section(by_name[name], runs[name], by_name)
        elif name in runs:
            out += [Heading(2, TITLES[name]), Text(f"No results for spec `{name}` yet: run `decaylens run --backend NAME "
                                                    f"--spec {name}` for each framework (tox -e NAME).")]
    for spec in specs:
        out += _every_case(spec, runs[spec.name], several=len(specs) > 1)
    out += _environment(specs, runs, records, documents)
    return out + ([Heading(2, "Skipped files"), Items(tuple(problems + more))] if problems + more else [])


def markdown(specs, results):
    """REPORT.md's text, figures linked as ``figures/<name>.svg``."""
    return document.markdown(blocks(specs, results))


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


# --------------------------------------------------------------------------- frameworks, summary


def _frameworks(specs, runs, records, results):
    rows = []
    for backend in backends.NAMES:
        cells, notes = [], []
        for spec in specs:
            mine = [run for run in runs[spec.name] if run.backend == backend]
            statuses = [run.record["status"] if run.record else "missing" for run in mine]
            cells.append(", ".join(f"{statuses.count(s)} {s}" for s in (*store.STATUSES, "missing") if s in statuses))
            errors = [run.record["reason"] for run in mine if run.record and run.record["status"] == "error"]
            notes += [f"{spec.name}: {len(errors)} failed, e.g. {errors[0]}"] if errors else []
        if not any(name == backend for name, _ in records):
            notes.insert(0, f"missing: no results in `{results}/{backend}/`; run `decaylens run --backend {backend}` (tox -e {backend})")
        elif any("missing" in cell for cell in cells):
            notes.append(f"cases without a result: `decaylens run --backend {backend}` computes just those")
        rows.append((backend, *cells, "; ".join(notes) or "complete"))
    return [
        Heading(2, "Frameworks in this report"),
        Text("Cases per spec and status. A framework with no results, or whose runs failed, is marked here and "
             "missing from the figures; every section still renders with the others."),
        table(("backend", *(f"`{spec.name}`" for spec in specs), "notes"), rows),
    ]


def _summary(documents, d2l):
    """Per optimizer and framework API: the same as l2_loss at the same λ, after a conversion, or never."""
    out = [Heading(2, "Summary: is weight decay an L2 penalty in the loss?")]
    if not documents:
        return out + [Text("No fingerprint yet: run `decaylens probe --backend NAME` in each framework env.")]
    probes = _probes(documents)
    names = [d["backend"] for d in documents]
    rows, verdicts = [], {}
    for optimizer, api in itertools.product(fingerprint.OPTIMIZERS, ("weight_decay", "adamw", "regularizer")):
        for backend in names:
            entry, reference = probes.get((backend, optimizer, api, False)), probes.get((backend, optimizer, "l2_loss", False))
            if entry and reference:
                verdicts[backend, optimizer, api] = _verdict(entry, reference, optimizer)
        if any((b, optimizer, api) in verdicts for b in names):
            rows.append((optimizer, api, *(verdicts.get((b, optimizer, api), ("", "not probed"))[1] for b in names)))
    out += [
        Text("For each optimizer, does passing λ to a framework's weight-decay API (bias spared) train exactly like "
             "(λ/2)‖w‖² written into the loss with the same λ? **same**: the same trajectory; **convert**: the same "
             "trajectory when the API is given λ' instead, as shown; **never**: no λ' gives it, because λ enters the update "
             "elsewhere. Derived from each framework's probes (`decaylens probe`: tiny problems that tell the rules "
             "apart) of the API and of its own l2_loss."),
        table(("optimizer", "API", *names), rows),
    ]
    missing = [b for b in backends.NAMES if b not in names]
    out += [Text("No fingerprint for " + ", ".join(missing) + ": run `decaylens probe --backend NAME`.")] if missing else []
    return out + (_summary_check(d2l, verdicts) if d2l else [])


def _probes(documents):
    """(backend, optimizer, API, decay_bias) -> probe entry, from the fingerprint documents."""
    return {(d["backend"], *e["probe"]): e for d in documents for e in d["probes"] if isinstance(e["probe"], list)}


def _verdict(entry, reference, optimizer):
    """(verdict, cell): an API's probe against the same framework's l2_loss probe."""
    if entry["status"] != "ok":
        return "unsupported", "unsupported"
    api, l2 = entry["explained"], reference["explained"]
    if not (api["matched"] and l2["matched"]):
        return "unexplained", fingerprint.outcome(reference if api["matched"] else entry)
    if api["decay_bias"] != l2["decay_bias"]:
        return "never", "**never**: cannot spare the bias"
    factor = fingerprint.scale(l2, api)
    if factor is not None:
        return ("same", "**same**") if factor == 1 else ("convert", f"**convert**: λ' = {factor:g}·λ")
    why = {
        "none": "λ has no effect",
        "decoupled": "λ is not multiplied by lr",
        "decoupled × lr": "λ bypasses " + ("Adam's normalisation" if optimizer == "adam" else "momentum"),
    }.get(api["placement"], api["placement"])
    return "never", f"**never**: {why} ({api['placement']} ×{api['multiplier']:g})"


def _summary_check(d2l, verdicts):
    """The d2l runs at λ > 0: does each API's run keep to its l2_loss run exactly where the verdict says same?"""
    runs = {(r.backend, r.case.optimizer.name, r.case.penalty.kind, r.case.penalty.strength): r
            for r in d2l if r.trained and r.case.penalty.decay_bias is False}
    checked, wrong = 0, []
    for (backend, optimizer, api, strength), run in runs.items():
        reference = runs.get((backend, optimizer, "l2_loss", strength))
        verdict = verdicts.get((backend, optimizer, api), ("",))[0]
        if strength == 0 or reference is None or verdict not in ("same", "convert", "never"):
            continue
        step = _parting(run, reference)
        checked += 1
        if (step is None) != (verdict == "same"):
            wrong.append(f"{backend} {optimizer} {api} λ={strength:g}: the verdict is {verdict}, but the runs "
                         + ("coincide" if step is None else f"part at step {step}"))
    if not checked:
        return []
    if wrong:
        return [Text(f"Checked against the full `d2l` runs: {len(wrong)} of {checked} disagree with the probes:"), Items(tuple(wrong))]
    return [Text(f"Checked against the full `d2l` runs: in all {checked} runs of an API at λ > 0, the run keeps to its "
                 "framework's l2_loss run at every step exactly where the verdict is **same**, and parts from it "
                 "elsewhere (λ is not converted there).")]


def _parting(a, b, finite=False):
    """The first step at which two runs' stored ‖w‖ differ beyond the looser run's tolerance, or None.

    A run cut short by non-finite weights parts where it stops, unless ``finite``: then
    only the steps where both are finite count.
    """
    x, y = np.asarray(a.record["steps"]["w_norm"]), np.asarray(b.record["steps"]["w_norm"])
    n = min(len(x), len(y))
    gaps = np.abs(x[:n] - y[:n]) / np.maximum(np.maximum(np.abs(x[:n]), np.abs(y[:n])), np.finfo(float).tiny)
    step = diff.first_divergent_step(gaps, _tolerance(a, b))
    return n if step is None and len(x) != len(y) and not finite else step


def _moves(a, b):
    """Whether two runs' final (w, b) differ beyond the looser run's tolerance."""
    final = lambda r: (np.asarray([r.record["final"]["w"]]), np.asarray([r.record["final"]["b"]]))  # noqa: E731
    return bool(diff.relative_gaps(final(a), final(b))[0] > _tolerance(a, b))


def _tolerance(*runs):
    return max(diff.tolerance(r.case.model.dtype, r.record.get("hyperparameter_dtype")) for r in runs)


# --------------------------------------------------------------------------- fingerprint


def _fingerprint(documents):
    out = [Heading(2, "What the nominal λ does")]
    if not documents:
        return out + [Text("No fingerprint yet: run `decaylens probe --backend NAME`.")]
    out += [
        Text("From tiny probe problems run through each framework's real API (`decaylens probe`): where λ enters the "
             "update, whether it is scaled by lr and goes through momentum or Adam's normalisation, whether the bias "
             "decays when the user says nothing, and whether the adapter's request to spare or decay the bias is "
             "honoured. `l2_loss` is the penalty (λ/2)‖w‖² written into the loss, for comparison."),
        table(fingerprint.COLUMNS, fingerprint.table(documents)),
        Text("Conventions each framework brings with it (probed too):"),
        table(("backend", "Adam ε", "native loss"), [{"backend": n, **v} for n, v in fingerprint.conventions(documents).items()]),
    ]
    conversions = fingerprint.conversions(documents)
    if conversions:
        targets = [d["backend"] for d in documents]
        out += [
            Heading(3, "The same trajectory in another framework"),
            Text("For each API at nominal λ, the setting of every other framework that reproduces it step by step:"),
            table(("backend", "optimizer", "API", *targets), [
                (source, optimizer, api, *(found.get(t, "—") for t in targets))
                for (source, optimizer, api), found in conversions.items()
            ]),
        ]
    return out


def _agreement(documents, runs):
    """Every full run of a framework API (λ > 0, bias spared) against its probe's rule."""
    probes = _probes(documents)
    rows = {}
    for name, spec_runs in runs.items():
        for run in spec_runs:
            case = run.case
            key = (run.backend, case.optimizer.name, case.penalty.kind, False)
            if not run.ok or key not in probes or case.penalty.decay_bias is not False or case.penalty.strength == 0:
                continue
            if case.penalty.kind not in ("weight_decay", "adamw", "regularizer"):
                continue
            probe, explained = probes[key], run.record["explained"]
            row = rows.setdefault(key, {"backend": run.backend, "optimizer": key[1], "API": key[2],
                                        "probe": fingerprint.outcome(probe), "runs": 0, "agree": 0, "disagreeing": []})
            row["runs"] += 1
            if probe["status"] == "ok" and _same_rule(probe["explained"], explained):
                row["agree"] += 1
            else:
                row["disagreeing"].append(f"{name} {run.label}: {explained['text']}")
    for row in rows.values():
        row["agree"] = f"{row['agree']} of {row['runs']}" if not row["disagreeing"] else f"**{row['agree']} of {row['runs']}**"
        row["disagreeing"] = "; ".join(row["disagreeing"]) or "—"
    return [
        Heading(3, "Probe versus the full runs"),
        Text("The rule each full run of a framework API follows (λ > 0, bias spared, every spec), found independently "
             "of the probe; a disagreement is shown, not hidden."),
        table(("backend", "optimizer", "API", "probe", "runs", "agree", "disagreeing"), rows.values()),
    ] if rows else []


def _same_rule(a, b):
    if not (a["matched"] and b["matched"]):
        return a["text"] == b["text"]
    return a["decay_bias"] == b["decay_bias"] and bool(set(fingerprint.forms(a)) & set(fingerprint.forms(b)))


# --------------------------------------------------------------------------- the reference experiment


def _reference(spec, runs, specs):
    optimizer = runs[0].case.optimizer.name  # curves of the first optimizer (plain SGD); the table has all
    out = [
        Heading(2, TITLES["d2l"]),
        Text(f"Training and test loss (mean ½e², no penalty) per epoch with {optimizer}, every framework on one figure "
             "per penalty API; solid λ = 0, dashed λ > 0. Markers are spaced per framework, so that curves lying on "
             "top of each other stay visible."),
    ]
    for kind in dict.fromkeys(r.case.penalty.kind for r in runs if r.case.optimizer.name == optimizer):
        mine = [r for r in runs if r.trained and (r.case.optimizer.name, r.case.penalty.kind) == (optimizer, kind)]
        out.append(_figure(f"reference-{optimizer}-{kind}", f"{optimizer}, {kind}: loss per epoch", tuple(
            Panel(f"{which} loss", "epoch", "mean ½e²", tuple(
                Series(f"{r.backend}, λ={r.case.penalty.strength:g}", r.backend, *_per_epoch(r, which), r.case.penalty.strength > 0)
                for r in mine))
            for which in ("training", "test"))))
    names = _present(runs)
    rows = {}
    for r in runs:
        rows.setdefault((r.case.optimizer.name, r.case.penalty.kind, f"{r.case.penalty.strength:g}"), {})[r.backend] = r.final("w_norm")
    return out + [
        Heading(3, "Final ‖w‖"),
        Text("‖w‖₂ after the last step (the bias not included)."),
        table(("optimizer", "API", "λ", *names), [(*key, *(cells.get(b, "missing") for b in names)) for key, cells in rows.items()]),
        *_partings(runs),
    ]


def _per_epoch(run, which):
    """(epochs, losses): the stored training loss at the end of each epoch, or the test loss."""
    if which == "training":
        losses = run.record["steps"]["train_loss"][:: run.case.steps // run.case.train.epochs]
    else:
        losses = run.record["epochs"]["test_loss"]
    return tuple(range(len(losses))), tuple(losses)


def _partings(runs):
    """For every case, the groups of frameworks whose runs coincide, and where the groups part."""
    rows = []
    for case_runs in _by_case(runs).values():
        groups = []
        for run in (r for r in case_runs if r.trained):
            group = next((g for g in groups if _parting(g[0], run) is None), None)
            group.append(run) if group else groups.append([run])
        for a, b in itertools.combinations(groups, 2):
            step = _parting(a[0], b[0])
            rows.append((a[0].label, " = ".join(r.backend for r in a), " = ".join(r.backend for r in b), step,
                         f"{_at(a[0], step)} vs {_at(b[0], step)}", _rule(a[0]), _rule(b[0])))
    out = [
        Heading(3, "Where two frameworks part"),
        Text("Frameworks given the same case (the same API with the same nominal λ) that do not train alike: per case, "
             "the groups of frameworks whose runs coincide, the first step at which two groups part beyond tolerance "
             f"(the looser framework's: {diff.TOLERANCE['float64']:g} in float64, {diff.TOLERANCE['float32']:g} in float32 "
             "or with float32 hyperparameters), and the "
             "oracle rule each group follows. Results store ‖w‖ per step, not w: as |‖wₐ‖ − ‖w_b‖| ≤ ‖wₐ − w_b‖, "
             "the weights have certainly parted by that step, and may have a little earlier."),
    ]
    if not rows:
        return out + [Text("No two frameworks part: every case trains alike wherever it ran.")]
    return out + [table(("case", "group A", "group B", "part at step", "‖w‖ there (A vs B)", "A follows", "B follows"), rows)]


def _by_case(runs):
    """Runs grouped by sweep point, in spec order."""
    grouped = {}
    for run in runs:
        grouped.setdefault(run.label, []).append(run)
    return grouped


def _at(run, step):
    norms = run.record["steps"]["w_norm"]
    return _number(norms[step]) if step < len(norms) else "non-finite"


def _rule(run):
    if run.record["status"] != "ok":
        return f"{run.record['status']}: {run.record['reason']}"
    return run.record["explained"]["text"]


# --------------------------------------------------------------------------- book mode


def _book(spec, runs, specs):
    if "overrides" not in runs[0].point:
        return [Heading(2, TITLES["d2l-book"]), Text(f"`{spec.source}` has no `[factors]`: book mode needs them.")]
    index = {(r.backend, r.point["overrides"], r.case.penalty.strength): r for r in runs}
    strengths = sorted({r.case.penalty.strength for r in runs})
    factors = [v for v in dict.fromkeys(r.point["overrides"] for r in runs) if v not in ("none", "all")]
    names = _present(runs)

    def concise(backend, strength):  # a backend whose overrides change nothing has no "all" variant
        return index.get((backend, "all", strength)) or index[backend, "none", strength]

    top = strengths[-1]
    out = [
        Heading(2, TITLES["d2l-book"]),
        Text("Each framework's concise listing of the experiment in *Dive into Deep Learning*, on the shared data: "
             f"the shared values of `{spec.name}` are the from-scratch listing, each `[overrides.<backend>]` is a "
             "concise listing. They differ from the from-scratch listing in these keys:"),
        table(("backend", "differs in", f"native API of the concise listing at λ = {top:g}"), [
            (b, "; ".join(_changes(index[b, "none", top].case, concise(b, top).case)) or "nothing", _api(concise(b, top)))
            for b in names
        ]),
        *_controlled(index[backends.NAMES[0], "none", top], specs.get("d2l")),
    ]
    rows = []
    for backend, strength in itertools.product(names, strengths):
        scratch, listing = index[backend, "none", strength], concise(backend, strength)
        row = {"backend": backend, "λ": f"{strength:g}", "from scratch ‖w‖": scratch.final("w_norm"),
               "test loss": scratch.final("test_loss"), "concise ‖w‖": listing.final("w_norm"),
               "concise test loss": listing.final("test_loss")}
        causes = []
        for factor in factors:
            one = index.get((backend, factor, strength))
            if one is None:
                row[factor] = "not a difference"
            elif not (one.ok and scratch.ok):
                row[factor] = one.final("w_norm")
            else:
                causes += [factor] if _moves(one, scratch) else []
                row[factor] = f"‖w‖ {one.final('w_norm')}, test {one.final('test_loss')}: " + ("**moves**" if factor in causes else "same")
        rows.append(row | {"causes": ", ".join(causes) or "none"})

    def listings(strength):  # (label, backend, run, dashed)
        return [("from scratch", "", index[names[0], "none", strength], False)] + [
            (f"{b} concise", b, concise(b, strength), True) for b in names]

    return out + [
        Heading(3, "What makes each listing differ"),
        Text("Final ‖w‖ and test loss of the from-scratch and the concise listing, and of the from-scratch listing "
             "with one factor at a time changed to the concise listing's value. A factor **moves** the result when "
             "its run's final weights (w, b) differ from the from-scratch run's beyond tolerance; **causes** lists "
             "those factors."),
        table(("backend", "λ", "from scratch ‖w‖", "test loss", "concise ‖w‖", "concise test loss", *factors, "causes"), rows),
        _figure("book", "test loss per epoch of the book's listings", tuple(
            Panel(f"λ = {strength:g}", "epoch", "test loss (mean ½e²)", tuple(
                Series(label, b, *_per_epoch(run, "test"), dashed) for label, b, run, dashed in listings(strength) if run.trained))
            for strength in strengths)) if names else Text("*No results to draw.*"),
    ]


def _api(run):
    """The native calls a run made, as code, or why there are none."""
    return f"`{run.record['api']}`" if run.record and run.record["api"] else (run.record["status"] if run.record else "missing")


def _changes(before, after):
    """``key: old → new`` for every value in which two cases differ."""
    a, b = before.to_dict(), after.to_dict()
    return [f"`{s}.{k}`: {json.dumps(a[s][k])} → {json.dumps(b[s][k])}" for s in a for k in a[s] if a[s][k] != b[s][k]]


def _controlled(scratch, d2l):
    """A line saying which d2l case the from-scratch listing is, when it is one: the controlled run."""
    same = {case.id: describe(point) for point, case in d2l.cases(scratch.backend)} if d2l else {}
    if scratch.case.id not in same:
        return []
    return [Text(f"The from-scratch listing at λ = {scratch.case.penalty.strength:g} is case `{scratch.case.id}`, the same "
                 f"case as `d2l`'s `{same[scratch.case.id]}`: the controlled run of the reference experiment.")]


# --------------------------------------------------------------------------- λ sweep, L1 versus L2, bias


def _sweep(spec, runs, specs):
    names = _present(runs)
    valid = runs[0].case.data.n_valid > 0
    final = {
        "training": lambda r: r.record["final"]["train_loss"],
        "validation": lambda r: r.record["epochs"]["valid_loss"][-1],
        "test": lambda r: r.record["final"]["test_loss"],
    }
    strength = lambda r: r.case.penalty.strength  # noqa: E731
    out = [
        Heading(2, TITLES["sweep"]),
        Text("Final training, validation and test loss (mean ½e², no penalty) against λ, per framework and penalty "
             "API; the λ axis is linear below the smallest λ > 0 and logarithmic above."),
    ]
    chosen = []
    for kind in dict.fromkeys(r.case.penalty.kind for r in runs):
        mine = [r for r in runs if r.case.penalty.kind == kind and r.ok]
        out.append(_figure(f"sweep-{kind}", f"{kind}: loss against λ", tuple(
            Panel(f"{which} loss", "λ", "mean ½e²", tuple(
                Series(b, b, *_curve([r for r in mine if r.backend == b], strength, loss)) for b in names), "symlog")
            for which, loss in final.items() if which != "validation" or valid)))
        for backend in names:
            points = [r for r in mine if r.backend == backend]
            if points and valid:
                pick, best = min(points, key=final["validation"]), min(points, key=final["test"])
                chosen.append((kind, backend, f"{strength(pick):g}", _number(final["test"](pick)), f"{strength(best):g}",
                               _number(final["test"](best)), "yes" if pick is best else "**no**"))
    if valid:
        out += [Heading(3, "λ chosen on the validation set"),
                Text(f"The λ with the lowest validation loss ({runs[0].case.data.n_valid} held-out examples) against the "
                     "λ with the lowest test loss, and the test loss of each."),
                table(("API", "backend", "chosen λ", "its test loss", "best λ on test", "best test loss", "same"), chosen)]
    else:
        out.append(Text("No validation set (`data.n_valid = 0`): choosing λ on validation needs `data.n_valid > 0`."))
    return out + _sparsity(runs, names)


def _curve(runs, x, y):
    """(xs, ys) of the runs, in order of x."""
    return tuple(zip(*sorted((x(r), y(r)) for r in runs))) or ((), ())


def _sparsity(runs, names):
    mine = [r for r in runs if r.ok and r.case.penalty.kind in ("l1_loss", "l2_loss")]
    if not mine:
        return []
    measures = {  # title: (measure of the final w, y scale)
        "‖w‖₁": (lambda w: float(np.abs(w).sum()), "log"),
        "‖w‖₂": (lambda w: float(np.sqrt(np.sum(w * w))), "log"),
        f"fraction |wᵢ| < {SPARSE:g}": (lambda w: float(np.mean(np.abs(w) < SPARSE)), "linear"),
    }
    measured = [(r, [measure(np.asarray(r.record["final"]["w"])) for measure, _ in measures.values()])
                for r in sorted(mine, key=lambda r: (r.case.penalty.kind, r.case.penalty.strength))]

    def series(backend, kind, index):
        points = [(r.case.penalty.strength, values[index]) for r, values in measured if (r.backend, r.case.penalty.kind) == (backend, kind)]
        return Series(f"{backend}, {kind}", backend, *(tuple(zip(*points)) or ((), ())), kind == "l1_loss")

    panels = tuple(
        Panel(title, "λ", title, tuple(series(b, kind, i) for b, kind in itertools.product(names, ("l2_loss", "l1_loss"))),
              "symlog", yscale)
        for i, (title, (_, yscale)) in enumerate(measures.items())
    )
    rows = {}
    for r, values in measured:
        rows.setdefault((r.case.penalty.kind, f"{r.case.penalty.strength:g}"), {})[r.backend] = " / ".join(f"{v:.3g}" for v in values)
    return [
        Heading(2, "L1 versus L2"),
        Text(f"The penalty λ‖w‖₁ (l1_loss) against (λ/2)‖w‖² (l2_loss): the final weights' ‖w‖₁, ‖w‖₂ and the fraction "
             f"of weights with |wᵢ| < {SPARSE:g}, against λ (solid L2, dashed L1). Plain SGD on λ‖w‖₁ steps by "
             "lr·λ·sign(wᵢ), so the weights it drives to 0 keep jittering around it by about lr·λ."),
        _figure("l1-l2", "L1 versus L2: size and sparsity of the final weights against λ", panels),
        table(("API", "λ", *(f"{b}: ‖w‖₁ / ‖w‖₂ / fraction" for b in names)),
              [(*key, *(cells.get(b, "missing") for b in names)) for key, cells in rows.items()]),
    ]


def _bias(spec, runs, specs):
    names = _present(runs)
    rows = {}
    for r in sorted(runs, key=lambda r: r.case.penalty.strength):
        rows.setdefault((f"{r.case.penalty.strength:g}", r.case.penalty.kind, json.dumps(r.case.penalty.decay_bias)), {})[r.backend] = (
            f"b {r.final('b')}, test {r.final('test_loss')}" if r.ok else r.final("b"))
    out = [
        Heading(2, TITLES["bias"]),
        Text("The learned bias b and the test loss with the bias spared (`decay_bias = false`), decayed (`true`), and "
             f"left to the API's default (`\"default\"`), at each λ; the data's true bias is {runs[0].case.data.true_b:g}."),
        table(("λ", "API", "decay_bias", *names), [(*key, *(cells.get(b, "missing") for b in names)) for key, cells in rows.items()]),
    ]
    largest = max(r.case.penalty.strength for r in runs)
    at = {(r.backend, r.case.penalty.kind, r.case.penalty.decay_bias): r for r in runs if r.ok and r.case.penalty.strength == largest}
    for (backend, kind, bias), spared in at.items():
        decayed = at.get((backend, kind, True))
        if bias is False and decayed:
            return out + [Text(f"At λ = {largest:g} ({kind}, {backend}), decaying the bias takes it from {spared.final('b')} "
                               f"to {decayed.final('b')}, and the test loss from {spared.final('test_loss')} to "
                               f"{decayed.final('test_loss')}.")]
    return out


# --------------------------------------------------------------------------- learning rate


def _lr(spec, runs, specs):
    names = _present(runs)
    lr = lambda r: r.case.optimizer.lr  # noqa: E731
    rows = {}
    for r in runs:
        rows.setdefault((r.case.train.loss, f"{lr(r):g}"), {})[r.backend] = _growth(r)
    return [
        Heading(2, TITLES["lr"]),
        Text(f"Plain SGD without a penalty, in {runs[0].case.model.dtype}, at each lr, with mean ½e² (`half_mse`), mean "
             "e² (`mse`) and each framework's native regression loss. Each cell: the training loss at the end as a "
             "multiple of the initial one (bold when it grew), or the step at which the weights became non-finite."),
        _figure("lr", "training loss at the last finite step against lr", tuple(
            Panel(loss, "lr", "training loss (mean ½e²)", tuple(
                Series(b, b, *_curve([r for r in runs if r.trained and (r.backend, r.case.train.loss) == (b, loss)],
                                     lr, lambda r: r.record["steps"]["train_loss"][-1]))
                for b in names), "log")
            for loss in dict.fromkeys(r.case.train.loss for r in runs))),
        table(("loss", "lr", *names), [(*key, *(cells.get(b, "missing") for b in names)) for key, cells in rows.items()]),
        *_half(runs, names),
    ]


def _growth(run):
    if not run.trained:
        return run.final("train_loss")
    losses = run.record["steps"]["train_loss"]
    if run.record["status"] == "diverged":
        return f"**non-finite at step {len(losses)}**"
    ratio = losses[-1] / losses[0]
    return f"**×{ratio:.2g}**" if ratio > 1 else f"×{ratio:.2g}"


def _half(runs, names):
    """The ½ in the loss as a factor 2 in lr, and each native loss's convention, from the runs."""
    index = {(r.backend, r.case.train.loss, r.case.optimizer.lr): r for r in runs if r.trained}
    rows = []
    for backend in names:
        pairs = [(r, index[backend, "half_mse", 2 * lr]) for (b, loss, lr), r in index.items()
                 if (b, loss) == (backend, "mse") and (backend, "half_mse", 2 * lr) in index]
        natives = [(r, index.get((backend, other, lr))) for (b, loss, lr), r in index.items()
                   if (b, loss) == (backend, "native") for other in ("half_mse", "mse")]
        like = sorted({other.case.train.loss for r, other in natives if other and _parting(r, other) is None})
        rows.append((
            backend, len(pairs),
            "; ".join(f"lr {e.case.optimizer.lr:g}: step {_parting(e, h, finite=True)}"
                      for e, h in pairs if _parting(e, h, finite=True) is not None) or "none",
            "; ".join(f"lr {e.case.optimizer.lr:g}: e² at step {_stop(e)}, ½e² at step {_stop(h)}"
                      for e, h in pairs if _stop(e) != _stop(h)) or "none",
            " and ".join({"half_mse": "½e²", "mse": "e²"}[loss] for loss in like) or "neither",
        ))
    return [
        Text("The gradient of mean e² is twice that of mean ½e², so e² at lr should be the very same run as ½e² at "
             "2·lr: the ½ is a factor 2 in the effective learning rate. Each such pair of runs is compared step by "
             "step while both are finite (stored ‖w‖, the framework's tolerance), and by the step at which each "
             "becomes non-finite (in float32, e²'s gradient 2e·x may overflow a step before ½e²'s). The native loss "
             "is compared with both conventions at the same lr."),
        table(("backend", "pairs (e² at lr, ½e² at 2·lr)", "pairs that part while finite",
               "pairs that become non-finite at different steps", "native loss runs like"), rows),
    ]


def _stop(run):
    """The first non-finite step of a diverged run, or "none"."""
    return len(run.record["steps"]["w_norm"]) if run.record["status"] == "diverged" else "none"


# --------------------------------------------------------------------------- every case, environment


def _every_case(spec, runs, several):
    rows, last = [], None
    for label, case_runs in _by_case(runs).items():
        for run in case_runs:
            record = run.record
            if record is None:
                cells = ("missing", "", "", "", "", f"no result: `decaylens run --backend {run.backend} --spec {spec.name}`")
            else:
                final = record["final"] or {}
                cells = (
                    record["status"] + (f": {record['reason']}" if record["reason"] else ""),
                    _number(final.get("w_norm")), _number(final.get("train_loss")), _number(final.get("test_loss")),
                    record.get("explained", {}).get("text", ""), _api(run) if record["api"] else "",
                )
            rows.append(("" if label == last else label, run.backend, *cells))
            last = label
    return [
        Heading(2, f"Every case of `{spec.name}`" if several else "Every case"),
        Text("Final weights of every case: ‖w‖₂, and the data loss mean ½(ŷ − y)² (no penalty) on the training and "
             "test sets, computed by the harness from each backend's weights."),
        table(("case", "backend", "status", "‖w‖", "train loss", "test loss", "explained as", "native API"), rows),
    ]


def _environment(specs, runs, records, documents):
    items = []
    for backend in backends.NAMES:
        mine = [r for (name, _), r in records.items() if name == backend]
        if mine:
            versions = sorted({json.dumps(r["versions"], sort_keys=True) for r in mine})
            made = sorted(r.get("created") or "an unrecorded time" for r in mine)
            places = sorted({r.get("platform") or "an unrecorded platform" for r in mine})
            items.append(f"{backend}: " + " | ".join(", ".join(f"{k} {v}" for k, v in json.loads(v).items()) for v in versions)
                         + f"; on {', '.join(places)}; {len(mine)} results made from {made[0]} to {made[-1]}")
    missing = [name for name in backends.NAMES if not any(key[0] == name for key in records)]
    items += [f"no results for: {', '.join(missing)}"] if missing else []
    for spec in specs:
        hashes = sorted({r.record["data_sha256"] for r in runs[spec.name] if r.record})
        items.append(f"spec `{spec.name}`: {spec.source}; arrays SHA-256 " + (", ".join(hashes) or "none yet"))
    items += [f"fingerprint of {d['backend']}: `{d['command']}` with " + ", ".join(f"{k} {v}" for k, v in d["versions"].items())
              for d in documents]
    items.append(f"report made {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC} with Python "
                 f"{platform.python_version()} on {platform.platform()}")
    return [Heading(2, "Environment"), Items(tuple(items))]


# --------------------------------------------------------------------------- helpers


def _figure(name, caption, panels):
    """A Figure of the series that have points, or a line saying there is nothing to draw."""
    panels = tuple(dataclasses.replace(p, series=tuple(s for s in p.series if s.x)) for p in panels)
    if not any(p.series for p in panels):
        return Text(f"*No results to draw: {caption}.*")
    return Figure(name, caption, panels)


def _present(runs):
    """The backends with at least one trained run, in backends.NAMES order."""
    return [b for b in backends.NAMES if any(r.backend == b and r.trained for r in runs)]


def _number(value):
    return "" if value is None else f"{value:.4g}"


TITLES = {
    "d2l": "The reference experiment",
    "d2l-book": "Book mode: the book's listings",
    "sweep": "λ sweep",
    "bias": "Bias decay on versus off",
    "lr": "Learning rate and the ½ in the loss",
}
SECTIONS = {"d2l": _reference, "d2l-book": _book, "sweep": _sweep, "bias": _bias, "lr": _lr}
