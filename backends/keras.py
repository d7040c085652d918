"""Keras adapter: a ``keras.Sequential`` of ``Dense(1)``, or an MLP of Dense layers, trained one
batch a step by Keras's train step.

One module, four backends, chosen by ``TF_USE_LEGACY_KERAS`` and ``KERAS_BACKEND``, which
``backends.load`` sets before the import: ``tensorflow`` runs Keras 3 (``import keras``) on
TensorFlow, ``tensorflow-keras2`` Keras 2 (``import tf_keras as keras``), ``keras-jax`` and
``keras-torch`` Keras 3 on JAX and on PyTorch. The same user code builds the model, loss and
optimizer on each; only the run differs, chosen once at import (``_Run``, ``backends._keras_runs``):
on TensorFlow (both Kerases) ``TracedRun``, the whole run one ``tf.scan`` of ``tf.GradientTape``
steps, traced once per case shape (run eagerly below ``TRACED_FROM_STEPS``), the same step (the
gradient of the loss, penalty added, given to ``optimizer.apply_gradients``) without a call into
Python per step; on JAX and PyTorch ``BatchRun``, ``model.train_on_batch`` every step, Keras's
backend-neutral step. The nominal λ goes unchanged into ``weight_decay=`` of ``keras.optimizers.SGD``
/ ``Adam`` / ``AdamW`` (the spared variables left out with ``exclude_from_weight_decay(var_list=...)``,
or as its variant by name patterns, ``var_names=...``), into ``keras.regularizers.L2(λ)`` as each
Dense layer's ``kernel_regularizer`` and ``bias_regularizer`` where they decay, with ``model.losses``
added to the loss, or into penalties written in the loss (with TF ops on TensorFlow, ``keras.ops``
elsewhere) and differentiated with it.
"""

import functools
import importlib
import inspect
import os

# TensorFlow logs to stderr while it loads and on its first ops; both must be set before
# the import. Level 2 drops C++ INFO and WARNING lines (CPU feature guard, ...), keeps errors.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Overrides TensorFlow's default (oneDNN kernels on x86): their "oneDNN custom operations
# are on" line ignores the log level, and their results depend on the CPU's instruction
# set, which would make float32 runs differ between machines. A 200 × 1 model gains nothing.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from backends import _code, _keras_runs, _layout
from backends._calls import Calls, Shown
from backends.contract import Trajectory, Unsupported

if os.environ.get("TF_USE_LEGACY_KERAS") in ("true", "True", "1"):  # as TensorFlow reads it
    try:
        import tf_keras as keras
    except ModuleNotFoundError:  # TensorFlow up to 2.15 bundles Keras 2, whose public API is tf.keras (2.12 has
        import tensorflow  # no tf-keras package, and its `import keras` holds the legacy optimizers)

        keras = tensorflow.keras
        if not keras.__version__.startswith("2."):
            raise ImportError("Keras 2 needs tf-keras (pip install tf-keras) beside Keras 3", name="tf_keras") from None
else:
    import keras

BACKEND = keras.backend.backend()  # "tensorflow", "jax" or "torch"; tf_keras's is "tensorflow"

SWEEPABLE = ()  # one case per call (a run per case shape, reused across calls)
RATIO_TARGET = 3.0
OWN_BEHAVIOURS = {
    ("nadam", None): (
        "tf-keras 2's Nadam advances its momentum product by a Python counter, which a traced run freezes at "
        "trace time (tf_keras/src/optimizers/nadam.py:137-150): traced, it does not follow its own formula"
    ),
}
# Every optimizer API that takes exclude_from_weight_decay: the spared variables as its var_list (the
# default way) or, as the variant, the patterns a user writes as its var_names: 'bias' to spare the
# biases, the output layer's name (as Keras named it, "dense_1") to spare that layer; Keras matches
# each with re.search against variable.name (Keras 3 base_optimizer.py:942-945, tf-keras
# optimizer.py:686-688), and the run shows what that name is in each.
VARIANTS = {
    ("sgd", "weight_decay"): {"var_names": "exclude_from_weight_decay(var_names=['bias', output_layer.name])"},
    ("momentum", "weight_decay"): {"var_names": "exclude_from_weight_decay(var_names=['bias', output_layer.name])"},
    ("nesterov", "weight_decay"): {"var_names": "exclude_from_weight_decay(var_names=['bias', output_layer.name])"},
    ("adam", "weight_decay"): {"var_names": "exclude_from_weight_decay(var_names=['bias', output_layer.name])"},
    ("rmsprop", "weight_decay"): {"var_names": "exclude_from_weight_decay(var_names=['bias', output_layer.name])"},
    ("adagrad", "weight_decay"): {"var_names": "exclude_from_weight_decay(var_names=['bias', output_layer.name])"},
    ("adadelta", "weight_decay"): {"var_names": "exclude_from_weight_decay(var_names=['bias', output_layer.name])"},
    ("adamax", "weight_decay"): {"var_names": "exclude_from_weight_decay(var_names=['bias', output_layer.name])"},
    ("nadam", "weight_decay"): {"var_names": "exclude_from_weight_decay(var_names=['bias', output_layer.name])"},
    ("lion", "weight_decay"): {"var_names": "exclude_from_weight_decay(var_names=['bias', output_layer.name])"},
    ("lamb", "weight_decay"): {"var_names": "exclude_from_weight_decay(var_names=['bias', output_layer.name])"},
    ("adafactor", "weight_decay"): {"var_names": "exclude_from_weight_decay(var_names=['bias', output_layer.name])"},
    ("adam", "decoupled"): {"var_names": "exclude_from_weight_decay(var_names=['bias', output_layer.name])"},
    ("lion", "decoupled"): {"var_names": "exclude_from_weight_decay(var_names=['bias', output_layer.name])"},
    ("lamb", "decoupled"): {"var_names": "exclude_from_weight_decay(var_names=['bias', output_layer.name])"},
    ("adafactor", "decoupled"): {"var_names": "exclude_from_weight_decay(var_names=['bias', output_layer.name])"},
    ("adam", "adamw"): {"var_names": "exclude_from_weight_decay(var_names=['bias', output_layer.name])"},
}  # fmt: skip

# "keras", "tf_keras" or "tf.keras": the prefix of every call written into ``api``, from the root module
KERAS = "tf.keras" if keras.__name__.startswith("keras.api") else keras.__name__
ROOT = {KERAS.partition(".")[0]: importlib.import_module("tensorflow") if KERAS == "tf.keras" else keras}
KERAS2 = keras.__version__.startswith("2.")  # tf-keras, or the Keras 2 that TensorFlow up to 2.15 bundles

# On TensorFlow, runs of fewer steps go eagerly: tracing a run costs about 85 ms, an eager step 2.5-3 ms
# (measured on d2l cases), so a 6-step probe is 5x faster eagerly and a 400-step run 10x
# faster traced.
TRACED_FROM_STEPS = 32
# ... except where tracing changes the result: tf-keras 2's Nadam (OWN_BEHAVIOURS), which a user's
# model.fit traces, so that its runs are traced however short.
TRACED_ALWAYS = ("nadam",) if KERAS2 else ()
_LR = "⟨lr⟩"  # where a shape's recorded calls show the learning rate, filled in per case


def versions():
    """The installed versions of Keras and of the backend it runs on."""
    return {BACKEND: importlib.import_module(BACKEND).__version__, KERAS: keras.__version__}


def train(case, arrays):
    """``case`` trained on ``arrays`` by its shape's run (``_Run``): parameters before and after every step."""
    # Keras creates the optimizer's learning-rate variable (and Keras 3 the loss's compute
    # dtype) in floatx, float32 by default, whatever the layer's dtype.
    keras.backend.set_floatx(case.model.dtype)
    # A legacy optimizer (lr_decay) makes its slots on its first step, so its run is built afresh.
    run = _Run(_shape(case)) if case.penalty.kind == "lr_decay" else _compiled(_shape(case))
    return run.train(case, arrays)


def train_code(case, arrays, statements):
    """``case``'s model and loss trained by the ``optimizer`` that ``statements`` build (their call and code
    run once, with the Keras module, ``tf`` on TensorFlow, ``model`` and ``loss``, the case's loss function;
    a model they make anew given the case's initial weights), one step a batch as ``train`` steps: on
    TensorFlow in a ``tf.GradientTape``, eagerly (traced for a ``TRACED_ALWAYS`` optimizer), their penalties
    adding to ``loss`` in it; elsewhere by ``model.train_on_batch``, the model compiled with the loss plus
    each ``penalty`` they define (``_Run.code_step``)."""
    keras.backend.set_floatx(case.model.dtype)
    loss_fn = _loss(case, Calls(**ROOT))
    names = ROOT | _Run.namespace() | {"model": _model(case, Calls(**ROOT)), "loss": loss_fn}
    namespace = _code.run(statements, names)
    model = namespace["model"]
    if not model.built:  # a model the statements made anew, which a user's fit would build on its first batch
        model.build((None, case.data.dim))
    if case.model.init == "shared":
        _Run.start(case, arrays, model.layers)
    w, b = _Run.steps(case, arrays, model.layers, _Run.code_step(namespace, loss_fn, statements))
    return Trajectory(w=w, b=b, statements=tuple(statements), hyperparameter_dtype=_Run.hyperparameter_dtype(case))


def _model(shape, calls):
    """A ``keras.Sequential`` of ``Dense(1)`` (linear), or of ``Dense(width, activation=σ)`` per hidden
    layer and ``Dense(1)`` (mlp), built (``train_on_batch`` needs a model, not a layer); each layer
    with ``kernel_regularizer`` and ``bias_regularizer`` ``L2(λ)`` where a regularizer case decays
    them, and Dense's own seeded init for a native-init case."""
    options = []
    for layer in shape.layers:
        regularizers = {
            f"{name}_regularizer": calls(f"{KERAS}.regularizers.L2", shape.penalty.strength)
            for name in _regularized(shape, layer)
        }
        activation = {"activation": shape.model.activation} if layer.hidden else {}
        options.append(activation | {"dtype": shape.model.dtype} | regularizers)
    if shape.model.init == "native":
        # Dense's own initializers, glorot_uniform kernel and zeros bias, drawn from the seed.
        calls(f"{KERAS}.utils.set_random_seed", shape.data.seed)
    layers = [calls(f"{KERAS}.layers.Dense", layer.fan_out, **o) for layer, o in zip(shape.layers, options)]
    model = calls.let("model", f"{KERAS}.Sequential", layers)
    calls("model.build", (None, shape.data.dim))
    for i, dense in enumerate(model.layers):
        calls.name(dense.kernel, f"model.layers[{i}].kernel")
        calls.name(dense.bias, f"model.layers[{i}].bias")
    if shape.model.init == "shared":
        calls.note("each layer's kernel and bias assigned from the shared arrays")
    return model


def _regularized(case, layer):
    """The Dense layer's variables that get ``L2(λ)``: those of the roles the case decays; a layer
    regularizes only what it is given, so a bias left to the default (decay_bias = "default") is not."""
    if case.penalty.kind != "regularizer":
        return ()
    return tuple(name for name, role in zip(("kernel", "bias"), layer.roles) if case.penalty.decays(role) is True)


def _roles(shape, model):
    """(role, variable) of each Dense layer's kernel and then its bias, input layer first."""
    return _layout.roles(shape, [(dense.kernel, dense.bias) for dense in model.layers])


def _loss(shape, calls):
    """(y, pred) -> the batch's loss, in Keras's argument order: mean ½e² (half_mse) or mean e²
    (mse, and native: keras.losses.MeanSquaredError)."""
    mse = calls.let("mse", f"{KERAS}.losses.MeanSquaredError")  # mean over the batch of e²
    if shape.train.loss == "half_mse":
        calls.loss("loss = 0.5 * mse(y, model(x))")
        return lambda y, pred: 0.5 * mse(y, pred)
    calls.loss("loss = mse(y, model(x))")
    return mse


def _penalty(shape, model, run, calls):
    """The penalty term of the loss, as a user writes it (``text``) and as it runs (``value``, () -> the
    term), in the ops of the ``run`` (``_Run``), which decides how it enters the loss: (λ/2)·Σp² (l2_loss)
    or λ·Σ|p| (l1_loss) over the kernels and biases of the roles the case decays, or the layers'
    regularization losses, ``sum(model.losses)`` (regularizer); None for any other kind."""
    penalty = shape.penalty
    if penalty.kind == "regularizer":
        return Shown(lambda: sum(model.losses), "sum(model.losses)")
    if not penalty.in_loss:
        return None
    params = [variable for role, variable in _roles(shape, model) if penalty.decays(role)]
    op, scale = ("square", penalty.strength / 2) if penalty.kind == "l2_loss" else ("abs", penalty.strength)
    ops, total = run.OPS
    terms = " + ".join(f"{total}({ops}.{op}({calls.shown(p)}))" for p in params)
    return Shown(lambda: scale * run.sum_of(op, params), f"{scale!r} * ({terms})")


# decaylens optimizer -> the Keras optimizer class a Keras user trains it with.
_CLASSES = {
    "sgd": "SGD", "momentum": "SGD", "nesterov": "SGD", "adam": "Adam", "rmsprop": "RMSprop", "adagrad": "Adagrad",
    "adadelta": "Adadelta", "adamax": "Adamax", "nadam": "Nadam", "lion": "Lion", "lamb": "Lamb",
    "adafactor": "Adafactor",
}  # fmt: skip
# Optimizers whose decay argument is their decoupled form: the decay argument of Lion, LAMB, Adafactor.
_DECAY_ARGUMENT_IS_DECOUPLED = ("lion", "lamb", "adafactor")


def _optimizer(shape, model, calls):
    """The Keras optimizer class of the case's optimizer with λ as its ``weight_decay`` (AdamW for
    Adam's decoupled form), the variables of the roles the case spares excluded from it by
    ``exclude_from_weight_decay`` (``var_list``, or the ``var_names`` variant's patterns); for
    ``lr_decay``, the legacy optimizer's ``decay=`` (tf-keras) or the new one's (Keras 3, which
    ignores it). Built for the model's variables, so that a traced run creates none, once per shape
    at the placeholder lr; each run sets the case's lr in its variable (``_Run.train``)."""
    opt, penalty = shape.optimizer, shape.penalty
    name = _CLASSES.get(opt.name)
    legacy = penalty.kind == "lr_decay" and KERAS2  # Keras 3 has no legacy optimizers
    module = keras.optimizers.legacy if legacy else keras.optimizers
    if name is None or not hasattr(module, name):
        where = f"{KERAS}.optimizers" + (".legacy" if legacy else "")
        raise Unsupported(f"{where} {keras.__version__} has no {name or opt.name} optimizer")
    if penalty.kind in ("decoupled", "adamw"):
        if opt.name == "adam":
            name = "AdamW"
        elif opt.name not in _DECAY_ARGUMENT_IS_DECOUPLED:
            raise Unsupported(
                f"Keras's {name} has no decoupled form of its own; weight_decay is its only decay argument"
            )
    kwargs = _hyperparameters(opt)
    if penalty.kind == "lr_decay":
        kwargs["decay"] = penalty.strength
    elif penalty.in_optimizer and not penalty.omit_strength:
        kwargs["weight_decay"] = penalty.strength
    path = f"{KERAS}.optimizers.{'legacy.' if legacy else ''}{name}"
    optimizer = calls.let("optimizer", path, learning_rate=_schedule(shape, calls), **kwargs)
    # Keras decays every variable it updates unless excluded: decay_bias = "default" is true.
    spared = [(variable, role) for role, variable in _roles(shape, model) if penalty.decays(role) is False]
    if penalty.in_optimizer and penalty.kind != "lr_decay" and spared:
        if penalty.variant == "var_names":
            patterns = _patterns(shape, model, {role for _, role in spared})
            calls("optimizer.exclude_from_weight_decay", var_names=patterns)
        else:
            variables = [variable for variable, _ in spared]
            calls.code(f"spared = {calls.shown(variables)}")
            calls("optimizer.exclude_from_weight_decay", var_list=calls.name(variables, "spared"))
    if not legacy:  # a legacy optimizer makes its slots on its first step
        calls("optimizer.build", model.trainable_variables)
    return optimizer


def _patterns(shape, model, roles):
    """The ``var_names`` a Keras user writes to spare ``roles``: ``"bias"`` for every bias, the output
    layer's name as Keras named it (``"dense_1"``) for both its parameters. Keras matches them against
    each variable's name, whatever it turns out to be; the adapter does not check what they match."""
    output, output_roles = model.layers[-1].name, set(shape.layers[-1].roles)
    covers = {"bias": {layer.roles[1] for layer in shape.layers}, output: output_roles}
    patterns = [pattern for pattern, covered in covers.items() if covered <= roles]
    if left := roles.difference(*(covers[pattern] for pattern in patterns)):
        raise Unsupported(
            f"exclude_from_weight_decay(var_names=...) has no pattern a Keras user writes for "
            f"{', '.join(sorted(left))} alone: 'bias' spares every bias, a layer's name all of that layer"
        )
    return patterns


def _schedule(shape, calls):
    """The optimizer's ``learning_rate``: a ``keras.optimizers.schedules`` object for a varying
    ``shape.schedule``, which Keras calls with the optimizer's step count (0 at the first step);
    else the placeholder lr of the shape, set per case (``_Run.train``)."""
    schedule, lr, steps = shape.schedule, shape.optimizer.lr, shape.steps
    schedules = f"{KERAS}.optimizers.schedules"
    if schedule.kind == "step":
        return calls.let(
            "schedule", f"{schedules}.ExponentialDecay", lr, schedule.interval, schedule.factor, staircase=True
        )
    if schedule.kind == "cosine":
        return calls.let("schedule", f"{schedules}.CosineDecay", lr, steps, alpha=schedule.floor)
    if schedule.kind == "warmup_cosine":
        warmup = schedule.warmup
        if "warmup_target" not in inspect.signature(keras.optimizers.schedules.CosineDecay).parameters:
            raise Unsupported(f"{schedules}.CosineDecay of Keras {keras.__version__} has no warmup (warmup_target)")
        return calls.let(
            "schedule", f"{schedules}.CosineDecay", 0.0, steps - warmup, alpha=schedule.floor, warmup_target=lr,
            warmup_steps=warmup,
        )  # fmt: skip
    return Shown(lr, _LR)


def _hyperparameters(opt):
    """The optimizer's own hyperparameters under Keras's names (ε passed for Keras's default 1e-7;
    Adafactor keeps its defaults: β₂ decay −0.8, ε₁ 1e-30, clip threshold 1, and ε₂ = 1e-3, passed
    as its default is, so that its float32 rounding counts in the run's precision)."""
    if opt.name in ("momentum", "nesterov"):
        return {"momentum": opt.momentum} | ({"nesterov": True} if opt.name == "nesterov" else {})
    if opt.name in ("adam", "adamax", "nadam", "lamb"):
        return {"beta_1": opt.beta1, "beta_2": opt.beta2, "epsilon": opt.eps}
    if opt.name == "lion":
        return {"beta_1": opt.beta1, "beta_2": opt.beta2}
    if opt.name == "rmsprop":
        if opt.initial_accumulator:
            raise Unsupported("Keras's RMSprop starts its average at 0 and takes no initial value")
        return {"rho": opt.rho, "momentum": opt.momentum, "epsilon": opt.eps, "centered": opt.centered}
    if opt.name == "adagrad":
        return {"initial_accumulator_value": opt.initial_accumulator, "epsilon": opt.eps}
    if opt.name == "adadelta":
        return {"rho": opt.rho, "epsilon": opt.eps}
    if opt.name == "adafactor":
        return {"epsilon_2": 1e-3}
    return {}


def _shape(case):
    """What one traced run serves: ``case`` with its lr set to a placeholder, since Keras keeps
    the learning rate in a variable (a schedule's lr stays: the schedule is built into the graph).
    Everything else stays in the key, among it what Keras reads as Python numbers while tracing
    and builds into the graph (momentum, β, ε, λ)."""
    return case if case.schedule.varies else case.replace({"optimizer.lr": 1.0})


@functools.cache
def _compiled(shape):
    """The run of ``shape``, built (and on TensorFlow traced) on first use."""
    return _Run(shape)


# The backend's one fork: the traced tf.scan run holds on TensorFlow only; elsewhere each step is train_on_batch.
TRACED_SCAN = BACKEND == "tensorflow"
if TRACED_SCAN:
    import tensorflow as tf  # noqa: F401 (the traced run's TensorFlow, which it reads as adapter.tf)

    _Run = _keras_runs.TracedRun
else:
    _Run = _keras_runs.BatchRun
