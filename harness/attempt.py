"""One way to call an adapter, for the run loop, the probes and the benchmark alike."""

import json
import platform
import time
import traceback
from dataclasses import dataclass

import numpy as np

from backends.contract import Trajectory, Unsupported
from harness import data


@dataclass(frozen=True)
class Attempt:
    """One case's training call: its trajectory, or the ``failure`` ("unsupported": the framework
    cannot express the case; "error": the framework raised) with its reason and traceback."""

    trajectory: Trajectory | None
    failure: str | None = None
    reason: str = ""
    traceback: str | None = None
    seconds: float = 0.0  # training wall time; a sweep's shared evenly by its cases


def attempt(adapter, cases, arrays):
    """Train ``cases``, which share ``arrays``, with one call: ``train`` for one case,
    ``train_sweep`` for several (they may differ only in the adapter's SWEEPABLE keys). An
    exception ends the cases of the call, and only those: one Attempt per case, in order. A
    ``penalty.variant`` the adapter does not declare (its ``VARIANTS``) is unsupported."""
    start = time.perf_counter()
    try:
        penalty, optimizer = cases[0].penalty, cases[0].optimizer.name
        variants = adapter.VARIANTS.get((optimizer, penalty.kind), {})
        if penalty.variant and penalty.variant not in variants:
            known = ", ".join(variants) or "none"
            raise Unsupported(
                f'no variant "{penalty.variant}" of {optimizer} {penalty.kind} here; its variants: {known}'
            )
        trajectories = adapter.train_sweep(cases, arrays) if len(cases) > 1 else [adapter.train(cases[0], arrays)]
    except Unsupported as why:
        failed = {"failure": "unsupported", "reason": str(why)}
    except Exception as error:  # a framework failure ends these cases only
        reason = traceback.format_exception_only(error)[-1].strip()
        failed = {"failure": "error", "reason": reason, "traceback": traceback.format_exc()}
    else:
        seconds = (time.perf_counter() - start) / len(cases)
        return [Attempt(trajectory, seconds=seconds) for trajectory in trajectories]
    seconds = (time.perf_counter() - start) / len(cases)
    return [Attempt(None, seconds=seconds, **failed) for _ in cases]


def sweep_groups(adapter, items, case_of=lambda item: item):
    """``items`` split into the groups one ``attempt`` trains: items whose cases are equal but for
    the adapter's SWEEPABLE keys, in order of first appearance (one item each when it has none)."""
    if not adapter.SWEEPABLE:
        return [[item] for item in items]
    arrays_keys = [key for key in adapter.SWEEPABLE if data.depends_on(key)]
    if arrays_keys:
        raise ValueError(f"SWEEPABLE keys {arrays_keys} change the arrays, which the cases of one call share")
    groups = {}
    for item in items:
        shape = case_of(item).to_dict()
        for key in adapter.SWEEPABLE:
            section, name = key.split(".")
            del shape[section][name]
        groups.setdefault(json.dumps(shape, sort_keys=True), []).append(item)
    return list(groups.values())


def versions(adapter):
    """What a result, fingerprint or benchmark was made with: the framework's versions, NumPy's and Python's."""
    return {**adapter.versions(), "numpy": np.__version__, "python": platform.python_version()}


def own_behaviour(adapter, case):
    """The adapter's account (``OWN_BEHAVIOURS``) of why no rule explains ``case``'s run, or ""."""
    accounts = adapter.OWN_BEHAVIOURS
    optimizer, kind = case.optimizer.name, case.penalty.kind
    return accounts.get((optimizer, kind)) or accounts.get((optimizer, None)) or ""
