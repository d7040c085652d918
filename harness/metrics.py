"""One evaluator for every framework: losses and norms in NumPy float64 from the weights.

Every loss here is the plain data loss mean ½(ŷ − y)², with no penalty, on the float64
arrays, whatever loss or penalty the case trained with; ŷ is the model's (``harness.network``).
‖w‖ is the norm of every weight at once: for an MLP √(Σₗ ‖Wₗ‖²_F).
"""

from dataclasses import dataclass

import numpy as np

from harness import network
from harness.store import Epochs, Final, Steps


def half_mse(case, p, x, y):
    """Mean ½e² for each row of the joined parameters ``p`` (steps, parameters): shape (steps,)."""
    if len(y) == 0:
        return np.full(len(p), np.nan)
    with np.errstate(over="ignore", invalid="ignore"):
        error = network.predict(case, p, x) - y
        return 0.5 * np.mean(error * error, axis=1)


def evaluate(case, arrays, trajectory):
    """The run's evaluation: status, reason, and the per-step training loss and ‖w‖ (and, for an
    MLP, each tensor's norm: ‖Wₗ‖_F, ‖bₗ‖₂), per-epoch test and validation loss and final values
    (``store.Steps``, ``Epochs``, ``Final``).

    Step 0 and epoch 0 are the initial weights. A run whose weights or training loss
    become non-finite is ``diverged``: everything is cut before the first such step.
    """
    p = network.joined(trajectory.w, trajectory.b)
    train_loss = half_mse(case, p, arrays.x_train, arrays.y_train)
    finite = np.isfinite(p).all(axis=1) & np.isfinite(train_loss)
    status, reason = "ok", ""
    if not finite.all():
        bad = int(np.argmin(finite))
        status, reason = "diverged", f"non-finite weights or training loss at step {bad}"
        p, train_loss = p[:bad], train_loss[:bad]
    w, b = network.split(case, p)
    with np.errstate(over="ignore"):
        w_norm = np.sqrt(np.sum(w * w, axis=1))
        norms = {t.name: np.linalg.norm(p[:, t.index], axis=1).tolist() for t in network.tensors(case)}
    per_epoch = case.steps // case.train.epochs
    at_epochs = np.arange(0, len(p), per_epoch)
    test_loss = half_mse(case, p[at_epochs], arrays.x_test, arrays.y_test)
    valid_loss = half_mse(case, p[at_epochs], arrays.x_valid, arrays.y_valid)
    last = len(p) - 1
    return Evaluation(
        status=status,
        reason=reason,
        steps=Steps(
            train_loss=train_loss.tolist(),
            w_norm=w_norm.tolist(),
            tensor_norms=norms if case.model.kind == "mlp" else None,
        ),
        epochs=Epochs(test_loss=test_loss.tolist(), valid_loss=valid_loss.tolist() if len(arrays.y_valid) else None),
        final=Final(
            w=w[last].tolist(),
            b=b[last].tolist(),
            w_norm=float(w_norm[last]),
            train_loss=float(train_loss[last]),
            test_loss=float(half_mse(case, p[last:], arrays.x_test, arrays.y_test)[0]),
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
