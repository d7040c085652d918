"""MXNet adapter: ``gluon.nn.Dense(1)``, or an MLP of ``gluon.nn.Dense`` layers in a
``gluon.nn.HybridSequential``, trained with ``autograd`` and ``gluon.Trainer`` as a Gluon user would.

The nominal λ goes unchanged into the Trainer's ``'wd'``; the parameters that must not decay
get ``wd_mult = 0`` through ``net.collect_params(regex).setattr('wd_mult', 0.0)``, the regex a
Gluon user writes (``'.*bias'``, a layer's name prefix). The loss, with any penalty, is written
with ``F`` ops in one HybridBlock around the net and differentiated by autograd. MXNet 1.9.1 has
no AdamW optimizer class, only the ``mx.nd.contrib.adamw_update`` operator, which
``ContribAdamW`` (``backends/_mxnet_adamw.py``) hands to the Trainer. Gluon has no layer regularizer API.

In float64 the weights, gradients and optimizer states are float64, but MXNet's update
operators take their hyperparameters (lr, wd, rescale_grad, momentum, β₁, β₂, ε) as C++
``float``, so those are rounded to float32 (``SGDParam``, ``AdamParam``, ``AdamWParam``).
"""

import functools
import math
import operator
import os

# Overrides MXNet's default engine (ThreadedEnginePerDevice, read when mxnet is imported),
# which hands every operation to a worker thread: for a 200-weight model the hand-over costs
# more than the operation. NaiveEngine runs each one in the calling thread, in order, with
# the same kernels.
os.environ.setdefault("MXNET_ENGINE_TYPE", "NaiveEngine")

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

from backends import _code, _layout
from backends._calls import Calls
from backends._mxnet_adamw import ContribAdamW  # noqa: F401 (registers 'contribadamw' with mx.optimizer)
from backends.contract import Trajectory, Unsupported

SWEEPABLE = ()  # one case per call
RATIO_TARGET = 10.0
OWN_BEHAVIOURS = {
    ("nesterov", "weight_decay"): (
        "mx.optimizer.NAG calls nag_mom_update(weight, grad, mom, out=weight), whose kernel writes the new "
        "weight and then takes the momentum's decay from it (optimizer_op-inl.h, NAGMomKernel): the decay "
        "enters the momentum with the weight after the step"
    ),
    ("nadam", None): (
        "mx.optimizer.Nadam keeps one momentum schedule for all parameters (optimizer.py:1989, 2012: "
        "self.m_schedule), advanced once per parameter per step: with a weight and a bias, twice a step"
    ),
}
# The two ways MXNet code calls mx.nd.contrib.adamw_update (ContribAdamW): by default eta carries
# the scheduled lr and lr Adam's bias correction, as GluonNLP's BERTAdam does; or as its variant:
VARIANTS = {
    ("adam", "adamw"): {
        "eta_multiplier": (
            "eta = the schedule's multiplier (scheduled lr / base lr) and lr = the base lr × Adam's bias "
            "correction, as the operator documents eta ('learning rate schedule multiplier')"
        )
    }
}


def versions():
    """The installed MXNet version."""
    return {"mxnet": mx.__version__}


def train(case, arrays):
    """``case`` trained on ``arrays``: the Dense layers' parameters before and after every step."""
    calls = _calls()
    net = _model(case, arrays, calls)
    loss_fn = _loss(case, calls)
    penalty = _penalty(case, calls)
    layers = _layers(case, net)
    objective = _Objective(net, loss_fn, penalty, [layer.weight for layer in layers] + [layer.bias for layer in layers])
    # Overrides Gluon's defaults (memory planned per call, shapes checked per call): every step
    # has the same shapes, so the cached graph keeps its memory and skips the checks.
    objective.hybridize(static_alloc=True, static_shape=True)
    calls.note(
        "the loss and penalty run in one gluon.HybridBlock around net that takes each parameter's data() as an input, "
        "hybridize(static_alloc=True, static_shape=True)"
    )
    trainer = _optimizer(case, net, calls)
    calls.note(f"trainer.step({case.train.batch_size}) after loss.backward()")
    w, b = _steps(case, arrays, net, objective, trainer)
    return Trajectory(w=w, b=b, statements=calls.statements, hyperparameter_dtype="float32")


def train_code(case, arrays, statements):
    """``case``'s net and loss trained by the ``trainer`` that ``statements`` build (their call and code run
    once, with ``mx``, ``gluon``, ``math`` and ``net``), the penalties they add to ``loss`` (with ``F`` =
    ``mx.nd``) added at every step."""
    net = _model(case, arrays, _calls())
    loss_fn = _loss(case, _calls())
    # Names counted from 0, as in a new script (dense0_, dense1_, …): what a recorded collect_params regex selects.
    with mx.name.NameManager():
        namespace = _code.run(statements, {"mx": mx, "gluon": gluon, "math": math, "net": net})
    if namespace["net"] is not net:  # the statements made the net anew
        net = namespace["net"]
        if case.model.init == "shared":
            _start(case, arrays, net)
    add = _code.penalized(statements, namespace)

    def objective(batch):
        x, y = mx.nd.slice_axis(batch, axis=1, begin=0, end=-1), mx.nd.slice_axis(batch, axis=1, begin=-1, end=None)
        return add(loss_fn(mx.nd, net(x), y), F=mx.nd)

    w, b = _steps(case, arrays, net, objective, namespace["trainer"])
    return Trajectory(w=w, b=b, statements=tuple(statements), hyperparameter_dtype="float32")


def _calls():
    """A recorder of the calls this adapter makes."""
    return Calls(mx=mx, gluon=gluon)


def _steps(case, arrays, net, objective, trainer):
    """(w, b) in ``Trajectory``'s layout of ``net`` before and after every ``trainer.step(batch_size)`` on
    ``objective(batch)``, the batch's x and y side by side, over the batches."""
    dtype = case.model.dtype
    # Every step's batch, gathered once: (steps, batch size, dim + 1), the targets in the last column.
    order = arrays.batch_order()
    batches = mx.nd.array(np.concatenate([arrays.x_train, arrays.y_train[:, None]], axis=1)[order], dtype=dtype)

    # The trainer's update operators write the parameters in place (out=weight), so a NumPy view
    # of each (DLPack, no copy) reads every step's values; wait_to_read() orders the read after
    # the update under any engine. Gluon's weight is (fan_out, fan_in): its transpose is W.
    data = [(layer.weight.data(), layer.bias.data()) for layer in _layers(case, net)]
    pairs = [(_numpy_view(weight).T, _numpy_view(bias)) for weight, bias in data]
    rows = _layout.Rows(case, dtype)

    def read(row):
        for weight, bias in data:
            weight.wait_to_read()
            bias.wait_to_read()
        rows.write(row, pairs)

    read(0)
    for step in range(case.steps):
        with autograd.record():
            # One loss per example; backward() sums them and Trainer.step(batch_size) multiplies
            # the gradient by rescale_grad = 1/batch_size: the gradient of the batch mean. The
            # penalty is broadcast to every example, so it too comes out once, unscaled.
            loss = objective(batches[step])
        loss.backward()
        try:
            trainer.step(case.train.batch_size)
        except mx.base.MXNetError as error:
            if "Incompatible attr" not in str(error):
                raise
            # AdaGrad, RMSProp and AdaDelta make their state with zeros(shape, ctx): float32 (optimizer.py).
            raise Unsupported(
                f"MXNet's {type(trainer.optimizer).__name__.lower()} refuses {dtype} parameters: its state is "
                f"float32 ({str(error).splitlines()[-1].strip()[:80]})"
            ) from None
        read(step + 1)
    return rows.w, rows.b


def _model(case, arrays, calls):
    """``gluon.nn.Dense(1)``, or a ``gluon.nn.HybridSequential`` of one ``gluon.nn.Dense(width,
    activation=case.model.activation)`` per hidden layer and ``gluon.nn.Dense(1)``, initialized by
    Gluon's defaults (native, seeded) or given the shared weights, each W as Gluon's (fan_out, fan_in) Wᵀ."""
    dim, dtype = case.data.dim, case.model.dtype
    if case.model.init == "native":
        calls("mx.random.seed", case.data.seed)
    # Gluon names each block from a process-wide count (dense0_, dense1_, …, block.py _BlockScope.create):
    # a fresh NameManager gives the names a new script's net has, the same in every run.
    with mx.name.NameManager():
        if case.model.kind == "linear":
            net = calls.let("net", "gluon.nn.Dense", 1, in_units=dim, dtype=dtype)
        else:
            net = calls.let("net", "gluon.nn.HybridSequential")
            dense = []
            for layer in case.layers:
                own = {"activation": case.model.activation} if layer.hidden else {}
                dense.append(calls("gluon.nn.Dense", layer.fan_out, **own, in_units=layer.fan_in, dtype=dtype))
            calls("net.add", *dense)
    # Block.initialize()'s default: weight ~ U(-0.07, 0.07) (init.Uniform()), bias zeros
    # (Dense's bias_initializer), drawn from mx.random's seeded generator.
    calls("net.initialize")
    if case.model.init == "shared":
        _start(case, arrays, net)
        if case.model.kind == "linear":
            calls.note("net.weight.set_data(w0); net.bias.set_data(b0) with the shared arrays")
        else:
            calls.note(
                "net[i].weight.set_data(W_i.T); net[i].bias.set_data(b_i) for each layer i with the shared arrays, "
                "W_i (fan_in, fan_out)"
            )
    return net


def _start(case, arrays, net):
    """Set the shared initial weights into ``net``'s Dense layers, each W as Gluon's (fan_out, fan_in) Wᵀ."""
    dtype = case.model.dtype
    for dense, (w0, b0) in zip(_layers(case, net), _layout.blocks(case, arrays.w0, arrays.b0), strict=True):
        dense.weight.set_data(mx.nd.array(w0.T, dtype=dtype))
        dense.bias.set_data(mx.nd.array(b0, dtype=dtype))


def _layers(case, net):
    """The net's Dense layers, input layer first: the linear model's one, or the HybridSequential's."""
    return [net] if case.model.kind == "linear" else [net[index] for index in range(len(net))]


def _loss(case, calls):
    """Per-example losses ``(F, pred, y) -> loss`` of predictions (n, 1) against targets (n, 1):
    (n, 1), or (n,) from ``L2Loss``, which averages all but the batch axis."""
    if case.train.loss == "native":
        native = calls.let("loss_fn", "gluon.loss.L2Loss")  # ½e² per example
        calls.loss("loss = loss_fn(net(x), y)")
        return lambda F, pred, y: native(pred, y)
    if case.train.loss == "mse":
        calls.loss("loss = F.square(net(x) - y)")
        return lambda F, pred, y: F.square(pred - y)
    calls.loss("loss = 0.5 * F.square(net(x) - y)")
    return lambda F, pred, y: 0.5 * F.square(pred - y)


def _penalty(case, calls):
    """The penalty in the loss, ``(F, *parameters) -> penalty`` of shape (1,) of every weight, then
    every bias, input layer first: (λ/2)·Σp² (l2_loss) or λ·Σ|p| (l1_loss) over the parameters
    whose role ``case.penalty.decays``; None for any other kind, or when none decays."""
    penalty = case.penalty
    if penalty.kind == "regularizer":
        raise Unsupported("Gluon has no layer regularizer API; write the penalty into the loss (l2_loss)")
    roles = [layer.roles[0] for layer in case.layers] + [layer.roles[1] for layer in case.layers]
    decayed = [index for index, role in enumerate(roles) if penalty.decays(role)]
    if not penalty.in_loss or not decayed:
        return None
    scale, op = (penalty.strength / 2, "square") if penalty.kind == "l2_loss" else (penalty.strength, "abs")
    layers = ["net"] if case.model.kind == "linear" else [f"net[{index}]" for index in range(len(case.layers))]
    names = [f"{name}.weight.data()" for name in layers] + [f"{name}.bias.data()" for name in layers]

    def term(F, *parameters):  # the sums added in order, as shown
        return scale * functools.reduce(operator.add, [F.sum(getattr(F, op)(parameters[i])) for i in decayed])

    shown = " + ".join(f"F.sum(F.{op}({names[index]}))" for index in decayed)
    calls.penalty(f"loss = F.broadcast_add(loss, {scale!r} * ({shown}))")
    return term


class _Objective(gluon.HybridBlock):
    """``net``'s per-example loss on a batch (x and y side by side) plus the penalty on its
    ``parameters`` (every weight, then every bias), broadcast to every example: hybridized, one
    cached graph forward and backward."""

    def __init__(self, net, loss, penalty, parameters):
        super().__init__()
        self.net, self._loss, self._penalty = net, loss, penalty
        # Registered here too, so that hybrid_forward receives them: the same variables net uses.
        self._order = [f"parameter{index}" for index in range(len(parameters))]
        for name, parameter in zip(self._order, parameters):
            setattr(self, name, parameter)

    def hybrid_forward(self, F, batch, **parameters):
        x, y = F.slice_axis(batch, axis=1, begin=0, end=-1), F.slice_axis(batch, axis=1, begin=-1, end=None)
        loss = self._loss(F, self.net(x), y)
        if self._penalty is None:
            return loss
        return F.broadcast_add(loss, self._penalty(F, *(parameters[name] for name in self._order)))


def _numpy_view(array):
    """A NumPy array sharing ``array``'s memory (MXNet's DLPack export, for a CPU array)."""

    class Export:
        def __dlpack__(self, stream=None):
            return array.to_dlpack_for_read()

        def __dlpack_device__(self):
            return 1, 0  # kDLCPU, device 0

    return np.from_dlpack(Export())


# decaylens optimizer -> the name of the mx.optimizer a Gluon Trainer trains it with.
_NAMES = {
    "sgd": "sgd", "momentum": "sgd", "nesterov": "nag", "adam": "adam", "rmsprop": "rmsprop", "adagrad": "adagrad",
    "adadelta": "adadelta", "adamax": "adamax", "nadam": "nadam", "lamb": "lamb", "signum": "signum",
}  # fmt: skip


def _optimizer(case, net, calls):
    """``gluon.Trainer`` over the net's parameters with the case's ``mx.optimizer``, λ as its ``'wd'``
    (the decoupled form: ``contribadamw`` (ContribAdamW) for Adam, ``wd_lh`` for signum, LAMB's own ``wd``),
    and ``wd_mult = 0`` on the parameters ``net.collect_params(_spared(case, net))`` selects."""
    opt, penalty = case.optimizer, case.penalty
    if opt.name not in _NAMES:
        raise Unsupported(f"MXNet {mx.__version__} has no {opt.name} optimizer")
    if penalty.kind == "lr_decay":
        raise Unsupported("MXNet's optimizers have no argument users mistake for weight decay (no lr_decay)")
    name, kwargs = _NAMES[opt.name], {"learning_rate": opt.lr, **_hyperparameters(opt)}
    scheduler = _schedule(case, calls)
    kwargs |= {"lr_scheduler": scheduler} if scheduler else {}
    decay = "wd"
    if penalty.kind in ("decoupled", "adamw"):
        if opt.name == "adam":
            name = "contribadamw"
            kwargs |= {"eta_multiplier": True} if penalty.variant == "eta_multiplier" else {}
        elif opt.name == "signum":
            decay = "wd_lh"
        elif opt.name != "lamb":  # LAMB's wd is its only decay argument
            raise Unsupported(f"MXNet's {name} has no decoupled form; wd is its only decay argument")
    if penalty.in_optimizer and not penalty.omit_strength:
        kwargs[decay] = penalty.strength
    spared = _spared(case, net)
    if penalty.in_optimizer and spared:
        # Gluon decays every parameter (wd_mult = 1) unless told otherwise: a role that decays
        # (or a bias left to the default) keeps that; a spared one gets wd_mult 0, the Gluon idiom.
        calls.let("spared", "net.collect_params", spared)
        calls("spared.setattr", "wd_mult", 0.0)
    trainer = calls.let("trainer", "gluon.Trainer", calls("net.collect_params"), name, kwargs)
    # The base Optimizer's learning_rate=None stands for 0.01 (optimizer.py, Optimizer.__init__): read from the object.
    calls.defaults(
        "gluon.Trainer.optimizer_params",
        mx.optimizer.Optimizer.opt_registry[name],
        learning_rate=mx.optimizer.create(name).learning_rate,
    )
    if name == "contribadamw":
        correction = f"math.sqrt(1 - {opt.beta2!r}**t) / (1 - {opt.beta1!r}**t)"
        lr, eta = (
            (f"{opt.lr!r} * {correction}", f"lr_t / {opt.lr!r}")
            if kwargs.get("eta_multiplier")
            else (correction, "lr_t")
        )
        calls.note(
            "ContribAdamW's update at step t is mx.nd.contrib.adamw_update(weight, grad, mean, var, "
            f"rescale_grad=mx.nd.full((1,), 1/{case.train.batch_size}), lr={lr}, eta={eta}, "
            f"wd={kwargs.get('wd', 0.0)!r} * wd_mult, beta1={opt.beta1!r}, beta2={opt.beta2!r}, "
            f"epsilon={opt.eps!r}, out=weight), lr_t the optimizer's learning rate at step t"
        )
    return trainer


def _spared(case, net):
    """The regex a Gluon user hands ``collect_params`` to select the parameters whose role
    ``case.penalty.decays`` is False: ``'.*bias'`` for every bias, a layer's prefix + ``'.*'``
    for both its parameters, a parameter's own name for one, joined by ``|``; None for none.
    Run as collect_params runs it, ``re.compile(select).match(name)`` on each parameter's full
    name (block.py:404-405): the run shows what it selects."""
    decays = case.penalty.decays
    every_bias = all(decays(layer.roles[1]) is False for layer in case.layers)
    parts = [".*bias"] if every_bias else []
    for layer, dense in zip(case.layers, _layers(case, net)):
        weight, bias = decays(layer.roles[0]) is False, decays(layer.roles[1]) is False and not every_bias
        if weight and bias:
            parts.append(f"{dense.prefix}.*")
        elif weight or bias:
            parts.append((dense.weight if weight else dense.bias).name)
    return "|".join(parts) or None


# The lowest lr a FactorScheduler gives (its stop_factor_lr, lr_scheduler.py), left at its default.
_STOP_FACTOR_LR = 1e-8


def _schedule(case, calls):
    """The ``mx.lr_scheduler`` of ``case.schedule``, for the optimizer's ``lr_scheduler``: MXNet calls
    it with the optimizer's update count n (1 at the first step): ``FactorScheduler`` gives
    base·factor^⌊(n − 1)/step⌋, ``CosineScheduler`` its cosine at n (lr_scheduler.py); None for a
    constant lr."""
    schedule, lr, steps = case.schedule, case.optimizer.lr, case.steps
    if schedule.kind == "step":
        if lr * schedule.factor ** ((steps - 1) // schedule.interval) < _STOP_FACTOR_LR:
            raise Unsupported(f"MXNet's FactorScheduler stops the lr at stop_factor_lr = {_STOP_FACTOR_LR:g}")
        return calls.let("scheduler", "mx.lr_scheduler.FactorScheduler", schedule.interval, schedule.factor, base_lr=lr)
    if schedule.kind in ("cosine", "warmup_cosine"):
        return calls.let(
            "scheduler", "mx.lr_scheduler.CosineScheduler", steps, base_lr=lr, final_lr=schedule.floor * lr,
            warmup_steps=schedule.warmup if schedule.kind == "warmup_cosine" else 0,
        )  # fmt: skip
    return None


def _hyperparameters(opt):
    """The optimizer's own hyperparameters under MXNet's names (Adamax takes no ε; RMSprop's ρ is
    gamma1, and its momentum gamma2, which only the centered (Graves) form has)."""
    if opt.name in ("momentum", "nesterov", "signum"):
        return {"momentum": opt.momentum}
    if opt.name in ("adam", "nadam", "lamb"):
        own = {"schedule_decay": opt.momentum_decay} if opt.name == "nadam" else {}
        return {"beta1": opt.beta1, "beta2": opt.beta2, "epsilon": opt.eps, **own}
    if opt.name == "adamax":
        return {"beta1": opt.beta1, "beta2": opt.beta2}
    if opt.name in ("rmsprop", "adagrad") and opt.initial_accumulator:
        raise Unsupported(f"MXNet's {opt.name} starts its accumulator at 0 and takes no initial value")
    if opt.name == "rmsprop":
        if opt.momentum and not opt.centered:
            raise Unsupported("MXNet's rmsprop has a momentum (gamma2) only when centered")
        return {"gamma1": opt.rho, "epsilon": opt.eps, "centered": opt.centered} | (
            {"gamma2": opt.momentum} if opt.centered else {}
        )
    if opt.name == "adagrad":
        return {"eps": opt.eps}
    if opt.name == "adadelta":
        return {"rho": opt.rho, "epsilon": opt.eps}
    return {}
