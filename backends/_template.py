"""<Framework> adapter: <its model class> trained with <its optimizer API> as a <framework> user would.

The template of an adapter: copy it to ``backends/<framework>.py``, register the backend in
``backends._MODULES``, give it an extra in pyproject.toml and a tox env in tox.ini, and fill
in every function with the framework's own API, after reading the source of what it wraps.
The nominal λ goes unchanged into the API a user passes it to; every framework default the
adapter overrides gets a comment; a case the framework cannot express raises
``Unsupported(reason)``. tests/test_adapter_contract.py checks this file as it checks every
adapter: the same exports in the same order, the same helpers, the recorder last.
"""

from backends._calls import Calls
from backends.contract import Trajectory, Unsupported  # noqa: F401 (Trajectory: what train returns)

SWEEPABLE = ()  # one case per call; list keys such as "optimizer.lr" only if one call can vary them (and define
# train_sweep(cases, arrays) after train: the trajectories of cases that differ only there, in one call)
RATIO_TARGET = 10.0
OWN_BEHAVIOURS = {}
VARIANTS = {}


def versions():
    """The installed framework's package versions: ``{package: version}``."""
    raise NotImplementedError("return {'<package>': <framework>.__version__}")


def train(case, arrays):
    """``case`` trained on ``arrays``: the parameters before and after every optimizer step."""
    calls = Calls()  # roots: the modules the recorded calls start from, e.g. Calls(torch=torch)
    model = _model(case, arrays, calls)
    loss_fn = _loss(case, calls)
    penalty = _penalty(case, model, calls)
    optimizer = _optimizer(case, model, calls)
    schedule = _schedule(case, optimizer, calls)
    raise NotImplementedError(
        f"train {model}, {loss_fn} + {penalty} with {optimizer} (lr by {schedule}) over arrays.batch_order(), "
        f"keeping the weights after every step, and return Trajectory(w, b, statements={calls.statements!r})"
    )


def train_code(case, arrays, statements):
    """``case``'s model and loss trained by the optimizer that ``statements`` build (their call and code
    run once, in a namespace holding the framework's modules and ``model``), their penalties added to
    the loss at every step (``contract.EXPORTS``)."""
    raise NotImplementedError("exec each call and code statement, then train the model as train does")


def _model(case, arrays, calls):
    """The framework's dense layers of ``case.layers`` (one for the linear model), ``case.model.activation``
    between them: their own seeded init (``native``), or ``arrays.w0``, ``arrays.b0`` (``Trajectory``'s layout)."""
    raise NotImplementedError("model = calls.let('model', '<framework>.<Linear>', ...)")


def _loss(case, calls):
    """(pred, y) -> mean ½e² (``half_mse``), mean e² (``mse``), or the framework's own regression loss (``native``)."""
    raise NotImplementedError("calls.loss('loss = ...') beside the function it describes")


def _penalty(case, model, calls):
    """The penalty added to the loss: (λ/2)·Σp² (``l2_loss``), λ·Σ|p| (``l1_loss``), the layer
    regularizers' losses (``regularizer``); None for any other kind."""
    if case.penalty.kind == "regularizer":
        raise Unsupported("<framework> has no layer regularizer API; write the penalty into the loss (l2_loss)")
    raise NotImplementedError("calls.penalty('loss = loss + ...') beside the function it describes")


def _optimizer(case, model, calls):
    """The optimizer with λ as its own ``weight_decay`` argument (or its decoupled form), sparing each
    parameter whose role ``case.penalty.decays`` is False the framework's way (None: its default)."""
    raise NotImplementedError("optimizer = calls.let('optimizer', '<framework>.<optimizers>.<Name>', ...)")


def _schedule(case, optimizer, calls):
    """The learning-rate schedule (``case.schedule``) through the framework's own schedule API, stepped
    per optimizer step; None for a constant lr. Where the schedule is an argument of the optimizer,
    ``_optimizer`` calls this with what it needs instead of ``optimizer``."""
    if case.schedule.varies:
        raise Unsupported("<framework> has no <kind> schedule; ...")
    return None
