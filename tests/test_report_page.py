"""The comparison report's page (index.html) and figures over the fake backends' results
(tests/reported.py): drawn once, each inlined once, the same bytes again, painted in headless
Chromium. The tests run in the core env, with the ``report`` extra (matplotlib); the Chromium
tests need /usr/bin/chromium (Debian package ``chromium``). Locally, either missing skips them;
under CI it fails them."""

import io
import json
import re
import shutil

import numpy as np
import pytest
import reported
from chromium import first_screen, in_chromium
from reported import SPECS

from harness import document, figures, report, spec

pytestmark = reported.MARKS  # one worker builds the report fixtures (conftest) for both; skips outside core


def test_every_figure_is_drawn_linked_and_inlined(rendered):
    text, out, _ = rendered
    links = re.findall(r"!\[[^]]*\]\((figures/[^)]+\.svg)\)", text)
    kinds = {
        "d2l": ("none", "l2_loss", "l1_loss", "weight_decay"),
        "d2l-book": ("l2_loss", "weight_decay"),
        "sweep": ("l2_loss", "l1_loss", "weight_decay"),
        "bias": ("l2_loss", "weight_decay"),
        "lr": ("none",),
    }
    expected = {name: [f"figures/{name}-curves-sgd-{kind}.svg" for kind in found] for name, found in kinds.items()}
    expected["schedules"] = [f"figures/schedules-curves-adam-{kind}.svg" for kind in ("decoupled", "weight_decay")]
    expected["schedules"] += [f"figures/schedules-schedule-{i}.svg" for i in range(1, 7)]  # 3 schedules × 2 APIs
    expected["mlp"] = [
        f"figures/mlp-curves-adam-{kind}.svg" for kind in ("none", "l2_loss", "weight_decay", "decoupled")
    ]
    expected["mlp"] += [
        f"figures/mlp-layers-{i}.svg" for i in range(1, 11)
    ]  # 13 cases, the 3 regularizer ones untrained
    expected["d2l-book"].append("figures/d2l-book-book.svg")
    expected["sweep"] += [f"figures/sweep-sweep-sgd-{k}.svg" for k in kinds["sweep"]] + ["figures/sweep-l1-l2.svg"]
    expected["lr"].append("figures/lr-lr.svg")
    assert links == [link for name in SPECS for link in expected[name]]  # the fake has no regularizer
    assert all((out / link).read_text().startswith("<?xml") for link in links)
    assert "*No results to draw: sgd, regularizer: loss per epoch.*" in text
    page = (out / "index.html").read_text()
    assert page.count('<img src="data:image/svg+xml,') == len(links)  # each figure once, as its own text
    assert "not drawn" not in text and not re.search(r"""(src|href)=["']?(https?:|//)|url\((https?:|//)""", page)
    ids = re.findall(r' id="([^"]+)"', page)
    assert len(ids) == len(set(ids)) and "every-case-6" in ids  # one per spec, numbered from the second


def test_the_same_results_give_the_same_report(rendered, tmp_path):
    """The text again, and a few figures of each kind drawn again into a copy of the report without them
    (the rest read back by their digests, as the next test shows), byte for byte."""
    text, out, results = rendered
    paths = [str(results.parent / "specs" / f"{name}.toml") for name in SPECS]
    shutil.copytree(out / "figures", tmp_path / "figures")
    again = ("d2l-curves-sgd-none", "schedules-schedule-1", "sweep-l1-l2", "mlp-layers-1", "d2l-book-book")
    for name in again:
        (tmp_path / "figures" / f"{name}.svg").unlink()
    report.write([spec.load(path) for path in paths], results, tmp_path)

    def drop_time(page):
        return re.sub(r"report made .* UTC", "", page)

    assert drop_time((tmp_path / "REPORT.md").read_text()) == drop_time(text)
    assert drop_time((tmp_path / "index.html").read_text()) == drop_time((out / "index.html").read_text())
    for name in again:
        assert (tmp_path / "figures" / f"{name}.svg").read_bytes() == (out / "figures" / f"{name}.svg").read_bytes()


def test_a_report_again_over_the_same_results_draws_no_figure_again(rendered, tmp_path, monkeypatch):
    """The figures of the report there, of the same data (their digests), are read back, byte for byte;
    a figure whose digest differs is drawn again."""
    _, out, results = rendered
    paths = [str(results.parent / "specs" / f"{name}.toml") for name in SPECS]
    shutil.copytree(out, tmp_path / "out")
    before = {path.name: path.read_bytes() for path in (tmp_path / "out" / "figures").glob("*.svg")}
    drawn, draw = [], figures.svg
    monkeypatch.setattr(figures, "svg", lambda figure: drawn.append(figure.name) or draw(figure))
    report.write([spec.load(path) for path in paths], results, tmp_path / "out")
    assert drawn == [] and before == {p.name: p.read_bytes() for p in (tmp_path / "out" / "figures").glob("*.svg")}
    digests = tmp_path / "out" / "figures" / "digests.json"
    changed = json.loads(digests.read_text())
    name = next(iter(changed))
    digests.write_text(json.dumps(changed | {name: "another figure"}))
    report.write([spec.load(path) for path in paths], results, tmp_path / "out")
    assert drawn == [name]


def test_the_page_opens_in_chromium_without_errors_and_shows_every_figure(rendered, tmp_path):
    _, out, _ = rendered
    sizes, errors, requested, png = in_chromium(out / "index.html", tmp_path)
    (tmp_path / "figure.png").write_bytes(png)
    assert len(sizes) == (out / "REPORT.md").read_text().count("](figures/") == 40  # 26, and mlp's 4 + 10
    assert all(loaded and min(natural_w, natural_h, w, h) > 100 for loaded, natural_w, natural_h, w, h in sizes), sizes
    assert errors == []
    assert requested[0] == (out / "index.html").as_uri() and all(url.startswith("data:") for url in requested[1:])


def test_the_first_screen_shows_the_whole_matrix(rendered, tmp_path):
    """At 1200 × 900 the answer at a glance is on the first screen: the matrix's box lies within it,
    and the screenshot of it holds the colours of its same and never cells (document.STYLE)."""
    import matplotlib.image

    _, out, _ = rendered
    box, png = first_screen(out / "index.html", tmp_path)
    assert 0 < box["top"] < box["bottom"] <= 900 and box["right"] <= 1200, box
    pixels = np.round(matplotlib.image.imread(io.BytesIO(png), format="png")[..., :3] * 255)
    for tone in ("same", "never"):
        colour = re.search(rf"\.{tone} {{ background: #(\w{{6}});", document.STYLE).group(1)
        rgb = [int(colour[i : i + 2], 16) for i in (0, 2, 4)]
        assert np.all(np.abs(pixels - rgb) <= 2, axis=-1).sum() > 500, f"no {tone} cell on the first screen"


@pytest.mark.parametrize("rows, folded", [(document.FOLD_ROWS, False), (document.FOLD_ROWS + 1, True)])
def test_a_long_table_is_folded_on_the_page_and_whole_in_the_markdown(rows, folded):
    blocks = [document.table(("n",), [(i,) for i in range(rows)])]
    page = document.page(blocks, {}, "t")
    assert (f"<details><summary>{rows} rows</summary><table>" in page) == folded
    assert page.count("<tr>") == rows + 1 and document.markdown(blocks).count("\n| ") == rows


def test_a_reference_table_is_named_on_the_page_and_whole_in_the_markdown():
    """Every case of a spec: the page, which is for reading, names the table; REPORT.md holds every row."""
    blocks = [document.table(("n",), [(i,) for i in range(40)], on_page=False)]
    page = document.page(blocks, {}, "t")
    assert "<tr>" not in page and 'A table of 40 rows, in <a href="REPORT.md">REPORT.md</a>' in page
    assert document.markdown(blocks).count("\n| ") == 40


def test_the_chromium_check_sees_errors_missing_figures_and_fetches(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html><body><figure><img src="missing.svg"></figure>'
        '<script>console.error("broken")</script><img src="http://127.0.0.1:9/x.png"></body></html>'
    )
    sizes, errors, requested, _ = in_chromium(page, tmp_path)
    assert len(sizes) == 1 and sizes[0][1] == 0  # the missing figure has no size
    assert {"console": "broken", "log": "Failed to load resource"} == {
        "console": next(e["args"][0]["value"] for e in errors if "args" in e),
        "log": next(e["entry"]["text"].split(":")[0] for e in errors if "entry" in e),
    }
    assert "http://127.0.0.1:9/x.png" in requested
