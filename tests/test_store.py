import json
import os

import pytest

from harness import store


def record(**values):
    return {key: None for key in store.KEYS} | {
        "schema_version": store.SCHEMA_VERSION, "status": "ok", "case_id": "c1", "versions": {"torch": "1"}} | values


def test_write_then_read_round_trips_and_leaves_no_temporary_file(tmp_path):
    path = store.path_for(tmp_path, "torch", "c1")
    store.write(path, record(final={"w_norm": 0.1 + 0.2}))
    assert store.read(path)["final"]["w_norm"] == 0.1 + 0.2
    assert [p.name for p in path.parent.iterdir()] == ["c1.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # an ordinary file, not mkstemp's private one


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = store.path_for(tmp_path, "torch", "c1")
    store.write(path, record())
    with pytest.raises(ValueError):
        store.write(path, record(final={"w_norm": float("nan")}))  # not valid JSON: refused
    assert store.read(path) == record() and len(list(path.parent.iterdir())) == 1


@pytest.mark.parametrize(
    "content, problem",
    [("{", "unreadable"), ("[]", "schema"), (json.dumps({"schema_version": 0}), "schema"),
     (json.dumps({"schema_version": store.SCHEMA_VERSION}), "malformed")],
)
def test_bad_files_are_named(tmp_path, content, problem):
    path = tmp_path / "x.json"
    path.write_text(content)
    with pytest.raises(store.BadResult, match=problem):
        store.read(path)
    assert not store.is_current(path, "c1", {"torch": "1"})


def test_is_current_needs_the_same_case_versions_and_a_finished_run(tmp_path):
    path = tmp_path / "c1.json"
    store.write(path, record())
    assert store.is_current(path, "c1", {"torch": "1"})
    assert not store.is_current(path, "c1", {"torch": "2"})
    assert not store.is_current(path, "c2", {"torch": "1"})
    store.write(path, record(status="error"))
    assert not store.is_current(path, "c1", {"torch": "1"})
