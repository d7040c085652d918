"""What only the Keras adapter has to get right; run in the tensorflow, tensorflow-keras2,
keras-jax and keras-torch envs (the traced TensorFlow run's own checks in the first two)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import mlp_case, reference_case

from harness import data, diff, explain

TF_BACKENDS = ("tensorflow", "tensorflow-keras2")
KERAS_BACKENDS = (*TF_BACKENDS, "keras-jax", "keras-torch")
ROOT = Path(__file__).parent.parent


@pytest.mark.parametrize(
    "name, backend, package, major",
    [
        ("tensorflow", "tensorflow", "keras", "3"),
        ("tensorflow-keras2", "tensorflow", "tf_keras", "2"),
        ("keras-jax", "jax", "keras", "3"),
        ("keras-torch", "torch", "keras", "3"),
    ],
)
def test_versions_name_the_keras_generation_and_its_backend(load_adapter, name, backend, package, major):
    found = load_adapter(name).versions()
    assert set(found) == {backend, package}
    assert found[package].split(".")[0] == major


@pytest.mark.parametrize("name", TF_BACKENDS)
def test_loading_and_training_print_nothing_to_stderr(load_adapter, name):
    """No oneDNN, absl or CPU-feature lines, although the caller set none of TF's log variables."""
    load_adapter(name)
    script = (
        "import backends\n"
        "from harness import data, spec\n"
        f"adapter = backends.load({name!r})\n"
        f"_, case = spec.load('d2l').cases({name!r})[0]\n"
        "case = case.replace({'train.epochs': 8})\n"  # 32 steps: traced
        "adapter.train(case, data.make(case))\n"
    )
    environ = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=environ, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("name", TF_BACKENDS)
def test_the_train_step_is_traced_once_per_case_shape(load_adapter, name, optimizer, monkeypatch):
    """The step's Python body, which opens the tape, runs only while tf.function traces it:
    once for cases that differ in lr (a Keras variable), again for another λ (a Python float
    that Keras builds into the graph)."""
    adapter = load_adapter(name)
    adapter._compiled.cache_clear()
    traces = []

    class CountingTape(adapter.tf.GradientTape):
        def __init__(self, *args, **kwargs):
            traces.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(adapter.tf, "GradientTape", CountingTape)
    case = reference_case(name, optimizer__name=optimizer, penalty__kind="weight_decay", penalty__strength=3.0)
    for lr in (0.001, 0.002, 0.003):
        adapter.train(case.replace({"optimizer.lr": lr}), data.make(case))
    assert len(traces) == 1
    adapter.train(case.replace({"penalty.strength": 1.0}), data.make(case))
    assert len(traces) == 2


@pytest.mark.parametrize("epochs", [1, 100])  # on TensorFlow 4 steps run eagerly, 400 traced
@pytest.mark.parametrize("init", ["shared", "native"])
@pytest.mark.parametrize("optimizer, kind", [("momentum", "regularizer"), ("adam", "adamw")])
@pytest.mark.parametrize("name", KERAS_BACKENDS)
def test_a_run_that_reuses_a_shape_starts_as_fresh_as_the_first(load_adapter, name, optimizer, kind, init, epochs):
    """Every variable (weights, lr, step count, momentum and Adam's moments) is reset: a case
    run after another of its shape, on other data, repeats its own first run bit for bit."""
    adapter = load_adapter(name)
    case = reference_case(
        name,
        optimizer__name=optimizer,
        penalty__kind=kind,
        penalty__strength=0.1,
        model__init=init,
        train__epochs=epochs,
    )
    other = case.replace({"optimizer.lr": 0.01})
    other_arrays = data.make(other.replace({"data.seed": 1}))
    adapter._compiled.cache_clear()
    other_fresh = adapter.train(other, other_arrays)
    adapter._compiled.cache_clear()
    fresh = adapter.train(case, data.make(case))
    other_after = adapter.train(other, other_arrays)
    again = adapter.train(case, data.make(case))
    for first, later in ((fresh, again), (other_fresh, other_after)):
        assert np.array_equal(first.w, later.w) and np.array_equal(first.b, later.b)
        assert first.api == later.api


@pytest.mark.parametrize("optimizer, kind", [("momentum", "weight_decay"), ("adam", "regularizer")])
@pytest.mark.parametrize("name", TF_BACKENDS)
def test_eager_and_traced_runs_agree(load_adapter, name, optimizer, kind, monkeypatch):
    """A short run goes eagerly, a long one as a traced graph (rewritten by Grappler): the same
    Keras calls, so the same trajectory up to float64 rounding."""
    adapter = load_adapter(name)
    case = reference_case(name, optimizer__name=optimizer, penalty__kind=kind, penalty__strength=0.5, train__epochs=10)
    arrays = data.make(case)
    runs, functions = [], []
    for traced_from in (case.steps + 1, case.steps):
        monkeypatch.setattr(adapter, "TRACED_FROM_STEPS", traced_from)
        adapter._compiled.cache_clear()
        runs.append(adapter.train(case, arrays))
        functions.append(adapter._compiled(adapter._shape(case)).scan)
    assert not hasattr(functions[0], "graph") and hasattr(functions[1], "graph")  # eager, then traced
    eager, traced = runs
    assert np.abs(eager.w - traced.w).max() <= diff.TOLERANCE["float64"]
    assert np.abs(eager.b - traced.b).max() <= diff.TOLERANCE["float64"]


# decay_bias = "default": what Keras does when the user says nothing about the bias.
KERAS_DECAYS_THE_BIAS = {
    "weight_decay": True,  # the optimizer decays every variable it updates unless excluded
    "adamw": True,
    "regularizer": False,  # a Dense layer regularizes only what it is given
}


@pytest.mark.parametrize("decay_bias", [False, True, "default"])
@pytest.mark.parametrize("optimizer, kind", [("momentum", "weight_decay"), ("adam", "adamw"), ("sgd", "regularizer")])
@pytest.mark.parametrize("name", KERAS_BACKENDS)
def test_the_bias_decays_exactly_when_the_case_says(load_adapter, name, optimizer, kind, decay_bias):
    """exclude_from_weight_decay(var_list=[bias]) takes effect; bias_regularizer is added."""
    adapter = load_adapter(name)
    case = reference_case(
        name, optimizer__name=optimizer, penalty__kind=kind, penalty__strength=3.0, penalty__decay_bias=decay_bias
    )
    arrays = data.make(case)
    found = explain.explain(case, arrays, adapter.train(case, arrays))
    expected = KERAS_DECAYS_THE_BIAS[kind] if decay_bias == "default" else decay_bias
    assert found.matched and found.rule.decay_bias == expected, str(found)


@pytest.mark.parametrize("name", KERAS_BACKENDS)
def test_native_init_is_a_seeded_glorot_uniform_kernel_and_a_zero_bias(load_adapter, name):
    adapter = load_adapter(name)
    case = reference_case(name, model__init="native", train__epochs=1)
    first, again = (adapter.train(case, data.make(case)) for _ in range(2))
    limit = np.sqrt(6 / (case.data.dim + 1))  # glorot_uniform: U(±√(6 / (fan_in + fan_out)))
    assert np.array_equal(first.w[0], again.w[0])
    # 200 draws from U(±limit) come within 5% of its edge (this seed's come within 0.1%).
    assert 0.95 * limit < np.abs(first.w[0]).max() <= limit
    assert first.b[0] == 0


@pytest.mark.parametrize("name", TF_BACKENDS)
def test_float64_runs_claim_float64_only_when_keras_keeps_every_hyperparameter(load_adapter, name):
    """Keras casts Python-float hyperparameters through float32 tensors: a float64 run says so
    (and is matched at the float32 tolerance) unless every value is a float32, and then it
    follows its rule at the float64 tolerance."""
    adapter = load_adapter(name)
    rounded = reference_case(name, optimizer__name="momentum", penalty__kind="regularizer", penalty__strength=0.1)
    assert adapter.train(rounded, data.make(rounded)).hyperparameter_dtype == "float32"
    exact = reference_case(  # 2⁻⁹, ¾ and ½ are float32 numbers
        name,
        optimizer__name="momentum",
        optimizer__lr=2**-9,
        optimizer__momentum=0.75,
        penalty__kind="regularizer",
        penalty__strength=0.5,
    )
    arrays = data.make(exact)
    trajectory = adapter.train(exact, arrays)
    assert trajectory.hyperparameter_dtype is None
    found = explain.explain(exact, arrays, trajectory)
    assert str(found) == "coupled ×2, bias not decayed, loss half_mse" and found.gap <= diff.TOLERANCE["float64"]


@pytest.mark.parametrize("name", ["keras-jax", "keras-torch"])
def test_float64_runs_off_tensorflow_claim_float32_and_part_from_float64_by_more_than_its_rounding(load_adapter, name):
    """Keras 3 promotes float64 to float32 off TensorFlow (``BatchRun.hyperparameter_dtype``): a float64 run
    with float32 hyperparameters still claims float32, and its first step parts from the float64
    oracle's by more than float64 rounding, within float32's."""
    adapter = load_adapter(name)
    case = reference_case(name, optimizer__name="sgd", optimizer__lr=2**-9, penalty__kind="none", train__epochs=1)
    arrays = data.make(case)
    trajectory = adapter.train(case, arrays)
    assert trajectory.hyperparameter_dtype == "float32"
    found = explain.explain(case, arrays, trajectory)
    assert found.matched and diff.TOLERANCE["float64"] < found.gap <= diff.TOLERANCE["float32"], str(found)


# What exclude_from_weight_decay(var_names=[the output layer's name]) spares on each backend.
SPARED_BY_THE_LAYERS_NAME = {
    "tensorflow": ("output_weight", "output_bias"),
    "tensorflow-keras2": ("output_weight", "output_bias"),
    "keras-jax": (),  # variable.name is "kernel" or "bias": no layer name in it
    "keras-torch": (),
}


@pytest.mark.parametrize("variant", ["", "var_names"])
@pytest.mark.parametrize("optimizer, kind", [("sgd", "weight_decay"), ("adam", "adamw")])
@pytest.mark.parametrize("name", KERAS_BACKENDS)
def test_exclude_from_weight_decay_spares_the_output_layer_by_list_and_by_name_on_tensorflow(
    load_adapter, name, optimizer, kind, variant
):
    """var_list=[its kernel, its bias] excludes those variables by identity; var_names=[its name as
    Keras named it] is matched by ``re.search(pattern, variable.name)`` (Keras 3 base_optimizer.py:944,
    tf-keras optimizer.py:687), and on TensorFlow that name is the tf.Variable's scoped one: Keras 3's
    optimizer hands over ``variable = variable.value  # Convert to tf.Variable``
    (backend/tensorflow/optimizer.py:102), named "sequential/dense_1/kernel:0", and tf-keras's is
    "dense_1/kernel:0". So there the layer's name matches both its variables, and only them. On JAX
    and PyTorch the optimizer sees the Keras variable, whose name is its own, "kernel": the pattern
    spares nothing."""
    adapter = load_adapter(name)
    case = mlp_case(
        "spare the output layer", optimizer__name=optimizer, penalty__kind=kind, penalty__strength=0.5,
        penalty__variant=variant,
    )  # fmt: skip
    arrays = data.make(case)
    trajectory = adapter.train(case, arrays)
    found = explain.explain(case, arrays, trajectory)
    assert found.matched and found.rule.decay_bias is True, str(found)
    expected = SPARED_BY_THE_LAYERS_NAME[name] if variant else ("output_weight", "output_bias")
    assert found.rule.spared == expected, str(found)
    output = adapter._compiled(adapter._shape(case)).layers[-1]
    spared = f"var_names=[{output.name!r}]" if variant else "var_list=spared"
    assert f"optimizer.exclude_from_weight_decay({spared})" in trajectory.api
    assert variant or "spared = [model.layers[1].kernel, model.layers[1].bias]" in trajectory.api


@pytest.mark.parametrize("name", KERAS_BACKENDS)
def test_an_mlps_native_init_is_a_seeded_glorot_uniform_kernel_and_a_zero_bias_per_layer(load_adapter, name):
    """Each Dense layer's kernel ~ U(±√(6 / (fan_in + fan_out))), drawn alike from the seed every run."""
    adapter = load_adapter(name)
    case = mlp_case(model__init="native", model__hidden=[8, 5], train__epochs=1)
    first, again = (adapter.train(case, data.make(case)) for _ in range(2))
    assert np.array_equal(first.w[0], again.w[0]) and not first.b[0].any()
    assert not np.array_equal(first.w[0], data.make(case).w0)  # Keras's own draw, not the shared one
    start = 0
    for layer in case.layers:
        size = layer.fan_in * layer.fan_out
        kernel = first.w[0, start : start + size]
        assert 0 < np.abs(kernel).max() <= np.sqrt(6 / (layer.fan_in + layer.fan_out))
        start += size
    assert start == first.w.shape[1]
