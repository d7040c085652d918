"""Figures of the report: line charts drawn by matplotlib as SVG text.

A figure is data (panels of series, every number read from results files by
``harness.report``); ``svg`` draws it. matplotlib is imported only there, so the report's
text can be built in an environment without it.
"""

import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import backends

MARKERS = "os^vD"
PANEL_INCHES = 4.2  # a panel's width: at SVG's 72 points an inch, about 300 points across
COLUMNS = round(PANEL_INCHES * 72)  # the most points a line keeps (``thinned``): one a point across its panel
# A panel of more lines than this (a sweep's every case on every backend) has its lines drawn as one image at
# RASTER_DPI, the 96 CSS pixels an inch a page shows it at, under vector axes and text: hundreds of paths of SVG
# weigh more than the image of what they show.
DENSE_LINES = 24
RASTER_DPI = 96
MARKERS_PER_LINE = 4  # markers spaced along each line, offset per backend, so that lines on top of each other show
# How every figure is drawn: text as text (a browser sets it; as paths each glyph is drawn out), 9-point type in
# the font matplotlib measures it with.
STYLE = {"svg.fonttype": "none", "font.size": 9, "font.sans-serif": ["DejaVu Sans"]}


@dataclass(frozen=True)
class Series:
    """One line: ``y`` against ``x``, coloured and marked by ``backend`` (or, for lines that are not a
    backend's, by their ``shade``, an index), dashed by ``dashed``."""

    label: str
    backend: str
    x: tuple
    y: tuple
    dashed: bool = False
    shade: int | None = None


@dataclass(frozen=True)
class Panel:
    title: str
    xlabel: str
    ylabel: str
    series: tuple
    xscale: str = "linear"  # "linear", "log", or "symlog" (a λ axis that starts at 0)
    yscale: str = "log"


@dataclass(frozen=True)
class Figure:
    name: str  # file stem: figures/<name>.svg
    caption: str
    panels: tuple


def available():
    """Whether matplotlib can be imported here (the ``report`` extra)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def digest(figure):
    """SHA-256 of what ``svg`` draws ``figure`` from: its data, this module's drawing code and the
    matplotlib version."""
    import matplotlib

    code = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    return hashlib.sha256(f"{matplotlib.__version__} {code} {figure!r}".encode()).hexdigest()


def svg(figure):
    """The figure as SVG text: its panels side by side, one legend below."""
    import matplotlib.figure

    labels = list(dict.fromkeys(s.label for p in figure.panels for s in p.series))
    columns = min(len(labels), 3 * len(figure.panels), 5)
    rows = -(-len(labels) // columns)
    width, height = PANEL_INCHES * len(figure.panels), 3.2 + 0.22 * rows  # inches: panels above the legend's rows
    # the same figure gives the same bytes; log axes over losses near the float64 maximum overflow harmlessly
    with matplotlib.rc_context(STYLE | {"svg.hashsalt": figure.name}), np.errstate(over="ignore"):
        fig = matplotlib.figure.Figure(figsize=(width, height))
        axes = fig.subplots(1, len(figure.panels), squeeze=False)[0]
        fig.subplots_adjust(
            left=0.8 / width,
            right=1 - 0.2 / width,
            top=1 - 0.3 / height,
            bottom=(0.6 + 0.22 * rows) / height,
            wspace=0.35,
        )
        for ax, panel in zip(axes, figure.panels):
            _lines(ax, panel)
        handles = {label: h for ax in axes for h, label in zip(*ax.get_legend_handles_labels())}
        fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=columns, frameon=False, fontsize="small")
        text = io.StringIO()
        fig.savefig(text, format="svg", metadata={"Date": None}, dpi=RASTER_DPI)
    return compact(text.getvalue())


DECIMAL = re.compile(r"(?<![\w#.])-?\d+\.\d{3,}(?![\de])")  # a coordinate as matplotlib writes it: 6 decimals
ATTRIBUTE = re.compile(r'(\s[\w:-]+)="([^"]*)"')


def compact(svg):
    """matplotlib's SVG text drawn the same, smaller: every coordinate in an attribute (points, 72 an inch;
    the figure's own values, such as a line's width, have fewer decimals) to 0.1, text content as it was;
    path data without its spaces beside the commands, a line's (``M`` then ``L`` only) as its first point and
    the steps from each point to the next (``l``, exact: the steps between the rounded points); no line breaks
    between elements (but between a text's tspans); each attribute in single quotes where its value has none
    (a data URI escapes double ones)."""

    def attribute(match):
        name, value = match.groups()
        value = DECIMAL.sub(lambda number: f"{float(number.group()):.1f}".removesuffix(".0"), value)
        if name.strip() == "d":
            value = _relative(re.sub(r"\s*([A-Za-z])\s*", r"\1", value).strip())
        return f"{name}='{value}'" if "'" not in value else f'{name}="{value}"'

    svg = ATTRIBUTE.sub(attribute, svg)
    return re.sub(r">\s+<(?!/?tspan)", "><", svg)


LINE = re.compile(r"M-?[\d.]+ -?[\d.]+(L-?[\d.]+ -?[\d.]+)+")  # a path of straight segments, nothing else
POINT = re.compile(r"[ML](-?[\d.]+) (-?[\d.]+)")


def _relative(path):
    """A line's path data as ``M x y l dx dy dx dy ...`` in tenths, where the steps are shorter to write than the
    points (every other path as it was)."""
    if not LINE.fullmatch(path):
        return path
    tenths = [(round(float(x) * 10), round(float(y) * 10)) for x, y in POINT.findall(path)]
    steps = [_tenths(b - a) for p, q in zip(tenths, tenths[1:]) for a, b in zip(p, q, strict=True)]
    text = f"M{_tenths(tenths[0][0])} {_tenths(tenths[0][1])}l" + steps[0]
    for step in steps[1:]:
        text += step if step.startswith("-") else f" {step}"  # a minus sign separates two numbers
    return text if len(text) < len(path) else path


def _tenths(count):
    """``count`` tenths as the shortest decimal text: 25 -> 2.5, -3 -> -.3, 40 -> 4."""
    text = f"{count / 10:.1f}".removesuffix(".0")
    return text.replace("0.", ".", 1) if text.lstrip("-").startswith("0.") else text


def _lines(ax, panel):
    """One panel: each series as a line; markers spaced and offset per backend so that
    lines lying on top of each other stay visible; more than DENSE_LINES of them as an image."""
    dense = len(panel.series) > DENSE_LINES
    for series in panel.series:
        known = series.backend in backends.NAMES or series.shade is not None
        index = backends.NAMES.index(series.backend) if series.backend in backends.NAMES else series.shade or 0
        x, y = thinned(series.x, series.y, COLUMNS)
        every = max(1, len(x) // MARKERS_PER_LINE)
        ax.plot(
            x,
            y,
            label=series.label,
            color=f"C{index}" if known else "black",
            linestyle="--" if series.dashed else "-",
            linewidth=1.2,
            marker=MARKERS[index % len(MARKERS)] if known else None,
            markevery=(index * every // len(backends.NAMES), every),
            markersize=4,
            fillstyle="none",
            rasterized=dense,
        )
    ax.set_yscale(panel.yscale)
    if panel.xscale == "symlog":
        positive = [x for s in panel.series for x in s.x if x > 0]
        ax.set_xscale("symlog", linthresh=min(positive, default=1.0))
        ax.set_xlim(left=0)
    elif panel.xscale == "log":  # a few values (learning rates): tick exactly those
        ax.set_xscale("log")
        ticks = sorted({x for s in panel.series for x in s.x})
        ax.minorticks_off()
        ax.set_xticks(ticks, [f"{x:g}" for x in ticks])
    ax.set(title=panel.title, xlabel=panel.xlabel, ylabel=panel.ylabel)
    ax.grid(True, which="major", alpha=0.3)


def thinned(x, y, columns):
    """The points of a line that a panel ``columns`` points wide shows, at most ``columns`` of them: all where
    there are no more; else, in each of ``columns // 4`` runs of consecutive points, the first, the lowest,
    the highest and the last (in order), so that the drawn line keeps every rise and fall it had."""
    if len(x) <= columns:
        return x, y
    values = np.asarray(y, dtype=float)
    kept = set()
    for run in np.array_split(np.arange(len(values)), columns // 4):
        finite = run[np.isfinite(values[run])]
        kept |= {run[0], run[-1]} | (
            {finite[np.argmin(values[finite])], finite[np.argmax(values[finite])]} if len(finite) else set()
        )
    order = sorted(kept)
    return [x[i] for i in order], [y[i] for i in order]
