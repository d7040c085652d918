"""What an adapter hands back to the harness."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Trajectory:
    """Parameters before training and after every optimizer step.

    ``w``: (steps + 1, dim), ``b``: (steps + 1,), in the case's dtype; ``api``: the
    exact native calls that produced them, as a user would write them;
    ``hyperparameter_dtype``: the dtype the framework applies lr, momentum, β, ε and weight
    decay in, when coarser than the case's (MXNet's operators take them as float32), else None.
    """

    w: np.ndarray
    b: np.ndarray
    api: str
    hyperparameter_dtype: str | None = None


class Unsupported(Exception):
    """The framework cannot express this case; the message says why."""
