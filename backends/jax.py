"""JAX/Optax adapter: a linear model or a dense MLP as a parameter pytree, trained with Optax as a JAX user would.

The whole run (every epoch, every batch in the harness's order) is one ``jax.lax.scan``
compiled by ``jax.jit``, once per case shape: lr and λ are traced arguments, and a sweep
over them is one ``jax.vmap``ped call of the same program (``train_sweep``). Each optimizer is
its Optax alias; the nominal λ goes unchanged into the alias's own decay argument (``adamw``
and the other w-forms, Lion's, LAMB's, Adafactor's ``weight_decay_rate``, Adadelta's), or into
``optax.add_decayed_weights`` chained before the alias (``weight_decay``) or between its
preconditioner and its learning rate (``decoupled``). The parameters the decay must spare are
masked out of it by Optax's own idiom: a ``mask`` pytree of the params' structure (True = decay)
passed to the alias's mask argument or to ``add_decayed_weights``. Penalties in the loss are
written with jnp ops over the parameters they cover and differentiated by ``jax.grad``. Optax
has no layer regularizer API.
"""

import ast
import functools

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np
import optax

from backends import _code, _layout, _optax_calls
from backends._calls import Calls
from backends.contract import Trajectory, Unsupported

SWEEPABLE = ("optimizer.lr", "penalty.strength")  # traced arguments of one compiled, vmapped run
RATIO_TARGET = 3.0
OWN_BEHAVIOURS = {}
# optax.additive_weight_decay, add_decayed_weights' name until optax 0.1.x (transform.py:1181 of 0.1.7,
# ``additive_weight_decay = add_decayed_weights``), gone from later releases: probed so that the
# release matrix shows where it went. after_lr: add_decayed_weights chained after the alias, as published
# code does (optax.chain(optax.sgd(lr), optax.add_decayed_weights(λ))): probed for what that order does.
VARIANTS = {
    ("sgd", "weight_decay"): {
        "additive_weight_decay": "optax.additive_weight_decay(λ) chained before the alias",
        "after_lr": "optax.add_decayed_weights(λ) chained after the alias, whose lr scaling it then follows",
    },
    ("momentum", "weight_decay"): {
        "additive_weight_decay": "optax.additive_weight_decay(λ) chained before the alias",
        "after_lr": "optax.add_decayed_weights(λ) chained after the alias, whose lr scaling it then follows",
    },
    ("adam", "weight_decay"): {
        "additive_weight_decay": "optax.additive_weight_decay(λ) chained before the alias",
        "after_lr": "optax.add_decayed_weights(λ) chained after the alias, whose lr scaling it then follows",
    },
}

# float64 cases need JAX's x64 mode, switched on in the backend's process only; float32
# cases then build float32 arrays explicitly.
jax.config.update("jax_enable_x64", True)


def versions():
    """The installed jax, jaxlib and optax versions."""
    return {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "optax": optax.__version__}


def train(case, arrays):
    """``train_sweep`` of this case alone."""
    return train_sweep([case], arrays)[0]


def train_sweep(cases, arrays):
    """Train cases that differ only in SWEEPABLE keys with one call of the compiled run per shape,
    vmapped over (lr, λ); one Trajectory per case, in order. A varying schedule keeps its lr in its
    shape (Optax's warmup cosine compares its peak with 0 in Python), so its cases are one call per lr."""
    if len({_shape(case).replace({"optimizer.lr": 1.0}) for case in cases}) > 1:
        raise ValueError(f"train_sweep: the cases must differ only in {', '.join(SWEEPABLE)}")
    shapes = [_shape(case) for case in cases]
    groups = {}
    for case, shape in zip(cases, shapes, strict=True):
        groups.setdefault(shape, []).append(case)
    found = {shape: iter(_train_shape(shape, group, arrays)) for shape, group in groups.items()}
    return [next(found[shape]) for shape in shapes]


def train_code(case, arrays, statements):
    """``case``'s params and loss trained by the Optax ``optimizer`` that ``statements`` build (their call and
    code run once, with ``jax``, ``jnp``, ``optax``, ``functools`` and ``params``), the penalties they add to
    ``loss`` added at every step; params they make anew start from the shared arrays where the case's do."""
    params = _model(case, arrays, _calls())
    forward, loss = _forward(case, _calls()), _loss(case, _calls())
    names = {"jax": jax, "jnp": jnp, "optax": optax, "functools": functools, "params": params}
    namespace = _code.run(statements, names)
    if case.model.init == "native":  # params the statements made anew are the case's native ones
        params = namespace["params"]
    add = _code.penalized(statements, namespace)

    def objective(params, xb, yb):
        return add(loss(forward(params, xb), yb), params=params)

    w, b = _run(case, arrays, jax.jit(functools.partial(_steps, case, objective, namespace["optimizer"])), params)
    coarser = _hyperparameter_dtype(case, statements, next(_schedules(statements, namespace), None))
    return Trajectory(w=w, b=b, statements=tuple(statements), hyperparameter_dtype=coarser)


def _train_shape(shape, cases, arrays):
    """The Trajectories of ``cases``, all of ``shape``, from one call of its compiled run."""
    dtype = shape.model.dtype
    lr = jnp.asarray([case.optimizer.lr for case in cases], dtype)
    strength = jnp.asarray([case.penalty.strength for case in cases], dtype)
    w, b = _run(shape, arrays, _compiled(shape), _model(shape, arrays, _calls()), lr, strength)
    statements = [_statements(case, arrays) for case in cases]
    coarser = _hyperparameter_dtype(shape, statements[0], _schedule(shape, 1.0, _calls()))
    return [
        Trajectory(w=w_i, b=b_i, statements=statements_i, hyperparameter_dtype=coarser)
        for w_i, b_i, statements_i in zip(w, b, statements, strict=True)
    ]


def _run(case, arrays, run, params, *swept):
    """(w, b) as NumPy of ``run(params, x, y, order, *swept)`` on the arrays' training set in the case's dtype."""
    x, y = jnp.asarray(arrays.x_train, case.model.dtype), jnp.asarray(arrays.y_train, case.model.dtype)
    return map(np.asarray, run(params, x, y, jnp.asarray(arrays.batch_order()), *swept))


def _statements(case, arrays):
    """The calls that train ``case`` as a user writes them: each helper run once more, outside the
    compiled program, with the case's own lr and λ, building what the program builds."""
    calls = _calls()
    _model(case, arrays, calls)
    _forward(case, calls)
    _loss(case, calls)
    _penalty(case, calls)
    _optimizer(case, case.optimizer.lr, case.penalty.strength, calls)
    return calls.statements


def _model(case, arrays, calls):
    """Initial params in the case's dtype (``_tree``): {"w": (dim,), "b": ()} for the linear model, a list of
    per-layer {"w": (fan_in, fan_out), "b": (fan_out,)} of ``case.layers`` for an MLP; Flax's defaults
    (``native``: ``_native``) or the shared w0, b0 (an MLP's cut into layers by ``_layout.blocks``)."""
    dtype = case.model.dtype
    if case.model.init == "native":
        return _native(case, calls)
    if case.model.kind == "linear":  # its params are the shared arrays themselves
        calls.note("params = {'w': w0, 'b': b0} from the shared arrays")
        pairs = [(arrays.w0, arrays.b0)]
    else:
        shown = [
            f"{{'w': W{number} {(layer.fan_in, layer.fan_out)}, 'b': b{number} {(layer.fan_out,)}}}"
            for number, layer in enumerate(case.layers, start=1)
        ]
        calls.note(f"params = [{', '.join(shown)}] from the shared w0, b0 (each W row-major)")
        pairs = _layout.blocks(case, arrays.w0, arrays.b0)
    return _tree(case, [(jnp.asarray(weight, dtype), jnp.asarray(bias, dtype)) for weight, bias in pairs])


def _native(case, calls):
    """Flax nn.Dense's defaults (the dense layer a JAX user gets; Flax is not a dependency): a kernel of
    ``init`` (lecun_normal: truncated normal, variance 1/fan_in) and a zero bias. An MLP's layer ℓ's kernel
    is keyed by the ℓ-th key of ``jax.random.split(PRNGKey(seed), layers)`` (Flax derives each layer's key
    from the layer's name instead); the linear model's (dim, 1) kernel by PRNGKey(seed) itself rather than
    by Flax's per-parameter split of it."""
    dtype, layers = case.model.dtype, case.layers
    calls.let("init", "jax.nn.initializers.lecun_normal")
    if case.model.kind == "linear":
        kernel = calls.let("kernel", "init", calls("jax.random.PRNGKey", case.data.seed), (case.data.dim, 1), dtype)
        calls.code(f"params = {{'w': kernel[:, 0], 'b': jnp.zeros((), {dtype!r})}}")
        return {"w": kernel[:, 0], "b": jnp.zeros((), dtype)}
    keys = calls.let("keys", "jax.random.split", calls("jax.random.PRNGKey", case.data.seed), len(layers))
    params, shown = [], []
    for index, layer in enumerate(layers):
        key = calls.name(keys[index], f"keys[{index}]")
        kernel = calls.let(f"W{index + 1}", "init", key, (layer.fan_in, layer.fan_out), dtype)
        params.append({"w": kernel, "b": jnp.zeros((layer.fan_out,), dtype)})
        shown.append(f"{{'w': W{index + 1}, 'b': jnp.zeros({(layer.fan_out,)}, {dtype!r})}}")
    calls.code(f"params = [{', '.join(shown)}]")
    return params


def _forward(case, calls):
    """(params, x) -> ŷ of shape (n,): x·w + b (linear); for an MLP h₀ = x, hₗ = σ(hₗ₋₁·Wₗ + bₗ)
    over the hidden layers with σ = jax.nn.relu or jnp.tanh, ŷ = h·W_L + b_L (no activation)."""
    if case.model.kind == "linear":
        return lambda params, x: x @ params["w"] + params["b"]
    name = "jax.nn.relu" if case.model.activation == "relu" else "jnp.tanh"
    activation = jax.nn.relu if case.model.activation == "relu" else jnp.tanh
    calls.loss(f"h = functools.reduce(lambda h, p: {name}(h @ p['w'] + p['b']), params[:-1], x)")
    calls.loss("pred = (h @ params[-1]['w'] + params[-1]['b'])[:, 0]")

    def forward(params, x):
        h = functools.reduce(lambda h, p: activation(h @ p["w"] + p["b"]), params[:-1], x)
        return (h @ params[-1]["w"] + params[-1]["b"])[:, 0]

    return forward


def _loss(case, calls):
    """(pred, y) -> mean ½e² (half_mse, and native: optax.l2_loss is ½e²) or mean e² (mse)."""
    if case.train.loss == "native":
        calls.loss("loss = jnp.mean(optax.l2_loss(pred, y))")
        return lambda pred, y: jnp.mean(optax.l2_loss(pred, y))
    if case.train.loss == "mse":
        calls.loss("loss = jnp.mean(optax.squared_error(pred, y))")
        return lambda pred, y: jnp.mean(optax.squared_error(pred, y))
    calls.loss("loss = 0.5 * jnp.mean(optax.squared_error(pred, y))")
    return lambda pred, y: 0.5 * jnp.mean(optax.squared_error(pred, y))


def _penalty(case, calls):
    """(params, λ) -> (λ/2)·Σp² (l2_loss) or λ·Σ|p| (l1_loss) over the parameters whose role
    ``case.penalty.decays``, for λ traced; None for any other kind."""
    penalty = case.penalty
    if penalty.kind == "regularizer":
        raise Unsupported(
            "Optax has no layer regularizer API (a JAX model is a plain pytree); "
            "write the penalty into the loss (l2_loss)"
        )
    if not penalty.in_loss:
        return None

    def covered(pairs):  # of the layers' (W, b) pairs, in order, those whose role the penalty decays
        return [parameter for role, parameter in _layout.roles(case, pairs) if penalty.decays(role)]

    layers = ["params"] if case.model.kind == "linear" else [f"params[{i}]" for i in range(len(case.layers))]
    names = covered([(f"{layer}['w']", f"{layer}['b']") for layer in layers])
    if penalty.kind == "l2_loss":
        terms = " + ".join(f"jnp.sum({name} ** 2)" for name in names) or "0"
        calls.penalty(f"loss = loss + {penalty.strength / 2!r} * ({terms})")
        return lambda p, s: s / 2 * sum(jnp.sum(leaf**2) for leaf in covered(_pairs(case, p)))
    terms = " + ".join(f"jnp.sum(jnp.abs({name}))" for name in names) or "0"
    calls.penalty(f"loss = loss + {penalty.strength!r} * ({terms})")
    return lambda p, s: s * sum(jnp.sum(jnp.abs(leaf)) for leaf in covered(_pairs(case, p)))


def _mask(case):
    """Optax's decay mask, of the params' structure (``_tree``), True where the parameter decays: False for
    the roles ``case.penalty.decays`` spares, True for a bias left to the default (Optax's default,
    no mask, decays every leaf); None, no mask at all, when nothing is spared."""
    decays = [[case.penalty.decays(role) is not False for role in layer.roles] for layer in case.layers]
    return None if all(map(all, decays)) else _tree(case, decays)


def _optimizer(case, lr, strength, calls):
    """The case's Optax transformation at learning rate ``lr`` and λ = ``strength`` (traced
    values inside the compiled run, the case's own numbers for its ``api``): its alias; λ as the
    alias's own decay argument where it has one, else ``add_decayed_weights`` chained before the
    alias (weight_decay) or after its preconditioner, before its learning rate (decoupled); the
    parameters it spares masked out of the decay by the alias's or add_decayed_weights' mask (``_mask``)."""
    opt, penalty = case.optimizer, case.penalty
    if penalty.kind == "lr_decay":
        raise Unsupported(f"Optax's {opt.name} has no argument users mistake for weight decay (no lr_decay)")
    lr = _schedule(case, lr, calls)
    alias, kwargs = _optax_calls.alias(opt)
    kwargs = {"learning_rate": lr, **kwargs}
    # optax decays every leaf unless masked (decay_bias = "default" is true); the aliases' default
    # weight_decay (adamw's 1e-4, lion's 1e-3, ...) is replaced by λ unless none is to be passed.
    mask = _mask(case) if penalty.in_optimizer else None
    decay = {} if penalty.omit_strength else {"weight_decay": strength}
    if mask is not None:
        calls.code(f"mask = {mask!r}")
        decay["mask"] = calls.name(mask, "mask")
    own = _optax_calls.OWN_DECAY.get(opt.name, {}).get(penalty.kind)
    if own:
        names = _optax_calls.DECAY_ARGUMENTS.get(own, ("weight_decay", "mask"))
        renamed = {names[key == "mask"]: value for key, value in decay.items()}
        kept = {key: value for key, value in kwargs.items() if key not in names}
        return calls.let("optimizer", f"optax.{own}", **kept, **renamed)
    if penalty.kind == "weight_decay":
        after = penalty.variant == "after_lr"
        transform = f"optax.{penalty.variant if penalty.variant and not after else 'add_decayed_weights'}"
        parts = [calls(transform, **decay), calls(alias, **kwargs)]
        return calls.let("optimizer", "optax.chain", *(parts[::-1] if after else parts))
    if penalty.kind == "decoupled":  # the optimizers without a decoupled form of their own
        steps = [calls(path, **values) for path, values in _optax_calls.PRECONDITIONERS[opt.name](opt)]
        steps += [calls("optax.add_decayed_weights", **decay), calls("optax.scale_by_learning_rate", lr)]
        steps += [calls("optax.trace", decay=opt.momentum)] if opt.name == "rmsprop" and opt.momentum else []
        return calls.let("optimizer", "optax.chain", *steps)
    return calls.let("optimizer", alias, **kwargs)


def _schedule(case, lr, calls):
    """The transformation's ``learning_rate``: an Optax schedule of ``case.schedule``, which Optax
    calls with its step count (0 at the first step), from the case's own lr (a varying schedule's
    lr is in its shape, not traced); else ``lr`` itself."""
    schedule, steps, base = case.schedule, case.steps, case.optimizer.lr
    if schedule.kind == "step":
        return calls.let(
            "schedule", "optax.exponential_decay", base, schedule.interval, schedule.factor, staircase=True
        )
    if schedule.kind == "cosine":
        return calls.let("schedule", "optax.cosine_decay_schedule", base, steps, alpha=schedule.floor)
    if schedule.kind == "warmup_cosine":
        return calls.let(
            "schedule", "optax.warmup_cosine_decay_schedule", 0.0, base, schedule.warmup, steps,
            end_value=schedule.floor * base,
        )  # fmt: skip
    return lr


# Optax function -> the dtype it computes part of its step in whatever the parameters' dtype: Adafactor's
# decay rate 1 − t^−0.8 from jnp.array(t, jnp.float32) (factorized.py:28-32), 2e-9 off in float64.
_HYPERPARAMETER_DTYPE = {"optax.adafactor": "float32"}


def _shape(case):
    """What one compiled run is specialised to: ``case`` with its SWEEPABLE keys set to a
    placeholder, since they are traced arguments (but a varying schedule's lr), and decay_bias =
    "default" read as what it builds in ``_optimizer`` (no mask: true), so that the two share one
    compilation."""
    values = dict.fromkeys(("penalty.strength",) if case.schedule.varies else SWEEPABLE, 1.0)
    if case.penalty.bias_by_default:
        values["penalty.decay_bias"] = True
    return case.replace(values)


def _hyperparameter_dtype(case, statements, learning_rate):
    """The dtype a float64 run of ``statements`` computes part of its step in, where coarser (else None, as
    for a float32 ``case``): that of an Optax function their calls call (``_HYPERPARAMETER_DTYPE``, found in
    the calls' text, which is what runs), or that of the ``learning_rate`` schedule, which Optax evaluates at
    its int32 step count (a Python-float schedule at an int32 count gives float32)."""
    if case.model.dtype != "float64":
        return None
    called = [dtype for path, dtype in _HYPERPARAMETER_DTYPE.items() for s in statements if f"{path}(" in s.text]
    scheduled = learning_rate(jnp.zeros((), jnp.int32)).dtype if callable(learning_rate) else jnp.float64
    return min(called, default=None) or (None if scheduled == jnp.float64 else str(scheduled))


def _schedules(statements, namespace):
    """Every Optax schedule the statements make, assigned or given in place of a learning rate: each call of
    a function of ``optax.schedules`` in them, evaluated in ``namespace``."""
    for statement in statements:
        if statement.kind not in ("call", "code"):
            continue
        for node in ast.walk(ast.parse(statement.text)):
            function = ast.unparse(node.func) if isinstance(node, ast.Call) else ""
            found = optax if function.startswith("optax.") else None
            for name in function.split(".")[1:]:
                found = getattr(found, name, None)
            if getattr(found, "__module__", "").startswith("optax.schedules"):
                yield eval(compile(ast.Expression(node), "<schedule>", "eval"), namespace)


def _calls():
    """A recorder of the calls this adapter makes."""
    return Calls(jax=jax, jnp=jnp, optax=optax)


@functools.cache
def _compiled(shape):
    """The whole training run of ``shape``, jit-compiled and vmapped over (lr, λ).

    (params, x, y, order, lr[n], λ[n]) -> (w[n, steps + 1, weights], b[n, steps + 1(, biases)]):
    the parameters before training and after each step (``_layout.flat``), one step per row of ``order``.
    """
    forward = _forward(shape, _calls())
    loss = _loss(shape, _calls())
    penalty = _penalty(shape, _calls())

    def objective(params, xb, yb, strength):
        value = loss(forward(params, xb), yb)
        return value if penalty is None else value + penalty(params, strength)

    def run(params, x, y, order, lr, strength):
        optimizer = _optimizer(shape, lr, strength, _calls())  # built while tracing; its text is not kept
        return _steps(shape, functools.partial(objective, strength=strength), optimizer, params, x, y, order)

    return jax.jit(jax.vmap(run, in_axes=(None, None, None, None, 0, 0)))


def _steps(case, objective, optimizer, params, x, y, order):
    """(w, b) of ``params`` before training and after each step of ``optimizer`` on the gradient of
    ``objective(params, xb, yb)`` (``_layout.flat``), one ``jax.lax.scan`` step per row of ``order``."""

    def step(carry, batch):
        params, state = carry
        updates, state = optimizer.update(jax.grad(objective)(params, x[batch], y[batch]), state, params)
        params = optax.apply_updates(params, updates)
        return (params, state), _layout.flat(case, _pairs(case, params), xp=jnp)

    _, (w, b) = jax.lax.scan(step, (params, optimizer.init(params)), order)
    w0, b0 = _layout.flat(case, _pairs(case, params), xp=jnp)
    return jnp.concatenate([w0[None], w]), jnp.concatenate([b0[None], b])


def _tree(case, pairs):
    """The params pytree of the layers' (W, b) ``pairs`` (or of anything given layer by layer, a mask):
    the linear model's {"w": w, "b": b}, an MLP's list of per-layer {"w": W, "b": b}, input layer first."""
    layers = [{"w": weight, "b": bias} for weight, bias in pairs]
    return layers[0] if case.model.kind == "linear" else layers


def _pairs(case, params):
    """The layers' (W, b) in the params pytree ``params`` (``_tree``), input layer first."""
    return [(layer["w"], layer["b"]) for layer in ([params] if case.model.kind == "linear" else params)]
