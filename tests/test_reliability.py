"""Interrupted, concurrent and sharded runs lose nothing (issue: reliability).

The runs use tests/fake_backend.py (the oracle standing in for a framework) in a
subprocess, registered in place of torch so no framework is needed.
"""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import fake_backend
import pytest

from harness import cli, document, explain, report, spec, store

TESTS = Path(__file__).parent
SPEC = (
    '[data]\nn_test = 10\n[train]\nepochs = 5\n[sweep]\n"optimizer.lr" = [0.001, 0.002, 0.003, 0.004, 0.005, 0.006]\n'
)
# Ctrl-C raises KeyboardInterrupt in the run even where this test's own process was started with
# SIGINT ignored (as a shell's background job is), which its children would inherit.
RUN = (
    "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "import sys, backends; backends._MODULES['torch'] = ('fake_backend', {}); "
    "from harness.cli import main; sys.exit(main(sys.argv[1:]))"
)


def start(tmp_path, *args, sleep="0"):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        "FAKE_BACKEND_SLEEP": sleep,
    }
    return subprocess.Popen(
        [sys.executable, "-c", RUN, "run", "--backend", "torch", "--spec", "s.toml", "--out", "results", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stored(tmp_path):
    """Every file in the results directory; each must be a complete, valid result."""
    files = sorted((tmp_path / "results" / "torch").iterdir())
    assert all(path.suffix == ".json" for path in files), files
    return [store.read(path) for path in files]


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "s.toml").write_text(SPEC)
    return tmp_path


def wait_for_results(tmp_path, count, process):
    deadline = time.monotonic() + 60
    while len(list((tmp_path / "results" / "torch").glob("*.json"))) < count:
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_an_interrupted_run_leaves_complete_files_and_resumes(workdir, how):
    process = start(workdir, sleep="0.3")
    wait_for_results(workdir, 2, process)
    process.send_signal(how)
    _, err = process.communicate(timeout=60)
    if how != signal.SIGKILL:
        assert process.returncode == 130 and "run again to resume" in err
    kept = {result.case_id for result in stored(workdir)}
    assert 2 <= len(kept) < 6
    process = start(workdir)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0 and f"{6 - len(kept)} ok, {len(kept)} skipped" in out
    assert len(stored(workdir)) == 6


def test_two_runs_writing_one_directory_leave_every_file_valid(workdir):
    processes = [start(workdir, "--force"), start(workdir, "--force")]
    assert [p.wait(timeout=60) for p in processes] == [0, 0]
    assert len(stored(workdir)) == 6


@pytest.fixture
def fake_torch(use_adapters):
    use_adapters(fake_backend.make())


def markdown(spec_file, results):
    return document.markdown(report.blocks([spec.load(spec_file)], results))


def test_shards_are_disjoint_cover_every_case_and_merge_into_the_same_report(tmp_path, fake_torch):
    (tmp_path / "s.toml").write_text(SPEC)
    spec_file = str(tmp_path / "s.toml")
    cli.main(["run", "--backend", "torch", "--spec", spec_file, "--out", str(tmp_path / "whole")])
    ids = []
    for index in (1, 2, 3):
        shard = tmp_path / f"shard{index}"
        cli.main(["run", "--backend", "torch", "--spec", spec_file, "--out", str(shard), "--shard", f"{index}/3"])
        ids += [path.name for path in (shard / "torch").glob("*.json")]
        for path in (shard / "torch").glob("*.json"):
            (tmp_path / "merged" / "torch").mkdir(parents=True, exist_ok=True)
            path.rename(tmp_path / "merged" / "torch" / path.name)
    assert sorted(ids) == sorted(path.name for path in (tmp_path / "whole" / "torch").glob("*.json"))
    tables = [markdown(spec_file, tmp_path / name).split("## Environment")[0] for name in ("whole", "merged")]
    assert tables[0] == tables[1].replace("merged", "whole")


def test_bad_shard_is_one_line_and_exit_2(workdir):
    done = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--backend", "torch", "--shard", "4/3"],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "I/N" in done.stderr


def test_report_skips_and_names_untrustworthy_files(tmp_path, fake_torch):
    (tmp_path / "s.toml").write_text(SPEC)
    cli.main(["run", "--backend", "torch", "--spec", str(tmp_path / "s.toml"), "--out", str(tmp_path / "r")])
    files = sorted((tmp_path / "r" / "torch").glob("*.json"))

    def rewrite(path, **changes):
        record = json.loads(path.read_text())
        record.update(changes)
        path.write_text(json.dumps(record))

    rewrite(files[0], data_sha256="0" * 64)  # made from other arrays
    other = json.loads(files[1].read_text())
    other["case"]["optimizer"]["lr"] = 0.5
    files[1].write_text(json.dumps(other))  # a different case under the same id
    rewrite(files[2], schema_version=0)  # an old schema
    files[3].write_text('{"truncated": ')  # corrupt
    (tmp_path / "r" / "torch" / "foreign.json").write_text("[1, 2]")
    found, problems = store.scan(tmp_path / "r")  # the arrays are checked where a report loads them
    assert len(found) == 3 and len(problems) == 4
    text = markdown(str(tmp_path / "s.toml"), tmp_path / "r")
    assert "other arrays" in text and "not what its name says" in text and "schema" in text
    assert text.count("| torch | missing |") == 4 and "foreign.json" in text


def test_a_diverging_case_is_stored_with_its_step_and_the_others_still_run(tmp_path, fake_torch):
    (tmp_path / "s.toml").write_text('[train]\nepochs = 50\n[sweep]\n"optimizer.lr" = [0.003, 10.0]\n')
    assert cli.main(["run", "--backend", "torch", "--spec", str(tmp_path / "s.toml"), "--out", str(tmp_path)]) == 0
    results = {r.case.optimizer.lr: r for r in map(store.read, (tmp_path / "torch").glob("*.json"))}
    assert results[0.003].status == "ok"
    diverged = results[10.0]
    step = len(diverged.steps.train_loss)
    assert diverged.status == "diverged" and diverged.reason.endswith(f"at step {step}")
    assert all(map(math.isfinite, diverged.steps.train_loss)) and 1 < step < 200


@pytest.fixture
def two_results(tmp_path, fake_torch):
    """A results directory with the SPEC's six torch results; (spec file, results, their files)."""
    (tmp_path / "s.toml").write_text(SPEC)
    cli.main(["run", "--backend", "torch", "--spec", str(tmp_path / "s.toml"), "--out", str(tmp_path / "r")])
    return str(tmp_path / "s.toml"), tmp_path / "r", sorted((tmp_path / "r" / "torch").glob("*.json"))


def _edit(path, change):
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


# Corruptions of an ok result that must never become a finding (issue: a corrupted file): each changes one
# field of a valid file; the report skips and names the file, and no table reads it.
CORRUPTIONS = {
    "w_norm cut short": lambda d: d["steps"].update(w_norm=d["steps"]["w_norm"][:10]),
    "w_norm emptied": lambda d: d["steps"].update(w_norm=[]),
    "w_norm NaN": lambda d: d["steps"]["w_norm"].__setitem__(3, float("nan")),
    "w_norm Infinity": lambda d: d["steps"]["w_norm"].__setitem__(3, float("inf")),
    "final.w_norm a string": lambda d: d["final"].update(w_norm="1.0"),
    "steps null": lambda d: d.update(steps=None),
    "created a number": lambda d: d.update(created=7),
    "versions a string": lambda d: d.update(versions="1.0"),
    "final.w too short": lambda d: d["final"].update(w=d["final"]["w"][:1]),
    "a case run refuses": lambda d: d["case"]["data"].update(dim=10**6),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_a_corrupted_result_is_skipped_and_named_never_a_finding(two_results, corruption):
    spec_file, results, files = two_results
    _edit(files[0], CORRUPTIONS[corruption])
    if corruption == "a case run refuses":  # named by its own case's hash, as a forger would
        record = json.loads(files[0].read_text())
        renamed = files[0].with_name(f"{store.Result.from_json(record).case_id}.json")
        files[0].rename(renamed)
        files = [renamed, *files[1:]]
    found, problems = store.scan(results)
    assert len(found) == 5 and len(problems) == 1 and files[0].name in problems[0], problems
    text = markdown(spec_file, results)
    assert text.count("| torch | missing |") == 1 and files[0].name in text.split("## Skipped files")[1]


def test_a_fifo_or_a_device_named_like_a_result_or_fingerprint_is_skipped_not_read(two_results, tmp_path):
    spec_file, results, _ = two_results
    os.mkfifo(results / "torch" / ("f" * 16 + ".json"))
    os.mkfifo(results / "semantics-torch.json")
    (results / "torch" / ("0" * 16 + ".json")).symlink_to("/dev/zero")
    started = time.monotonic()
    text = markdown(spec_file, results)
    assert time.monotonic() - started < 60
    skipped = text.split("## Skipped files")[1]
    assert skipped.count("not a regular file") == 3, skipped


def test_a_fingerprint_in_the_wrong_place_is_skipped(two_results):
    spec_file, results, _ = two_results
    golden = TESTS / "golden"
    (results / "semantics-nosuch.json").write_text((golden / "jax.json").read_text())
    (results / "semantics-torch.json").write_text((golden / "jax.json").read_text())
    text = markdown(spec_file, results)
    assert text.split("## Skipped files")[1].count("not what its name says") == 2


def test_an_unreadable_backend_directory_is_named_not_taken_for_no_results(two_results, monkeypatch):
    """A directory its reader may not list (root lists every one, so the permission is taken away in
    os.access, which the scan asks)."""
    spec_file, results, _ = two_results
    (results / "jax").mkdir()
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path).name != "jax" and access(path, mode))
    assert "jax: cannot be read" in markdown(spec_file, results)


def test_a_report_that_fails_leaves_the_one_before_whole(two_results, tmp_path, monkeypatch):
    spec_file, results, _ = two_results
    out = tmp_path / "reports"
    assert cli.main(["report", "--spec", spec_file, "--results", str(results), "--out", str(out)]) == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    monkeypatch.setattr(document, "page", lambda *a: 1 / 0)  # fails after the figures and REPORT.md are made
    with pytest.raises(ZeroDivisionError):
        cli.main(["report", "--spec", spec_file, "--results", str(results), "--out", str(out)])
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_an_output_that_cannot_be_written_is_one_line_and_exit_2_before_any_work(two_results, tmp_path, capsys):
    spec_file, results, _ = two_results
    (tmp_path / "file").write_text("")
    run = ["run", "--backend", "torch", "--spec", spec_file]
    for command in (["report", "--spec", spec_file, "--results", str(results)], run):
        assert cli.main([*command, "--out", str(tmp_path / "file" / "reports")]) == 2
        err = capsys.readouterr().err
        assert "is not a writable directory" in err and err.count("\n") == 1


def test_a_case_the_harness_fails_on_is_stored_as_error_and_the_run_goes_on(tmp_path, fake_torch, monkeypatch):
    """Out of memory in the explanation (a spec within every bound, a wide MLP) ends that case alone."""
    (tmp_path / "s.toml").write_text(SPEC)
    real = explain.explain

    def explaining(case, *args, **kwargs):
        if case.optimizer.lr == 0.003:
            raise MemoryError
        return real(case, *args, **kwargs)

    monkeypatch.setattr(explain, "explain", explaining)
    assert cli.main(["run", "--backend", "torch", "--spec", str(tmp_path / "s.toml"), "--out", str(tmp_path)]) == 1
    results = {r.case.optimizer.lr: r for r in map(store.read, (tmp_path / "torch").glob("*.json"))}
    assert len(results) == 6 and results[0.003].status == "error"
    assert results[0.003].reason == "the harness failed: MemoryError" and "MemoryError" in results[0.003].traceback
    assert all(r.status == "ok" for lr, r in results.items() if lr != 0.003)
