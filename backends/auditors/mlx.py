"""The MLX auditor: a user's ``(module, optimizer)``, an ``mlx.nn.Module`` and an
``mlx.optimizers.Optimizer`` (a ``MultiOptimizer`` too: each parameter's group is the optimizer
its filters hand it to), stepped on the user's own objects. Each step is
``optimizer.update(module, gradients)``, the gradients a tree of the module's trainable parameters
(``trainable_parameters()``, as ``nn.value_and_grad`` gives them), then ``mx.eval`` of the parameters
and the state, as MLX's training loops do. The module's arrays and each optimizer's state (and
whether it was initialized) are put back as they were afterwards: MLX arrays are immutable, so the
very arrays are."""

import math

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_flatten, tree_map_with_path

from backends.auditors import _objects, _roles
from backends.contract import Audited, Parameter

TAKES = "(mlx.nn.Module, mlx.optimizers.Optimizer)"
# BatchNorm's running statistics: arrays it freezes itself (nn/layers/normalization.py: BatchNorm.__init__).
_STATISTICS = ("running_mean", "running_var")


def audit(objects, stepping):
    """Every parameter of the module, stepped by the optimizer as ``stepping`` says."""
    module, optimizer = _unpack(objects)
    named = list(_named(module))
    leaves = _leaves(optimizer)
    held = [_held(optimizer, name, array, leaves) for name, *_, array in named]
    saved = _Saved(module, leaves)
    try:
        values, lrs = _step(module, named, held, optimizer, stepping, saved)
    finally:
        saved.restore()
    parameters = tuple(
        _parameter(*entry, leaves[held[i]], trainable, held[i], lrs[i, 0])
        for i, (entry, trainable) in enumerate(zip(named, _trainable(module, named), strict=True))
    )
    schedule = next((leaf._schedulers["learning_rate"] for leaf in leaves if "learning_rate" in leaf._schedulers), None)
    return Audited(parameters, values, lrs, _qualified(type(optimizer)), schedule and _qualified(schedule))


def _unpack(objects):
    return _objects.pair(objects, (nn.Module, optim.Optimizer), "mlx", TAKES)


def _named(module):
    """(path, owner type, own name, owner's name in its parent, array) of each of ``module.parameters()``,
    the owner the deepest module on its path, less BatchNorm's running statistics."""
    modules = dict(module.named_modules())
    for path, array in tree_flatten(module.parameters()):
        owner_path = path
        while owner_path and owner_path not in modules:
            owner_path = owner_path.rpartition(".")[0]
        kind, own = type(modules[owner_path]).__name__, path.removeprefix(owner_path).lstrip(".")
        if own in _STATISTICS and _roles.NORM.search(kind):
            continue
        yield path, kind, own, owner_path.rpartition(".")[2], array


def _trainable(module, named):
    trainable = {path for path, _ in tree_flatten(module.trainable_parameters())}
    return [path in trainable for path, *_ in named]


def _leaves(optimizer):
    """The optimizers that update parameters: a MultiOptimizer's, in order, else the optimizer."""
    if isinstance(optimizer, optim.MultiOptimizer):
        return [leaf for inner in optimizer.optimizers for leaf in _leaves(inner)]
    return [optimizer]


def _held(optimizer, path, array, leaves):
    """The index in ``leaves`` of the optimizer that updates ``path``: a MultiOptimizer hands it to the
    first whose filter takes it (optimizers.py MultiOptimizer._split_dictionary)."""
    while isinstance(optimizer, optim.MultiOptimizer):
        optimizer = next(inner for inner, keep in zip(optimizer.optimizers, optimizer.filters) if keep(path, array))
    return next(i for i, leaf in enumerate(leaves) if leaf is optimizer)


def _parameter(path, owner, own, holder, array, leaf, trainable, group, lr):
    """The Parameter of ``path``: nominal lr the one its first audited step used, weight_decay its
    optimizer's where it has one (SGD, AdamW, Lion, Adafactor, Muon)."""
    nominal = {"lr": float(lr)} if math.isfinite(lr) else {}
    if hasattr(leaf, "weight_decay"):
        nominal["weight_decay"] = float(leaf.weight_decay)
    return Parameter(
        path, _roles.role(owner, own, array.ndim, holder), tuple(array.shape), _dtype(array), (group,), trainable,
        nominal,
    )  # fmt: skip


def _step(module, named, held, optimizer, stepping, saved):
    indices = {path: i for i, (path, *_) in enumerate(named)}
    samples = [stepping.samples(i, array.size) for i, (*_, array) in enumerate(named)]
    values = [np.empty((len(stepping.runs), stepping.steps + 1, len(s))) for s in samples]
    lrs = np.full((len(named), stepping.steps), math.nan)
    leaves = _leaves(optimizer)
    for run, (weight_scale, gradient_scale) in enumerate(stepping.runs):
        saved.fresh()

        def weights(path, array, scale=weight_scale):
            i = indices.get(path)
            return array if i is None else mx.array(scale * stepping.weights(i, array.shape), dtype=array.dtype)

        def gradient(path, array, scale=gradient_scale):
            if scale == 0:
                return mx.zeros_like(array)
            return mx.array(scale * stepping.gradient(indices[path], array.shape), dtype=array.dtype)

        module.update(tree_map_with_path(weights, module.parameters()))
        _record(module, named, samples, values, run, 0)
        for t in range(stepping.steps):
            optimizer.update(module, tree_map_with_path(gradient, module.trainable_parameters()))
            mx.eval(module.parameters(), optimizer.state)
            for i, leaf in enumerate(held):
                if "learning_rate" in leaves[leaf].state:  # the lr this step used (optimizers.py apply_gradients)
                    lrs[i, t] = float(leaves[leaf].learning_rate)
            _record(module, named, samples, values, run, t + 1)
    return values, lrs


def _record(module, named, samples, values, run, t):
    arrays = dict(tree_flatten(module.parameters()))
    for i, (path, *_) in enumerate(named):
        array = arrays[path]
        flat = np.array(array.astype(mx.float32) if array.dtype == mx.bfloat16 else array).reshape(-1)
        values[i][run, t] = flat[samples[i]].astype(np.float64)


def _dtype(array):
    return str(array.dtype).rpartition(".")[2]


def _qualified(kind):
    """The class's or function's dotted name; a schedule MLX makes (a closure) by the function that made it."""
    return f"{kind.__module__}.{kind.__qualname__.partition('.<locals>')[0]}"


class _Saved:
    """The module's arrays and each optimizer's state dict and initialized flag, as they were; ``fresh``
    starts a run with a new state: the user's hyperparameters (its arrays: learning_rate, …) at step 0."""

    def __init__(self, module, leaves):
        self.module, self.leaves = module, leaves
        self.parameters = module.parameters()
        self.states = [(leaf._state, leaf._initialized) for leaf in leaves]

    def fresh(self):
        for leaf, (state, _) in zip(self.leaves, self.states, strict=True):
            hyperparameters = {key: value for key, value in state.items() if isinstance(value, mx.array)}
            leaf.state = hyperparameters | {"step": mx.zeros_like(state["step"])}

    def restore(self):
        self.module.update(self.parameters)
        for leaf, (state, initialized) in zip(self.leaves, self.states, strict=True):
            leaf._state, leaf._initialized = state, initialized
