"""decaylens audit of a Paddle layer and its optimizer: what the auditor measures against what
paddle/optimizer/*.py says each optimizer does, AdamW's apply_decay_param_fun, a frozen parameter,
and the user's objects left as they were."""

import re

import numpy as np
import pytest

from harness.audit import audit_objects
from harness.audit.findings import DECAYED_FLAGS
from harness.errors import UsageError

LR, WD = 0.1, 0.01
# The zero-gradient factor 1 − lr·λ, measured on float32 weights: rounding each sampled value moves it by < 1e-7.
FACTOR_TOLERANCE = 1e-6
# PaddleNLP's idiom: decay the parameters whose structured name holds none of these.
NO_DECAY = ("bias", "norm", "bn")


@pytest.fixture
def paddle(auditor):
    """(paddle, audit(objects)) in the paddle env; the test skips elsewhere."""
    name, _ = auditor
    if name != "paddle":
        pytest.skip("the Paddle auditor's tests run on backend paddle")
    import paddle

    return paddle, lambda objects: audit_objects(name, objects, "test")


def model(paddle):
    """A layer with every role Paddle has (paddle.nn has no RMSNorm): Embedding, Linear, LayerNorm,
    BatchNorm1D, Linear, initialized from a fixed seed."""

    class Net(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.embed = paddle.nn.Embedding(10, 4)
            self.dense = paddle.nn.Linear(4, 4)
            self.norm = paddle.nn.LayerNorm(4)
            self.bn = paddle.nn.BatchNorm1D(4)
            self.head = paddle.nn.Linear(4, 2)

        def forward(self, x):
            return self.head(self.bn(self.norm(self.dense(self.embed(x)))))

    paddle.seed(0)
    return Net()


@pytest.mark.parametrize(
    "optimizer, settings, placement",
    [
        # weight_decay=float is L2Decay(λ) (optimizer.py:269-270), its λ·w added to the gradient
        # (optimizer.py:1775-1784): coupled, which for plain SGD is the same update as a decay × lr.
        ("SGD", {}, "coupled_or_decoupled_lr"),
        # Momentum fuses L2Decay into its kernel's gradient (momentum.py:290-300): coupled, through momentum.
        ("Momentum", {"momentum": 0.9}, "coupled"),
        ("Adam", {}, "coupled"),
        # AdamW: param − lr·(m̂/(√v̂ + ε) + λ·param) (adamw.py:69-71): decoupled × lr.
        ("AdamW", {}, "decoupled_lr"),
    ],
)
def test_the_optimizer_decays_every_parameter_where_its_source_says(paddle, optimizer, settings, placement):
    """Every parameter handed to the optimizer decays; BatchNorm's _mean and _variance are statistics
    and do not appear."""
    paddle_, audit = paddle
    net = model(paddle_)
    kind = getattr(paddle_.optimizer, optimizer)
    found = audit((net, kind(learning_rate=LR, parameters=net.parameters(), weight_decay=WD, **settings)))
    assert [f.name for f in found.findings if "bn" in f.name] == ["bn.weight", "bn.bias"]
    assert {f.role for f in found.findings} == {"embedding", "kernel", "bias", "norm_scale", "norm_shift"}
    assert {f.placement for f in found.findings} == {placement}, [(f.name, f.placement) for f in found.findings]
    for f in found.findings:
        assert f.nominal == pytest.approx({"lr": LR, "weight_decay": WD})
        assert f.decays and f.flags == ((DECAYED_FLAGS[f.role],) if f.role in DECAYED_FLAGS else ()), f
        if placement != "coupled":
            assert f.factor == pytest.approx(1 - LR * WD, abs=FACTOR_TOLERANCE), f.name


def test_apply_decay_param_fun_spares_the_names_it_refuses(paddle):
    """AdamW(apply_decay_param_fun=lambda name: name in decay) with the Tensor.names of the decayed
    parameters, as PaddleNLP writes it: the others get with_decay = False (adamw.py:479-484), none."""
    paddle_, audit = paddle
    net = model(paddle_)
    decay = [p.name for n, p in net.named_parameters() if not any(word in n for word in NO_DECAY)]
    optimizer = paddle_.optimizer.AdamW(
        learning_rate=LR, parameters=net.parameters(), weight_decay=WD, apply_decay_param_fun=lambda n: n in decay
    )
    found = audit((net, optimizer))
    spared = {f.name for f in found.findings if any(word in f.name for word in NO_DECAY)}
    assert spared == {"dense.bias", "norm.weight", "norm.bias", "bn.weight", "bn.bias", "head.bias"}
    for f in found.findings:
        expected = ("none", 0.0, ()) if f.name in spared else ("decoupled_lr", WD, f.flags)
        assert (f.placement, f.nominal["weight_decay"], f.flags) == expected, f


def test_a_frozen_parameter_is_never_updated(paddle):
    """stop_gradient = True: Optimizer.step skips the parameter (optimizer.py:2053)."""
    paddle_, audit = paddle
    net = model(paddle_)
    net.dense.weight.stop_gradient = True
    found = audit((net, paddle_.optimizer.SGD(learning_rate=LR, parameters=net.parameters(), weight_decay=WD)))
    frozen = [f for f in found.findings if f.placement == "frozen"]
    assert [(f.name, f.flags) for f in frozen] == [("dense.weight", ("never_updated",))]


def _train(paddle, net, optimizer, steps):
    """``steps`` steps of a squared output on a fixed batch of 4 token ids."""
    x = paddle.to_tensor([1, 3, 5, 7])
    for _ in range(steps):
        (net(x) ** 2).sum().backward()
        optimizer.step()
        optimizer.clear_grad()


def _values(net):
    return {name: value.numpy().copy() for name, value in net.state_dict().items()}


def test_the_audit_leaves_the_layer_and_optimizer_as_they_were(paddle):
    """After a step of training, the audit leaves every value and the optimizer's attributes as they
    were, and two more steps equal a never-audited twin's exactly: AdamW's moments and β powers, in
    groups with their own λ and lr, were put back."""
    paddle_, audit = paddle

    def made():
        net = model(paddle_)
        groups = [
            {"params": [net.embed.weight, net.dense.weight, net.head.weight]},
            {
                "params": [p for n, p in net.named_parameters() if "weight" not in n],
                "weight_decay": 0.0,
                "learning_rate": 0.5,
            },
        ]
        return net, paddle_.optimizer.AdamW(learning_rate=LR, parameters=groups, weight_decay=WD)

    (net, optimizer), (twin, twin_optimizer) = made(), made()
    twin.set_state_dict(net.state_dict())
    for pair in ((net, optimizer), (twin, twin_optimizer)):
        _train(paddle_, *pair, steps=1)
    before, attributes = _values(net), dict(vars(optimizer))
    audit((net, optimizer))
    after = _values(net)
    assert all(np.array_equal(after[name], before[name]) for name in before)
    assert vars(optimizer).keys() == attributes.keys()
    assert all(vars(optimizer)[key] is value for key, value in attributes.items())
    _train(paddle_, net, optimizer, steps=2)
    _train(paddle_, twin, twin_optimizer, steps=2)
    trained, twin_trained = _values(net), _values(twin)
    assert all(np.array_equal(trained[name], twin_trained[name]) for name in trained)


def test_other_objects_are_a_usage_error_naming_their_type(paddle):
    paddle_, audit = paddle
    net = model(paddle_)
    optimizer = paddle_.optimizer.SGD(learning_rate=LR, parameters=net.parameters())
    torch_like = type("SGD", (), {"__module__": "torch.optim.sgd"})()  # another framework's optimizer, by its type
    cases = [
        ((net, torch_like), "torch.optim.sgd.SGD"),
        ((net, paddle_.optimizer.lr.StepDecay(LR, step_size=1)), "paddle.optimizer.lr.StepDecay"),
        ("net", "returned str;"),
        ((net, optimizer, None), "NoneType)"),
    ]
    for objects, named in cases:
        with pytest.raises(UsageError, match=re.escape(named)) as error:
            audit(objects)
        assert "paddle.optimizer.Optimizer" in str(error.value)
