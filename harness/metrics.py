"""One evaluator for every framework: losses and norms in NumPy float64 from the weights.

Every loss here is the plain data loss mean ½(x·w + b − y)², with no penalty, on the
float64 arrays, whatever loss or penalty the case trained with.
"""

from dataclasses import dataclass

import numpy as np

from harness.store import Epochs, Final, Steps


def half_mse(w, b, x, y):
    """Mean ½e² for each row of ``w`` (steps, dim) and ``b`` (steps,): shape (steps,)."""
    if len(y) == 0:
        return np.full(len(w), np.nan)
    with np.errstate(over="ignore", invalid="ignore"):
        error = w @ x.T + b[:, None] - y
        return 0.5 * np.mean(error * error, axis=1)


def evaluate(case, arrays, trajectory):
    """The run's evaluation: status, reason, and the per-step training loss and ‖w‖, per-epoch
    test and validation loss and final values (``store.Steps``, ``Epochs``, ``Final``).

    Step 0 and epoch 0 are the initial weights. A run whose weights or training loss
    become non-finite is ``diverged``: everything is cut before the first such step.
    """
    w = np.asarray(trajectory.w, dtype=np.float64)
    b = np.asarray(trajectory.b, dtype=np.float64)
    train_loss = half_mse(w, b, arrays.x_train, arrays.y_train)
    finite = np.isfinite(w).all(axis=1) & np.isfinite(b) & np.isfinite(train_loss)
    status, reason = "ok", ""
    if not finite.all():
        bad = int(np.argmin(finite))
        status, reason = "diverged", f"non-finite weights or training loss at step {bad}"
        w, b, train_loss = w[:bad], b[:bad], train_loss[:bad]
    with np.errstate(over="ignore"):
        w_norm = np.sqrt(np.sum(w * w, axis=1))
    per_epoch = case.steps // case.train.epochs
    at_epochs = np.arange(0, len(w), per_epoch)
    test_loss = half_mse(w[at_epochs], b[at_epochs], arrays.x_test, arrays.y_test)
    valid_loss = half_mse(w[at_epochs], b[at_epochs], arrays.x_valid, arrays.y_valid)
    last = len(w) - 1
    return Evaluation(
        status=status,
        reason=reason,
        steps=Steps(train_loss=train_loss.tolist(), w_norm=w_norm.tolist()),
        epochs=Epochs(test_loss=test_loss.tolist(), valid_loss=valid_loss.tolist() if len(arrays.y_valid) else None),
        final=Final(
            w=w[last].tolist(),
            b=float(b[last]),
            w_norm=float(w_norm[last]),
            train_loss=float(train_loss[last]),
            test_loss=float(half_mse(w[last:], b[last:], arrays.x_test, arrays.y_test)[0]),
        ),
    )


@dataclass(frozen=True)
class Evaluation:
    """What ``evaluate`` finds: the fields of a ``store.Result`` that come from the weights."""

    status: str
    reason: str
    steps: Steps
    epochs: Epochs
    final: Final
