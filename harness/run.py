"""Run one backend over every case of a spec and store each result as it finishes."""

import datetime
import json
import platform
import sys
import time
import traceback

import numpy as np

import backends
from harness import data, explain, metrics, store
from harness.trajectory import Unsupported


# An adapter may also export ``train_sweep(cases, arrays) -> [Trajectory]`` for cases that
# differ only in these keys; the run loop then trains each such group with one call.
SWEEPABLE = (("optimizer", "lr"), ("penalty", "strength"))


def run(backend, spec, results, force=False, shard=(1, 1), progress=None):
    """Train, evaluate and store every case of ``spec`` for ``backend``.

    Skips cases already stored for the same case id and versions unless ``force``.
    ``shard = (i, n)`` runs only the cases of shard i of n (see ``in_shard``).
    Returns the number of cases per status, plus ``skipped``.
    """
    adapter = backends.load(backend)
    stamp = versions(adapter)
    cases = [(point, case) for point, case in spec.cases(backend) if in_shard(case.id, *shard)]
    counts = dict.fromkeys((*store.STATUSES, "skipped"), 0)
    todo = []
    for index, (point, case) in enumerate(cases, start=1):
        if not force and store.is_current(store.path_for(results, backend, case.id), case.id, stamp):
            counts["skipped"] += 1
        else:
            todo.append((index, point, case))
    for group in _groups(adapter, todo):
        records = train_cases(backend, adapter, [case for _, _, case in group], results)
        for (index, point, case), record in zip(group, records):
            record.update(versions=stamp, platform=platform.platform(), created=_now())
            store.write(store.path_for(results, backend, case.id), record)
            counts[record["status"]] += 1
            if progress:
                progress(f"{backend} {spec.name} {index}/{len(cases)} {describe(point)}: {record['status']} ({record['seconds']:.2f} s)")
    return counts


def versions(adapter):
    """What a result or fingerprint was made with: the framework's versions, NumPy's and Python's."""
    return {**adapter.versions(), "numpy": np.__version__, "python": platform.python_version()}


def _now():
    """The current UTC time, ISO 8601 to the second: when a result was made."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def in_shard(case_id, index, count):
    """Shard ``index`` of ``count`` (1-based) holds the cases whose id ≡ index − 1 (mod count):
    disjoint, covering, and stable whatever the order or number of cases in the spec."""
    return int(case_id, 16) % count == index - 1


def _groups(adapter, todo):
    """``todo`` split into the groups trained together: cases equal but for SWEEPABLE keys
    when the adapter has ``train_sweep``, else one case each."""
    if not hasattr(adapter, "train_sweep"):
        return [[item] for item in todo]
    groups = {}
    for item in todo:
        shape = item[2].to_dict()
        for section, key in SWEEPABLE:
            del shape[section][key]
        groups.setdefault(json.dumps(shape, sort_keys=True), []).append(item)
    return list(groups.values())


def train_cases(backend, adapter, cases, results):
    """Train cases that share their arrays (one, or a group for ``train_sweep``) and evaluate
    each; a framework exception becomes an ``error`` record for each case it ended."""
    arrays = data.make(cases[0])
    data.save(arrays, f"{results}/arrays")
    records = [
        {
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
        for case in cases
    ]
    start = time.perf_counter()
    trajectories = None
    try:
        trajectories = adapter.train_sweep(cases, arrays) if len(cases) > 1 else [adapter.train(cases[0], arrays)]
    except Unsupported as why:
        for record in records:
            record.update(status="unsupported", reason=str(why))
    except Exception as error:  # a framework failure ends these cases only
        reason = traceback.format_exception_only(error)[-1].strip()
        for record in records:
            record.update(status="error", reason=reason, traceback=traceback.format_exc())
    seconds = (time.perf_counter() - start) / len(cases)  # training wall time, a group's shared evenly
    for record, case, trajectory in zip(records, cases, trajectories or [None] * len(cases), strict=True):
        record["seconds"] = seconds
        if trajectory is not None:
            record.update(api=trajectory.api, **metrics.evaluate(case, arrays, trajectory))
            record["hyperparameter_dtype"] = trajectory.hyperparameter_dtype or case.model.dtype
            if record["status"] == "ok":
                record["explained"] = explain.explain(case, arrays, trajectory).to_dict()
    return records


def describe(point):
    """``sgd, weight_decay, λ=3`` for a sweep point; ``loss overrides, λ=3`` for one factor's."""
    return ", ".join(_describe(k, v) for k, v in point.items()) or "the case"


def _describe(key, value):
    if key == "penalty.strength":
        return f"λ={value:g}"
    if key == "overrides":
        return "no overrides" if value == "none" else f"{value} overrides"
    return str(value)


def print_progress(line):
    print(line, file=sys.stderr, flush=True)
