"""The case: one fully resolved experiment, as frozen dataclasses that check their values.

Adapters, the oracle, the metrics and the store read cases; ``harness.spec`` makes them from
TOML. A section's values are checked and coerced (3 -> 3.0 for a float key) on construction,
and a bad value raises ``SpecError`` naming the dotted key and the allowed values.
"""

import dataclasses
import functools
import hashlib
import json
import re
from dataclasses import dataclass

from harness.checks import Bool, Choice, Count, Decay, Items, Name, NonNegative, Number, Positive, Real, checked
from harness.errors import SpecError


def _field(default, check):
    return dataclasses.field(default=default, metadata={"check": check})


class _Section:
    """Values are checked and coerced on construction."""

    def __post_init__(self):
        name = next(key for key, section in SECTIONS.items() if section is type(self))
        for field in dataclasses.fields(self):
            value = checked(f"{name}.{field.name}", field, getattr(self, field.name))
            object.__setattr__(self, field.name, value)


@dataclass(frozen=True)
class Data(_Section):
    """y = true_b + Σᵢ true_w·xᵢ + ε (``target = "linear"``) or y = true_b + Σᵢ true_w·xᵢ² + ε
    (``"square"``, a target only a nonlinear model fits), x ~ N(0, x_std²), ε ~ N(0, noise_std²)."""

    n_train: int = _field(20, Count)
    n_valid: int = _field(0, Number(int, 0, 10**6))
    n_test: int = _field(100, Count)
    dim: int = _field(200, Count)
    x_std: float = _field(1.0, Positive)
    true_w: float = _field(0.01, Real)
    true_b: float = _field(0.05, Real)
    noise_std: float = _field(0.01, NonNegative)
    seed: int = _field(0, Number(int, 0, 2**63 - 1))
    target: str = _field("linear", Choice(("linear", "square")))


@dataclass(frozen=True)
class Model(_Section):
    """``linear``: ŷ = x·w + b. ``mlp``: layers ℓ = 1 … L of widths ``hidden`` and then 1,
    hₗ = σ(hₗ₋₁·Wₗ + bₗ) with h₀ = x and σ = ``activation`` (relu or tanh), ŷ = h_{L−1}·W_L + b_L.
    ``init = "shared"``: drawn by the harness, w ~ N(0, init_std²) and b ~ N(0, bias_init_std²) for
    the linear model, each Wₗ ~ N(0, init_std²/fan_in) and bₗ ~ N(0, bias_init_std²) for the MLP;
    ``native``: the framework's default initializers."""

    kind: str = _field("linear", Choice(("linear", "mlp")))
    init: str = _field("shared", Choice(("shared", "native")))
    init_std: float = _field(1.0, NonNegative)
    bias_init_std: float = _field(0.0, NonNegative)
    dtype: str = _field("float64", Choice(("float64", "float32")))
    hidden: tuple = _field((16,), Items(Number(int, 1, 4096), 8))
    activation: str = _field("relu", Choice(("relu", "tanh")))


ROLES = ("hidden_weight", "hidden_bias", "output_weight", "output_bias")  # a parameter's role in the model


@dataclass(frozen=True)
class Layer:
    """One dense layer: its weight W (fan_in, fan_out) and bias b (fan_out,), and whether it is a
    hidden layer or the output layer (which the linear model's one layer is)."""

    fan_in: int
    fan_out: int
    hidden: bool

    @property
    def roles(self):
        """The (weight, bias) roles of its parameters, of ROLES."""
        where = "hidden" if self.hidden else "output"
        return f"{where}_weight", f"{where}_bias"


@dataclass(frozen=True)
class Train(_Section):
    """Minibatch training; loss ``half_mse`` = mean ½e², ``mse`` = mean e², ``native`` =
    the framework's idiomatic regression loss."""

    epochs: int = _field(100, Number(int, 1, 10**5))
    batch_size: int = _field(5, Count)
    shuffle: bool = _field(True, Bool)
    loss: str = _field("half_mse", Choice(("half_mse", "mse", "native")))


OPTIMIZERS = (
    "sgd", "momentum", "nesterov", "adam", "rmsprop", "adagrad", "adadelta", "adamax", "nadam", "radam", "lion",
    "lamb", "adafactor", "signum",
)  # fmt: skip


@dataclass(frozen=True)
class Optimizer(_Section):
    """The optimizer and its hyperparameters (``harness.oracle`` states each update): ``momentum``
    is μ of ``momentum``, ``nesterov``, ``signum`` and ``rmsprop``; ``beta1``, ``beta2`` are the
    moving averages' β₁, β₂ (Adam's family, Lion, LAMB); ``eps`` is ε; ``rho`` is ρ of ``rmsprop``
    and ``adadelta``; ``initial_accumulator`` starts the squared-gradient sum of ``adagrad`` and the
    moving average of ``rmsprop``; ``centered`` makes ``rmsprop`` divide by the gradient's variance;
    ``momentum_decay`` is ψ of NAdam's momentum schedule μₜ = β₁·(1 − ½·0.96^(ψ·t)). A spec that
    leaves one out gets its optimizer's own default (``OPTIMIZER_DEFAULTS``), else the one below."""

    name: str = _field("sgd", Choice(OPTIMIZERS))
    lr: float = _field(0.003, Positive)
    momentum: float = _field(0.9, Number(float, 0, 1))
    beta1: float = _field(0.9, Decay)
    beta2: float = _field(0.999, Decay)
    eps: float = _field(1e-8, NonNegative)
    rho: float = _field(0.9, Decay)
    initial_accumulator: float = _field(0.0, NonNegative)
    centered: bool = _field(False, Bool)
    momentum_decay: float = _field(0.004, NonNegative)


SCHEDULES = ("constant", "step", "cosine", "warmup_cosine")


@dataclass(frozen=True)
class Schedule(_Section):
    """The learning rate's schedule, stepped per optimizer step: lrₖ = lr·ηₖ at the schedule's
    count k = 0, 1, … (``harness.oracle.multipliers``; which count a framework's step t reads is
    its convention), over K = the run's steps:
        constant       ηₖ = 1
        step           ηₖ = factor^⌊k / interval⌋
        cosine         ηₖ = floor + (1 − floor)·½(1 + cos(π·k / K))
        warmup_cosine  ηₖ = k / warmup while k < warmup, then cosine over the K − warmup steps left
    ``factor`` and ``interval`` are the step schedule's; ``floor`` and ``warmup`` the cosines'."""

    kind: str = _field("constant", Choice(SCHEDULES))
    factor: float = _field(0.5, Number(float, 0, 1, open_low=True))
    interval: int = _field(100, Count)
    floor: float = _field(0.0, Number(float, 0, 1))
    warmup: int = _field(0, Number(int, 0, 10**6))

    @property
    def varies(self):
        """The learning rate changes over the run."""
        return self.kind != "constant"


# Where a spec says nothing of a key, the optimizer's own default when it differs from the field's:
# RMSprop without momentum, Lion's slower second average, Adadelta's lr of 1 (its step is already
# a ratio of moving averages), as each framework that ships them defaults.
OPTIMIZER_DEFAULTS = {"rmsprop": {"momentum": 0.0}, "lion": {"beta2": 0.99}, "adadelta": {"lr": 1.0}}
# Fields added after cases were first stored: left out of a case's id while they hold their
# default, so every case stored before keeps its id.
ADDED_FIELDS = {
    "data": ("target",),
    "model": ("hidden", "activation"),
    "optimizer": ("rho", "initial_accumulator", "centered", "momentum_decay"),
    "penalty": ("omit_strength", "variant", "spare"),
    "schedule": ("kind", "factor", "interval", "floor", "warmup"),
}


# Penalty kinds by where the nominal λ goes.
LOSS_KINDS = ("l2_loss", "l1_loss")  # a term written into the loss: (λ/2)·‖w‖², λ·‖w‖₁
OPTIMIZER_KINDS = ("weight_decay", "decoupled", "adamw", "lr_decay")  # an argument of the optimizer
FRAMEWORK_KINDS = (*OPTIMIZER_KINDS, "regularizer")  # the framework's own APIs, whose semantics are probed
PENALTY_KINDS = ("none", *LOSS_KINDS, *FRAMEWORK_KINDS)


@dataclass(frozen=True)
class Penalty(_Section):
    """``l2_loss``: (λ/2)·‖w‖² in the loss; ``l1_loss``: λ·‖w‖₁ in the loss;
    ``weight_decay``: the optimizer's own weight-decay argument; ``decoupled``: the framework's
    dedicated decoupled form of the optimizer (AdamW, a decoupled flag, Lion's, LAMB's or
    Adafactor's decay); ``adamw``: the decoupled form of ``adam``, as its own name;
    ``regularizer``: the layer regularizer API; ``lr_decay``: the argument users mistake for
    weight decay (torch Adagrad's ``lr_decay``, the ``decay=`` of tf-keras's legacy optimizers).
    λ = strength; with ``omit_strength`` the adapter passes no λ and the API's default applies;
    ``variant`` names another way the framework's users call the API (its adapter's ``VARIANTS``).
    ``decay_bias``: true, false, or ``"default"`` = whatever the framework's API does when the
    user says nothing about the bias (for the framework APIs only); ``spare``: roles (ROLES) left
    out of the penalty besides, e.g. ``["output_weight", "output_bias"]`` spares the output layer."""

    kind: str = _field("none", Choice(PENALTY_KINDS))
    strength: float = _field(0.0, NonNegative)
    decay_bias: bool | str = _field(False, Choice((False, True, "default")))
    omit_strength: bool = _field(False, Bool)
    variant: str = _field("", Name())
    spare: tuple = _field((), Items(Choice(ROLES), len(ROLES), unique=True))

    @property
    def in_loss(self):
        """The penalty is a term of the loss, differentiated by the framework's autograd."""
        return self.kind in LOSS_KINDS

    @property
    def in_optimizer(self):
        """λ is an argument of the optimizer (``weight_decay``, ``adamw``)."""
        return self.kind in OPTIMIZER_KINDS

    @property
    def in_framework(self):
        """λ goes to one of the framework's own APIs (optimizer or regularizer)."""
        return self.kind in FRAMEWORK_KINDS

    @property
    def decays_bias(self):
        """The case asks for the bias to be penalised too."""
        return self.decay_bias is True

    @property
    def spares_bias(self):
        """The case asks for the bias to be left alone."""
        return self.decay_bias is False

    @property
    def bias_by_default(self):
        """The case leaves the bias to the framework API's own default."""
        return self.decay_bias == "default"

    def decays(self, role):
        """Whether the case asks for the parameters of ``role`` (ROLES) to be penalised: False when
        spared (``spare``, or a bias with decay_bias false), None for a bias left to the framework's
        own default, else True."""
        if role in self.spare:
            return False
        if role.endswith("_bias"):
            return None if self.bias_by_default else self.decays_bias
        return True


SECTIONS = {
    "data": Data, "model": Model, "train": Train, "optimizer": Optimizer, "schedule": Schedule, "penalty": Penalty,
}  # fmt: skip

MAX_ARRAY_VALUES = 10**8  # float64 data, every step's batch (gathered once) and the trajectory stay under ~1 GB each


def field(dotted, prefix=""):
    """The Case field a dotted key (``"optimizer.lr"``) names; SpecError naming the key if none."""
    section, _, key = dotted.partition(".")
    if section not in SECTIONS:
        raise SpecError(
            f"unknown key {show(prefix + dotted)}; allowed: keys that start with one of {', '.join(SECTIONS)}"
        )
    fields = {f.name: f for f in dataclasses.fields(SECTIONS[section])}
    if key not in fields:
        raise SpecError(f"unknown key {show(prefix + dotted)}; allowed keys in [{section}]: {', '.join(fields)}")
    return fields[key]


def show(name):
    """A key as typed, quoted and escaped when it is not a plain dotted name."""
    return name if re.fullmatch(r"[\w.-]+", name, re.ASCII) else json.dumps(name)


@dataclass(frozen=True)
class Case:
    """One fully resolved experiment: what a backend runs and a results file records."""

    data: Data = Data()
    model: Model = Model()
    train: Train = Train()
    optimizer: Optimizer = Optimizer()
    schedule: Schedule = Schedule()
    penalty: Penalty = Penalty()

    def to_dict(self):
        """``{section: {key: value}}``, new dicts of the case's values (numbers, strings and tuples)."""
        sections = {name: getattr(self, name) for name in SECTIONS}
        return {
            name: {f.name: getattr(section, f.name) for f in dataclasses.fields(section)}
            for name, section in sections.items()
        }

    @classmethod
    def from_dict(cls, sections):
        return cls(**{name: SECTIONS[name](**values) for name, values in sections.items()})

    @functools.cached_property
    def id(self):
        """First 16 hex digits of the SHA-256 of the canonical JSON of the case, less the
        ADDED_FIELDS that hold their default (and a section they leave empty)."""
        sections = self.to_dict()
        for section, names in ADDED_FIELDS.items():
            defaults = {f.name: f.default for f in dataclasses.fields(SECTIONS[section])}
            for name in names:
                if sections[section][name] == defaults[name]:
                    del sections[section][name]
            if not sections[section]:
                del sections[section]
        canonical = json.dumps(sections, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def steps(self):
        return self.train.epochs * (self.data.n_train // self.train.batch_size)

    @property
    def layers(self):
        """The model's dense layers, input to output: one for the linear model."""
        widths = (self.data.dim, *self.model.hidden, 1) if self.model.kind == "mlp" else (self.data.dim, 1)
        return tuple(Layer(a, b, hidden=i < len(widths) - 2) for i, (a, b) in enumerate(zip(widths, widths[1:])))

    @property
    def parameters(self):
        """The number of the model's parameters, every weight and bias."""
        return sum(layer.fan_in * layer.fan_out + layer.fan_out for layer in self.layers)

    def with_optimizer_defaults(self, given):
        """A copy whose optimizer hyperparameters not among the dotted keys ``given`` take the
        optimizer's own defaults (OPTIMIZER_DEFAULTS), as a spec that leaves them out means."""
        defaults = {f"optimizer.{k}": v for k, v in OPTIMIZER_DEFAULTS.get(self.optimizer.name, {}).items()}
        return self.replace({key: value for key, value in defaults.items() if key not in given})

    def replace(self, values):
        """A copy with dotted keys replaced: ``{"optimizer.lr": 0.03}``; every other key keeps its value
        (only the sections it changes are built, and checked, again)."""
        changes = {}
        for key, value in values.items():
            section, name = key.split(".")
            changes.setdefault(section, {})[name] = value
        return dataclasses.replace(
            self, **{section: dataclasses.replace(getattr(self, section), **new) for section, new in changes.items()}
        )
