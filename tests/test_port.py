"""``decaylens port`` over the golden fingerprints: what it reads a call as, the call it answers with,
and, in the target's env, that the answer trains as the source's call does."""

import ast
import dataclasses
import shutil
from pathlib import Path

import pytest

from harness import cli, diff, oracle, port, probes
from harness.explain import PLACEMENTS
from harness.fingerprint import Fingerprint

GOLDEN = Path(__file__).parent / "golden"

# (source, the user's call, target) -> the target's statements, derived from the rules each golden pins:
# torch's SGD, Adam and optax's add_decayed_weights couple λ×1 into the gradient (the bias too, when
# the call says nothing of it); Keras's weight_decay is decoupled × lr, so a coupled λ goes to its
# L2 regularizer, λΣw², at λ/2 on kernel and bias; torch's and Keras's AdamW, optax.adamw and Keras's
# Adam weight_decay are decoupled × lr ×1, so λ is unchanged.
SGD = "torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)"
ADAM = "torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=0.01)"
ADAMW = "torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)"
KERAS_REGULARIZED = (  # the whole probe's code: it asks for the bias to decay, by the layer's bias_regularizer
    "keras.backend.set_floatx('float64')",
    "model = keras.Sequential([keras.layers.Dense(1, dtype='float64', kernel_regularizer=keras.regularizers.L2({l}), "
    "bias_regularizer=keras.regularizers.L2({l}))])",
    "model.build((None, 2))",
    "mse = keras.losses.MeanSquaredError()",
    "loss = 0.5 * mse(y, model(x))",
    "loss = loss + sum(model.losses)",
)
QUESTIONS = {
    ("torch", SGD, "jax"): [
        "optimizer = optax.chain(optax.add_decayed_weights(weight_decay=0.0001), "
        "optax.sgd(learning_rate=0.1, momentum=0.9, nesterov=False))"
    ],
    ("torch", SGD, "tensorflow"): [
        *(line.format(l=5e-05) for line in KERAS_REGULARIZED),
        "optimizer = keras.optimizers.SGD(learning_rate=0.1, momentum=0.9)",
        "optimizer.build(params)",
    ],
    ("torch", ADAM, "jax"): [
        "optimizer = optax.chain(optax.add_decayed_weights(weight_decay=0.01), "
        "optax.adam(learning_rate=0.001, b1=0.9, b2=0.999, eps=1e-08))"
    ],
    ("torch", ADAM, "tensorflow"): [
        *(line.format(l=0.005) for line in KERAS_REGULARIZED),
        "optimizer = keras.optimizers.Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-08)",
        "optimizer.build(params)",
    ],
    ("torch", ADAMW, "jax"): [
        "optimizer = optax.adamw(learning_rate=0.001, b1=0.9, b2=0.999, eps=1e-08, weight_decay=0.01)"
    ],
    ("torch", ADAMW, "tensorflow"): [
        "optimizer = keras.optimizers.AdamW(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-08, "
        "weight_decay=0.01)"
    ],
    ("tensorflow", "keras.optimizers.SGD(learning_rate=0.1, momentum=0.9, weight_decay=1e-4)", "torch"): [],
    ("tensorflow", "keras.optimizers.Adam(learning_rate=1e-3, weight_decay=0.01)", "torch"): [
        "optimizer = torch.optim.AdamW(params, lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.01)"
    ],
    ("tensorflow", "keras.optimizers.AdamW(learning_rate=1e-3, weight_decay=0.004)", "torch"): [
        "optimizer = torch.optim.AdamW(params, lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.004)"
    ],
}


def golden(backend):
    return Fingerprint.load(GOLDEN / f"{backend}.json")


@pytest.mark.parametrize("source, call, target", list(QUESTIONS))
def test_port_answers_with_the_targets_call_at_the_converted_lambda(source, call, target):
    answer = port.port(call, golden(source), golden(target))
    assert list(answer.lines) == QUESTIONS[source, call, target], answer
    if not answer.lines:  # Keras's SGD decays decoupled × lr, beside momentum: torch's SGD couples its decay
        assert "coupled" in answer.conversion.reason


def test_keras_sgd_with_momentum_has_no_torch_setting_and_says_why():
    answer = port.port(
        "keras.optimizers.SGD(learning_rate=0.1, momentum=0.9, weight_decay=1e-4)",
        *map(golden, ("tensorflow", "torch")),
    )
    assert port.describe(answer) == [f"torch: no setting trains alike: {answer.conversion.reason}"]
    assert answer.conversion.reason == "weight_decay is coupled, l2_loss is coupled"


def test_a_convention_apart_is_said_beside_the_answer():
    """torch's Adam adds ε outside √v̂, Keras's before the bias correction: the same decay, steps apart."""
    answer = port.port(ADAMW, golden("torch"), golden("tensorflow"))
    assert "eps convention" in answer.caveat and any(
        "but adam's eps convention" in line for line in port.describe(answer)
    )


@pytest.mark.parametrize(
    "call, optimizer, kind, lr, strength, given",
    [
        (SGD, "momentum", "weight_decay", 0.1, 1e-4, ""),
        (
            "torch.optim.SGD(params, 0.1, nesterov=True, momentum=0.9)",
            "nesterov",
            "weight_decay",
            0.1,
            0.0,
            "not given",
        ),
        ("optim.SGD(params, lr=0.1)", "sgd", "weight_decay", 0.1, 0.0, "not given"),
        ("torch.optim.AdamW(params, lr=1e-3)", "adam", "decoupled", 1e-3, 0.01, "fitted"),  # torch's default λ
    ],
)
def test_a_call_reads_as_the_probe_of_its_function_flags_and_arguments(call, optimizer, kind, lr, strength, given):
    source = port.identify(port.parse(call), golden("torch"))
    assert (source.key.optimizer, source.key.kind, source.lr) == (optimizer, kind, lr)
    assert given in source.given and bool(source.given) == bool(given)
    assert source.strength == pytest.approx(strength)


def test_an_lr_by_position_and_hyperparameters_by_keyword_carry_over():
    answer = port.port("optax.adamw(1e-3, b2=0.98, weight_decay=1e-4)", golden("jax"), golden("torch"))
    assert answer.lines == (
        "optimizer = torch.optim.AdamW(params, lr=0.001, betas=(0.9, 0.98), eps=1e-08, weight_decay=0.0001)",
    )


def test_numbers_by_position_inside_a_chain_are_refused_with_the_probed_call():
    call = "optax.chain(optax.add_decayed_weights(1e-4), optax.sgd(0.1))"
    with pytest.raises(port.UsageError, match="pass them by keyword, as the probed call does: optax.chain"):
        port.port(call, golden("jax"), golden("torch"))


def test_an_answer_that_spares_the_bias_shows_every_statement_of_its_idiom():
    """Keras's L2 regularizer on the kernel alone is λΣw² with the bias spared: in optax that is
    add_decayed_weights with a mask, which the answer defines."""
    call = "keras.layers.Dense(1, kernel_regularizer=keras.regularizers.L2(1e-4))"
    answer = port.port(call, golden("tensorflow"), golden("jax"))
    assert answer.target_key.decay_bias is False and answer.strength == 2e-4
    assert any(line.startswith("mask = ") for line in answer.lines), answer.lines
    assert any("add_decayed_weights(weight_decay=0.0002, mask=mask)" in line for line in answer.lines), answer.lines


@pytest.fixture
def results(tmp_path):
    """A results directory holding the golden fingerprints of torch, jax and tensorflow."""
    for backend in ("torch", "jax", "tensorflow"):
        shutil.copy(GOLDEN / f"{backend}.json", tmp_path / f"semantics-{backend}.json")
    return tmp_path


def test_port_prints_the_reading_and_each_targets_answer(results, capsys):
    assert cli.main(["port", "--from", "torch", ADAMW, "--results", str(results)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == [
        f"torch: {ADAMW}",
        "  adam decoupled: decoupled × lr ×1, bias decayed, loss half_mse; λ = 0.01, lr = 0.001",
    ]
    assert "tensorflow:" in out and "jax:" in out and "torch:" not in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--from", "torch", "torch.optim.SGD(params, lr="], "cannot parse 'torch.optim.SGD(params, lr=' as Python"),
        (["--from", "torch", "lr=0.1"], "cannot parse"),
        (["--from", "torch", "0.1 + 2"], "is not a call such as"),
        (
            ["--from", "torch", "torch.optim.Foo(params)"],
            "no probed torch optimizer call is torch.optim.Foo; the probed",
        ),
        (["--from", "mxnet", SGD], "no fingerprint of mxnet in"),
        (
            ["--from", "torch", SGD, "--to", "paddle"],
            "python3 -m tox exec -e paddle -- decaylens probe --backend paddle",
        ),
        (["--from", "pytorch", SGD], "unknown backend 'pytorch'"),
    ],
)
def test_a_call_or_backend_it_cannot_answer_for_is_one_line_and_exit_status_2(results, capsys, argv, message):
    assert cli.main(["port", *argv, "--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def oracle_of(explained, strength, conventions_of):
    """``explained``'s rule at λ = ``strength`` (its coefficient k·λ), the optimizer's conventions those
    of ``conventions_of``'s rule."""
    rule = conventions_of.rule
    decays = {placement: 0.0 for placement in PLACEMENTS}
    decays[explained.form.placement] = explained.form.multiplier * strength
    return dataclasses.replace(
        rule, **decays, loss=explained.rule.loss, decay_bias=explained.rule.decay_bias, spared=explained.rule.spared
    )


@pytest.mark.parametrize("source, call, target", [q for q, lines in QUESTIONS.items() if lines])
def test_the_answer_run_in_the_target_trains_as_the_source_call_does(load_adapter, source, call, target):
    """In the target's env: the answer's case on the probe problem runs the printed statements, and its
    weights follow, step by step, the source's rule at the user's λ (in the target's own conventions
    where the answer says they differ)."""
    adapter = load_adapter(target)
    answer = port.port(call, golden(source), golden(target))
    _, case = port.check_cases(answer)
    arrays = probes.probe_arrays(case)
    trajectory = adapter.train(case, arrays)
    ran = [ast.dump(ast.parse(line)) for line in port.statements(trajectory.api)]
    assert all(ast.dump(ast.parse(line)) in ran for line in answer.lines), trajectory.api
    conventions_of = answer.target_probe.explained if answer.caveat else answer.source.probe.explained
    rule = oracle_of(answer.source.probe.explained, answer.source.strength, conventions_of)
    gaps = diff.relative_gaps((trajectory.w, trajectory.b), oracle.simulate(rule, case, arrays))
    tolerance = diff.tolerance(case.model.dtype, trajectory.hyperparameter_dtype)
    assert gaps.max() <= tolerance, f"{answer.lines}: gap {gaps.max():.3g}"
