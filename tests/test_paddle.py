"""What is particular to PaddlePaddle 3.3.1: which of a ParamAttr regularizer and the optimizer's
weight_decay applies, Momentum's param groups under a regularizer object, LAMB's trust ratio at
zero decay, the float32 hyperparameters of its kernels, and spared parameters found by name in
recorded code run on a model made anew.

Each ``one_step`` test takes one step from w = 1 with no data gradient (the loss is 0·Σw), lr = 1, so the step
is the decay alone: w' = 1 − λ·1 for an L2 decay of λ, 1 − λ·sign(1) for an L1 decay.
"""

import numpy as np
import pytest
from conftest import mlp_case, reference_case

from harness import data, diff


def one_step(optimizer_class, weight_attr=None, groups=False, **kwargs):
    """(weight, bias) of a ``paddle.nn.Linear(1, 1)`` at w = b = 1 after one step of 0·(w + b)."""
    import paddle

    paddle.set_default_dtype("float64")
    layer = paddle.nn.Linear(1, 1, weight_attr=weight_attr)
    layer.weight.set_value(np.ones((1, 1)))
    layer.bias.set_value(np.ones(1))
    parameters = [{"params": [layer.weight]}, {"params": [layer.bias], "weight_decay": 0.0}] if groups else None
    optimizer = optimizer_class(learning_rate=1.0, parameters=parameters or layer.parameters(), **kwargs)
    (0.0 * (paddle.sum(layer.weight) + paddle.sum(layer.bias))).backward()
    optimizer.step()
    return float(layer.weight.numpy()[0, 0]), float(layer.bias.numpy()[0])


@pytest.mark.parametrize("name, extra", [("SGD", {}), ("Momentum", {"momentum": 0.9})])
def test_a_paramattr_regularizer_replaces_the_optimizers_weight_decay_on_its_parameter(load_adapter, name, extra):
    """ParamAttr(regularizer=L2Decay(0.5)) on the weight and weight_decay=2.0 on the optimizer: the
    weight decays by 0.5 only (optimizer.py:1775-1779; Momentum fuses it, momentum.py:292-296), the
    bias, which has no ParamAttr regularizer, by the optimizer's 2.0."""
    load_adapter("paddle")
    import paddle

    attr = paddle.ParamAttr(regularizer=paddle.regularizer.L2Decay(0.5))
    weight, bias = one_step(getattr(paddle.optimizer, name), weight_attr=attr, weight_decay=2.0, **extra)
    assert (weight, bias) == (0.5, -1.0)


@pytest.mark.parametrize("name, extra, spared", [("SGD", {}, True), ("Momentum", {"momentum": 0.9}, False)])
def test_a_param_group_with_weight_decay_0_spares_under_l1decay_in_sgd_but_not_in_momentum(
    load_adapter, name, extra, spared
):
    """weight_decay=L1Decay(0.5) with the bias in a group of weight_decay=0.0: SGD's group sets the
    bias's regularizer to L2Decay(0.0) (optimizer.py:2130-2135); Momentum first turns a float group
    decay into None (momentum.py:184), so the bias has no regularizer and the optimizer's L1Decay
    reaches it (optimizer.py:1778-1779). (Why momentum's and nesterov's l1decay variant decays the
    bias in the golden fingerprint.)"""
    load_adapter("paddle")
    import paddle

    decay = paddle.regularizer.L1Decay(0.5)
    weight, bias = one_step(getattr(paddle.optimizer, name), groups=True, weight_decay=decay, **extra)
    assert weight == 0.5 and bias == (1.0 if spared else 0.5)


@pytest.mark.parametrize("always_adapt", [False, True])
def test_lamb_skips_its_trust_ratio_at_zero_weight_decay_unless_always_adapt(load_adapter, always_adapt):
    """From w = (3, 4) and g = (1, 1), LAMB's first r is m̂/(√v̂ + ε) ≈ (1, 1): with the trust ratio
    ‖w‖/‖r‖ = 5/√2 the step is lr·(5/√2)·r, without it lr·r (lamb_kernel_impl.h:262). (Why the LAMB
    probes other than a decay of every parameter are unexplained: OWN_BEHAVIOURS.)"""
    load_adapter("paddle")
    import paddle

    paddle.set_default_dtype("float64")
    w = paddle.create_parameter([2], "float64", default_initializer=paddle.nn.initializer.Assign([3.0, 4.0]))
    optimizer = paddle.optimizer.Lamb(
        learning_rate=0.1, lamb_weight_decay=0.0, parameters=[w], always_adapt=always_adapt
    )
    paddle.sum(w).backward()
    optimizer.step()
    ratio = 5 / np.sqrt(2) if always_adapt else 1.0
    np.testing.assert_allclose(w.numpy(), [3 - 0.1 * ratio, 4 - 0.1 * ratio], rtol=1e-6)


@pytest.mark.parametrize(
    "optimizer, expected", [("sgd", None), ("adam", None), ("momentum", "float32"), ("nesterov", "float32")]
)
def test_a_float64_run_is_float64_with_the_kernels_float_hyperparameters(load_adapter, optimizer, expected):
    """Momentum's μ and L2 coefficient are C++ float (phi/kernels/momentum_kernel.h); SGD has only
    the lr tensor, Adam's β and ε are Scalars."""
    adapter = load_adapter("paddle")
    case = reference_case("paddle", optimizer__name=optimizer, penalty__kind="weight_decay", penalty__strength=3.0)
    trajectory = adapter.train(case, data.make(case))
    assert trajectory.w.dtype == trajectory.b.dtype == np.float64
    assert trajectory.hyperparameter_dtype == expected


@pytest.mark.parametrize("optimizer, kind", [("adam", "decoupled"), ("lamb", "decoupled"), ("sgd", "weight_decay")])
def test_the_recorded_code_spares_the_output_layer_of_the_model_it_makes_anew(load_adapter, optimizer, kind):
    """AdamW's apply_decay_param_fun and Lamb's exclude_from_weight_decay_fn take parameter names, which
    Paddle counts process-wide, so the model the recorded code makes anew has other names: the code reads
    the spared names when it runs (spared_names), and trains as the run did; SGD's param group spares by
    the parameters themselves."""
    adapter = load_adapter("paddle")
    case = mlp_case("spare the output layer", optimizer__name=optimizer, penalty__kind=kind, penalty__strength=0.5)
    arrays = data.make(case)
    ran = adapter.train(case, arrays)
    again = adapter.train_code(case, arrays, ran.statements)
    tolerance = diff.tolerance(case.model.dtype, ran.hyperparameter_dtype, diff.STEP_TOLERANCE)
    assert diff.relative_gaps((again.w, again.b), (ran.w, ran.b)).max() <= tolerance
