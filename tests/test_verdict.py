"""The judgements the report states, from small tables of probes: what an API's λ does, same /
convert / never against l2_loss, and the setting of another framework that trains alike."""

import dataclasses

import fake_backend
import pytest

from harness import explain, fingerprint, oracle, probes, verdict
from harness.explain import Form
from harness.fingerprint import ConventionKey, Probe


def probe(placement, k=1.0, bias=False, matched=True, equivalents=(), eps="outside"):
    """An ok Probe explained by ``placement`` ×k (λ = 0.5), bias decayed or not."""
    coefficient = {placement: 0.5 * k} if placement != explain.NONE else {}
    rule = oracle.Rule(decay_bias=bias, eps=eps, **coefficient)
    found = explain.Explanation(Form(placement, k), rule, 0.0 if matched else 0.3, matched, tuple(equivalents))
    return Probe("ok", api="...", explained=found)


L2 = probe("coupled")


@pytest.mark.parametrize(
    "api, optimizer, expected",
    [
        (probe("coupled"), "momentum", verdict.Verdict("same")),
        (probe("coupled", 2.0), "momentum", verdict.Verdict("convert", 0.5)),  # Keras L2(λ): λ·Σw², so λ' = λ/2
        (probe("coupled", 0.5), "adam", verdict.Verdict("convert", 2.0)),
        (probe("decoupled_lr", equivalents=[Form("coupled", 1.0)]), "sgd", verdict.Verdict("same")),
        (probe("decoupled_lr"), "momentum", verdict.Verdict("never", reason="λ bypasses momentum (decoupled × lr ×1)")),
        (
            probe("decoupled_lr"),
            "adam",
            verdict.Verdict("never", reason="λ bypasses Adam's normalisation (decoupled × lr ×1)"),
        ),
        (probe("decoupled", 2.0), "sgd", verdict.Verdict("never", reason="λ is not multiplied by lr (decoupled ×2)")),
        (probe(explain.NONE, 0.0), "sgd", verdict.Verdict("never", reason="λ has no effect (no decay)")),
        (probe("coupled", bias=True), "sgd", verdict.Verdict("never", reason="cannot spare the bias")),
        (
            Probe("unsupported", "no regularizer here"),
            "sgd",
            verdict.Verdict("unsupported", reason="no regularizer here"),
        ),
        (
            probe("coupled", matched=False),
            "sgd",
            verdict.Verdict(
                "unexplained", reason="unexplained (closest: coupled ×1, bias not decayed, loss half_mse, gap 0.3)"
            ),
        ),
    ],
)
def test_an_api_is_the_l2_penalty_after_a_conversion_or_never(api, optimizer, expected):
    assert verdict.verdict(api, L2, optimizer) == expected


def test_scale_uses_the_first_place_both_rules_share_through_their_equivalents():
    sgd_keras = probe("coupled", 2.0, equivalents=[Form("decoupled_lr", 2.0)]).explained
    optax_adamw = probe("decoupled_lr").explained
    assert verdict.scale(optax_adamw, sgd_keras) == 0.5
    assert verdict.scale(probe("decoupled").explained, optax_adamw) is None


@pytest.mark.parametrize(
    "a, b, same",
    [
        (probe("coupled"), probe("coupled"), True),
        (probe("coupled"), probe("coupled", 2.0), False),  # the same place, another multiplier
        (probe("coupled", equivalents=[Form("decoupled_lr", 1.0)]), probe("decoupled_lr"), True),
        (probe("coupled"), probe("coupled", bias=True), False),
        (probe("coupled", matched=False), probe("coupled", matched=False), True),  # the same closest rule
        (probe("coupled", matched=False), probe("coupled"), False),
    ],
)
def test_two_explanations_name_the_same_rule_when_they_share_a_form_and_the_bias(a, b, same):
    assert verdict.same_rule(a.explained, b.explained) is same


def test_the_semantics_are_read_off_the_probes():
    found = {(s.optimizer, s.kind): s for s in verdict.semantics([probes.probe("fake", fake_backend.make(), "test")])}
    momentum, adamw = found["momentum", "weight_decay"], found["adam", "adamw"]
    assert (momentum.placement, momentum.times_lr, momentum.through_state) == ("coupled", True, True)
    assert found["sgd", "weight_decay"].through_state is None  # no state to go through
    assert (adamw.placement, adamw.times_lr, adamw.through_state) == ("decoupled_lr", True, False)
    assert verdict.bias_decayed(adamw.default) is True and adamw.bias_honoured
    assert found["sgd", "regularizer"].spared.outcome() == "unsupported: no regularizer here"
    assert found["sgd", "l2_loss"].default is None  # the loss has no default to probe
    decoupled = probes.probe("fake", fake_backend.make(weight_decay="decoupled"), "test")
    semantics = {(s.optimizer, s.kind): s for s in verdict.semantics([decoupled])}
    assert semantics["momentum", "weight_decay"].times_lr is False
    conventions = verdict.conventions(decoupled)
    assert conventions[ConventionKey("sgd", "loss")] == "mse" and conventions[ConventionKey("adam", "eps")] == "outside"
    assert conventions[ConventionKey("nadam", "momentum_decay")] == 0.004  # the fake's is the case's own ψ


def test_conversions_scale_lambda_and_say_when_none_exists():
    """fake: weight_decay coupled, decoupled × lr for decoupled; other: decoupled × lr for both;
    third: weight_decay decoupled without lr, which is λ/lr × lr at a constant lr, and no setting
    of fake's once the lr follows a schedule."""
    coupled = probes.probe("fake", fake_backend.make(), "test")
    other = probes.probe("other", fake_backend.make(weight_decay="decoupled_lr"), "test")
    third = probes.probe("third", fake_backend.make(weight_decay="decoupled"), "test")
    found = verdict.conversions([coupled, other, third])
    assert found["fake", "momentum", "weight_decay"]["other"] == verdict.Conversion("l2_loss", 1.0)
    assert found["other", "momentum", "weight_decay"]["fake"] == verdict.Conversion("decoupled", 1.0)
    assert found["third", "momentum", "weight_decay"]["fake"] == verdict.Conversion("decoupled", 1.0, lr_power=-1)
    scheduled = verdict.conversions([coupled, other, third], schedule="step")
    assert scheduled["third", "momentum", "weight_decay"]["fake"] == verdict.Conversion(
        None, reason="weight_decay is coupled, decoupled is decoupled × lr, l2_loss is coupled"
    )
    assert scheduled["other", "momentum", "weight_decay"]["fake"] == verdict.Conversion("decoupled", 1.0)
    assert found["fake", "sgd", "weight_decay"]["other"] == verdict.Conversion("weight_decay", 1.0)
    assert ("fake", "sgd", "l2_loss") not in found  # the loss is what the others are converted to


def test_no_setting_converts_between_frameworks_whose_optimizer_conventions_differ():
    after = probes.probe("fake", fake_backend.make(), "test")
    uncorrected = probe(explain.NONE, 0.0, eps="outside_uncorrected")
    before = dataclasses.replace(
        after, backend="keras-like", conventions={**after.conventions, ConventionKey("adam", "eps"): uncorrected}
    )
    found = verdict.conversions([after, before])
    assert found["fake", "adam", "weight_decay"]["keras-like"] == verdict.Conversion(
        None, reason="adam's eps convention is ε outside √ or max in fake, ε before bias correction in keras-like"
    )
    assert found["fake", "momentum", "weight_decay"]["keras-like"].kind == "weight_decay"


def test_a_multiplier_the_probe_cannot_tell_gives_no_verdict_and_no_conversion():
    """A sign step (Lion) sees a coupled decay only through the sign: ×½, ×1, ×2 all fit."""
    unseen = probe("coupled", 0.5, equivalents=[Form("coupled", 1.0), Form("coupled", 2.0)])
    assert verdict.verdict(unseen, L2, "lion") == verdict.Verdict(
        "unknown", reason="the probe cannot tell λ's multiplier (coupled ×0.5, coupled ×1, coupled ×2 all fit)"
    )
    assert verdict.verdict(probe("decoupled_lr"), unseen, "lion").outcome == "never"  # no place in common
    assert verdict.convert(unseen.explained, {"regularizer": unseen.explained}).kind is None


def test_the_papers_decay_converts_to_lambda_over_lr_where_the_decay_follows_the_scheduled_lr():
    """Loshchilov & Hutter decay λ·ηₜ·w; fake's decoupled Adam decays lr·ηₜ·λ'·w: λ' = λ/lr. A decay
    × η is the paper's; one without lr follows no schedule, so no λ' gives the paper's."""
    fake = probes.probe("fake", fake_backend.make(), "test")
    assert verdict.from_paper([fake]) == {"fake": verdict.Conversion("decoupled", 1.0, lr_power=-1)}
    paper_like = dataclasses.replace(fake, schedules={
        key: dataclasses.replace(p, explained=verdict.PAPER) for key, p in fake.schedules.items()
    })  # fmt: skip
    assert verdict.from_paper([paper_like])["fake"] == verdict.Conversion("decoupled", 1.0)
    unscheduled = probes.probe("plain", fake_backend.make(weight_decay="decoupled"), "test")
    none = probe("decoupled", 1.0)
    unscheduled = dataclasses.replace(unscheduled, schedules={
        key: none for key in unscheduled.schedules
    })  # fmt: skip
    assert verdict.from_paper([unscheduled])["plain"] == verdict.Conversion(
        None, reason="decoupled is decoupled, adamw is decoupled"
    )


def test_a_variant_is_probed_on_its_own_and_can_be_the_papers_setting():
    """The fake's adamw variant eta_multiplier decays × η: the paper's λ is its λ, and its row in the
    fingerprint and conversions is named with the variant."""
    fake = probes.probe("fake", fake_backend.make(variants=True), "test")
    assert fake.penalties[fingerprint.ProbeKey("adam", "adamw", False, "eta_multiplier")].matched
    step = fake.schedules[fingerprint.ScheduleKey("adam", "adamw", "step", "eta_multiplier")]
    assert verdict.follows(step) == "multiplier η"
    assert "adamw [eta_multiplier]" in {found.kind for found in verdict.semantics([fake])}
    assert verdict.from_paper([fake]) == {"fake": verdict.Conversion("adamw [eta_multiplier]", 1.0)}  # λ as is
    other = probes.probe("other", fake_backend.make(), "test")
    found = verdict.conversions([fake, other], schedule="step")["fake", "adam", "adamw [eta_multiplier]"]["other"]
    assert found == verdict.Conversion("adamw", 1.0, lr_power=-1)  # λ·η = lr·η·λ' for λ' = λ/lr


def test_no_setting_converts_a_decay_of_the_bias_to_one_that_spares_it():
    """Paddle's float weight_decay decays the bias the probe spares; torch's weight_decay spares it."""
    decays, spares = probe("coupled", bias=True).explained, probe("coupled").explained
    assert verdict.convert(decays, {"weight_decay": spares}) == verdict.Conversion(
        None, reason="weight_decay spares the bias"
    )
    assert verdict.convert(decays, {"weight_decay": spares, "l2_bias": decays}) == verdict.Conversion("l2_bias", 1.0)
    untold = dataclasses.replace(spares, bias_ambiguous=True)
    assert verdict.convert(decays, {"weight_decay": untold}) == verdict.Conversion("weight_decay", 1.0)
