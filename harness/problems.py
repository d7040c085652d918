"""Why a case makes no sense: named checks, each a function of the Case that returns its problem in
one line (what is wrong and what is allowed), or None; ``problem`` is the first one found."""

import json

from harness.case import FRAMEWORK_KINDS, MAX_ARRAY_VALUES, OPTIMIZER_KINDS, PENALTY_KINDS, ROLES, Model


def penalty_api(case):
    """The penalty kind, variant and λ against each other and the optimizer."""
    penalty, optimizer = case.penalty, case.optimizer
    if penalty.kind == "adamw" and optimizer.name != "adam":
        allowed = ", ".join(k for k in PENALTY_KINDS if k != "adamw")
        return (
            f'penalty.kind = "adamw" needs optimizer.name = "adam" (got "{optimizer.name}"); '
            f'allowed with "{optimizer.name}": {allowed}'
        )
    if penalty.omit_strength and not (penalty.in_optimizer and penalty.strength == 0):
        return (
            f'penalty.omit_strength = true passes no λ to the optimizer (got penalty.kind = "{penalty.kind}", '
            f"strength = {penalty.strength:g}); allowed: with an optimizer's argument "
            f"({', '.join(OPTIMIZER_KINDS)}) and strength 0"
        )
    if penalty.variant and not penalty.in_framework:
        return (
            f'penalty.variant = "{penalty.variant}" names a way to call a framework\'s own API (got '
            f'penalty.kind = "{penalty.kind}"); allowed: with {", ".join(FRAMEWORK_KINDS)}'
        )
    if penalty.kind == "none" and penalty.strength != 0:
        return (
            f'penalty.strength = {penalty.strength} has no effect with penalty.kind = "none"; '
            "allowed: 0, or another penalty kind"
        )
    return None


def model_shape(case):
    """The MLP's keys only on an MLP, and at least one hidden layer there."""
    model, defaults = case.model, Model()
    if model.kind == "linear" and (model.hidden, model.activation) != (defaults.hidden, defaults.activation):
        return (
            "model.hidden and model.activation shape an MLP, not the linear model; "
            'allowed: model.kind = "mlp", or leave them out'
        )
    if model.kind == "mlp" and not model.hidden:
        return 'model.hidden = [] leaves no hidden layer; allowed: at least one width, or model.kind = "linear"'
    return None


def sparing(case):
    """The roles ``penalty.spare`` names: the model's, leaving a weight decayed, each one the penalty would decay."""
    penalty = case.penalty
    roles = {role for layer in case.layers for role in layer.roles}
    if penalty.spare and (missing := [role for role in penalty.spare if role not in roles]):
        return (
            f"penalty.spare names {', '.join(missing)}, which the {case.model.kind} model has not; "
            f"allowed: {', '.join(sorted(roles, key=ROLES.index))}"
        )
    weights = {role for role in roles if role.endswith("_weight")}
    if weights <= set(penalty.spare):
        return (
            f"penalty.spare = {list(penalty.spare)} leaves no weight to decay; "
            f"allowed: a list that keeps {' or '.join(sorted(weights, key=ROLES.index))} decayed"
        )
    spared_biases = penalty.spares_bias and any(role.endswith("_bias") for role in penalty.spare)
    if penalty.spare and (penalty.kind == "none" or spared_biases):
        return (
            f'penalty.spare = {list(penalty.spare)} spares nothing more (penalty.kind = "{penalty.kind}", '
            f"decay_bias = {json.dumps(penalty.decay_bias)}); allowed: roles the penalty would decay"
        )
    if penalty.bias_by_default and penalty.in_loss:
        return (
            f'penalty.decay_bias = "default" is the framework\'s own bias handling, which '
            f'penalty.kind = "{penalty.kind}" (written into the loss) has not; allowed: true, false'
        )
    return None


def schedule_and_batches(case):
    """A warmup inside the run, and batches that divide the training set."""
    schedule, data, train = case.schedule, case.data, case.train
    if schedule.kind == "warmup_cosine" and not 0 < schedule.warmup < case.steps:
        return (
            f'schedule.warmup = {schedule.warmup} with schedule.kind = "warmup_cosine"; '
            f'allowed: 1 to {case.steps - 1} (the run\'s steps less one), or kind = "cosine" for no warmup'
        )
    if train.batch_size > data.n_train or data.n_train % train.batch_size:
        return (
            f"train.batch_size = {train.batch_size} must divide data.n_train = "
            f"{data.n_train}; allowed: a divisor of {data.n_train}"
        )
    return None


def size(case):
    """The data, the batches of every step and the trajectory each within MAX_ARRAY_VALUES."""
    data = case.data
    values = (data.n_train + data.n_valid + data.n_test) * data.dim
    if values > MAX_ARRAY_VALUES:
        return f"data.dim × (n_train + n_valid + n_test) = {values}; allowed: at most {MAX_ARRAY_VALUES} values"
    batches = case.train.epochs * data.n_train * data.dim
    if batches > MAX_ARRAY_VALUES:
        return (
            f"train.epochs × data.n_train × data.dim = {batches} (the batches of every step); "
            f"allowed: at most {MAX_ARRAY_VALUES}"
        )
    trajectory = (case.steps + 1) * case.parameters
    if trajectory > MAX_ARRAY_VALUES:
        return (
            f"the trajectory holds (steps + 1) × parameters = {trajectory} values; "
            f"allowed: at most {MAX_ARRAY_VALUES} (fewer epochs, a smaller data.dim or model.hidden)"
        )
    return None


CHECKS = (penalty_api, model_shape, sparing, schedule_and_batches, size)


def problem(case):
    """Why ``case`` makes no sense (the first check's problem), or None."""
    return next((found for check in CHECKS if (found := check(case)) is not None), None)
