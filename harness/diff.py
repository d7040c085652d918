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
    """Per-step ‖pₐ − p_b‖ / ‖p_b‖ for trajectories given as (w, b) pairs, p = (w, b)."""
    pa = np.column_stack([np.asarray(a[0], np.float64), np.asarray(a[1], np.float64)])
    pb = np.column_stack([np.asarray(b[0], np.float64), np.asarray(b[1], np.float64)])
    if pa.shape != pb.shape:
        return np.full(max(len(pa), len(pb)), np.inf)
    scale = np.maximum(np.linalg.norm(pb, axis=1), np.finfo(np.float64).tiny)
    return np.linalg.norm(pa - pb, axis=1) / scale


def first_divergent_step(gaps, tolerance):
    """The first step whose gap exceeds ``tolerance`` (NaN counts as exceeding), or None."""
    above = ~(np.asarray(gaps) <= tolerance)
    return int(np.argmax(above)) if above.any() else None
