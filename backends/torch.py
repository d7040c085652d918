"""PyTorch adapter: ``torch.nn.Linear`` trained with ``torch.optim`` as a PyTorch user would.

The nominal λ goes unchanged into ``weight_decay=`` of ``torch.optim.SGD`` / ``Adam`` /
``AdamW``; a bias that must not decay goes in its own param group with
``weight_decay=0``. Penalties in the loss are written with torch ops and
differentiated by autograd. PyTorch has no layer regularizer API.
"""

import functools
import operator

import torch

from harness.trajectory import Trajectory, Unsupported


def versions():
    return {"torch": torch.__version__}


def train(case, arrays):
    dtype = getattr(torch, case.model.dtype)
    torch.manual_seed(case.data.seed)
    model, init_api = _model(case, arrays, dtype)
    loss_fn, loss_api = _loss(case)
    penalty, penalty_api = _penalty(case, model)
    optimizer, optimizer_api = _optimizer(case, model)
    # Every step's batch, gathered once: (steps, batch size, dim) and targets (steps, batch
    # size, 1) shaped like the predictions.
    order = arrays.batch_order()
    xs = torch.from_numpy(arrays.x_train[order]).to(dtype)
    ys = torch.from_numpy(arrays.y_train[order][..., None]).to(dtype)

    w = torch.empty((case.steps + 1, case.data.dim), dtype=dtype)
    b = torch.empty(case.steps + 1, dtype=dtype)
    with torch.no_grad():
        w[0], b[0] = model.weight[0], model.bias[0]
    for step, (xb, yb) in enumerate(zip(xs, ys), start=1):
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        if penalty:
            loss = loss + penalty()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            w[step], b[step] = model.weight[0], model.bias[0]
    api = "; ".join(part for part in (init_api, f"loss = {loss_api}{penalty_api}", optimizer_api) if part)
    return Trajectory(w=w.numpy(), b=b.numpy(), api=api)


def _model(case, arrays, dtype):
    model = torch.nn.Linear(case.data.dim, 1, dtype=dtype)
    if case.model.init == "native":
        # nn.Linear's own init: weight and bias ~ U(-1/√dim, 1/√dim), seeded by torch.manual_seed.
        return model, f"torch.manual_seed({case.data.seed}); torch.nn.Linear({case.data.dim}, 1)"
    with torch.no_grad():
        model.weight.copy_(torch.from_numpy(arrays.w0)[None])
        model.bias.fill_(float(arrays.b0))
    return model, f"torch.nn.Linear({case.data.dim}, 1) with weight and bias copied from the shared arrays"


def _loss(case):
    mse = torch.nn.functional.mse_loss
    return {
        "half_mse": (lambda p, y: 0.5 * mse(p, y), "0.5 * torch.nn.functional.mse_loss(pred, y)"),
        "mse": (mse, "torch.nn.functional.mse_loss(pred, y)"),
        "native": (torch.nn.MSELoss(), "torch.nn.MSELoss()(pred, y)"),
    }[case.train.loss]


def _penalty(case, model):
    kind, strength = case.penalty.kind, case.penalty.strength
    params = [model.weight, model.bias] if case.penalty.decay_bias else [model.weight]
    names = " + ".join(f"{p}.{{op}}.sum()" for p in ("weight", "bias")[: len(params)])
    if kind == "l2_loss":
        return lambda: strength / 2 * _sum(p.pow(2).sum() for p in params), f" + {strength / 2!r} * ({names.format(op='pow(2)')})"
    if kind == "l1_loss":
        return lambda: strength * _sum(p.abs().sum() for p in params), f" + {strength!r} * ({names.format(op='abs()')})"
    if kind == "regularizer":
        raise Unsupported("PyTorch has no layer regularizer API; write the penalty into the loss (l2_loss)")
    return None, ""


def _sum(terms):
    """t₁ + t₂ + …, without the extra op of ``sum``'s start value 0."""
    return functools.reduce(operator.add, terms)


def _optimizer(case, model):
    opt, penalty = case.optimizer, case.penalty
    if opt.name == "adam":
        cls = torch.optim.AdamW if penalty.kind == "adamw" else torch.optim.Adam
        kwargs = {"lr": opt.lr, "betas": (opt.beta1, opt.beta2), "eps": opt.eps}
    else:
        cls = torch.optim.SGD
        kwargs = {"lr": opt.lr}
        if opt.name in ("momentum", "nesterov"):
            kwargs["momentum"] = opt.momentum
        if opt.name == "nesterov":
            kwargs["nesterov"] = True
    if penalty.kind in ("weight_decay", "adamw"):
        kwargs["weight_decay"] = penalty.strength
    # Torch decays every parameter handed to the optimizer: decay_bias = "default" is true.
    if penalty.kind in ("weight_decay", "adamw") and penalty.decay_bias is False:
        groups = [{"params": [model.weight]}, {"params": [model.bias], "weight_decay": 0.0}]
        groups_api = "[{'params': [weight]}, {'params': [bias], 'weight_decay': 0.0}]"
    else:
        groups, groups_api = [model.weight, model.bias], "[weight, bias]"
    call = ", ".join([groups_api, *(f"{k}={v!r}" for k, v in kwargs.items())])
    return cls(groups, **kwargs), f"torch.optim.{cls.__name__}({call})"
