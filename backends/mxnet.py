"""MXNet adapter: ``gluon.nn.Dense(1)`` trained with ``autograd`` and ``gluon.Trainer`` as a Gluon user would.

The nominal λ goes unchanged into the Trainer's ``'wd'``; a bias that must not decay gets
``wd_mult = 0``. The loss, with any penalty, is written with ``F`` ops in one HybridBlock
around the Dense layer and differentiated by autograd. MXNet 1.9.1 has no AdamW optimizer
class, only the ``mx.nd.contrib.adamw_update`` operator, which ``ContribAdamW`` below hands to
the Trainer. Gluon has no layer regularizer API.

In float64 the weights, gradients and optimizer states are float64, but MXNet's update
operators take their hyperparameters (lr, wd, rescale_grad, momentum, β₁, β₂, ε) as C++
``float``, so those are rounded to float32 (``SGDParam``, ``AdamParam``, ``AdamWParam``).
"""

import math
import os

# Overrides MXNet's default engine (ThreadedEnginePerDevice, read when mxnet is imported),
# which hands every operation to a worker thread: for a 200-weight model the hand-over costs
# more than the operation. NaiveEngine runs each one in the calling thread, in order, with
# the same kernels.
os.environ.setdefault("MXNET_ENGINE_TYPE", "NaiveEngine")

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
from mxnet import autograd, gluon  # noqa: E402

from harness.trajectory import Trajectory, Unsupported  # noqa: E402


def versions():
    return {"mxnet": mx.__version__}


def train(case, arrays):
    dtype = case.model.dtype
    mx.random.seed(case.data.seed)
    net, init_api = _model(case, arrays)
    loss_fn, loss_api = _loss(case)
    penalty, penalty_api = _penalty(case)
    objective = _Objective(net, loss_fn, penalty)
    # Overrides Gluon's defaults (memory planned per call, shapes checked per call): every step
    # has the same shapes, so the cached graph keeps its memory and skips the checks.
    objective.hybridize(static_alloc=True, static_shape=True)
    trainer, optimizer_api = _optimizer(case, net)
    # Every step's batch, gathered once: (steps, batch size, dim + 1), the targets in the last column.
    order = arrays.batch_order()
    batches = mx.nd.array(np.concatenate([arrays.x_train, arrays.y_train[:, None]], axis=1)[order], dtype=dtype)

    # The trainer's update operators write the parameters in place (out=weight), so a NumPy view
    # of each (DLPack, no copy) reads every step's values; wait_to_read() orders the read after
    # the update under any engine.
    weight, bias = net.weight.data(), net.bias.data()
    weight_now, bias_now = _numpy_view(weight)[0], _numpy_view(bias)
    w = np.empty((case.steps + 1, case.data.dim), dtype=dtype)
    b = np.empty(case.steps + 1, dtype=dtype)
    w[0], b[0] = weight_now, bias_now[0]
    for step in range(case.steps):
        with autograd.record():
            # One loss per example; backward() sums them and Trainer.step(batch_size) multiplies
            # the gradient by rescale_grad = 1/batch_size: the gradient of the batch mean. The
            # penalty is broadcast to every example, so it too comes out once, unscaled.
            loss = objective(batches[step])
        loss.backward()
        trainer.step(case.train.batch_size)
        weight.wait_to_read()
        bias.wait_to_read()
        w[step + 1], b[step + 1] = weight_now, bias_now[0]
    loss_api = f"F.broadcast_add({loss_api}, {penalty_api})" if penalty_api else loss_api
    objective_api = (
        "objective = a gluon.HybridBlock with child net and parameters net.weight, net.bias whose "
        "hybrid_forward(F, batch, weight, bias) is x, y = F.slice_axis(batch, axis=1, begin=0, end=-1), "
        f"F.slice_axis(batch, axis=1, begin=-1, end=None); return {loss_api}; "
        "objective.hybridize(static_alloc=True, static_shape=True); loss = objective(batch)"
    )
    api = "; ".join((init_api, objective_api, optimizer_api, f"trainer.step({case.train.batch_size})"))
    return Trajectory(w=w, b=b, api=api, hyperparameter_dtype="float32")


def _model(case, arrays):
    dim, dtype = case.data.dim, case.model.dtype
    net = gluon.nn.Dense(1, in_units=dim, dtype=dtype)
    # Block.initialize()'s default: weight ~ U(-0.07, 0.07) (init.Uniform()), bias zeros
    # (Dense's bias_initializer), drawn from mx.random's seeded generator.
    net.initialize()
    api = f"net = gluon.nn.Dense(1, in_units={dim}, dtype={dtype!r}); net.initialize()"
    if case.model.init == "native":
        api = f"mx.random.seed({case.data.seed}); {api}"
    else:
        net.weight.set_data(mx.nd.array(arrays.w0[None], dtype=dtype))
        net.bias.set_data(mx.nd.array(arrays.b0[None], dtype=dtype))
        api += "; net.weight.set_data(w0); net.bias.set_data(b0) with the shared arrays"
    return net, api


def _loss(case):
    """Per-example losses ``(F, pred, y) -> loss`` of predictions (n, 1) against targets (n, 1):
    (n, 1), or (n,) from ``L2Loss``, which averages all but the batch axis."""
    native = gluon.loss.L2Loss()  # ½e² per example
    return {
        "half_mse": (lambda F, p, y: 0.5 * F.square(p - y), "0.5 * F.square(net(x) - y)"),
        "mse": (lambda F, p, y: F.square(p - y), "F.square(net(x) - y)"),
        "native": (lambda F, p, y: native(p, y), "gluon.loss.L2Loss()(net(x), y)"),
    }[case.train.loss]


def _penalty(case):
    """The penalty in the loss, ``(F, weight, bias) -> penalty`` of shape (1,), or None."""
    kind, strength, decay_bias = case.penalty.kind, case.penalty.strength, case.penalty.decay_bias
    if kind == "regularizer":
        raise Unsupported("Gluon has no layer regularizer API; write the penalty into the loss (l2_loss)")
    if kind not in ("l2_loss", "l1_loss"):
        return None, ""
    scale, op = (strength / 2, "square") if kind == "l2_loss" else (strength, "abs")

    def penalty(F, weight, bias):
        total = F.sum(getattr(F, op)(weight))
        if decay_bias:
            total = total + F.sum(getattr(F, op)(bias))
        return scale * total

    terms = " + ".join(f"F.sum(F.{op}({name}))" for name in ("weight", "bias")[: 2 if decay_bias else 1])
    return penalty, f"{scale!r} * ({terms})"


class _Objective(gluon.HybridBlock):
    """``net``'s per-example loss on a batch (x and y side by side) plus the penalty on its
    parameters, broadcast to every example: hybridized, one cached graph forward and backward."""

    def __init__(self, net, loss, penalty):
        super().__init__()
        self.net, self._loss, self._penalty = net, loss, penalty
        # Registered here too, so that hybrid_forward receives them: the same variables net uses.
        self.weight, self.bias = net.weight, net.bias

    def hybrid_forward(self, F, batch, weight, bias):
        x, y = F.slice_axis(batch, axis=1, begin=0, end=-1), F.slice_axis(batch, axis=1, begin=-1, end=None)
        loss = self._loss(F, self.net(x), y)
        return loss if self._penalty is None else F.broadcast_add(loss, self._penalty(F, weight, bias))


def _numpy_view(array):
    """A NumPy array sharing ``array``'s memory (MXNet's DLPack export, for a CPU array)."""

    class Export:
        def __dlpack__(self, stream=None):
            return array.to_dlpack_for_read()

        def __dlpack_device__(self):
            return 1, 0  # kDLCPU, device 0

    return np.from_dlpack(Export())


def _optimizer(case, net):
    opt, penalty = case.optimizer, case.penalty
    kwargs = {"learning_rate": opt.lr}
    if opt.name == "adam":
        name = "contribadamw" if penalty.kind == "adamw" else "adam"
        kwargs.update(beta1=opt.beta1, beta2=opt.beta2, epsilon=opt.eps)
    else:
        name = "nag" if opt.name == "nesterov" else "sgd"
        if opt.name in ("momentum", "nesterov"):
            kwargs["momentum"] = opt.momentum
    api = []
    if penalty.kind in ("weight_decay", "adamw"):
        kwargs["wd"] = penalty.strength
        # Gluon decays every parameter (wd_mult = 1) unless told otherwise: decay_bias = true
        # and "default" keep that; false sets the bias's wd_mult to 0, the Gluon idiom.
        if penalty.decay_bias is False:
            net.collect_params(".*bias").setattr("wd_mult", 0.0)
            api.append("net.collect_params('.*bias').setattr('wd_mult', 0.0)")
    api.append(f"trainer = gluon.Trainer(net.collect_params(), {name!r}, {kwargs!r})")
    if name == "contribadamw":
        api[-1] += (
            " whose update at step t is mx.nd.contrib.adamw_update(weight, grad, mean, var, "
            f"rescale_grad=mx.nd.full((1,), 1/{case.train.batch_size}), lr=math.sqrt(1 - {opt.beta2!r}**t) / (1 - {opt.beta1!r}**t), "
            f"eta={opt.lr!r}, wd={penalty.strength!r} * wd_mult, beta1={opt.beta1!r}, beta2={opt.beta2!r}, "
            f"epsilon={opt.eps!r}, out=weight)"
        )
    return gluon.Trainer(net.collect_params(), name, kwargs), "; ".join(api)


@mx.optimizer.register
class ContribAdamW(mx.optimizer.Optimizer):
    """Adam with decoupled weight decay: at step t, one call per parameter of MXNet's own

        mx.nd.contrib.adamw_update:  m = β₁m + (1−β₁)g;  v = β₂v + (1−β₂)g²;
                                     w -= eta·(lr·m/(√v + ε) + wd·w),  g = rescale_grad·grad

    with ``eta`` = the learning rate (the operator's "learning rate schedule multiplier"; it
    multiplies the decay too), ``lr`` = √(1−β₂ᵗ)/(1−β₁ᵗ) (Adam's bias correction, as
    ``mx.optimizer.Adam`` folds it into ``adam_update``'s lr) and ``wd`` = λ·wd_mult.
    """

    def __init__(self, learning_rate, beta1, beta2, epsilon, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon
        self._rescale = (None, None)

    def create_state(self, index, weight):
        zeros = lambda: mx.nd.zeros(weight.shape, weight.context, dtype=weight.dtype)  # noqa: E731
        return zeros(), zeros()

    def update(self, index, weight, grad, state):
        self._update_count(index)
        t = self._index_update_count[index]
        mean, var = state
        # The operator reads rescale_grad from an NDArray; given a float, adamw_update makes
        # mx.nd.full((1,), rescale_grad) (float32) on every call. Made here once per value instead.
        if self._rescale[0] != self.rescale_grad:
            self._rescale = (self.rescale_grad, mx.nd.full((1,), self.rescale_grad, ctx=weight.context))
        mx.nd.contrib.adamw_update(
            weight, grad, mean, var, self._rescale[1],
            lr=math.sqrt(1 - self.beta2**t) / (1 - self.beta1**t), eta=self._get_lr(index), wd=self._get_wd(index),
            beta1=self.beta1, beta2=self.beta2, epsilon=self.epsilon, out=weight,
        )
