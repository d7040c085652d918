"""``decaylens port`` over the golden fingerprints: what it reads a user's code as (the source framework's
defaults for what the code leaves out), the target lines it writes, and its one-line refusals. That the
lines train as the code does is checked by running both (tests/test_port_check.py, the port env)."""

import shutil
from pathlib import Path

import pytest

from harness import cli, port
from harness.fingerprint import Fingerprint

GOLDEN = Path(__file__).parent / "golden"


def golden(backend):
    return Fingerprint.load(GOLDEN / f"{backend}.json")


def reading(backend, code):
    return port.validated(port.read(code, golden(backend)))


def answer(source, code, target):
    return port.port(reading(source, code), golden(source), golden(target))


# What each framework does with a hyperparameter the code leaves out, as its signature says (torch
# 2.13: torch/optim/rmsprop.py `alpha: float = 0.99`, adadelta.py `lr=1.0, eps=1e-6`, adagrad.py
# `eps=1e-10`, adamw.py `weight_decay=1e-2`; Keras 3.15: keras/src/optimizers/adam.py `epsilon=1e-7`;
# MXNet 1.9.1: optimizer.py Optimizer.__init__ `learning_rate=None` made 0.01, SGD `momentum=0.0`).
DEFAULTS = [
    ("torch", "torch.optim.RMSprop(model.parameters(), lr=0.01, weight_decay=1e-4)", {"optimizer.rho": 0.99}),
    (
        "torch",
        "torch.optim.Adadelta(model.parameters(), weight_decay=1e-4)",
        {"optimizer.lr": 1.0, "optimizer.eps": 1e-6},
    ),
    ("torch", "torch.optim.Adagrad(model.parameters(), lr=0.01)", {"optimizer.eps": 1e-10}),
    ("torch", "torch.optim.AdamW(model.parameters(), lr=1e-3)", {"penalty.strength": 0.01}),
    ("tensorflow", "keras.optimizers.Adam(learning_rate=1e-3, weight_decay=0.004)", {"optimizer.eps": 1e-7}),
    ("mxnet", "gluon.Trainer(net.collect_params(), 'sgd', {'wd': 1e-4})", {"optimizer.lr": 0.01}),
]


@pytest.mark.parametrize("backend, code, expected", DEFAULTS)
def test_what_the_code_leaves_out_is_its_frameworks_default(backend, code, expected):
    found = reading(backend, code)
    assert {field: found.values[field] for field in expected} == pytest.approx(expected)
    assert set(expected) <= set(found.defaulted)


def test_the_answer_writes_every_hyperparameter_the_source_runs_with():
    """torch's RMSprop at its α = 0.99, not the probe's 0.9: optax.rmsprop is given decay=0.99."""
    (line,) = [s.text for s in answer("torch", DEFAULTS[0][1], "jax").printed if "rmsprop" in s.text]
    assert "decay=0.99" in line and "learning_rate=0.01" in line and "eps=1e-08" in line


def test_parameter_groups_spare_what_the_user_named_by_the_targets_idiom():
    code = (
        "torch.optim.AdamW([{'params': decay, 'weight_decay': 0.01}, {'params': no_decay, 'weight_decay': 0.0}],"
        " lr=1e-3)"
    )
    found = answer("torch", code, "tensorflow")
    assert found.reading.key.decay_bias is False and found.reading.strength == 0.01
    texts = [s.text for s in found.printed]
    assert "optimizer.exclude_from_weight_decay(var_list=no_decay)" in texts, texts
    assert [b.text for b in found.bindings][:1] == ["no_decay = [model.layers[0].bias]"]


def test_groups_at_several_lambdas_are_refused_with_what_they_hold():
    code = "torch.optim.SGD([{'params': a, 'weight_decay': 0.1}, {'params': b, 'weight_decay': 0.01}], lr=0.1)"
    with pytest.raises(port.UsageError, match="several λ or lr .a: λ = 0.1, lr = 0.1; b: λ = 0.01"):
        reading("torch", code)


def test_a_decay_chained_after_the_lr_scaling_is_named_as_the_growth_it_is():
    """optax.chain(optax.sgd(...), optax.add_decayed_weights(λ)): its probe (the after_lr variant) follows
    decoupled ×−1, so no target is written, and the answer says why."""
    found = answer(
        "jax", "optax.chain(optax.sgd(learning_rate=0.1, momentum=0.9), optax.add_decayed_weights(3e-6))", "torch"
    )
    assert found.reading.key.variant == "after_lr" and not found.printed
    assert "grows by ×(1 + λ) a step (×1.000003 here)" in found.conversion.reason


def test_a_schedule_given_as_the_lr_is_written_as_the_targets_schedule():
    code = "optax.adamw(learning_rate=optax.warmup_cosine_decay_schedule(0.0, 1e-3, 100, 1000), weight_decay=0.05)"
    found = answer("jax", code, "torch")
    assert found.reading.key.schedule == "warmup_cosine"
    assert found.reading.values["schedule.warmup"] == 100 and found.reading.values["steps"] == 1000
    texts = " ".join(s.text for s in found.printed)
    assert "warmup=100, steps=1000" in texts and "LambdaLR(optimizer, multiplier)" in texts


@pytest.fixture
def results(tmp_path):
    """A results directory holding the golden fingerprints of torch, jax and tensorflow."""
    for backend in ("torch", "jax", "tensorflow"):
        shutil.copy(GOLDEN / f"{backend}.json", tmp_path / f"semantics-{backend}.json")
    return tmp_path


ADAMW = "torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)"


def test_port_prints_the_reading_and_each_targets_answer(results, capsys):
    assert cli.main(["port", "--from", "torch", ADAMW, "--results", str(results)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == ["torch:", f"  {ADAMW}", out[2]] and out[2].startswith("  read as adam decoupled, the bias as")
    assert "tensorflow:" in out and "jax:" in out and "torch:" not in out[1:]


@pytest.mark.parametrize(
    "code, message",
    [
        ("torch.optim.SGD(params, lr=", "cannot parse the code as Python"),
        ("lr=0.1", "the code calls no function"),
        ("0.1 + 2", "the code calls no function"),
        ("torch.optim.Foo(params, lr=0.1)", "no torch API port knows calls Foo; it reads"),
        ("torch.optim.SGD(params, lr=0)", "the code's optimizer.lr = 0"),
        ("torch.optim.SGD(params, lr=-0.1)", "the code's optimizer.lr = -0.1"),
        ("torch.optim.SGD(params, lr=1e999)", "the code's optimizer.lr = Infinity is not allowed"),
        ("torch.optim.SGD(params, lr=0.1, weight_decay=-1)", "the code's penalty.strength = -1"),
        ("torch.optim.SGD(params, lr=0.1, momentum=1.5)", "the code's optimizer.momentum = 1.5"),
        ("torch.optim.Adam(params, lr=0.1, betas=(1.5, -2))", "the code's optimizer.beta1 = 1.5"),
        ("torch.optim.SGD(params, lr=" + "9" * 400 + ")", "a number too large for a float"),
        ("torch.optim.SGD(params, lr=" + "(" * 1000 + "0.1" + ")" * 1000 + ")", "cannot parse the code as Python"),
        ("torch.optim.SGD(params, lr=-'x')", "the lr is -'x'; port reads a number or a schedule"),
        ("torch.optim.SGD(params, lr=-None)", "the lr is -None; port reads a number or a schedule"),
        ("torch.optim.SGD(params, lr=a.b(c.d(1)))", "a schedule port does not read"),
        ("x" * 20_000, "at most 10000"),
    ],
)
def test_code_it_cannot_answer_for_is_one_line_and_exit_status_2(results, capsys, code, message):
    assert cli.main(["port", "--from", "torch", code, "--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_a_backend_it_has_no_fingerprint_of_is_one_line_naming_the_command(results, capsys):
    assert cli.main(["port", "--from", "mxnet", ADAMW, "--results", str(results)]) == 2
    assert "no fingerprint of mxnet in" in capsys.readouterr().err
    assert cli.main(["port", "--from", "torch", ADAMW, "--to", "paddle", "--results", str(results)]) == 2
    assert "python3 -m tox exec -e paddle -- decaylens probe --backend paddle" in capsys.readouterr().err
    assert cli.main(["port", "--from", "pytorch", ADAMW, "--results", str(results)]) == 2
    assert "unknown backend 'pytorch'" in capsys.readouterr().err
