from types import SimpleNamespace

import numpy as np
import pytest

from harness import diff
from harness.case import Case


def stored(case, norms):
    """A trained result of ``case`` whose ‖w‖ per step is ``norms``, as ``diff`` reads it."""
    return SimpleNamespace(case=case, trained=True, steps=SimpleNamespace(w_norm=norms), hyperparameter_dtype=None)


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


def test_norms_part_at_the_first_step_beyond_tolerance_relative_to_the_larger():
    # step 2: |2.0 − 2.1| / 2.1 ≈ 0.048 > 0.01; step 1: |1.0 − 1.005| / 1.005 ≈ 0.005 ≤ 0.01
    assert diff.norm_parting([1.0, 1.0, 2.0, 3.0], [1.0, 1.005, 2.1, 3.0], 0.01) == 2
    assert diff.norm_parting([1.0, 1.0, 2.0], [1.0, 1.005, 2.0], 0.01) is None
    assert diff.norm_parting([0.0, 0.0], [0.0, 0.0], 0.0) is None  # 0 against 0 is no gap


def test_a_run_cut_short_parts_where_it_stops_unless_only_finite_steps_count():
    assert diff.norm_parting([1.0, 2.0], [1.0, 2.0, 3.0], 1e-10) == 2
    assert diff.norm_parting([1.0, 2.0], [1.0, 2.0, 3.0], 1e-10, finite=True) is None


def test_final_weights_move_beyond_tolerance_relative_to_the_second():
    # ‖(3, 4, 0) − (3, 4, 0.06)‖ / ‖(3, 4, 0.06)‖ = 0.06 / 5.00036 ≈ 0.012
    assert diff.final_moves(([3.0, 4.0], 0.0), ([3.0, 4.0], 0.06), 0.01)
    assert not diff.final_moves(([3.0, 4.0], 0.0), ([3.0, 4.0], 0.06), 0.02)


def test_coinciding_items_join_the_first_group_they_do_not_part_from():
    def parting(a, b):
        return None if abs(a - b) < 1 else 0

    assert diff.coinciding([1.0, 5.0, 1.5, 5.2, 9.0], parting) == [[1.0, 1.5], [5.0, 5.2], [9.0]]
    assert diff.coinciding([], parting) == []


def test_two_backends_runs_of_the_same_cases_give_their_largest_gap_and_partings():
    case = Case()
    results = {
        ("torch", "a"): stored(case, [1.0, 0.5]), ("jax", "a"): stored(case, [1.0, 0.5 * (1 + 1e-6)]),
        ("torch", "b"): stored(case, [1.0, 0.5]), ("jax", "b"): stored(case, [1.0, 0.5]),
        ("mlx", "a"): stored(case.replace({"model.dtype": "float32"}), [1.0, 0.6]),  # float32: not compared
    }  # fmt: skip
    found = diff.backend_gaps(results, "torch", ["jax", "mlx"])
    (key,) = found
    assert key == ("sgd", "none") and set(found[key]) == {"jax"}
    gaps = found[key]["jax"]
    assert gaps.cases == 2 and gaps.parted == 1 and gaps.largest == pytest.approx(1e-6, rel=1e-3)
