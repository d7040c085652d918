"""A report as a list of blocks, written once as Markdown and once as one HTML page.

Blocks are headings, paragraphs, bullet lists, tables and figures (``harness.figures``).
Text marks `code`, **bold** and *italics* as Markdown does. The page is self-contained: figures
inline as SVG data URIs, the style inline, no script, nothing fetched.
"""

import base64
import html
import re
from dataclasses import dataclass

from harness.figures import Figure

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
    columns: tuple
    rows: tuple  # tuples of cell texts


def table(columns, rows):
    """A Table of rows given as tuples, or as dicts keyed by the columns."""
    columns = tuple(columns)
    return Table(
        columns, tuple(tuple(map(str, (row[c] for c in columns) if isinstance(row, dict) else row)) for row in rows)
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
        elif drawn is None or block.name in drawn:
            out += [f"![{block.caption}](figures/{block.name}.svg)", f"*Figure: {block.caption}.*"]
        else:
            out += [f"*Figure not drawn ({NO_FIGURES}): {block.caption}.*"]
    return "\n\n".join(out) + "\n"


def _row(cells):
    """A Markdown table row, with the ``|`` in a cell escaped."""
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 13px; display: block; overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
code { font-size: 12px; background: #f6f6f6; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; height: auto; }
figcaption { font-style: italic; color: #555; }
"""


def page(blocks, drawn, title):
    """One HTML page: a contents list after the title; ``drawn`` maps figure names to SVG text."""
    ids = _ids(blocks)
    contents = (
        "<nav><ul>"
        + "".join(
            f'<li><a href="#{ids[i]}">{_inline(b.text)}</a></li>'
            for i, b in enumerate(blocks)
            if isinstance(b, Heading) and b.level == 2
        )
        + "</ul></nav>"
    )
    body = []
    for i, block in enumerate(blocks):
        if isinstance(block, Heading):
            body.append(f'<h{block.level} id="{ids[i]}">{_inline(block.text)}</h{block.level}>')
            body += [contents] if block.level == 1 else []
        elif isinstance(block, Text):
            body.append(f"<p>{_inline(block.text)}</p>")
        elif isinstance(block, Items):
            body.append("<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in block.items) + "</ul>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{_inline(c)}</th>" for c in block.columns)
            rows = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in block.rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(block, Figure) and block.name in drawn:
            data = base64.b64encode(drawn[block.name].encode()).decode()
            body.append(
                f'<figure><img src="data:image/svg+xml;base64,{data}" alt="{html.escape(block.caption)}">'
                f"<figcaption>{_inline(block.caption)}</figcaption></figure>"
            )
        else:
            body.append(f"<p><em>Figure not drawn ({NO_FIGURES}): {_inline(block.caption)}.</em></p>")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


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
