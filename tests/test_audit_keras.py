"""The Keras auditor (backends/auditors/keras.py), through ``audit_objects`` as ``decaylens audit`` calls it, on a
model with every role Keras has, against what the Keras source says: Keras 3 (keras/src/...) on TensorFlow, JAX and
PyTorch, and tf-keras (tf_keras/src/...)."""

import numpy as np
import pytest

from harness.audit import audit_objects, measure
from harness.errors import UsageError

KERAS_BACKENDS = ("tensorflow", "tensorflow-keras2", "keras-jax", "keras-torch")
# Every parameter of ``_model`` (Keras 3 variable.path, tf-keras variable.name less ":0") and its role;
# BatchNormalization's moving mean and variance are statistics, not parameters.
ROLES = {
    "tokens/embeddings": "embedding", "hidden/kernel": "kernel", "hidden/bias": "bias",
    "layer_norm/gamma": "norm_scale", "layer_norm/beta": "norm_shift", "batch_norm/gamma": "norm_scale",
    "batch_norm/beta": "norm_shift", "head/kernel": "kernel", "head/bias": "bias",
}  # fmt: skip
DECAYED_FLAGS = {"embedding": ("decays_embedding",), "kernel": (), "bias": ("decays_bias",),
                 "norm_scale": ("decays_norm",), "norm_shift": ("decays_norm",)}  # fmt: skip
# The measured decay against lr·λ = 1e-5: float32 rounding of w·(1 − 1e-5) moves it by under 0.5 %, even over a
# bias's 2 samples; 2 % leaves room.
DECAY_TOLERANCE = 0.02
# keras/src/optimizers/base_optimizer.py:942-945 (tf-keras: tf_keras/src/optimizers/optimizer.py:686-688) excludes a
# variable whose ``variable.name`` a var_names pattern re.search-es. Which variable it asks about differs: on TensorFlow
# the tf.Variable (keras/src/backend/tensorflow/optimizer.py:102, ``variable = variable.value``), named by its full path
# ("layer_norm/gamma:0"), as tf-keras's are; on JAX and PyTorch the Keras variable, whose name is its own alone
# ("gamma", keras/src/backend/common/variables.py:339-342; torch: backend/torch/optimizers/torch_optimizer.py:43).
FULL_NAMES = ("tensorflow", "tensorflow-keras2")
SPARED_BY_NAMES = {  # var_names -> (the parameters spared where names are full paths, where they are short)
    ("bias", "layer_norm"): ({"hidden/bias", "head/bias", "layer_norm/gamma", "layer_norm/beta"},
                             {"hidden/bias", "head/bias"}),
    ("gamma",): ({"layer_norm/gamma", "batch_norm/gamma"}, {"layer_norm/gamma", "batch_norm/gamma"}),
    ("hidden",): ({"hidden/kernel", "hidden/bias"}, set()),
}  # fmt: skip


@pytest.fixture
def keras(auditor):
    """(backend name, the Keras module its adapter uses: keras or tf_keras); skipped outside a Keras backend."""
    name, module = auditor
    if name not in KERAS_BACKENDS:
        pytest.skip(f"{name} is not a Keras backend")
    return name, module.keras


def _model(keras):
    """Embedding → Dense → LayerNormalization → BatchNormalization → Dense, seeded, its layers named."""
    keras.utils.set_random_seed(20261207)
    tokens = keras.Input((3,), dtype="int32")
    x = keras.layers.Flatten()(keras.layers.Embedding(10, 4, name="tokens")(tokens))
    x = keras.layers.LayerNormalization(name="layer_norm")(keras.layers.Dense(5, name="hidden")(x))
    x = keras.layers.BatchNormalization(name="batch_norm")(x)
    return keras.Model(tokens, keras.layers.Dense(2, name="head")(x))


def _audit(name, model, optimizer):
    return {f.name: f for f in audit_objects(name, (model, optimizer), "test").findings}


def _assert_decays(f, decay):
    assert f.placement == "decoupled_lr", f
    assert f.decay == pytest.approx(decay, rel=DECAY_TOLERANCE), f
    assert f.flags == DECAYED_FLAGS[f.role], f


def test_adamw_decays_every_parameter_by_lr_times_lambda(keras):
    name, keras = keras
    found = _audit(name, _model(keras), keras.optimizers.AdamW(learning_rate=1e-3, weight_decay=0.01))
    assert {n: f.role for n, f in found.items()} == ROLES
    # keras/src/optimizers/base_optimizer.py:589, 952-958 (tf-keras optimizer.py:729, 746): before the Adam step,
    # variable - variable * wd * lr, on every variable that _use_weight_decay does not exclude: by default none.
    for f in found.values():
        _assert_decays(f, 1e-3 * 0.01)
        assert f.nominal == {"lr": pytest.approx(1e-3), "weight_decay": 0.01}


@pytest.mark.parametrize("var_names", list(SPARED_BY_NAMES))
def test_var_names_spare_the_variables_whose_name_the_optimizer_asks_about_matches(keras, var_names):
    name, keras = keras
    model, optimizer = _model(keras), keras.optimizers.AdamW(learning_rate=1e-3, weight_decay=0.01)
    optimizer.exclude_from_weight_decay(var_names=list(var_names))
    found = _audit(name, model, optimizer)
    full, short = SPARED_BY_NAMES[var_names]
    spared = full if name in FULL_NAMES else short
    assert {n for n, f in found.items() if f.placement == "none"} == spared
    for n, f in found.items():
        assert f.nominal["weight_decay"] == (0.0 if n in spared else 0.01)
        if n not in spared:
            _assert_decays(f, 1e-3 * 0.01)


def test_var_list_spares_those_variables_on_every_backend(keras):
    name, keras = keras
    model, optimizer = _model(keras), keras.optimizers.AdamW(learning_rate=1e-3, weight_decay=0.01)
    # base_optimizer.py:939-941 (tf-keras optimizer.py:683-685): a variable of var_list, by _var_key, is excluded
    optimizer.exclude_from_weight_decay(
        var_list=[model.get_layer("batch_norm").gamma, model.get_layer("tokens").embeddings]
    )
    found = _audit(name, model, optimizer)
    assert {n for n, f in found.items() if f.placement == "none"} == {"batch_norm/gamma", "tokens/embeddings"}


def test_sgd_with_momentum_decays_apart_from_the_momentum(keras):
    name, keras = keras
    found = _audit(name, _model(keras), keras.optimizers.SGD(learning_rate=0.1, momentum=0.9, weight_decay=1e-4))
    # base_optimizer.py:589-594: the decay before, and apart from, SGD's step, whose momentum m holds the gradient's
    # alone (keras/src/optimizers/sgd.py:103-110; tf-keras optimizer.py:729-731)
    for f in found.values():
        _assert_decays(f, 0.1 * 1e-4)


def test_a_schedule_steps_the_lr_it_gives_at_each_step_count(keras):
    name, keras = keras
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, decay_steps=1, decay_rate=0.5)
    found = audit_objects(name, (_model(keras), keras.optimizers.AdamW(schedule, weight_decay=0.01)), "test")
    assert found.scheduler.endswith(".ExponentialDecay")
    # the schedule at step counts 0, 1, ... (tf-keras's learning_rate would give the previous step's, optimizer.py:625-)
    for f in found.findings:
        assert f.lrs == pytest.approx(tuple(1e-3 * 0.5**t for t in range(measure.STEPS)), rel=1e-6)
        _assert_decays(f, 1e-3 * 0.01)


def test_a_frozen_layers_weights_are_never_updated(keras):
    name, keras = keras
    model = _model(keras)
    model.get_layer("hidden").trainable = False
    found = _audit(name, model, keras.optimizers.AdamW(learning_rate=1e-3, weight_decay=0.01))
    assert set(found) == set(ROLES)
    for n, f in found.items():
        if n.startswith("hidden/"):
            assert (f.placement, f.flags, f.groups, f.nominal) == ("frozen", ("never_updated",), (), {})
        else:
            _assert_decays(f, 1e-3 * 0.01)


def _values(variables):
    return [np.array(v.numpy()) for v in variables]


def _assert_same(values, expected):
    assert len(values) == len(expected)
    for value, wanted in zip(values, expected, strict=True):
        np.testing.assert_array_equal(value, wanted, strict=True)


def _step(keras, model, optimizer, seed):
    """One apply_gradients of seeded gradients, as a user's training loop gives them."""
    convert = keras.backend.constant if not hasattr(keras, "ops") else keras.ops.convert_to_tensor
    rng = np.random.default_rng(seed)
    variables = model.trainable_weights
    optimizer.apply_gradients(
        zip([convert(rng.standard_normal(v.shape, dtype=np.float32)) for v in variables], variables)
    )


def _assert_left_as_twin(name, keras, make):
    """``make()`` twice, (model, optimizer) alike: after an audit of the first, its weights and optimizer variables
    are as they were, and two steps train it exactly as they train the second, never audited."""
    (model, optimizer), (twin, twin_optimizer) = make(), make()
    weights, optimizer_variables = _values(model.weights), list(optimizer.variables)
    optimizer_values = _values(optimizer_variables)
    _audit(name, model, optimizer)
    _assert_same(_values(model.weights), weights)
    assert [id(v) for v in optimizer.variables] == [id(v) for v in optimizer_variables]
    _assert_same(_values(optimizer.variables), optimizer_values)
    for seed in (1, 2):
        for m, o in ((model, optimizer), (twin, twin_optimizer)):
            _step(keras, m, o, seed)
    _assert_same(_values(model.weights), _values(twin.weights))
    _assert_same(_values(optimizer.variables), _values(twin_optimizer.variables))


@pytest.mark.parametrize("state", ["unbuilt", "built", "stepped"])
def test_the_users_objects_train_afterwards_as_a_twin_never_audited(keras, state):
    name, keras = keras

    def make():
        model, optimizer = _model(keras), keras.optimizers.AdamW(learning_rate=1e-3, weight_decay=0.01)
        optimizer.exclude_from_weight_decay(var_list=[model.get_layer("head").bias])
        if state != "unbuilt":
            optimizer.build(model.trainable_weights)
        if state == "stepped":
            _step(keras, model, optimizer, seed=0)
        return model, optimizer

    _assert_left_as_twin(name, keras, make)


def test_a_loss_scale_optimizer_is_stepped_with_the_optimizer_it_wraps(keras):
    name, keras = keras
    if name == "keras-jax":
        pytest.skip("Keras 3's LossScaleOptimizer steps only inside a traced train step on JAX (ops.cond)")

    def make():
        model = _model(keras)
        return model, keras.mixed_precision.LossScaleOptimizer(keras.optimizers.AdamW(1e-3, weight_decay=0.01))

    if name == "tensorflow-keras2":  # tf_keras/src/mixed_precision/loss_scale_optimizer.py: a delegating wrapper
        with pytest.raises(UsageError, match="delegates to its inner_optimizer"):
            audit_objects(name, make(), "t")
        return
    # keras/src/optimizers/loss_scale_optimizer.py:223: the gradients unscaled, the inner AdamW applies them
    for f in _audit(name, *make()).values():
        _assert_decays(f, 1e-3 * 0.01)
    _assert_left_as_twin(name, keras, make)


def test_what_is_not_a_model_and_an_optimizer_is_named(keras):
    name, keras = keras
    with pytest.raises(UsageError, match=r"\(.*Functional, str\).*optimizers\.Optimizer"):
        audit_objects(name, (_model(keras), "not an optimizer"), "t")


def test_another_frameworks_model_and_optimizer_are_named(keras):
    """On Keras over PyTorch, torch is installed beside Keras: a torch setup under --backend keras-torch."""
    name, keras = keras
    if name != "keras-torch":
        pytest.skip("torch is installed beside Keras in the keras-torch env alone")
    import torch

    module = torch.nn.Linear(2, 2)
    with pytest.raises(UsageError, match=r"\(torch\.nn\.modules\.linear\.Linear, torch\.optim\.sgd\.SGD\)"):
        audit_objects(name, (module, torch.optim.SGD(module.parameters(), lr=0.1)), "t")


def test_tf_keras_legacy_optimizers_are_not_audited(keras):
    name, keras = keras
    if name != "tensorflow-keras2":
        pytest.skip("tf-keras alone keeps the legacy optimizers")
    # tf_keras.optimizers.legacy.SGD is an OptimizerV2, without weight_decay, not a tf_keras.optimizers.Optimizer
    with pytest.raises(UsageError, match=r"tf_keras\.src\.optimizers\.legacy\.gradient_descent\.SGD"):
        audit_objects(name, (_model(keras), keras.optimizers.legacy.SGD(0.1)), "t")
