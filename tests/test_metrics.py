import numpy as np
import pytest

from harness import diff, metrics
from harness.data import Arrays
from harness.spec import Case
from harness.trajectory import Trajectory


def arrays():
    x = np.array([[1.0, 0.0], [0.0, 2.0]])
    return Arrays(
        x_train=x, y_train=np.array([1.0, 0.0]), x_valid=x[:1], y_valid=np.array([0.0]),
        x_test=x, y_test=np.array([0.0, 0.0]), w0=np.zeros(2), b0=np.array(0.0),
        batches=np.array([[[0, 1]], [[1, 0]]]),
    )


CASE = Case().replace({"data.dim": 2, "data.n_train": 2, "data.n_test": 2, "train.batch_size": 2, "train.epochs": 2})


def test_losses_and_norms_by_hand():
    w = np.array([[0.0, 0.0], [3.0, 4.0], [1.0, 0.0]])
    result = metrics.evaluate(CASE, arrays(), Trajectory(w=w, b=np.array([0.0, 0.0, 1.0]), api=""))
    assert result["status"] == "ok"
    # train: e = (-1, 0) -> 0.25; e = (2, 8) -> (4 + 64)/4 = 17; e = (1, 1) -> 0.5
    assert result["steps"]["train_loss"] == [0.25, 17.0, 0.5]
    assert result["steps"]["w_norm"] == [0.0, 5.0, 1.0]
    # test (y = 0) at epochs 0, 1, 2: 0; e = (3, 8) -> 73/4; e = (2, 1) -> 5/4
    assert result["epochs"]["test_loss"] == [0.0, 18.25, 1.25]
    assert result["epochs"]["valid_loss"] == [0.0, 4.5, 2.0]
    assert result["final"] == {"w": [1.0, 0.0], "b": 1.0, "w_norm": 1.0, "train_loss": 0.5, "test_loss": 1.25}


def test_non_finite_weights_end_the_run_as_diverged():
    w = np.array([[0.0, 0.0], [3.0, 4.0], [np.inf, 0.0]])
    result = metrics.evaluate(CASE, arrays(), Trajectory(w=w, b=np.zeros(3), api=""))
    assert result["status"] == "diverged" and "step 2" in result["reason"]
    assert len(result["steps"]["train_loss"]) == 2 and result["final"]["w"] == [3.0, 4.0]


def test_relative_gaps_and_first_divergent_step():
    a = (np.array([[3.0, 4.0], [3.0, 4.0]]), np.zeros(2))
    b = (np.array([[3.0, 4.0], [3.0, 4.0 + 5e-6]]), np.zeros(2))
    gaps = diff.relative_gaps(b, a)
    assert gaps[0] == 0 and gaps[1] == pytest.approx(1e-6)
    assert diff.first_divergent_step(gaps, 1e-5) is None
    assert diff.first_divergent_step(gaps, 1e-7) == 1
    assert diff.first_divergent_step([0.0, np.nan], 1.0) == 1


def test_relative_gaps_broadcast_over_leading_axes():
    one = (np.array([[3.0, 4.0], [3.0, 4.0]]), np.zeros(2))
    two = (np.stack([one[0], 2 * one[0]]), np.zeros((2, 2)))  # the same trajectory, then doubled
    gaps = diff.relative_gaps(one, two)
    assert gaps.shape == (2, 2) and (gaps[0] == 0).all() and gaps[1] == pytest.approx([0.5, 0.5])
    shorter = (two[0][:, :1], two[1][:, :1])
    assert diff.relative_gaps(one, shorter).tolist() == [[np.inf, np.inf], [np.inf, np.inf]]
