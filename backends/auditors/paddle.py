"""The Paddle auditor: a user's ``(layer, optimizer)``, a ``paddle.nn.Layer`` and the
``paddle.optimizer.Optimizer`` over its parameters, stepped on the user's own objects in dygraph
mode. Each step assigns every trainable parameter's gradient (``Tensor.grad = …``, the gradient
``backward`` would leave) and calls ``optimizer.step()``. An LRScheduler the optimizer holds is
read, not stepped: a Paddle user steps it (``scheduler.step()``) where they choose. The parameters'
values and gradients and the optimizer's attributes and state are put back as they were afterwards."""

import math
from collections import defaultdict

import numpy as np
import paddle

from backends.auditors import _objects, _roles
from backends.contract import Audited, NotAuditable, Parameter

TAKES = "(paddle.nn.Layer, paddle.optimizer.Optimizer)"
# The optimizer's state, which a new optimizer starts empty: its accumulators (moments, velocities,
# β powers: optimizer.py _add_accumulator), the names and holder a state dict fills, fp16 master
# weights (Lamb's used ones) and the lr tensor (_create_global_learning_rate).
_STATE = (
    "_accumulators", "_accumulators_holder", "_already_create_accumulator", "_opti_name_list", "_master_weights",
    "_learning_rate_map", "_used_master_weights",
)  # fmt: skip
# The key of the dicts Momentum and Adam keep their multi-tensor state in (_create_multi_tensor_dict).
_MULTI_TENSOR = "FP32_DenseTensor"
# BatchNorm's running statistics: parameters Paddle never trains (norm.py: stop_gradient = True).
_STATISTICS = ("_mean", "_variance")


def audit(objects, stepping):
    """Every parameter of the layer, stepped by the optimizer as ``stepping`` says."""
    layer, optimizer = _unpack(objects)
    named = list(_named(layer))
    tensors = [p for *_, p in named]
    groups = _groups(optimizer)
    held = [tuple(g for g, group in enumerate(groups) if any(q is p for q in group["params"])) for p in tensors]
    saved = _Saved(tensors, optimizer)
    try:
        values, lrs = _step(tensors, held, optimizer, stepping, saved)
    finally:
        saved.restore()
    parameters = tuple(_parameter(*entry, optimizer, held[i], lrs[i, 0]) for i, entry in enumerate(named))
    scheduler = optimizer._learning_rate
    scheduler = _objects.qualified(type(scheduler)) if isinstance(scheduler, paddle.optimizer.lr.LRScheduler) else None
    return Audited(parameters, values, lrs, _objects.qualified(type(optimizer)), scheduler)


def _unpack(objects):
    layer, optimizer = _objects.pair(objects, (paddle.nn.Layer, paddle.optimizer.Optimizer), "paddle", TAKES)
    own = {id(p) for p in layer.parameters()}
    foreign = [p.name for group in _groups(optimizer) for p in group["params"] if id(p) not in own]
    if foreign:
        raise NotAuditable(f"the optimizer also holds parameters the layer does not: {', '.join(foreign)}")
    return layer, optimizer


def _named(layer):
    """(name, owner type, own name, owner's name in its parent, parameter) of each parameter once, by
    sublayer, less BatchNorm's running statistics."""
    seen = set()
    for path, owner in layer.named_sublayers(include_self=True):
        kind = type(owner).__name__
        for own, p in owner.named_parameters(include_sublayers=False):
            if id(p) in seen or own in _STATISTICS and _roles.NORM.search(kind):
                continue
            seen.add(id(p))
            yield f"{path}.{own}" if path else own, kind, own, path.rpartition(".")[2], p


def _groups(optimizer):
    """The optimizer's parameter groups as dicts: a single group {"params": [...]} where it has none."""
    groups = optimizer._param_groups
    return groups if groups and isinstance(groups[0], dict) else [{"params": groups}]


def _parameter(name, owner, own, holder, p, optimizer, groups, lr):
    """The Parameter of ``p``, held by the optimizer's ``groups`` (indices): nominal lr the one its
    first audited step used, weight_decay ``_decay``'s."""
    nominal = {}
    if len(groups) == 1 and math.isfinite(lr):
        decay = _decay(optimizer, _groups(optimizer)[groups[0]], p)
        nominal = {"lr": float(lr)} | ({} if decay is None else {"weight_decay": decay})
    return Parameter(
        name, _roles.role(owner, own, p.ndim, holder), tuple(p.shape), str(p.dtype).removeprefix("paddle."),
        groups, not p.stop_gradient, nominal,
    )  # fmt: skip


def _decay(optimizer, group, p):
    """The λ the optimizer applies to ``p``, a group's own value before the optimizer's default (each
    optimizer's _update_param_group): AdamW's ``weight_decay``, 0.0 where apply_decay_param_fun(p.name)
    is false (adamw.py:479-484); Lamb's ``lamb_weight_decay``, 0.0 where exclude_from_weight_decay_fn(p)
    is true (lamb.py:264-270); else the L2Decay coefficient, p's own regularizer before the optimizer's
    (optimizer.py:1775-1779), or Momentum's fused one (momentum.py:290-300); 0.0 for none, None for an
    L1Decay."""

    def own(key):
        return group.get(key, optimizer._default_dict[key])

    if isinstance(optimizer, paddle.optimizer.AdamW):
        decays = optimizer._apply_decay_param_fun
        return 0.0 if decays is not None and not decays(p.name) else float(own("weight_decay"))
    if isinstance(optimizer, paddle.optimizer.Lamb):
        excluded = own("exclude_from_weight_decay_fn")
        return 0.0 if excluded is not None and excluded(p) else float(own("lamb_weight_decay"))
    regularizer = p.regularizer if getattr(p, "regularizer", None) is not None else optimizer.regularization
    if isinstance(regularizer, paddle.regularizer.L2Decay):
        return float(regularizer._coeff)
    if regularizer is None and isinstance(optimizer, paddle.optimizer.Momentum):
        return float(own("regularization_coeff"))
    return 0.0 if regularizer is None else None


def _step(tensors, held, optimizer, stepping, saved):
    samples = [stepping.samples(i, p.size) for i, p in enumerate(tensors)]
    values = [np.empty((len(stepping.runs), stepping.steps + 1, len(s))) for s in samples]
    lrs = np.full((len(tensors), stepping.steps), math.nan)
    for run, (weight_scale, gradient_scale) in enumerate(stepping.runs):
        saved.fresh()
        for i, p in enumerate(tensors):
            p.set_value(paddle.to_tensor(weight_scale * stepping.weights(i, tuple(p.shape))).astype(p.dtype))
            values[i][run, 0] = _sampled(p, samples[i])
        for t in range(stepping.steps):
            for i, p in enumerate(tensors):
                if not p.stop_gradient:
                    p.grad = _gradient(p, i, stepping, gradient_scale)
                if len(held[i]) == 1:
                    # The lr of p's step: the optimizer's × p's multiplier, its group's learning_rate (_create_param_lr)
                    lrs[i, t] = optimizer.get_lr() * p.optimize_attr.get("learning_rate", 1.0)
            optimizer.step()
            for i, p in enumerate(tensors):
                values[i][run, t + 1] = _sampled(p, samples[i])
    return values, lrs


def _gradient(p, i, stepping, scale):
    """p's gradient at ``scale``, in p's dtype: zeros at scale 0."""
    if scale == 0:
        return paddle.zeros(p.shape, dtype=p.dtype)
    return paddle.to_tensor(scale * stepping.gradient(i, tuple(p.shape))).astype(p.dtype)


def _sampled(p, samples):
    return p.detach().astype("float64").numpy().reshape(-1)[samples]


class _Saved:
    """The user's parameter values and gradients and the optimizer's attributes, as they were; ``fresh``
    starts a run from them with the state a new optimizer has (``_STATE`` and the multi-tensor dicts
    empty), so that the user's own containers are never written."""

    def __init__(self, tensors, optimizer):
        self.tensors, self.optimizer = tensors, optimizer
        self.data = [p.detach().clone() for p in tensors]
        self.grads = [None if p.grad is None else p.grad.clone() for p in tensors]
        self.attributes = dict(vars(optimizer))

    def fresh(self):
        vars(self.optimizer).update(self.attributes)  # AdamW's step rebinds its hyperparameters to each group's
        for key, value in self.attributes.items():
            if key in _STATE:
                setattr(self.optimizer, key, defaultdict(dict) if isinstance(value, defaultdict) else type(value)())
            elif isinstance(value, dict) and _MULTI_TENSOR in value:
                setattr(self.optimizer, key, {k: None if v is None else [[] for _ in v] for k, v in value.items()})

    def restore(self):
        for p, data, grad in zip(self.tensors, self.data, self.grads, strict=True):
            p.set_value(data)
            p.grad = grad
        vars(self.optimizer).clear()
        vars(self.optimizer).update(self.attributes)
