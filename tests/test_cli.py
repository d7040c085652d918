"""The command line, the run loop and the first report, with tests/fake_backend.py for a framework."""

import os
import re
import subprocess
import sys

import fake_backend
import pytest

import backends
from harness import cli, files, fingerprint, probes, spec, store

FRAMEWORKS = ("torch", "tensorflow", "keras", "tf_keras", "jax", "optax", "mxnet", "paddle", "mlx")
TINY = '[data]\nn_test = 10\n[train]\nepochs = 2\n[sweep]\n"penalty.kind" = ["none", "l2_loss", "regularizer"]\n'


@pytest.fixture
def fake_torch(use_adapters):
    """fake_backend in place of torch; returns the list of case ids it trained."""
    trained = []
    use_adapters(fake_backend.make(trained=trained))
    return trained


def test_run_stores_every_case_and_resumes(tmp_path, fake_torch, capsys):
    spec_file = tmp_path / "tiny.toml"
    spec_file.write_text(TINY)
    out = tmp_path / "results"
    assert cli.main(["run", "--backend", "torch", "--spec", str(spec_file), "--out", str(out)]) == 0
    files = sorted((out / "torch").glob("*.json"))
    results = [store.read(path) for path in files]
    assert sorted(r.status for r in results) == ["ok", "ok", "unsupported"]
    assert all(r.data_sha256 == results[0].data_sha256 for r in results)
    assert "2 ok, 1 unsupported" in capsys.readouterr().out
    assert len(fake_torch) == 3
    assert cli.main(["run", "--backend", "torch", "--spec", str(spec_file), "--out", str(out)]) == 0
    assert len(fake_torch) == 3 and "3 skipped" in capsys.readouterr().out
    assert cli.main(["run", "--backend", "torch", "--spec", str(spec_file), "--out", str(out), "--force"]) == 0
    assert len(fake_torch) == 6


def test_run_with_probe_writes_the_fingerprint_probe_writes(tmp_path, fake_torch):
    """One process for both, as the tox envs run them: the same probes, its own command."""
    spec_file = tmp_path / "tiny.toml"
    spec_file.write_text(TINY)
    assert (
        cli.main(["run", "--backend", "torch", "--spec", str(spec_file), "--out", str(tmp_path / "a"), "--probe"]) == 0
    )
    assert cli.main(["probe", "--backend", "torch", "--out", str(tmp_path / "b")]) == 0
    together, alone = (fingerprint.Fingerprint.load(tmp_path / d / "semantics-torch.json") for d in "ab")
    assert together.penalties == alone.penalties and together.conventions == alone.conventions
    assert len(together.penalties) > 20 and together.command == "decaylens run --backend torch --probe"
    assert len(list((tmp_path / "a" / "torch").glob("*.json"))) == 3


def test_run_with_probe_probes_again_only_when_probes_or_versions_changed(tmp_path, fake_torch, capsys, monkeypatch):
    """A second ``run --probe`` trains nothing and keeps the fingerprint; ``--force``, another framework
    version, or another set of probe cases (another digest) makes it probe again."""
    spec_file = tmp_path / "tiny.toml"
    spec_file.write_text(TINY)
    command = ["run", "--backend", "torch", "--spec", str(spec_file), "--out", str(tmp_path), "--probe"]
    path = tmp_path / "semantics-torch.json"

    def probed(*extra):
        """Whether the command probed (and wrote the fingerprint) or said it is up to date."""
        trained = len(fake_torch)
        assert cli.main(command + list(extra)) == 0
        out = capsys.readouterr().out
        assert (f"wrote {path}" in out) != (f"{path} is up to date" in out), out
        return f"wrote {path}" in out and len(fake_torch) > trained

    assert probed() and fingerprint.Fingerprint.load(path).probes_sha256 == probes.digest({})
    assert not probed()
    assert probed("--force")
    monkeypatch.setattr(backends.load("torch"), "versions", lambda: {"fake": "2"})
    assert probed() and not probed()
    monkeypatch.setattr(probes, "digest", lambda variants: "another set of probes")
    assert probed() and not probed()


def test_probe_shows_the_probes_done_of_the_total_and_the_time_left(tmp_path, fake_torch, capsys):
    assert cli.main(["probe", "--backend", "torch", "--out", str(tmp_path)]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("torch probes ")]
    total = len(list(probes.probe_cases({})))
    done = [int(line.split()[2].split("/")[0]) for line in lines]
    assert 9 <= len(lines) <= 11 and done == sorted(done)
    assert lines[-1] == f"torch probes {total}/{total} (about 0 s left)"


def test_probe_of_another_release_writes_it_under_releases(tmp_path, fake_torch, capsys):
    assert cli.main(["probe", "--backend", "torch", "--out", str(tmp_path), "--release", "torch-2.12.0"]) == 0
    found = fingerprint.Fingerprint.load(tmp_path / "releases" / "semantics-torch@torch-2.12.0.json")
    assert found.command == "decaylens probe --backend torch --release torch-2.12.0"
    assert not (tmp_path / "semantics-torch.json").exists()
    with pytest.raises(SystemExit) as stopped:
        cli.main(["probe", "--backend", "torch", "--out", str(tmp_path), "--release", "2.12 and later"])
    assert stopped.value.code == 2 and "'2.12 and later' is not allowed" in capsys.readouterr().err


def test_a_framework_exception_is_stored_as_error_and_the_run_goes_on(tmp_path, use_adapters):
    use_adapters(fake_backend.make(raises=True))
    spec_file = tmp_path / "tiny.toml"
    spec_file.write_text(TINY.replace('"regularizer"', '"regularizer", "l1_loss"'))
    assert cli.main(["run", "--backend", "torch", "--spec", str(spec_file), "--out", str(tmp_path)]) == 1
    results = [store.read(p) for p in (tmp_path / "torch").glob("*.json")]
    error = next(r for r in results if r.status == "error")
    assert error.reason == "RuntimeError: framework exploded" and "Traceback" in error.traceback
    assert sorted(r.status for r in results) == ["error", "ok", "ok", "unsupported"]


def test_a_framework_exception_in_a_probe_is_that_probes_error_and_the_others_run(tmp_path, use_adapters, capsys):
    """fake's l1_loss raises; the fingerprint has no l1 probe, so a raising adamw stands in: its
    three penalty probes, its default probe, its two schedule probes and its three role probes raise,
    and its three call probes, which are not run again, are theirs."""
    adapter = fake_backend.make()
    train = adapter.train

    def exploding_adamw(case, arrays):
        if case.penalty.kind == "adamw":
            raise RuntimeError("framework exploded")
        return train(case, arrays)

    adapter.train = exploding_adamw
    use_adapters(adapter)
    assert cli.main(["probe", "--backend", "torch", "--out", str(tmp_path)]) == 1
    assert "12 probe(s) raised an error" in capsys.readouterr().err
    found = fingerprint.Fingerprint.load(tmp_path / "semantics-torch.json")
    errors = {key for key, probe in found.probes if probe.status == "error"}
    penalties = {fingerprint.ProbeKey("adam", "adamw", bias) for bias in probes.BIAS_MODES}
    schedules = {fingerprint.ScheduleKey("adam", "adamw", schedule) for schedule in probes.SCHEDULE_PROBES}
    roles = {fingerprint.RoleKey("adam", "adamw", sparing) for sparing in probes.SPARINGS}
    calls = {fingerprint.CallKey("adam", "adamw", bias) for bias in probes.BIAS_MODES}
    assert errors == penalties | {fingerprint.DefaultKey("adam", "adamw")} | schedules | roles | calls
    assert (
        found.penalties[fingerprint.ProbeKey("adam", "adamw", False)].outcome()
        == "error: RuntimeError: framework exploded"
    )
    assert found.penalties[fingerprint.ProbeKey("adam", "weight_decay", False)].matched


def test_report_shows_each_case_and_marks_missing_backends(tmp_path, fake_torch):
    spec_file = tmp_path / "tiny.toml"
    spec_file.write_text(TINY)
    cli.main(["run", "--backend", "torch", "--spec", str(spec_file), "--out", str(tmp_path / "r")])
    (tmp_path / "r" / "torch" / "junk.json").write_text("{")
    assert cli.main(["report", "--spec", str(spec_file), "--results", str(tmp_path / "r"), "--out", str(tmp_path)]) == 0
    text = (tmp_path / "REPORT.md").read_text()
    l2 = next(line for line in text.splitlines() if line.startswith("| l2_loss | torch | ok |"))
    result = next(
        store.read(p) for p in (tmp_path / "r" / "torch").glob("*.json") if store.read(p).case.penalty.kind == "l2_loss"
    )
    assert f"| {result.final.w_norm:.4g} |" in l2
    assert "| jax | missing |" in text and "unsupported: no regularizer here" in text
    assert "no results for: tensorflow, tensorflow-keras2, keras-jax, keras-torch, jax, mxnet, paddle, mlx" in text


def decaylens(*args, cwd):
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize(
    "spec_text, key",
    [
        ("[optimizer]\nlrr = 0.1\n", "optimizer.lrr"),
        ('[optimizer]\nlr = "fast"\n', "optimizer.lr"),
        ('[penalty]\nkind = "l2_loss"\nstrength = -3\n', "penalty.strength"),
        ("[optimizer]\nlr = 0\n", "optimizer.lr"),
        ("[train]\nbatch_size = 40\n", "train.batch_size"),
        ('[penalty]\nkind = "adamw"\n[optimizer]\nname = "sgd"\n', "penalty.kind"),
    ],
)
def test_bad_spec_exits_2_with_one_line_and_writes_nothing(tmp_path, spec_text, key):
    (tmp_path / "bad.toml").write_text(spec_text)
    (tmp_path / "results" / "torch").mkdir(parents=True)
    (tmp_path / "results" / "torch" / "kept.json").write_text("earlier result")
    for args in (["run", "--backend", "torch", "--spec", "bad.toml", "--out", "results"], ["validate", "bad.toml"]):
        done = decaylens(*args, cwd=tmp_path)
        assert done.returncode == 2 and done.stdout == ""
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "bad.toml" in lines[0] and key in lines[0] and "allowed" in lines[0]
    assert [p.name for p in (tmp_path / "results").rglob("*")] == ["torch", "kept.json"]
    assert (tmp_path / "results" / "torch" / "kept.json").read_text() == "earlier result"


def test_a_spec_nested_past_the_parser_is_not_valid_toml_in_one_line(tmp_path):
    (tmp_path / "deep.toml").write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")  # 10 KB
    done = decaylens("validate", "deep.toml", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "not valid TOML: nested deeper" in done.stderr


def test_unknown_backend_lists_the_known_ones(tmp_path):
    done = decaylens("run", "--backend", "keras", cwd=tmp_path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert all(name in done.stderr for name in backends.NAMES)
    assert not (tmp_path / "results").exists()


def test_specs_and_validate_list_the_builtins(tmp_path):
    assert "d2l" in decaylens("specs", cwd=tmp_path).stdout.split()
    done = decaylens("validate", "d2l", cwd=tmp_path)
    assert done.returncode == 0 and "torch: 29 cases" in done.stdout


def test_importing_the_harness_imports_no_framework():
    code = (
        "import sys, harness, backends\n"
        "from harness import cli, data, diff, explain, metrics, oracle, report, run, spec, store\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FRAMEWORKS!r}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_cases_differing_only_in_sweepable_keys_go_to_train_sweep_together(tmp_path, use_adapters):
    groups = []
    adapter = fake_backend.make(sweepable=("optimizer.lr", "penalty.strength"))
    sweep = adapter.train_sweep

    def train_sweep(cases, arrays):
        groups.append(sorted((c.optimizer.name, c.optimizer.lr, c.penalty.strength) for c in cases))
        return sweep(cases, arrays)

    adapter.train_sweep = train_sweep
    use_adapters(adapter)
    (tmp_path / "s.toml").write_text(
        '[train]\nepochs = 2\n[penalty]\nkind = "l2_loss"\n'
        '[sweep]\n"optimizer.name" = ["sgd", "adam"]\n"optimizer.lr" = [0.1, 0.2]\n"penalty.strength" = [0, 3]\n'
    )
    assert cli.main(["run", "--backend", "torch", "--spec", str(tmp_path / "s.toml"), "--out", str(tmp_path)]) == 0
    assert sorted(groups) == [
        [(name, lr, strength) for lr in (0.1, 0.2) for strength in (0.0, 3.0)] for name in ("adam", "sgd")
    ]
    assert len(list((tmp_path / "torch").glob("*.json"))) == 8


def test_sweepable_keys_that_change_the_arrays_are_refused(tmp_path, use_adapters):
    use_adapters(fake_backend.make(sweepable=("train.epochs",)))
    (tmp_path / "s.toml").write_text('[sweep]\n"train.epochs" = [1, 2]\n')
    with pytest.raises(ValueError, match="change the arrays"):
        cli.main(["run", "--backend", "torch", "--spec", str(tmp_path / "s.toml"), "--out", str(tmp_path)])


def test_progress_shows_cases_done_the_total_and_the_time_left(tmp_path, fake_torch, capsys):
    (tmp_path / "tiny.toml").write_text(TINY)
    assert cli.main(["run", "--backend", "torch", "--spec", str(tmp_path / "tiny.toml"), "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert [line.split()[2] for line in lines] == ["1/3", "2/3", "3/3"]
    assert all(re.search(r"\(\d+\.\d\d s; about \d+ s left\)$", line) for line in lines), lines
    assert lines[-1].endswith("about 0 s left)")


@pytest.mark.parametrize(
    "make, problem",
    [
        (
            lambda path: path.write_bytes(bytes(range(256))),
            "not UTF-8 text (byte 128 is 0x80); allowed: a TOML spec file in UTF-8",
        ),
        (lambda path: path.mkdir(), "not a regular file; allowed: a TOML spec file"),
        (lambda path: os.mkfifo(path), "not a regular file; allowed: a TOML spec file"),
        (
            lambda path: path.write_text("#" * (spec.MAX_SPEC_BYTES + 1)),
            f"larger than {spec.MAX_SPEC_BYTES} bytes; "
            f"allowed: a TOML spec file of at most {spec.MAX_SPEC_BYTES} bytes",
        ),
    ],
    ids=["not-utf8", "directory", "fifo", "too-large"],
)
def test_a_spec_file_that_cannot_be_read_is_one_line_and_exit_2(tmp_path, make, problem):
    make(tmp_path / "bad.toml")
    for args in (["run", "--backend", "torch", "--spec", "bad.toml", "--out", "results"], ["validate", "bad.toml"]):
        done = decaylens(*args, cwd=tmp_path)
        assert done.returncode == 2 and done.stdout == "", done.stderr
        assert done.stderr.strip().splitlines() == [f"decaylens: error: bad.toml: {problem}"]
    assert not (tmp_path / "results").exists()


def test_an_unreadable_spec_file_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    """Permissions do not stop root, so the refusal comes from a stand-in for open()."""
    (tmp_path / "bad.toml").write_text("")

    def refuse(path, mode="r"):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(files, "open", refuse, raising=False)
    assert cli.main(["validate", str(tmp_path / "bad.toml")]) == 2
    error = capsys.readouterr().err
    assert (
        error
        == f"decaylens: error: {tmp_path / 'bad.toml'}: cannot be read (Permission denied); allowed: a TOML spec file\n"
    )
