"""The oracle against small cases worked out by hand (one weight, one example, two steps).

x = 2, y = 0, w₀ = 0.5, b₀ = 0, lr = 0.1, batch of 1, two epochs of one step each.
The comments give the hand computation; numbers are exact decimals unless noted.
"""

import numpy as np
import pytest

from harness import data, explain, oracle
from harness.case import Case
from harness.data import Arrays

HAND = 1e-12  # hand results are exact decimals; float64 rounding only
# simulate_rules computes every rule's products in one matrix product, which BLAS may sum in
# another order than a single rule's: equal up to float64 rounding, over the steps below.
BATCHED = 1e-12


def tiny(optimizer="sgd", **optimizer_values):
    case = Case().replace(
        {
            "data.dim": 1,
            "data.n_train": 1,
            "train.batch_size": 1,
            "train.epochs": 2,
            "optimizer.name": optimizer,
            "optimizer.lr": 0.1,
            **{f"optimizer.{k}": v for k, v in optimizer_values.items()},
        }
    )
    empty = np.zeros((0, 1))
    arrays = Arrays(
        x_train=np.array([[2.0]]),
        y_train=np.array([0.0]),
        x_valid=empty,
        y_valid=np.zeros(0),
        x_test=empty,
        y_test=np.zeros(0),
        w0=np.array([0.5]),
        b0=np.array(0.0),
        batches=np.zeros((2, 1, 1), dtype=np.int64),
    )
    return case, arrays


def steps(rule, optimizer="sgd", **optimizer_values):
    case, arrays = tiny(optimizer, **optimizer_values)
    w, b = oracle.simulate(rule, case, arrays)
    return w[:, 0].tolist(), b.tolist()


def expect(got, w, b, tolerance=HAND):
    assert got[0] == pytest.approx(w, abs=tolerance) and got[1] == pytest.approx(b, abs=tolerance)


def test_sgd_half_mse():
    # e = 1, g = (2, 1): w = 0.3, b = -0.1; e = 0.5, g = (1, 0.5): w = 0.2, b = -0.15
    expect(steps(oracle.Rule()), [0.5, 0.3, 0.2], [0, -0.1, -0.15])


def test_sgd_mse_doubles_the_gradient():
    # g = (4, 2): w = 0.1, b = -0.2; then e = 0: nothing moves
    expect(steps(oracle.Rule(loss="mse")), [0.5, 0.1, 0.1], [0, -0.2, -0.2])


def test_sgd_coupled():
    # g_w = 2 + 0.5 = 2.5: w = 0.25, b = -0.1; e = 0.4, g_w = 0.8 + 0.25: w = 0.145, b = -0.14
    expect(steps(oracle.Rule(coupled=1.0)), [0.5, 0.25, 0.145], [0, -0.1, -0.14])


def test_sgd_coupled_with_the_bias():
    # as above, but step 2 g_b = 0.4 + b₁ = 0.3: b = -0.13
    expect(steps(oracle.Rule(coupled=1.0, decay_bias=True)), [0.5, 0.25, 0.145], [0, -0.1, -0.13])


def test_sgd_l1():
    # g_w = 2 + sign(0.5) = 3: w = 0.2; e = 0.3, g_w = 0.6 + 1: w = 0.04, b = -0.13
    expect(steps(oracle.Rule(l1=1.0)), [0.5, 0.2, 0.04], [0, -0.1, -0.13])


def test_sgd_decoupled_without_lr():
    # w = 0.5 - 0.2 - 1·0.5 = -0.2; e = -0.5, g_w = -1: w = -0.2 + 0.1 + 0.2 = 0.1, b = -0.05
    expect(steps(oracle.Rule(decoupled=1.0)), [0.5, -0.2, 0.1], [0, -0.1, -0.05])


def test_momentum_coupled_goes_through_the_velocity():
    # v = 2.5: w = 0.25; g_w = 1.05, v = 1.25 + 1.05 = 2.3: w = 0.02; v_b = 1, 0.9: b = -0.1, -0.19
    expect(steps(oracle.Rule(coupled=1.0), "momentum", momentum=0.5), [0.5, 0.25, 0.02], [0, -0.1, -0.19])


def test_momentum_decoupled_times_lr_bypasses_the_velocity():
    # v = 2: w = 0.5 - 0.2 - 0.05 = 0.25; g_w = 0.8, v = 1.8: w = 0.25 - 0.18 - 0.025 = 0.045
    expect(steps(oracle.Rule(decoupled_lr=1.0), "momentum", momentum=0.5), [0.5, 0.25, 0.045], [0, -0.1, -0.19])


def test_nesterov():
    # v = g = (2, 1), u = g + 0.5v = (3, 1.5): w = 0.2, b = -0.15
    # e = 0.25, g = (0.5, 0.25), v = (1.5, 0.75), u = (1.25, 0.625): w = 0.075, b = -0.2125
    expect(steps(oracle.Rule(), "nesterov", momentum=0.5), [0.5, 0.2, 0.075], [0, -0.15, -0.2125])


def test_adam_without_eps():
    # step 1: m̂ = g, ŝ = g², u = 1: w = 0.4, b = -0.1
    # step 2: e = 0.7, g = (1.4, 0.7); m = (0.32, 0.16), s = (0.005956, 0.001489);
    #   m̂ = m / 0.19, ŝ = s / 0.001999, u = 0.975721 (both): w = 0.302428, b = -0.197572
    expect(steps(oracle.Rule(), "adam", eps=0.0), [0.5, 0.4, 0.302428], [0, -0.1, -0.197572], tolerance=1e-6)


@pytest.mark.parametrize(
    "convention, w1, b1",
    [
        # u = g / (|g| + 1) = (2/3, 1/2)
        ("after_correction", 0.5 - 0.1 * 2 / 3, -0.05),
        # u = √0.001 / 0.1 · m / (√s + 1), m = 0.1g, s = 0.001g²: u_w = 0.0594827, u_b = 0.0306535
        ("before_correction", 0.4940517, -0.00306535),
    ],
)
def test_adam_eps_conventions(convention, w1, b1):
    got = steps(oracle.Rule(adam_eps=convention), "adam", eps=1.0)
    assert got[0][1] == pytest.approx(w1, abs=1e-7) and got[1][1] == pytest.approx(b1, abs=1e-8)


def test_float32_case_rounds_the_data_first():
    case, arrays = tiny()
    arrays = Arrays(**{**arrays.__dict__, "w0": np.array([0.1])})
    w, _ = oracle.simulate(oracle.Rule(), case.replace({"model.dtype": "float32"}), arrays)
    assert w[0, 0] == float(np.float32(0.1)) != 0.1


def test_loss_penalty_rule_follows_the_spec():
    case = Case().replace({"penalty.kind": "l2_loss", "penalty.strength": 3.0})
    assert oracle.loss_penalty_rule(case) == oracle.Rule(coupled=3.0)
    case = case.replace({"penalty.kind": "l1_loss", "train.loss": "mse", "penalty.decay_bias": True})
    assert oracle.loss_penalty_rule(case) == oracle.Rule(loss="mse", l1=3.0, decay_bias=True)
    with pytest.raises(ValueError):
        oracle.loss_penalty_rule(case.replace({"penalty.kind": "weight_decay"}))


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adam"])
@pytest.mark.parametrize("kind", ["weight_decay", "l1_loss"])
def test_simulating_every_rule_at_once_equals_one_rule_at_a_time(optimizer, kind):
    """Each row of simulate_rules follows its own rule: explain's whole catalog (both losses,
    both Adam ε conventions, bias decayed or not, every placement and multiplier)."""
    case = Case().replace(
        {
            "train.epochs": 5,
            "train.loss": "native",
            "optimizer.name": optimizer,
            "penalty.kind": kind,
            "penalty.strength": 3.0,
        }
    )
    arrays = data.make(case)
    rules = [rule for _, rule in explain.candidates(case)]
    w, b = oracle.simulate_rules(rules, case, arrays)
    assert w.shape == (len(rules), case.steps + 1, case.data.dim) and b.shape == (len(rules), case.steps + 1)
    for rule, w_rule, b_rule in zip(rules, w, b, strict=True):
        alone = oracle.simulate(rule, case, arrays)
        np.testing.assert_allclose(w_rule, alone[0], rtol=BATCHED, atol=BATCHED, err_msg=str(rule))
        np.testing.assert_allclose(b_rule, alone[1], rtol=BATCHED, atol=BATCHED, err_msg=str(rule))
