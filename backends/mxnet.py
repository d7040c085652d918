"""MXNet adapter: ``gluon.nn.Dense(1)`` trained with ``autograd`` and ``gluon.Trainer`` as a Gluon user would.

The nominal λ goes unchanged into the Trainer's ``'wd'``; a bias that must not decay gets
``wd_mult = 0``. Penalties in the loss are written with NDArray ops and differentiated by
autograd. MXNet 1.9.1 has no AdamW optimizer class, only the ``mx.nd.contrib.adamw_update``
operator, which ``ContribAdamW`` below hands to the Trainer. Gluon has no layer regularizer API.

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
    penalty, penalty_api = _penalty(case, net)
    trainer, optimizer_api = _optimizer(case, net)
    # Every step's batch, gathered once: (steps, batch size, dim) and targets (steps, batch size, 1)
    # shaped like the predictions.
    order = arrays.batch_order()
    xs = mx.nd.array(arrays.x_train[order], dtype=dtype)
    ys = mx.nd.array(arrays.y_train[order][..., None], dtype=dtype)

    w = np.empty((case.steps + 1, case.data.dim), dtype=dtype)
    b = np.empty(case.steps + 1, dtype=dtype)
    w[0], b[0] = net.weight.data().asnumpy()[0], net.bias.data().asnumpy()[0]
    for step in range(case.steps):
        with autograd.record():
            # One loss per example; backward() sums them and Trainer.step(batch_size) multiplies
            # the gradient by rescale_grad = 1/batch_size: the gradient of the batch mean. The
            # penalty is broadcast to every example, so it too comes out once, unscaled.
            loss = loss_fn(net(xs[step]), ys[step]) + penalty()
        loss.backward()
        trainer.step(case.train.batch_size)
        w[step + 1], b[step + 1] = net.weight.data().asnumpy()[0], net.bias.data().asnumpy()[0]
    api = "; ".join((init_api, f"loss = {loss_api}{penalty_api}", optimizer_api, f"trainer.step({case.train.batch_size})"))
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
    net.hybridize()  # the dense layer runs as one cached graph; the penalty stays imperative
    return net, api


def _loss(case):
    """Per-example losses of predictions (n, 1) against targets (n, 1)."""
    return {
        "half_mse": (lambda p, y: 0.5 * mx.nd.square(p - y), "0.5 * mx.nd.square(pred - y)"),
        "mse": (lambda p, y: mx.nd.square(p - y), "mx.nd.square(pred - y)"),
        "native": (gluon.loss.L2Loss(), "gluon.loss.L2Loss()(pred, y)"),  # ½e² per example
    }[case.train.loss]


def _penalty(case, net):
    kind, strength = case.penalty.kind, case.penalty.strength
    params = [net.weight, net.bias] if case.penalty.decay_bias else [net.weight]
    names = " + ".join(f"mx.nd.{{op}}({p}.data()).sum()" for p in ("net.weight", "net.bias")[: len(params)])
    if kind == "l2_loss":
        return lambda: strength / 2 * sum(mx.nd.square(p.data()).sum() for p in params), f" + {strength / 2!r} * ({names.format(op='square')})"
    if kind == "l1_loss":
        return lambda: strength * sum(mx.nd.abs(p.data()).sum() for p in params), f" + {strength!r} * ({names.format(op='abs')})"
    if kind == "regularizer":
        raise Unsupported("Gluon has no layer regularizer API; write the penalty into the loss (l2_loss)")
    return lambda: 0, ""


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
            f"rescale_grad=1/{case.train.batch_size}, lr=math.sqrt(1 - {opt.beta2!r}**t) / (1 - {opt.beta1!r}**t), "
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

    def create_state(self, index, weight):
        zeros = lambda: mx.nd.zeros(weight.shape, weight.context, dtype=weight.dtype)  # noqa: E731
        return zeros(), zeros()

    def update(self, index, weight, grad, state):
        self._update_count(index)
        t = self._index_update_count[index]
        mean, var = state
        mx.nd.contrib.adamw_update(
            weight, grad, mean, var, self.rescale_grad,
            lr=math.sqrt(1 - self.beta2**t) / (1 - self.beta1**t), eta=self._get_lr(index), wd=self._get_wd(index),
            beta1=self.beta1, beta2=self.beta2, epsilon=self.epsilon, out=weight,
        )
