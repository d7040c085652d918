"""The comparison report: per case of a spec, each backend's final ‖w‖, losses and status.

Every number is read from the results files; a backend with no result for a case is
shown as missing, and files that cannot be trusted are listed and skipped, not fatal.
"""

import datetime
import platform

import backends
from harness import store
from harness.run import describe


def markdown(spec, results):
    records, problems = store.scan(results)
    present = [name for name in backends.NAMES if any(key[0] == name for key in records)]
    lines = [
        "# decaylens report",
        "",
        f"Spec `{spec.name}` ({spec.source}), results from `{results}`.",
        "",
        "Final weights of every case: ‖w‖₂, and the data loss mean ½(ŷ − y)² (no penalty) "
        "on the training and test sets, computed by the harness from each backend's weights.",
        "",
        "| case | backend | status | ‖w‖ | train loss | test loss | native API |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    points = {}
    for backend in backends.NAMES:
        for point, case in spec.cases(backend):
            points.setdefault(describe(point), []).append((backend, case))
    for label, runs in points.items():
        for backend, case in runs:
            record = records.get((backend, case.id))
            if record is None:
                row = ["missing", "", "", "", f"no result: `decaylens run --backend {backend} --spec {spec.name}`"]
            else:
                final = record["final"] or {}
                row = [
                    record["status"] + (f": {record['reason']}" if record["reason"] else ""),
                    _number(final.get("w_norm")),
                    _number(final.get("train_loss")),
                    _number(final.get("test_loss")),
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


def _number(value):
    return "" if value is None else f"{value:.4g}"


def write(spec, results, out):
    path = f"{out}/REPORT.md"
    store.write_text(path, markdown(spec, results))
    return path
