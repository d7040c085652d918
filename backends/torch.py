"""PyTorch adapter: ``torch.nn.Linear`` (an MLP: ``torch.nn.Sequential`` of them) trained with ``torch.optim``.

The nominal λ goes unchanged into ``weight_decay=`` of the ``torch.optim`` class of each
optimizer PyTorch ships (SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta, Adamax, NAdam, RAdam,
Adafactor), into ``decoupled_weight_decay=True`` forms, or into Adagrad's ``lr_decay``; the
parameters that must not decay go in a param group of their own with ``weight_decay=0``. Penalties in the loss
are written with torch ops and differentiated by autograd. PyTorch has no layer regularizer API.
"""

import functools
import inspect
import math
import operator

import torch

from backends import _code, _layout
from backends._calls import Calls
from backends.contract import Trajectory, Unsupported

SWEEPABLE = ()  # one case per call
RATIO_TARGET = 10.0
OWN_BEHAVIOURS = {}
VARIANTS = {}


def versions():
    """The installed torch version."""
    return {"torch": torch.__version__}


def train(case, arrays):
    """``case`` trained on ``arrays``: the model's parameters before and after every step."""
    dtype = getattr(torch, case.model.dtype)
    calls = _calls()
    model = _model(case, arrays, dtype, calls)
    loss_fn = _loss(case, calls)
    roles = _layout.roles(case, _pairs(model))
    penalty = _penalty(case, roles, calls)
    optimizer = _optimizer(case, roles, calls)
    scheduler = _schedule(case, optimizer, calls)

    def objective(xb, yb):
        loss = loss_fn(model(xb), yb)
        return loss + penalty() if penalty else loss

    w, b = _steps(case, arrays, model, objective, optimizer, scheduler)
    return Trajectory(w=w, b=b, statements=calls.statements, hyperparameter_dtype=_state_dtype(optimizer, dtype))


def train_code(case, arrays, statements):
    """``case``'s model and loss trained by the ``optimizer`` and ``scheduler`` that ``statements`` build
    (their call and code run once, with ``torch``, ``functools``, ``math`` and ``model``), the penalties they add
    to ``loss`` added at every step."""
    dtype = getattr(torch, case.model.dtype)
    model = _model(case, arrays, dtype, _calls())
    loss_fn = _loss(case, _calls())
    namespace = _code.run(statements, {"torch": torch, "functools": functools, "math": math, "model": model})
    if namespace["model"] is not model:  # the statements made the model anew
        model = namespace["model"]
        if case.model.init == "shared":
            _start(case, arrays, model)
    add = _code.penalized(statements, namespace)

    def objective(xb, yb):
        return add(loss_fn(model(xb), yb))

    optimizer = namespace["optimizer"]
    w, b = _steps(case, arrays, model, objective, optimizer, namespace.get("scheduler"))
    return Trajectory(w=w, b=b, statements=tuple(statements), hyperparameter_dtype=_state_dtype(optimizer, dtype))


def _calls():
    """A recorder of the calls this adapter makes."""
    return Calls(torch=torch, functools=functools)


def _steps(case, arrays, model, objective, optimizer, scheduler):
    """(w, b) of ``model`` before and after every step of ``optimizer`` on ``objective(xb, yb)`` over the
    batches, ``scheduler`` (if any) stepped after each."""
    dtype = getattr(torch, case.model.dtype)
    # Every step's batch, gathered once: (steps, batch size, dim) and targets (steps, batch
    # size, 1) shaped like the predictions.
    order = arrays.batch_order()
    xs = torch.from_numpy(arrays.x_train[order]).to(dtype)
    ys = torch.from_numpy(arrays.y_train[order][..., None]).to(dtype)
    rows = _layout.Rows(case, case.model.dtype)
    rows.write(0, _numpy(model))
    for step, (xb, yb) in enumerate(zip(xs, ys), start=1):
        optimizer.zero_grad()
        objective(xb, yb).backward()
        optimizer.step()
        if scheduler:
            scheduler.step()
        rows.write(step, _numpy(model))
    return rows.w, rows.b


def _pairs(model):
    """[(weight, bias)] of the model's ``nn.Linear`` layers, input first: each weight (out, in) is Wᵀ."""
    return [(layer.weight, layer.bias) for layer in model.modules() if isinstance(layer, torch.nn.Linear)]


def _numpy(model):
    """[(W (fan_in, fan_out), b)] of the model's layers, input first, as NumPy views of its parameters."""
    return [(weight.detach().numpy().T, bias.detach().numpy()) for weight, bias in _pairs(model)]


def _model(case, arrays, dtype, calls):
    """``torch.nn.Linear(dim, 1)``, or for an MLP a ``torch.nn.Sequential`` of ``nn.Linear`` layers
    with ``nn.ReLU``/``nn.Tanh`` between them: its own seeded init (native; every ``nn.Linear``:
    weight and bias ~ U(±1/√fan_in)), or the shared initial weights."""
    if case.model.init == "native":
        calls("torch.manual_seed", case.data.seed)
    if case.model.kind == "linear":
        model = calls.let("model", "torch.nn.Linear", case.data.dim, 1, dtype=dtype)
        calls.name(model.weight, "model.weight")
        calls.name(model.bias, "model.bias")
    else:
        activation = {"relu": "torch.nn.ReLU", "tanh": "torch.nn.Tanh"}[case.model.activation]
        modules = []
        for layer in case.layers:
            modules.append(calls("torch.nn.Linear", layer.fan_in, layer.fan_out, dtype=dtype))
            modules += [calls(activation)] if layer.hidden else []
        model = calls.let("model", "torch.nn.Sequential", *modules)
        for index, linear in enumerate(modules):
            if isinstance(linear, torch.nn.Linear):
                calls.name(linear.weight, f"model[{index}].weight")
                calls.name(linear.bias, f"model[{index}].bias")
    if case.model.init == "shared":
        _start(case, arrays, model)
        calls.note("every weight and bias copied from the shared arrays")
    return model


def _start(case, arrays, model):
    """Copy the shared initial weights into ``model``'s parameters (each layer's W is its weight's transpose)."""
    with torch.no_grad():
        for (weight, bias), (w0, b0) in zip(_pairs(model), _layout.blocks(case, arrays.w0, arrays.b0), strict=True):
            weight.copy_(torch.from_numpy(w0).T)
            bias.copy_(torch.from_numpy(b0))


def _loss(case, calls):
    """(pred, y) -> the batch's loss: mean ½e² (half_mse), mean e² (mse, and native: nn.MSELoss)."""
    mse = torch.nn.functional.mse_loss
    if case.train.loss == "native":
        native = calls.let("loss_fn", "torch.nn.MSELoss")
        calls.loss("loss = loss_fn(model(x), y)")
        return native
    if case.train.loss == "mse":
        calls.loss("loss = torch.nn.functional.mse_loss(model(x), y)")
        return mse
    calls.loss("loss = 0.5 * torch.nn.functional.mse_loss(model(x), y)")
    return lambda pred, y: 0.5 * mse(pred, y)


def _penalty(case, roles, calls):
    """The penalty added to the loss, () -> (λ/2)·Σp² (l2_loss) or λ·Σ|p| (l1_loss) over the
    parameters of the roles the case decays; None for any other kind."""
    penalty = case.penalty
    if penalty.kind == "regularizer":
        raise Unsupported("PyTorch has no layer regularizer API; write the penalty into the loss (l2_loss)")
    if not penalty.in_loss:
        return None
    params = [parameter for role, parameter in roles if penalty.decays(role)]
    names = [calls.shown(parameter) for parameter in params]
    if penalty.kind == "l2_loss":
        scale = penalty.strength / 2
        calls.penalty(f"loss = loss + {scale!r} * ({' + '.join(f'{n}.pow(2).sum()' for n in names)})")
        return lambda: scale * _sum(p.pow(2).sum() for p in params)
    calls.penalty(f"loss = loss + {penalty.strength!r} * ({' + '.join(f'{n}.abs().sum()' for n in names)})")
    return lambda: penalty.strength * _sum(p.abs().sum() for p in params)


def _sum(terms):
    """t₁ + t₂ + …, without the extra op of ``sum``'s start value 0."""
    return functools.reduce(operator.add, terms)


# decaylens optimizer -> the torch.optim class a PyTorch user trains it with.
_CLASSES = {
    "sgd": "SGD", "momentum": "SGD", "nesterov": "SGD", "adam": "Adam", "rmsprop": "RMSprop", "adagrad": "Adagrad",
    "adadelta": "Adadelta", "adamax": "Adamax", "nadam": "NAdam", "radam": "RAdam", "adafactor": "Adafactor",
}  # fmt: skip


def _optimizer(case, roles, calls):
    """The ``torch.optim`` class of the case's optimizer over the model's parameters: λ as its
    ``weight_decay`` (``AdamW``, or ``decoupled_weight_decay=True``, for the decoupled form; Adagrad's
    ``lr_decay`` for lr_decay), the spared parameters in a group of their own with ``weight_decay=0``."""
    opt, penalty = case.optimizer, case.penalty
    if opt.name not in _CLASSES:
        raise Unsupported(f"PyTorch {torch.__version__} has no {opt.name} optimizer in torch.optim")
    name, kwargs = _CLASSES[opt.name], {"lr": opt.lr, **_hyperparameters(opt)}
    if penalty.kind in ("decoupled", "adamw"):
        if opt.name == "adam":
            name = "AdamW"
        elif opt.name in ("nadam", "radam"):
            kwargs["decoupled_weight_decay"] = True
        elif opt.name != "adafactor":  # Adafactor's weight_decay is its only decay argument
            raise Unsupported(f"PyTorch's {name} has no decoupled form; weight_decay is its only decay argument")
    if penalty.kind == "lr_decay":
        if opt.name != "adagrad":
            raise Unsupported(f"PyTorch's {name} has no lr_decay argument (only Adagrad has)")
        kwargs["lr_decay"] = penalty.strength
    elif penalty.in_optimizer and not penalty.omit_strength:
        kwargs["weight_decay"] = penalty.strength
    # Torch decays every parameter handed to the optimizer: decay_bias = "default" is true.
    spared = [parameter for role, parameter in roles if penalty.decays(role) is False]
    if penalty.in_optimizer and penalty.kind != "lr_decay" and spared:
        decayed = [parameter for role, parameter in roles if penalty.decays(role) is not False]
        for text, group in (("decayed", decayed), ("spared", spared)):
            calls.code(f"{text} = {calls.shown(group)}")
            calls.name(group, text)
        groups = [{"params": decayed}, {"params": spared, "weight_decay": 0.0}]
    else:
        groups = [parameter for _, parameter in roles]
    return calls.let("optimizer", f"torch.optim.{name}", groups, **kwargs)


def _schedule(case, optimizer, calls):
    """The ``torch.optim.lr_scheduler`` of ``case.schedule``, stepped after every ``optimizer.step()``
    (its epoch count k = 0 is the first step's, k the (k+1)-th's); None for a constant lr. A linear
    warmup from 0 has no scheduler class (``LinearLR`` starts above 0), so it is the ``LambdaLR``
    of the multiplier a PyTorch user writes for it (as Hugging Face's cosine-with-warmup does)."""
    schedule, steps, lr = case.schedule, case.steps, case.optimizer.lr
    if schedule.kind == "step":
        found = calls.let("scheduler", "torch.optim.lr_scheduler.StepLR", optimizer, schedule.interval, schedule.factor)
    elif schedule.kind == "cosine":
        found = calls.let(
            "scheduler", "torch.optim.lr_scheduler.CosineAnnealingLR", optimizer, steps, eta_min=schedule.floor * lr
        )
    elif schedule.kind == "warmup_cosine":
        calls.code(inspect.getsource(_warmup_cosine))  # the multiplier as a user defines it, its docstring too
        calls.name(_warmup_cosine, "_warmup_cosine")
        multiplier = calls.let(
            "multiplier", "functools.partial", _warmup_cosine, warmup=schedule.warmup, steps=steps, floor=schedule.floor
        )
        found = calls.let("scheduler", "torch.optim.lr_scheduler.LambdaLR", optimizer, multiplier)
    else:
        return None
    calls.note("scheduler.step() after every optimizer.step(): the schedule counts optimizer steps")
    return found


def _warmup_cosine(k, warmup, steps, floor):
    """The multiplier a PyTorch user hands ``LambdaLR`` for a linear warmup from 0, then a cosine to
    ``floor``: k/warmup while k < warmup, then floor + (1 − floor)·½(1 + cos(π·(k − warmup)/(steps − warmup)))."""
    if k < warmup:
        return k / warmup
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(k - warmup, steps - warmup) / (steps - warmup)))


def _state_dtype(optimizer, dtype):
    """The optimizer's state dtype when coarser than the parameters', else None: NAdam keeps its
    momentum product μ₁⋯μₜ in torch's default dtype, float32, whatever the parameters' (nadam.py:
    ``torch.ones((), dtype=_get_scalar_dtype())``). Step counters, read back as exact integers, do not count."""
    coarser = {
        str(value.dtype).removeprefix("torch.")
        for state in optimizer.state.values()
        for key, value in state.items()
        if key != "step" and torch.is_tensor(value) and value.is_floating_point() and value.dtype != dtype
    }
    return min(coarser, default=None)


def _hyperparameters(opt):
    """The optimizer's own hyperparameters under torch.optim's names (its defaults left as they are
    where the spec has no such key: Adafactor's β₂ schedule −0.8, ε's and clipping threshold d)."""
    if opt.name in ("momentum", "nesterov"):
        return {"momentum": opt.momentum} | ({"nesterov": True} if opt.name == "nesterov" else {})
    if opt.name in ("adam", "adamax", "nadam", "radam"):
        own = {"momentum_decay": opt.momentum_decay} if opt.name == "nadam" else {}
        return {"betas": (opt.beta1, opt.beta2), "eps": opt.eps, **own}
    if opt.name == "rmsprop":
        if opt.initial_accumulator:
            raise Unsupported("PyTorch's RMSprop starts its square average at 0 and takes no initial value")
        return {"alpha": opt.rho, "eps": opt.eps, "momentum": opt.momentum, "centered": opt.centered}
    if opt.name == "adagrad":
        return {"initial_accumulator_value": opt.initial_accumulator, "eps": opt.eps}
    if opt.name == "adadelta":
        return {"rho": opt.rho, "eps": opt.eps}
    return {}
