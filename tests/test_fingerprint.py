"""The semantic fingerprint: the probe separates the rules, the document round-trips, changes
read well, and every framework's fingerprint still matches the golden one under tests/golden/."""

import dataclasses
import itertools
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import fake_fingerprint

from harness import data, diff, equivalents, explain, fingerprint, oracle, probes, spec, verdict
from harness.case import OPTIMIZERS

GOLDEN = Path(__file__).parent / "golden"
LOOSEST = max(diff.TOLERANCE.values())


DECAYS = ("coupled", "decoupled_lr", "decoupled", "decoupled_ratio", "l1", "lr_decay")


def one_step_gap(a, b, case, make_arrays=probes.probe_arrays):
    """The larger of: rule b's steps predicted along rule a's run, and a's along b's (max relative gap)."""
    gaps = []
    for one, other in ((a, b), (b, a)):
        arrays = make_arrays(case)
        run = oracle.simulate(one, case, arrays)
        with np.errstate(all="ignore"):
            w, bias = oracle.simulate_rules([other], case, arrays, along=run)
            found = diff.relative_gaps(run, (w[0], bias[0]))
        gaps.append(np.max(np.where(np.isfinite(found), found, np.inf)))
    return min(gaps)


def the_same_update(optimizer, form_a, a, form_b, b):
    """Why two catalog rules step alike on the probe, as the algebra of the optimizer has it, or None."""
    differ = {field for field in vars(a) if getattr(a, field) != getattr(b, field)}
    decays = {form_a.placement, form_b.placement}
    if optimizer == "sgd" and decays == {"coupled", "decoupled_lr"} and form_a.multiplier == form_b.multiplier:
        return "without momentum or state, g + kλw stepped by lr is w − lr·kλw − lr·g"
    if differ <= {"scale_after_decay"} and not (a.decoupled_lr or a.decoupled):
        return "with no decay beside the step, the parameters read after it are the parameters"
    if (
        optimizer == "lamb"
        and differ <= {"decay_bias", "scale_after_decay"}
        and decays <= {"coupled", "decoupled_ratio"}
    ):
        return "the trust ratio of a one-element bias is |b|/|r|: a decay inside it only scales r"
    if optimizer in ("lion", "signum") and decays == {"coupled"} and differ <= {"coupled", "decay_bias"}:
        return "a sign step sees a coupled decay only where it flips the sign, which it does nowhere here"
    return None


LIMIT = 100 * max(diff.STEP_TOLERANCE.values())  # two rules a probe parts predict each other 100× past any tolerance


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_the_probe_tells_every_pair_of_rules_apart(optimizer):
    """Any two catalog rules with the same conventions the penalty probe is not made to part (ε,
    the relative step) predict each other's steps 100× further apart than the loosest step
    tolerance, except where the optimizer's algebra makes them one update (``the_same_update``)."""
    case = probes.probe_case(optimizer, {"penalty.kind": "weight_decay"})
    for (form_a, a), (form_b, b) in itertools.combinations(explain.candidates(case), 2):
        if (a.eps, a.relative_step) != (b.eps, b.relative_step) or the_same_update(optimizer, form_a, a, form_b, b):
            continue
        gap = one_step_gap(a, b, case)
        assert gap > LIMIT, f"{optimizer}: {form_a.name} {a} vs {form_b.name} {b}: {gap:.2g}"


@pytest.mark.parametrize("optimizer, field", list(probes.CONVENTION_PROBES))
def test_each_convention_probe_parts_the_values_of_its_convention(optimizer, field):
    """On its convention probe, the rules that differ only in that convention (their penalty the
    probe's own: none, or (λ/2)‖w‖² in the loss) predict each other's steps 100× apart."""
    case = probes.probe_case(optimizer, {"penalty.strength": 0.0} | probes.CONVENTION_PROBES[optimizer, field])
    base = oracle.loss_penalty_rule(case.replace({"train.loss": "half_mse"}))
    rules = [r for _, r in explain.candidates(case) if (r.coupled, r.decay_bias) == (base.coupled, False)
             and not (r.l1 or r.decoupled_lr or r.decoupled or r.decoupled_ratio or r.lr_decay)]  # fmt: skip
    assert len({getattr(rule, field) for rule in rules}) >= 2, f"{optimizer} {field}: one value only"
    for a, b in itertools.combinations(rules, 2):
        if {f for f in vars(a) if getattr(a, f) != getattr(b, f)} == {field}:
            assert one_step_gap(a, b, case) > LIMIT, f"{optimizer} {field}: {a} vs {b}"


SCHEDULED = ("decoupled_lr", "decoupled_base", "decoupled_multiplier", "decoupled")  # the decays a schedule parts


@pytest.mark.parametrize("schedule", list(probes.SCHEDULE_PROBES))
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_each_schedule_probe_parts_where_the_decay_follows_the_schedule(optimizer, schedule):
    """On each schedule probe, two catalog rules that differ only in where their decoupled decay
    follows the schedule (× scheduled lr, × base lr, × η, × 1, each k), or only in the count the
    first step reads, predict each other's steps 100× further apart than the loosest step tolerance;
    but for a step that ignores lr (Adadelta's), whose count shows only through a decay × lr or × η."""
    case = probes.probe_case(optimizer, {"penalty.kind": "decoupled"} | probes.SCHEDULE_PROBES[schedule])
    for (form_a, a), (form_b, b) in itertools.combinations(explain.candidates(case), 2):
        differ = {f for f in vars(a) if getattr(a, f) != getattr(b, f)}
        placed = {form_a.placement, form_b.placement} <= set(SCHEDULED) and differ <= {*SCHEDULED}
        scheduled = form_a.placement in ("decoupled_lr", "decoupled_multiplier") or not a.lr_ignored
        if placed or (differ == {"schedule_offset"} and form_a.placement != explain.NONE and scheduled):
            gap = one_step_gap(a, b, case)
            assert gap > LIMIT, f"{optimizer} {schedule}: {form_a.name} {a} vs {form_b.name} {b}: {gap:.2g}"


@pytest.mark.parametrize("optimizer", probes.ROLE_OPTIMIZERS)
def test_the_role_probe_tells_every_two_sets_of_decayed_roles_apart(optimizer):
    """On the role probe, two catalog rules that differ only in the roles they decay predict each
    other's steps 100× further apart than the loosest step tolerance, for each placement."""
    case = probes.probe_case(optimizer, {"penalty.kind": "weight_decay"}, probes.ROLE_PROBE)
    pairs = 0
    for (form_a, a), (form_b, b) in itertools.combinations(explain.candidates(case), 2):
        differ = {f for f in vars(a) if getattr(a, f) != getattr(b, f)}
        if form_a == form_b and form_a.placement != explain.NONE and differ <= {"decay_bias", "spared"}:
            gap = one_step_gap(a, b, case, probes.role_arrays)
            assert gap > LIMIT, f"{optimizer} {form_a.name}: {a} vs {b}: {gap:.2g}"
            pairs += 1
    assert pairs >= 12 * 11 // 2 * 3 * 3, f"{optimizer}: {pairs} pairs"  # 12 role sets, 3 placements × 3 k


def test_a_fingerprint_round_trips_through_its_json_document(tmp_path):
    found = fake_fingerprint()
    found.save(tmp_path / "semantics-fake.json")
    assert fingerprint.Fingerprint.load(tmp_path / "semantics-fake.json") == found
    (tmp_path / "bad.json").write_text('{"schema_version": 7}')
    with pytest.raises(ValueError, match="bad.json: not a fingerprint document .*schema_version = 7"):
        fingerprint.Fingerprint.load(tmp_path / "bad.json")


def test_a_changed_semantics_is_a_readable_difference():
    before, after = fake_fingerprint(), fake_fingerprint(weight_decay="decoupled_lr")
    lines = fingerprint.changes(before, after)
    assert (
        "momentum weight_decay (decay_bias = false): was coupled ×1, bias not decayed, loss half_mse, "
        "now decoupled × lr ×1, bias not decayed, loss half_mse"
    ) in lines
    assert not any(line.startswith("sgd weight_decay") for line in lines)  # the same update without momentum
    assert fingerprint.changes(before, before) == []


# --------------------------------------------------------------------------- per framework env


RELEASE = os.environ.get("DECAYLENS_RELEASE", "")  # a release matrix env's release (tox.ini), else the pinned one


def golden(name):
    path = GOLDEN / fingerprint.RELEASES / f"{name}@{RELEASE}.json" if RELEASE else GOLDEN / f"{name}.json"
    if not path.exists():
        flags = f"--release {RELEASE} --update-golden" if RELEASE else "--update-golden"
        pytest.fail(f"no golden fingerprint {path}: run `decaylens probe --backend {name} {flags}`")
    return fingerprint.Fingerprint.load(path)


def test_the_fingerprint_is_the_golden_one(backend):
    name, adapter = backend
    expected = golden(name)
    found = probes.probe(name, adapter, "test")
    changed = fingerprint.changes(expected, found)
    assert not changed, f"{name} {found.versions} no longer does what {expected.versions} did:\n  " + "\n  ".join(
        changed
    )


@pytest.mark.parametrize("path", sorted(GOLDEN.rglob("*.json")), ids=lambda path: path.stem)
def test_every_golden_probe_is_explained_or_accounted_for_by_its_adapter(path):
    """No unexplained probe without a reason: each is named as the framework's own behaviour."""
    found = fingerprint.Fingerprint.load(path)
    explained = [(key, probe) for key, probe in found.probes if not isinstance(key, fingerprint.CallKey)]
    silent = [key.label for key, probe in explained if probe.status == "ok" and not probe.matched and not probe.note]
    assert not silent, f"{found.backend}: unexplained, and its adapter's OWN_BEHAVIOURS says nothing of: {silent}"


def equivalences():
    """(target backend, the target's d2l case at the converted setting, the oracle rule the source's API
    follows there) for every conversion the golden fingerprints state, checked in the target's env.

    The case is d2l's with the optimizer's own defaults, in float64 (or float32 where the target's
    probe ran in float32), at λ = 3, or 3·lr for a source decay without lr (the same decay per step);
    the rule is the source probe's, its conventions as the source's convention probes found them.
    Sources whose conversions set the target alike and follow one rule are one check, named by all."""
    documents = {d.backend: d for d in map(fingerprint.Fingerprint.load, sorted(GOLDEN.glob("*.json")))}
    probes = {(d.backend, key.optimizer, fingerprint.api(key)): p for d in documents.values()
              for key, p in d.penalties.items() if key.decay_bias is False and p.status == "ok"}  # fmt: skip
    d2l = spec.load("d2l")
    reference = {target: d2l.cases(target)[0][1] for target in documents}
    checks = {}
    for (source, optimizer, kind), targets in equivalents.conversions(documents.values()).items():
        for target, conversion in targets.items():
            if conversion.kind is None:
                continue
            explained = probes[source, optimizer, kind].explained
            dtype = probes[target, optimizer, conversion.kind].dtype
            case = reference[target].replace({"optimizer.name": optimizer, "model.dtype": dtype})
            case = case.with_optimizer_defaults({"optimizer.lr"})
            lr = case.optimizer.lr
            strength = 3.0 * (lr if explained.form.placement == "decoupled" else 1.0)
            rule = verdict.resolved(documents[source], optimizer, explained)
            rule = dataclasses.replace(rule, **{explained.form.placement: explained.form.multiplier * strength})
            target_kind, variant = conversion.kind
            converted = strength * conversion.factor * lr**conversion.lr_power
            case = case.replace(
                {"penalty.kind": target_kind, "penalty.variant": variant, "penalty.strength": converted}
            )
            checks.setdefault((target, case, rule), []).append(f"{source}-{kind}")
    for (target, case, rule), sources in checks.items():
        kind = case.penalty.kind + (f"-{case.penalty.variant}" if case.penalty.variant else "")
        yield pytest.param(target, case, rule, id=f"{case.optimizer.name}-{kind}-in-{target}-from-{'+'.join(sources)}")


@pytest.mark.parametrize("target, case, rule", list(equivalences()))
def test_a_conversion_reproduces_the_other_frameworks_run(load_adapter, target, case, rule):
    """The target's setting follows, each step predicted from the target's own previous one, the oracle
    rule the source's golden fingerprint says the source's API follows (``equivalences``)."""
    adapter = load_adapter(target)
    arrays = data.make(case)
    trajectory = adapter.train(case, arrays)
    run = (trajectory.w, trajectory.b)
    with np.errstate(all="ignore"):
        w, b = oracle.simulate_rules([rule], case, arrays, along=run)
    gaps = diff.relative_gaps(run, (w[0], b[0]))
    tolerance = diff.tolerance(case.model.dtype, trajectory.hyperparameter_dtype, diff.STEP_TOLERANCE)
    step = diff.first_divergent_step(gaps, tolerance)
    assert step is None, f"{target} {case.penalty.kind} λ' = {case.penalty.strength:g} parts at step {step}"
