"""What an adapter hands back to the harness."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Trajectory:
    """Parameters before training and after every optimizer step.

    ``w``: (steps + 1, dim), ``b``: (steps + 1,), in the case's dtype; ``api``: the
    exact native calls that produced them, as a user would write them.
    """

    w: np.ndarray
    b: np.ndarray
    api: str


class Unsupported(Exception):
    """The framework cannot express this case; the message says why."""
