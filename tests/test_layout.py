import numpy as np
import pytest

from backends import _layout
from harness.case import Case

LINEAR = Case().replace({"data.dim": 3, "data.n_train": 4, "train.batch_size": 2, "train.epochs": 1})
MLP = LINEAR.replace({"model.kind": "mlp", "model.hidden": (4, 2)})


def test_blocks_are_each_layers_weight_and_bias_read_row_major_input_first():
    w, b = np.arange(3 * 4 + 4 * 2 + 2 * 1, dtype=float), 100 + np.arange(4 + 2 + 1, dtype=float)
    pairs = _layout.blocks(MLP, w, b)
    assert [(weight.shape, bias.shape) for weight, bias in pairs] == [((3, 4), (4,)), ((4, 2), (2,)), ((2, 1), (1,))]
    assert pairs[0][0][1, 2] == 1 * 4 + 2  # W₁[i, j] is w[i·fan_out + j]
    assert pairs[1][0][3, 1] == 12 + 3 * 2 + 1 and pairs[2][0][1, 0] == 12 + 8 + 1  # each layer after the ones before
    assert pairs[1][1].tolist() == [104, 105] and pairs[2][1].tolist() == [106]


@pytest.mark.parametrize("case", [LINEAR, MLP], ids=["linear", "mlp"])
def test_flat_undoes_blocks_and_rows_store_each_step(case):
    rng = np.random.default_rng(0)
    biases = sum(layer.fan_out for layer in case.layers)
    w = rng.normal(size=case.parameters - biases)
    b = rng.normal(size=biases) if case.model.kind == "mlp" else rng.normal()
    again = _layout.flat(case, _layout.blocks(case, w, b))
    assert np.array_equal(again[0], w) and np.array_equal(again[1], b) and np.shape(again[1]) == np.shape(b)
    rows = _layout.Rows(case, "float32")
    rows.write(case.steps, _layout.blocks(case, w, b))
    assert rows.w.shape == (case.steps + 1, w.size) and rows.b.shape == (case.steps + 1, *np.shape(b))
    assert rows.w.dtype == np.float32 and np.array_equal(rows.w[-1], w.astype(np.float32))


def test_roles_pair_each_parameter_with_its_layers_role():
    pairs = [("W1", "b1"), ("W2", "b2"), ("W3", "b3")]
    assert _layout.roles(MLP, pairs) == [
        ("hidden_weight", "W1"), ("hidden_bias", "b1"), ("hidden_weight", "W2"), ("hidden_bias", "b2"),
        ("output_weight", "W3"), ("output_bias", "b3"),
    ]  # fmt: skip
    with pytest.raises(ValueError):
        _layout.roles(LINEAR, pairs)  # a model of another shape is refused, not cut short
