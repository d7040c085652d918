"""MLX adapter: ``mlx.nn.Linear`` (an MLP: ``mlx.nn.Sequential`` of them) trained with ``mlx.optimizers``.

The nominal λ goes unchanged into ``weight_decay=`` of the ``mlx.optimizers`` class of each
optimizer MLX ships (SGD's coupled one; AdamW, Lion and Adafactor's decoupled ones). The
parameters that must not decay are handed, by ``mlx.optimizers.MultiOptimizer`` and a filter on
their path, to a second optimizer of the same class with ``weight_decay=0.0``. Penalties in the
loss are written with ``mlx.core`` ops and differentiated by ``mlx.nn.value_and_grad``. MLX has
no layer regularizer API. Every step ends in ``mx.eval`` of the parameters and the optimizer's
state, as MLX's own training loops do (its arrays are lazy).
"""

import functools
import operator

import mlx
import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_flatten

from backends import _code, _layout
from backends._calls import Calls
from backends.contract import Trajectory, Unsupported

SWEEPABLE = ()  # one case per call
RATIO_TARGET = 10.0
OWN_BEHAVIOURS = {
    ("adamax", None): (
        "mlx.optimizers.Adamax leaves out Adam's bias correction of m: Δ = lr·m/(max(β₂u, |g|) + ε), "
        "not lr/(1−β₁ᵗ)·m/(u + ε) (optimizers.py:659: return parameter - lr * m / (v + eps)), and has no "
        "argument that adds it"
    ),
    ("adafactor", None): (
        "mlx.optimizers.Adafactor decays by its scaled step size, p ← p − λ·lr·max(ε₂, RMS(p))·p "
        "(optimizers.py:864: parameter * (-self.weight_decay * learning_rate), the learning_rate of "
        "_compute_learning_rate), not by lr alone"
    ),
    ("adam", None): (
        "mlx.optimizers.Adam and AdamW default to bias_correction=False (optimizers.py:503, 585), which "
        "leaves out Adam's bias correction: Δ = lr·m/(√s + ε)"
    ),
}
# AdamW as an MLX user gets it by default, without the bias correction that AdamW has in every other
# framework; the adapter passes bias_correction=True otherwise.
VARIANTS = {("adam", "adamw"): {"uncorrected": "optim.AdamW(...) with its default bias_correction=False"}}


# The modules the recorded calls start from, under the names an MLX user imports them as.
_ROOTS = {"mx": mx, "nn": nn, "optim": optim}


def versions():
    """The installed MLX version."""
    return {"mlx": mx.__version__}


def train(case, arrays):
    """``case`` trained on ``arrays``: the model's parameters before and after every step."""
    calls = Calls(**_ROOTS)
    model = _model(case, arrays, calls)
    loss_fn = _loss(case, calls)
    paths = _layout.roles(case, _paths(case))
    penalty = _penalty(case, paths, calls)
    optimizer = _optimizer(case, paths, calls)

    def total(model, x, y):
        loss = loss_fn(model(x), y)
        return loss + penalty(model) if penalty else loss

    calls.note(
        "loss, grads = nn.value_and_grad(model, loss_fn)(model, x, y); optimizer.update(model, grads); "
        "mx.eval(model.parameters(), optimizer.state) every step"
    )
    w, b = _steps(case, arrays, model, total, optimizer)
    return Trajectory(w=w, b=b, statements=calls.statements, hyperparameter_dtype=_hyperparameter_dtype(case))


def train_code(case, arrays, statements):
    """``case``'s model and loss trained by the ``optimizer`` that ``statements`` build (their call and code
    run once, with ``mx``, ``nn``, ``optim``, ``mlx`` and ``model``), the penalties they add to ``loss``
    added at every step."""
    model = _model(case, arrays, Calls(**_ROOTS))
    loss_fn = _loss(case, Calls(**_ROOTS))
    # A dtype shows as its repr, mlx.core.float64: the recorded set_dtype call names mlx.
    namespace = _code.run(statements, {**_ROOTS, "mlx": mlx, "model": model})
    if namespace["model"] is not model:  # the statements made the model anew
        model = namespace["model"]
        if case.model.init == "shared":
            _start(case, arrays, model)
    add = _code.penalized(statements, namespace)

    def total(model, x, y):
        return add(loss_fn(model(x), y), model=model)

    w, b = _steps(case, arrays, model, total, namespace["optimizer"])
    return Trajectory(w=w, b=b, statements=tuple(statements), hyperparameter_dtype=_hyperparameter_dtype(case))


def _steps(case, arrays, model, total, optimizer):
    """(w, b) of ``model`` before and after every ``optimizer.update`` by the gradient of ``total(model, x,
    y)`` (``nn.value_and_grad``) over the batches, each step ending in ``mx.eval``, in ``Trajectory``'s layout."""
    loss_and_grad = nn.value_and_grad(model, total)
    dtype = getattr(mx, case.model.dtype)
    order = arrays.batch_order()
    xs = mx.array(arrays.x_train[order], dtype=dtype)
    ys = mx.array(arrays.y_train[order][..., None], dtype=dtype)
    rows = _layout.Rows(case, case.model.dtype)
    rows.write(0, _numpy(case, model))
    for step in range(case.steps):
        _, grads = loss_and_grad(model, xs[step], ys[step])
        try:
            optimizer.update(model, grads)
        except ValueError as error:
            if not isinstance(optimizer, optim.MultiOptimizer):
                raise
            raise Unsupported(
                f"mlx.optimizers.MultiOptimizer cannot hand different layers of an nn.Sequential to its "
                f"optimizers: merging their updates raises ValueError({error}) (mlx/utils.py:338, tree_merge "
                f"of the layer lists); spare the biases, not layers"
            ) from error
        mx.eval(model.parameters(), optimizer.state)
        rows.write(step + 1, _numpy(case, model))
    return rows.w, rows.b


def _hyperparameter_dtype(case):
    """The dtype the optimizer applies its lr in, where coarser than the case's: float32 for a float64 run."""
    # The lr is a float32 mx.array whatever the parameters' dtype (optimizers.py:153, mx.array(lr)),
    # cast to theirs in each update: a float64 run steps by the float32-rounded lr.
    return "float32" if case.model.dtype == "float64" else None


def _paths(case):
    """[(weight path, bias path)] of each layer, input first: its parameters' paths in the model's parameter
    tree (``tree_flatten``), "weight", or "layers.0.weight" in an nn.Sequential."""
    prefixes = [""] if case.model.kind == "linear" else [f"layers.{2 * index}." for index in range(len(case.layers))]
    return [(f"{prefix}weight", f"{prefix}bias") for prefix in prefixes]


def _numpy(case, model):
    """[(W (fan_in, fan_out), b)] of the model's ``nn.Linear`` layers, input first, as NumPy copies: each
    ``weight`` (out, in) transposed."""
    linears = (
        [model] if case.model.kind == "linear" else [layer for layer in model.layers if isinstance(layer, nn.Linear)]
    )
    return [(np.array(linear.weight).T, np.array(linear.bias)) for linear in linears]


def _model(case, arrays, calls):
    """``nn.Linear(dim, 1)``, or for an MLP an ``nn.Sequential`` of ``nn.Linear`` layers with
    ``nn.ReLU``/``nn.Tanh`` between them, cast to the case's dtype (``set_dtype``: Linear makes float32
    parameters): MLX's own seeded init (native; every ``nn.Linear``: weight and bias ~ U(±1/√fan_in)),
    or the shared initial weights, loaded by ``load_weights``."""
    if case.model.init == "native":
        calls("mx.random.seed", case.data.seed)
    if case.model.kind == "linear":
        model = calls.let("model", "nn.Linear", case.data.dim, 1)
    else:
        activation = {"relu": "nn.ReLU", "tanh": "nn.Tanh"}[case.model.activation]
        modules = []
        for layer in case.layers:
            modules.append(calls("nn.Linear", layer.fan_in, layer.fan_out))
            modules += [calls(activation)] if layer.hidden else []
        model = calls.let("model", "nn.Sequential", *modules)
    calls("model.set_dtype", getattr(mx, case.model.dtype))
    if case.model.init == "native":
        return model
    _start(case, arrays, model)
    calls.note("model.load_weights([(path, mx.array(value)), ...]) of every weight and bias from the shared arrays")
    return model


def _start(case, arrays, model):
    """Load the shared initial weights into ``model`` (each layer's W is its weight's transpose), each in
    the dtype of the parameter it replaces."""
    found = dict(tree_flatten(model.parameters()))
    values = []
    for (weight, bias), (w0, b0) in zip(_paths(case), _layout.blocks(case, arrays.w0, arrays.b0), strict=True):
        values += [(weight, mx.array(w0.T, dtype=found[weight].dtype)), (bias, mx.array(b0, dtype=found[bias].dtype))]
    model.load_weights(values)


def _loss(case, calls):
    """(pred, y) -> the batch's loss: mean ½e² (half_mse), mean e² (mse, and native: nn.losses.mse_loss,
    whose default reduction is the mean)."""
    mse = nn.losses.mse_loss
    if case.train.loss in ("native", "mse"):
        calls.loss("loss = nn.losses.mse_loss(model(x), y)")
        return mse
    calls.loss("loss = 0.5 * nn.losses.mse_loss(model(x), y)")
    return lambda pred, y: 0.5 * mse(pred, y)


def _penalty(case, paths, calls):
    """The penalty added to the loss, model -> (λ/2)·Σp² (l2_loss) or λ·Σ|p| (l1_loss) over the
    parameters of the roles the case decays, read from the model ``value_and_grad`` differentiates;
    None for any other kind."""
    penalty = case.penalty
    if penalty.kind == "regularizer":
        raise Unsupported("MLX has no layer regularizer API; write the penalty into the loss (l2_loss)")
    if not penalty.in_loss:
        return None
    decayed = [path for role, path in paths if penalty.decays(role)]
    names = [_shown(path) for path in decayed]
    op, scale = ("square", penalty.strength / 2) if penalty.kind == "l2_loss" else ("abs", penalty.strength)
    calls.penalty(f"loss = loss + {scale!r} * ({' + '.join(f'mx.sum(mx.{op}({name}))' for name in names)})")
    apply = getattr(mx, op)

    def term(model):
        flat = dict(tree_flatten(model.trainable_parameters()))
        return scale * functools.reduce(operator.add, (mx.sum(apply(flat[path])) for path in decayed))

    return term


def _shown(path):
    """A parameter's path as a user writes it: "model.weight", "model.layers[0].weight"."""
    *layers, name = path.split(".")
    return "model" + "".join(f"[{part}]" if part.isdigit() else f".{part}" for part in layers) + f".{name}"


# decaylens optimizer -> the mlx.optimizers class an MLX user trains it with.
_CLASSES = {
    "sgd": "SGD", "momentum": "SGD", "nesterov": "SGD", "adam": "Adam", "rmsprop": "RMSprop", "adagrad": "Adagrad",
    "adadelta": "AdaDelta", "adamax": "Adamax", "lion": "Lion", "adafactor": "Adafactor",
}  # fmt: skip
# Optimizers whose weight_decay argument is their decoupled form, and their only decay argument.
_DECAY_ARGUMENT_IS_DECOUPLED = ("lion", "adafactor")


def _optimizer(case, paths, calls):
    """The ``mlx.optimizers`` class of the case's optimizer: λ as its ``weight_decay`` (``AdamW`` for
    Adam's decoupled form); where the case spares parameters, a ``MultiOptimizer`` that hands them to
    a copy with ``weight_decay=0.0`` by a filter on their path, the rest to the decaying one."""
    opt, penalty = case.optimizer, case.penalty
    if opt.name not in _CLASSES:
        raise Unsupported(f"MLX {mx.__version__} has no {opt.name} optimizer in mlx.optimizers")
    if penalty.kind == "lr_decay":
        raise Unsupported("MLX's optimizers have no argument users mistake for weight decay (no lr_decay)")
    name = _CLASSES[opt.name]
    decoupled = penalty.kind in ("decoupled", "adamw")
    if decoupled and opt.name == "adam":
        name = "AdamW"
    elif decoupled and opt.name not in _DECAY_ARGUMENT_IS_DECOUPLED:
        raise Unsupported(f"MLX's {name} has no decoupled form; weight_decay is its only decay argument")
    has_decay = name in ("SGD", "AdamW", "Lion", "Adafactor")
    if penalty.in_optimizer and not has_decay:
        raise Unsupported(
            f"mlx.optimizers.{name} has no weight_decay argument"
            + ("; its decoupled form is AdamW" if name == "Adam" else "")
        )
    kwargs = {"learning_rate": _schedule(case, None, calls) or opt.lr, **_hyperparameters(case)}
    if has_decay and name != "SGD":
        # Overrides AdamW's default weight_decay=0.01 where no decay is asked for; Lion's and Adafactor's is 0.
        kwargs["weight_decay"] = 0.0
    if penalty.in_optimizer and not penalty.omit_strength:
        kwargs["weight_decay"] = penalty.strength
    elif penalty.omit_strength:
        kwargs.pop("weight_decay", None)  # the API's own default, which the default probe measures
    spared = [path for role, path in paths if penalty.decays(role) is False]
    if not (penalty.in_optimizer and spared):
        return calls.let("optimizer", f"optim.{name}", **kwargs)
    # MLX decays every parameter handed to the optimizer: decay_bias = "default" is true.
    keep = calls.name(lambda path, _: path in spared, f"lambda path, _: path in {spared!r}")
    return calls.let(
        "optimizer",
        "optim.MultiOptimizer",
        [calls(f"optim.{name}", **kwargs | {"weight_decay": 0.0}), calls(f"optim.{name}", **kwargs)],
        [keep],
    )


def _schedule(case, optimizer, calls):
    """The ``learning_rate`` schedule of ``case.schedule`` (``_optimizer`` calls this, with no optimizer
    yet): an ``mlx.optimizers`` schedule, which the optimizer calls with its step count before each
    update (0 at the first step, optimizers.py:97-101); None for a constant lr. The warmup is
    ``linear_schedule`` from 0 joined to the cosine of the steps left, as MLX's docs compose them."""
    schedule, steps, lr = case.schedule, case.steps, case.optimizer.lr
    if schedule.kind == "step":
        return calls.let("schedule", "optim.step_decay", lr, schedule.factor, schedule.interval)
    if schedule.kind == "cosine":
        return calls.let("schedule", "optim.cosine_decay", lr, steps, end=schedule.floor * lr)
    if schedule.kind == "warmup_cosine":
        warmup = calls("optim.linear_schedule", 0.0, lr, schedule.warmup)
        cosine = calls("optim.cosine_decay", lr, steps - schedule.warmup, end=schedule.floor * lr)
        return calls.let("schedule", "optim.join_schedules", [warmup, cosine], [schedule.warmup])
    return None


def _hyperparameters(case):
    """The optimizer's own hyperparameters under mlx.optimizers' names."""
    opt, penalty = case.optimizer, case.penalty
    if opt.name in ("momentum", "nesterov"):
        return {"momentum": opt.momentum} | ({"nesterov": True} if opt.name == "nesterov" else {})
    if opt.name == "adam":
        # Overrides Adam's and AdamW's default bias_correction=False: no other framework's Adam leaves
        # the correction out; the "uncorrected" variant keeps MLX's default.
        corrected = {} if penalty.variant == "uncorrected" else {"bias_correction": True}
        return {"betas": [opt.beta1, opt.beta2], "eps": opt.eps, **corrected}
    if opt.name in ("adamax", "lion"):
        return {"betas": [opt.beta1, opt.beta2]} | ({"eps": opt.eps} if opt.name == "adamax" else {})
    if opt.name == "rmsprop":
        if opt.initial_accumulator or opt.momentum or opt.centered:
            raise Unsupported("MLX's RMSprop has no momentum, no centered form and no initial square average")
        return {"alpha": opt.rho, "eps": opt.eps}
    if opt.name == "adagrad":
        if opt.initial_accumulator:
            raise Unsupported("MLX's Adagrad starts its sum of squares at 0 and takes no initial value")
        return {"eps": opt.eps}
    if opt.name == "adadelta":
        return {"rho": opt.rho, "eps": opt.eps}
    if opt.name == "adafactor":
        # Overrides relative_step=True, under which Adafactor ignores the given learning_rate
        # (optimizers.py:770, _compute_learning_rate); its scale_parameter=True is the spec's max(10⁻³, RMS(p)).
        return {"relative_step": False}
    return {}
