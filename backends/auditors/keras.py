"""The Keras auditor (Keras 3 on TensorFlow, JAX or PyTorch; tf-keras): a user's ``(model, optimizer)``, stepped
eagerly by ``apply_gradients`` of the user's own optimizer object. For each run the attributes of the optimizer (and
of any it wraps) are set aside untouched and a copy of them goes in their place, unbuilt, so that its first step
builds fresh slots as a first training step does; afterwards the attributes go back (the very objects, never
mutated), as do the values of the optimizer's own variables (its step count, its learning rate) and of the model's
parameters."""

import math

import numpy as np

from backends import keras as adapter
from backends.auditors import _objects, _roles
from backends.contract import Audited, NotAuditable, Parameter

keras = adapter.keras
TAKES = f"({adapter.KERAS}.Model (or any {adapter.KERAS}.layers.Layer), {adapter.KERAS}.optimizers.Optimizer)"
_cast = keras.backend.cast if adapter.KERAS2 else keras.ops.cast
_numpy = keras.backend.get_value if adapter.KERAS2 else keras.ops.convert_to_numpy
_VARIABLE = adapter.tf.Variable if adapter.KERAS2 else keras.Variable
_SCHEDULE = keras.optimizers.schedules.LearningRateSchedule
_MADE_TRAINABLE = "_trainable_weights" if adapter.KERAS2 else "_trainable_variables"  # a layer's own, not sublayers'
# What the optimizer's constructor leaves in the attributes its build fills (Keras 3 base_optimizer.py:139-152 and
# 211-228; tf-keras builds while its subclasses' ``_built`` is unset, tf_keras/src/optimizers/adamw.py:142-144).
_UNBUILT = {"_built": False} if adapter.KERAS2 else {"built": False, "_trainable_variables": [],
                                                     "_trainable_variables_indices": {}}  # fmt: skip


def audit(objects, stepping):
    """Every parameter of the model, stepped by the optimizer as ``stepping`` says."""
    model, optimizer = _unpack(objects)
    layers = list(model._flatten_layers())
    updated = {id(v) for v in model.trainable_weights}
    # Statistics (BatchNormalization's moving mean and variance) are made untrainable; a frozen layer's weights stay
    # in its own list of those it made trainable (Keras 3 turns their flag off, layer.py:656-661).
    made = updated | {id(v) for layer in layers for v in getattr(layer, _MADE_TRAINABLE)}
    variables = [v for v in model.weights if id(v) in made]
    if not variables:
        raise NotAuditable(f"the model {model.name!r} has no weights")
    trainable = [id(v) in updated for v in variables]
    saved, swapped = [np.array(_numpy(v)) for v in variables], _Swapped(optimizer)
    try:
        values, lrs, decays = _step(optimizer, variables, trainable, stepping, swapped)
    finally:
        swapped.restore()
        for variable, value in zip(variables, saved, strict=True):
            variable.assign(value)
    owners = {id(v): layer for layer in layers for v in layer.weights}  # a layer's sublayers come after it
    unanswered = float(optimizer.weight_decay or 0.0)  # no _use_weight_decay answered: no λ, or one for all
    nominal = [
        {"lr": float(lrs[i, 0]), "weight_decay": decays.get(optimizer._var_key(v), unanswered)} if trainable[i] else {}
        for i, v in enumerate(variables)
    ]
    parameters = tuple(_parameter(v, owners[id(v)], n) for v, n in zip(variables, nominal, strict=True))
    rates = [o._learning_rate for o in swapped.optimizers if isinstance(o._learning_rate, _SCHEDULE)]
    return Audited(
        parameters,
        values,
        lrs,
        _objects.qualified(type(optimizer)),
        _objects.qualified(type(rates[0])) if rates else None,
    )


def _unpack(objects):
    if isinstance(objects, tuple | list) and len(objects) == 2:
        model, optimizer = objects
        if isinstance(model, keras.layers.Layer) and isinstance(optimizer, keras.optimizers.Optimizer):
            if not model.built:
                raise NotAuditable("the model is not built; build it (model.build(input_shape)) before returning it")
            if any("_iterations" not in vars(o) for o in _wrapped(optimizer)):  # tf-keras's LossScaleOptimizer
                raise NotAuditable(
                    f"{_objects.qualified(type(optimizer))} delegates to its inner_optimizer; return that one"
                )
            return model, optimizer
    raise NotAuditable(f"the function returned {_objects.received(objects)}; the Keras auditor takes {TAKES}")


def _parameter(variable, owner, nominal):
    """The Parameter of ``variable``, held by layer ``owner``; ``nominal`` empty where the optimizer is not given it."""
    name = variable.name.removesuffix(":0") if adapter.KERAS2 else variable.path
    role = _roles.role(type(owner).__name__, name.rpartition("/")[2], len(variable.shape), owner.name)
    dtype = str(getattr(variable.dtype, "name", variable.dtype))
    stepped = bool(nominal)
    return Parameter(name, role, tuple(variable.shape), dtype, (0,) if stepped else (), stepped, nominal)


def _step(optimizer, variables, trainable, stepping, swapped):
    """values[i] (runs, steps + 1, samples), lrs (parameters, steps) and {variable key: λ, or 0.0 where excluded} of
    the variables an optimizer's ``_use_weight_decay`` answered for."""
    samples = [stepping.samples(i, math.prod(v.shape)) for i, v in enumerate(variables)]
    values = [np.empty((len(stepping.runs), stepping.steps + 1, len(s))) for s in samples]
    lrs = np.full((len(variables), stepping.steps), math.nan)
    updated = [i for i, t in enumerate(trainable) if t]
    decays = {}
    for run, (weight_scale, gradient_scale) in enumerate(stepping.runs):
        swapped.fresh(decays)
        for i, v in enumerate(variables):
            v.assign(_cast(weight_scale * stepping.weights(i, tuple(v.shape)), v.dtype))
            values[i][run, 0] = _numpy(v).reshape(-1)[samples[i]]
        for t in range(stepping.steps):
            lrs[updated, t] = _lr(optimizer)
            # made anew each step, zeros at scale 0: an optimizer may change a gradient in place
            gradients = [_gradient(variables[i], i, stepping, gradient_scale) for i in updated]
            optimizer.apply_gradients(zip(gradients, [variables[i] for i in updated], strict=True))
            for i, v in enumerate(variables):
                values[i][run, t + 1] = _numpy(v).reshape(-1)[samples[i]]
    return values, lrs, decays


def _gradient(variable, i, stepping, scale):
    shape = tuple(variable.shape)
    gradient = np.zeros(shape, np.float32) if scale == 0 else scale * stepping.gradient(i, shape)
    return _cast(gradient, variable.dtype)


def _lr(optimizer):
    """The lr of the optimizer's next step: its schedule's value at its step count, or its learning rate. Keras 3
    reads it so (base_optimizer.py:777-786); tf-keras's ``learning_rate`` of a schedule is the last step's."""
    if adapter.KERAS2 and isinstance(optimizer._learning_rate, _SCHEDULE):
        return float(_numpy(optimizer._learning_rate(optimizer.iterations)))
    return float(_numpy(optimizer.learning_rate))


class _Swapped:
    """The attributes of the optimizer, and of any optimizer it wraps (Keras 3's LossScaleOptimizer), as the user
    left them, and the values of the variables among them; ``fresh`` puts an unbuilt copy of them in their place,
    ``restore`` puts them back."""

    def __init__(self, optimizer):
        self.optimizers = _wrapped(optimizer)
        self.attributes = [dict(vars(o)) for o in self.optimizers]
        kept = [v for attributes in self.attributes for v in attributes.values() if isinstance(v, _VARIABLE)]
        self.values = [(v, np.array(_numpy(v))) for v in kept]

    def fresh(self, decays):
        """Unbuilt copies of the attributes, at step 0, whose ``_use_weight_decay`` answers go in ``decays``."""
        for optimizer, kept in zip(self.optimizers, self.attributes, strict=True):
            state = {key: _copied(value) for key, value in (kept | _UNBUILT).items()}
            # the iterations and learning rate variables its constructor made; the slots' are left to its build
            made = (kept["_iterations"], kept.get("_learning_rate"))
            state["_variables"] = [v for v in kept["_variables"] if any(v is m for m in made)]
            if "_tracker" in kept:  # Keras 3 tracks the variables it adds in this list
                test = kept["_tracker"].config["variables"][0]
                state["_tracker"] = tracker = type(kept["_tracker"])({"variables": (test, state["_variables"])})
                tracker.stored_ids["variables"].update(id(v) for v in state["_variables"])
            vars(optimizer).clear()
            vars(optimizer).update(state)
            optimizer._iterations.assign(0)
            vars(optimizer)["_use_weight_decay"] = _recording(optimizer, decays)

    def restore(self):
        for optimizer, kept in zip(self.optimizers, self.attributes, strict=True):
            vars(optimizer).clear()
            vars(optimizer).update(kept)
        for variable, value in self.values:
            variable.assign(value)


def _wrapped(optimizer):
    """The optimizer and those it wraps, by attribute, outermost first."""
    inner = [value for value in vars(optimizer).values() if isinstance(value, keras.optimizers.Optimizer)]
    return [optimizer, *(o for value in inner for o in _wrapped(value))]


def _recording(optimizer, decays):
    """The optimizer's own ``_use_weight_decay``, its answers recorded as {variable key: λ, or 0.0 where excluded}
    for the variable as the optimizer asks about it (on TensorFlow, Keras 3 asks about its tf.Variable)."""
    own, weight_decay = optimizer._use_weight_decay, float(optimizer.weight_decay or 0.0)

    def use_weight_decay(variable):
        used = own(variable)
        decays[optimizer._var_key(variable)] = weight_decay if used else 0.0
        return used

    return use_weight_decay


def _copied(value):
    """A new list, dict or set of the same items (a plain one in place of Keras's and TensorFlow's tracking ones)."""
    if isinstance(value, dict):
        return dict(value)
    return list(value) if isinstance(value, list) else set(value) if isinstance(value, set) else value
