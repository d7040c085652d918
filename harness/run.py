"""Run one backend over every case of a spec and store each result as it finishes."""

import datetime
import platform
import sys
import time
import traceback

import backends
from backends.contract import Statement
from harness import data, explain, metrics, store
from harness.attempt import attempt, own_behaviour, sweep_groups, versions
from harness.spec import describe


def run(backend, spec, results, force=False, shard=(1, 1), progress=None):
    """Train, evaluate and store every case of ``spec`` for ``backend``.

    Skips cases already stored for the same case id and versions unless ``force``.
    ``shard = (i, n)`` runs only the cases of shard i of n (see ``in_shard``). ``progress``
    gets a line per case stored: cases done of the total, and the time left at this pace.
    Returns the number of cases per status, plus ``skipped``.
    """
    adapter = backends.load(backend)
    stamp = versions(adapter)
    cases = [(point, case) for point, case in spec.cases(backend) if in_shard(case.id, *shard)]
    counts = dict.fromkeys((*store.STATUSES, "skipped"), 0)
    todo = []
    for point, case in cases:
        if not force and store.is_current(store.path_for(results, backend, case.id), case.id, stamp):
            counts["skipped"] += 1
        else:
            todo.append((point, case))
    start, done = time.perf_counter(), 0
    for group in sweep_groups(adapter, todo, case_of=lambda item: item[1]):
        for (point, case), result in zip(
            group, train_cases(backend, adapter, [case for _, case in group], stamp, results)
        ):
            store.write(store.path_for(results, backend, case.id), result)
            counts[result.status] += 1
            done += 1
            if progress:
                left = (time.perf_counter() - start) / done * (len(todo) - done)
                progress(
                    f"{backend} {spec.name} {counts['skipped'] + done}/{len(cases)} {describe(point)}: "
                    f"{result.status} ({result.seconds:.2f} s; about {_duration(left)} left)"
                )
    return counts


def _duration(seconds):
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def in_shard(case_id, index, count):
    """Shard ``index`` of ``count`` (1-based) holds the cases whose id ≡ index − 1 (mod count):
    disjoint, covering, and stable whatever the order or number of cases in the spec."""
    return int(case_id, 16) % count == index - 1


def train_cases(backend, adapter, cases, stamp, results):
    """The Results of cases that share their arrays, trained with one ``attempt``: evaluated,
    and an ok run explained by its oracle rule, in this process, where its weights are."""
    arrays = data.make(cases[0])
    data.save(arrays, f"{results}/arrays")
    made = {"platform": platform.platform(), "created": _now()}
    found = []
    for case, tried in zip(cases, attempt(adapter, cases, arrays), strict=True):
        fields = {
            "backend": backend,
            "versions": stamp,
            "case": case,
            "data_sha256": arrays.sha256,
            "reason": tried.reason,
            "traceback": tried.traceback,
            "seconds": tried.seconds,
            **made,
        }
        if tried.trajectory is None:
            found.append(store.Result(status=tried.failure, **fields))
            continue
        try:
            evaluation = metrics.evaluate(case, arrays, tried.trajectory)
            explained = explain.explain(case, arrays, tried.trajectory) if evaluation.status == "ok" else None
        except Exception as error:  # the harness's own failure on this case (out of memory, say) ends it alone
            reason = "the harness failed: " + traceback.format_exception_only(error)[-1].strip()
            found.append(
                store.Result(status="error", **fields | {"reason": reason, "traceback": traceback.format_exc()})
            )
            continue
        note = own_behaviour(adapter, case) if explained and not explained.matched else ""
        found.append(
            store.Result(
                **fields | vars(evaluation),
                statements=tuple(Statement(s.kind, s.text) for s in tried.trajectory.statements),
                explained=explained,
                note=note,
                hyperparameter_dtype=tried.trajectory.hyperparameter_dtype or case.model.dtype,
            )
        )
    return found


def _now():
    """The current UTC time, ISO 8601 to the second: when a result was made."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def print_progress(line):
    print(line, file=sys.stderr, flush=True)
