"""The porting corpus (tests/porting.toml), each question asked as a user asks it: ``decaylens port --from
SOURCE CODE --to TARGET --check``, which runs the code as written in the source's tox env and the printed
lines as printed in the target's. Runs in the port env, after every framework env is built (tox -m test)."""

import os
import shutil
import tomllib
from pathlib import Path

import pytest

import backends
from harness import cli, port
from harness.fingerprint import Fingerprint
from harness.port import check

GOLDEN = Path(__file__).parent / "golden"
CORPUS = tomllib.loads((Path(__file__).parent / "porting.toml").read_text())["question"]
OUTCOMES = ("same", "apart", "never", "refused")
# What the corpus must ask about: each construct of the code people write (issue #26's list).
CONSTRUCTS = {
    "defaults", "groups", "chain", "chain order", "mask", "schedule", "torch scheduler", "keras schedule",
    "exclude_from_weight_decay", "wd_mult", "apply_decay_param_fun", "trainer options", "statements",
}  # fmt: skip
in_the_port_env = pytest.mark.skipif(
    not os.environ.get("DECAYLENS_PORT_CHECK"), reason="runs in the port env (tox -e port), after the framework envs"
)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A results directory holding every golden fingerprint."""
    found = tmp_path_factory.mktemp("results")
    for path in GOLDEN.glob("*.json"):
        shutil.copy(path, found / f"semantics-{path.name}")
    return found


def test_the_corpus_asks_from_and_to_every_backend_and_about_every_construct():
    assert len(CORPUS) >= 30
    assert {q["source"] for q in CORPUS} == {q["target"] for q in CORPUS} == set(backends.NAMES)
    assert {c for q in CORPUS for c in q["constructs"]} == CONSTRUCTS
    assert all(q["outcome"] in OUTCOMES and (q["outcome"] == "same" or q["says"]) for q in CORPUS)


@in_the_port_env
@pytest.mark.parametrize("question", CORPUS, ids=[f"{q['source']}-{q['target']}-{q['name']}" for q in CORPUS])
def test_each_question_is_answered_and_trains_as_the_code_or_refused_with_its_reason(question, results, capsys):
    argv = ["port", "--from", question["source"], question["code"], "--to", question["target"]]
    status = cli.main([*argv, "--results", str(results), "--check"])
    out, err = capsys.readouterr()
    outcome, says = question["outcome"], question.get("says", "")
    if outcome == "refused":
        assert status == 2 and says in err and err.count("\n") == 1, err
        return
    assert "check: the code did not run" not in out, out
    if outcome == "never":
        assert status == 0 and f"{question['target']}: no setting trains alike" in out and says in out, out
    elif outcome == "apart":
        assert status == 1 and "check: PARTS from your code" in out and says in out, out
    else:
        assert status == 0 and "check: trains as your code" in out, out
    assert all(text in out for text in question.get("shows", [])), out


@in_the_port_env
def test_a_translation_with_one_hyperparameter_changed_is_caught_by_the_check():
    """torch's Adadelta at its own defaults (lr 1.0, ε 1e-6), ported to tf-keras: the printed lines train
    alike; the same lines with epsilon=1.0 (the probe's value, what port printed before it read the
    source's defaults) part."""
    source, target = (Fingerprint.load(GOLDEN / f"{name}.json") for name in ("torch", "tensorflow-keras2"))
    reading = port.validated(port.read("torch.optim.Adadelta(model.parameters(), weight_decay=1e-4)", source))
    answer = port.port(reading, source, target)
    case = check.case(reading)
    mine = check.train("torch", case, check.source_statements(reading, source))
    right = [*answer.bindings, *answer.printed]
    wrong = [type(s)(s.kind, s.text.replace("epsilon=1e-06", "epsilon=1.0")) for s in right]
    assert wrong != right
    assert check.compare(mine, check.train("tensorflow-keras2", case, right)).parting is None
    assert check.compare(mine, check.train("tensorflow-keras2", case, wrong)).parting == 1
