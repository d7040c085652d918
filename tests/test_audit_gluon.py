"""decaylens audit of a Gluon block and its Trainer (backend mxnet, MXNet 1.9.1): what the auditor
measures against what mxnet/optimizer/optimizer.py says each optimizer does, Gluon's idiom for
sparing parameters, a frozen parameter, and the user's objects left as they were."""

import re

import numpy as np
import pytest

from harness.audit import audit_objects
from harness.audit.findings import DECAYED_FLAGS
from harness.errors import UsageError

LR, WD = 0.1, 0.01
# The zero-gradient factor 1 − lr·λ, measured on float32 weights: rounding each sampled value moves it by < 1e-7.
FACTOR_TOLERANCE = 1e-6
SPARED_ROLES = {"bias", "norm_scale", "norm_shift"}


@pytest.fixture
def gluon(auditor):
    """(mx, gluon, audit(objects)) in the mxnet env; the test skips elsewhere."""
    name, _ = auditor
    if name != "mxnet":
        pytest.skip("the Gluon auditor's tests run on backend mxnet")
    import mxnet as mx
    from mxnet import gluon

    return mx, gluon, lambda objects: audit_objects(name, objects, "test")


def model(mx, gluon):
    """A block with every role Gluon has: Embedding, Dense, LayerNorm, BatchNorm, Dense, initialized
    from a fixed seed (the same values at every call)."""

    class Net(gluon.nn.HybridBlock):
        def __init__(self):
            super().__init__()
            with self.name_scope():
                self.embed = gluon.nn.Embedding(10, 4)
                self.dense = gluon.nn.Dense(4, in_units=4)
                self.norm = gluon.nn.LayerNorm(in_channels=4)
                self.bn = gluon.nn.BatchNorm(in_channels=4)
                self.head = gluon.nn.Dense(2, in_units=4)

        def hybrid_forward(self, F, x):
            return self.head(self.bn(self.norm(self.dense(self.embed(x)))))

    mx.random.seed(0)
    net = Net()
    net.initialize()
    return net


@pytest.mark.parametrize(
    "optimizer, settings, placement",
    [
        # SGD: rescaled_grad = lr·(rescale_grad·grad + wd·weight) (optimizer.py:553): coupled, which with no
        # momentum is the same update as a decay × lr; through momentum the shrink grows over the steps.
        ("sgd", {}, "coupled_or_decoupled_lr"),
        ("sgd", {"momentum": 0.9}, "coupled"),
        # Adam: grad·rescale_grad + wd·weight into the moments (optimizer.py:1571): coupled.
        ("adam", {}, "coupled"),
        # MXNet 1.9.1 has no AdamW class: ContribAdamW (backends/_mxnet_adamw.py) calls
        # mx.nd.contrib.adamw_update, w -= eta·(lr·m/(√v + ε) + wd·w) with eta the lr: decoupled × lr.
        ("contribadamw", {}, "decoupled_lr"),
    ],
)
def test_the_trainer_decays_every_parameter_where_its_optimizer_says(gluon, optimizer, settings, placement):
    """Gluon decays every parameter by default (wd_mult = 1: optimizer.py:487); the BatchNorm running
    statistics are not parameters (differentiable=False) and do not appear."""
    mx, gluon_, audit = gluon
    net = model(mx, gluon_)
    found = audit((net, gluon_.Trainer(net.collect_params(), optimizer, {"learning_rate": LR, "wd": WD, **settings})))
    assert not any("running" in f.name for f in found.findings)
    assert {f.role for f in found.findings} == {"embedding", "kernel", "bias", "norm_scale", "norm_shift"}
    assert {f.placement for f in found.findings} == {placement}, [(f.name, f.placement) for f in found.findings]
    for f in found.findings:
        assert f.nominal == pytest.approx({"lr": LR, "weight_decay": WD})
        assert f.decays and f.flags == ((DECAYED_FLAGS[f.role],) if f.role in DECAYED_FLAGS else ()), f
        if placement != "coupled":
            assert f.factor == pytest.approx(1 - LR * WD, abs=FACTOR_TOLERANCE), f.name


def test_wd_mult_zero_spares_what_the_regex_selects(gluon):
    """Gluon's idiom: net.collect_params('.*bias|.*gamma|.*beta').setattr('wd_mult', 0), the
    optimizer's wd × wd_mult (optimizer.py:487): those decay none, the rest as before."""
    mx, gluon_, audit = gluon
    net = model(mx, gluon_)
    net.collect_params(".*bias|.*gamma|.*beta").setattr("wd_mult", 0)
    found = audit((net, gluon_.Trainer(net.collect_params(), "sgd", {"learning_rate": LR, "wd": WD, "momentum": 0.9})))
    for f in found.findings:
        if f.role in SPARED_ROLES:
            assert (f.placement, f.nominal["weight_decay"], f.flags) == ("none", 0.0, ()), f
        else:
            assert f.placement == "coupled" and f.nominal["weight_decay"] == WD, f


def test_a_frozen_parameter_is_never_updated(gluon):
    """grad_req = 'null': the Trainer skips the parameter (trainer.py _update)."""
    mx, gluon_, audit = gluon
    net = model(mx, gluon_)
    net.dense.weight.grad_req = "null"
    found = audit((net, gluon_.Trainer(net.collect_params(), "sgd", {"learning_rate": LR, "wd": WD})))
    frozen = [f for f in found.findings if f.name.endswith("dense0_weight")]
    assert [(f.placement, f.flags) for f in frozen] == [("frozen", ("never_updated",))]
    assert all(f.placement != "frozen" for f in found.findings if f not in frozen)


def _train(mx, autograd, net, trainer, steps):
    """``steps`` steps of a squared output on a fixed batch of 4 token ids."""
    x = mx.nd.array([1, 3, 5, 7])
    for _ in range(steps):
        with autograd.record():
            loss = (net(x) ** 2).sum()
        loss.backward()
        trainer.step(4)


def _values(net):
    return {name.partition("_")[2]: p.data().asnumpy().copy() for name, p in net.collect_params().items()}


def test_the_audit_leaves_the_block_and_trainer_as_they_were(gluon):
    """After a step of training, the audit leaves every value as it was, and two more steps equal a
    never-audited twin's exactly: the Adam moments, update counters (Adam's bias correction) and
    FactorScheduler's state were put back."""
    mx, gluon_, audit = gluon
    from mxnet import autograd

    def made():
        net = model(mx, gluon_)
        schedule = mx.lr_scheduler.FactorScheduler(step=1, factor=0.5)
        return net, gluon_.Trainer(
            net.collect_params(), "adam", {"learning_rate": LR, "wd": WD, "lr_scheduler": schedule}
        )

    (net, trainer), (twin, twin_trainer) = made(), made()
    for pair in ((net, trainer), (twin, twin_trainer)):
        _train(mx, autograd, *pair, steps=1)
    before = _values(net)
    audit((net, trainer))
    after = _values(net)
    assert all(np.array_equal(after[name], before[name]) for name in before)
    _train(mx, autograd, net, trainer, steps=2)
    _train(mx, autograd, twin, twin_trainer, steps=2)
    trained, twin_trained = _values(net), _values(twin)
    assert all(np.array_equal(trained[name], twin_trained[name]) for name in trained)


def test_other_objects_are_a_usage_error_naming_their_type(gluon):
    mx, gluon_, audit = gluon
    net = model(mx, gluon_)
    trainer = gluon_.Trainer(net.collect_params(), "sgd")
    torch_like = type("SGD", (), {"__module__": "torch.optim.sgd"})()  # another framework's optimizer, by its type
    cases = [
        ((net, torch_like), "torch.optim.sgd.SGD"),
        ((net, mx.optimizer.SGD()), "mxnet.optimizer.optimizer.SGD"),
        ("net", "returned str;"),
        ((net, trainer, None), "NoneType)"),
    ]
    for objects, named in cases:
        with pytest.raises(UsageError, match=re.escape(named)) as error:
            audit(objects)
        assert "mxnet.gluon.Trainer" in str(error.value)
