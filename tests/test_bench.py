"""``decaylens bench`` on a tiny spec, with tests/fake_backend.py (the oracle) as the framework."""

import json
import statistics

import fake_backend
import pytest

from harness import bench, cli

TINY = (
    '[data]\nn_test = 10\n[train]\nepochs = 2\n[penalty]\nkind = "weight_decay"\n'
    '[sweep]\n"penalty.kind" = ["none", "weight_decay", "regularizer"]\n"penalty.strength" = [0, 3]\n'
)
TIMES = ("first_seconds", "train_seconds", "oracle_seconds")


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """The tiny spec's path; the fresh process that times the framework's import reports 0.5 s."""
    monkeypatch.setattr(bench, "_import_code", lambda name: "print(0.5)")
    (tmp_path / "tiny.toml").write_text(TINY)
    return tmp_path / "tiny.toml"


def run_bench(tmp_path, spec_file, adapter, use_adapters, capsys):
    use_adapters(adapter)
    out = tmp_path / "bench.json"
    assert (
        cli.main(["bench", "--backend", "torch", "--spec", str(spec_file), "--repeats", "2", "--json", str(out)]) == 0
    )
    return json.loads(out.read_text()), capsys.readouterr().out


def test_bench_times_each_case_against_the_oracle(tmp_path, tiny, use_adapters, capsys):
    adapter = fake_backend.make()
    document, printed = run_bench(tmp_path, tiny, adapter, use_adapters, capsys)
    assert document["backend"] == "torch" and document["repeats"] == 2 and document["versions"]["fake"] == "1"
    assert document["startup_seconds"] > 0 and document["import_seconds"] == 0.5
    rows = {row["case"]: row for row in document["cases"]}
    assert sorted(rows) == sorted(
        ["none, λ=0", "weight_decay, λ=0", "weight_decay, λ=3", "regularizer, λ=0", "regularizer, λ=3"]
    )
    assert (
        rows["regularizer, λ=3"]["status"] == "unsupported"
        and rows["regularizer, λ=3"]["reason"] == "no regularizer here"
    )
    ok = [rows[name] for name in ("none, λ=0", "weight_decay, λ=0", "weight_decay, λ=3")]
    for row in ok:
        assert row["status"] == "ok" and all(row[key] > 0 for key in TIMES)
        assert row["ratio"] == row["train_seconds"] / row["oracle_seconds"]
        assert row["compile_seconds"] == max(row["first_seconds"] - row["train_seconds"], 0)
        assert "sweep_seconds" not in row
    summary = document["summary"]
    assert summary["cases"] == 3 and summary["ratio_target"] == adapter.RATIO_TARGET == 10
    assert summary["ratio"] == statistics.median(row["ratio"] for row in ok)
    lines = printed.splitlines()
    assert lines[0] == "| case | first call ms | train ms | oracle ms | × oracle | compile / warm-up ms |"
    assert "| regularizer, λ=3 | unsupported |" in printed
    assert any(line.startswith("torch: median per case") and "target ≤ 10×" in line for line in lines)
    assert "framework import 0.50 s" in printed and f"wrote {tmp_path / 'bench.json'}" in printed


def test_an_adapter_that_sweeps_lambda_gets_one_lambda_sweep_per_group(tmp_path, tiny, use_adapters, capsys):
    sweeps = []
    adapter = fake_backend.make(sweepable=("penalty.strength",))
    sweep = adapter.train_sweep

    def train_sweep(cases, arrays):
        sweeps.append([case.penalty.strength for case in cases])
        return sweep(cases, arrays)

    adapter.train_sweep = train_sweep
    document, printed = run_bench(tmp_path, tiny, adapter, use_adapters, capsys)
    swept = [row for row in document["cases"] if "sweep_seconds" in row]
    assert [row["case"] for row in swept] == ["weight_decay, λ=0"]  # λ = 3 shares its sweep; none has no λ
    assert len(sweeps) == 3 and all(len(strengths) == bench.SWEEP for strengths in sweeps)  # first call, then 2 repeats
    assert sweeps[0][0] == bench.SWEEP_STRENGTHS[0] and sweeps[0][-1] == bench.SWEEP_STRENGTHS[1]
    assert document["summary"]["sweep_ratio"] == swept[0]["sweep_seconds"] / swept[0]["train_seconds"]
    assert f"{bench.SWEEP}-λ sweep / one case" in printed


def test_bench_takes_its_backend_from_the_environment(monkeypatch):
    monkeypatch.delenv("DECAYLENS_BACKEND", raising=False)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["bench"])
    assert exit_.value.code == 2
    monkeypatch.setenv("DECAYLENS_BACKEND", "jax")
    assert cli._parser().parse_args(["bench"]).backend == "jax"
