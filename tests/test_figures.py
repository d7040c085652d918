"""The figures' drawing: lines thinned to what a panel shows, and matplotlib's SVG made smaller without
changing what it draws (core env, with the ``report`` extra)."""

import os
import re
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest

from harness import figures
from harness.figures import Figure, Panel, Series

if not figures.available() and not os.environ.get("CI"):
    pytest.skip("matplotlib is not installed: pip install 'decaylens[report]'", allow_module_level=True)


def test_a_long_line_keeps_at_most_a_point_a_column_and_every_rise_and_fall():
    rng = np.random.default_rng(0)
    x, y = list(range(10_000)), list(np.cumsum(rng.normal(size=10_000)))
    y[1234], y[8765] = 1e3, -1e3  # a spike up and one down, each one point wide
    kept_x, kept_y = figures.thinned(x, y, 300)
    assert len(kept_x) <= 300 and kept_x == sorted(kept_x)
    assert (kept_x[0], kept_x[-1]) == (0, 9_999) and {1234, 8765} <= set(kept_x)
    assert all(y[i] == v for i, v in zip(kept_x, kept_y))
    assert figures.thinned(x[:300], y[:300], 300) == (x[:300], y[:300])  # a point a column: every one


def _absolute(text):
    """The numbers of an attribute, a line's relative steps (``M x y l dx dy ...``) added up into its points."""
    numbers = [float(n) for n in re.findall(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:e-?\d+)?", text)]
    if not re.fullmatch(r"M[^A-Za-z]+l[^A-Za-z]+", text):
        return numbers
    for i in range(2, len(numbers)):
        numbers[i] += numbers[i - 2]
    return numbers


def test_the_compact_svg_draws_what_matplotlib_drew(monkeypatch):
    """Every element and text kept; every coordinate within 0.05 pt of matplotlib's; a fifth of the text gone
    even from a figure of two short lines (from the report's 57 figures, with fewer markers too, half)."""
    x = tuple(range(200))
    series = tuple(
        Series(f"{b}", b, x, tuple(np.exp(-np.arange(200) / (30.0 + i)))) for i, b in enumerate(("torch", "jax"))
    )
    figure = Figure("f", "c", (Panel("loss", "epoch", "mean ½e²", series), Panel("λ = 0.001", "step", "‖w‖", series)))
    monkeypatch.setattr(figures, "compact", lambda svg: svg)
    drawn = figures.svg(figure)
    monkeypatch.undo()
    small = figures.compact(drawn)
    before, after = ElementTree.fromstring(drawn.encode()), ElementTree.fromstring(small.encode())
    assert [e.tag for e in before.iter()] == [e.tag for e in after.iter()]
    texts = [[t for e in tree.iter() if (t := (e.text or "").strip())] for tree in (before, after)]
    assert texts[0] == texts[1] and "λ = 0.001" in texts[0]  # the text as drawn, but the space between elements
    for old, new in zip(before.iter(), after.iter()):
        assert old.keys() == new.keys()
        for name in old.keys():
            numbers = [_absolute(e.get(name)) for e in (old, new)]
            assert len(numbers[0]) == len(numbers[1]), name
            assert all(abs(a - b) <= 0.05 + 1e-9 for a, b in zip(*numbers)), name
    assert len(small) < 0.8 * len(drawn)
