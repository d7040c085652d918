"""What is particular to MLX 0.32.4: Adam's and Adamax's missing bias correction, Adafactor's decay by its
scaled step size, MultiOptimizer's split of an nn.Sequential, and the float32 lr of a float64 run.

The one-step tests start from a parameter w and take one step of the loss Σw (gradient 1 everywhere),
or of 0·Σw (no gradient: the step is the decay alone).
"""

import numpy as np
import pytest
from conftest import mlp_case, reference_case

from backends.contract import Unsupported
from harness import data


def one_step(optimizer, start, gradient_scale=1.0):
    """w after one ``optimizer`` step of the loss gradient_scale·Σw from w = ``start``, in float64."""
    import mlx.core as mx

    w = mx.array(np.asarray(start, dtype=np.float64))
    grad = mx.full(w.shape, gradient_scale, dtype=mx.float64)
    (updated,) = optimizer.apply_gradients({"w": grad}, {"w": w}).values()
    return np.array(updated)


@pytest.mark.parametrize("bias_correction, step", [(False, 0.1 / np.sqrt(0.001)), (True, 1.0)])
def test_adam_leaves_out_its_bias_correction_by_default(load_adapter, bias_correction, step):
    """After one step m = 0.1·g and s = 0.001·g²: uncorrected, Δ = lr·m/(√s + ε) ≈ lr·3.16; corrected,
    m̂/√ŝ = 1 (optimizers.py:503, 542-549). (Why the fingerprint's ``uncorrected`` AdamW is unexplained.)"""
    load_adapter("mlx")
    import mlx.optimizers as optim

    kwargs = {"bias_correction": True} if bias_correction else {}
    np.testing.assert_allclose(one_step(optim.Adam(learning_rate=0.1, **kwargs), [1.0]), [1 - 0.1 * step], rtol=1e-6)


def test_adamax_has_no_bias_correction(load_adapter):
    """One Adamax step: m = 0.1·g, u = |g|, Δ = lr·m/(u + ε) = 0.1·lr, where Adam's corrected m̂
    would step lr (optimizers.py:659). (Why every Adamax probe is unexplained: OWN_BEHAVIOURS.)"""
    load_adapter("mlx")
    import mlx.optimizers as optim

    np.testing.assert_allclose(one_step(optim.Adamax(learning_rate=0.1), [1.0]), [1 - 0.01], rtol=1e-6)


def test_adafactor_decays_by_its_scaled_step_size(load_adapter):
    """With no gradient the step is the decay alone: w ← w·(1 − λ·lr·max(10⁻³, RMS(w))) (optimizers.py:864),
    from w = (3, 4) with RMS √12.5, λ = 0.5, lr = 0.1: w·0.8232, not the w·(1 − λ·lr) = w·0.95 of a decay by lr."""
    load_adapter("mlx")
    import mlx.optimizers as optim

    adafactor = optim.Adafactor(learning_rate=0.1, relative_step=False, weight_decay=0.5)
    factor = 1 - 0.5 * 0.1 * np.sqrt(12.5)
    np.testing.assert_allclose(one_step(adafactor, [3.0, 4.0], gradient_scale=0.0), [3 * factor, 4 * factor])


def test_multioptimizer_cannot_spare_a_layer_of_an_nn_sequential(load_adapter):
    """The adapter's MultiOptimizer spares the biases of an MLP, but merging the updates of parts that
    hold different layers raises in tree_merge (mlx/utils.py:338): the case is unsupported, with why."""
    adapter = load_adapter("mlx")
    spare_biases = mlp_case("spare biases", optimizer__name="sgd", penalty__kind="weight_decay", penalty__strength=0.5)
    adapter.train(spare_biases, data.make(spare_biases))
    spare_layer = mlp_case("spare the output layer", optimizer__name="sgd", penalty__kind="weight_decay")
    with pytest.raises(Unsupported, match="MultiOptimizer cannot hand different layers"):
        adapter.train(spare_layer, data.make(spare_layer))


@pytest.mark.parametrize("optimizer, kind", [("sgd", "weight_decay"), ("adam", "adamw"), ("lion", "decoupled")])
def test_a_float64_run_is_float64_with_a_float32_lr(load_adapter, optimizer, kind):
    """The optimizer keeps its lr as mx.array(lr), float32 (optimizers.py:153), whatever the parameters'."""
    adapter = load_adapter("mlx")
    import mlx.core as mx
    import mlx.optimizers as optim

    assert optim.SGD(learning_rate=0.1).learning_rate.dtype == mx.float32
    case = reference_case("mlx", optimizer__name=optimizer, penalty__kind=kind, penalty__strength=3.0, train__epochs=2)
    trajectory = adapter.train(case, data.make(case))
    assert trajectory.w.dtype == trajectory.b.dtype == np.float64
    assert trajectory.hyperparameter_dtype == "float32"
