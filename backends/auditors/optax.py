"""The jax auditor: a user's ``(params, transformation)``, the pytree of arrays they train and their
``optax.GradientTransformation``, stepped on new trees (``tx.init``, ``tx.update``,
``optax.apply_updates``): jax arrays are immutable, so the user's objects stay as they were.

The parameters are the tree's array leaves, named by their path joined with ``/``. Of a Flax Linen
variables dict (a mapping with a ``params`` key) only its ``params`` collection is stepped, the tree
Flax's ``TrainState`` hands the transformation: ``batch_stats`` and the other collections change
through ``apply(..., mutable=...)``, never through the optimizer. A pytree has no layer types, so
the owner ``_roles.role`` reads is derived from the structure: a leaf whose dict also holds a
``scale`` is a norm's (owner ``Norm``, its ``bias`` the norm's shift), a leaf named ``embedding`` an
embedding's (owner ``Embed``), any other leaf its parent key's (``Dense_0``). The holder is the
parent key, so a user's Embed named ``pos_embedding`` reads positional.

Every leaf is in the one group 0: the transformation sees every leaf, and a masked one decides per
leaf what it does, which the runs measure. The nominal lr and λ, and the lr of each step, are read
only where the user injected them (``optax.inject_hyperparams``): the ``learning_rate`` and
``weight_decay`` in the state's ``hyperparams``, where every injected state stating one agrees. A
transformation's closures are not read: an alias built without injection has no nominal values.
"""

import collections
import functools
import math
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax

from backends.auditors import _objects, _roles
from backends.contract import Audited, NotAuditable, Parameter

TAKES = (
    "(params, optax.GradientTransformation), params a pytree of floating-point jax arrays "
    "(a Flax variables dict or its 'params', an nnx.State of nnx.Param, ...)"
)
HYPERPARAMETERS = {"lr": "learning_rate", "weight_decay": "weight_decay"}  # nominal key -> inject_hyperparams name


def audit(objects, stepping):
    """Every array leaf of the params, stepped by the transformation as ``stepping`` says."""
    params, tx = _unpack(objects)
    prefix, params = (("params",), params["params"]) if _is_variables(params) else ((), params)
    flat, treedef = jax.tree_util.tree_flatten_with_path(params)
    paths = [(*prefix, *_names(path)) or ("params",) for path, _ in flat]  # a bare array: the params themselves
    leaves = [leaf for _, leaf in flat]
    _check(paths, leaves)
    nominal = {key: value for key, value in _hyperparameters(tx.init(params)).items() if math.isfinite(value)}
    beside = collections.defaultdict(set)  # a dict's path -> the names of the leaves it holds
    for path in paths:
        beside[path[:-1]].add(path[-1])
    parameters = tuple(
        _parameter(path, leaf, beside[path[:-1]], nominal) for path, leaf in zip(paths, leaves, strict=True)
    )
    values, lrs = _step(tx, treedef, leaves, stepping)
    return Audited(parameters, values, lrs, _built_by(tx))


def _unpack(objects):
    params, tx = _objects.pair(objects, (object, optax.GradientTransformation), "jax", TAKES)
    if not jax.tree_util.tree_leaves(params):
        raise NotAuditable(f"the function returned ({_objects.qualified(type(params))}, ...) with no arrays; {TAKES}")
    return params, tx


def _is_variables(params):
    return isinstance(params, Mapping) and "params" in params


def _names(path):
    """A leaf's path as text: dict keys, attribute names, indices; the final ``value`` of a box that wraps
    the array (an ``nnx.Variable``, a Linen ``nn.Partitioned``) left out, so the box names it."""
    if path and isinstance(path[-1], jax.tree_util.GetAttrKey) and path[-1].name == "value":
        path = path[:-1]
    return tuple(str(next(getattr(entry, f) for f in ("key", "name", "idx") if hasattr(entry, f))) for entry in path)


def _check(paths, leaves):
    for path, leaf in zip(paths, leaves, strict=True):
        if not isinstance(leaf, jax.Array | np.ndarray) or not jnp.issubdtype(leaf.dtype, jnp.floating):
            raise NotAuditable(
                f"the params' leaf {'/'.join(path)} is a {_objects.qualified(type(leaf))}, not a floating-point array; "
                f"the jax auditor takes {TAKES}"
            )


def _parameter(path, leaf, beside, nominal):
    """The Parameter of one leaf; ``beside``: the names of the leaves in the dict that holds it."""
    name, parent = path[-1], path[-2] if len(path) > 1 else ""
    owner = "Norm" if "scale" in beside else "Embed" if name == "embedding" else parent
    return Parameter(
        "/".join(path), _roles.role(owner, name, leaf.ndim, parent), tuple(leaf.shape), str(leaf.dtype),
        (0,), True, dict(nominal),
    )  # fmt: skip


def _hyperparameters(state):
    """{nominal key: value} of HYPERPARAMETERS in ``state``'s injected ``hyperparams``; NaN where
    none states it or two disagree."""
    found = {}
    for key, name in HYPERPARAMETERS.items():
        values = {
            float(value)
            for path, value in optax.tree_utils.tree_get_all_with_path(state, name)
            if len(path) > 1 and getattr(path[-2], "name", None) == "hyperparams"
        }
        found[key] = values.pop() if len(values) == 1 else math.nan
    return found


def _step(tx, treedef, leaves, stepping):
    """(values, lrs) of ``stepping``'s runs, each from a fresh ``tx.init``."""
    samples = [stepping.samples(i, leaf.size) for i, leaf in enumerate(leaves)]
    values = [np.empty((len(stepping.runs), stepping.steps + 1, len(s))) for s in samples]
    lrs = np.full((len(leaves), stepping.steps), math.nan)
    update = jax.jit(functools.partial(_update, tx))
    for run, (weight_scale, gradient_scale) in enumerate(stepping.runs):
        params = _tree(treedef, leaves, lambda i, shape: weight_scale * stepping.weights(i, shape))
        grads = _tree(treedef, leaves, lambda i, shape: gradient_scale * stepping.gradient(i, shape))
        state = tx.init(params)
        _record(values, run, 0, params, samples)
        for t in range(stepping.steps):
            params, state = update(grads, state, params)
            _record(values, run, t + 1, params, samples)
            lrs[:, t] = _hyperparameters(state)["lr"]
    return values, lrs


def _update(tx, grads, state, params):
    """One step of the user's transformation: (new params, new state)."""
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state


def _tree(treedef, leaves, make):
    """A tree like the params, leaf i ``make(i, shape)`` in leaf i's dtype."""
    return jax.tree_util.tree_unflatten(
        treedef, [jnp.asarray(make(i, leaf.shape), dtype=leaf.dtype) for i, leaf in enumerate(leaves)]
    )


def _record(values, run, t, params, samples):
    for i, leaf in enumerate(jax.tree_util.tree_leaves(params)):
        values[i][run, t] = np.asarray(leaf).reshape(-1)[samples[i]].astype(np.float64)


def _built_by(tx):
    """The function that built the transformation: its update's defining function (``optax.adamw``
    returns ``chain``'s), e.g. ``optax.transforms._combining.chain``."""
    update = tx.update
    qualname = getattr(update, "__qualname__", type(update).__qualname__).split(".<locals>.")[0]
    return f"{getattr(update, '__module__', None) or type(update).__module__}.{qualname}"
