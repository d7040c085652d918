"""decaylens audit's harness side, no framework: where λ enters, from steps of optimizers written
out here in NumPy (each the update its docstring states); the flags; the document; the command's
errors. The framework auditors are tested in their envs (tests/test_audit_<framework>.py)."""

import math
import types

import numpy as np
import pytest

from backends.contract import Parameter
from harness import cli
from harness.audit import findings, measure, plugin, text
from harness.audit.findings import Audit

LR, DECAY, MOMENTUM, SMALL = 1e-3, 0.01, 0.9, 1e-4
# The lr measured from a first step of gradient g, lr·g (SGD) or lr·sign(g) (Adam): Adam's carries the decay's
# own step s·w, which averages to s·mean(w·sign g) over 256 samples, ≈ s/16: 1 % of lr at the largest s here.
LR_TOLERANCE = 0.01
# A measured factor against its closed form: the float64 steps here round at 1e-16, far inside this.
FACTOR_TOLERANCE = 1e-12


def sgd(coupled=0.0, decoupled=0.0, momentum=0.0, after_lr=0.0):
    """b ← momentum·b + g + coupled·w (torch SGD's buffer, b₀ = 0); w ← w − lr·b − lr·decoupled·w + after_lr·w."""

    def step(w, g, b):
        b = momentum * (0.0 if b is None else b) + g + coupled * w
        return w - LR * b - LR * decoupled * w + after_lr * w, b

    return step


def adam(coupled=0.0, decoupled=0.0):
    """Adam (β₁ 0.9, β₂ 0.999, ε 1e-8, bias-corrected) on g + coupled·w; then w ← w − lr·decoupled·w."""

    def step(w, g, state):
        m, v, t = state if state is not None else (0.0, 0.0, 0)
        grad = g + coupled * w
        m, v, t = 0.9 * m + 0.1 * grad, 0.999 * v + 0.001 * grad * grad, t + 1
        update = (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        return w - LR * update - LR * decoupled * w, (m, v, t)

    return step


def recorded(step, size=256):
    """(values, gradient samples): the runs of measure.RUNS through ``step`` as an auditor records them."""
    w = measure.weights(0, (size,)).astype(np.float64)
    g = measure.gradient(0, (size,)).astype(np.float64)
    out = np.empty((len(measure.RUNS), measure.STEPS + 1, size))
    for run, (weight_scale, gradient_scale) in enumerate(measure.RUNS):
        p, state = weight_scale * w, None
        out[run, 0] = p
        for t in range(measure.STEPS):
            p, state = step(p, gradient_scale * g, state)
            out[run, t + 1] = p
    return out, g


def measured(step, nominal=None, lrs=(LR,) * measure.STEPS):
    values, gradient = recorded(step)
    return measure.measure(values, lrs, nominal if nominal is not None else {}, gradient)


# (optimizer, nominal, placement, factor of the first step, response): each from the update as written above.
PLACEMENTS = {
    "AdamW": (adam(decoupled=DECAY), {"lr": LR, "weight_decay": DECAY}, "decoupled_lr", 1 - LR * DECAY, "normalized"),
    "AdamW, λ unread": (adam(decoupled=DECAY), {}, "decoupled_untold", 1 - LR * DECAY, "normalized"),
    "decay without lr": (adam(decoupled=SMALL / LR), {"lr": LR, "weight_decay": SMALL}, "decoupled", 1 - SMALL,
                         "normalized"),
    "Adam, coupled": (adam(coupled=DECAY), {"lr": LR, "weight_decay": DECAY}, "coupled", None, "normalized"),
    "SGD": (sgd(coupled=DECAY), {"lr": LR, "weight_decay": DECAY}, "coupled_or_decoupled_lr", 1 - LR * DECAY,
            "linear"),
    "SGD momentum, coupled": (sgd(coupled=DECAY, momentum=MOMENTUM), {"lr": LR, "weight_decay": DECAY}, "coupled",
                              1 - LR * DECAY, "linear"),
    "SGD momentum, decoupled": (sgd(decoupled=DECAY, momentum=MOMENTUM), {"lr": LR, "weight_decay": DECAY},
                                "decoupled_lr", 1 - LR * DECAY, "linear"),
    "no decay": (adam(), {"lr": LR, "weight_decay": 0.0}, "none", 1.0, "normalized"),
}  # fmt: skip


@pytest.mark.parametrize("name", PLACEMENTS)
def test_where_lambda_enters_is_measured_from_the_steps(name):
    step, nominal, placement, factor, response = PLACEMENTS[name]
    m = measured(step, nominal)
    assert (m.placement, m.response) == (placement, response)
    if factor is not None:
        assert m.factor == pytest.approx(factor, abs=FACTOR_TOLERANCE)
    assert m.lr == pytest.approx(LR, rel=LR_TOLERANCE)


def test_a_coupled_decay_through_adam_shrinks_by_lr_whatever_lambda():
    """Adam normalizes λ·w: its first zero-gradient step is lr·sign(w), a shrink ≈ lr·E|w|/E w² at any λ."""
    small, large = (measured(adam(coupled=decay), {"lr": LR, "weight_decay": decay}) for decay in (1e-3, 1.0))
    assert small.shrinks[0] == pytest.approx(large.shrinks[0], rel=1e-3)


def test_a_decay_chained_after_the_lr_grows_the_parameter():
    """optax.chain(sgd, add_decayed_weights(λ)): the update adds λ·w, so w grows by ×(1 + λ) a step."""
    m = measured(sgd(after_lr=DECAY), {})
    assert m.factor == pytest.approx(1 + DECAY, abs=FACTOR_TOLERANCE)
    parameter = Parameter("w", "kernel", (256,), "float32", (0,))
    assert "grows" in findings.finding(parameter, m, (LR,) * measure.STEPS).flags


def test_a_frozen_parameter_and_a_spared_one_are_told_apart():
    frozen = measured(lambda w, g, s: (w, s))
    assert frozen.placement == "frozen" and not any(frozen.moved)
    spared = measured(adam(), {"lr": LR, "weight_decay": 0.0})
    assert spared.placement == "none" and spared.moved == (False, True)


def test_a_schedule_divides_out_of_the_shrink():
    """w ← w·(1 − lrₜ·λ) with lrₜ doubling each step: constant once divided by lrₜ, so decoupled × lr."""
    lrs = [LR * 2**t for t in range(measure.STEPS)]

    def scheduled(w, g, t):
        t = 0 if t is None else t
        return w - lrs[t] * np.sign(g) - lrs[t] * DECAY * w, t + 1

    m = measured(scheduled, {"lr": LR, "weight_decay": DECAY}, lrs=lrs)
    assert m.placement == "decoupled_lr" and m.k == pytest.approx(1.0, abs=1e-9)


def _finding(name="w", role="kernel", dtype="float32", placement="decoupled_lr", factor=1 - LR * DECAY, flags=(),
             nominal=None, groups=(0,)):  # fmt: skip
    nominal = {"lr": LR, "weight_decay": DECAY} if nominal is None else nominal
    return findings.Finding(name, role, (2, 2), dtype, groups, nominal, placement, 1.0, factor, LR, (LR,), flags)


FLAGGED = {  # (role, dtype, nominal, placement, factor, groups) -> the flags
    "a decayed norm": (("norm_scale", "float32", None, "decoupled_lr", 0.99, (0,)), ("decays_norm",)),
    "a decayed bias": (("bias", "float32", None, "coupled", 0.99, (0,)), ("decays_bias",)),
    "a decayed embedding": (("embedding", "float32", None, "decoupled_lr", 0.99, (0,)), ("decays_embedding",)),
    "a spared norm": (("norm_shift", "float32", None, "none", 1.0, (0,)), ()),
    "bf16 rounding": (("kernel", "bfloat16", {"lr": 1e-3, "weight_decay": 1e-3}, "none", 1.0, (0,)), ("rounds_away",)),
    "bf16 large enough": (("kernel", "bfloat16", {"lr": 0.1, "weight_decay": 0.1}, "none", 1.0, (0,)), ()),
    "never updated": (("kernel", "float32", None, "frozen", 1.0, ()), ("never_updated",)),
    "two groups": (("kernel", "float32", None, "decoupled_lr", 0.99, (0, 1)), ("two_groups",)),
}  # fmt: skip


@pytest.mark.parametrize("name", FLAGGED)
def test_a_parameter_is_flagged_by_its_own_measurement(name):
    (role, dtype, nominal, placement, factor, groups), flags = FLAGGED[name]
    nominal = {"lr": LR, "weight_decay": DECAY} if nominal is None else nominal
    shrink = 1.0 - factor
    m = measure.Measured((shrink,) * 3, LR, "linear", placement, None, (placement != "frozen", placement != "frozen"))
    parameter = Parameter("p", role, (2, 2), dtype, groups, True, nominal)
    assert findings.finding(parameter, m, (LR,) * 3).flags == flags


def test_one_lambda_meaning_two_things_is_flagged_on_both():
    found = findings.with_shared_flags(
        [_finding("a", placement="coupled"), _finding("b"), _finding("c", factor=1.0, placement="none")]
    )
    assert [f.flags for f in found] == [("mixed_meaning",), ("mixed_meaning",), ()]
    plain = findings.with_shared_flags([_finding("a", placement="coupled_or_decoupled_lr"), _finding("b")])
    assert [f.flags for f in plain] == [(), ()]  # under plain SGD coupled and decoupled × lr are one update


def _audit(*found):
    return Audit("m.py:build", "torch", {"torch": "2.13.0"}, "torch.optim.adamw.AdamW", None, tuple(found))


def test_the_audit_document_reads_back_as_written_and_refuses_a_wrong_one():
    audit = _audit(_finding("a", flags=("two_groups",)), _finding("b", role="bias", placement="none", factor=1.0))
    assert Audit.from_json(audit.to_json()) == audit
    with pytest.raises(ValueError, match="not a decaylens audit"):
        Audit.from_json('{"kind": "something"}')
    broken = audit.to_json().replace('"role": "bias"', '"role": "gain"')
    with pytest.raises(ValueError, match="unknown role"):
        Audit.from_json(broken)


def test_the_terminal_summary_counts_first_then_names_each_flagged_tensor():
    audit = _audit(_finding("ln.weight", role="norm_scale", flags=("decays_norm",)), _finding("fc.weight"))
    lines = text.render(audit).splitlines()
    assert lines[1] == "roles: kernel 1/1 decayed, norm_scale 1/1 decayed"
    assert lines[2] == "FLAG decays_norm (1): a norm scale or shift that is decayed: ln.weight"
    assert "ln.weight" in lines[5] and "decoupled × lr" in lines[5] and f"{1 / (LR * DECAY):.3g}" in lines[5]


def test_the_plugin_assertions_name_the_offending_parameters():
    pinned = plugin.Pinned(
        _audit(_finding("ln.weight", role="norm_scale"), _finding("fc.bias", role="bias", placement="none", factor=1.0))
    )
    pinned.assert_spares("bias")
    with pytest.raises(AssertionError, match=r"ln\.weight \(norm_scale"):
        pinned.assert_spares("norm", "bias")
    with pytest.raises(AssertionError, match=r"fc\.bias \(bias, none\)"):
        pinned.assert_decays("bias")
    with pytest.raises(ValueError, match="no role"):
        pinned.assert_spares("gain")


BAD_TARGETS = {
    "no such file": ("missing.py:build", "missing.py: no such file"),
    "not FILE:FUNCTION": ("model.py", "not FILE.py:FUNCTION"),
    "no such function": ("{dir}/m.py:absent", "defines no function 'absent'"),
    "the function raises": ("{dir}/m.py:broken", "the function raised RuntimeError: no GPU here; fix it"),
    "the wrong return value": ("{dir}/m.py:number", "the function returned int"),
}


@pytest.mark.parametrize("name", BAD_TARGETS)
def test_bad_input_is_one_line_exit_2_and_nothing_written(name, tmp_path, capsys, monkeypatch):
    (tmp_path / "m.py").write_text(
        "def broken():\n    raise RuntimeError('no GPU here')\n\ndef number():\n    return 3\n"
    )
    monkeypatch.setattr("backends.auditors.load", lambda backend: _Auditor)
    target, message = BAD_TARGETS[name]
    out = tmp_path / "audit.json"
    assert cli.main(["audit", "--backend", "torch", target.format(dir=tmp_path), "--json", str(out)]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1 and not out.exists()


class _Auditor:
    """An auditor that takes nothing, as a framework's does with what it does not take."""

    @staticmethod
    def audit(objects, stepping):
        from backends.contract import NotAuditable

        raise NotAuditable(f"the function returned {type(objects).__name__}; this auditor takes (module, optimizer)")


def test_an_unknown_backend_is_named():
    with pytest.raises(Exception, match="no such backend"):
        from harness.audit import audit_objects

        audit_objects("theano", (), "t")


def test_tau_is_one_over_the_shrink():
    f = _finding(factor=1 - 1e-4)
    assert f.tau == pytest.approx(1e4) and math.isclose(f.lambda_eff, 1e-4 / LR)


def test_a_step_that_makes_nan_is_flagged_and_the_document_still_writes():
    m = measured(lambda w, g, s: (w * np.nan, s))
    parameter = Parameter("w", "kernel", (256,), "bfloat16", (0,))
    f = findings.finding(parameter, m, (LR,) * measure.STEPS)
    assert (f.placement, f.flags, f.factor) == ("nonfinite", ("nonfinite",), None)
    assert Audit.from_json(_audit(f).to_json()) == _audit(f)


def test_the_report_reads_stored_audits_skips_a_broken_one_and_draws_each(tmp_path):
    from harness.report import context
    from harness.report.sections import audits

    stored = tmp_path / context.AUDITS
    stored.mkdir()
    audit = _audit(_finding("ln.weight", role="norm_scale", flags=("decays_norm",)), _finding("fc.bias", role="bias",
                   placement="none", factor=1.0))  # fmt: skip
    (stored / "mine.json").write_text(audit.to_json())
    (stored / "broken.json").write_text(audit.to_json()[:-40])
    problems = []
    assert context._audits(stored, problems) == [audit]
    assert len(problems) == 1 and "broken.json" in problems[0]
    blocks = audits.build(types.SimpleNamespace(audits=[audit], results_dir=str(tmp_path)))
    table = next(b for b in blocks if type(b).__name__ == "Table")
    assert [row[0] for row in table.rows] == ["`ln.weight`", "`fc.bias`"]
    figure = next(b for b in blocks if type(b).__name__ == "Figure")
    assert [(s.label, s.y) for s in figure.panels[0].series] == [("norm_scale", (pytest.approx(LR * DECAY),))]
