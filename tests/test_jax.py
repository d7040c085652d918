"""The JAX adapter's vectorized sweeps: one compiled, vmapped call trains many (lr, λ) cases;
the decay mask by which it spares an MLP's parameters; and an MLP's statements run as code (``train_code``).

A sweep is not bit-identical to training its cases one by one: ``jax.vmap`` batches every
case's products x·w into one product over all cases, whose sums XLA orders differently
from the one-case program, so the trajectories part by rounding from the first step (measured on these
cases: ≤ 1e-14 in float64, ≤ 2e-6 in float32). They must agree within
``diff.TOLERANCE``, the gap that calls a backend and the oracle the same semantics.
The cases use smooth penalties only: under λ·‖w‖₁ a float32 rounding difference can
flip sign(wᵢ) of a weight near 0 and send two runs apart, however they are computed.
"""

import numpy as np
import pytest
from conftest import mlp_case

from harness import data, diff, explain, spec

SWEEPS = {"penalty.strength": [0.0, 0.1, 1.0, 3.0, 10.0], "optimizer.lr": [0.001, 0.003, 0.01]}
PENALTIES = [
    ("sgd", "weight_decay"),
    ("momentum", "weight_decay"),
    ("nesterov", "l2_loss"),
    ("adam", "weight_decay"),
    ("adam", "adamw"),
]


def cases(key, optimizer, kind, dtype="float64"):
    """The d2l case at λ = 3 with ``optimizer`` and penalty ``kind``, one per value of ``key``."""
    _, base = spec.load("d2l").cases("jax")[0]
    base = base.replace(
        {"optimizer.name": optimizer, "penalty.kind": kind, "penalty.strength": 3.0, "model.dtype": dtype}
    )
    return [base.replace({key: value}) for value in SWEEPS[key]]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("optimizer, kind", PENALTIES)
@pytest.mark.parametrize("key", SWEEPS)
def test_a_sweep_trains_each_case_as_train_does(load_adapter, key, optimizer, kind, dtype):
    adapter = load_adapter("jax")
    swept = cases(key, optimizer, kind, dtype)
    arrays = data.make(swept[0])
    for value, case, trajectory in zip(SWEEPS[key], swept, adapter.train_sweep(swept, arrays), strict=True):
        alone = adapter.train(case, arrays)
        gaps = diff.relative_gaps((trajectory.w, trajectory.b), (alone.w, alone.b))
        step = diff.first_divergent_step(gaps, diff.TOLERANCE[dtype])
        assert step is None, f"{key} = {value}: parts from train() at step {step}, gap {gaps[step]:.3g}"
        assert trajectory.w.dtype == alone.w.dtype == np.dtype(dtype)
        assert trajectory.api == alone.api


def test_a_sweep_is_traced_once_whatever_its_lr_and_lambda(load_adapter, monkeypatch):
    """The optimizer is built with traced lr and λ once per trace of the run; new values reuse it.
    (Each case's ``api`` builds it once more from the case's own numbers, outside the trace.)"""
    adapter = load_adapter("jax")
    import jax
    import optax

    traces = []
    sgd = optax.sgd

    def counting_sgd(*args, **kwargs):
        if isinstance(kwargs["learning_rate"], jax.core.Tracer):
            traces.append(kwargs)
        return sgd(*args, **kwargs)

    monkeypatch.setattr(optax, "sgd", counting_sgd)
    jax.clear_caches()
    swept = cases("penalty.strength", "momentum", "weight_decay")
    arrays = data.make(swept[0])
    adapter.train_sweep(swept, arrays)
    other_values = [
        case.replace({"optimizer.lr": 0.01, "penalty.strength": 2 * case.penalty.strength}) for case in swept
    ]
    adapter.train_sweep(other_values, arrays)
    assert len(traces) == 1, f"traced {len(traces)} times: {traces}"


def test_a_sweep_refuses_cases_that_differ_beyond_lr_and_lambda(load_adapter):
    adapter = load_adapter("jax")
    swept = cases("penalty.strength", "sgd", "weight_decay")
    mixed = [swept[0], swept[1].replace({"optimizer.name": "momentum"})]
    with pytest.raises(ValueError, match="differ only in optimizer.lr, penalty.strength"):
        adapter.train_sweep(mixed, data.make(swept[0]))


def test_adamw_masked_off_the_output_layer_decays_only_the_hidden_layer(load_adapter):
    """optax.adamw(mask=...) with the output layer's W and b masked out: p −= lrₜ·λ·p on the
    hidden layer's W and b only, beside Adam's step on every parameter."""
    adapter = load_adapter("jax")
    case = mlp_case("spare the output layer", optimizer__name="adam", penalty__kind="adamw", penalty__strength=0.5)
    arrays = data.make(case)
    trajectory = adapter.train(case, arrays)
    assert "mask = [{'w': True, 'b': True}, {'w': False, 'b': False}]" in trajectory.api
    assert "optax.adamw(" in trajectory.api and "mask=mask)" in trajectory.api
    found = explain.explain(case, arrays, trajectory)
    assert found.matched and found.form == explain.Form("decoupled_lr", 1.0), found
    assert found.rule.decay_bias and found.rule.spared == ("output_weight", "output_bias"), found


def test_a_native_mlp_starts_from_lecun_normal_kernels_keyed_by_split_and_zero_biases(load_adapter):
    """Wₗ = lecun_normal()(split(PRNGKey(seed), layers)[ℓ], (fan_in, fan_out)), bₗ = 0."""
    adapter = load_adapter("jax")
    import jax

    case = mlp_case(model__init="native")
    trajectory = adapter.train(case, data.make(case))
    keys = jax.random.split(jax.random.PRNGKey(case.data.seed), len(case.layers))
    init = jax.nn.initializers.lecun_normal()
    kernels = [
        init(key, (layer.fan_in, layer.fan_out), "float64") for key, layer in zip(keys, case.layers, strict=True)
    ]
    assert np.array_equal(trajectory.w[0], np.concatenate([np.ravel(kernel) for kernel in kernels]))
    assert not trajectory.b[0].any() and "jax.random.split(jax.random.PRNGKey(0), 2)" in trajectory.api


@pytest.mark.parametrize("optimizer, kind", [("adam", "l2_loss"), ("adafactor", "weight_decay")])
def test_a_native_mlps_statements_make_its_params_and_train_it_as_the_run_did(load_adapter, optimizer, kind):
    """Run as code, a native MLP's statements make its params with ``init`` (lecun_normal) themselves,
    add the penalty over its hidden layer or mask the output layer out of the decay, and train as the run
    did, in the run's hyperparameter dtype (Adafactor's float32 decay rate)."""
    adapter = load_adapter("jax")
    case = mlp_case(
        "spare the output layer", model__init="native", optimizer__name=optimizer, penalty__kind=kind,
        penalty__strength=0.5,
    )  # fmt: skip
    arrays = data.make(case)
    ran = adapter.train(case, arrays)
    again = adapter.train_code(case, arrays, ran.statements)
    assert "params = [{'w': W1, " in ran.api
    assert again.hyperparameter_dtype == ran.hyperparameter_dtype
    gaps = diff.relative_gaps((again.w, again.b), (ran.w, ran.b))
    assert gaps.max() <= diff.tolerance(case.model.dtype, ran.hyperparameter_dtype, diff.STEP_TOLERANCE), gaps.max()


def test_params_the_statements_make_anew_start_from_the_shared_arrays_of_a_shared_case(load_adapter):
    """A native run's statements, which make params with ``init``, train a shared case from its shared arrays."""
    adapter = load_adapter("jax")
    case = mlp_case(optimizer__name="adam", penalty__kind="adamw", penalty__strength=0.5)
    arrays = data.make(case)
    native = adapter.train(case.replace({"model.init": "native"}), arrays)
    again = adapter.train_code(case, arrays, native.statements)
    ran = adapter.train(case, arrays)
    assert np.array_equal(again.w[0], arrays.w0) and np.array_equal(again.b[0], arrays.b0)
    gaps = diff.relative_gaps((again.w, again.b), (ran.w, ran.b))
    assert gaps.max() <= diff.tolerance(case.model.dtype, None, diff.STEP_TOLERANCE), gaps.max()
