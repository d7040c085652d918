"""JAX/Optax adapter: a linear model as a parameter pytree, trained with Optax as a JAX user would.

The whole run (every epoch, every batch in the harness's order) is one ``jax.lax.scan``
compiled by ``jax.jit``, once per case shape: lr and λ are traced arguments, and a sweep
over them is one ``jax.vmap``ped call of the same program (``train_sweep``). The nominal λ
goes unchanged into ``optax.add_decayed_weights`` chained before the optimizer
(``weight_decay``) or into ``optax.adamw``; a bias that must not decay is masked out.
Penalties in the loss are written with jnp ops and differentiated by ``jax.grad``. Optax
has no layer regularizer API.
"""

import functools

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np
import optax

from harness.trajectory import Trajectory, Unsupported

# float64 cases need JAX's x64 mode, switched on in the backend's process only; float32
# cases then build float32 arrays explicitly.
jax.config.update("jax_enable_x64", True)


def versions():
    return {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "optax": optax.__version__}


def train(case, arrays):
    """``train_sweep`` of this case alone."""
    return train_sweep([case], arrays)[0]


def train_sweep(cases, arrays):
    """Train cases that differ only in ``optimizer.lr`` and ``penalty.strength`` (λ) with
    one call of the compiled run, vmapped over (lr, λ); one Trajectory per case, in order."""
    shape = _shape(cases[0])
    if any(_shape(case) != shape for case in cases):
        raise ValueError("train_sweep: the cases must differ only in optimizer.lr and penalty.strength")
    dtype = shape.model.dtype
    params, init_api = _model(shape, arrays)
    loss_api, penalty_api = _loss(shape)[1], _penalty(shape)[1]
    x, y = jnp.asarray(arrays.x_train, dtype), jnp.asarray(arrays.y_train, dtype)
    lr = jnp.asarray([case.optimizer.lr for case in cases], dtype)
    strength = jnp.asarray([case.penalty.strength for case in cases], dtype)
    w, b = map(np.asarray, _compiled(shape)(params, x, y, jnp.asarray(arrays.batch_order()), lr, strength))
    apis = (
        "; ".join((
            init_api,
            f"loss = {loss_api}{penalty_api(case.penalty.strength)}",
            _optimizer(case, case.optimizer.lr, case.penalty.strength, _SOURCE),
        ))
        for case in cases
    )
    return [Trajectory(w=w_i, b=b_i, api=api) for w_i, b_i, api in zip(w, b, apis, strict=True)]


def _model(case, arrays):
    """Initial params {"w": (dim,), "b": ()} in the case's dtype, and their source."""
    dtype = case.model.dtype
    if case.model.init == "native":
        # The dense layer a JAX user gets is Flax's nn.Dense; its defaults are a
        # lecun_normal kernel (truncated normal, variance 1/fan_in) and a zero bias. Same
        # initializer on the same (dim, 1) kernel, keyed by PRNGKey(seed) itself rather
        # than by Flax's per-parameter split of it (Flax is not a dependency).
        key, shape = jax.random.PRNGKey(case.data.seed), (case.data.dim, 1)
        kernel = jax.nn.initializers.lecun_normal()(key, shape, dtype)
        return {"w": kernel[:, 0], "b": jnp.zeros((), dtype)}, (
            f"params = {{'w': jax.nn.initializers.lecun_normal()(jax.random.PRNGKey({case.data.seed}), "
            f"{shape}, jnp.{dtype})[:, 0], 'b': jnp.zeros((), jnp.{dtype})}}"
        )
    params = {"w": jnp.asarray(arrays.w0, dtype), "b": jnp.asarray(arrays.b0, dtype)}
    return params, "params = {'w': w0, 'b': b0} from the shared arrays"


def _loss(case):
    """(pred, y) -> mean ½e² (half_mse, and native: optax.l2_loss is ½e²) or mean e² (mse)."""
    return {
        "half_mse": (lambda p, y: 0.5 * jnp.mean(optax.squared_error(p, y)), "0.5 * jnp.mean(optax.squared_error(pred, y))"),
        "mse": (lambda p, y: jnp.mean(optax.squared_error(p, y)), "jnp.mean(optax.squared_error(pred, y))"),
        "native": (lambda p, y: jnp.mean(optax.l2_loss(p, y)), "jnp.mean(optax.l2_loss(pred, y))"),
    }[case.train.loss]


def _penalty(case):
    """((params, λ) -> (λ/2)·Σp² (l2_loss) or λ·Σ|p| (l1_loss) over w, and b when decayed;
    λ -> its source text)."""
    kind = case.penalty.kind
    names = ("w", "b") if case.penalty.decay_bias else ("w",)
    terms = lambda op: " + ".join(f"jnp.sum({op.format(f'params[{n!r}]')})" for n in names)  # noqa: E731
    if kind == "l2_loss":
        return lambda p, s: s / 2 * sum(jnp.sum(p[n] ** 2) for n in names), lambda s: f" + {s / 2!r} * ({terms('{} ** 2')})"
    if kind == "l1_loss":
        return lambda p, s: s * sum(jnp.sum(jnp.abs(p[n])) for n in names), lambda s: f" + {s!r} * ({terms('jnp.abs({})')})"
    if kind == "regularizer":
        raise Unsupported(
            "Optax has no layer regularizer API (a JAX model is a plain pytree); write the penalty into the loss (l2_loss)"
        )
    return lambda p, s: 0.0, lambda s: ""


def _optimizer(case, lr, strength, lib):
    """The case's Optax transformation at learning rate ``lr`` and λ = ``strength``, built by
    ``lib``: the ``optax`` module, or ``_SOURCE`` for the same calls as source text."""
    opt, penalty = case.optimizer, case.penalty
    # optax decays every leaf unless masked (decay_bias = "default" is true); adamw's default
    # weight_decay=1e-4 is replaced by λ.
    decay = {"weight_decay": strength} | ({"mask": {"w": True, "b": False}} if penalty.decay_bias is False else {})
    if opt.name == "adam":
        adam = {"learning_rate": lr, "b1": opt.beta1, "b2": opt.beta2, "eps": opt.eps}
        if penalty.kind == "adamw":
            return lib.adamw(**adam, **decay)
        base = lib.adam(**adam)
    else:
        sgd = {"learning_rate": lr}
        if opt.name in ("momentum", "nesterov"):
            sgd["momentum"] = opt.momentum
        if opt.name == "nesterov":
            sgd["nesterov"] = True
        base = lib.sgd(**sgd)
    if penalty.kind == "weight_decay":
        return lib.chain(lib.add_decayed_weights(**decay), base)
    return base


def _shape(case):
    """What one compiled run is specialised to: ``case`` with lr and λ set to placeholders,
    since they are traced arguments, and decay_bias = "default" read as what it builds in
    ``_optimizer`` (no mask: true), so that the two share one compilation."""
    values = {"optimizer.lr": 1.0, "penalty.strength": 0.0}
    if case.penalty.decay_bias == "default":
        values["penalty.decay_bias"] = True
    return case.replace(values)


@functools.cache
def _compiled(shape):
    """The whole training run of ``shape``, jit-compiled and vmapped over (lr, λ).

    (params, x, y, order, lr[n], λ[n]) -> (w[n, steps + 1, dim], b[n, steps + 1]): the
    parameters before training and after each step, one step per row of ``order``.
    """
    loss = _loss(shape)[0]
    penalty = _penalty(shape)[0]

    def run(params, x, y, order, lr, strength):
        optimizer = _optimizer(shape, lr, strength, optax)
        objective = lambda p, batch: loss(x[batch] @ p["w"] + p["b"], y[batch]) + penalty(p, strength)  # noqa: E731

        def step(carry, batch):
            params, state = carry
            updates, state = optimizer.update(jax.grad(objective)(params, batch), state, params)
            params = optax.apply_updates(params, updates)
            return (params, state), (params["w"], params["b"])

        _, (w, b) = jax.lax.scan(step, (params, optimizer.init(params)), order)
        return jnp.concatenate([params["w"][None], w]), jnp.concatenate([params["b"][None], b])

    return jax.jit(jax.vmap(run, in_axes=(None, None, None, None, 0, 0)))


class _Code(str):
    """Source text that is its own repr, so calls nest: optax.chain(optax.sgd(...))."""

    __repr__ = str.__str__


class _Source:
    """Stands in for the ``optax`` module: each call returns its own source text."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: _Code(
            f"optax.{name}({', '.join([*map(repr, args), *(f'{k}={v!r}' for k, v in kwargs.items())])})"
        )


_SOURCE = _Source()
