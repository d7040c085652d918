"""The semantic fingerprint: the probe separates the rules, derivations are right, and
every framework's fingerprint still matches the golden one checked in under tests/golden/."""

import itertools
import json
from pathlib import Path

import fake_backend
import numpy as np
import pytest

from conftest import load_adapter
from harness import data, diff, explain, fingerprint, oracle, spec

GOLDEN = Path(__file__).parent / "golden"
LOOSEST = max(diff.TOLERANCE.values())


def test_the_probe_tells_every_pair_of_rules_apart():
    """Any two catalog rules (same Adam ε convention) give probe trajectories 100× further
    apart than the loosest tolerance, except coupled and decoupled × lr with plain SGD (the
    same update); the ε probe parts the two ε conventions as widely."""
    for optimizer in fingerprint.OPTIMIZERS:
        case = fingerprint.PROBE.replace({"optimizer.name": optimizer, "penalty.kind": "weight_decay"})
        rules = [(name, k, rule) for name, k, rule in explain.candidates(case)]
        runs = {id(rule): oracle.simulate(rule, case, fingerprint.PROBE_ARRAYS) for _, _, rule in rules}
        for (name_a, k_a, a), (name_b, k_b, b) in itertools.combinations(rules, 2):
            gap = np.max(diff.relative_gaps(runs[id(a)], runs[id(b)]))
            same_update = optimizer == "sgd" and {name_a, name_b} == {"coupled", "decoupled × lr"} and k_a == k_b
            if a.adam_eps == b.adam_eps and not same_update:
                assert gap > 100 * LOOSEST, f"{optimizer}: {name_a} ×{k_a} {a} vs {name_b} ×{k_b} {b}: {gap:.2g}"
    eps = fingerprint.PROBE.replace({"optimizer.name": "adam", "optimizer.eps": 0.1})
    after, before = (oracle.simulate(oracle.Rule(adam_eps=c), eps, fingerprint.PROBE_ARRAYS) for c in oracle.ADAM_EPS)
    assert np.max(diff.relative_gaps(after, before)) > 100 * LOOSEST


def fake_fingerprint(monkeypatch, weight_decay="coupled"):
    monkeypatch.setenv("FAKE_BACKEND_WEIGHT_DECAY", weight_decay)
    return fingerprint.probe("fake", fake_backend, "test")


def test_the_table_reads_the_rule_off_the_probes(monkeypatch):
    rows = {(r["optimizer"], r["API"]): r for r in fingerprint.table([fake_fingerprint(monkeypatch)])}
    assert rows["momentum", "weight_decay"]["λ enters"] == "gradient += 1·λ·w"
    assert rows["momentum", "weight_decay"]["through momentum / Adam"] == "yes"
    assert rows["sgd", "weight_decay"]["λ enters"] == "gradient += 1·λ·w ≡ decoupled × lr ×1"
    assert rows["adam", "adamw"]["λ enters"] == "w −= lr·1·λ·w (decoupled)"
    assert rows["adam", "adamw"]["through momentum / Adam"] == "no" and rows["adam", "adamw"]["× lr"] == "yes"
    assert rows["adam", "adamw"]["bias by default"] == "decayed"
    assert rows["adam", "weight_decay"]["decay_bias honoured"] == "yes"
    assert rows["sgd", "regularizer"]["λ enters"] == "unsupported: no regularizer here"
    decoupled = {(r["optimizer"], r["API"]): r for r in fingerprint.table([fake_fingerprint(monkeypatch, "decoupled")])}
    assert decoupled["momentum", "weight_decay"]["× lr"] == "no"
    assert fingerprint.conventions([fake_fingerprint(monkeypatch)]) == {"fake": {"Adam ε": "after correction", "native loss": "e²"}}


def test_a_changed_semantics_is_a_readable_difference(monkeypatch):
    before, after = fake_fingerprint(monkeypatch), fake_fingerprint(monkeypatch, "decoupled_lr")
    lines = fingerprint.changes(before, after)
    assert "momentum weight_decay (decay_bias = false): was coupled ×1, bias not decayed, loss half_mse, " \
           "now decoupled × lr ×1, bias not decayed, loss half_mse" in lines
    assert not any(line.startswith("sgd weight_decay") for line in lines)  # the same update without momentum
    assert fingerprint.changes(before, before) == []


def test_conversions_scale_lambda_and_say_when_none_exists(monkeypatch):
    coupled = fake_fingerprint(monkeypatch)
    decoupled = {**fake_fingerprint(monkeypatch, "decoupled_lr"), "backend": "other"}
    found = fingerprint.conversions([coupled, decoupled])
    assert found["fake", "momentum", "weight_decay"]["other"] == "l2_loss with λ' = λ"
    assert found["other", "momentum", "weight_decay"]["fake"] == "none exists: weight_decay is coupled, l2_loss is coupled"
    assert found["other", "adam", "weight_decay"]["fake"] == "adamw with λ' = λ"
    assert found["fake", "sgd", "weight_decay"]["other"] == "weight_decay with λ' = λ"


# --------------------------------------------------------------------------- per framework env


def golden(name):
    path = GOLDEN / f"{name}.json"
    if not path.exists():
        pytest.fail(f"no golden fingerprint for {name}: run `decaylens probe --backend {name} --update-golden`")
    return json.loads(path.read_text())


def test_the_fingerprint_is_the_golden_one(backend):
    name, adapter = backend
    expected = golden(name)
    found = fingerprint.probe(name, adapter, "test")
    changed = fingerprint.changes(expected, found)
    assert not changed, (
        f"{name} {found['versions']} no longer does what {expected['versions']} did:\n  " + "\n  ".join(changed)
    )


def equivalences():
    """(source backend, optimizer, API, target API, factor, source rule) for every conversion
    the golden fingerprints state, to be checked in the target backend's env."""
    documents = [json.loads(path.read_text()) for path in sorted(GOLDEN.glob("*.json"))]
    explained = {
        (d["backend"], *e["probe"]): e["explained"] for d in documents for e in d["probes"] if isinstance(e["probe"], list)
        and e["status"] == "ok"
    }
    for (source, optimizer, api), targets in fingerprint.conversions(documents).items():
        for target, text in targets.items():
            if not text.startswith("none"):
                yield pytest.param(target, source, optimizer, api, text, explained[source, optimizer, api, False],
                                   id=f"{source}-{optimizer}-{api}-in-{target}")


@pytest.mark.parametrize("target, source, optimizer, api, conversion, rule", list(equivalences()))
def test_a_conversion_reproduces_the_other_frameworks_run(target, source, optimizer, api, conversion, rule):
    """On the d2l case in float64 (λ = 3), the target's setting follows, step by step, the
    oracle rule the source's golden fingerprint says the source's API follows."""
    adapter = load_adapter(target)
    target_api, factor = conversion.split(" with λ' = ")
    factor = float(factor.removesuffix("λ").removesuffix("·") or 1)
    _, case = spec.load("d2l").cases(target)[0]
    case = case.replace({"optimizer.name": optimizer, "penalty.kind": target_api, "penalty.strength": 3.0 * factor})
    arrays = data.make(case)
    trajectory = adapter.train(case, arrays)
    field = explain.PLACEMENTS[rule["placement"]]
    source_rule = oracle.Rule(loss=rule["loss"], adam_eps=rule["adam_eps"], **{field: rule["multiplier"] * 3.0})
    gaps = diff.relative_gaps((trajectory.w, trajectory.b), oracle.simulate(source_rule, case, arrays))
    tolerance = diff.tolerance(case.model.dtype, trajectory.hyperparameter_dtype)
    step = diff.first_divergent_step(gaps, tolerance)
    assert step is None, f"{target} {target_api} ×{factor:g} parts from {source} {optimizer} {api} at step {step}"
