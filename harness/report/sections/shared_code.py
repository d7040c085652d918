"""One adapter's user code on several backends (``backends.SHARED_CODE``: Keras on TensorFlow, JAX and
PyTorch, and Keras 2): per optimizer and API, the rule each backend's probe follows; and per optimizer
and penalty kind, how far their float64 runs of the same case lie apart, step by step."""

import itertools

import backends
from harness import diff, verdict
from harness.case import FRAMEWORK_KINDS, OPTIMIZERS, PENALTY_KINDS
from harness.document import Heading, Text, table
from harness.fingerprint import ProbeKey, api

TITLE = "The same code on several backends"


def build(ctx):
    out = []
    for module, names in backends.SHARED_CODE.items():
        prints = [f for f in ctx.fingerprints if f.backend in names]
        if len(prints) < 2:
            continue
        present = [f.backend for f in prints]
        rows = _rules(prints)
        apart = [f"{row[0]} {row[1]}" for row in rows if row[2] != "yes"]
        out += [
            Heading(3, f"`{module}` on {', '.join(present)}"),
            Text(
                f"The same user code, run by {len(present)} backends ("
                + "; ".join(f"{f.backend}: " + ", ".join(f"{k} {v}" for k, v in f.versions.items()) for f in prints)
                + f"). Of the {len(rows)} APIs probed, {len(rows) - len(apart)} follow one rule on every backend"
                + (f"; these do not: {', '.join(apart)}." if apart else ".")
                + f" The rule each backend's probe follows, against {present[0]}'s (penalty probes with the bias "
                "spared, then the role probes on an MLP):"
            ),
            table(("optimizer", "API", "one rule", *present), rows),
            *_gaps(ctx, present),
        ]
    return [Heading(2, TITLE), *out] if out else []


def _rules(prints):
    """(optimizer, API, "yes" or "**no**", the first backend's outcome, then "same" or each other's)."""
    probed = [
        (optimizer, kind, [f.penalties.get(ProbeKey(optimizer, kind, False)) for f in prints])
        for optimizer, kind in itertools.product(OPTIMIZERS, ("l2_loss", *FRAMEWORK_KINDS))
    ]
    probed += [
        (key.optimizer, f"{api(key)}, {key.sparing}", [f.roles.get(key) for f in prints])
        for key in dict.fromkeys(key for f in prints for key in f.roles)
    ]
    rows = []
    for optimizer, label, probes in probed:
        if not any(p and p.status == "ok" for p in probes):
            continue
        first = probes[0]
        cells = [first.outcome() if first else "not probed"]
        for probe in probes[1:]:
            alike = probe and first and probe.status == first.status == "ok"
            same = alike and _same(first.explained, probe.explained)
            cells.append("same" if same else probe.outcome() if probe else "not probed")
        rows.append((optimizer, label, "yes" if all(c == "same" for c in cells[1:]) else "**no**", *cells))
    return rows


def _same(a, b):
    """The same rule (``verdict.same_rule``) on the same roles: a role probe's idiom may spare others."""
    return verdict.same_rule(a, b) and a.rule.spared == b.rule.spared


def _gaps(ctx, present):
    """``diff.backend_gaps`` of the first backend against the others, as a table."""
    first, others = present[0], present[1:]
    worst = {key: {b: (g.largest, g.cases, g.parted) for b, g in by.items()}
             for key, by in diff.backend_gaps(ctx.results, first, others).items()}  # fmt: skip
    rows = [
        (
            optimizer,
            kind,
            *(
                f"{cells[b][0]:.2g} ({cells[b][1]} cases, {cells[b][2]} part)" if b in cells else "no runs"
                for b in others
            ),
        )
        for (optimizer, kind), cells in sorted(
            worst.items(), key=lambda item: (OPTIMIZERS.index(item[0][0]), PENALTY_KINDS.index(item[0][1]))
        )
    ]
    lead = Text(
        f"Then every float64 run in the results: per optimizer and penalty kind, over every case both "
        f"{first} and the backend trained, the largest relative gap in ‖w‖ at any step, "
        f"max |‖wₐ‖ − ‖w_b‖| / max(‖wₐ‖, ‖w_b‖) against {first}, and how many of those cases part beyond the "
        "looser run's tolerance (float32's where a run computes or applies its hyperparameters in float32; a run "
        "cut short by non-finite weights parts where it stops)."
    )
    if not rows:
        return [Text(f"No float64 case was trained by {first} and another of these backends.")]
    return [lead, table(("optimizer", "penalty", *(f"vs {b}" for b in others)), rows)]
