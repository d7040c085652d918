"""Keras adapter: a ``keras.Sequential`` of ``Dense(1)``, or an MLP of Dense layers, trained one
batch a step by Keras's train step.

One module, four backends, chosen by ``TF_USE_LEGACY_KERAS`` and ``KERAS_BACKEND``, which
``backends.load`` sets before the import: ``tensorflow`` runs Keras 3 (``import keras``) on
TensorFlow, ``tensorflow-keras2`` Keras 2 (``import tf_keras as keras``), ``keras-jax`` and
``keras-torch`` Keras 3 on JAX and on PyTorch. The same user code runs on each; only the loop
differs: on JAX and PyTorch every step is ``model.train_on_batch``, Keras's backend-neutral
step; on TensorFlow (both Kerases) the whole run is one ``tf.scan`` of ``tf.GradientTape`` steps,
traced once per case shape (run eagerly below ``TRACED_FROM_STEPS``), the same step (the gradient
of the loss, ``model.losses`` added, given to ``optimizer.apply_gradients``) without a call into
Python per step. The nominal λ
goes unchanged into ``weight_decay=`` of ``keras.optimizers.SGD`` / ``Adam`` / ``AdamW``
(the spared variables left out with ``exclude_from_weight_decay(var_list=...)``, or as its
variant by name patterns, ``var_names=...``), into ``keras.regularizers.L2(λ)`` as each Dense
layer's ``kernel_regularizer`` and ``bias_regularizer`` where they decay, with ``model.losses``
added to the loss, or into penalties written in the loss (with TF ops on TensorFlow, ``keras.ops``
elsewhere) and differentiated with it.
"""

import dataclasses
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

import numpy as np

from backends._calls import Calls, Shown
from backends.contract import Statement, Trajectory, Unsupported

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
# The traced tf.scan run holds on TensorFlow only; elsewhere each step is model.train_on_batch.
TRACED_SCAN = BACKEND == "tensorflow"
if TRACED_SCAN:
    import tensorflow as tf

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
    run.reset(case, arrays)
    w, b = _trajectory(case, arrays, run.layers, run.function)
    return Trajectory(w=w, b=b, statements=run.statements(case), hyperparameter_dtype=_hyperparameter_dtype(case))


def train_code(case, arrays, statements):
    """``case``'s model and loss trained by the ``optimizer`` that ``statements`` build (their call and code
    run once, with the Keras module, ``tf`` on TensorFlow, ``model`` and ``loss``, the case's loss function;
    a model they make anew given the case's initial weights), one step a batch as ``train`` steps: on
    TensorFlow in a ``tf.GradientTape``, eagerly (traced for a ``TRACED_ALWAYS`` optimizer), their penalties
    adding to ``loss`` in it; elsewhere by ``model.train_on_batch``, the model compiled with the loss plus
    each ``penalty`` they define."""
    keras.backend.set_floatx(case.model.dtype)
    loss_fn = _loss(case, Calls(**ROOT))
    namespace = ROOT | ({"tf": tf} if TRACED_SCAN else {}) | {"model": _model(case, Calls(**ROOT)), "loss": loss_fn}
    for statement in statements:
        if statement.kind in ("call", "code"):
            exec(statement.text, namespace)
    model, optimizer = namespace["model"], namespace["optimizer"]
    if not model.built:  # a model the statements made anew, which a user's fit would build on its first batch
        model.build((None, case.data.dim))
    layers = [dense for _, dense, _ in _dense(case, model)]
    if case.model.init == "shared":
        _start(case, arrays, layers)
    penalties = [compile(s.text, "<penalty>", "exec") for s in statements if s.kind == "penalty"]
    if TRACED_SCAN:

        def step(xb, yb):
            with tf.GradientTape() as tape:
                scope = namespace | {"loss": loss_fn(yb, model(xb))}
                for penalty in penalties:  # loss = loss + ...
                    exec(penalty, scope)
            variables = model.trainable_variables
            optimizer.apply_gradients(zip(tape.gradient(scope["loss"], variables), variables))

        if type(optimizer).__name__ in [_CLASSES[name] for name in TRACED_ALWAYS]:  # traced as train's run is
            step = tf.function(step, autograph=False)
        function = functools.partial(_steps, step, layers, case.model.kind == "linear")
    else:
        terms = []
        for penalty in penalties:  # penalty = lambda: ..., added to the loss as the recorded model.compile adds it
            exec(penalty, namespace)
            terms.append(namespace["penalty"])
        total = (lambda y, pred: sum((term() for term in terms), loss_fn(y, pred))) if terms else loss_fn
        model.compile(optimizer=optimizer, loss=total)
        function = functools.partial(_steps, model.train_on_batch, layers, case.model.kind == "linear")
    w, b = _trajectory(case, arrays, layers, function)
    return Trajectory(w=w, b=b, statements=tuple(statements), hyperparameter_dtype=_hyperparameter_dtype(case))


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
    dense = [calls(f"{KERAS}.layers.Dense", layer.fan_out, **o) for layer, o in zip(shape.layers, options)]
    model = calls.let("model", f"{KERAS}.Sequential", dense)
    calls("model.build", (None, shape.data.dim))
    for name, variable, _ in _tensors(shape, model):
        calls.name(variable, name)
    if shape.model.init == "shared":
        calls.note("each layer's kernel and bias assigned from the shared arrays")
    return model


def _regularized(case, layer):
    """The Dense layer's variables that get ``L2(λ)``: those of the roles the case decays; a layer
    regularizes only what it is given, so a bias left to the default (decay_bias = "default") is not."""
    if case.penalty.kind != "regularizer":
        return ()
    return tuple(name for name, role in zip(("kernel", "bias"), layer.roles) if case.penalty.decays(role) is True)


def _dense(shape, model):
    """(how a user names it, the Dense layer, its ``case.layers`` entry) of each layer, input layer first."""
    return [(f"model.layers[{i}]", dense, layer) for i, (dense, layer) in enumerate(zip(model.layers, shape.layers))]


def _tensors(shape, model):
    """(name, variable, role) of each layer's kernel and then its bias, input layer first."""
    return [
        (f"{name}.{attribute}", getattr(dense, attribute), role)
        for name, dense, layer in _dense(shape, model)
        for attribute, role in zip(("kernel", "bias"), layer.roles)
    ]


def _loss(shape, calls):
    """(y, pred) -> the batch's loss, in Keras's argument order: mean ½e² (half_mse) or mean e²
    (mse, and native: keras.losses.MeanSquaredError)."""
    mse = calls.let("mse", f"{KERAS}.losses.MeanSquaredError")  # mean over the batch of e²
    if shape.train.loss == "half_mse":
        calls.loss("loss = 0.5 * mse(y, model(x))")
        return lambda y, pred: 0.5 * mse(y, pred)
    calls.loss("loss = mse(y, model(x))")
    return mse


def _penalty(shape, model, calls):
    """The penalty added to the loss, () -> (λ/2)·Σp² (l2_loss) or λ·Σ|p| (l1_loss) over the kernels
    and biases of the roles the case decays (TF ops on TensorFlow, ``keras.ops`` elsewhere), or, in
    the traced run, the layers' regularization losses (``train_on_batch`` adds those itself); None
    for any other kind."""
    penalty = shape.penalty
    if penalty.kind == "regularizer":
        if not TRACED_SCAN:
            calls.note("(train_on_batch adds sum(model.losses) to the loss)")
            return None
        calls.penalty("loss = loss + sum(model.losses)")
        return lambda: sum(model.losses)
    if not penalty.in_loss:
        return None
    params = [(name, variable) for name, variable, role in _tensors(shape, model) if penalty.decays(role)]
    op, scale = ("square", penalty.strength / 2) if penalty.kind == "l2_loss" else ("abs", penalty.strength)
    ops, total = ("tf", "tf.reduce_sum") if TRACED_SCAN else ("keras.ops", "keras.ops.sum")
    terms = " + ".join(f"{total}({ops}.{op}({n}))" for n, _ in params)
    calls.penalty(f"loss = loss + {scale!r} * ({terms})" if TRACED_SCAN else f"penalty = lambda: {scale!r} * ({terms})")
    if TRACED_SCAN:
        return lambda: scale * tf.add_n([tf.reduce_sum(getattr(tf, op)(p)) for _, p in params])
    return lambda: scale * sum(keras.ops.sum(getattr(keras.ops, op)(p)) for _, p in params)


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
    at the placeholder lr; each run sets the case's lr in its variable (``_Run.reset``)."""
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
    spared = [(variable, role) for _, variable, role in _tensors(shape, model) if penalty.decays(role) is False]
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
    output, output_roles = _dense(shape, model)[-1][1].name, set(shape.layers[-1].roles)
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
    else the placeholder lr of the shape, set per case (``_Run.reset``)."""
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


class _Run:
    """A model (a Sequential of Dense layers), its optimizer, and the whole training run of their
    ``shape``, ``function(xs, ys) -> (w, b)`` after every step: on TensorFlow a ``tf.scan`` over
    the batches traced as one graph (or, for a short run, run eagerly); elsewhere
    ``model.train_on_batch`` once a batch, the model compiled with the loss and penalty. Each call
    of ``reset`` puts the variables back to their state just after they were built, then sets the
    case's initial weights and lr, so that every run of the shape starts fresh from one trace.
    """

    def __init__(self, shape):
        calls = Calls(**ROOT)
        calls(f"{KERAS}.backend.set_floatx", shape.model.dtype)
        self.model = _model(shape, calls)
        self.layers = [dense for _, dense, _ in _dense(shape, self.model)]
        self._linear = shape.model.kind == "linear"
        loss_fn = _loss(shape, calls)
        penalty = _penalty(shape, self.model, calls)
        self.optimizer = _optimizer(shape, self.model, calls)
        if TRACED_SCAN:
            self.scan = self._traced_scan(shape, loss_fn, penalty)
            self.function = lambda xs, ys: tuple(p.numpy() for p in self.scan(tf.constant(xs), tf.constant(ys)))
        else:
            total = (lambda y, pred: loss_fn(y, pred) + penalty()) if penalty else loss_fn
            shown = "lambda y, pred: loss(y, pred) + penalty()" if penalty else "loss"
            calls("model.compile", optimizer=self.optimizer, loss=Shown(total, shown))
            calls.note("model.train_on_batch(x, y) for each batch")
            self.function = functools.partial(_steps, self.model.train_on_batch, self.layers, self._linear)
        self._statements = calls.statements
        # (a legacy optimizer's variables are a method, and made on its first step: its run is not reused)
        optimizer = self.optimizer
        optimizer_variables = optimizer.variables() if callable(optimizer.variables) else optimizer.variables
        self._built = [(variable, _numpy(variable)) for variable in self.model.variables + optimizer_variables]

    def _traced_scan(self, shape, loss_fn, penalty):
        """TensorFlow's run: Keras's train step in a ``tf.GradientTape``, scanned over the batches;
        the concrete function of its trace, or the eager function of a short run."""
        model, optimizer, variables = self.model, self.optimizer, self.model.trainable_variables

        def step(_, batch):
            xb, yb = batch
            with tf.GradientTape() as tape:
                loss = loss_fn(yb, model(xb))
                if penalty:
                    loss += penalty()
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            return self._tensor_parameters()

        def run(xs, ys):
            return tf.scan(step, (xs, ys), initializer=self._tensor_parameters(), parallel_iterations=1)

        if shape.steps < TRACED_FROM_STEPS and shape.optimizer.name not in TRACED_ALWAYS:
            function = run  # eagerly, op by op: the same code, no graph
        else:
            # Traced here, once (AutoGraph has nothing to convert: the one ``if`` is decided
            # while tracing); calling the concrete function skips tf.function's retracing
            # checks. jit_compile=True was measured slower on the whole: XLA runs a d2l case
            # in 0.5 ms instead of about 12 ms, but compiles each shape for about 0.2 s.
            batches = (shape.steps, shape.train.batch_size)
            function = tf.function(run, autograph=False).get_concrete_function(
                tf.TensorSpec((*batches, shape.data.dim), shape.model.dtype),
                tf.TensorSpec((*batches, 1), shape.model.dtype),
            )
        return function

    def reset(self, case, arrays):
        for variable, value in self._built:
            variable.assign(value)
        if case.model.init == "shared":
            _start(case, arrays, self.layers)
        if not case.schedule.varies:
            self.optimizer.learning_rate = case.optimizer.lr

    def _tensor_parameters(self):
        """``_parameters`` as TensorFlow tensors, inside the traced run."""
        w = tf.concat([tf.reshape(dense.kernel, [-1]) for dense in self.layers], axis=0)
        b = tf.concat([dense.bias for dense in self.layers], axis=0)
        return (w, b[0]) if self._linear else (w, b)

    def statements(self, case):
        """The shape's statements as the user writes them for ``case``, and how its lr was set."""
        lr = repr(case.optimizer.lr)
        if case.schedule.varies:
            return self._statements
        shown = tuple(dataclasses.replace(s, text=s.text.replace(_LR, lr)) for s in self._statements)
        return (
            *shown,
            Statement(
                "note",
                f"optimizer.learning_rate = {lr} (the optimizer is built once per case shape with "
                "learning_rate=1.0, then given each case's lr in its learning-rate variable)",
            ),
        )


def _start(case, arrays, layers):
    """Assign the case's shared initial weights to the Dense ``layers``: each kernel and bias its part of ``arrays``."""
    weights = np.split(arrays.w0, np.cumsum([layer.fan_in * layer.fan_out for layer in case.layers])[:-1])
    biases = np.split(np.reshape(arrays.b0, -1), np.cumsum([layer.fan_out for layer in case.layers])[:-1])
    for dense, layer, weight, bias in zip(layers, case.layers, weights, biases):
        dense.kernel.assign(weight.reshape(layer.fan_in, layer.fan_out))
        dense.bias.assign(bias)


def _trajectory(case, arrays, layers, function):
    """(w, b) of the Dense ``layers`` before training and after each step of ``function(xs, ys)``, which
    trains them on every step's batch (gathered once: (steps, batch size, dim), targets (steps, batch size, 1))."""
    order = arrays.batch_order()
    xs = arrays.x_train[order].astype(case.model.dtype)
    ys = arrays.y_train[order][..., None].astype(case.model.dtype)
    w0, b0 = _parameters(layers, case.model.kind == "linear")
    w, b = function(xs, ys)
    return np.concatenate([w0[None], w]), np.concatenate([b0[None], b])


def _steps(step, layers, linear, xs, ys):
    """(w, b) of the Dense ``layers`` after each ``step(xb, yb)`` over the batches, one call into Python a step."""
    after = []
    for xb, yb in zip(xs, ys):
        step(xb, yb)
        after.append(_parameters(layers, linear))
    return tuple(np.stack(p) for p in zip(*after))


def _parameters(layers, linear):
    """(w, b) of the Dense ``layers`` as they are now, in the Trajectory's layout: every kernel flattened
    row-major, then every bias, input layer first; the linear model's b is its one bias."""
    w = np.concatenate([np.ravel(_numpy(dense.kernel)) for dense in layers])
    b = np.concatenate([_numpy(dense.bias) for dense in layers])
    return (w, b[0]) if linear else (w, b)


def _numpy(variable):
    """A variable's value as a NumPy array, by TensorFlow's ``numpy()`` or Keras 3's
    ``convert_to_numpy`` (which detaches a PyTorch tensor)."""
    return variable.numpy() if TRACED_SCAN else keras.ops.convert_to_numpy(variable.value)


@functools.cache
def _compiled(shape):
    """The run of ``shape``, built (and on TensorFlow traced) on first use."""
    return _Run(shape)


def _hyperparameter_dtype(case):
    """ "float32" when a float64 run applies its hyperparameters rounded to float32 or computes in
    float32, else None.

    On TensorFlow Keras casts Python-float hyperparameters with ``tf.cast`` (Keras 3: ``ops.cast``),
    which makes them float32 tensors first: momentum 0.9 becomes 0.8999999761581421 in a float64
    run (Keras 3 sgd.py, adam.py, regularizers.L2; tf-keras sgd.py, adam.py; a legacy optimizer
    keeps every hyperparameter in a float32 variable). A user passes Python floats, so the adapter
    does too; this states which precision the run can claim: float32 as soon as any of the run's
    hyperparameters is not a float32 number. Off TensorFlow a float64 run claims float32 in any
    case: Keras 3's type promotion turns float64 into float32 on every other backend
    (keras/src/backend/common/dtypes.py:240, BIT64_TO_BIT32_DTYPE, "aligned with JAX's default
    behavior"), so that ``ops.mean`` reduces MeanSquaredError's errors in float32
    (backend/jax/numpy.py:231) and PyTorch's ``ops.matmul`` multiplies a float64 Dense layer in
    float32 (backend/torch/numpy.py:140).
    """
    if case.model.dtype == "float64" and not TRACED_SCAN:
        return "float32"
    penalty = case.penalty
    values = [case.optimizer.lr, *(v for v in _hyperparameters(case.optimizer).values() if isinstance(v, float))]
    values += [penalty.strength] if penalty.in_framework else []
    if case.model.dtype == "float64" and any(float(tf.cast(v, tf.float64)) != v for v in values):
        return "float32"
    return None
