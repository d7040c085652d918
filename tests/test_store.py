import json
import os

import pytest

from harness import explain, oracle, store
from harness.case import Case

# A case of one step on one feature: the smallest trajectory a result can hold, of its case's shape.
CASE = Case().replace({"data.dim": 1, "data.n_train": 1, "train.batch_size": 1, "train.epochs": 1})


def result(**values):
    """A minimal ok Result of CASE."""
    steps = store.Steps(train_loss=[1.0, 0.5], w_norm=[2.0, 1.0])
    final = store.Final(w=[1.0], b=0.0, w_norm=1.0, train_loss=0.5, test_loss=0.25)
    explained = explain.Explanation(
        explain.Form("coupled", 1.0), oracle.Rule(coupled=3.0), 1e-16, True, (explain.Form("decoupled_lr", 1.0),)
    )
    epochs = store.Epochs([1.0, 0.5], None)
    return store.Result(**{
        "backend": "torch", "versions": {"torch": "1"}, "case": CASE, "data_sha256": "ab" * 32, "status": "ok",
        "steps": steps, "epochs": epochs, "final": final, "explained": explained, "seconds": 0.1,
    } | values)  # fmt: skip


def test_write_then_read_round_trips_and_leaves_no_temporary_file(tmp_path):
    path = store.path_for(tmp_path, "torch", CASE.id)
    written = result(final=store.Final(w=[1.0], b=0.0, w_norm=0.1 + 0.2, train_loss=0.5, test_loss=0.25))
    store.write(path, written)
    assert store.read(path) == written and store.read(path).final.w_norm == 0.1 + 0.2
    assert [p.name for p in path.parent.iterdir()] == [f"{CASE.id}.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # an ordinary file, not mkstemp's private one


def test_a_result_is_stored_with_its_schema_version_case_id_and_structured_explanation(tmp_path):
    document = json.loads(result().to_json())
    assert document["schema_version"] == store.SCHEMA_VERSION and document["case_id"] == CASE.id
    assert document["explained"]["form"] == {"placement": "coupled", "multiplier": 1.0}
    assert document["explained"]["equivalents"] == [{"placement": "decoupled_lr", "multiplier": 1.0}]
    assert "text" not in document["explained"]  # text is made when a report is rendered
    assert (
        str(store.Result.from_json(document).explained)
        == "coupled ×1 (≡ decoupled × lr ×1), bias not decayed, loss half_mse"
    )


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = store.path_for(tmp_path, "torch", "c1")
    store.write(path, result())
    with pytest.raises(ValueError):
        store.write(path, result(seconds=float("nan")))  # not valid JSON: refused
    assert store.read(path) == result() and len(list(path.parent.iterdir())) == 1


@pytest.mark.parametrize(
    "content, problem",
    [("{", "unreadable"), ("[]", "schema"), (json.dumps({"schema_version": 0}), "schema"),
     (json.dumps({"schema_version": 99}), "reads schemas 1 to"),
     (json.dumps({"schema_version": store.SCHEMA_VERSION}), "malformed"),
     (json.dumps(json.loads(result().to_json()) | {"status": "fine"}), "status 'fine'"),
     (json.dumps(json.loads(result().to_json()) | {"final": {"w": []}}), "malformed")],
)  # fmt: skip
def test_bad_files_are_named(tmp_path, content, problem):
    path = tmp_path / "x.json"
    path.write_text(content)
    with pytest.raises(store.BadResult, match=problem) as error:
        store.read(path)
    assert str(error.value).startswith(str(path))
    assert not store.is_current(path, "c1", {"torch": "1"})


def test_is_current_needs_the_same_case_versions_and_a_finished_run(tmp_path):
    path, case_id = tmp_path / "c1.json", CASE.id
    store.write(path, result())
    assert store.is_current(path, case_id, {"torch": "1"})
    assert not store.is_current(path, case_id, {"torch": "2"})
    assert not store.is_current(path, "c2", {"torch": "1"})
    store.write(path, result(status="error"))
    assert not store.is_current(path, case_id, {"torch": "1"})
    store.write(path, result(explained=None))  # an ok run without its rule: from schema 1
    assert not store.is_current(path, case_id, {"torch": "1"})


def test_scan_skips_and_names_a_file_whose_name_is_not_its_case(tmp_path):
    store.write(store.path_for(tmp_path, "torch", CASE.id), result())
    store.write(store.path_for(tmp_path, "jax", CASE.id), result())  # a torch result in jax's directory
    found, problems = store.scan(tmp_path)
    assert list(found) == [("torch", CASE.id)]
    assert len(problems) == 1 and "holds torch case" in problems[0] and "/jax/" in problems[0]
