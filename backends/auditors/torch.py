"""The torch auditor: a user's ``(module, optimizer)`` or ``(module, optimizer, lr_scheduler)``,
stepped on the user's own objects, whose parameters, gradients, optimizer state and hyperparameters
and scheduler state are put back as they were afterwards (a copy of a large model would double its
memory)."""

import collections
import copy
import math

import numpy as np
import torch

from backends.auditors import _objects, _roles
from backends.contract import Audited, NotAuditable, Parameter

TAKES = "(torch.nn.Module, torch.optim.Optimizer) or (module, optimizer, torch.optim.lr_scheduler.LRScheduler)"


def audit(objects, stepping):
    """Every parameter of the module, stepped by the optimizer (and scheduler) as ``stepping`` says."""
    module, optimizer, scheduler = _unpack(objects)
    named = list(_named(module))
    parameters = tuple(_parameter(name, owner, holder, p, optimizer) for name, owner, holder, p in named)
    tensors = [p for *_, p in named]
    saved = _Saved(tensors, optimizer, scheduler)
    try:
        values, lrs = _step(tensors, parameters, optimizer, scheduler, stepping, saved)
    finally:
        saved.restore()
    return Audited(
        parameters, values, lrs, _objects.qualified(type(optimizer)), scheduler and _objects.qualified(type(scheduler))
    )


def _unpack(objects):
    if not isinstance(objects, tuple | list) or len(objects) not in (2, 3):
        raise NotAuditable(f"the function returned {_objects.received(objects)}; the torch auditor takes {TAKES}")
    module, optimizer, *rest = objects
    scheduler = rest[0] if rest else None
    if not isinstance(module, torch.nn.Module) or not isinstance(optimizer, torch.optim.Optimizer):
        raise NotAuditable(f"the function returned {_objects.received(objects)}; the torch auditor takes {TAKES}")
    if scheduler is not None and not hasattr(scheduler, "state_dict"):
        raise NotAuditable(f"the third value is a {type(scheduler).__name__}, not a torch lr scheduler")
    return module, optimizer, scheduler


def _named(module):
    """(name, owner type, owner's name in its parent, parameter) of each parameter once, by module."""
    seen = set()
    for path, owner in module.named_modules():
        for leaf, p in owner.named_parameters(recurse=False):
            if id(p) not in seen:
                seen.add(id(p))
                name = f"{path}.{leaf}" if path else leaf
                yield name, type(owner).__name__, path.rpartition(".")[2], p


def _parameter(name, owner, holder, p, optimizer):
    groups = tuple(g for g, group in enumerate(optimizer.param_groups) if any(q is p for q in group["params"]))
    nominal = {}
    if len(groups) == 1:
        group = optimizer.param_groups[groups[0]]
        nominal = {key: float(group[key]) for key in ("lr", "weight_decay") if _is_number(group.get(key))}
    return Parameter(
        name, _roles.role(owner, name.rpartition(".")[2], p.ndim, holder), tuple(p.shape),
        str(p.dtype).removeprefix("torch."), groups, p.requires_grad, nominal,
    )  # fmt: skip


def _is_number(value):
    return isinstance(value, int | float | torch.Tensor) and not isinstance(value, bool)


def _step(tensors, parameters, optimizer, scheduler, stepping, saved):
    samples = [torch.as_tensor(stepping.samples(i, p.numel())) for i, p in enumerate(tensors)]
    values = [np.empty((len(stepping.runs), stepping.steps + 1, len(s))) for s in samples]
    lrs = np.full((len(tensors), stepping.steps), math.nan)
    for run, (weight_scale, gradient_scale) in enumerate(stepping.runs):
        saved.fresh()
        with torch.no_grad():
            for i, p in enumerate(tensors):
                p.copy_(torch.from_numpy(weight_scale * stepping.weights(i, tuple(p.shape))))
                values[i][run, 0] = p.detach().reshape(-1)[samples[i]].double().numpy()
        for t in range(stepping.steps):
            _gradients(tensors, parameters, stepping, gradient_scale)
            for i, parameter in enumerate(parameters):
                if len(parameter.groups) == 1:
                    lrs[i, t] = float(optimizer.param_groups[parameter.groups[0]]["lr"])
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            with torch.no_grad():
                for i, p in enumerate(tensors):
                    values[i][run, t + 1] = p.detach().reshape(-1)[samples[i]].double().numpy()
    return values, lrs


def _gradients(tensors, parameters, stepping, scale):
    """Each trainable parameter's gradient set anew (an optimizer may change it in place), zeros at scale 0."""
    for i, (p, parameter) in enumerate(zip(tensors, parameters, strict=True)):
        if not parameter.trainable:
            p.grad = None
        elif scale == 0:
            p.grad = torch.zeros_like(p)
        else:
            p.grad = torch.from_numpy(scale * stepping.gradient(i, tuple(p.shape))).to(p.dtype)


class _Saved:
    """The user's parameter values and gradients, optimizer state and hyperparameters and scheduler
    state, as they were; ``fresh`` starts a run from them with an empty optimizer state."""

    def __init__(self, tensors, optimizer, scheduler):
        self.tensors, self.optimizer, self.scheduler = tensors, optimizer, scheduler
        self.data = [p.detach().clone() for p in tensors]
        self.grads = [p.grad for p in tensors]
        self.state = optimizer.state
        self.hyperparameters = [
            {k: copy.deepcopy(v) for k, v in g.items() if k != "params"} for g in optimizer.param_groups
        ]
        self.schedule = copy.deepcopy(scheduler.state_dict()) if scheduler is not None else None

    def fresh(self):
        self.optimizer.state = collections.defaultdict(dict)
        self._hyperparameters()
        if self.scheduler is not None:
            self.scheduler.load_state_dict(copy.deepcopy(self.schedule))

    def _hyperparameters(self):
        for group, saved in zip(self.optimizer.param_groups, self.hyperparameters, strict=True):
            group.update(copy.deepcopy(saved))

    def restore(self):
        with torch.no_grad():
            for p, data, grad in zip(self.tensors, self.data, self.grads, strict=True):
                p.copy_(data)
                p.grad = grad
        self.optimizer.state = self.state
        self._hyperparameters()
        if self.scheduler is not None:
            self.scheduler.load_state_dict(self.schedule)
