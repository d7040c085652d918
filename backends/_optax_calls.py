"""Which Optax call each optimizer of the harness is, for the JAX adapter (``backends/jax.py``): the alias
and its arguments, the aliases with a decay argument of their own, and the transformations an alias chains
before its learning rate. Names and numbers only: nothing here imports JAX or Optax."""

from backends.contract import Unsupported


def alias(opt):
    """The Optax alias of the optimizer and its keyword arguments but its ``learning_rate``, which comes first."""
    if opt.name == "signum":
        raise Unsupported("Optax has no signum")
    if opt.name in ("sgd", "momentum", "nesterov"):
        return "optax.sgd", {} if opt.name == "sgd" else {"momentum": opt.momentum, "nesterov": opt.name == "nesterov"}
    if opt.name in ("adam", "adamax", "nadam", "radam", "lamb"):
        return f"optax.{opt.name}", {"b1": opt.beta1, "b2": opt.beta2, "eps": opt.eps}
    if opt.name == "lion":
        # Overrides optax.lion's default weight_decay=1e-3 where λ goes elsewhere (its own decay
        # argument replaces this 0 in the adapter's _optimizer): the defaults probe measures the default instead.
        return "optax.lion", {"b1": opt.beta1, "b2": opt.beta2, "weight_decay": 0.0}
    if opt.name == "rmsprop":
        return "optax.rmsprop", {**_rms(opt), "centered": opt.centered, "momentum": opt.momentum or None}
    if opt.name == "adagrad":
        return "optax.adagrad", {"initial_accumulator_value": opt.initial_accumulator, "eps": opt.eps}
    if opt.name == "adadelta":
        return "optax.adadelta", {"rho": opt.rho, "eps": opt.eps}
    # adafactor: its own defaults (decay rate 0.8, clipping 1, ε 1e-30) for what the spec has no key for
    return "optax.adafactor", {}


def _rms(opt):
    return {"decay": opt.rho, "eps": opt.eps, "initial_scale": opt.initial_accumulator}


# optimizer -> {penalty kind: the alias whose own decay argument takes λ}: the w-forms of Adam's
# family, and the aliases that have a decay argument of their own (Adadelta's is added to the gradient).
OWN_DECAY = {
    "adam": {"decoupled": "adamw", "adamw": "adamw"},
    "adamax": {"decoupled": "adamaxw"},
    "nadam": {"decoupled": "nadamw"},
    "lion": {"weight_decay": "lion", "decoupled": "lion"},
    "lamb": {"weight_decay": "lamb", "decoupled": "lamb"},
    "adafactor": {"weight_decay": "adafactor", "decoupled": "adafactor"},
    "adadelta": {"weight_decay": "adadelta"},
}
# alias -> its (λ, mask) arguments, where they are not (weight_decay, mask)
DECAY_ARGUMENTS = {
    "adafactor": ("weight_decay_rate", "weight_decay_mask"),
    "adadelta": ("weight_decay", "weight_decay_mask"),
}
# optimizer -> the transformations its alias chains before scale_by_learning_rate (alias.py), with the alias's
# own arguments, for a decoupled decay placed between them and the learning rate (signum: refused by alias).
PRECONDITIONERS = {
    "sgd": lambda opt: [],
    "momentum": lambda opt: [("optax.trace", {"decay": opt.momentum})],
    "nesterov": lambda opt: [("optax.trace", {"decay": opt.momentum, "nesterov": True})],
    "radam": lambda opt: [("optax.scale_by_radam", alias(opt)[1])],
    "adagrad": lambda opt: [("optax.scale_by_rss", alias(opt)[1])],
    "rmsprop": lambda opt: [(f"optax.{'scale_by_stddev' if opt.centered else 'scale_by_rms'}", _rms(opt))],
    "adadelta": lambda opt: [("optax.scale_by_adadelta", alias(opt)[1])],
}
