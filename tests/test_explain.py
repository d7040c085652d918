"""Which rule explains a run: the catalog's order, the equivalents of a match, the closest of a miss."""

from backends.contract import Trajectory
from harness import data, explain, oracle
from harness.case import Case
from harness.explain import Form

CASE = Case().replace({"train.epochs": 5, "penalty.kind": "weight_decay", "penalty.strength": 3.0})


def run_of(rule, case):
    arrays = data.make(case)
    w, b = oracle.simulate(rule, case, arrays)
    return arrays, Trajectory(w=w, b=b, statements=())


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


MLP = Case().replace(
    {"data.dim": 3, "data.n_train": 4, "data.target": "square", "data.true_w": 0.5, "model.kind": "mlp",
     "model.hidden": [2], "model.bias_init_std": 0.5, "train.epochs": 3, "train.batch_size": 2,
     "optimizer.name": "adam", "optimizer.lr": 0.05, "penalty.kind": "weight_decay", "penalty.strength": 0.5,
     "penalty.decay_bias": True}
)  # fmt: skip


def test_an_mlps_role_sets_keep_some_weight_and_with_the_bias_some_bias_decayed():
    sets = explain.role_sets(MLP)
    assert sets[:2] == [(False, ()), (False, ("hidden_weight",))] and (True, ()) in sets
    assert len(sets) == 3 + 3 * 3  # biases spared: no weight, or one of two; decayed: 3 weight × 3 bias choices
    assert explain.role_sets(CASE) == [(False, ()), (True, ())]  # the linear model: the bias, as before


def test_an_mlp_run_is_explained_by_roles_its_case_did_not_ask_for():
    """The staged search reaches every role set: a run that spares just the hidden biases, of a case
    that asked to decay everything, with Adam's other ε convention."""
    rule = oracle.Rule(decoupled_lr=0.5, decay_bias=True, spared=("hidden_bias",), eps="outside_uncorrected")
    found = explain.explain(MLP, *run_of(rule, MLP))
    assert found.matched and found.rule == rule, found
    assert str(found) == (
        "decoupled × lr ×1, bias decayed, hidden biases not decayed, loss half_mse, ε before bias correction"
    )


def test_an_mlp_run_no_rule_explains_falls_back_to_the_whole_catalog(monkeypatch):
    arrays, run = run_of(oracle.Rule(decoupled_lr=0.5, decay_bias=True), MLP)
    w = run.w.copy()
    w[2:] *= 1.01  # no rule moves every weight by 1 % at once
    tried, simulate = [], oracle.simulate_rules
    monkeypatch.setattr(
        oracle, "simulate_rules", lambda rules, *a, **k: tried.extend(rules) or simulate(rules, *a, **k)
    )
    found = explain.explain(MLP, arrays, Trajectory(w=w, b=run.b, statements=()))
    assert not found.matched
    # the catalog, then (a framework API's run) its L1 rules and its growths: each rule once, the closest once
    # more (its drift)
    growths = explain.candidates(MLP, where=(explain.GROWTH[0],), multipliers=(explain.GROWTH[1],))
    catalog = [*explain.candidates(MLP), *explain.candidates(MLP, where=("l1",)), *growths]
    assert set(tried) == {rule for _, rule in catalog}
    assert len(tried) == len(set(tried)) + 1


def test_a_role_whose_decay_the_run_cannot_tell_is_unseen_not_chosen():
    """LAMB's trust ratio makes a one-element tensor's step lr·|p|·sign(r): a decay of the output
    bias (inside the ratio) does not show, so the run says so rather than pick a side."""
    lamb = MLP.replace({"optimizer.name": "lamb", "penalty.kind": "decoupled"})
    rule = oracle.Rule(decoupled_ratio=0.5, decay_bias=True, spared=("output_weight", "output_bias"))
    found = explain.explain(lamb, *run_of(rule, lamb))
    assert found.matched and found.unseen == ("output_bias",), found
    assert "output weight not decayed, output bias decay not seen" in str(found)


def test_a_catalog_simulated_a_few_rules_at_a_time_finds_what_it_finds_whole(monkeypatch):
    """A wide MLP's catalog is simulated in pieces (``SIMULATED_VALUES``); the pieces judge as the whole."""
    arrays, run = run_of(oracle.Rule(decoupled_lr=0.5, decay_bias=True), MLP)
    whole = explain.explain(MLP, arrays, run)
    monkeypatch.setattr(explain, "SIMULATED_VALUES", (MLP.steps + 1) * MLP.parameters * 3)  # three rules at once
    assert explain.explain(MLP, arrays, run) == whole and whole.matched
