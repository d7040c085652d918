"""Run one backend over every case of a spec and store each result as it finishes."""

import platform
import sys
import time
import traceback

import numpy as np

import backends
from harness import data, metrics, store
from harness.trajectory import Unsupported


def run(backend, spec, results, force=False, progress=None):
    """Train, evaluate and store every case of ``spec`` for ``backend``.

    Skips cases already stored for the same case id and versions unless ``force``.
    Returns the number of cases per status, plus ``skipped``.
    """
    adapter = backends.load(backend)
    versions = {**adapter.versions(), "numpy": np.__version__, "python": platform.python_version()}
    cases = spec.cases(backend)
    counts = dict.fromkeys((*store.STATUSES, "skipped"), 0)
    for index, (point, case) in enumerate(cases, start=1):
        path = store.path_for(results, backend, case.id)
        if not force and store.is_current(path, case.id, versions):
            counts["skipped"] += 1
            continue
        record = run_case(backend, adapter, case, results)
        record["versions"] = versions
        store.write(path, record)
        counts[record["status"]] += 1
        if progress:
            progress(f"{backend} {index}/{len(cases)} {describe(point)}: {record['status']} ({record['seconds']:.2f} s)")
    return counts


def run_case(backend, adapter, case, results):
    """Train one case and evaluate it; framework exceptions become an ``error`` record."""
    arrays = data.make(case)
    data.save(arrays, f"{results}/arrays")
    record = {
        "schema_version": store.SCHEMA_VERSION,
        "backend": backend,
        "versions": None,
        "case_id": case.id,
        "case": case.to_dict(),
        "data_sha256": arrays.sha256,
        "status": None,
        "reason": "",
        "api": None,
        "steps": None,
        "epochs": None,
        "final": None,
        "seconds": None,
    }
    start = time.perf_counter()
    try:
        trajectory = adapter.train(case, arrays)
    except Unsupported as why:
        record.update(status="unsupported", reason=str(why))
    except Exception as error:  # a framework failure ends this case only
        lines = traceback.format_exception_only(error)
        record.update(status="error", reason=lines[-1].strip(), traceback=traceback.format_exc())
    else:
        record.update(api=trajectory.api, **metrics.evaluate(case, arrays, trajectory))
    record["seconds"] = time.perf_counter() - start
    return record


def describe(point):
    """``sgd, weight_decay, λ=3`` for a sweep point."""
    return ", ".join(f"λ={v:g}" if k == "penalty.strength" else str(v) for k, v in point.items()) or "the case"


def print_progress(line):
    print(line, file=sys.stderr, flush=True)
