"""TensorFlow/Keras adapter: ``keras.layers.Dense(1)`` trained in a ``tf.GradientTape`` loop.

One module, two backends: ``tensorflow`` runs Keras 3 (``import keras``) and
``tensorflow-keras2`` runs Keras 2 (``import tf_keras as keras``), chosen by
``TF_USE_LEGACY_KERAS``, which ``backends.load`` sets before the import. The nominal λ
goes unchanged into ``weight_decay=`` of ``keras.optimizers.SGD`` / ``Adam`` / ``AdamW``
(the bias left out with ``exclude_from_weight_decay`` unless it decays), into
``keras.regularizers.L2(λ)`` as the Dense layer's ``kernel_regularizer`` (and
``bias_regularizer``) with ``model.losses`` added to the loss, or into penalties
written in the loss with TF ops and differentiated by ``tf.GradientTape``.
"""

import os

# TensorFlow logs to stderr while it loads and on its first ops; both must be set before
# the import. Level 2 drops C++ INFO and WARNING lines (CPU feature guard, ...), keeps errors.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Overrides TensorFlow's default (oneDNN kernels on x86): their "oneDNN custom operations
# are on" line ignores the log level, and their results depend on the CPU's instruction
# set, which would make float32 runs differ between machines. A 200 × 1 model gains nothing.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from harness.trajectory import Trajectory  # noqa: E402

if os.environ.get("TF_USE_LEGACY_KERAS") in ("true", "True", "1"):  # as TensorFlow reads it
    import tf_keras as keras
else:
    import keras

KERAS = keras.__name__  # "keras" or "tf_keras": the prefix of every call written into ``api``

# Overrides TensorFlow's default (Grappler rewrites every graph before its first run): the
# rewriting costs more than a whole run of a 200-weight model, and each case is a new graph.
# The graph runs as traced.
tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})


def versions():
    return {"tensorflow": tf.__version__, KERAS: keras.__version__}


def train(case, arrays):
    # Keras creates the optimizer's learning-rate variable (and Keras 3 the loss's compute
    # dtype) in floatx, float32 by default, whatever the layer's dtype.
    keras.backend.set_floatx(case.model.dtype)
    model, init_api = _model(case, arrays)
    loss_fn, loss_api = _loss(case)
    penalty, penalty_api = _penalty(case, model)
    optimizer, optimizer_api = _optimizer(case, model)
    x = tf.constant(arrays.x_train, dtype=case.model.dtype)
    y = tf.constant(arrays.y_train[:, None], dtype=case.model.dtype)
    variables = model.trainable_variables

    def step(_, batch):
        xb, yb = tf.gather(x, batch), tf.gather(y, batch)
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb)) + penalty()
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return model.kernel[:, 0], model.bias[0]

    def run(order):
        start = (model.kernel[:, 0], model.bias[0])
        return tf.scan(step, order, initializer=start, parallel_iterations=1)  # one step after another

    # The whole run is one graph, a tf.scan over the batch order, traced once per case (it has
    # no Python control flow for AutoGraph to convert). Calling the traced function directly
    # skips tf.function's warning about functions traced on every call. jit_compile=True was
    # measured slower: XLA's compilation of each case costs more than it saves over its steps.
    order = tf.constant(arrays.batch_order())
    w0, b0 = model.kernel.numpy()[:, 0], model.bias.numpy()[0]
    w, b = tf.function(run, autograph=False).get_concrete_function(order)(order)
    w, b = np.concatenate([w0[None], w.numpy()]), np.append(b0, b.numpy())
    floatx_api = f"{KERAS}.backend.set_floatx({case.model.dtype!r})"
    api = "; ".join((floatx_api, init_api, f"loss = {loss_api}{penalty_api}", optimizer_api))
    return Trajectory(w=w, b=b, api=api, hyperparameter_dtype=_hyperparameter_dtype(case))


def _model(case, arrays):
    strength, regularizers = case.penalty.strength, {}
    if case.penalty.kind == "regularizer":
        # L2(l) adds l·Σp² of each regularized variable to model.losses. A Dense layer
        # regularizes only what it is given: decay_bias = "default" is false.
        names = ("kernel", "bias") if case.penalty.decay_bias is True else ("kernel",)
        regularizers = {f"{name}_regularizer": keras.regularizers.L2(strength) for name in names}
    if case.model.init == "native":
        # Dense's own initializers, glorot_uniform kernel and zeros bias, drawn from the seed.
        keras.utils.set_random_seed(case.data.seed)
    model = keras.layers.Dense(1, dtype=case.model.dtype, **regularizers)
    model.build((None, case.data.dim))
    call = "".join(f", {name}={KERAS}.regularizers.L2({strength!r})" for name in regularizers)
    call = f"model = {KERAS}.layers.Dense(1, dtype={case.model.dtype!r}{call}); model.build((None, {case.data.dim}))"
    if case.model.init == "native":
        return model, f"{KERAS}.utils.set_random_seed({case.data.seed}); {call}"
    model.kernel.assign(arrays.w0[:, None])
    model.bias.assign(arrays.b0[None])
    return model, f"{call} with kernel and bias assigned from the shared arrays"


def _loss(case):
    mse = keras.losses.MeanSquaredError()  # mean over the batch of e²
    call = f"{KERAS}.losses.MeanSquaredError()(y, pred)"
    return {
        "half_mse": (lambda y, pred: 0.5 * mse(y, pred), f"0.5 * {call}"),
        "mse": (mse, call),
        "native": (mse, call),
    }[case.train.loss]


def _penalty(case, model):
    kind, strength = case.penalty.kind, case.penalty.strength
    params = [model.kernel, model.bias] if case.penalty.decay_bias is True else [model.kernel]
    names = " + ".join(f"tf.reduce_sum(tf.{{op}}({p}))" for p in ("kernel", "bias")[: len(params)])
    if kind == "l2_loss":
        return (
            lambda: strength / 2 * sum(tf.reduce_sum(tf.square(p)) for p in params),
            f" + {strength / 2!r} * ({names.format(op='square')})",
        )
    if kind == "l1_loss":
        return (
            lambda: strength * sum(tf.reduce_sum(tf.abs(p)) for p in params),
            f" + {strength!r} * ({names.format(op='abs')})",
        )
    if kind == "regularizer":
        return lambda: sum(model.losses), " + sum(model.losses)"
    return lambda: 0, ""


def _optimizer(case, model):
    opt, penalty = case.optimizer, case.penalty
    if opt.name == "adam":
        cls = keras.optimizers.AdamW if penalty.kind == "adamw" else keras.optimizers.Adam
        # epsilon: Keras's default is 1e-7; the spec's ε is passed instead.
        kwargs = {"learning_rate": opt.lr, "beta_1": opt.beta1, "beta_2": opt.beta2, "epsilon": opt.eps}
    else:
        cls = keras.optimizers.SGD
        kwargs = {"learning_rate": opt.lr}
        if opt.name in ("momentum", "nesterov"):
            kwargs["momentum"] = opt.momentum
        if opt.name == "nesterov":
            kwargs["nesterov"] = True
    if penalty.kind in ("weight_decay", "adamw"):
        kwargs["weight_decay"] = penalty.strength
    optimizer = cls(**kwargs)
    api = f"optimizer = {KERAS}.optimizers.{cls.__name__}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
    # Keras decays every variable it updates unless excluded: decay_bias = "default" is true.
    if penalty.kind in ("weight_decay", "adamw") and penalty.decay_bias is False:
        optimizer.exclude_from_weight_decay(var_list=[model.bias])
        api += "; optimizer.exclude_from_weight_decay(var_list=[bias])"
    # Built now, so that the compiled step creates no variables and is traced only once.
    optimizer.build(model.trainable_variables)
    return optimizer, api


def _hyperparameter_dtype(case):
    """"float32" when a float64 run applies its hyperparameters rounded to float32, else None.

    Keras casts Python-float hyperparameters with ``tf.cast`` (Keras 3: ``ops.cast``), which
    makes them float32 tensors first: momentum 0.9 becomes 0.8999999761581421 in a float64
    run (Keras 3 sgd.py, adam.py, regularizers.L2; tf-keras sgd.py, adam.py). A user passes
    Python floats, so the adapter does too; this states which precision the run can claim.
    """
    opt, penalty = case.optimizer, case.penalty
    values = [opt.lr]
    values += [opt.momentum] if opt.name in ("momentum", "nesterov") else []
    values += [opt.beta1, opt.beta2, opt.eps] if opt.name == "adam" else []
    values += [penalty.strength] if penalty.kind in ("weight_decay", "adamw", "regularizer") else []
    if case.model.dtype == "float64" and any(float(tf.cast(v, tf.float64)) != v for v in values):
        return "float32"
    return None
