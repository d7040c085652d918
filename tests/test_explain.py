"""Which rule explains a run: the catalog's order, the equivalents of a match, the closest of a miss."""

from backends.contract import Trajectory
from harness import data, explain, oracle
from harness.case import Case
from harness.explain import Form

CASE = Case().replace({"train.epochs": 5, "penalty.kind": "weight_decay", "penalty.strength": 3.0})


def run_of(rule, case):
    arrays = data.make(case)
    w, b = oracle.simulate(rule, case, arrays)
    return arrays, Trajectory(w=w, b=b, api="")


def test_the_catalog_tries_no_decay_then_each_place_with_each_multiplier():
    names = [form.name for form, rule in explain.candidates(CASE) if not rule.decay_bias]
    assert names == ["no decay"] + [
        f"{place} ×{k:g}" for place in ("coupled", "decoupled × lr", "decoupled") for k in explain.MULTIPLIERS
    ]
    rules = [rule for _, rule in explain.candidates(CASE)]
    assert rules[2] == oracle.Rule(coupled=1.5, decay_bias=True)  # each form: bias spared, then decayed
    l1 = [form.placement for form, _ in explain.candidates(CASE.replace({"penalty.kind": "l1_loss"}))]
    assert set(l1) == {"none", "l1"}
    native = {rule.loss for _, rule in explain.candidates(CASE.replace({"train.loss": "native"}))}
    adam = {rule.eps for _, rule in explain.candidates(CASE.replace({"optimizer.name": "adam"}))}
    assert native == {"half_mse", "mse"} and adam == {"outside", "outside_uncorrected"}


def test_a_match_is_the_first_rule_in_catalog_order_with_the_others_as_equivalents():
    sgd = explain.explain(CASE, *run_of(oracle.Rule(decoupled_lr=3.0), CASE))
    assert sgd.matched and sgd.form == Form("coupled", 1.0) and sgd.equivalents == (Form("decoupled_lr", 1.0),)
    momentum = CASE.replace({"optimizer.name": "momentum"})
    found = explain.explain(momentum, *run_of(oracle.Rule(decoupled_lr=3.0), momentum))
    assert found.matched and found.forms == (Form("decoupled_lr", 1.0),)
    assert str(found) == "decoupled × lr ×1, bias not decayed, loss half_mse"


def test_at_lambda_zero_every_rule_matches_and_the_run_has_no_decay():
    case = CASE.replace({"penalty.strength": 0.0})
    found = explain.explain(case, *run_of(oracle.Rule(), case))
    assert found.matched and found.form == Form("none", 0.0) and found.equivalents == ()


def test_a_run_no_rule_reproduces_is_unexplained_with_the_closest_rule_and_its_gap():
    momentum = CASE.replace({"optimizer.name": "momentum"})
    found = explain.explain(
        momentum, *run_of(oracle.Rule(coupled=1.3 * 3.0), momentum)
    )  # k = 1.3 is not in the catalog
    assert not found.matched and found.form == Form("coupled", 1.0) and found.gap > 1e-6
    assert str(found).startswith("unexplained (closest: coupled ×1, bias not decayed, loss half_mse, gap ")


def test_an_explanation_round_trips_through_json_and_reads_the_same():
    found = explain.explain(CASE, *run_of(oracle.Rule(decoupled_lr=3.0), CASE))
    again = explain.Explanation.from_json(found.to_json())
    assert (
        again == found
        and str(again) == str(found) == "coupled ×1 (≡ decoupled × lr ×1), bias not decayed, loss half_mse"
    )
