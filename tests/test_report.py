"""The comparison report's text (REPORT.md) over the fake backends' results (tests/reported.py).
The tests run in the core env, with the ``report`` extra (matplotlib); locally, without it they
skip; under CI they fail."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import reported
from reported import SPECS, cells, fake, run_all, shrunk_specs, spec_headings, tables

import backends
from harness import cli, figures, spec, store
from harness.spec import describe

pytestmark = reported.MARKS  # one worker builds the report fixtures (conftest) for both; skips outside core


def test_each_spec_gets_the_sections_its_cases_meet(rendered):
    text, _, _ = rendered
    headings = re.findall(r"^## (.*)$", text, re.MULTILINE)
    assert headings == [
        "At a glance: does weight_decay train like an L2 penalty in the loss?",
        "Frameworks in this report",
        "Summary: is weight decay an L2 penalty in the loss?",
        "The same code on several backends",
        "What the nominal λ does",
        "Under a learning-rate schedule",
        "Which parameters a penalty decays",
        "Audits of your own setups",
        "Across releases",
        *(f"Spec `{name}`" for name in SPECS),
        "Environment",
    ]
    curves, parts, cases = ["Loss curves", "Final ‖w‖"], ["Where two frameworks part"], ["Every case"]
    assert spec_headings(text) == {
        "d2l": curves + parts + cases,
        "d2l-book": curves + parts + ["Book mode: the book's listings", "What makes each listing differ"] + cases,
        "sweep": curves + parts + ["λ sweep", "λ chosen on the validation set", "L1 versus L2"] + cases,
        "bias": curves + parts + ["Bias decay on versus off"] + cases,
        "lr": curves + parts + ["Learning rate and the ½ in the loss"] + cases,
        "schedules": curves + parts + ["Weight decay under a learning-rate schedule"] + cases,
        "mlp": curves + parts + ["Per-layer decay", "Final norms per layer"] + cases,
    }
    assert "Not shown for this spec: Book mode: the book's listings (needs `[factors]` grouping the " in text
    assert "λ sweep (needs a sweep over `penalty.strength` of at least 3 values)" in text
    assert (
        "Learning rate and the ½ in the loss (needs a sweep over `optimizer.lr` of at least 2 values and a sweep "
        "over `train.loss` of at least 2 values)"
    ) in text
    for title in ("The same trajectory in another framework", "Probe versus the full runs"):
        assert f"### {title}" in text


def test_across_releases_shows_each_release_probed_and_where_an_outcome_changed(tmp_path):
    """Over the checked-in fingerprints of optax 0.1.7 (tests/golden/releases/) and 0.2.8: additive_weight_decay,
    add_decayed_weights' alias in 0.1.7 (transform.py:1181), is gone from 0.2.8; 0.1.7 has no nadam, no
    adadelta; no API that ran in both changed its rule."""
    golden = Path(__file__).parent / "golden"
    shutil.copy(golden / "jax.json", tmp_path / "semantics-jax.json")
    (tmp_path / "releases").mkdir()
    shutil.copy(golden / "releases" / "jax@optax-0.1.7.json", tmp_path / "releases" / "semantics-jax@optax-0.1.7.json")
    assert cli.main(["report", "--spec", "d2l", "--results", str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "REPORT.md").read_text()
    section = text[text.index("## Across releases") : text.index("## Spec")]
    assert "## Skipped files" not in text  # the release fingerprints are no results files
    old, new = "jax 0.4.23, jaxlib 0.4.23, optax 0.1.7", "jax 0.10.2, jaxlib 0.10.2, optax 0.2.8"
    assert f"### jax: {old}, {new}" in section
    assert "No API that ran in two releases changed its meaning." in section
    rule = "coupled ×1 (≡ decoupled × lr ×1), bias not decayed, loss half_mse"
    assert f"- sgd weight_decay [additive_weight_decay]: {rule} in {old}; unsupported in {new}" in section
    assert f"- nadam weight_decay: unsupported in {old}; " in section
    (rows,) = tables(section).values()
    row = next(r for r in rows[0] if (r["optimizer"], r["API"]) == ("sgd", "weight_decay [additive_weight_decay]"))
    assert row[old] == rule and row[new].startswith(
        "**unsupported: the installed optax 0.2.8 has no additive_weight_decay"
    )


def test_the_markdown_reads_well(rendered):
    text, _, _ = rendered
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|"):
            header = next(lines[j] for j in range(i, -1, -1) if j == 0 or not lines[j - 1].startswith("|"))
            assert len(cells(line)) == len(cells(header)), line
        if line.startswith("#") or line.startswith("!["):
            assert (i == 0 or lines[i - 1] == "") and lines[i + 1] == "", line
    levels = [len(m) for m in re.findall(r"^(#+) ", text, re.MULTILINE)]
    assert levels[0] == 1 and all(b - a <= 1 for a, b in zip(levels, levels[1:]))
    assert not re.search(r"\bNone\b|\bnan\b|\{|\}", text.split("### Every case")[0])


def test_the_numbers_are_the_results_files_numbers(rendered):
    text, _, results = rendered
    found, stored = tables(text), store.scan(results)[0]
    d2l = spec.load(str(results.parent / "specs" / "d2l.toml"))
    final_norms = {r["case"]: r for r in found["Spec `d2l`", "Final ‖w‖"][0]}
    rows = 0
    for backend in backends.NAMES:
        for point, case in d2l.cases(backend):
            result = stored[backend, case.id]
            cell = final_norms[describe(point)][backend]
            assert cell == (f"{result.final.w_norm:.4g}" if result.ok else result.status)
            rows += 1
    assert rows == len(backends.NAMES) * 29
    made = sorted(r.created for (b, _), r in stored.items() if b == "torch")
    assert f"torch: fake 1, numpy {np.__version__}" in text and f"results made from {made[0]} to {made[-1]}" in text
    sweep, label = spec.load(str(results.parent / "specs" / "sweep.toml")), None
    for row in found["Spec `sweep`", "Every case"][0]:
        label = row["case"] or label
        case = next(c for p, c in sweep.cases(row["backend"]) if describe(p) == label)
        result = stored[row["backend"], case.id]
        if result.ok:
            final = result.final
            assert (row["‖w‖"], row["train loss"], row["test loss"]) == tuple(
                f"{v:.4g}" for v in (final.w_norm, final.train_loss, final.test_loss)
            )
    bias = {(r["λ"], r["API"], r["decay_bias"]): r for r in found["Spec `bias`", "Bias decay on versus off"][0]}
    for backend in backends.NAMES:
        for _, case in spec.load(str(results.parent / "specs" / "bias.toml")).cases(backend):
            result, penalty = stored[backend, case.id], case.penalty
            cell = bias[f"{penalty.strength:g}", penalty.kind, json.dumps(penalty.decay_bias)][backend]
            if result.ok:
                assert cell == f"b {result.final.b:.4g}, test {result.final.test_loss:.4g}"


def test_the_chosen_and_the_best_lambda_are_those_of_the_results(rendered):
    text, _, results = rendered
    stored = store.scan(results)[0]
    for row in tables(text)["Spec `sweep`", "λ chosen on the validation set"][0]:
        mine = [
            r
            for (b, _), r in stored.items()
            if b == row["backend"] and r.ok and r.case.data.n_valid and r.case.penalty.kind == row["API"]
        ]
        chosen = min(mine, key=lambda r: r.epochs.valid_loss[-1])
        best = min(mine, key=lambda r: r.final.test_loss)
        assert row["chosen λ"] == f"{chosen.case.penalty.strength:g}"
        assert row["best λ on test"] == f"{best.case.penalty.strength:g}"
        assert row["its test loss"] == f"{chosen.final.test_loss:.4g}"


def test_divergence_learning_rate_and_parting_come_from_the_runs(rendered):
    text, _, results = rendered
    found, stored = tables(text), store.scan(results)[0]
    diverged = [r for r in stored.values() if r.status == "diverged"]
    assert diverged and all(r.case.optimizer.lr == 1e150 for r in diverged)
    growth, half = found["Spec `lr`", "Learning rate and the ½ in the loss"]
    lr_rows = {(r["loss"], r["lr"]): r for r in growth}
    for result in diverged:
        cell = lr_rows[result.case.train.loss, "1e+150"][result.backend]
        assert cell == f"**non-finite at step {len(result.steps.train_loss)}**"
    half = {r["backend"]: r for r in half}
    assert {r["native loss runs like"] for r in half.values()} == {"e²"}  # the fake's native loss is mean e²
    assert all(
        r["pairs (e² at lr, ½e² at 2·lr)"] == "2" and r["pairs that part while finite"] == "none" for r in half.values()
    )
    parted = {(r["case"], r["group A"], r["group B"]) for r in found["Spec `d2l`", "Where two frameworks part"][0]}
    groups = ("torch = keras-torch = jax = mxnet = paddle = mlx", "tensorflow = tensorflow-keras2 = keras-jax")
    assert ("momentum, weight_decay, λ=3", *groups) in parted
    title = "Summary: is weight decay an L2 penalty in the loss?"
    summary = {(r["optimizer"], r["API"]): r for r in found[title, title][0]}
    assert summary["momentum", "weight_decay"]["torch"] == "**same**"
    assert summary["momentum", "weight_decay"]["tensorflow"].startswith("**never**: λ bypasses the momentum")
    # each distinct API run at λ > 0, bias spared, with an l2_loss twin (the fake has no regularizer): per backend,
    # d2l's 4 (weight_decay with sgd, momentum and adam, and adamw), sweep's 7 (weight_decay at each λ > 0) and
    # bias's 1 (weight_decay at λ = 30; λ = 3 is d2l's case): 9 backends × 12 = 108; and d2l-book's mxnet listing
    # (native loss and weight_decay, against its loss-only variant; the other listings' twins are d2l's or spare no
    # bias): 109; and mlp's weight_decay and decoupled sparing the biases, each with its l2_loss twin, 9 × 2 more: 127
    assert "in all 127 runs of an API at λ > 0 that have an l2_loss twin" in text
    agreement = found["What the nominal λ does", "Probe versus the full runs"][0]
    assert agreement and all(row["disagreeing"] == "—" for row in agreement)


def test_book_mode_names_the_factor_that_moves_each_listing(rendered):
    text, _, _ = rendered
    rows = {(r["backend"], r["λ"]): r for r in tables(text)["Spec `d2l-book`", "What makes each listing differ"][0]}
    # the fake's native loss is mean e² for every backend; torch's listing also draws the bias from N(0, 1)
    assert rows["torch", "3"]["causes"] == "init, loss" and rows["mxnet", "3"]["causes"] == "loss"
    assert rows["jax", "3"]["causes"] == "loss, bias" and rows["mxnet", "3"]["init"] == "not a difference"
    assert "the same case as `d2l`'s `sgd, l2_loss, λ=3`" in text


def test_a_spec_of_ones_own_gets_curves_a_lambda_sweep_and_partings(tmp_path):
    """Not a built-in: adam with weight_decay at three λ, run by two backends whose weight decay differs."""
    (tmp_path / "mine.toml").write_text(
        '[train]\nepochs = 5\n[optimizer]\nname = "adam"\nlr = 0.01\n'
        '[penalty]\nkind = "weight_decay"\n[sweep]\n"penalty.strength" = [0.01, 0.1, 1.0]\n'
    )
    run_all([str(tmp_path / "mine.toml")], tmp_path / "results", names=("torch", "tensorflow"))
    assert (
        cli.main(
            [
                "report",
                "--spec",
                str(tmp_path / "mine.toml"),
                "--results",
                str(tmp_path / "results"),
                "--out",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    text, page = (tmp_path / "out" / "REPORT.md").read_text(), (tmp_path / "out" / "index.html").read_text()
    assert spec_headings(text)["mine"] == [
        "Loss curves",
        "Final ‖w‖",
        "Where two frameworks part",
        "λ sweep",
        "Every case",
    ]
    for name, caption in [
        ("mine-curves-adam-weight_decay", "adam, weight_decay: loss per epoch"),
        ("mine-sweep-adam-weight_decay", "adam, weight_decay: loss against λ"),
    ]:
        assert f"![{caption}](figures/{name}.svg)" in text and (tmp_path / "out" / "figures" / f"{name}.svg").exists()
        assert f'alt="{caption}"' in page
    parted = tables(text)["Spec `mine`", "Where two frameworks part"][0]
    assert [(r["case"], r["group A"], r["group B"]) for r in parted] == [
        (f"λ={s}", "torch", "tensorflow") for s in ("0.01", "0.1", "1")
    ]
    assert all(int(r["part at step"]) >= 1 and r["A follows"].startswith("coupled ×1") for r in parted)
    assert "<h3" in page and ">Where two frameworks part</h3>" in page and "<th>part at step</th>" in page


def test_a_missing_and_a_failing_framework_are_named_and_the_rest_renders(made, tmp_path, monkeypatch):
    paths, results = made
    partial = tmp_path / "results"
    shutil.copytree(results, partial, ignore=shutil.ignore_patterns("mxnet", "semantics-mxnet.json"))
    for path in (partial / "jax").glob("*.json"):
        found = json.loads(path.read_text())
        if found["case"]["penalty"]["kind"] == "l1_loss":
            found.update(
                status="error",
                reason="RuntimeError: framework exploded",
                final=None,
                steps=None,
                epochs=None,
                explained=None,
            )
            path.write_text(json.dumps(found))
    sweep = spec.load(paths[SPECS.index("sweep")])
    for backend in backends.NAMES:
        for _, case in sweep.cases(backend):
            store.path_for(partial, backend, case.id).unlink(missing_ok=True)
    monkeypatch.setattr(figures, "available", lambda: False)
    assert (
        cli.main(
            ["report", *(a for p in paths for a in ("--spec", p)), "--results", str(partial), "--out", str(tmp_path)]
        )
        == 0
    )
    text = (tmp_path / "REPORT.md").read_text()
    frameworks = {r["backend"]: r for r in tables(text)["Frameworks in this report", "Frameworks in this report"][0]}
    assert frameworks["mxnet"]["notes"].startswith("missing: no results in")
    assert frameworks["jax"]["notes"] == (
        "d2l: 6 failed, e.g. RuntimeError: framework exploded; "
        "cases without a result: `decaylens run --backend jax` computes just those"
    )
    assert (
        frameworks["jax"]["`d2l`"] == "17 ok, 6 unsupported, 6 error" and frameworks["jax"]["`sweep`"] == "32 missing"
    )
    assert "No results for spec `sweep` yet" in text and "No fingerprint for mxnet" in text
    assert "mxnet" not in tables(text)["Spec `d2l`", "Final ‖w‖"][0][0] and "no results for: mxnet" in text
    assert "Figure not drawn (matplotlib is not installed" in text and not (tmp_path / "figures").exists()


def test_run_and_report_take_several_specs_and_default_to_every_builtin(tmp_path, use_adapters, capsys):
    use_adapters(fake)
    paths = shrunk_specs(tmp_path / "specs")
    lr, bias = paths[SPECS.index("lr")], paths[SPECS.index("bias")]
    with np.errstate(all="ignore"):
        assert cli.main(["run", "--backend", "jax", "--spec", lr, "--spec", bias, "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "jax lr: 9 ok, 3 diverged" in out and "jax bias: 10 ok, 6 unsupported" in out
    assert cli.main(["report", "--spec", lr, "--results", str(tmp_path / "r"), "--out", str(tmp_path / "one")]) == 0
    assert "### Learning rate" in (tmp_path / "one" / "REPORT.md").read_text()
    assert cli.main(["report", "--results", str(tmp_path / "r"), "--out", str(tmp_path / "all")]) == 0
    text = (tmp_path / "all" / "REPORT.md").read_text()
    assert list(spec_headings(text)) == spec.builtin_names()
    assert "No results for spec `sweep` yet" in text


def test_a_bad_spec_among_several_stops_everything_with_one_line(tmp_path, use_adapters, capsys):
    use_adapters(fake)
    (tmp_path / "bad.toml").write_text('[factors]\nloss = ["train.loss"]\n[overrides.jax]\n"optimizer.lr" = 0.1\n')
    assert (
        cli.main(
            [
                "run",
                "--backend",
                "jax",
                "--spec",
                "lr",
                "--spec",
                str(tmp_path / "bad.toml"),
                "--out",
                str(tmp_path / "r"),
            ]
        )
        == 2
    )
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "optimizer.lr" in error and "no factor" in error and "allowed" in error
    assert not (tmp_path / "r").exists()
    assert cli.main(["report", "--results", str(tmp_path / "r"), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "no such directory" in error and not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- the page in Chromium


def test_the_glance_says_what_the_summary_says_for_every_api_but_lr_decay(rendered):
    text, _, _ = rendered
    found = tables(text)
    title = "Summary: is weight decay an L2 penalty in the loss?"
    summary = {(r["optimizer"], r["API"]): r for r in found[title, title][0]}
    glance_title = "At a glance: does weight_decay train like an L2 penalty in the loss?"
    glance = {(r["optimizer"], r["API"]): r for r in found[glance_title, glance_title][0]}
    shown = {key for key, row in summary.items() if any(row[b] != "unsupported" for b in backends.NAMES)}
    assert glance.keys() == {key for key in shown if key[1] != "lr_decay"}  # a row of no API at all is left out
    signs = {"=": "**same**", "≠": "**never**", "–": "unsupported"}
    for key, row in glance.items():
        for backend in backends.NAMES:
            mine, theirs = row[backend], summary[key][backend]
            if mine == "?":  # no rule, or the probe cannot tell
                assert not theirs.startswith((*signs.values(), "**convert**")), (key, backend, theirs)
            else:
                expected = signs.get(mine, f"**convert**: λ' = {mine[1:]}·λ")
                assert theirs.startswith(expected), (key, backend, mine, theirs)


def test_the_same_code_on_several_backends_shows_where_its_rules_and_runs_differ(rendered):
    """The fake keras-torch decays coupled where the fake Kerases decay decoupled × lr: its rows say so,
    and its float64 weight_decay runs part from tensorflow's by the gap the results files give."""
    text, _, results = rendered
    title = "The same code on several backends"
    rules, gaps = tables(text)[title, "`backends.keras` on tensorflow, tensorflow-keras2, keras-jax, keras-torch"]
    rules = {(r["optimizer"], r["API"]): r for r in rules}
    momentum = rules["momentum", "weight_decay"]
    assert momentum["one rule"] == "**no**" and momentum["keras-jax"] == momentum["tensorflow-keras2"] == "same"
    assert momentum["tensorflow"].startswith("decoupled × lr") and momentum["keras-torch"].startswith("coupled ×1")
    assert rules["momentum", "l2_loss"]["one rule"] == "yes"
    assert "these do not: sgd weight_decay" not in text and "momentum weight_decay" in text  # sgd: one update
    stored = store.scan(results)[0]
    adam = [
        (r, stored["keras-torch", r.case.id])
        for (b, _), r in stored.items()
        if b == "tensorflow" and r.trained and r.case.model.dtype == "float64"
        and (r.case.optimizer.name, r.case.penalty.kind) == ("adam", "weight_decay")
    ]  # fmt: skip
    largest = max(
        abs(x - y) / max(abs(x), abs(y)) for a, b in adam for x, y in zip(a.steps.w_norm, b.steps.w_norm, strict=True)
    )
    gaps = {(r["optimizer"], r["penalty"]): r for r in gaps}
    assert gaps["adam", "weight_decay"]["vs keras-torch"].startswith(f"{largest:.2g} ({len(adam)} cases, ")
    assert gaps["adam", "l2_loss"]["vs keras-torch"].startswith("0 (")
