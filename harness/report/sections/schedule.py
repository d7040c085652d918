"""The decay each framework applies at each step under a learning-rate schedule, and ‖w‖ over the run."""

import functools

from harness import data, oracle
from harness.document import Heading, Text, table
from harness.figures import Panel, Series
from harness.report.context import figure, pivot, present
from harness.report.needs import Scheduled

TITLE = "Weight decay under a learning-rate schedule"
NEEDS = (Scheduled(),)


def build(ctx, spec_runs):
    runs = [r for r in spec_runs.runs if r.trained]
    names = present(runs)
    out = [
        Heading(3, TITLE),
        Text(
            "Per step, the share of w each framework's decay takes, ⟨w̃ₜ − wₜ, wₜ₋₁⟩/‖wₜ₋₁‖² (w̃ₜ the same step "
            "without the decay), computed by the oracle along the rule that explains the run (the rule follows the "
            "run step by step within its tolerance, so this is the run's own decay); for a decay beside the step it "
            "is the decay's coefficient, e.g. lrₜ·λ for one × the scheduled lr. Beside it, ‖w‖ after every step, "
            "as stored. A run no rule explains has no decay curve."
        ),
        table(("case", *names), pivot(spec_runs.runs, lambda r: (r.label,), _rule, names)),
    ]
    labels = dict.fromkeys(r.label for r in runs if r.case.schedule.varies)
    for index, label in enumerate(labels, start=1):
        mine = [r for r in runs if r.label == label]
        out.append(
            figure(
                f"{spec_runs.slug}-schedule-{index}",
                f"{label}: the decay per step and ‖w‖",
                (
                    Panel("decay per step", "step", "share of w", tuple(_decay(r) for r in mine), yscale="linear"),
                    Panel("‖w‖", "step", "‖w‖₂", tuple(_norms(r) for r in mine)),
                ),
            )
        )
    return out


def _rule(run):
    if not run.ok or run.result.explained is None:
        return run.rule
    return f"{run.result.explained.form.name}; final ‖w‖ {run.final('w_norm')}"


def _decay(run):
    """The run's decay share per step through its explaining rule (no points when none explains it)."""
    explained = run.result.explained if run.ok else None
    if explained is None or not explained.matched:
        return Series(run.backend, run.backend, (), ())
    shares = _decay_per_step(explained.rule, run.case)
    return Series(run.backend, run.backend, tuple(range(1, len(shares) + 1)), tuple(shares.tolist()))


@functools.cache
def _decay_per_step(rule, case):
    """oracle.decay_per_step on the case's arrays, once for the backends whose runs one rule explains."""
    return oracle.decay_per_step(rule, case, data.make(case))


def _norms(run):
    norms = run.result.steps.w_norm
    return Series(run.backend, run.backend, tuple(range(len(norms))), tuple(norms))
