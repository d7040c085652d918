"""What a section needs from a spec's cases (and their runs) to have something to show.

A per-spec section declares ``NEEDS``, a tuple of these; the report renders it for every spec
that meets them all, built-in or the user's own, and names the needs a spec does not meet.
"""

import json
from dataclasses import dataclass

from harness.report.context import by_case


@dataclass(frozen=True)
class Sweeps:
    """The spec's ``[sweep]`` takes the dotted case key ``key`` over at least ``count`` values."""

    key: str
    count: int = 2

    def met(self, spec_runs):
        return len({json.dumps(run.point[self.key]) for run in spec_runs.runs if self.key in run.point}) >= self.count

    def __str__(self):
        return f"a sweep over `{self.key}` of at least {self.count} values"


@dataclass(frozen=True)
class Factors:
    """The spec has ``[factors]``: each backend's overrides also run one factor at a time."""

    def met(self, spec_runs):
        return bool(spec_runs.spec.factors)

    def __str__(self):
        return "`[factors]` grouping the `[overrides.<backend>]` keys"


@dataclass(frozen=True)
class Shared:
    """At least ``count`` backends trained the same case (the same sweep point)."""

    count: int = 2

    def met(self, spec_runs):
        return any(
            len({r.backend for r in runs if r.trained}) >= self.count for runs in by_case(spec_runs.runs).values()
        )

    def __str__(self):
        return f"a case trained by at least {self.count} backends"


@dataclass(frozen=True)
class Trained:
    """At least one of the spec's runs trained (ok or diverged)."""

    def met(self, spec_runs):
        return any(run.trained for run in spec_runs.runs)

    def __str__(self):
        return "a trained run"


@dataclass(frozen=True)
class Scheduled:
    """At least one of the spec's runs trained with a learning rate that varies (``[schedule]``)."""

    def met(self, spec_runs):
        return any(run.trained and run.case.schedule.varies for run in spec_runs.runs)

    def __str__(self):
        return "a trained run with a varying `[schedule]`"


@dataclass(frozen=True)
class Layered:
    """At least one of the spec's runs trained a model with hidden layers (``model.kind = "mlp"``)."""

    def met(self, spec_runs):
        return any(run.trained and run.case.model.kind == "mlp" for run in spec_runs.runs)

    def __str__(self):
        return 'a trained run of `model.kind = "mlp"`'
