"""The torch auditor on a model with every role, under each sparing idiom torch users write: the
audit's verdict per tensor against the rule the oracle finds from a full training run of the same
setup (its steps predicted by ``harness.steps`` along the run, tensor by tensor); the user's objects
as they were; what the auditor refuses."""

import types

import numpy as np
import pytest

from harness import oracle, steps
from harness.audit import audit_objects
from harness.case import Case
from harness.errors import UsageError

LR, DECAY, STEPS = 1e-2, 0.1, 6
# A float32 step against the float64 oracle's prediction of it from the same parameters and gradient: the
# rule that explains the run predicts every value to float32 rounding; the others miss by about lr·λ·|w|.
STEP_TOLERANCE = 1e-5
CANDIDATES = ("none", "coupled", "decoupled_lr")


def _torch(auditor):
    name, _ = auditor
    if name != "torch":
        pytest.skip("a torch auditor test")
    import torch

    return torch


def model(torch):
    """Embedding → Linear → LayerNorm → BatchNorm1d → RMSNorm → Linear, and a learned position."""
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(12, 6)
            self.pos_embed = nn.Parameter(torch.randn(1, 3, 6))
            self.fc1, self.ln, self.bn, self.rms = nn.Linear(6, 8), nn.LayerNorm(8), nn.BatchNorm1d(8), nn.RMSNorm(8)
            self.head = nn.Linear(8, 2)

        def forward(self, tokens):
            h = (self.embed(tokens) + self.pos_embed).mean(1)
            return self.head(self.rms(self.bn(torch.relu(self.ln(self.fc1(h))))))

    torch.manual_seed(0)
    return Net()


def by_name(torch, net):
    """The Hugging Face idiom: a no-decay list of name fragments (here one that misses bn and rms)."""
    no_decay = ["bias", "ln.weight"]
    named = list(net.named_parameters())
    return [
        {"params": [p for n, p in named if not any(s in n for s in no_decay)], "weight_decay": DECAY},
        {"params": [p for n, p in named if any(s in n for s in no_decay)], "weight_decay": 0.0},
    ]


def by_dim(torch, net):
    """The ``p.dim() >= 2`` idiom: it spares norms and biases, and decays the embedding."""
    params = list(net.parameters())
    return [{"params": [p for p in params if p.dim() >= 2], "weight_decay": DECAY},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]  # fmt: skip


def by_module(torch, net):
    """Decay only the weights of nn.Linear modules."""
    linear = {id(m.weight) for m in net.modules() if isinstance(m, torch.nn.Linear)}
    params = list(net.parameters())
    return [{"params": [p for p in params if id(p) in linear], "weight_decay": DECAY},
            {"params": [p for p in params if id(p) not in linear], "weight_decay": 0.0}]  # fmt: skip


IDIOMS = {"by name": by_name, "p.dim() >= 2": by_dim, "by module type": by_module}
OPTIMIZERS = {  # torch class, its kwargs, the oracle's optimizer
    "AdamW": ("AdamW", {}, {"optimizer.name": "adam"}),
    "Adam": ("Adam", {}, {"optimizer.name": "adam"}),
    "SGD momentum": ("SGD", {"momentum": 0.9}, {"optimizer.name": "momentum", "optimizer.momentum": 0.9}),
}


def build(torch, idiom, optimizer):
    net = model(torch)
    kind, kwargs, _ = OPTIMIZERS[optimizer]
    return net, getattr(torch.optim, kind)(IDIOMS[idiom](torch, net), lr=LR, **kwargs)


def full_run(torch, net, opt):
    """Each parameter's values before every step and after the last, and its gradient at every step."""
    generator = torch.Generator().manual_seed(1)
    values, gradients = {n: [] for n, _ in net.named_parameters()}, {n: [] for n, _ in net.named_parameters()}
    for _ in range(STEPS):
        tokens, target = torch.randint(0, 12, (5, 3), generator=generator), torch.randn(5, 2, generator=generator)
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(tokens), target).backward()
        for n, p in net.named_parameters():
            values[n].append(p.detach().double().numpy().ravel().copy())
            gradients[n].append(p.grad.double().numpy().ravel().copy())
        opt.step()
    for n, p in net.named_parameters():
        values[n].append(p.detach().double().numpy().ravel().copy())
    return values, gradients


def oracle_placement(values, gradients, optimizer):
    """The placement (CANDIDATES, λ as the group states it) whose oracle step predicts the run's."""
    _, _, settings = OPTIMIZERS[optimizer]
    case = Case().replace({**settings, "optimizer.lr": LR})
    size = len(values[0])
    tensors = [types.SimpleNamespace(index=slice(0, size), role="hidden_weight")]
    rules = [oracle.Rule(**({} if c == "none" else {c: DECAY})) for c in CANDIDATES]
    step = steps.Step(rules, case, tensors, oracle.multipliers(case.schedule, STEPS))
    errors = np.zeros(len(rules))
    for t in range(STEPS):
        p = np.tile(values[t], (len(rules), 1))
        predicted = step(p, np.tile(gradients[t], (len(rules), 1)), t + 1)
        errors = np.maximum(errors, np.max(np.abs(predicted - values[t + 1]), axis=1))
    best = int(np.argmin(errors))
    assert errors[best] < STEP_TOLERANCE, f"no rule explains the run: {dict(zip(CANDIDATES, errors, strict=True))}"
    return CANDIDATES[best]


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("idiom", IDIOMS)
def test_the_audit_per_tensor_matches_the_oracle_on_a_full_run(auditor, idiom, optimizer):
    torch = _torch(auditor)
    found = {f.name: f for f in audit_objects("torch", build(torch, idiom, optimizer), "test").findings}
    values, gradients = full_run(torch, *build(torch, idiom, optimizer))
    for name in values:
        expected = oracle_placement(values[name], gradients[name], optimizer)
        placement = found[name].placement
        assert placement == expected or (expected, placement) == ("none", "none"), f"{name}: {placement} ≠ {expected}"


EXPECTED_FLAGS = {  # the idiom -> the parameters flagged decayed, by the idiom's own definition above
    "by name": {"embed.weight", "pos_embed", "bn.weight", "rms.weight"},
    "p.dim() >= 2": {"embed.weight", "pos_embed"},
    "by module type": set(),
}


@pytest.mark.parametrize("idiom", IDIOMS)
def test_each_idiom_spares_what_its_own_definition_says(auditor, idiom):
    torch = _torch(auditor)
    found = audit_objects("torch", build(torch, idiom, "AdamW"), "test")
    flagged = {f.name for f in found.findings if {"decays_norm", "decays_embedding", "decays_bias"} & set(f.flags)}
    assert flagged == EXPECTED_FLAGS[idiom]
    roles = {f.name: f.role for f in found.findings}
    assert roles == {
        "pos_embed": "positional", "embed.weight": "embedding", "fc1.weight": "kernel", "fc1.bias": "bias",
        "ln.weight": "norm_scale", "ln.bias": "norm_shift", "bn.weight": "norm_scale", "bn.bias": "norm_shift",
        "rms.weight": "norm_scale", "head.weight": "kernel", "head.bias": "bias",
    }  # fmt: skip


def test_the_user_objects_are_as_they_were_and_train_as_a_twin(auditor):
    torch = _torch(auditor)
    net, opt = build(torch, "by name", "AdamW")
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    audit_objects("torch", (net, opt, scheduler), "test")
    assert all(torch.equal(p, before[n]) for n, p in net.named_parameters())
    twin, twin_opt = build(torch, "by name", "AdamW")
    twin_scheduler = torch.optim.lr_scheduler.StepLR(twin_opt, step_size=1, gamma=0.5)
    trained = [full_run(torch, n, o) for n, o in ((net, opt), (twin, twin_opt))]
    assert all(np.array_equal(trained[0][0][n][-1], trained[1][0][n][-1]) for n in trained[0][0])
    assert scheduler.state_dict() == twin_scheduler.state_dict()


def test_a_bf16_model_whose_decay_rounds_away_is_flagged(auditor):
    torch = _torch(auditor)
    net = model(torch).to(torch.bfloat16)
    found = audit_objects("torch", (net, torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.01)), "t")
    assert all(f.flags == ("rounds_away",) for f in found.findings)


def test_a_frozen_parameter_and_one_outside_the_optimizer_are_never_updated(auditor):
    torch = _torch(auditor)
    net = model(torch)
    net.embed.weight.requires_grad_(False)
    opt = torch.optim.AdamW([p for n, p in net.named_parameters() if n != "head.bias"], lr=LR)
    found = {f.name: f for f in audit_objects("torch", (net, opt), "t").findings}
    assert {n for n, f in found.items() if "never_updated" in f.flags} == {"embed.weight", "head.bias"}
    assert found["head.bias"].groups == ()


@pytest.mark.parametrize("objects", ["a string", "another framework's optimizer", "a single module"])
def test_objects_the_torch_auditor_does_not_take_are_named(auditor, objects):
    torch = _torch(auditor)
    net = model(torch)
    given = {"a string": (net, "adamw"), "another framework's optimizer": (net, types.SimpleNamespace()),
             "a single module": net}[objects]  # fmt: skip
    with pytest.raises(UsageError, match=r"the torch auditor takes \(torch.nn.Module"):
        audit_objects("torch", given, "m.py:build")


def test_the_pytest_plugin_pins_a_setup_by_its_installed_fixture(auditor, decay_audit):
    """The fixture comes from decaylens's pytest11 entry point, as in a project that installs decaylens."""
    torch = _torch(auditor)
    decay_audit(*build(torch, "by module type", "AdamW")).assert_spares("norm", "bias", "embedding")
    with pytest.raises(AssertionError, match=r"embed\.weight \(embedding"):
        decay_audit(*build(torch, "p.dim() >= 2", "AdamW")).assert_spares("embedding")
