"""What is particular to MXNet 1.9.1: float32 hyperparameters, the bias's default decay, NAG's
in-place weight decay and Gluon's default initializer.

MXNet's update operators take lr, wd, momentum, β₁, β₂, ε and rescale_grad as C++ ``float``
(``SGDParam``, ``MultiSGDMomParam``, ``NAGParam``, ``AdamParam`` in
src/operator/optimizer_op-inl.h): a float64 run has float64 weights, gradients and optimizer
states, but hyperparameters rounded to float32.
"""

import numpy as np
import pytest
from conftest import mlp_case, reference_case

from harness import data, diff, explain, oracle


def as_float32(value):
    return float(np.float32(value))


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov"])
def test_float64_trains_in_float64_with_float32_hyperparameters(load_adapter, optimizer):
    """A float64 run is the float64 oracle with lr and μ rounded to float32 and the gradient
    scaled by rescale_grad = float32(1/batch_size). (Adam is left out: mx.optimizer.Adam folds
    the bias correction, computed in float64 from the nominal β, into a float32 lr.)"""
    adapter = load_adapter("mxnet")
    case = reference_case("mxnet", optimizer__name=optimizer, penalty__kind="l2_loss", penalty__strength=3.0)
    arrays = data.make(case)
    trajectory = adapter.train(case, arrays)
    n, opt = case.train.batch_size, case.optimizer
    rounded = case.replace(
        {"optimizer.lr": as_float32(opt.lr) * n * as_float32(1 / n), "optimizer.momentum": as_float32(opt.momentum)}
    )
    gaps = diff.relative_gaps(
        (trajectory.w, trajectory.b), oracle.simulate(oracle.loss_penalty_rule(case), rounded, arrays)
    )
    step = diff.first_divergent_step(gaps, diff.TOLERANCE["float64"])
    assert trajectory.w.dtype == trajectory.b.dtype == np.float64
    assert step is None, f"leaves the float32-hyperparameter oracle at step {step}: gap {gaps[step]:.3g}"


@pytest.mark.parametrize(
    "optimizer, kind, expected",
    [
        ("sgd", "weight_decay", "coupled ×1 (≡ decoupled × lr ×1), bias decayed, loss half_mse"),
        ("momentum", "weight_decay", "coupled ×1, bias decayed, loss half_mse"),
        ("adam", "weight_decay", "coupled ×1, bias decayed, loss half_mse"),
        ("adam", "adamw", "decoupled × lr ×1, bias decayed, loss half_mse"),
    ],
)
def test_the_trainer_decays_the_bias_unless_told_otherwise(load_adapter, optimizer, kind, expected):
    """With decay_bias = true the adapter leaves Gluon's default wd_mult = 1 on every parameter
    (optimizer.py:487 multiplies wd by param.wd_mult): explain finds the bias decayed. In
    float32, the precision MXNet applies its hyperparameters in, so its tolerance holds."""
    adapter = load_adapter("mxnet")
    case = reference_case(
        "mxnet",
        optimizer__name=optimizer,
        model__dtype="float32",
        penalty__kind=kind,
        penalty__strength=3.0,
        penalty__decay_bias=True,
    )
    arrays = data.make(case)
    trajectory = adapter.train(case, arrays)
    assert "setattr('wd_mult'" not in trajectory.api
    found = explain.explain(case, arrays, trajectory)
    assert str(found) == expected, f"{optimizer} {kind} with Gluon's default wd_mult: pinned {expected!r}, now {found}"


def test_nag_decays_its_momentum_with_the_weight_it_has_just_written(load_adapter):
    """mx.optimizer.NAG calls nag_mom_update(weight, grad, mom, out=weight); the kernel writes the
    new weight, then computes mom = μ·mom − lr·(g + wd·w) from it. Into a separate output, w is the
    old weight. (Why [nesterov] weight_decay is unexplained in tests/semantics/mxnet.toml.)
    One step from w = 1, g = 1, mom = 0, lr = μ = wd = ½: w' = 1 − (1 + μ)·lr·(g + wd·1) = −⅛."""
    load_adapter("mxnet")
    import mxnet as mx

    def step(in_place):
        weight, grad, mom = (mx.nd.array([value], dtype="float64") for value in (1.0, 1.0, 0.0))
        out = weight if in_place else mx.nd.zeros(1, dtype="float64")
        mx.nd.nag_mom_update(weight, grad, mom, out=out, lr=0.5, momentum=0.5, wd=0.5)
        return out.asscalar(), mom.asscalar()

    assert step(in_place=False) == (-0.125, -0.5 * (1 + 0.5 * 1.0))
    assert step(in_place=True) == (-0.125, -0.5 * (1 + 0.5 * -0.125))


def test_native_init_is_gluons_default_uniform_weight_and_zero_bias(load_adapter):
    """Block.initialize()'s default init.Uniform(): weight ~ U(−0.07, 0.07); Dense's bias: zeros."""
    adapter = load_adapter("mxnet")
    case = reference_case("mxnet", model__init="native", train__epochs=1)
    arrays = data.make(case)
    first, again = adapter.train(case, arrays), adapter.train(case, arrays)
    w0 = np.abs(first.w[0])
    # 200 draws of U(−0.07, 0.07) all stay below 0.065 with probability (0.065/0.07)²⁰⁰ < 1e-6.
    assert 0.065 < w0.max() <= 0.07 and first.b[0] == 0
    assert np.array_equal(first.w, again.w), "mx.random.seed(case.data.seed) must make the draw reproducible"


@pytest.mark.parametrize(
    "optimizer, kind, loss, dtype",
    [
        ("momentum", "l2_loss", "half_mse", "float64"),
        ("sgd", "l1_loss", "native", "float32"),
        ("adam", "adamw", "mse", "float64"),
    ],
)
def test_the_hybridized_objective_trains_bit_for_bit_as_the_imperative_loop(load_adapter, optimizer, kind, loss, dtype):
    """The adapter's fast path (net, loss and penalty in one hybridized block with static_alloc,
    x and y in one array, weights read through a NumPy view) gives exactly the weights of the
    plain Gluon loop: the same loss and penalty run imperatively, read with asnumpy() each step."""
    adapter = load_adapter("mxnet")
    import mxnet as mx

    case = reference_case(
        "mxnet",
        optimizer__name=optimizer,
        penalty__kind=kind,
        penalty__strength=3.0,
        penalty__decay_bias=True,
        train__loss=loss,
        train__epochs=5,
        model__dtype=dtype,
    )
    arrays = data.make(case)
    fast = adapter.train(case, arrays)
    calls = adapter.Calls(mx=mx, gluon=mx.gluon)
    net = adapter._model(case, arrays, calls)
    loss_fn, penalty = adapter._loss(case, calls), adapter._penalty(case, calls)
    trainer = adapter._optimizer(case, net, calls)
    order = arrays.batch_order()
    xs, ys = mx.nd.array(arrays.x_train[order], dtype=dtype), mx.nd.array(arrays.y_train[order][..., None], dtype=dtype)
    w, b = [net.weight.data().asnumpy()[0]], [net.bias.data().asnumpy()[0]]
    for step in range(case.steps):
        with mx.autograd.record():
            loss = loss_fn(mx.nd, net(xs[step]), ys[step])
            if penalty is not None:
                loss = loss + penalty(mx.nd, net.weight.data(), net.bias.data())
        loss.backward()
        trainer.step(case.train.batch_size)
        w.append(net.weight.data().asnumpy()[0])
        b.append(net.bias.data().asnumpy()[0])
    assert np.array_equal(fast.w, np.array(w)) and np.array_equal(fast.b, np.array(b))


@pytest.mark.parametrize("optimizer, kind", [("sgd", "weight_decay"), ("adam", "adamw")])
@pytest.mark.parametrize(
    "sparing, select, decay_bias, spared",
    [
        ("spare the output layer", "dense1_.*", True, ("output_weight", "output_bias")),
        ("spare biases", ".*bias", False, ()),
    ],
)
def test_an_mlp_spares_what_its_collect_params_regex_matches(
    load_adapter, optimizer, kind, sparing, select, decay_bias, spared
):
    """``net.collect_params(select).setattr('wd_mult', 0.0)``: collect_params keeps a parameter when
    ``pattern.match(name)`` (block.py:405, ``pattern = re.compile(select)``), name its full name
    (dense0_weight, dense0_bias, dense1_weight, dense1_bias); the optimizer decays each by
    wd·param.wd_mult (optimizer.py:487), ContribAdamW too (its _get_wd): 0 for what the regex matched."""
    adapter = load_adapter("mxnet")
    case = mlp_case(sparing, optimizer__name=optimizer, penalty__kind=kind, penalty__strength=0.5)
    arrays = data.make(case)
    trajectory = adapter.train(case, arrays)
    assert f"spared = net.collect_params({select!r}); spared.setattr('wd_mult', 0.0)" in trajectory.api
    found = explain.explain(case, arrays, trajectory)
    assert found.matched and (found.rule.decay_bias, found.rule.spared) == (decay_bias, spared), found


@pytest.mark.parametrize(
    "sparing, kind, init",
    [("spare biases", "l2_loss", "native"), ("spare the output layer", "weight_decay", "shared")],
)
def test_an_mlps_statements_train_as_the_run_did_when_run_as_code(load_adapter, sparing, kind, init):
    """The statements make the net anew under the names a new script gives it (dense0_, dense1_), so the
    recorded collect_params regex spares what it spared in the run; the penalty, on each parameter's
    data(), adds to the loss every step; a native net is drawn again by the recorded mx.random.seed."""
    adapter = load_adapter("mxnet")
    case = mlp_case(sparing, optimizer__name="momentum", penalty__kind=kind, penalty__strength=0.5, model__init=init)
    arrays = data.make(case)
    ran = adapter.train(case, arrays)
    again = adapter.train_code(case, arrays, ran.statements)
    assert np.array_equal(again.w, ran.w) and np.array_equal(again.b, ran.b)


@pytest.mark.parametrize(
    "optimizer, kind, name, lr",
    [("sgd", "weight_decay", "SGD", "0.01"), ("adam", "decoupled", "ContribAdamW", "0.001")],
)
def test_the_trainers_defaults_are_those_of_the_optimizer_it_makes_from_its_name(
    load_adapter, optimizer, kind, name, lr
):
    """gluon.Trainer makes its optimizer with mx.optimizer.create(name, **optimizer_params): the defaults a
    user's options are read with are that class's, its learning_rate the one the object holds when given
    none (the base Optimizer's None is 0.01)."""
    adapter = load_adapter("mxnet")
    case = reference_case("mxnet", optimizer__name=optimizer, penalty__kind=kind, penalty__strength=0.5)
    statements = adapter.train(case, data.make(case)).statements
    (note,) = [s for s in statements if "gluon.Trainer.optimizer_params" in s.signatures]
    defaults = {parameter: default for parameter, default, *_ in note.signatures["gluon.Trainer.optimizer_params"]}
    assert note.text.endswith(f".{name}'s") and defaults["learning_rate"] == lr and defaults["wd"] == "0.0"
