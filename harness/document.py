"""A report as a list of blocks, written once as Markdown and once as one HTML page.

Blocks are headings, paragraphs, bullet lists, tables and figures (``harness.figures``).
Text marks `code`, **bold** and *italics* as Markdown does. The page is self-contained: figures
inline as SVG data URIs, the style inline, no script, nothing fetched.
"""

import html
import re
import urllib.parse
from dataclasses import dataclass

from harness.figures import Figure

MARKDOWN = "REPORT.md"  # the Markdown report beside the page, which holds the tables the page only names
NO_FIGURES = "matplotlib is not installed; pip install 'decaylens[report]'"


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Items:
    items: tuple


@dataclass(frozen=True)
class Table:
    """Rows of cell texts under ``columns``; a table not ``on_page`` (a reference, such as every case of a spec)
    is whole in the Markdown report and named on the HTML page, which is for reading."""

    columns: tuple
    rows: tuple  # tuples of cell texts
    on_page: bool = True


@dataclass(frozen=True)
class Matrix:
    """A table to read at a glance: every cell is (text, tone), the tone a key of ``legend``
    ({tone: meaning}) that colours it on the page, where the rows run in ``panels`` tables side by
    side; in Markdown, one table of the texts after a line of the legend."""

    columns: tuple
    rows: tuple  # tuples of (text, tone) cells; a row's first cells may have tone ""
    legend: dict
    panels: int = 2


def table(columns, rows, on_page=True):
    """A Table of rows given as tuples, or as dicts keyed by the columns."""
    columns = tuple(columns)
    return Table(
        columns,
        tuple(tuple(map(str, (row[c] for c in columns) if isinstance(row, dict) else row)) for row in rows),
        on_page,
    )


def markdown(blocks, drawn=None):
    """Markdown text; a figure is linked as ``figures/<name>.svg`` when ``drawn`` (the names of
    the figures written) has it or is None, and otherwise says it was not drawn."""
    out = []
    for block in blocks:
        if isinstance(block, Heading):
            out += ["#" * block.level + " " + block.text]
        elif isinstance(block, Text):
            out += [block.text]
        elif isinstance(block, Items):
            out += ["\n".join(f"- {item}" for item in block.items)]
        elif isinstance(block, Table):
            out += ["\n".join([_row(block.columns), "|" + "---|" * len(block.columns), *map(_row, block.rows)])]
        elif isinstance(block, Matrix):
            out += ["; ".join(block.legend.values())]
            rows = [tuple(text for text, _ in row) for row in block.rows]
            out += ["\n".join([_row(block.columns), "|" + "---|" * len(block.columns), *map(_row, rows)])]
        elif drawn is None or block.name in drawn:
            out += [f"![{block.caption}](figures/{block.name}.svg)", f"*Figure: {block.caption}.*"]
        else:
            out += [f"*Figure not drawn ({NO_FIGURES}): {block.caption}.*"]
    return "\n\n".join(out) + "\n"


def _row(cells):
    """A Markdown table row, with the ``|`` in a cell escaped."""
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


FOLD_ROWS = 15  # a longer table is folded on the page (<details>), its row count shown; Markdown shows it all

STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 13px; display: block; overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
code { font-size: 12px; background: #f6f6f6; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; height: auto; }
figcaption { font-style: italic; color: #555; }
details > summary { cursor: pointer; color: #555; }
.matrix { display: flex; gap: 1.5em; align-items: flex-start; }
.matrix table { font-size: 12px; margin: 0.3em 0; }
.matrix th, .matrix td { padding: 0 5px; line-height: 16px; }
.matrix th.name { writing-mode: vertical-rl; transform: rotate(180deg); text-align: left; padding: 3px 0; }
.legend span, .matrix td.same, .matrix td.convert, .matrix td.never, .matrix td.unsupported { text-align: center; }
.same { background: #b9e4b0; }
.convert { background: #ffe08a; }
.never { background: #f5b5b0; }
.unsupported { background: #f1f1f1; color: #999; }
.unknown { background: #fff; color: #777; }
.legend span { display: inline-block; padding: 0 6px; margin-right: 4px; }
"""


def page(blocks, drawn, title):
    """One HTML page: a contents list after the title; ``drawn`` maps figure names to SVG text."""
    ids = _ids(blocks)
    contents = (
        "<nav><details><summary>Contents</summary><ul>"
        + "".join(
            f'<li><a href="#{ids[i]}">{_inline(b.text)}</a></li>'
            for i, b in enumerate(blocks)
            if isinstance(b, Heading) and b.level == 2
        )
        + "</ul></details></nav>"
    )
    body, placed = [], set()  # placed: the figures drawn so far, each drawn once
    for i, block in enumerate(blocks):
        if isinstance(block, Heading):
            body.append(f'<h{block.level} id="{ids[i]}">{_inline(block.text)}</h{block.level}>')
            body += [contents] if block.level == 1 else []
        elif isinstance(block, Text):
            body.append(f"<p>{_inline(block.text)}</p>")
        elif isinstance(block, Items):
            body.append("<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in block.items) + "</ul>")
        elif isinstance(block, Table) and not block.on_page:
            body.append(f'<p><em>A table of {len(block.rows)} rows, in <a href="{MARKDOWN}">{MARKDOWN}</a>.</em></p>')
        elif isinstance(block, Table):
            head = "".join(f"<th>{_inline(c)}</th>" for c in block.columns)
            rows = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in block.rows)
            shown = f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
            folded = len(block.rows) > FOLD_ROWS
            body.append(f"<details><summary>{len(block.rows)} rows</summary>{shown}</details>" if folded else shown)
        elif isinstance(block, Matrix):
            body.append(_matrix(block))
        elif isinstance(block, Figure) and block.name in drawn and block.name in placed:
            body.append(f'<p><a href="#figure-{block.name}">Figure above</a>: {_inline(block.caption)}.</p>')
        elif isinstance(block, Figure) and block.name in drawn:
            placed.add(block.name)
            body.append(
                f'<figure id="figure-{block.name}"><img src="{_data_uri(drawn[block.name])}" loading="lazy" '
                f'decoding="async" alt="{html.escape(block.caption)}">'
                f"<figcaption>{_inline(block.caption)}</figcaption></figure>"
            )
        else:
            body.append(f"<p><em>Figure not drawn ({NO_FIGURES}): {_inline(block.caption)}.</em></p>")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _data_uri(svg):
    """An SVG as a data URI of its own text, percent-escaping only what an HTML attribute and a URI may not
    hold (base64 would add a third)."""
    return "data:image/svg+xml," + urllib.parse.quote(svg, safe=" /=:;,'()<>-._~!*@$+?[]{}|^`")


def _matrix(block):
    """A Matrix's legend, then its rows in ``panels`` tables side by side, each with every column's name
    (the first cells of a row, those without a tone, as names; the others' names set vertically)."""
    legend = "".join(f'<span class="{tone}">{html.escape(meaning)}</span>' for tone, meaning in block.legend.items())
    named = sum(1 for _, tone in block.rows[0] if not tone) if block.rows else 0
    head = "".join(
        f"<th>{_inline(c)}</th>" if i < named else f'<th class="name">{_inline(c)}</th>'
        for i, c in enumerate(block.columns)
    )
    size = -(-len(block.rows) // block.panels)
    panels = []
    for start in range(0, len(block.rows), size or 1):
        rows = "".join(
            "<tr>" + "".join(f'<td class="{tone}">{_inline(text)}</td>' for text, tone in row) + "</tr>"
            for row in block.rows[start : start + size]
        )
        panels.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    return f'<p class="legend">{legend}</p><div class="matrix">{"".join(panels)}</div>'


def _inline(text):
    """HTML of a line of text: escaped, with `code`, and **bold** and *italics* outside code."""
    out = []
    for part in re.split(r"(`[^`]+`)", text):
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            out.append(f"<code>{html.escape(part[1:-1], quote=False)}</code>")
        else:
            part = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", html.escape(part, quote=False))
            out.append(re.sub(r"\*([^*]+)\*", r"<em>\1</em>", part))
    return "".join(out)


def _ids(blocks):
    """{block index: id} for every heading: its text as a slug, numbered from the second of a kind."""
    ids, seen = {}, {}
    for i, block in enumerate(blocks):
        if isinstance(block, Heading):
            slug = re.sub(r"\W+", "-", block.text.lower()).strip("-")
            seen[slug] = seen.get(slug, 0) + 1
            ids[i] = slug if seen[slug] == 1 else f"{slug}-{seen[slug]}"
    return ids
