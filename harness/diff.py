"""Distances between weight trajectories, and the tolerances that call two of them equal."""

import numpy as np

# Largest per-step relative gap between a backend's trajectory and the float64 oracle
# that still counts as the same semantics, by the backend's dtype:
TOLERANCE = {
    "float64": 1e-10,  # float64 rounding stays near 1e-13 over a few hundred steps
    "float32": 1e-4,  # float32 keeps ~7 digits; rounding accumulates over hundreds of steps
}


def tolerance(dtype, hyperparameter_dtype=None):
    """The tolerance of a run in ``dtype`` whose framework applies its hyperparameters in
    ``hyperparameter_dtype`` (None: in ``dtype``): the looser of the two."""
    return max(TOLERANCE[dtype], TOLERANCE[hyperparameter_dtype or dtype])


def relative_gaps(a, b):
    """Per-step ‖pₐ − p_b‖ / ‖p_b‖ for trajectories given as (w, b) pairs, p = (w, b).

    Either side may hold several trajectories along leading axes (e.g. one per oracle rule),
    which broadcast; trajectories of different shapes are apart (inf) at every step.
    """
    pa, pb = _joined(a), _joined(b)
    if pa.shape[-2:] != pb.shape[-2:]:
        leading = np.broadcast_shapes(pa.shape[:-2], pb.shape[:-2])
        return np.full((*leading, max(pa.shape[-2], pb.shape[-2])), np.inf)
    scale = np.maximum(np.linalg.norm(pb, axis=-1), np.finfo(np.float64).tiny)
    return np.linalg.norm(pa - pb, axis=-1) / scale


def _joined(trajectory):
    """(w, b) as one float64 array p = (w, b): shape (..., steps, dim + 1)."""
    w, b = trajectory
    return np.concatenate([np.asarray(w, np.float64), np.asarray(b, np.float64)[..., None]], axis=-1)


def first_divergent_step(gaps, tolerance):
    """The first step whose gap exceeds ``tolerance`` (NaN counts as exceeding), or None."""
    above = ~(np.asarray(gaps) <= tolerance)
    return int(np.argmax(above)) if above.any() else None
