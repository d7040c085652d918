"""The comparison report over results made by tests/fake_backend.py standing in for every framework:
what tests/test_report.py (its text) and tests/test_report_page.py (its page and figures) read, made
once a session (conftest's ``made`` and ``rendered`` fixtures).

The built-in specs are shrunk (5 epochs, and an lr that overflows at once in the lr spec)
and saved under their own names, so every section of the report has its results. Each
backend's weight_decay follows its own oracle rule (RULES), so some frameworks part.
"""

import os
import re
from importlib import resources

import fake_backend
import numpy as np
import pytest
from conftest import ENV_BACKEND, fake_fingerprint

import backends
from harness import cli, figures

# A report test module's marks: its tests on the worker that builds the report once (pytest -n), run in the
# core env only, with the report extra (matplotlib) there but under CI, where its absence fails them.
MARKS = [
    pytest.mark.xdist_group("report"),
    pytest.mark.skipif(bool(ENV_BACKEND), reason="the report is tested in the core env (tox -e core)"),
    pytest.mark.skipif(
        not figures.available() and not os.environ.get("CI"),
        reason="matplotlib is not installed: pip install 'decaylens[report]'",
    ),
]

RULES = {
    "torch": "coupled",
    "tensorflow": "decoupled_lr",
    "tensorflow-keras2": "decoupled_lr",
    "keras-jax": "decoupled_lr",
    "keras-torch": "coupled",  # unlike the real one: so that the same code's backends differ somewhere
    "jax": "coupled",
    "mxnet": "coupled",
    "paddle": "coupled",
    "mlx": "coupled",
}
SPECS = ("d2l", "d2l-book", "sweep", "bias", "lr", "schedules", "mlp")


def fake(name):
    """fake_backend as backend ``name``, its weight_decay following RULES[name]."""
    return fake_backend.make(weight_decay=RULES[name])


def shrunk_specs(directory):
    directory.mkdir()
    for name in SPECS:
        text = (
            resources.files("harness")
            .joinpath("specs", f"{name}.toml")
            .read_text()
            .replace("epochs = 100", "epochs = 5")
        )
        if name == "lr":  # 1e150 overflows float64 within three steps
            text = re.sub(r'"optimizer.lr" = \[.*\]', '"optimizer.lr" = [0.05, 0.1, 0.2, 1e150]', text)
        if name == "schedules":  # the schedules within the 20 steps left
            text = text.replace("interval = 100", "interval = 5").replace("warmup = 40", "warmup = 4")
        (directory / f"{name}.toml").write_text(text)
    return [str(directory / f"{name}.toml") for name in SPECS]


def run_all(paths, results, names=backends.NAMES):
    """Every spec run by every backend of ``names``, with their fingerprints, into ``results``."""
    with pytest.MonkeyPatch.context() as patch, np.errstate(all="ignore"):  # lr 1e150 overflows, as it should
        patch.setattr(backends, "load", fake)
        for backend in names:
            for path in paths:
                cli.main(["run", "--backend", backend, "--spec", path, "--out", str(results)])
            fake_fingerprint(backend, weight_decay=RULES[backend]).save(results / f"semantics-{backend}.json")


def tables(text):
    """Every Markdown table under its headings: {(closest level-2 heading, closest heading): [table: [row]]}."""
    found, top, heading, lines = {}, None, None, text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("#"):
            heading = line.lstrip("# ")
            top = heading if line.startswith("## ") else top
        elif line.startswith("| ") and (i == 0 or not lines[i - 1].startswith("|")):
            columns = cells(line)
            rows = []
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                rows.append(dict(zip(columns, cells(row), strict=True)))
            found.setdefault((top, heading), []).append(rows)
    return found


def cells(line):
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def spec_headings(text):
    """{spec name: the headings of its sections, in order}."""
    found, current = {}, None
    for level, title in re.findall(r"^(#+) (.*)$", text, re.MULTILINE):
        if level == "##":
            match = re.fullmatch(r"Spec `(.*)`", title)
            current = match.group(1) if match else None
            found.update({current: []} if current else {})
        elif current:
            found[current].append(title)
    return found


def make(root):
    """(spec paths, results directory) under ``root``: every shrunk spec run by every backend, with their
    fingerprints."""
    paths = shrunk_specs(root / "specs")
    run_all(paths, root / "results")
    return paths, root / "results"


def render(paths, results, out):
    """(REPORT.md text, report directory, results directory) of the report of ``paths`` over ``results``."""
    command = ["report", *(a for p in paths for a in ("--spec", p)), "--results", str(results), "--out", str(out)]
    assert cli.main(command) == 0
    return (out / "REPORT.md").read_text(), out, results
