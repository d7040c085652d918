"""decaylens audit of an MLX module and its optimizer: what the auditor measures against what
mlx/optimizers/optimizers.py says each optimizer does, MultiOptimizer as MLX's way to spare
parameters, a frozen parameter, and the user's objects left as they were."""

import re

import numpy as np
import pytest

from harness.audit import audit_objects
from harness.audit.findings import DECAYED_FLAGS
from harness.errors import UsageError

LR, WD = 0.1, 0.01
# The zero-gradient factor 1 − lr·λ, measured on float32 weights with MLX's float32 lr: rounding each
# sampled value moves it by < 1e-7.
FACTOR_TOLERANCE = 1e-6
SPARED_ROLES = {"bias", "norm_scale", "norm_shift"}


@pytest.fixture
def mlx(auditor):
    """(mx, nn, optim, audit(objects)) in the mlx env; the test skips elsewhere."""
    name, _ = auditor
    if name != "mlx":
        pytest.skip("the MLX auditor's tests run on backend mlx")
    import mlx.core as mx
    import mlx.nn as nn
    import mlx.optimizers as optim

    return mx, nn, optim, lambda objects: audit_objects(name, objects, "test")


def model(mx, nn):
    """A module with every role MLX has: Embedding, Linear, LayerNorm, BatchNorm, RMSNorm, and a list of
    Linear layers, initialized from a fixed seed."""

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(10, 4)
            self.dense = nn.Linear(4, 4)
            self.norm = nn.LayerNorm(4)
            self.bn = nn.BatchNorm(4)
            self.rms = nn.RMSNorm(4)
            self.layers = [nn.Linear(4, 4), nn.Linear(4, 2)]

        def __call__(self, x):
            x = self.rms(self.bn(self.norm(self.dense(self.embed(x)))))
            return self.layers[1](self.layers[0](x))

    mx.random.seed(0)
    return Net()


def spared(path, _):
    """The MultiOptimizer filter that hands biases and norms to the optimizer with weight_decay = 0."""
    return path.endswith("bias") or path.startswith(("norm", "bn", "rms"))


@pytest.mark.parametrize(
    "optimizer, settings, placement",
    [
        # SGD: gradient + weight_decay·parameter (optimizers.py:277-278): coupled, which for plain SGD is the
        # same update as a decay × lr; through momentum the shrink grows over the steps.
        ("SGD", {}, "coupled_or_decoupled_lr"),
        ("SGD", {"momentum": 0.9}, "coupled"),
        # AdamW: parameter · (1 − lr·weight_decay) before Adam's step (optimizers.py:601-603): decoupled × lr.
        ("AdamW", {}, "decoupled_lr"),
    ],
)
def test_the_optimizer_decays_every_parameter_where_its_source_says(mlx, optimizer, settings, placement):
    """Every parameter with a gradient decays; BatchNorm's running_mean and running_var, which it freezes
    (normalization.py:344), do not appear."""
    mx, nn, optim, audit = mlx
    net = model(mx, nn)
    found = audit((net, getattr(optim, optimizer)(learning_rate=LR, weight_decay=WD, **settings)))
    assert {f.name for f in found.findings if f.name.startswith("bn")} == {"bn.weight", "bn.bias"}
    assert {f.role for f in found.findings} == {"embedding", "kernel", "bias", "norm_scale", "norm_shift"}
    assert {f.placement for f in found.findings} == {placement}, [(f.name, f.placement) for f in found.findings]
    for f in found.findings:
        assert f.nominal == pytest.approx({"lr": LR, "weight_decay": WD})
        assert f.decays and f.flags == ((DECAYED_FLAGS[f.role],) if f.role in DECAYED_FLAGS else ()), f
        if placement != "coupled":
            assert f.factor == pytest.approx(1 - LR * WD, abs=FACTOR_TOLERANCE), f.name


def test_a_multi_optimizer_spares_what_its_filter_hands_to_the_undecayed_one(mlx):
    """MLX's optimizers take no exclusion argument; MultiOptimizer hands each parameter to the first
    optimizer whose filter(path, gradient) is true (optimizers.py:184-197), the idiom for sparing a
    subtree: AdamW(weight_decay=0.0) for biases and norms, AdamW(weight_decay=λ) for the rest."""
    mx, nn, optim, audit = mlx
    net = model(mx, nn)
    optimizer = optim.MultiOptimizer(
        [optim.AdamW(learning_rate=LR, weight_decay=0.0), optim.AdamW(learning_rate=LR, weight_decay=WD)], [spared]
    )
    found = audit((net, optimizer))
    for f in found.findings:
        if f.role in SPARED_ROLES:
            assert (f.placement, f.groups, f.nominal["weight_decay"], f.flags) == ("none", (0,), 0.0, ()), f
        else:
            assert (f.placement, f.groups, f.nominal["weight_decay"]) == ("decoupled_lr", (1,), WD), f


def test_a_frozen_parameter_is_never_updated(mlx):
    """module.freeze(keys=...): trainable_parameters() leaves it out, so it gets no gradient."""
    mx, nn, optim, audit = mlx
    net = model(mx, nn)
    net.dense.freeze(keys=["weight"])
    found = audit((net, optim.SGD(learning_rate=LR, weight_decay=WD)))
    frozen = [f for f in found.findings if f.placement == "frozen"]
    assert [(f.name, f.flags) for f in frozen] == [("dense.weight", ("never_updated",))]


def _train(mx, nn, net, optimizer, steps):
    """``steps`` steps of a squared output on a fixed batch of 4 token ids, ending in mx.eval."""
    x = mx.array([1, 3, 5, 7])
    step = nn.value_and_grad(net, lambda model, x: (model(x) ** 2).sum())
    for _ in range(steps):
        _, grads = step(net, x)
        optimizer.update(net, grads)
        mx.eval(net.parameters(), optimizer.state)


def _values(net):
    from mlx.utils import tree_flatten

    return {name: np.array(value) for name, value in tree_flatten(net.parameters())}


def test_the_audit_leaves_the_module_and_optimizer_as_they_were(mlx):
    """After a step of training, the audit leaves every array and each optimizer's state as they were,
    and two more steps equal a never-audited twin's exactly: the moments, step counts and the cosine
    schedule's lr were put back."""
    mx, nn, optim, audit = mlx

    def made():
        net = model(mx, nn)
        adamw = [optim.AdamW(optim.cosine_decay(LR, 10), weight_decay=WD, bias_correction=True) for _ in range(2)]
        return net, optim.MultiOptimizer(adamw, [spared])

    (net, optimizer), (twin, twin_optimizer) = made(), made()
    for pair in ((net, optimizer), (twin, twin_optimizer)):
        _train(mx, nn, *pair, steps=1)
    before, states = _values(net), [inner.state for inner in optimizer.optimizers]
    audit((net, optimizer))
    after = _values(net)
    assert all(np.array_equal(after[name], before[name]) for name in before)
    assert all(inner.state is state for inner, state in zip(optimizer.optimizers, states, strict=True))
    _train(mx, nn, net, optimizer, steps=2)
    _train(mx, nn, twin, twin_optimizer, steps=2)
    trained, twin_trained = _values(net), _values(twin)
    assert all(np.array_equal(trained[name], twin_trained[name]) for name in trained)


def test_other_objects_are_a_usage_error_naming_their_type(mlx):
    mx, nn, optim, audit = mlx
    net = model(mx, nn)
    torch_like = type("SGD", (), {"__module__": "torch.optim.sgd"})()  # another framework's optimizer, by its type
    cases = [
        ((net, torch_like), "torch.optim.sgd.SGD"),
        ((net, optim.cosine_decay(LR, 10)), "function)"),
        ("net", "returned str;"),
        ((net, optim.SGD(LR), None), "NoneType)"),
    ]
    for objects, named in cases:
        with pytest.raises(UsageError, match=re.escape(named)) as error:
            audit(objects)
        assert "mlx.optimizers.Optimizer" in str(error.value)
