"""Distances between weight trajectories, and the tolerances that call two of them equal."""

from dataclasses import dataclass

import numpy as np

# Largest per-step relative gap between a backend's trajectory and the float64 oracle
# that still counts as the same semantics, by the backend's dtype:
TOLERANCE = {
    "float64": 1e-10,  # float64 rounding stays near 1e-13 over a few hundred steps
    "float32": 1e-4,  # float32 keeps ~7 digits; rounding accumulates over hundreds of steps
}


# Largest relative gap between a backend's step and the float64 oracle's prediction of it from
# the backend's own previous parameters that still counts as the same rule, by dtype (measured on
# every built-in spec in every framework: float64 ≤ 2e-15; float32, or float64 with float32
# hyperparameters, ≤ 2.1e-7; a wrong multiplier moves a step by lr·λ·Δk ≥ 1.5e-4 of it):
STEP_TOLERANCE = {
    "float64": 1e-12,  # one step's float64 rounding is near 1e-15
    "float32": 1e-5,  # one float32 step, or float32 hyperparameters over a float64 state, stays near 2e-7
}


def tolerance(dtype, hyperparameter_dtype=None, table=TOLERANCE):
    """The tolerance (from ``table``: TOLERANCE for whole runs, STEP_TOLERANCE for one step) of a
    run in ``dtype`` whose framework applies its hyperparameters, or computes its update, in
    ``hyperparameter_dtype`` (None: in ``dtype``): the looser of the two."""
    return max(table[dtype], table[hyperparameter_dtype or dtype])


def relative_gaps(a, b):
    """Per-step ‖pₐ − p_b‖ / ‖p_b‖ for trajectories given as (w, b) pairs, p = (w, b) (``harness.network``).

    Either side may hold several trajectories along leading axes (e.g. one per oracle rule),
    which broadcast; trajectories of different shapes are apart (inf) at every step.
    """
    (wa, ba), (wb, bb) = [[np.asarray(x, np.float64) for x in pair] for pair in (a, b)]
    if wa.shape[-2:] != wb.shape[-2:] or ba.shape[wa.ndim - 2 :] != bb.shape[wb.ndim - 2 :]:
        leading = np.broadcast_shapes(wa.shape[:-2], wb.shape[:-2])
        return np.full((*leading, max(wa.shape[-2], wb.shape[-2])), np.inf)
    scale = np.maximum(np.sqrt(_squares(wb, bb)), np.finfo(np.float64).tiny)
    return np.sqrt(_squares(wa - wb, ba - bb)) / scale


def _squares(w, b):
    """‖p‖² along the last axis of p = (w, b), without joining them (a linear model's b is one number a step)."""
    return np.einsum("...i,...i->...", w, w) + (b * b if b.ndim < w.ndim else np.einsum("...i,...i->...", b, b))


def first_divergent_step(gaps, tolerance):
    """The first step whose gap exceeds ``tolerance`` (NaN counts as exceeding), or None."""
    above = ~(np.asarray(gaps) <= tolerance)
    return int(np.argmax(above)) if above.any() else None


def norm_parting(norms_a, norms_b, tolerance, finite=False):
    """The first step at which two runs' per-step ‖w‖ differ by more than ``tolerance`` relative to
    the larger of the two, or None. Since |‖wₐ‖ − ‖w_b‖| ≤ ‖wₐ − w_b‖, the weights have parted by
    then. A run cut short (non-finite weights) parts where it stops, unless ``finite``: then
    only the steps where both are finite count."""
    step = first_divergent_step(norm_gaps(norms_a, norms_b), tolerance)
    return min(len(norms_a), len(norms_b)) if step is None and len(norms_a) != len(norms_b) and not finite else step


def norm_gaps(norms_a, norms_b):
    """|‖wₐ‖ − ‖w_b‖| / max(‖wₐ‖, ‖w_b‖) at every step both runs reached."""
    x, y = np.asarray(norms_a, np.float64), np.asarray(norms_b, np.float64)
    n = min(len(x), len(y))
    scale = np.maximum(np.maximum(np.abs(x[:n]), np.abs(y[:n])), np.finfo(np.float64).tiny)
    return np.abs(x[:n] - y[:n]) / scale


def final_moves(a, b, tolerance):
    """Whether two final (w, b) pairs differ by more than ``tolerance``, relative to ``b``'s."""
    (wa, ba), (wb, bb) = a, b
    return bool(relative_gaps(([wa], [ba]), ([wb], [bb]))[0] > tolerance)


def coinciding(items, parting):
    """``items`` in groups, in order: each item joins the first group whose first item it does not
    part from (``parting(first, item)`` is None), or starts a group of its own."""
    groups = []
    for item in items:
        group = next((g for g in groups if parting(g[0], item) is None), None)
        if group is None:
            groups.append([item])
        else:
            group.append(item)
    return groups


def result_tolerance(*results):
    """The loosest tolerance of stored Results: their dtype, or the coarser one their hyperparameters had."""
    return max(tolerance(r.case.model.dtype, r.hyperparameter_dtype) for r in results)


def result_parting(a, b, finite=False):
    """``norm_parting`` of two trained Results at their looser tolerance."""
    return norm_parting(a.steps.w_norm, b.steps.w_norm, result_tolerance(a, b), finite)


@dataclass(frozen=True)
class Gaps:
    """Over the float64 cases two backends both trained: the ``largest`` relative gap in ‖w‖ at any step
    (``norm_gaps``), the number of ``cases``, and how many of them ``parted`` beyond the looser tolerance."""

    largest: float
    cases: int
    parted: int


def backend_gaps(results, first, others):
    """{(optimizer, penalty kind): {backend: Gaps}} of each of ``others`` against ``first`` over the float64
    cases of ``results`` ({(backend, case id): Result}) that both trained."""
    found = {}
    for (backend, case_id), result in results.items():
        reference = results.get((first, case_id))
        if backend not in others or reference is None or result.case.model.dtype != "float64":
            continue
        if not (result.trained and reference.trained):
            continue
        gap = float(np.nanmax(norm_gaps(reference.steps.w_norm, result.steps.w_norm), initial=0.0))
        parted = int(result_parting(reference, result) is not None)
        key = (result.case.optimizer.name, result.case.penalty.kind)
        before = found.setdefault(key, {}).get(backend, Gaps(0.0, 0, 0))
        found[key][backend] = Gaps(max(before.largest, gap), before.cases + 1, before.parted + parted)
    return found
