"""The semantic fingerprint: the probe separates the rules, the document round-trips, changes
read well, and every framework's fingerprint still matches the golden one under tests/golden/."""

import itertools
from pathlib import Path

import fake_backend
import numpy as np
import pytest
from conftest import load_adapter

from harness import data, diff, explain, fingerprint, oracle, spec, verdict

GOLDEN = Path(__file__).parent / "golden"
LOOSEST = max(diff.TOLERANCE.values())


def test_the_probe_tells_every_pair_of_rules_apart():
    """Any two catalog rules (same Adam ε convention) give probe trajectories 100× further
    apart than the loosest tolerance, except coupled and decoupled × lr with plain SGD (the
    same update); the ε probe parts the two ε conventions as widely."""
    for optimizer in fingerprint.OPTIMIZERS:
        case = fingerprint.PROBE.replace({"optimizer.name": optimizer, "penalty.kind": "weight_decay"})
        rules = list(explain.candidates(case))
        runs = {id(rule): oracle.simulate(rule, case, fingerprint.PROBE_ARRAYS) for _, rule in rules}
        for (form_a, a), (form_b, b) in itertools.combinations(rules, 2):
            gap = np.max(diff.relative_gaps(runs[id(a)], runs[id(b)]))
            same_update = (
                optimizer == "sgd"
                and {form_a.placement, form_b.placement} == {"coupled", "decoupled_lr"}
                and form_a.multiplier == form_b.multiplier
            )
            if a.adam_eps == b.adam_eps and not same_update:
                assert gap > 100 * LOOSEST, f"{optimizer}: {form_a.name} {a} vs {form_b.name} {b}: {gap:.2g}"
    eps = fingerprint.PROBE.replace({"optimizer.name": "adam", "optimizer.eps": 0.1})
    after, before = (oracle.simulate(oracle.Rule(adam_eps=c), eps, fingerprint.PROBE_ARRAYS) for c in oracle.ADAM_EPS)
    assert np.max(diff.relative_gaps(after, before)) > 100 * LOOSEST


def fake_fingerprint(weight_decay="coupled", name="fake"):
    return fingerprint.probe(name, fake_backend.make(weight_decay=weight_decay), "test")


def test_a_fingerprint_round_trips_through_its_json_document(tmp_path):
    found = fake_fingerprint()
    found.save(tmp_path / "semantics-fake.json")
    assert fingerprint.Fingerprint.load(tmp_path / "semantics-fake.json") == found
    (tmp_path / "bad.json").write_text('{"schema_version": 7}')
    with pytest.raises(ValueError, match="bad.json: not a fingerprint document .*schema_version = 7"):
        fingerprint.Fingerprint.load(tmp_path / "bad.json")


def test_a_changed_semantics_is_a_readable_difference():
    before, after = fake_fingerprint(), fake_fingerprint("decoupled_lr")
    lines = fingerprint.changes(before, after)
    assert (
        "momentum weight_decay (decay_bias = false): was coupled ×1, bias not decayed, loss half_mse, "
        "now decoupled × lr ×1, bias not decayed, loss half_mse"
    ) in lines
    assert not any(line.startswith("sgd weight_decay") for line in lines)  # the same update without momentum
    assert fingerprint.changes(before, before) == []


# --------------------------------------------------------------------------- per framework env


def golden(name):
    path = GOLDEN / f"{name}.json"
    if not path.exists():
        pytest.fail(f"no golden fingerprint for {name}: run `decaylens probe --backend {name} --update-golden`")
    return fingerprint.Fingerprint.load(path)


def test_the_fingerprint_is_the_golden_one(backend):
    name, adapter = backend
    expected = golden(name)
    found = fingerprint.probe(name, adapter, "test")
    changed = fingerprint.changes(expected, found)
    assert not changed, f"{name} {found.versions} no longer does what {expected.versions} did:\n  " + "\n  ".join(
        changed
    )


def equivalences():
    """(target backend, source, optimizer, API, Conversion, source rule) for every conversion the
    golden fingerprints state, to be checked in the target backend's env."""
    documents = [fingerprint.Fingerprint.load(path) for path in sorted(GOLDEN.glob("*.json"))]
    explained = {
        (d.backend, key.optimizer, key.kind): p.explained
        for d in documents
        for key, p in d.penalties.items()
        if key.decay_bias is False and p.status == "ok"
    }
    for (source, optimizer, kind), targets in verdict.conversions(documents).items():
        for target, conversion in targets.items():
            if conversion.kind is not None:
                yield pytest.param(
                    target,
                    source,
                    optimizer,
                    kind,
                    conversion,
                    explained[source, optimizer, kind],
                    id=f"{source}-{optimizer}-{kind}-in-{target}",
                )


@pytest.mark.parametrize("target, source, optimizer, kind, conversion, rule", list(equivalences()))
def test_a_conversion_reproduces_the_other_frameworks_run(target, source, optimizer, kind, conversion, rule):
    """On the d2l case in float64 (λ = 3), the target's setting follows, step by step, the
    oracle rule the source's golden fingerprint says the source's API follows."""
    adapter = load_adapter(target)
    _, case = spec.load("d2l").cases(target)[0]
    case = case.replace(
        {"optimizer.name": optimizer, "penalty.kind": conversion.kind, "penalty.strength": 3.0 * conversion.factor}
    )
    arrays = data.make(case)
    trajectory = adapter.train(case, arrays)
    source_rule = oracle.Rule(
        loss=rule.rule.loss, adam_eps=rule.rule.adam_eps, **{rule.form.placement: rule.form.multiplier * 3.0}
    )
    gaps = diff.relative_gaps((trajectory.w, trajectory.b), oracle.simulate(source_rule, case, arrays))
    tolerance = diff.tolerance(case.model.dtype, trajectory.hyperparameter_dtype)
    step = diff.first_divergent_step(gaps, tolerance)
    assert step is None, (
        f"{target} {conversion.kind} ×{conversion.factor:g} parts from {source} {optimizer} {kind} at step {step}"
    )
