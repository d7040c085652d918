"""The comparison report over results made by tests/fake_backend.py standing in for every framework.

The built-in specs are shrunk (5 epochs, and an lr that overflows at once in the lr spec)
and saved under their own names, so every section of the report has its results. Each
backend's weight_decay follows its own oracle rule (RULES), so some frameworks part.
The tests run in the core env, with the ``report`` extra (matplotlib); the Chromium tests
need /usr/bin/chromium (Debian package ``chromium``). Locally, either missing skips them;
under CI it fails them.
"""

import base64
import fcntl
import json
import os
import re
import select
import shutil
import struct
import subprocess
import time
from importlib import resources
from types import SimpleNamespace

import fake_backend
import numpy as np
import pytest

import backends
from conftest import ENV_BACKEND
from harness import cli, figures, files, fingerprint, report, run, spec, store

if ENV_BACKEND:
    pytest.skip("the report is tested in the core env (tox -e core)", allow_module_level=True)
if not figures.available() and not os.environ.get("CI"):
    pytest.skip("matplotlib is not installed: pip install 'decaylens[report]'", allow_module_level=True)

RULES = {"torch": "coupled", "tensorflow": "decoupled_lr", "tensorflow-keras2": "decoupled_lr", "jax": "coupled", "mxnet": "coupled"}
SPECS = ("d2l", "d2l-book", "sweep", "bias", "lr")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def fake(name):
    """fake_backend as backend ``name``, its weight_decay following RULES[name]."""
    def train(case, arrays):
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("FAKE_BACKEND_WEIGHT_DECAY", RULES[name])
            return fake_backend.train(case, arrays)
    return SimpleNamespace(versions=fake_backend.versions, train=train)


def shrunk_specs(directory):
    directory.mkdir()
    for name in SPECS:
        text = resources.files("harness").joinpath("specs", f"{name}.toml").read_text().replace("epochs = 100", "epochs = 5")
        if name == "lr":  # 1e150 overflows float64 within three steps
            text = re.sub(r'"optimizer.lr" = \[.*\]', '"optimizer.lr" = [0.05, 0.1, 0.2, 1e150]', text)
        (directory / f"{name}.toml").write_text(text)
    return [str(directory / f"{name}.toml") for name in SPECS]


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """(spec paths, results directory) with every spec run by every backend, and their fingerprints."""
    root = tmp_path_factory.mktemp("report")
    paths = shrunk_specs(root / "specs")
    with pytest.MonkeyPatch.context() as patch, np.errstate(all="ignore"):  # lr 1e150 overflows, as it should
        patch.setattr(backends, "load", fake)
        for backend in backends.NAMES:
            for path in paths:
                run.run(backend, spec.load(path), root / "results")
            document = fingerprint.probe(backend, fake(backend), "test")
            files.write_atomically(root / "results" / f"semantics-{backend}.json", json.dumps(document))
    return paths, root / "results"


@pytest.fixture(scope="module")
def rendered(made, tmp_path_factory):
    """(REPORT.md text, report directory, results directory) of the full report."""
    paths, results = made
    out = tmp_path_factory.mktemp("out")
    assert cli.main(["report", *(a for p in paths for a in ("--spec", p)), "--results", str(results), "--out", str(out)]) == 0
    return (out / "REPORT.md").read_text(), out, results


def tables(text):
    """Every Markdown table under its closest heading: {heading: [table: [row as a dict]]}."""
    found, heading, lines = {}, None, text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("#"):
            heading = line.lstrip("# ")
        elif line.startswith("| ") and (i == 0 or not lines[i - 1].startswith("|")):
            columns = cells(line)
            rows = []
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                rows.append(dict(zip(columns, cells(row), strict=True)))
            found.setdefault(heading, []).append(rows)
    return found


def cells(line):
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def test_every_section_renders_with_its_figures(rendered):
    text, out, _ = rendered
    headings = re.findall(r"^#+ (.*)$", text, re.M)
    for title in [*report.TITLES.values(), "Frameworks in this report", "Summary: is weight decay an L2 penalty in the loss?",
                  "What the nominal λ does", "The same trajectory in another framework", "Probe versus the full runs",
                  "Final ‖w‖", "Where two frameworks part", "What makes each listing differ", "λ chosen on the validation set",
                  "L1 versus L2", "Environment", *(f"Every case of `{name}`" for name in SPECS)]:
        assert title in headings
    links = re.findall(r"!\[[^]]*\]\((figures/[^)]+\.svg)\)", text)
    kinds = ("none", "l2_loss", "l1_loss", "weight_decay")  # the fake has no regularizer
    assert links == [*(f"figures/reference-sgd-{k}.svg" for k in kinds), "figures/book.svg",
                     *(f"figures/sweep-{k}.svg" for k in ("l2_loss", "l1_loss", "weight_decay")), "figures/l1-l2.svg", "figures/lr.svg"]
    assert all((out / link).read_text().startswith("<?xml") for link in links)
    assert "*No results to draw: sgd, regularizer: loss per epoch.*" in text
    page = (out / "index.html").read_text()
    assert page.count('<img src="data:image/svg+xml;base64,') == len(links)
    assert "not drawn" not in text and "http" not in page


def test_the_same_results_give_the_same_report(rendered, tmp_path):
    text, out, results = rendered
    paths = [str(results.parent / "specs" / f"{name}.toml") for name in SPECS]
    report.write([spec.load(path) for path in paths], results, tmp_path)
    drop_time = lambda page: re.sub(r"report made .* UTC", "", page)  # noqa: E731
    assert drop_time((tmp_path / "REPORT.md").read_text()) == drop_time(text)
    assert drop_time((tmp_path / "index.html").read_text()) == drop_time((out / "index.html").read_text())


def test_the_markdown_reads_well(rendered):
    text, _, _ = rendered
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|"):
            header = next(lines[j] for j in range(i, -1, -1) if j == 0 or not lines[j - 1].startswith("|"))
            assert len(cells(line)) == len(cells(header)), line
        if line.startswith("#") or line.startswith("!["):
            assert (i == 0 or lines[i - 1] == "") and lines[i + 1] == "", line
    levels = [len(m) for m in re.findall(r"^(#+) ", text, re.M)]
    assert levels[0] == 1 and all(b - a <= 1 for a, b in zip(levels, levels[1:]))
    assert not re.search(r"\bNone\b|\bnan\b|\{|\}", text.split("## Every case")[0])


def test_the_numbers_are_the_results_files_numbers(rendered):
    text, _, results = rendered
    found, stored = tables(text), store.scan(results)[0]
    d2l = spec.load(str(results.parent / "specs" / "d2l.toml"))
    final_norms = {(r["optimizer"], r["API"], r["λ"]): r for r in found["Final ‖w‖"][0]}
    rows = 0
    for backend in backends.NAMES:
        for _, case in d2l.cases(backend):
            record = stored[backend, case.id]
            cell = final_norms[case.optimizer.name, case.penalty.kind, f"{case.penalty.strength:g}"][backend]
            assert cell == (f"{record['final']['w_norm']:.4g}" if record["status"] == "ok" else record["status"])
            rows += 1
    assert rows == 5 * 29
    made = sorted(r["created"] for (b, _), r in stored.items() if b == "torch")
    assert f"torch: fake 1, numpy {np.__version__}" in text and f"results made from {made[0]} to {made[-1]}" in text
    sweep, label = spec.load(str(results.parent / "specs" / "sweep.toml")), None
    for row in found["Every case of `sweep`"][0]:
        label = row["case"] or label
        case = next(c for p, c in sweep.cases(row["backend"]) if run.describe(p) == label)
        record = stored[row["backend"], case.id]
        if record["status"] == "ok":
            assert (row["‖w‖"], row["train loss"], row["test loss"]) == tuple(
                f"{record['final'][k]:.4g}" for k in ("w_norm", "train_loss", "test_loss"))
    bias = {(r["λ"], r["API"], r["decay_bias"]): r for r in found["Bias decay on versus off"][0]}
    for backend in backends.NAMES:
        for _, case in spec.load(str(results.parent / "specs" / "bias.toml")).cases(backend):
            record, penalty = stored[backend, case.id], case.penalty
            cell = bias[f"{penalty.strength:g}", penalty.kind, json.dumps(penalty.decay_bias)][backend]
            if record["status"] == "ok":
                assert cell == f"b {record['final']['b']:.4g}, test {record['final']['test_loss']:.4g}"


def test_the_chosen_and_the_best_lambda_are_those_of_the_results(rendered):
    text, _, results = rendered
    stored = store.scan(results)[0]
    for row in tables(text)["λ chosen on the validation set"][0]:
        mine = [r for (b, _), r in stored.items() if b == row["backend"] and r["status"] == "ok"
                and r["case"]["data"]["n_valid"] and r["case"]["penalty"]["kind"] == row["API"]]
        chosen = min(mine, key=lambda r: r["epochs"]["valid_loss"][-1])
        best = min(mine, key=lambda r: r["final"]["test_loss"])
        assert row["chosen λ"] == f"{chosen['case']['penalty']['strength']:g}"
        assert row["best λ on test"] == f"{best['case']['penalty']['strength']:g}"
        assert row["its test loss"] == f"{chosen['final']['test_loss']:.4g}"


def test_divergence_learning_rate_and_parting_come_from_the_runs(rendered):
    text, _, results = rendered
    found, stored = tables(text), store.scan(results)[0]
    diverged = [r for r in stored.values() if r["status"] == "diverged"]
    assert diverged and all(r["case"]["optimizer"]["lr"] == 1e150 for r in diverged)
    growth, half = found["Learning rate and the ½ in the loss"]
    lr_rows = {(r["loss"], r["lr"]): r for r in growth}
    for record in diverged:
        cell = lr_rows[record["case"]["train"]["loss"], "1e+150"][record["backend"]]
        assert cell == f"**non-finite at step {len(record['steps']['train_loss'])}**"
    half = {r["backend"]: r for r in half}
    assert {r["native loss runs like"] for r in half.values()} == {"e²"}  # the fake's native loss is mean e²
    assert all(r["pairs (e² at lr, ½e² at 2·lr)"] == "2" and r["pairs that part while finite"] == "none" for r in half.values())
    parted = {(r["case"], r["group A"], r["group B"]) for r in found["Where two frameworks part"][0]}
    assert ("momentum, weight_decay, λ=3", "torch = jax = mxnet", "tensorflow = tensorflow-keras2") in parted
    summary = {(r["optimizer"], r["API"]): r for r in found["Summary: is weight decay an L2 penalty in the loss?"][0]}
    assert summary["momentum", "weight_decay"]["torch"] == "**same**"
    assert summary["momentum", "weight_decay"]["tensorflow"].startswith("**never**: λ bypasses momentum")
    # 5 backends × (weight_decay with sgd, momentum and adam, and adamw); the fake has no regularizer
    assert "Checked against the full `d2l` runs: in all 20 runs of an API at λ > 0" in text
    assert all(row["disagreeing"] == "—" for row in found["Probe versus the full runs"][0])


def test_book_mode_names_the_factor_that_moves_each_listing(rendered):
    text, _, _ = rendered
    rows = {(r["backend"], r["λ"]): r for r in tables(text)["What makes each listing differ"][0]}
    # the fake's native loss is mean e² for every backend; torch's listing also draws the bias from N(0, 1)
    assert rows["torch", "3"]["causes"] == "init, loss" and rows["mxnet", "3"]["causes"] == "loss"
    assert rows["jax", "3"]["causes"] == "loss, bias" and rows["mxnet", "3"]["init"] == "not a difference"
    assert "the same case as `d2l`'s `sgd, l2_loss, λ=3`" in text


def test_a_missing_and_a_failing_framework_are_named_and_the_rest_renders(made, tmp_path, monkeypatch):
    paths, results = made
    partial = tmp_path / "results"
    shutil.copytree(results, partial, ignore=shutil.ignore_patterns("mxnet", "semantics-mxnet.json"))
    for path in (partial / "jax").glob("*.json"):
        record = json.loads(path.read_text())
        if record["case"]["penalty"]["kind"] == "l1_loss":
            record.update(status="error", reason="RuntimeError: framework exploded", final=None, steps=None, epochs=None)
            path.write_text(json.dumps(record))
    sweep = spec.load(paths[SPECS.index("sweep")])
    for backend in backends.NAMES:
        for _, case in sweep.cases(backend):
            store.path_for(partial, backend, case.id).unlink(missing_ok=True)
    monkeypatch.setattr(figures, "available", lambda: False)
    assert cli.main(["report", *(a for p in paths for a in ("--spec", p)), "--results", str(partial), "--out", str(tmp_path)]) == 0
    text = (tmp_path / "REPORT.md").read_text()
    frameworks = {r["backend"]: r for r in tables(text)["Frameworks in this report"][0]}
    assert frameworks["mxnet"]["notes"].startswith("missing: no results in")
    assert frameworks["jax"]["notes"] == ("d2l: 6 failed, e.g. RuntimeError: framework exploded; "
                                          "cases without a result: `decaylens run --backend jax` computes just those")
    assert frameworks["jax"]["`d2l`"] == "17 ok, 6 unsupported, 6 error" and frameworks["jax"]["`sweep`"] == "32 missing"
    assert "No results for spec `sweep` yet" in text and "No fingerprint for mxnet" in text
    assert "mxnet" not in tables(text)["Final ‖w‖"][0][0] and "no results for: mxnet" in text
    assert "Figure not drawn (matplotlib is not installed" in text and not (tmp_path / "figures").exists()


def test_run_and_report_take_several_specs_and_default_to_every_builtin(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(backends, "load", fake)
    paths = shrunk_specs(tmp_path / "specs")
    lr, bias = paths[SPECS.index("lr")], paths[SPECS.index("bias")]
    with np.errstate(all="ignore"):
        assert cli.main(["run", "--backend", "jax", "--spec", lr, "--spec", bias, "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "jax lr: 9 ok, 3 diverged" in out and "jax bias: 10 ok, 6 unsupported" in out
    assert cli.main(["report", "--spec", lr, "--results", str(tmp_path / "r"), "--out", str(tmp_path / "one")]) == 0
    assert "## Learning rate" in (tmp_path / "one" / "REPORT.md").read_text()
    assert cli.main(["report", "--results", str(tmp_path / "r"), "--out", str(tmp_path / "all")]) == 0
    text = (tmp_path / "all" / "REPORT.md").read_text()
    assert all(f"Every case of `{name}`" in text for name in spec.builtin_names())
    assert "No results for spec `sweep` yet" in text


def test_a_bad_spec_among_several_stops_everything_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(backends, "load", fake)
    (tmp_path / "bad.toml").write_text('[factors]\nloss = ["train.loss"]\n[overrides.jax]\n"optimizer.lr" = 0.1\n')
    assert cli.main(["run", "--backend", "jax", "--spec", "lr", "--spec", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "r")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "optimizer.lr" in error and "no factor" in error and "allowed" in error
    assert not (tmp_path / "r").exists()
    assert cli.main(["report", "--results", str(tmp_path / "r"), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "no such directory" in error and not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- the page in Chromium


class DevTools:
    """Chromium's DevTools protocol over ``--remote-debugging-pipe``: JSON messages ending in
    NUL, read from the browser's fd 4 and written to its fd 3."""

    def __init__(self, profile):
        to_browser, self._to_browser = os.pipe()
        self._from_browser, from_browser = os.pipe()

        def as_fds_3_and_4():  # in the child, before exec; dup2 leaves the new fds inheritable
            read, write = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser, from_browser))
            os.dup2(read, 3)
            os.dup2(write, 4)

        self.process = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=False, preexec_fn=as_fds_3_and_4,  # Python's own fds are not inheritable
        )
        os.close(to_browser)
        os.close(from_browser)
        self.events, self._buffer, self._id = [], b"", 0

    def send(self, method, session=None, **params):
        """Send a command and return its result, keeping every event that arrives meanwhile."""
        self._id += 1
        message = {"id": self._id, "method": method, "params": params} | ({"sessionId": session} if session else {})
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._next()
            if reply.get("id") == self._id:
                assert "error" not in reply, reply
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method, timeout=60):
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._next(deadline))

    def _next(self, deadline=None):
        deadline = deadline or time.monotonic() + 60
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._from_browser], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(self._from_browser, 1 << 20) if ready else b""
            assert chunk, "Chromium stopped answering"
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self):
        try:
            self.send("Browser.close")
        finally:
            self.process.wait(timeout=30)
            os.close(self._to_browser)
            os.close(self._from_browser)


def in_chromium(page, tmp_path):
    """Open ``page`` in headless Chromium at 1200 × 900: the figures' [loaded, natural width and
    height, shown width and height], the console errors, the URLs requested, and a PNG
    screenshot of the first figure."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"CI must install Chromium (Debian package chromium) for this test: {CHROMIUM} is missing")
        pytest.skip(f"{CHROMIUM} is not installed (Debian package chromium)")
    browser = DevTools(tmp_path / "profile")
    try:
        target = browser.send("Target.createTarget", url="about:blank")["targetId"]
        session = browser.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable", session)
        browser.send("Emulation.setDeviceMetricsOverride", session, width=1200, height=900, deviceScaleFactor=1, mobile=False)
        browser.send("Page.navigate", session, url=page.as_uri())
        browser.wait_for("Page.loadEventFired")
        evaluate = lambda expression: browser.send(  # noqa: E731
            "Runtime.evaluate", session, expression=expression, returnByValue=True)["result"]["value"]
        sizes = evaluate("[...document.querySelectorAll('figure img')].map(i => [i.complete, i.naturalWidth, "
                         "i.naturalHeight, i.getBoundingClientRect().width, i.getBoundingClientRect().height])")
        clip = evaluate("(() => { const r = document.querySelector('figure').getBoundingClientRect();"
                        " return {x: r.x, y: r.y + window.scrollY, width: r.width, height: r.height, scale: 1}; })()")
        png = base64.b64decode(browser.send("Page.captureScreenshot", session, format="png", clip=clip, captureBeyondViewport=True)["data"])
    finally:
        browser.close()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == (round(clip["width"]), round(clip["height"]))
    errors = [e["params"] for e in browser.events if e.get("method") == "Runtime.exceptionThrown"
              or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
              or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]
    requested = [e["params"]["request"]["url"] for e in browser.events if e.get("method") == "Network.requestWillBeSent"]
    return sizes, errors, requested, png


def test_the_page_opens_in_chromium_without_errors_and_shows_every_figure(rendered, tmp_path):
    _, out, _ = rendered
    sizes, errors, requested, png = in_chromium(out / "index.html", tmp_path)
    (tmp_path / "figure.png").write_bytes(png)
    assert len(sizes) == (out / "REPORT.md").read_text().count("](figures/") == 10
    assert all(loaded and min(natural_w, natural_h, w, h) > 100 for loaded, natural_w, natural_h, w, h in sizes), sizes
    assert errors == []
    assert requested[0] == (out / "index.html").as_uri() and all(url.startswith("data:") for url in requested[1:])


def test_the_chromium_check_sees_errors_missing_figures_and_fetches(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><body><figure><img src="missing.svg"></figure>'
                    '<script>console.error("broken")</script><img src="http://127.0.0.1:9/x.png"></body></html>')
    sizes, errors, requested, _ = in_chromium(page, tmp_path)
    assert len(sizes) == 1 and sizes[0][1] == 0  # the missing figure has no size
    assert {"console": "broken", "log": "Failed to load resource"} == {
        "console": next(e["args"][0]["value"] for e in errors if "args" in e),
        "log": next(e["entry"]["text"].split(":")[0] for e in errors if "entry" in e),
    }
    assert "http://127.0.0.1:9/x.png" in requested
