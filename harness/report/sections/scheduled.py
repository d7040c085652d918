"""What each API's decay follows under a learning-rate schedule, from the schedule probes: the
scheduled lr, the base lr, the schedule's multiplier η or nothing; the conversions under a
schedule; and the paper's λ in each framework's decoupled Adam."""

from harness import equivalents, verdict
from harness.document import Heading, Text, table
from harness.fingerprint import ScheduleKey, api
from harness.probes import SCHEDULE_PROBES
from harness.report.sections.semantics import STEP, conversion

TITLE = "Under a learning-rate schedule"
WARMUP = next(kind for kind in SCHEDULE_PROBES if kind != STEP)  # a warmup from 0, then a cosine


def build(ctx):
    probed = [f for f in ctx.fingerprints if f.schedules]
    if not probed:
        return []
    names = [f.backend for f in probed]
    keys = list(dict.fromkeys((key.optimizer, key.kind, key.variant) for f in probed for key in f.schedules))
    rows = []
    for optimizer, kind, variant in keys:
        cells = []
        for f in probed:
            step, warmup = (f.schedules.get(ScheduleKey(optimizer, kind, s, variant)) for s in (STEP, WARMUP))
            cells.append(_cell(step, warmup))
        rows.append((optimizer, api(ScheduleKey(optimizer, kind, STEP, variant)), *cells))
    out = [
        Heading(2, TITLE),
        Text(
            "What the decay of each optimizer API is multiplied by once the learning rate follows a schedule, from "
            "probes whose lr changes within their six steps (halved every second step; and a warmup from 0 over "
            "two steps, then a cosine to 0): the **scheduled lr** α·ηₜ, the **base lr** α, the **multiplier η**ₜ "
            "(Loshchilov & Hutter's AdamW) or **nothing**; a coupled decay follows the scheduled lr through the "
            "step. Where the warmup probe finds another rule, or the framework's schedule counts from 1 (its first "
            "step already reads η₁), the cell says so."
        ),
        table(("optimizer", "API", *names), rows),
    ]
    paper = equivalents.from_paper(probed)
    if paper:
        out += [
            Text(
                "The paper's λ (AdamW, Algorithm 2: w −= ηₜ·λ·w beside the step) as each framework's decoupled "
                "Adam argument, lr being the base learning rate:"
            ),
            table(("from the paper's λ", *paper), [("adam, decoupled", *(conversion(c) for c in paper.values()))]),
        ]
    constant = equivalents.conversions(probed)
    changed = {
        key: found
        for key, found in equivalents.conversions(probed, schedule=STEP).items()
        if any(_changed(constant.get(key, {}).get(t), found[t]) for t in found)
    }
    if changed:
        out += [
            Text("The conversions a schedule breaks or changes: for these APIs, a setting of another framework "
                 "that reproduces the run step by step at a constant lr (the table of conversions above) no longer "
                 "does under a schedule, or does with another λ'. Each cell is the setting under the same schedule:"),
            table(
                ("backend", "optimizer", "API", *names),
                [
                    (source, optimizer, kind, *(conversion(found[t]) if t in found else "—" for t in names))
                    for (source, optimizer, kind), found in changed.items()
                ],
            ),
        ]  # fmt: skip
    return out


def _cell(step, warmup):
    """What the decay follows (the step probe), what the warmup probe finds otherwise, and each
    probe's schedule that counts from 1."""
    if step is None or not step.matched:
        return "—" if step is None else verdict.follows(step)
    text = verdict.follows(step)
    if warmup is not None and (not warmup.matched or warmup.explained.form.placement != step.explained.form.placement):
        text += f"; with warmup: {verdict.follows(warmup)}"
    ahead = [kind for kind, p in ((STEP, step), (WARMUP, warmup)) if _counts_from_one(p)]
    return text + (f"; {' and '.join(ahead)} counted from 1" if ahead else "")


def _counts_from_one(probe):
    """The probe's schedule gave its first step η₁ (as the run tells it)."""
    explained = probe.explained if probe is not None and probe.matched else None
    return bool(explained) and "schedule_offset" not in explained.ambiguous and explained.rule.schedule_offset == 1


def _changed(constant, scheduled):
    """Whether a constant-lr Conversion no longer holds under the schedule: none is found there, or the
    same API takes another λ'. (An API the schedule probes do not cover, as ``regularizer``, says nothing.)"""
    if constant is None or constant.kind is None:
        return False
    return scheduled.kind is None or (scheduled.kind == constant.kind and scheduled != constant)
