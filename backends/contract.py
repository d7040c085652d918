"""The adapter contract: what every ``backends/<framework>.py`` exports and hands back.

An adapter module defines ``EXPORTS`` in this order, ``train_sweep`` only where ``SWEEPABLE`` names
keys (``SWEEPING``), and no other public function (``tests/test_adapter_contract.py`` reads each
module's source, importing no framework, and checks it; ``backends/_template.py`` is the checked
starting point for a new framework):

    SWEEPABLE      the dotted case keys in which the cases of one ``train_sweep`` call may
                   differ (empty: one case per call); never a key the arrays depend on
    RATIO_TARGET   a benchmark target: the largest median time of ``train`` per case, as a
                   multiple of the NumPy oracle's on the same case (printed, never asserted)
    OWN_BEHAVIOURS {(optimizer, penalty kind or None for any): why no oracle rule can explain
                   that update, with the framework source line that makes it}: the fingerprint
                   shows it beside a run no rule explains (a run that is explained shows none)
    VARIANTS       {(optimizer, penalty kind): {variant: the call it makes}}: other ways the
                   framework's users call that API (``penalty.variant``), each probed on its own
    versions()                  -> dict[str, str]    the framework's package versions
    train(case, arrays)         -> Trajectory        parameters before and after every step
    train_sweep(cases, arrays)  -> list[Trajectory]  one per case, in order (where SWEEPABLE is not empty)
    train_code(case, arrays, statements) -> Trajectory
                                the case's model (its initial weights from ``arrays``) and loss,
                   trained by what ``statements`` (``Statement``s a user wrote, e.g. the lines
                   ``decaylens port`` prints) build: their ``call`` and ``code`` statements run once,
                   in order, in a namespace holding the modules and the model under the names the
                   adapter's own statements give them (a model they make anew gets the case's
                   initial weights); the optimizer (and schedule) they assign trains the model;
                   their ``penalty`` statements add to the loss at every step, as the adapter's own
                   penalty statements do; ``loss`` and ``note`` statements do not run. The case's
                   optimizer, schedule and penalty are not read.

followed by its private helpers ``HELPERS``, in this order, each building one part of the
training with the framework's own API (the model: ``case.layers``, dense layers of
``case.model.activation``; which parameters the penalty covers: ``case.penalty.decays(role)``
for each layer's ``roles``, by the framework's own idiom for sparing parameters) and writing
the native calls it makes into the recorder ``calls`` (``backends._calls.Calls``), its last
parameter. An adapter raises
``Unsupported(reason)`` for a case its framework cannot express; it never evaluates, plots or
writes files: the harness does.

Below them, the contract of the auditors (``backends/auditors/<framework>.py``, ``decaylens audit``):
``audit(objects, stepping) -> Audited`` steps a user's own model and optimizer as ``Stepping`` says and
describes each ``Parameter``, or raises ``NotAuditable``; the harness measures the rest.
"""

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

EXPORTS = (
    "SWEEPABLE", "RATIO_TARGET", "OWN_BEHAVIOURS", "VARIANTS", "versions", "train", "train_sweep", "train_code",
)  # fmt: skip
SWEEPING = ("train_sweep",)  # the exports an adapter defines only when its SWEEPABLE is not empty
HELPERS = ("_model", "_loss", "_penalty", "_optimizer", "_schedule")


@dataclass(frozen=True)
class Statement:
    """One statement of what an adapter ran, as a user writes it (``backends._calls.Calls`` records
    them): ``kind`` is ``call`` (a native call that ran), ``code`` (Python a user writes, run once),
    ``loss`` (the loss computed at every step), ``penalty`` (a penalty added to it at every step) or
    ``note`` (prose, not code); ``signatures``, of a call: {dotted path: ((parameter, default), ...)}
    of each function it calls, the default as literal text (``backends._calls.signature``)."""

    kind: str
    text: str
    signatures: dict = field(default_factory=dict, compare=False)

    KINDS = ("call", "code", "loss", "penalty", "note")


@dataclass(frozen=True, eq=False)
class Trajectory:
    """Parameters before training and after every optimizer step, in the case's dtype.

    ``w``: (steps + 1, weights), every weight of the model: each layer's W as (fan_in, fan_out),
    flattened row-major, input layer first (``case.layers``); the linear model's is its w, (steps
    + 1, dim). ``b``: the linear model's bias, (steps + 1,), or an MLP's every bias, input layer
    first, (steps + 1, biases). ``statements``: the native calls and code that produced them, as a
    user would write them (``Calls.statements``), including which parameters the penalty covers;
    ``hyperparameter_dtype``: the dtype the framework applies lr, momentum, β, ε and weight
    decay in, or computes the update in, when coarser than the case's (MXNet's operators take
    the hyperparameters as float32; Keras 3 off TensorFlow computes float64 in float32), else None.
    """

    w: np.ndarray
    b: np.ndarray
    statements: tuple
    hyperparameter_dtype: str | None = None

    @property
    def api(self):
        """The statements as one line of text, ``; ``-joined: how a result shows what ran."""
        return "; ".join(statement.text for statement in self.statements)


class Unsupported(Exception):
    """The framework cannot express this case; the message says why."""


class Adapter(Protocol):
    """The shape of an adapter module (``EXPORTS``; ``SweepingAdapter`` where SWEEPABLE is not empty)."""

    SWEEPABLE: tuple[str, ...]
    RATIO_TARGET: float
    OWN_BEHAVIOURS: dict[tuple[str, str | None], str]
    VARIANTS: dict[tuple[str, str], dict[str, str]]

    def versions(self) -> dict[str, str]: ...

    def train(self, case, arrays) -> Trajectory: ...

    def train_code(self, case, arrays, statements) -> Trajectory: ...


class SweepingAdapter(Adapter, Protocol):
    """An adapter whose one call trains cases that differ in its SWEEPABLE keys."""

    def train_sweep(self, cases, arrays) -> list[Trajectory]: ...


# The roles an audit reads from a user's model, by the module or layer type that owns each parameter
# (``backends/auditors/_roles.py``): positional holds learned positions and tokens (pos_embed, cls_token).
ROLES = ("kernel", "bias", "norm_scale", "norm_shift", "embedding", "positional", "other")


@dataclass(frozen=True)
class Parameter:
    """One parameter tensor of a user's model, as their code names it (``name``: its name or path).
    ``role``: one of ROLES; ``dtype``: its NumPy name (``bfloat16`` for bfloat16); ``groups``: the
    indices of the optimizer's parameter groups (or masks) that hold it, empty where the optimizer
    never sees it; ``trainable``: whether training gives it a gradient; ``nominal``: the
    hyperparameters the optimizer states for it where they can be read ({"lr": ..., "weight_decay":
    ...}), the lr as set before the first step."""

    name: str
    role: str
    shape: tuple
    dtype: str
    groups: tuple = ()
    trainable: bool = True
    nominal: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True, eq=False)
class Stepping:
    """How an auditor steps a user's optimizer. For each of ``runs``, a pair (weight scale, gradient
    scale): a fresh copy of the optimizer's state; every parameter i set to weight scale ·
    ``weights(i)``; then ``steps`` optimizer steps, each with the gradient gradient scale ·
    ``gradient(i)`` on every trainable parameter (zeros at gradient scale 0: a gradient of zero, not
    none); the values at the flat indices ``samples(i)`` recorded before the first step and after each.
    ``weights``, ``gradient`` take (i, shape) and give a float32 array of that shape."""

    runs: tuple
    steps: int
    weights: object
    gradient: object
    samples: object


@dataclass(frozen=True, eq=False)
class Audited:
    """What an auditor hands back. ``values[i]``: parameter i's sampled values, float64, (runs, steps +
    1, samples); ``lrs``: the lr each of the ``steps`` steps used for each parameter's group, where the
    optimizer states it, (parameters, steps) with NaN where not; ``optimizer``: the optimizer as the
    user's code built it (its class or function); ``scheduler``: the schedule's, or None."""

    parameters: tuple
    values: list
    lrs: np.ndarray
    optimizer: str
    scheduler: str | None = None


class NotAuditable(ValueError):
    """The objects a user's function returned are not what the backend's auditor takes; the
    message names what it takes."""
