"""The answer at a glance: per optimizer and framework API, one coloured cell per framework, read off
the summary's verdicts; the summary beside it gives each cell's reason."""

import itertools

import backends
from harness import verdict
from harness.case import FRAMEWORK_KINDS, OPTIMIZERS
from harness.document import Heading, Matrix, Text

# The weight-decay APIs; lr_decay, the argument users mistake for one, is in the summary only.
GLANCED = [kind for kind in FRAMEWORK_KINDS if kind != "lr_decay"]
TITLE = "At a glance: does weight_decay train like an L2 penalty in the loss?"
LEGEND = {
    "same": "= the same as (λ/2)‖w‖² in the loss",
    "convert": "×k the same at λ' = k·λ",
    "never": "≠ no λ' is",
    "unsupported": "– no such API",
    "unknown": "? no rule explains it",
}


def cell(found):
    """A Verdict as a (text, tone) cell of the matrix (LEGEND)."""
    if found is None:
        return "", "unknown"
    if found.outcome == "same":
        return "=", "same"
    if found.outcome == "convert":
        return f"×{found.factor:g}", "convert"
    if found.outcome == "never":
        return "≠", "never"
    if found.outcome == "unsupported":
        return "–", "unsupported"
    return "?", "unknown"


def build(ctx):
    out = [Heading(2, TITLE)]
    if not ctx.fingerprints:
        return out + [
            Text("No fingerprint yet: run `python3 -m tox -m compare -p auto -o`, or `decaylens probe` in each env.")
        ]
    names = [name for name in backends.NAMES if any(f.backend == name for f in ctx.fingerprints)]
    found = verdict.verdicts(ctx.fingerprints)
    rows = []
    for optimizer, kind in itertools.product(OPTIMIZERS, GLANCED):
        cells = [found.get((name, optimizer, kind)) for name in names]
        if any(c is not None and c.outcome != "unsupported" for c in cells):
            rows.append(((optimizer, ""), (kind, ""), *map(cell, cells)))
    text = (
        "λ given to each framework's API (bias spared) against (λ/2)‖w‖² written into the loss at the same λ, "
        "from the probes; the summary below gives each cell's reason (and lr_decay's), `decaylens port` the call."
    )
    return out + [Text(text), Matrix(("optimizer", "API", *names), tuple(rows), LEGEND)]
