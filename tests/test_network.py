"""The MLP of the oracle against a 2-2-1 network worked by hand, and every rule per parameter role.

x = (1, 2), y = 1, one example, relu;  W₁ = [[1, −1], [0.5, 1]], b₁ = (0, 0.5), W₂ = [[2], [1]], b₂ = 0.5.
Forward:  z₁ = x·W₁ + b₁ = (2, 1.5) = h₁ (both positive);  ŷ = 2·2 + 1.5·1 + 0.5 = 6;  e = 5.
Backward (n = 1):  δ₂ = 5;  ∇W₂ = h₁ᵀδ₂ = (10, 7.5);  ∇b₂ = 5;
                   δ₁ = δ₂·W₂ᵀ ⊙ [z₁ > 0] = (10, 5);  ∇W₁ = xᵀδ₁ = [[10, 5], [20, 10]];  ∇b₁ = (10, 5).
p = (W₁ row-major, W₂, b₁, b₂) = (1, −1, 0.5, 1, 2, 1, 0, 0.5, 0.5).
"""

import numpy as np
import pytest

from harness import network, oracle
from harness.case import Case
from harness.data import Arrays

HAND = 1e-12  # hand results are exact decimals; float64 rounding only
P0 = np.array([1, -1, 0.5, 1, 2, 1, 0, 0.5, 0.5])
GRADIENT = np.array([10, 5, 20, 10, 10, 7.5, 10, 5, 5])
ROLES = ["hidden_weight"] * 4 + ["output_weight"] * 2 + ["hidden_bias"] * 2 + ["output_bias"]


def tiny(activation="relu", **values):
    case = Case().replace(
        {
            "data.dim": 2,
            "data.n_train": 1,
            "train.batch_size": 1,
            "train.epochs": 1,
            "model.kind": "mlp",
            "model.hidden": [2],
            "model.activation": activation,
            "optimizer.lr": 0.1,
            **values,
        }
    )
    empty = np.zeros((0, 2))
    arrays = Arrays(
        x_train=np.array([[1.0, 2.0]]),
        y_train=np.array([1.0]),
        x_valid=empty,
        y_valid=np.zeros(0),
        x_test=empty,
        y_test=np.zeros(0),
        w0=P0[:6],
        b0=P0[6:],
        batches=np.zeros((1, 1, 1), dtype=np.int64),
    )
    return case, arrays


def test_the_tensors_are_laid_out_weights_first_then_biases():
    case, _ = tiny()
    layout = [(t.name, t.role, t.shape, t.index.start, t.index.stop) for t in network.tensors(case)]
    assert layout == [
        ("W1", "hidden_weight", (2, 2), 0, 4),
        ("W2", "output_weight", (2, 1), 4, 6),
        ("b1", "hidden_bias", (2,), 6, 8),
        ("b2", "output_bias", (1,), 8, 9),
    ]


def test_forward_and_backward_of_the_2_2_1_network():
    case, arrays = tiny()
    assert network.predict(case, P0, arrays.x_train) == pytest.approx([6.0], abs=HAND)
    assert network.gradient(case, P0, arrays.x_train, arrays.y_train) == pytest.approx(GRADIENT, abs=HAND)


def test_relu_passes_no_gradient_through_a_unit_that_is_off():
    # b₁ = (−3, 0.5): z₁ = (−1, 1.5), h₁ = (0, 1.5); ŷ = 1.5 + 0.5 = 2, e = 1; δ₁ = (2·0, 1·1) = (0, 1)
    case, arrays = tiny()
    p = P0.copy()
    p[6] = -3.0
    expected = [0, 1, 0, 2, 0, 1.5, 0, 1, 1]  # ∇W₁ = xᵀ(0, 1), ∇W₂ = (0, 1.5), ∇b₁ = (0, 1), ∇b₂ = 1
    assert network.gradient(case, p, arrays.x_train, arrays.y_train) == pytest.approx(expected, abs=HAND)


def test_tanh_gradient_matches_central_differences():
    case, arrays = tiny("tanh")
    x, y = arrays.x_train, arrays.y_train

    def loss(p):
        return 0.5 * float(np.mean((network.predict(case, p, x) - y) ** 2))

    h = 1e-6
    numeric = [(loss(P0 + h * e) - loss(P0 - h * e)) / (2 * h) for e in np.eye(len(P0))]
    assert network.gradient(case, P0, x, y) == pytest.approx(numeric, rel=1e-7, abs=1e-8)  # O(h²) differences


def test_the_gradient_broadcasts_over_a_leading_axis():
    case, arrays = tiny()
    rows = np.stack([P0, 2 * P0])
    batched = network.gradient(case, rows, arrays.x_train, arrays.y_train)
    alone = [network.gradient(case, row, arrays.x_train, arrays.y_train) for row in rows]
    assert batched == pytest.approx(np.stack(alone), abs=HAND)


@pytest.mark.parametrize(
    "decay_bias, spared",
    [
        (False, ()),
        (True, ()),
        (True, ("output_weight", "output_bias")),
        (True, ("hidden_bias",)),
        (False, ("hidden_weight",)),
    ],
)
def test_a_coupled_decay_applies_to_the_roles_the_rule_decays(decay_bias, spared):
    # One SGD step: p₁ = p₀ − lr·(g + c·p₀ on the decayed roles), lr = 0.1, c = 0.5
    case, arrays = tiny()
    rule = oracle.Rule(coupled=0.5, decay_bias=decay_bias, spared=spared)
    mask = np.array([rule.decays(role) for role in ROLES], dtype=float)
    w, b = oracle.simulate(rule, case, arrays)
    expected = P0 - 0.1 * (GRADIENT + 0.5 * P0 * mask)
    assert np.concatenate([w[1], b[1]]) == pytest.approx(expected, abs=HAND)


def test_a_decoupled_decay_spares_the_roles_the_rule_spares():
    # p₁ = p₀ − lr·c·p₀ on the decayed roles − lr·g, c = 0.5: the output layer is left out
    case, arrays = tiny()
    rule = oracle.Rule(decoupled_lr=0.5, decay_bias=True, spared=("output_weight", "output_bias"))
    w, b = oracle.simulate(rule, case, arrays)
    hidden = np.array([role.startswith("hidden") for role in ROLES], dtype=float)
    assert np.concatenate([w[1], b[1]]) == pytest.approx(P0 - 0.1 * 0.5 * P0 * hidden - 0.1 * GRADIENT, abs=HAND)


def test_lamb_reads_one_trust_ratio_per_tensor():
    # LAMB's first step: m̂ = g, ŝ = g², so r = g/(|g| + ε) = sign(g) = 1 for every entry (ε = 0);
    # Δ = lr·(‖p_T‖/‖r_T‖)·r per tensor T: W₁: ‖(1, −1, .5, 1)‖ = 1.80277…/2, W₂: √5/√2, b₁: .5/√2, b₂: .5/1
    case, arrays = tiny(**{"optimizer.name": "lamb", "optimizer.eps": 0.0})
    w, b = oracle.simulate(oracle.Rule(), case, arrays)
    ratios = [np.sqrt(3.25) / 2] * 4 + [np.sqrt(5 / 2)] * 2 + [0.5 / np.sqrt(2)] * 2 + [0.5]
    assert np.concatenate([w[1], b[1]]) == pytest.approx(P0 - 0.1 * np.array(ratios), abs=HAND)


def test_joined_and_split_are_inverses():
    case, _ = tiny()
    w, b = network.split(case, P0[None])
    assert network.joined(w, b) == pytest.approx(P0[None], abs=0)
    linear = Case()
    w, b = network.split(linear, np.arange(201.0)[None])
    assert b.shape == (1,) and network.joined(w, b)[0, -1] == 200.0
