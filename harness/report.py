"""The comparison report: per case of a spec, each backend's final ‖w‖, losses and status.

Every number is read from the results files; a backend with no result for a case is
shown as missing, and files that cannot be trusted are listed and skipped, not fatal.
"""

import datetime
import json
import platform
from pathlib import Path

import backends
from harness import fingerprint, store
from harness.run import describe


def semantics(results):
    """The fingerprint documents ``semantics-<backend>.json`` under ``results``, and problems."""
    documents, problems = [], []
    for path in sorted(Path(results).glob("semantics-*.json")):
        try:
            document = json.loads(path.read_text())
            fingerprint.table([document])
        except (OSError, ValueError, KeyError, TypeError) as error:
            problems.append(f"{path}: not a fingerprint document ({error!r}); skipped")
            continue
        documents.append(document)
    order = {name: i for i, name in enumerate(backends.NAMES)}
    return sorted(documents, key=lambda d: order.get(d["backend"], len(order))), problems


def markdown(spec, results):
    records, problems = store.scan(results)
    documents, more_problems = semantics(results)
    problems += more_problems
    present = [name for name in backends.NAMES if any(key[0] == name for key in records)]
    lines = [
        "# decaylens report",
        "",
        f"Spec `{spec.name}` ({spec.source}), results from `{results}`. Every number and every rule below",
        "was derived from runs: each backend's weights after every step, matched step by step",
        "against the NumPy oracle's rules (`harness/oracle.py`).",
        "",
        *_fingerprint_section(documents),
        *_agreement_section(spec, records, documents),
        "## Every case",
        "",
        "Final weights of every case: ‖w‖₂, and the data loss mean ½(ŷ − y)² (no penalty) "
        "on the training and test sets, computed by the harness from each backend's weights.",
        "",
        "| case | backend | status | ‖w‖ | train loss | test loss | explained as | native API |",
        "|---|---|---|---:|---:|---:|---|---|",
    ]
    for label, runs in _points(spec).items():
        for backend, case in runs:
            record = records.get((backend, case.id))
            if record is None:
                row = ["missing", "", "", "", "", f"no result: `decaylens run --backend {backend} --spec {spec.name}`"]
            else:
                final = record["final"] or {}
                row = [
                    record["status"] + (f": {record['reason']}" if record["reason"] else ""),
                    _number(final.get("w_norm")),
                    _number(final.get("train_loss")),
                    _number(final.get("test_loss")),
                    record.get("explained", {}).get("text", ""),
                    f"`{record['api']}`" if record["api"] else "",
                ]
            lines.append("| " + " | ".join([label, backend, *row]) + " |")
            label = ""
    lines += ["", "## Environment", ""]
    for backend in present:
        versions = next(r["versions"] for (name, _), r in records.items() if name == backend)
        hashes = sorted({r["data_sha256"][:16] for (name, _), r in records.items() if name == backend})
        lines.append(f"- {backend}: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + f"; arrays {', '.join(hashes)}")
    missing = [name for name in backends.NAMES if name not in present]
    if missing:
        lines.append(f"- no results for: {', '.join(missing)}")
    lines.append(f"- report made {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC} on {platform.platform()}")
    if problems:
        lines += ["", "## Skipped files", "", *(f"- {problem}" for problem in problems)]
    return "\n".join(lines) + "\n"


def _points(spec):
    """Sweep point label -> [(backend, case)] across every backend."""
    points = {}
    for backend in backends.NAMES:
        for point, case in spec.cases(backend):
            points.setdefault(describe(point), []).append((backend, case))
    return points


def _table(columns, rows):
    return [
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
        *("| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows),
        "",
    ]


def _fingerprint_section(documents):
    if not documents:
        return ["## What the nominal λ does", "", "No fingerprint yet: run `decaylens probe --backend NAME`.", ""]
    lines = [
        "## What the nominal λ does",
        "",
        "From tiny probe problems run through each framework's real API (`decaylens probe`):",
        "where λ enters the update, whether it is scaled by lr and goes through momentum or",
        "Adam's normalisation, whether the bias decays when the user says nothing, and whether",
        "the adapter's request to spare or decay the bias is honoured. `l2_loss` is the penalty",
        "(λ/2)‖w‖² written into the loss, for comparison.",
        "",
        *_table(fingerprint.COLUMNS, fingerprint.table(documents)),
        "Conventions each framework brings with it (probed too):",
        "",
    ]
    found = fingerprint.conventions(documents)
    rows = [{"backend": name, **values} for name, values in found.items()]
    lines += _table(("backend", "Adam ε", "native loss"), rows)
    conversions = fingerprint.conversions(documents)
    if conversions:
        targets = [d["backend"] for d in documents]
        lines += [
            "### The same trajectory in another framework",
            "",
            "For each API at nominal λ, the setting of every other framework that reproduces it step by step:",
            "",
        ]
        rows = [
            {"backend": source, "optimizer": optimizer, "API": api, **{t: found.get(t, "—") for t in targets}}
            for (source, optimizer, api), found in conversions.items()
        ]
        lines += _table(("backend", "optimizer", "API", *targets), rows)
    return lines


def _agreement_section(spec, records, documents):
    """Each full run of a framework API (λ > 0, bias spared) against its probe's rule."""
    probes = {
        (d["backend"], *e["probe"]): e for d in documents for e in d["probes"] if isinstance(e["probe"], list)
    }
    rows = []
    for label, runs in _points(spec).items():
        for backend, case in runs:
            record = records.get((backend, case.id))
            key = (backend, case.optimizer.name, case.penalty.kind, False)
            if record is None or "explained" not in record or key not in probes or case.penalty.decay_bias is not False:
                continue
            if case.penalty.kind not in ("weight_decay", "adamw", "regularizer") or case.penalty.strength == 0:
                continue
            probe, run = probes[key], record["explained"]
            agree = probe["status"] == "ok" and _same_rule(probe["explained"], run)
            rows.append({"case": label, "backend": backend, "probe": fingerprint.outcome(probe),
                         "full run": run["text"], "agree": "yes" if agree else "**no**"})
    if not rows:
        return []
    return [
        "### Probe versus the full runs",
        "",
        "The rule each full run of the spec follows, found independently of the probe; a disagreement is shown, not hidden.",
        "",
        *_table(("case", "backend", "probe", "full run", "agree"), rows),
    ]


def _same_rule(a, b):
    if not (a["matched"] and b["matched"]):
        return a["text"] == b["text"]
    return a["decay_bias"] == b["decay_bias"] and bool(set(fingerprint.forms(a)) & set(fingerprint.forms(b)))


def _number(value):
    return "" if value is None else f"{value:.4g}"


def write(spec, results, out):
    path = f"{out}/REPORT.md"
    store.write_text(path, markdown(spec, results))
    return path
