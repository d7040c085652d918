"""Audits of users' own setups stored beside the results (``decaylens audit --json
<results>/audits/NAME.json``): per audit, the counts and flags, a row per tensor, and the decay per
step of every tensor by role."""

from backends.contract import ROLES
from harness.audit import text
from harness.audit.findings import FLAGS
from harness.document import Heading, Items, Table, Text
from harness.figures import Panel, Series
from harness.report.context import AUDITS, figure

TITLE = "Audits of your own setups"


def build(ctx):
    out = [Heading(2, TITLE)]
    if not ctx.audits:
        return out + [
            Text(
                f"*No audits stored: `decaylens audit --backend B FILE.py:FUNCTION --json {ctx.results_dir}/"
                f"{AUDITS}/NAME.json` audits yours.*"
            )  # fmt: skip
        ]
    for number, audit in enumerate(ctx.audits, start=1):
        out += _audit(audit, number)
    return out


def _audit(audit, number):
    roles, decayed, flags = audit.counts()
    scheduler = f" with `{audit.scheduler}`" if audit.scheduler else ""
    lines = [f"{role}: {decayed[role]} of {n} decayed" for role, n in roles.items()]
    lines += [f"**{flag}** ({n}): {FLAGS[flag]}: " + ", ".join(
        f"`{f.name}`" for f in audit.findings if flag in f.flags) for flag, n in flags.items()]  # fmt: skip
    rows = tuple(
        (f"`{f.name}`", f.role, f.dtype, text.PLACEMENT_NAMES[f.placement], text.factor(f.factor),
         text.number(f.lambda_eff), text.number(f.tau), ", ".join(f.flags))
        for f in audit.findings
    )  # fmt: skip
    return [
        Heading(3, f"`{audit.target}` on {audit.backend}"),
        Text(f"`{audit.optimizer}`{scheduler}, " + ", ".join(f"{k} {v}" for k, v in audit.versions.items())),
        Items(tuple(lines)),
        Table(("parameter", "role", "dtype", "decay", "factor a step", "λ_eff", "τ (steps)", "flags"), rows),
        figure(f"audit-{number}", f"{audit.target}: each tensor's decay a step, 1 − factor, by role", (_panel(audit),)),
    ]


def _panel(audit):
    """1 − factor of each tensor against its place in the model, one line per role (a decay of 0 is not drawn)."""
    series = []
    for shade, role in enumerate(ROLES):
        points = [(i, f.decay) for i, f in enumerate(audit.findings, start=1) if f.role == role and f.decays]
        if points:
            x, y = zip(*points, strict=True)
            series.append(Series(role, "", x, y, shade=shade))
    return Panel(audit.target, "tensor, in the model's order", "decay a step, 1 − factor", tuple(series), "linear")
