"""Files written by earlier releases load in this one: results of schemas 1 to 3 and fingerprints
without a schema_version, checked in under tests/legacy/ as those releases wrote them (real
framework runs of the d2l, lr and sweep specs; schema 1 by the first release's torch adapter,
schema 3 by the last release's)."""

import json
from pathlib import Path

import pytest

from backends.contract import Statement
from harness import document, explain, fingerprint, report, spec, store

LEGACY = Path(__file__).parent / "legacy"
GOLDEN = Path(__file__).parent / "golden"
# Wording an explanation's text has changed since, the meaning the same: old -> new.
RENAMED = {"Adam ε before correction": "ε before bias correction"}
RESULTS = [path for old in ("results", "schema1", "schema3") for path in sorted((LEGACY / old).glob("*/*.json"))]


def reworded(text):
    for old, new in RENAMED.items():
        text = text.replace(old, new)
    return text


@pytest.mark.parametrize("path", RESULTS, ids=lambda path: f"{path.parent.parent.name}-{path.parent.name}-{path.stem}")
def test_an_earlier_result_loads_with_every_value_it_stored(path):
    old, result = json.loads(path.read_text()), store.read(path)
    assert (result.backend, result.case_id, result.status, result.reason) == (
        old["backend"],
        old["case_id"],
        old["status"],
        old["reason"],
    )
    now = json.loads(json.dumps(result.case.to_dict()))  # as stored: tuples are lists
    assert all(now[section][key] == value for section, values in old["case"].items() for key, value in values.items())
    assert result.versions == old["versions"] and result.api == old["api"]
    if old["final"] is not None:
        assert (
            vars(result.final) == old["final"]
            and vars(result.steps) == old["steps"] | {"tensor_norms": None}  # a linear model's: none
            and vars(result.epochs) == old["epochs"]
        )
    if old["schema_version"] == 2 and old.get("explained") is not None:  # its text is made again, the same
        assert str(result.explained) == reworded(old["explained"]["text"])
        assert result.explained.gap == result.explained.drift == old["explained"]["gap"]
    assert store.is_current(path, old["case_id"], old["versions"]) == (old["schema_version"] >= 2 or not result.ok)
    if old["schema_version"] == 3 and old.get("explained") is not None:  # stored as a structure already
        assert result.explained == explain.Explanation.from_json(old["explained"])
    if old["schema_version"] == 3 and old["api"]:  # its text, one note: nothing to run again from it
        assert result.statements == (Statement("note", old["api"]),)


def test_a_report_reads_earlier_results_and_skips_none():
    text = document.markdown(report.blocks([spec.load("d2l")], LEGACY / "results"))
    assert "Skipped files" not in text
    every_case = text.split("### Every case")[1]
    row = next(line for line in every_case.splitlines() if line.startswith("| sgd, weight_decay, λ=3 | torch | ok |"))
    assert "| coupled ×1 (≡ decoupled × lr ×1), bias not decayed, loss half_mse |" in row


@pytest.mark.parametrize("path", sorted((LEGACY / "fingerprints").glob("*.json")), ids=lambda path: path.stem)
def test_an_earlier_fingerprint_loads_and_the_golden_one_keeps_its_explained_outcomes(path):
    """Every probe the earlier release explained is explained alike now; one it could not explain
    may have another closest rule, since runs are now judged step by step from their own weights."""
    old, found = json.loads(path.read_text()), fingerprint.Fingerprint.load(path)
    assert len(old["probes"]) == len(found.penalties) + len(found.conventions) and not found.defaults
    golden = fingerprint.Fingerprint.load(GOLDEN / f"{found.backend}.json")
    for entry in old["probes"]:
        key = entry["probe"]
        if isinstance(key, list):
            key, part = fingerprint.ProbeKey(*key), "penalties"
        else:
            key, part = fingerprint.ConventionKey(*fingerprint._V1_CONVENTIONS[key]), "conventions"
        probe, now = getattr(found, part)[key], getattr(golden, part)[key]
        text = reworded(entry["explained"]["text"]) if entry["status"] == "ok" else f"unsupported: {entry['reason']}"
        assert probe.outcome() == text
        if probe.status != "ok" or probe.matched:
            assert now.pinned == probe.pinned, f"{found.backend} {key}: was {probe.outcome()}, now {now.outcome()}"
        else:
            assert now.status == "ok" and not now.matched, f"{found.backend} {key}: now {now.outcome()}"
