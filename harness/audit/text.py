"""An audit in words for the terminal: the counts by role and flag first, then a row per tensor."""

from harness.audit.findings import FLAGS

PLACEMENT_NAMES = {
    "decoupled_lr": "decoupled × lr", "decoupled": "decoupled, no lr", "coupled": "coupled",
    "coupled_or_decoupled_lr": "coupled ≡ decoupled × lr", "decoupled_untold": "decoupled (λ unread)",
    "none": "not decayed", "frozen": "never updated", "nonfinite": "NaN or inf",
}  # fmt: skip


def summary(audit):
    """The counts: tensors and decayed tensors by role, then each flag raised with its tensors' names."""
    roles, decayed, flags = audit.counts()
    lines = [
        f"{audit.target} on {audit.backend}: {audit.optimizer}"
        + (f" with {audit.scheduler}" if audit.scheduler else "")
    ]
    lines.append("roles: " + ", ".join(f"{role} {decayed[role]}/{n} decayed" for role, n in roles.items()))
    if not flags:
        lines.append("flags: none")
    for flag, n in flags.items():
        names = [f.name for f in audit.findings if flag in f.flags]
        shown = ", ".join(names[:6]) + (f", ... ({len(names) - 6} more)" if len(names) > 6 else "")
        lines.append(f"FLAG {flag} ({n}): {FLAGS[flag]}: {shown}")
    return "\n".join(lines)


def table(audit):
    """A row per tensor: name, role, dtype, where λ enters, factor per step, λ_eff, τ, the lrs, flags."""
    rows = [("parameter", "role", "dtype", "decay", "factor/step", "λ_eff", "τ (steps)", "lr by step", "flags")]
    for f in audit.findings:
        rows.append((
            f.name, f.role, f.dtype, PLACEMENT_NAMES[f.placement], factor(f.factor), number(f.lambda_eff),
            number(f.tau), lrs(f), ", ".join(f.flags),
        ))  # fmt: skip
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def lrs(finding):
    """The lr of each audited step as the optimizer states it, else the lr measured from the first step."""
    stated = [lr for lr in finding.lrs if lr is not None]
    return " → ".join(number(lr) for lr in stated) if stated else number(finding.lr)


def factor(value):
    """A factor per step to 9 digits, where 1 − 1e-7 still shows."""
    return "-" if value is None else f"{value:.9g}"


def number(value):
    return "-" if value is None else f"{value:.3g}"


def render(audit):
    return f"{summary(audit)}\n\n{table(audit)}"
