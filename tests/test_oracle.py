"""The oracle against small cases worked out by hand (one weight, one example, two steps).

x = 2, y = 0, w₀ = 0.5, b₀ = 0, lr = 0.1, batch of 1, two epochs of one step each.
The comments give the hand computation; numbers are exact decimals unless noted.
"""

import numpy as np
import pytest

from harness import data, explain, oracle
from harness.case import Case
from harness.data import Arrays

HAND = 1e-12  # hand results are exact decimals; float64 rounding only
# simulate_rules computes every rule's products in one matrix product, which BLAS may sum in
# another order than a single rule's: equal up to float64 rounding, over the steps below.
BATCHED = 1e-12


def tiny(optimizer="sgd", **optimizer_values):
    case = Case().replace(
        {
            "data.dim": 1,
            "data.n_train": 1,
            "train.batch_size": 1,
            "train.epochs": 2,
            "optimizer.name": optimizer,
            "optimizer.lr": 0.1,
            **{f"optimizer.{k}": v for k, v in optimizer_values.items()},
        }
    )
    empty = np.zeros((0, 1))
    arrays = Arrays(
        x_train=np.array([[2.0]]),
        y_train=np.array([0.0]),
        x_valid=empty,
        y_valid=np.zeros(0),
        x_test=empty,
        y_test=np.zeros(0),
        w0=np.array([0.5]),
        b0=np.array(0.0),
        batches=np.zeros((2, 1, 1), dtype=np.int64),
    )
    return case, arrays


def steps(rule, optimizer="sgd", **optimizer_values):
    case, arrays = tiny(optimizer, **optimizer_values)
    w, b = oracle.simulate(rule, case, arrays)
    return w[:, 0].tolist(), b.tolist()


def expect(got, w, b, tolerance=HAND):
    assert got[0] == pytest.approx(w, abs=tolerance) and got[1] == pytest.approx(b, abs=tolerance)


def test_sgd_half_mse():
    # e = 1, g = (2, 1): w = 0.3, b = -0.1; e = 0.5, g = (1, 0.5): w = 0.2, b = -0.15
    expect(steps(oracle.Rule()), [0.5, 0.3, 0.2], [0, -0.1, -0.15])


def test_sgd_mse_doubles_the_gradient():
    # g = (4, 2): w = 0.1, b = -0.2; then e = 0: nothing moves
    expect(steps(oracle.Rule(loss="mse")), [0.5, 0.1, 0.1], [0, -0.2, -0.2])


def test_sgd_coupled():
    # g_w = 2 + 0.5 = 2.5: w = 0.25, b = -0.1; e = 0.4, g_w = 0.8 + 0.25: w = 0.145, b = -0.14
    expect(steps(oracle.Rule(coupled=1.0)), [0.5, 0.25, 0.145], [0, -0.1, -0.14])


def test_sgd_coupled_with_the_bias():
    # as above, but step 2 g_b = 0.4 + b₁ = 0.3: b = -0.13
    expect(steps(oracle.Rule(coupled=1.0, decay_bias=True)), [0.5, 0.25, 0.145], [0, -0.1, -0.13])


def test_sgd_l1():
    # g_w = 2 + sign(0.5) = 3: w = 0.2; e = 0.3, g_w = 0.6 + 1: w = 0.04, b = -0.13
    expect(steps(oracle.Rule(l1=1.0)), [0.5, 0.2, 0.04], [0, -0.1, -0.13])


def test_sgd_decoupled_without_lr():
    # w = 0.5 - 0.2 - 1·0.5 = -0.2; e = -0.5, g_w = -1: w = -0.2 + 0.1 + 0.2 = 0.1, b = -0.05
    expect(steps(oracle.Rule(decoupled=1.0)), [0.5, -0.2, 0.1], [0, -0.1, -0.05])


def test_momentum_coupled_goes_through_the_velocity():
    # v = 2.5: w = 0.25; g_w = 1.05, v = 1.25 + 1.05 = 2.3: w = 0.02; v_b = 1, 0.9: b = -0.1, -0.19
    expect(steps(oracle.Rule(coupled=1.0), "momentum", momentum=0.5), [0.5, 0.25, 0.02], [0, -0.1, -0.19])


def test_momentum_decoupled_times_lr_bypasses_the_velocity():
    # v = 2: w = 0.5 - 0.2 - 0.05 = 0.25; g_w = 0.8, v = 1.8: w = 0.25 - 0.18 - 0.025 = 0.045
    expect(steps(oracle.Rule(decoupled_lr=1.0), "momentum", momentum=0.5), [0.5, 0.25, 0.045], [0, -0.1, -0.19])


def test_nesterov():
    # v = g = (2, 1), u = g + 0.5v = (3, 1.5): w = 0.2, b = -0.15
    # e = 0.25, g = (0.5, 0.25), v = (1.5, 0.75), u = (1.25, 0.625): w = 0.075, b = -0.2125
    expect(steps(oracle.Rule(), "nesterov", momentum=0.5), [0.5, 0.2, 0.075], [0, -0.15, -0.2125])


def test_adam_without_eps():
    # step 1: m̂ = g, ŝ = g², u = 1: w = 0.4, b = -0.1
    # step 2: e = 0.7, g = (1.4, 0.7); m = (0.32, 0.16), s = (0.005956, 0.001489);
    #   m̂ = m / 0.19, ŝ = s / 0.001999, u = 0.975721 (both): w = 0.302428, b = -0.197572
    expect(steps(oracle.Rule(), "adam", eps=0.0), [0.5, 0.4, 0.302428], [0, -0.1, -0.197572], tolerance=1e-6)


@pytest.mark.parametrize(
    "convention, w1, b1",
    [
        # u = g / (|g| + 1) = (2/3, 1/2)
        ("outside", 0.5 - 0.1 * 2 / 3, -0.05),
        # u = √0.001 / 0.1 · m / (√s + 1), m = 0.1g, s = 0.001g²: u_w = 0.0594827, u_b = 0.0306535
        ("outside_uncorrected", 0.4940517, -0.00306535),
    ],
)
def test_adam_eps_conventions(convention, w1, b1):
    got = steps(oracle.Rule(eps=convention), "adam", eps=1.0)
    assert got[0][1] == pytest.approx(w1, abs=1e-7) and got[1][1] == pytest.approx(b1, abs=1e-8)


def test_float32_case_rounds_the_data_first():
    case, arrays = tiny()
    arrays = Arrays(**{**arrays.__dict__, "w0": np.array([0.1])})
    w, _ = oracle.simulate(oracle.Rule(), case.replace({"model.dtype": "float32"}), arrays)
    assert w[0, 0] == float(np.float32(0.1)) != 0.1


def test_loss_penalty_rule_follows_the_spec():
    case = Case().replace({"penalty.kind": "l2_loss", "penalty.strength": 3.0})
    assert oracle.loss_penalty_rule(case) == oracle.Rule(coupled=3.0)
    case = case.replace({"penalty.kind": "l1_loss", "train.loss": "mse", "penalty.decay_bias": True})
    assert oracle.loss_penalty_rule(case) == oracle.Rule(loss="mse", l1=3.0, decay_bias=True)
    with pytest.raises(ValueError):
        oracle.loss_penalty_rule(case.replace({"penalty.kind": "weight_decay"}))


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adam"])
@pytest.mark.parametrize("kind", ["weight_decay", "l1_loss"])
def test_simulating_every_rule_at_once_equals_one_rule_at_a_time(optimizer, kind):
    """Each row of simulate_rules follows its own rule: explain's whole catalog (both losses,
    both Adam ε conventions, bias decayed or not, every placement and multiplier)."""
    case = Case().replace(
        {
            "train.epochs": 5,
            "train.loss": "native",
            "optimizer.name": optimizer,
            "penalty.kind": kind,
            "penalty.strength": 3.0,
        }
    )
    arrays = data.make(case)
    rules = [rule for _, rule in explain.candidates(case)]
    w, b = oracle.simulate_rules(rules, case, arrays)
    assert w.shape == (len(rules), case.steps + 1, case.data.dim) and b.shape == (len(rules), case.steps + 1)
    for rule, w_rule, b_rule in zip(rules, w, b, strict=True):
        alone = oracle.simulate(rule, case, arrays)
        np.testing.assert_allclose(w_rule, alone[0], rtol=BATCHED, atol=BATCHED, err_msg=str(rule))
        np.testing.assert_allclose(b_rule, alone[1], rtol=BATCHED, atol=BATCHED, err_msg=str(rule))


# Every other optimizer, on the same one-weight problem: x = 2, y = 0, w₀ = 0.5, b₀ = 0, lr = 0.1.
# Step 1: e = 1, g = (2, 1). The hand computation is in each comment, to about 6 digits.
SIX = 1e-6  # the hand results below are rounded to 6 decimals


def test_signum_and_lion_step_by_the_sign():
    # signum μ = ½: m = (1, ½) > 0: w = 0.4, b = −0.1; e = 0.7, g = (1.4, 0.7), m = (1.2, 0.6) > 0: w = 0.3, b = −0.2
    expect(steps(oracle.Rule(), "signum", momentum=0.5), [0.5, 0.4, 0.3], [0, -0.1, -0.2])
    # lion: sign(0.1·g) = +: w = 0.4; m = 0.01·g = (0.02, 0.01); sign(0.9·0.02 + 0.1·1.4) = +: w = 0.3
    expect(steps(oracle.Rule(), "lion", beta1=0.9, beta2=0.99), [0.5, 0.4, 0.3], [0, -0.1, -0.2])


def test_rmsprop_with_eps_outside_inside_and_centered():
    # ρ = ½, ε = 0: s = ½g² = (2, ½), r = g/√s = √2 (both): w = 0.5 − 0.141421 = 0.358579, b = −0.141421
    # e = 0.575736, g = (1.151472, 0.575736), s_w = 1 + ½·1.325888 = 1.662944: w −= 0.1·1.151472/1.289552 → 0.269286
    got = steps(oracle.Rule(), "rmsprop", rho=0.5, eps=0.0, momentum=0.0)
    expect(got, [0.5, 0.358579, 0.269286], [0, -0.141421, got[1][2]], tolerance=SIX)
    # ε = 1 inside: r = g/√(s + 1) = (2/√3, 1/√1.5) = (1.154701, 0.816497): w = 0.384530, b = −0.081650
    got = steps(oracle.Rule(eps="inside"), "rmsprop", rho=0.5, eps=1.0, momentum=0.0)
    expect((got[0][:2], got[1][:2]), [0.5, 0.384530], [0, -0.081650], tolerance=SIX)
    # ε = 1 outside: r = g/(√s + 1) = (2/2.414214, 1/1.707107) = (0.828427, 0.585786)
    got = steps(oracle.Rule(), "rmsprop", rho=0.5, eps=1.0, momentum=0.0)
    expect((got[0][:2], got[1][:2]), [0.5, 0.417157], [0, -0.058579], tolerance=SIX)
    # centered: a = ½g = (1, ½), q = s − a² = (1, ¼), r = (2, 2): w = 0.3, b = −0.2
    got = steps(oracle.Rule(), "rmsprop", rho=0.5, eps=0.0, momentum=0.0, centered=True)
    expect((got[0][:2], got[1][:2]), [0.5, 0.3], [0, -0.2], tolerance=SIX)
    # momentum 0.9: v = √2 at step 1, then v = 0.9·√2 + 0.892925 = 2.165719: w = 0.358579 − 0.216572 = 0.142007
    got = steps(oracle.Rule(), "rmsprop", rho=0.5, eps=0.0, momentum=0.9)
    expect((got[0], got[1][:2]), [0.5, 0.358579, 0.142007], [0, -0.141421], tolerance=SIX)


def test_adagrad_starts_from_its_initial_accumulator():
    # s = 1 + g² = (5, 2): Δ = 0.1·(2/√5, 1/√2) = (0.089443, 0.070711): w = 0.410557, b = −0.070711
    got = steps(oracle.Rule(), "adagrad", eps=0.0, initial_accumulator=1.0)
    expect((got[0][:2], got[1][:2]), [0.5, 0.410557], [0, -0.070711], tolerance=SIX)


def test_adadelta_with_and_without_its_learning_rate():
    # ρ = ½, ε = 1: s = ½g² = (2, ½), δ = √1/√(s + 1)·g = (1.154701, 0.816497): × lr: w = 0.384530, b = −0.081650
    got = steps(oracle.Rule(), "adadelta", rho=0.5, eps=1.0)
    expect((got[0][:2], got[1][:2]), [0.5, 0.384530], [0, -0.081650], tolerance=SIX)
    # lr ignored: w = 0.5 − 1.154701 = −0.654701, b = −0.816497
    got = steps(oracle.Rule(lr_ignored=True), "adadelta", rho=0.5, eps=1.0)
    expect((got[0][:2], got[1][:2]), [0.5, -0.654701], [0, -0.816497], tolerance=SIX)


def test_adamax_by_where_eps_sits():
    # no ε: m = 0.1g, u = |g|: Δ = 0.1/0.1·0.1 = 0.1: w = 0.4, b = −0.1
    # e = 0.7, g = (1.4, 0.7): m = (0.32, 0.16), u = (1.998, 0.999): Δ = 0.1/0.19·0.160160 = 0.084295
    expect(steps(oracle.Rule(eps="none"), "adamax", eps=0.0), [0.5, 0.4, 0.315705], [0, -0.1, -0.184295], tolerance=SIX)
    # ε = 1 inside the max: u = |g| + 1 = (3, 2): Δ = (0.2/3, 0.1/2): w = 0.433333, b = −0.05
    got = steps(oracle.Rule(eps="inside"), "adamax", eps=1.0)
    expect((got[0][:2], got[1][:2]), [0.5, 0.433333], [0, -0.05], tolerance=SIX)


def test_nadam_with_and_without_a_momentum_schedule():
    # no schedule: m̄ = 0.9·m/(1 − 0.81) + 0.1·g/0.1 = (2.947368, 1.473684), √ŝ = |g|: Δ = 0.147368 both
    got = steps(oracle.Rule(momentum_decay=None), "nadam", eps=0.0)
    expect((got[0][:2], got[1][:2]), [0.5, 0.352632], [0, -0.147368], tolerance=SIX)
    # ψ = 1: μ₁ = 0.9·(1 − ½·0.96) = 0.468, μ₂ = 0.9·(1 − ½·0.9216) = 0.48528; Π₁ = 0.468:
    # Δ = 0.1·((1 − μ₁)/(1 − Π₁)·g + μ₂/(1 − Π₁μ₂)·m)/|g| = 0.1·(1 + 0.48528/0.772889·0.1) = 0.106279
    got = steps(oracle.Rule(momentum_decay=1.0), "nadam", eps=0.0)
    expect((got[0][:2], got[1][:2]), [0.5, 0.393721], [0, -0.106279], tolerance=SIX)


def test_radam_steps_with_momentum_alone_until_its_variance_is_tractable():
    # ρ₁ = 1999 − 1998 = 1, ρ₂ ≈ 2: Δ = lr·m̂: w = 0.3, b = −0.1; e = 0.5, g = (1, ½), m̂ = (0.28, 0.14)/0.19
    expect(steps(oracle.Rule(), "radam"), [0.5, 0.3, 0.152632], [0, -0.1, -0.173684], tolerance=SIX)


def test_lamb_scales_each_tensors_step_by_its_trust_ratio():
    # ε = 0, r = sign(g) = 1: w: ratio 0.5/1: w = 0.45; b = 0: ratio 1: b = −0.1
    # e = 0.8, g = (1.6, 0.8): r = 0.988124 both; w: ratio 0.45/r: Δ = 0.045; b: ratio 0.1/r: Δ = 0.01
    expect(steps(oracle.Rule(), "lamb", eps=0.0), [0.5, 0.45, 0.405], [0, -0.1, -0.11], tolerance=SIX)
    # decay 1·w inside the ratio: r_w = 1 + 0.5 = 1.5, ratio 0.5/1.5: Δ_w = 0.1·(1/3)·1.5 = 0.05; b = 0: no decay
    got = steps(oracle.Rule(decoupled_ratio=1.0), "lamb", eps=0.0)
    expect((got[0][:2], got[1][:2]), [0.5, 0.45], [0, -0.1], tolerance=SIX)


def test_adafactor_steps_relative_to_each_tensors_scale():
    # β̂₁ = 0, s = g², u = sign(g) = 1, RMS(u) = 1; step min(0.1, 1) × max(1e-3, RMS(p)): w −= 0.1·0.5, b −= 0.1·1e-3
    # β̂₂ = 1 − 2^−0.8 = 0.425651, e = 0.8999, g_w = 1.7998, s_w = 0.425651·4 + 0.574349·3.239280 = 3.563083,
    # u = 1.7998/1.887613 = 0.953480: w = 0.45 − 0.1·0.45·0.953480 = 0.407093
    got = steps(oracle.Rule(), "adafactor")
    expect((got[0], got[1][:2]), [0.5, 0.45, 0.407093], [0, -1e-4], tolerance=SIX)
    # the decay w −= lr·1·w first, and the scale read after it: w = 0.45·... : 0.5 − 0.05 = 0.45, then scale 0.45
    got = steps(oracle.Rule(decoupled_lr=1.0, scale_after_decay=True), "adafactor")
    expect((got[0][:2], got[1][:2]), [0.5, 0.45 - 0.1 * 0.45], [0, -1e-4], tolerance=SIX)


def test_lr_decay_divides_the_learning_rate_by_one_plus_c_times_the_steps_before():
    # c = 1: lr₁ = 0.1: w = 0.3, b = −0.1; lr₂ = 0.1/2: e = 0.5, g = (1, ½): w = 0.25, b = −0.125
    expect(steps(oracle.Rule(lr_decay=1.0)), [0.5, 0.3, 0.25], [0, -0.1, -0.125])


def test_a_momentum_of_lr_scaled_steps_parts_from_one_of_raw_steps_when_lr_changes():
    # lr decay c = 1: lr₁ = 0.1, lr₂ = 0.05; μ = ½. Step 1 alike: v = g = (2, 1): w = 0.3, b = −0.1.
    # e = 0.5, g = (1, ½). Raw: v = ½(2, 1) + g = (2, 1), Δ = lr₂·v = (0.1, 0.05): w = 0.2, b = −0.15.
    # Scaled: v = ½(0.2, 0.1) + lr₂·g = (0.15, 0.075) = Δ: w = 0.15, b = −0.175.
    expect(steps(oracle.Rule(lr_decay=1.0), "momentum", momentum=0.5), [0.5, 0.3, 0.2], [0, -0.1, -0.15])
    scaled = oracle.Rule(lr_decay=1.0, momentum_scaled=True)
    expect(steps(scaled, "momentum", momentum=0.5), [0.5, 0.3, 0.15], [0, -0.1, -0.175])


@pytest.mark.parametrize(
    "schedule, expected",
    [
        ({"kind": "constant"}, [1, 1, 1, 1, 1, 1, 1]),
        ({"kind": "step", "factor": 0.5, "interval": 2}, [1, 1, 0.5, 0.5, 0.25, 0.25, 0.125]),
        # floor + (1 − floor)·½(1 + cos(πk/6)), floor 0.2: cos(π/6) = √3/2, cos(π/3) = ½, cos(π/2) = 0
        (
            {"kind": "cosine", "floor": 0.2},
            [1, 0.2 + 0.4 * (1 + 3**0.5 / 2), 0.8, 0.6, 0.4, 0.2 + 0.4 * (1 - 3**0.5 / 2), 0.2],
        ),
        # k/2 for k < 2, then ½(1 + cos(π(k − 2)/4)): cos(π/4) = √½
        ({"kind": "warmup_cosine", "warmup": 2}, [0, 0.5, 1, 0.5 * (1 + 0.5**0.5), 0.5, 0.5 * (1 - 0.5**0.5), 0]),
    ],
)
def test_each_schedule_multiplies_lr_by_its_formula(schedule, expected):
    case = Case().replace({f"schedule.{key}": value for key, value in schedule.items()})
    assert oracle.multipliers(case.schedule, 6).tolist() == pytest.approx(expected, abs=HAND)


def scheduled(rule):
    """``steps`` of sgd with lr halved at every step (η = 1, ½, ¼, …): step 1's lr 0.1 at offset 0."""
    case, arrays = tiny()
    case = case.replace({"schedule.kind": "step", "schedule.factor": 0.5, "schedule.interval": 1})
    w, b = oracle.simulate(rule, case, arrays)
    return w[:, 0].tolist(), b.tolist()


def test_a_decay_times_the_schedules_multiplier_follows_eta_not_lr():
    # step 1, η₀ = 1, lr 0.1: w = 0.5 − 1·0.5·0.5 = 0.25, then − 0.1·2 = 0.05; b = −0.1
    # step 2, η₁ = ½, lr 0.05: e = 0, g = 0; w = 0.05 − ½·0.5·0.05 = 0.0375
    expect(scheduled(oracle.Rule(decoupled_multiplier=0.5)), [0.5, 0.05, 0.0375], [0, -0.1, -0.1])


def test_a_schedule_counted_from_one_is_a_step_ahead():
    # step 1, η₁ = ½, lr 0.05: w = 0.5 − ½·0.5·0.5 = 0.375, then − 0.05·2 = 0.275; b = −0.05
    # step 2, η₂ = ¼, lr 0.025: e = 0.5, g = (1, 0.5); w = 0.275·(1 − ¼·0.5) = 0.240625, − 0.025 = 0.215625;
    # b = −0.05 − 0.025·0.5 = −0.0625
    rule = oracle.Rule(decoupled_multiplier=0.5, schedule_offset=1)
    expect(scheduled(rule), [0.5, 0.275, 0.215625], [0, -0.05, -0.0625])


def test_a_decay_times_the_base_lr_ignores_the_schedule():
    # step 1, lr 0.1: w = 0.5·(1 − 0.1·0.5) = 0.475, − 0.1·2 = 0.275; b = −0.1
    # step 2, lr 0.05: e = 0.45, g = (0.9, 0.45); w = 0.275·0.95 = 0.26125, − 0.05·0.9 = 0.21625;
    # b = −0.1 − 0.05·0.45 = −0.1225
    expect(scheduled(oracle.Rule(decoupled_base=0.5)), [0.5, 0.275, 0.21625], [0, -0.1, -0.1225])
