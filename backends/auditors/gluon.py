"""The Gluon auditor (backend mxnet): a user's ``(block, trainer)``, a ``gluon.Block`` and the
``gluon.Trainer`` over its parameters, on one context, stepped on the user's own objects. Each step
writes every trainable parameter's gradient, marks it fresh (as ``backward`` does: ``Trainer.step``
refuses a stale one, trainer.py ``_update``) and calls ``trainer.step(1)``: Trainer.step multiplies
the gradient by rescale_grad / batch_size, so batch_size 1 leaves it as written (times the
optimizer's own rescale_grad). The parameters' values and gradients, the Trainer's updater states
and attributes, the optimizer's attributes and counters and its lr_scheduler's are put back as they
were afterwards."""

import copy
import math

import mxnet as mx
import numpy as np
from mxnet import gluon

from backends.auditors import _objects, _roles
from backends.contract import Audited, NotAuditable, Parameter

TAKES = "(mxnet.gluon.Block, mxnet.gluon.Trainer), the Trainer on one context with no dist KVStore"
# The optimizer's attributes that are not its own: the Trainer's Parameters, and the lr_scheduler,
# which a user may hold too (kept, its attributes put back in place).
_SHARED = ("param_dict", "lr_scheduler")


def audit(objects, stepping):
    """Every parameter of the block, stepped by the trainer as ``stepping`` says."""
    block, trainer = _unpack(objects)
    named = list(_named(block))
    held = {id(p) for p in trainer._params}
    saved = _Saved([p for *_, p in named], trainer)
    try:
        values, lrs = _step(named, held, trainer, stepping, saved)
    finally:
        saved.restore()
    optimizer = trainer.optimizer
    parameters = tuple(_parameter(*entry, optimizer, id(entry[-1]) in held, lrs[i, 0]) for i, entry in enumerate(named))
    scheduler = optimizer.lr_scheduler
    return Audited(
        parameters, values, lrs, _objects.qualified(type(optimizer)), scheduler and _objects.qualified(type(scheduler))
    )


def _unpack(objects):
    block, trainer = _objects.pair(objects, (gluon.Block, gluon.Trainer), "mxnet", TAKES)
    # One context and no KVStore (model.py _create_kvstore: none for a kvstore name on one device, unless
    # dist): the updates run in trainer._updaters, whose states the audit swaps.
    kvstore = trainer._kvstore_params["kvstore"]
    if len(trainer._contexts) != 1 or not (kvstore is None or isinstance(kvstore, str) and "dist" not in kvstore):
        raise NotAuditable(f"the Trainer runs on {len(trainer._contexts)} contexts with kvstore {kvstore!r}; {TAKES}")
    own = {id(p) for p in block.collect_params().values()}
    foreign = [p.name for p in trainer._params if id(p) not in own]
    if foreign:
        raise NotAuditable(f"the Trainer also holds parameters the block does not: {', '.join(foreign)}")
    return block, trainer


def _named(block):
    """(name, owner type, own name, owner's name in its parent, Parameter) of each of
    ``block.collect_params()`` under Gluon's name, less BatchNorm's running statistics
    (``differentiable=False``: gluon/nn/basic_layers.py BatchNorm). A Parameter no block registers
    as an attribute is the block's own, under its full name."""
    owners = dict(_owners(block, ""))
    for name, p in block.collect_params().items():
        if not p._differentiable:
            continue
        if p._data is None:
            raise NotAuditable(f"parameter {name} is not initialized; initialize the block and run it forward once")
        yield name, *owners.get(id(p), (type(block).__name__, name, "")), p


def _owners(block, holder):
    """id(Parameter) -> (type of the block that registers it, its attribute name there, that block's
    name in its parent), from each block's ``_reg_params`` and ``_children`` (gluon/block.py)."""
    for own, p in block._reg_params.items():
        yield id(p), (type(block).__name__, own, holder)
    for name, child in block._children.items():
        yield from _owners(child, name)


def _parameter(name, owner, own, holder, p, optimizer, held, lr):
    """The Parameter of ``p``: nominal lr the one its first audited step used, weight_decay the
    optimizer's wd × p.wd_mult (optimizer.py ``_get_wds``)."""
    nominal = {"lr": float(lr), "weight_decay": float(optimizer.wd * p.wd_mult)} if held and math.isfinite(lr) else {}
    return Parameter(
        name, _roles.role(owner, own, len(p.shape), holder), tuple(p.shape), np.dtype(p.dtype).name,
        (0,) if held else (), p.grad_req != "null", nominal,
    )  # fmt: skip


def _step(named, held, trainer, stepping, saved):
    arrays = [p.data() for *_, p in named]
    samples = [stepping.samples(i, a.size) for i, a in enumerate(arrays)]
    values = [np.empty((len(stepping.runs), stepping.steps + 1, len(s))) for s in samples]
    lrs = np.full((len(named), stepping.steps), math.nan)
    grouped = [i for i, (*_, p) in enumerate(named) if id(p) in held]
    stepped = [i for i in grouped if named[i][-1].grad_req != "null"]  # what Trainer._update steps
    for run, (weight_scale, gradient_scale) in enumerate(stepping.runs):
        saved.fresh()
        for i, a in enumerate(arrays):
            a[:] = mx.nd.array(weight_scale * stepping.weights(i, a.shape), ctx=a.context, dtype=a.dtype)
            values[i][run, 0] = _sampled(a, samples[i])
        for t in range(stepping.steps):
            for i in stepped:
                _gradient(named[i][-1], i, stepping, gradient_scale)
            trainer.step(1)
            for i in grouped:
                # The lr this step used: the schedule at the update count it reached, × lr_mult (optimizer.py _get_lrs).
                lrs[i, t] = trainer.learning_rate * named[i][-1].lr_mult
            for i, a in enumerate(arrays):
                values[i][run, t + 1] = _sampled(a, samples[i])
    return values, lrs


def _gradient(p, i, stepping, scale):
    """Write p's gradient (zeros at scale 0) and mark it fresh, as autograd's backward does."""
    grad = p.grad()
    shape = tuple(grad.shape)
    grad[:] = mx.nd.zeros(shape, dtype=grad.dtype) if scale == 0 else scale * stepping.gradient(i, shape)
    p.data()._fresh_grad = True


def _sampled(array, samples):
    return array.asnumpy().reshape(-1)[samples].astype(np.float64)


class _Saved:
    """The user's parameter values and gradients (with their fresh flags), the Trainer's attributes and
    updater states, the optimizer's attributes and its lr_scheduler's, as they were; ``fresh`` starts a
    run from them with empty updater states and the update counters at begin_num_update."""

    def __init__(self, params, trainer):
        self.params, self.trainer, self.optimizer = params, trainer, trainer.optimizer
        self.data = [p.data().copy() for p in params]
        self.grads = [(p.grad().copy(), p.data()._fresh_grad) if p.grad_req != "null" else None for p in params]
        self.trainer_attributes = dict(vars(trainer))
        self.states = [(u.states, u.states_synced) for u in trainer._updaters]
        self.attributes = dict(vars(self.optimizer))
        self.own = copy.deepcopy({k: v for k, v in self.attributes.items() if k not in _SHARED})
        scheduler = self.optimizer.lr_scheduler
        self.schedule = dict(vars(scheduler)) if scheduler is not None else None

    def fresh(self):
        for updater in self.trainer._updaters:
            updater.states, updater.states_synced = {}, {}
        optimizer = self.optimizer
        vars(optimizer).update(copy.deepcopy(self.own))
        # A new optimizer's counters (optimizer.py Optimizer.__init__): the schedule's and Adam's bias correction's.
        optimizer.num_update = optimizer.begin_num_update
        optimizer._all_index_update_counts = {0: {}}
        optimizer._index_update_count = optimizer._all_index_update_counts[0]
        if self.schedule is not None:
            vars(optimizer.lr_scheduler).update(copy.deepcopy(self.schedule))

    def restore(self):
        for p, data, grad in zip(self.params, self.data, self.grads, strict=True):
            p.data()[:] = data
            if grad is not None:
                p.grad()[:] = grad[0]
                p.data()._fresh_grad = grad[1]
        for updater, (states, synced) in zip(self.trainer._updaters, self.states, strict=True):
            updater.states, updater.states_synced = states, synced
        _put_back(self.trainer, self.trainer_attributes)
        _put_back(self.optimizer, self.attributes)
        if self.schedule is not None:
            _put_back(self.optimizer.lr_scheduler, self.schedule)


def _put_back(instance, attributes):
    vars(instance).clear()
    vars(instance).update(attributes)
