"""PaddlePaddle adapter: ``paddle.nn.Linear`` (an MLP: ``paddle.nn.Sequential`` of them) trained with
``paddle.optimizer`` in dygraph (eager) mode.

The nominal λ goes unchanged into the optimizer's ``weight_decay=`` (a float, which Paddle makes
``paddle.regularizer.L2Decay(λ)``: optimizer.py:269-270; or, as VARIANTS, ``L2Decay(λ)`` and
``L1Decay(λ)`` themselves), into ``paddle.optimizer.AdamW``'s ``weight_decay`` and LAMB's
``lamb_weight_decay`` for the decoupled form (LAMB's only decay argument, for ``weight_decay`` too),
or into ``paddle.ParamAttr(regularizer=L2Decay(λ))`` of each decayed layer parameter (``regularizer``).
The parameters that must not decay go in a param group of their own with ``weight_decay=0.0``, or,
for AdamW and LAMB, are left out by ``apply_decay_param_fun`` / ``exclude_from_weight_decay_fn``.
Penalties in the loss are written with paddle ops and differentiated by autograd.
"""

import functools

import paddle

from backends import _code, _layout
from backends._calls import Calls
from backends.contract import Trajectory, Unsupported

SWEEPABLE = ()  # one case per call
RATIO_TARGET = 10.0
OWN_BEHAVIOURS = {
    ("adamax", None): (
        "paddle.optimizer.Adamax adds ε to the decayed maximum, u = max(|g|, β₂u + ε), and divides by u "
        "(phi/kernels/impl/adamax_kernel_impl.h:63-64: eigen_grad.abs().cwiseMax((beta2_ * eigen_inf_norm) "
        "+ epsilon_)): neither ε inside max(β₂u, |g| + ε) nor outside it"
    ),
    ("lamb", None): (
        "paddle.optimizer.Lamb applies its trust ratio ‖w‖/‖r‖ only to a parameter whose weight decay is above 0, "
        "or with always_adapt=True (phi/kernels/impl/lamb_kernel_impl.h:262: if (weight_decay > "
        "static_cast<MT>(0) || always_adapt)): a parameter spared by exclude_from_weight_decay_fn, or every "
        "parameter at lamb_weight_decay=0.0, takes the bias-corrected Adam step r unscaled"
    ),
}
# Every optimizer with a weight_decay argument takes a regularizer object as well as a float; a layer's
# ParamAttr takes either regularizer; and a user may set both a ParamAttr regularizer and the optimizer's
# weight_decay, of which Paddle applies the ParamAttr one to that parameter (optimizer.py:1775-1779).
VARIANTS = {
    ("sgd", "weight_decay"): {"l2decay": "weight_decay=L2Decay(λ)", "l1decay": "weight_decay=L1Decay(λ)"},
    ("momentum", "weight_decay"): {"l2decay": "weight_decay=L2Decay(λ)", "l1decay": "weight_decay=L1Decay(λ)"},
    ("nesterov", "weight_decay"): {"l2decay": "weight_decay=L2Decay(λ)", "l1decay": "weight_decay=L1Decay(λ)"},
    ("adam", "weight_decay"): {"l2decay": "weight_decay=L2Decay(λ)", "l1decay": "weight_decay=L1Decay(λ)"},
    ("rmsprop", "weight_decay"): {"l2decay": "weight_decay=L2Decay(λ)", "l1decay": "weight_decay=L1Decay(λ)"},
    ("adagrad", "weight_decay"): {"l2decay": "weight_decay=L2Decay(λ)", "l1decay": "weight_decay=L1Decay(λ)"},
    ("adadelta", "weight_decay"): {"l2decay": "weight_decay=L2Decay(λ)", "l1decay": "weight_decay=L1Decay(λ)"},
    ("adamax", "weight_decay"): {"l2decay": "weight_decay=L2Decay(λ)", "l1decay": "weight_decay=L1Decay(λ)"},
    ("radam", "weight_decay"): {"l2decay": "weight_decay=L2Decay(λ)", "l1decay": "weight_decay=L1Decay(λ)"},
    ("sgd", "regularizer"): {
        "l1decay": "ParamAttr(regularizer=L1Decay(λ))",
        "with_weight_decay": "ParamAttr(regularizer=L2Decay(λ)) and the optimizer's weight_decay=λ",
    },
    ("momentum", "regularizer"): {
        "l1decay": "ParamAttr(regularizer=L1Decay(λ))",
        "with_weight_decay": "ParamAttr(regularizer=L2Decay(λ)) and the optimizer's weight_decay=λ",
    },
    ("adam", "regularizer"): {
        "l1decay": "ParamAttr(regularizer=L1Decay(λ))",
        "with_weight_decay": "ParamAttr(regularizer=L2Decay(λ)) and the optimizer's weight_decay=λ",
    },
}


def versions():
    """The installed PaddlePaddle version."""
    return {"paddlepaddle": paddle.__version__}


def train(case, arrays):
    """``case`` trained on ``arrays``: the model's parameters before and after every step."""
    calls = Calls(paddle=paddle)
    model = _model(case, arrays, calls)
    loss_fn = _loss(case, calls)
    roles = _layout.roles(case, _pairs(model))
    penalty = _penalty(case, roles, calls)
    optimizer, scheduler = _optimizer(case, roles, calls)
    calls.note("loss.backward(); optimizer.step(); optimizer.clear_grad() every step")

    def objective(xb, yb):
        loss = loss_fn(model(xb), yb)
        return loss + penalty() if penalty else loss

    return _trained(case, arrays, model, objective, optimizer, scheduler, calls.statements)


def train_code(case, arrays, statements):
    """``case``'s model and loss trained by the ``optimizer`` and ``scheduler`` that ``statements`` build
    (their call and code run once, with ``paddle`` and ``model``), the penalties they add to ``loss``
    added at every step."""
    model = _model(case, arrays, Calls(paddle=paddle))
    loss_fn = _loss(case, Calls(paddle=paddle))
    namespace = _code.run(statements, {"paddle": paddle, "model": model})
    if namespace["model"] is not model:  # the statements made the model anew
        model = namespace["model"]
        if case.model.init == "shared":
            _start(case, arrays, model)
    add = _code.penalized(statements, namespace)

    def objective(xb, yb):
        return add(loss_fn(model(xb), yb))

    optimizer = namespace["optimizer"]
    # A Paddle LRScheduler is stepped by its user's loop: the one the statements name, or the one given
    # in place of the optimizer's learning rate, which the optimizer keeps (optimizer.py: _learning_rate).
    given = getattr(optimizer, "_learning_rate", None)
    scheduler = namespace.get("scheduler", given if isinstance(given, paddle.optimizer.lr.LRScheduler) else None)
    return _trained(case, arrays, model, objective, optimizer, scheduler, tuple(statements))


def _trained(case, arrays, model, objective, optimizer, scheduler, statements):
    """The Trajectory of ``model`` before and after every step of ``optimizer`` on ``objective(xb, yb)``
    over the batches, ``scheduler`` (if any) stepped after each, with ``statements``."""
    order = arrays.batch_order()
    dtype = case.model.dtype
    xs = paddle.to_tensor(arrays.x_train[order].astype(dtype))
    ys = paddle.to_tensor(arrays.y_train[order][..., None].astype(dtype))
    pairs = _pairs(model)
    rows = _layout.Rows(case, dtype)
    rows.write(0, [(weight.numpy(), bias.numpy()) for weight, bias in pairs])
    for step in range(case.steps):
        objective(xs[step], ys[step]).backward()
        optimizer.step()
        optimizer.clear_grad()
        if scheduler:
            scheduler.step()
        rows.write(step + 1, [(weight.numpy(), bias.numpy()) for weight, bias in pairs])
    return Trajectory(
        w=rows.w,
        b=rows.b,
        statements=statements,
        hyperparameter_dtype=_FLOAT_ATTRIBUTES.get(type(optimizer).__name__) if dtype == "float64" else None,
    )


def _pairs(model):
    """[(weight, bias)] of the model's ``nn.Linear`` layers, input first: Paddle's weight is the layout's W."""
    return [
        (layer.weight, layer.bias)
        for layer in model.sublayers(include_self=True)
        if isinstance(layer, paddle.nn.Linear)
    ]


def _model(case, arrays, calls):
    """``paddle.nn.Linear(dim, 1)``, or a ``paddle.nn.Sequential`` of ``nn.Linear`` layers with
    ``nn.ReLU``/``nn.Tanh`` between them, in the case's dtype (``paddle.set_default_dtype``: Linear
    makes its parameters in the default dtype): Paddle's own seeded init (native: weight Xavier
    uniform, bias 0), or the shared initial weights. Paddle's weight is (fan_in, fan_out), the
    layout's W. For ``regularizer``, each decayed parameter's ParamAttr carries the regularizer."""
    calls("paddle.set_default_dtype", case.model.dtype)
    if case.model.init == "native":
        calls("paddle.seed", case.data.seed)
    attrs = _attributes(case, calls)
    if case.model.kind == "linear":
        model = calls.let("model", "paddle.nn.Linear", case.data.dim, 1, **attrs[0])
        names = ["model"]
    else:
        activation = {"relu": "paddle.nn.ReLU", "tanh": "paddle.nn.Tanh"}[case.model.activation]
        modules = []
        for layer, attr in zip(case.layers, attrs):
            modules.append(calls("paddle.nn.Linear", layer.fan_in, layer.fan_out, **attr))
            modules += [calls(activation)] if layer.hidden else []
        model = calls.let("model", "paddle.nn.Sequential", *modules)
        names = [f"model[{index}]" for index, module in enumerate(modules) if isinstance(module, paddle.nn.Linear)]
    for name, (weight, bias) in zip(names, _pairs(model)):
        calls.name(weight, f"{name}.weight")
        calls.name(bias, f"{name}.bias")
    if case.model.init == "shared":
        _start(case, arrays, model)
        calls.note("every weight.set_value(W) and bias.set_value(b) from the shared arrays")
    return model


def _start(case, arrays, model):
    """Set ``model``'s parameters to the shared initial weights (Paddle's weight is the layout's W)."""
    for (weight, bias), (w0, b0) in zip(_pairs(model), _layout.blocks(case, arrays.w0, arrays.b0), strict=True):
        weight.set_value(w0.astype(case.model.dtype))
        bias.set_value(b0.astype(case.model.dtype))


def _attributes(case, calls):
    """Each layer's ``weight_attr``/``bias_attr`` keywords: for ``regularizer``, a
    ``paddle.ParamAttr(regularizer=...)`` on each parameter whose role decays (a bias left to the
    default gets none, as Linear's default ``bias_attr=None`` has none); else no keywords."""
    penalty = case.penalty
    if penalty.kind != "regularizer":
        return [{} for _ in case.layers]
    kind = "L1Decay" if penalty.variant == "l1decay" else "L2Decay"
    attrs = []
    for layer in case.layers:
        attr = {}
        for key, role in zip(("weight_attr", "bias_attr"), layer.roles):
            if penalty.decays(role):
                regularizer = calls(f"paddle.regularizer.{kind}", penalty.strength)
                attr[key] = calls("paddle.ParamAttr", regularizer=regularizer)
        attrs.append(attr)
    return attrs


def _loss(case, calls):
    """(pred, y) -> the batch's loss: mean ½e² (half_mse), mean e² (mse, and native: nn.MSELoss)."""
    mse = paddle.nn.functional.mse_loss
    if case.train.loss == "native":
        native = calls.let("loss_fn", "paddle.nn.MSELoss")
        calls.loss("loss = loss_fn(model(x), y)")
        return native
    if case.train.loss == "mse":
        calls.loss("loss = paddle.nn.functional.mse_loss(model(x), y)")
        return mse
    calls.loss("loss = 0.5 * paddle.nn.functional.mse_loss(model(x), y)")
    return lambda pred, y: 0.5 * mse(pred, y)


def _penalty(case, roles, calls):
    """The penalty added to the loss, () -> (λ/2)·Σp² (l2_loss) or λ·Σ|p| (l1_loss) over the
    parameters of the roles the case decays; None for any other kind (``regularizer`` is the
    layers' ParamAttr, which the optimizer applies)."""
    penalty = case.penalty
    if not penalty.in_loss:
        return None
    params = [parameter for role, parameter in roles if penalty.decays(role)]
    names = [calls.shown(parameter) for parameter in params]
    op, scale = ("square", penalty.strength / 2) if penalty.kind == "l2_loss" else ("abs", penalty.strength)
    calls.penalty(f"loss = loss + {scale!r} * ({' + '.join(f'paddle.sum(paddle.{op}({n}))' for n in names)})")
    apply = getattr(paddle, op)
    return lambda: scale * functools.reduce(lambda a, b: a + b, (paddle.sum(apply(p)) for p in params))


# decaylens optimizer -> the paddle.optimizer class a Paddle user trains it with.
_CLASSES = {
    "sgd": "SGD",
    "momentum": "Momentum",
    "nesterov": "Momentum",
    "adam": "Adam",
    "rmsprop": "RMSProp",
    "adagrad": "Adagrad",
    "adadelta": "Adadelta",
    "adamax": "Adamax",
    "nadam": "NAdam",
    "radam": "RAdam",
    "lamb": "Lamb",
}


def _optimizer(case, roles, calls):
    """The ``paddle.optimizer`` class of the case's optimizer over the model's parameters, and its
    scheduler (None for a constant lr): λ as its ``weight_decay`` (``AdamW`` for Adam's decoupled form,
    LAMB's ``lamb_weight_decay``), the spared parameters in a group of their own with ``weight_decay=0.0``
    (AdamW: ``apply_decay_param_fun``; LAMB: ``exclude_from_weight_decay_fn``)."""
    opt, penalty = case.optimizer, case.penalty
    if opt.name not in _CLASSES:
        raise Unsupported(f"Paddle {paddle.__version__} has no {opt.name} optimizer in paddle.optimizer")
    if penalty.kind == "lr_decay":
        raise Unsupported("Paddle's optimizers have no argument users mistake for weight decay (no lr_decay)")
    name = _CLASSES[opt.name]
    if penalty.kind in ("decoupled", "adamw") and opt.name not in ("adam", "lamb"):
        raise Unsupported(f"Paddle's {name} has no decoupled form; weight_decay is its only decay argument")
    name = "AdamW" if penalty.kind in ("decoupled", "adamw") and opt.name == "adam" else name
    scheduler = _schedule(case, None, calls)
    kwargs = {"learning_rate": scheduler or opt.lr, **_hyperparameters(opt)}
    parameters = [parameter for _, parameter in roles]
    spared = [parameter for role, parameter in roles if penalty.decays(role) is False]
    given = penalty.in_optimizer or penalty.variant == "with_weight_decay"
    decay = penalty.strength
    if penalty.variant in ("l2decay", "l1decay") and penalty.kind == "weight_decay":
        decay = calls(f"paddle.regularizer.{'L2Decay' if penalty.variant == 'l2decay' else 'L1Decay'}", decay)
    if name in ("AdamW", "Lamb"):
        key = "weight_decay" if name == "AdamW" else "lamb_weight_decay"
        if given and not penalty.omit_strength:
            kwargs[key] = decay
        elif not given:
            kwargs[key] = 0.0  # overrides AdamW's and Lamb's default decay of 0.01: no decay asked for
        if given and spared:
            # The names are read when the code runs, not written into it: Paddle names parameters
            # from a process-wide counter, so a model made anew has other names.
            calls.code(f"spared = {calls.shown(spared)}")
            spared_names = [p.name for p in spared]
            calls.code("spared_names = [p.name for p in spared]")
            if name == "AdamW":
                decays = calls.name(lambda n: n not in spared_names, "lambda n: n not in spared_names")
                kwargs["apply_decay_param_fun"] = decays
            else:
                exclude = calls.name(lambda p: p.name in spared_names, "lambda p: p.name in spared_names")
                kwargs["exclude_from_weight_decay_fn"] = exclude
    elif given:
        if not penalty.omit_strength:
            kwargs["weight_decay"] = decay
        # Paddle decays every parameter handed to the optimizer: decay_bias = "default" is true.
        if spared and penalty.in_optimizer:
            decayed = [parameter for parameter in parameters if all(parameter is not s for s in spared)]
            for text, group in (("decayed", decayed), ("spared", spared)):
                calls.code(f"{text} = {calls.shown(group)}")
                calls.name(group, text)
            parameters = [{"params": decayed}, {"params": spared, "weight_decay": 0.0}]
    optimizer = calls.let("optimizer", f"paddle.optimizer.{name}", parameters=parameters, **kwargs)
    return optimizer, scheduler


# The optimizers whose kernels take their hyperparameters (μ, ρ, β₁, β₂, ε, the fused L2 coefficient
# of Momentum, AdamW's coeff, LAMB's weight_decay) as C++ float, rounded to float32 in a float64 run
# (paddle/phi/kernels/*_kernel.h); SGD's only hyperparameter is the lr tensor, and Adam's β and ε are
# Scalars, kept in double.
_FLOAT_ATTRIBUTES = {
    name: "float32"
    for name in ("Momentum", "RMSProp", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam", "Lamb", "AdamW")
}


def _schedule(case, optimizer, calls):
    """The ``paddle.optimizer.lr`` scheduler of ``case.schedule``, the optimizer's ``learning_rate``
    (``_optimizer`` calls this, with no optimizer yet), stepped after every ``optimizer.step()``: made
    at count 0 (LRScheduler's ``__init__`` steps once from last_epoch = −1), so the first step reads
    k = 0; None for a constant lr. The warmup is ``LinearWarmup`` from 0 around the cosine of the
    steps left, as Paddle's docs compose them."""
    schedule, steps, lr = case.schedule, case.steps, case.optimizer.lr
    if schedule.kind == "step":
        found = calls.let(
            "scheduler", "paddle.optimizer.lr.StepDecay", lr, step_size=schedule.interval, gamma=schedule.factor
        )
    elif schedule.kind == "cosine":
        found = calls.let(
            "scheduler", "paddle.optimizer.lr.CosineAnnealingDecay", lr, steps, eta_min=schedule.floor * lr
        )
    elif schedule.kind == "warmup_cosine":
        cosine = calls(
            "paddle.optimizer.lr.CosineAnnealingDecay", lr, steps - schedule.warmup, eta_min=schedule.floor * lr
        )
        found = calls.let("scheduler", "paddle.optimizer.lr.LinearWarmup", cosine, schedule.warmup, 0.0, lr)
    else:
        return None
    calls.note("scheduler.step() after every optimizer.step(): the schedule counts optimizer steps")
    return found


def _hyperparameters(opt):
    """The optimizer's own hyperparameters under paddle.optimizer's names."""
    if opt.name in ("momentum", "nesterov"):
        return {"momentum": opt.momentum} | ({"use_nesterov": True} if opt.name == "nesterov" else {})
    if opt.name in ("adam", "adamax", "nadam", "radam", "lamb"):
        own = {"momentum_decay": opt.momentum_decay} if opt.name == "nadam" else {}
        return {"beta1": opt.beta1, "beta2": opt.beta2, "epsilon": opt.eps, **own}
    if opt.name == "rmsprop":
        if opt.initial_accumulator:
            raise Unsupported("Paddle's RMSProp starts its mean square at 0 and takes no initial value")
        return {"rho": opt.rho, "epsilon": opt.eps, "momentum": opt.momentum, "centered": opt.centered}
    if opt.name == "adagrad":
        return {"epsilon": opt.eps, "initial_accumulator_value": opt.initial_accumulator}
    if opt.name == "adadelta":
        return {"rho": opt.rho, "epsilon": opt.eps}
    return {}
