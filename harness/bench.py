"""Where the time goes: each case's training run against the NumPy oracle on the same case.

In one process, per case of a spec: the first call of the backend's ``train`` (tracing,
compilation and lazy imports included, when no earlier case of the process paid them), the
median of ``repeats`` further calls, and the median of ``repeats`` runs of
``oracle.simulate`` under the rule that explains the run, from the same initial weights,
taken in turns with the calls. For an adapter that sweeps λ (``"penalty.strength"`` in its
SWEEPABLE: JAX), also a sweep of SWEEP values of λ in one call, once per group of cases that differ only
in λ (they share
one sweep), so that its first call compiles as the group's first case does. Process
start-up and the framework's import are timed in fresh processes. Targets (issue 9) are
printed beside the numbers (each adapter's RATIO_TARGET), never asserted.
"""

import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

import backends
from harness import data, explain, oracle
from harness.attempt import attempt, versions
from harness.spec import describe

SWEEP = 64  # λ values of the sweep, evenly spaced over SWEEP_STRENGTHS
SWEEP_STRENGTHS = (0.0, 6.0)
SWEEP_TARGET = 3.0  # largest time of the sweep, as a multiple of the one case's


def bench(backend, spec, repeats=5, progress=None):
    """The benchmark document of ``backend`` over every case of ``spec``."""
    startup, imports = _fresh_process_seconds(backend, repeats)
    adapter = backends.load(backend)
    cases, rows, swept = spec.cases(backend), [], set()
    for point, case in cases:
        row = _case(adapter, case, repeats, swept) | {"case": describe(point), "case_id": case.id}
        rows.append(row)
        if progress:
            progress(f"{backend} {len(rows)}/{len(cases)} {row['case']}: {row['status']}")
    return {
        "backend": backend,
        "spec": spec.name,
        "repeats": repeats,
        "versions": versions(adapter),
        "machine": {"platform": platform.platform(), "processor": _processor(), "cpus": os.cpu_count()},
        "startup_seconds": startup,
        "import_seconds": imports,
        "cases": rows,
        "summary": _summary(adapter, rows),
    }


def _case(adapter, case, repeats, swept):
    """One case's timings, in seconds; ``swept`` holds the sweeps already timed."""
    arrays = data.make(case)
    (tried,) = attempt(adapter, [case], arrays)
    if tried.trajectory is None:
        return {"status": tried.failure, "reason": tried.reason}
    first, trajectory = tried.seconds, tried.trajectory
    rule = explain.explain(case, arrays, trajectory).rule
    start = (trajectory.w[0], trajectory.b[0])
    # Taken in turns, so that both medians see the same moments of a shared machine.
    pairs = [
        (_timed(adapter.train, case, arrays)[0], _timed(oracle.simulate, rule, case, arrays, start)[0])
        for _ in range(repeats)
    ]
    train, simulate = (statistics.median(times) for times in zip(*pairs))
    return {
        "status": "ok",
        "first_seconds": first,
        "train_seconds": train,
        "oracle_seconds": simulate,
        "ratio": train / simulate,
        "compile_seconds": max(first - train, 0.0),
        **_sweep(adapter, case, arrays, repeats, swept),
    }


def _sweep(adapter, case, arrays, repeats, swept):
    """The λ sweep's timings, if the adapter sweeps and this case's sweep is not in ``swept``."""
    if "penalty.strength" not in adapter.SWEEPABLE or case.penalty.kind == "none":
        return {}
    sweep = [case.replace({"penalty.strength": float(s)}) for s in np.linspace(*SWEEP_STRENGTHS, SWEEP)]
    if sweep[0].id in swept:
        return {}
    swept.add(sweep[0].id)
    first = _timed(adapter.train_sweep, sweep, arrays)[0]
    return {"sweep_first_seconds": first, "sweep_seconds": _median(repeats, adapter.train_sweep, sweep, arrays)}


def _timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - start, result


def _median(repeats, function, *args):
    return statistics.median(_timed(function, *args)[0] for _ in range(repeats))


def _fresh_process_seconds(backend, repeats):
    """Medians over ``repeats`` fresh processes: (interpreter start-up with ``import harness.cli``,
    the import of the backend's framework)."""
    startup, imports = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import harness.cli"], check=True)
        startup.append(time.perf_counter() - start)
        done = subprocess.run([sys.executable, "-c", _import_code(backend)], check=True, capture_output=True, text=True)
        imports.append(float(done.stdout.split()[-1]))
    return statistics.median(startup), statistics.median(imports)


def _import_code(backend):
    """Python code that prints how long loading ``backend`` takes."""
    return (
        f"import time, backends; start = time.perf_counter(); backends.load({backend!r}); "
        "print(time.perf_counter() - start)"
    )


def _processor():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


def _summary(adapter, rows):
    ok = [row for row in rows if row["status"] == "ok"]
    if not ok:
        return {}

    def median(key):
        return statistics.median(row[key] for row in ok)

    summary = {
        "cases": len(ok),
        "train_seconds": median("train_seconds"),
        "oracle_seconds": median("oracle_seconds"),
        "compile_seconds": sum(row["compile_seconds"] for row in ok),
        "ratio_target": adapter.RATIO_TARGET,
    }
    # Each case against its own oracle: a median over the per-case ratios, not a ratio of
    # medians, which would set one mix of cases against another (Adam's oracle is slower).
    summary["ratio"] = median("ratio")
    swept = [row for row in ok if "sweep_seconds" in row]
    if swept:
        summary["sweep_ratio"] = statistics.median(row["sweep_seconds"] / row["train_seconds"] for row in swept)
        summary["sweep_first_ratio"] = statistics.median(
            row["sweep_first_seconds"] / row["first_seconds"] for row in swept
        )
        summary["sweep_target"] = SWEEP_TARGET
    return summary


def table(document):
    """The document as Markdown: one row per case, then the summary lines."""
    sweep = any("sweep_seconds" in row for row in document["cases"])
    header = ["case", "first call ms", "train ms", "oracle ms", "× oracle", "compile / warm-up ms"]
    header += [f"{SWEEP}-λ sweep ms", "first sweep ms"] if sweep else []
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for row in document["cases"]:
        if row["status"] != "ok":
            cells = [row["status"]] + [""] * (len(header) - 2)
        else:
            keys = ["first_seconds", "train_seconds", "oracle_seconds"]
            cells = [f"{1000 * row[key]:.1f}" for key in keys] + [
                f"{row['ratio']:.1f}",
                f"{1000 * row['compile_seconds']:.0f}",
            ]
            if sweep and "sweep_seconds" in row:
                cells += [f"{1000 * row['sweep_seconds']:.1f}", f"{1000 * row['sweep_first_seconds']:.0f}"]
            elif sweep:
                cells += ["", ""]
        lines.append("| " + " | ".join([row["case"], *cells]) + " |")
    lines += ["", *summary_lines(document)]
    return "\n".join(lines)


def summary_lines(document):
    """The headline numbers and the targets, one line each."""
    s, name = document["summary"], document["backend"]
    lines = [
        (
            f"{name}: start-up {document['startup_seconds']:.2f} s (interpreter and harness), "
            f"framework import {document['import_seconds']:.2f} s (fresh processes, median of {document['repeats']})"
        )
    ]
    if not s:
        return lines + [f"{name}: no case ran"]
    lines.append(
        f"{name}: median per case {1000 * s['train_seconds']:.1f} ms, oracle {1000 * s['oracle_seconds']:.1f} ms; "
        f"median of the per-case ratios {s['ratio']:.1f}× "
        f"(target ≤ {s['ratio_target']:g}×: {_met(s['ratio'] <= s['ratio_target'])}); "
        f"compilation and warm-up (the first calls' excess over the median) {s['compile_seconds']:.2f} s in all"
    )
    if "sweep_ratio" in s:
        lines.append(
            f"{name}: {SWEEP}-λ sweep / one case (median over compiled shapes): "
            f"{s['sweep_ratio']:.1f}× compiled, {s['sweep_first_ratio']:.1f}× first calls "
            f"(target ≤ {s['sweep_target']:g}×: {_met(s['sweep_ratio'] <= s['sweep_target'])} compiled, "
            f"{_met(s['sweep_first_ratio'] <= s['sweep_target'])} first calls)"
        )
    return lines


def _met(ok):
    return "met" if ok else "NOT met"
