import numpy as np

from backends.contract import Trajectory
from harness import metrics
from harness.case import Case
from harness.data import Arrays


def arrays():
    x = np.array([[1.0, 0.0], [0.0, 2.0]])
    return Arrays(
        x_train=x, y_train=np.array([1.0, 0.0]), x_valid=x[:1], y_valid=np.array([0.0]),
        x_test=x, y_test=np.array([0.0, 0.0]), w0=np.zeros(2), b0=np.array(0.0),
        batches=np.array([[[0, 1]], [[1, 0]]]),
    )  # fmt: skip


CASE = Case().replace({"data.dim": 2, "data.n_train": 2, "data.n_test": 2, "train.batch_size": 2, "train.epochs": 2})


def test_losses_and_norms_by_hand():
    w = np.array([[0.0, 0.0], [3.0, 4.0], [1.0, 0.0]])
    result = metrics.evaluate(CASE, arrays(), Trajectory(w=w, b=np.array([0.0, 0.0, 1.0]), statements=()))
    assert result.status == "ok"
    # train: e = (-1, 0) -> 0.25; e = (2, 8) -> (4 + 64)/4 = 17; e = (1, 1) -> 0.5
    assert result.steps.train_loss == [0.25, 17.0, 0.5]
    assert result.steps.w_norm == [0.0, 5.0, 1.0]
    # test (y = 0) at epochs 0, 1, 2: 0; e = (3, 8) -> 73/4; e = (2, 1) -> 5/4
    assert result.epochs.test_loss == [0.0, 18.25, 1.25]
    assert result.epochs.valid_loss == [0.0, 4.5, 2.0]
    final = result.final
    assert (final.w, final.b, final.w_norm, final.train_loss, final.test_loss) == ([1.0, 0.0], 1.0, 1.0, 0.5, 1.25)


def test_non_finite_weights_end_the_run_as_diverged():
    w = np.array([[0.0, 0.0], [3.0, 4.0], [np.inf, 0.0]])
    result = metrics.evaluate(CASE, arrays(), Trajectory(w=w, b=np.zeros(3), statements=()))
    assert result.status == "diverged" and "step 2" in result.reason
    assert len(result.steps.train_loss) == 2 and result.final.w == [3.0, 4.0]
