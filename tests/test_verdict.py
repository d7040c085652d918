"""The judgements the report states, from small tables of probes: what an API's λ does, same /
convert / never against l2_loss, and the setting of another framework that trains alike."""

import dataclasses
from types import SimpleNamespace

import pytest
from conftest import fake_fingerprint

from harness import equivalents, explain, fingerprint, oracle, verdict
from harness.case import Case
from harness.explain import Form
from harness.fingerprint import ApiKey, ConventionKey, Probe, ProbeKey


def probe(placement, k=1.0, bias=False, matched=True, equivalents=(), eps="outside"):
    """An ok Probe explained by ``placement`` ×k (λ = 0.5), bias decayed or not."""
    coefficient = {placement: 0.5 * k} if placement != explain.NONE else {}
    rule = oracle.Rule(decay_bias=bias, eps=eps, **coefficient)
    found = explain.Explanation(Form(placement, k), rule, 0.0 if matched else 0.3, matched, tuple(equivalents))
    return Probe("ok", api="...", explained=found)


L2 = probe("coupled")


DECOUPLED_LR, DECOUPLED_2 = Form("decoupled_lr", 1.0), Form("decoupled", 2.0)
UNEXPLAINED = "unexplained (closest: coupled ×1, bias not decayed, loss half_mse, gap 0.3)"


@pytest.mark.parametrize(
    "api, optimizer, expected, words",
    [
        (probe("coupled"), "momentum", verdict.Verdict("same"), ""),
        (probe("coupled", 2.0), "momentum", verdict.Verdict("convert", 0.5), ""),  # Keras L2(λ): λ·Σw², so λ' = λ/2
        (probe("coupled", 0.5), "adam", verdict.Verdict("convert", 2.0), ""),
        (probe("decoupled_lr", equivalents=[Form("coupled", 1.0)]), "sgd", verdict.Verdict("same"), ""),
        (
            probe("decoupled_lr"), "momentum", verdict.Verdict("never", why="bypasses", form=DECOUPLED_LR,
                                                               optimizer="momentum"),
            "λ bypasses the momentum (decoupled × lr ×1)",
        ),
        (
            probe("decoupled_lr"), "adagrad", verdict.Verdict("never", why="bypasses", form=DECOUPLED_LR,
                                                              optimizer="adagrad"),
            "λ bypasses the normalisation of the step (decoupled × lr ×1)",  # adagrad has no momentum
        ),
        (
            probe("decoupled_lr"), "lion",
            verdict.Verdict("never", why="bypasses", form=DECOUPLED_LR, optimizer="lion"),
            "λ bypasses the sign of the step (decoupled × lr ×1)",
        ),
        (
            probe("decoupled", 2.0), "sgd", verdict.Verdict("never", why="not × lr", form=DECOUPLED_2, optimizer="sgd"),
            "λ is not multiplied by lr (decoupled ×2)",
        ),
        (
            probe(explain.NONE, 0.0), "sgd", verdict.Verdict("never", why="no effect", form=Form(explain.NONE, 0.0),
                                                             optimizer="sgd"),
            "λ has no effect (no decay)",
        ),
        (
            probe("decoupled", -1.0), "sgd", verdict.Verdict("never", why="grows", form=Form("decoupled", -1.0),
                                                            optimizer="sgd"),
            "λ grows the weights (decoupled ×-1)",
        ),
        (probe("coupled", bias=True), "sgd", verdict.Verdict("never", why="bias"), "cannot spare the bias"),
        (
            Probe("unsupported", "no regularizer here"), "sgd",
            verdict.Verdict("unsupported", detail="no regularizer here"), "no regularizer here",
        ),
        (
            probe("coupled", matched=False), "sgd",
            verdict.Verdict("unexplained", detail=UNEXPLAINED), UNEXPLAINED,
        ),
    ],
)  # fmt: skip
def test_an_api_is_the_l2_penalty_after_a_conversion_or_never(api, optimizer, expected, words):
    found = verdict.verdict(api, L2, optimizer)
    assert found == expected and found.reason == words


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
    found = {(s.optimizer, s.kind.label): s for s in verdict.semantics([fake_fingerprint("fake")])}
    momentum, adamw = found["momentum", "weight_decay"], found["adam", "adamw"]
    assert (momentum.placement, momentum.times_lr, momentum.through_state) == ("coupled", True, True)
    assert found["sgd", "weight_decay"].through_state is None  # no state to go through
    assert (adamw.placement, adamw.times_lr, adamw.through_state) == ("decoupled_lr", True, False)
    assert verdict.bias_decayed(adamw.default) is True and adamw.bias_honoured
    assert found["sgd", "regularizer"].spared.outcome() == "unsupported: no regularizer here"
    assert found["sgd", "l2_loss"].default is None  # the loss has no default to probe
    decoupled = fake_fingerprint("fake", weight_decay="decoupled")
    semantics = {(s.optimizer, s.kind.label): s for s in verdict.semantics([decoupled])}
    assert semantics["momentum", "weight_decay"].times_lr is False
    conventions = verdict.conventions(decoupled)
    assert conventions[ConventionKey("sgd", "loss")] == "mse" and conventions[ConventionKey("adam", "eps")] == "outside"
    assert conventions[ConventionKey("nadam", "momentum_decay")] == 0.004  # the fake's is the case's own ψ


def test_conversions_scale_lambda_and_say_when_none_exists():
    """fake: weight_decay coupled, decoupled × lr for decoupled; other: decoupled × lr for both;
    third: weight_decay decoupled without lr, which is λ/lr × lr at a constant lr, and no setting
    of fake's once the lr follows a schedule."""
    coupled = fake_fingerprint("fake")
    other = fake_fingerprint("other", weight_decay="decoupled_lr")
    third = fake_fingerprint("third", weight_decay="decoupled")
    found = equivalents.conversions([coupled, other, third])
    assert found["fake", "momentum", ApiKey("weight_decay")]["other"] == equivalents.Conversion(ApiKey("l2_loss"), 1.0)
    assert found["other", "momentum", ApiKey("weight_decay")]["fake"] == equivalents.Conversion(
        ApiKey("decoupled"), 1.0
    )
    assert found["third", "momentum", ApiKey("weight_decay")]["fake"] == equivalents.Conversion(
        ApiKey("decoupled"), 1.0, lr_power=-1
    )
    scheduled = equivalents.conversions([coupled, other, third], schedule="step")
    assert scheduled["third", "momentum", ApiKey("weight_decay")]["fake"] == equivalents.Conversion(
        None, reason="weight_decay is coupled, decoupled is decoupled × lr, l2_loss is coupled"
    )
    assert scheduled["other", "momentum", ApiKey("weight_decay")]["fake"] == equivalents.Conversion(
        ApiKey("decoupled"), 1.0
    )
    assert found["fake", "sgd", ApiKey("weight_decay")]["other"] == equivalents.Conversion(ApiKey("weight_decay"), 1.0)
    assert ("fake", "sgd", ApiKey("l2_loss")) not in found  # the loss is what the others are converted to


def test_no_setting_converts_between_frameworks_whose_optimizer_conventions_differ():
    after = fake_fingerprint("fake")
    uncorrected = probe(explain.NONE, 0.0, eps="outside_uncorrected")
    before = dataclasses.replace(
        after, backend="keras-like", conventions={**after.conventions, ConventionKey("adam", "eps"): uncorrected}
    )
    found = equivalents.conversions([after, before])
    assert found["fake", "adam", ApiKey("weight_decay")]["keras-like"] == equivalents.Conversion(
        None, reason="adam's eps convention is ε outside √ or max in fake, ε before bias correction in keras-like"
    )
    assert found["fake", "momentum", ApiKey("weight_decay")]["keras-like"].kind == ApiKey("weight_decay")


def test_a_multiplier_the_probe_cannot_tell_gives_no_verdict_and_no_conversion():
    """A sign step (Lion) sees a coupled decay only through the sign: ×½, ×1, ×2 all fit."""
    unseen = probe("coupled", 0.5, equivalents=[Form("coupled", 1.0), Form("coupled", 2.0)])
    found = verdict.verdict(unseen, L2, "lion")
    assert found == verdict.Verdict("unknown", why="multiplier unseen", detail="coupled ×0.5, coupled ×1, coupled ×2")
    assert found.reason == "the probe cannot tell λ's multiplier (coupled ×0.5, coupled ×1, coupled ×2 all fit)"
    assert verdict.verdict(probe("decoupled_lr"), unseen, "lion").outcome == "never"  # no place in common
    assert equivalents.convert(unseen.explained, {"regularizer": unseen.explained}).kind is None


def test_the_papers_decay_converts_to_lambda_over_lr_where_the_decay_follows_the_scheduled_lr():
    """Loshchilov & Hutter decay λ·ηₜ·w; fake's decoupled Adam decays lr·ηₜ·λ'·w: λ' = λ/lr. A decay
    × η is the paper's; one without lr follows no schedule, so no λ' gives the paper's."""
    fake = fake_fingerprint("fake")
    assert equivalents.from_paper([fake]) == {"fake": equivalents.Conversion(ApiKey("decoupled"), 1.0, lr_power=-1)}
    paper_like = dataclasses.replace(fake, schedules={
        key: dataclasses.replace(p, explained=equivalents.PAPER) for key, p in fake.schedules.items()
    })  # fmt: skip
    assert equivalents.from_paper([paper_like])["fake"] == equivalents.Conversion(ApiKey("decoupled"), 1.0)
    unscheduled = fake_fingerprint("plain", weight_decay="decoupled")
    none = probe("decoupled", 1.0)
    unscheduled = dataclasses.replace(unscheduled, schedules={
        key: none for key in unscheduled.schedules
    })  # fmt: skip
    assert equivalents.from_paper([unscheduled])["plain"] == equivalents.Conversion(
        None, reason="decoupled is decoupled, adamw is decoupled"
    )


def test_a_variant_is_probed_on_its_own_and_can_be_the_papers_setting():
    """The fake's adamw variant eta_multiplier decays × η: the paper's λ is its λ, and its row in the
    fingerprint and conversions is named with the variant."""
    fake = fake_fingerprint("fake", variants=True)
    assert fake.penalties[fingerprint.ProbeKey("adam", "adamw", False, "eta_multiplier")].matched
    step = fake.schedules[fingerprint.ScheduleKey("adam", "adamw", "step", "eta_multiplier")]
    assert verdict.follows(step) == "multiplier η"
    assert ApiKey("adamw", "eta_multiplier") in {found.kind for found in verdict.semantics([fake])}
    assert str(ApiKey("adamw", "eta_multiplier")) == "adamw [eta_multiplier]"  # how the report names it
    assert equivalents.from_paper([fake]) == {
        "fake": equivalents.Conversion(ApiKey("adamw", "eta_multiplier"), 1.0)
    }  # λ as is
    other = fake_fingerprint("other")
    found = equivalents.conversions([fake, other], schedule="step")["fake", "adam", ApiKey("adamw", "eta_multiplier")][
        "other"
    ]
    assert found == equivalents.Conversion(ApiKey("adamw"), 1.0, lr_power=-1)  # λ·η = lr·η·λ' for λ' = λ/lr


def test_no_setting_converts_a_decay_of_the_bias_to_one_that_spares_it():
    """Paddle's float weight_decay decays the bias the probe spares; torch's weight_decay spares it."""
    decays, spares = probe("coupled", bias=True).explained, probe("coupled").explained
    assert equivalents.convert(decays, {"weight_decay": spares}) == equivalents.Conversion(
        None, reason="weight_decay spares the bias"
    )
    assert equivalents.convert(decays, {"weight_decay": spares, "l2_bias": decays}) == equivalents.Conversion(
        "l2_bias", 1.0
    )
    untold = dataclasses.replace(spares, bias_ambiguous=True)
    assert equivalents.convert(decays, {"weight_decay": untold}) == equivalents.Conversion("weight_decay", 1.0)


def stored(case, norms, backend="torch"):
    """A trained result of ``case`` whose ‖w‖ per step is ``norms``, as the judgements read it."""
    steps = SimpleNamespace(w_norm=norms)
    return SimpleNamespace(backend=backend, case=case, trained=True, ok=True, steps=steps, hyperparameter_dtype=None)


def run_of(result):
    return SimpleNamespace(backend=result.backend, case=result.case, trained=True, ok=True, result=result)


API_CASE = Case().replace({"penalty.kind": "weight_decay", "penalty.strength": 3.0})
TWIN = API_CASE.replace({"penalty.kind": "l2_loss"})


@pytest.mark.parametrize(
    "outcome, api_norms, parting, agrees",
    [
        ("same", [1.0, 0.9, 0.8], None, True),  # the twin coincides: as the verdict says
        ("same", [1.0, 0.9, 0.7], 2, False),  # it parts at step 2: the verdict is wrong
        ("never", [1.0, 0.9, 0.7], 2, True),
        ("never", [1.0, 0.9, 0.8], None, False),
        ("convert", [1.0, 0.5, 0.3], 1, True),  # λ was not converted in the runs: they part
    ],
)
def test_a_full_run_is_checked_against_its_verdict_by_its_l2_loss_twin(outcome, api_norms, parting, agrees):
    api, twin = stored(API_CASE, api_norms), stored(TWIN, [1.0, 0.9, 0.8])
    found = {("torch", "sgd", "weight_decay"): verdict.Verdict(outcome)}
    (check,) = verdict.check_runs([run_of(api), run_of(api)], {("torch", TWIN.id): twin}, found)  # each run once
    assert (check.outcome, check.parting, check.agrees, check.strength) == (outcome, parting, agrees, 3.0)


def test_a_run_without_a_twin_or_a_verdict_is_not_checked():
    api = stored(API_CASE, [1.0, 0.9])
    assert verdict.check_runs([run_of(api)], {}, {("torch", "sgd", "weight_decay"): verdict.Verdict("same")}) == []
    assert verdict.check_runs([run_of(api)], {("torch", TWIN.id): stored(TWIN, [1.0, 0.9])}, {}) == []


def test_full_runs_agree_with_their_probe_or_are_named():
    coupled, decoupled = probe("coupled"), probe("decoupled_lr")
    prints = [SimpleNamespace(backend="torch", penalties={ProbeKey("sgd", "weight_decay", False): coupled},
                              schedules={})]  # fmt: skip
    runs = []
    for explained, label in ((coupled.explained, "λ=3"), (decoupled.explained, "λ=1")):
        result = SimpleNamespace(explained=explained)
        runs.append(("d2l", SimpleNamespace(backend="torch", case=API_CASE, ok=True, result=result, label=label)))
    (found,) = verdict.agreement(prints, runs, "step")
    assert (found.runs, found.agree, found.scheduled, found.probe) == (2, 1, False, str(coupled.explained))
    assert found.disagreeing == (f"d2l λ=1: {decoupled.explained}",)
