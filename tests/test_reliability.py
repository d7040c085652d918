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

from harness import cli, document, report, spec, store

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
