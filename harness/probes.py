"""The probes of the semantic fingerprint: what each backend's penalty APIs do with the nominal λ.

Derived by running tiny probe problems through the real adapter and explaining each
trajectory with ``harness.explain``; nothing here is typed in. The probe problem has
two weights and a bias, chosen so the candidate rules part at once:

    x = [[1, 0], [2, 0]], y = [1, −1], w₀ = (1, 1), b₀ = 1, λ = 0.5, lr = 0.1, μ = 0.9,
    batch 1, no shuffling, 3 epochs (6 steps), float64; every other hyperparameter the
    optimizer's default (``harness.case``).

The second weight has no data gradient, so only the penalty moves it (a coupled decay
then goes through momentum and Adam's normalisation, a decoupled one does not); the
first has a changing data gradient, so multipliers and Adam's moments show; the bias
starts far from 0, so decaying it shows. Four kinds of probe, for every optimizer:
penalty probes (each penalty API, with the bias spared, decayed and left to the API's
default); convention probes at λ = 0 that part the values of one optimizer convention
(``CONVENTION_PROBES``: a large ε, an lr large enough for a relative step, the native
loss); default probes, each decoupled API given no λ, whose applied λ is fitted from
the run (``explain.fit_strength``); and schedule probes, each optimizer API under a
learning-rate schedule that changes within the six steps (``SCHEDULE_PROBES``), which part
a decay × the scheduled lr, × the base lr, × the schedule's multiplier and × 1, and the
count the first step reads. Role probes run on a 2-2-1 tanh MLP instead (``ROLE_PROBE``,
``role_arrays``): each optimizer API of ``ROLE_OPTIMIZERS`` asked to spare parameters as each of
``SPARINGS`` says, which tells which parameters the framework's idiom really decays. A probe that
no rule explains carries the adapter's account of it, where it gives one (its ``OWN_BEHAVIOURS``).
"""

import dataclasses
import hashlib
import platform
import time

import numpy as np

from harness import explain, forms
from harness.attempt import attempt, own_behaviour, versions
from harness.case import FRAMEWORK_KINDS, OPTIMIZERS, Case
from harness.data import Arrays
from harness.fingerprint import (
    KEYS,
    CallKey,
    ConventionKey,
    DefaultKey,
    Fingerprint,
    Probe,
    ProbeKey,
    RoleKey,
    ScheduleKey,
)

KINDS = ("l2_loss", *FRAMEWORK_KINDS)  # the loss penalty, for comparison, and each framework API
BIAS_MODES = (False, True, "default")
DEFAULT_KINDS = ("decoupled", "adamw")  # the APIs whose default λ is probed
SCHEDULED_KINDS = ("l2_loss", "weight_decay", "decoupled", "adamw")  # the loss penalty, and the APIs, under a schedule
SCHEDULED_CALL = ("sgd", "weight_decay")  # the API whose call probes show how each framework is given a schedule
# schedule kind -> the probe's schedule: lr halved every second step (so the count the first step reads
# shows at the third step); a warmup from 0 over two steps, then a cosine to 0 over the four left. λ =
# 0.25, so that a decay ×2 without lr (c = 0.5) halves a weight where λ = 0.5 would zero it, after which
# Adafactor's steps, × max(10⁻³, RMS(p)), hardly move it and the schedule no longer shows.
SCHEDULE_PROBES = {
    "step": {"schedule.kind": "step", "schedule.factor": 0.5, "schedule.interval": 2, "penalty.strength": 0.25},
    "warmup_cosine": {"schedule.kind": "warmup_cosine", "schedule.warmup": 2, "penalty.strength": 0.25},
}

PROBE = Case().replace({
    "data.n_train": 2, "data.n_test": 1, "data.dim": 2,
    "train.epochs": 3, "train.batch_size": 1, "train.shuffle": False, "train.loss": "half_mse",
    "model.init": "shared", "model.dtype": "float64",
    "optimizer.lr": 0.1, "optimizer.momentum": 0.9, "penalty.strength": 0.5,
})  # fmt: skip
_X = np.array([[1.0, 0.0], [2.0, 0.0]])


def probe_arrays(case):
    """The probe problem's arrays for ``case``'s number of epochs (the probe's is 3)."""
    epochs = case.train.epochs
    return Arrays(
        x_train=_X, y_train=np.array([1.0, -1.0]), x_valid=np.zeros((0, 2)), y_valid=np.zeros(0),
        x_test=_X[:1], y_test=np.array([0.0]), w0=np.array([1.0, 1.0]), b0=np.array(1.0),
        batches=np.tile(np.arange(2).reshape(1, 2, 1), (epochs, 1, 1)),
    )  # fmt: skip


# The role probe: a 2-2-1 MLP with tanh (no unit ever switches off, so every parameter has a data
# gradient), the probe problem's x and y, every parameter started away from 0 so its decay shows:
# W₁ = [[0.5, −0.3], [0.2, 0.4]], W₂ = (0.6, −0.5), b₁ = (0.1, −0.2), b₂ = 0.3.
ROLE_PROBE = PROBE.replace({"model.kind": "mlp", "model.hidden": [2], "model.activation": "tanh"})
ROLE_OPTIMIZERS = ("sgd", "adam")
ROLE_KINDS = ("l2_loss", "weight_decay", "decoupled", "adamw", "regularizer")
# How a role probe asks to spare parameters: the penalty's dotted keys.
SPARINGS = {
    "saying nothing": {"penalty.decay_bias": "default"},
    "sparing the biases": {"penalty.decay_bias": False},
    "sparing the output layer": {"penalty.decay_bias": True, "penalty.spare": ["output_weight", "output_bias"]},
}


def role_arrays(case):
    """The role probe's arrays: the probe problem's, with the MLP's initial parameters (``ROLE_PROBE``)."""
    return dataclasses.replace(
        probe_arrays(case), w0=np.array([0.5, -0.3, 0.2, 0.4, 0.6, -0.5]), b0=np.array([0.1, -0.2, 0.3])
    )


# optimizer -> its probes' own hyperparameters: Adadelta's ε sets its step (√(x + ε)/√(s + ε)·g), which
# at 1e-8 is too small for a decay to show within six steps.
PROBE_VALUES = {"adadelta": {"optimizer.eps": 1.0}}
# (optimizer, Rule field) -> the probe's change at λ = 0 under which that convention's values part.
CONVENTION_PROBES = {
    ("sgd", "loss"): {"train.loss": "native"},
    **{(name, "eps"): {"optimizer.eps": 0.1} for name in ("adam", "rmsprop", "adagrad")},
    # ε inside max(β₂u, |g| + ε) or beside it shows where |g| falls under the running max: a weight
    # pulled by (λ/2)‖w‖² alone, in steps large enough to shrink it; so does RAdam's ε, whose
    # adaptive steps start at the sixth
    ("adamax", "eps"): {"optimizer.eps": 0.1, "optimizer.lr": 0.5, "penalty.kind": "l2_loss", "penalty.strength": 0.5},
    ("radam", "eps"): {
        "optimizer.eps": 0.1,
        "optimizer.lr": 0.5,
        "penalty.kind": "l2_loss",
        "penalty.strength": 0.5,
        "train.epochs": 6,
    },
    ("nadam", "momentum_decay"): {},
    ("adafactor", "relative_step"): {"optimizer.lr": 1.0},
    ("adadelta", "lr_ignored"): {},
}


def probe_case(optimizer, values, problem=PROBE):
    """The probe ``problem`` with ``optimizer`` (and its PROBE_VALUES) and the dotted ``values``;
    hyperparameters not set here are the optimizer's defaults."""
    values = PROBE_VALUES.get(optimizer, {}) | values
    case = problem.replace({"optimizer.name": optimizer, **values})
    return case.with_optimizer_defaults({"optimizer.lr", *values})


def probe_cases(variants=None):
    """(key, case) of every probe: ProbeKey, then ConventionKey, DefaultKey, ScheduleKey and RoleKey;
    then, for each of an adapter's ``variants`` ({(optimizer, kind): {variant: ...}}), its penalty
    probe (bias spared), schedule probes and role probes."""
    yield from _penalty_cases()
    for (optimizer, field), values in CONVENTION_PROBES.items():
        yield ConventionKey(optimizer, field), probe_case(optimizer, {"penalty.strength": 0.0} | values)
    for optimizer in OPTIMIZERS:
        for kind in DEFAULT_KINDS:
            if kind == "decoupled" or optimizer == "adam":
                values = {"penalty.kind": kind, "penalty.strength": 0.0, "penalty.omit_strength": True}
                yield DefaultKey(optimizer, kind), probe_case(optimizer, values)
    for optimizer in OPTIMIZERS:
        for kind in SCHEDULED_KINDS:
            for schedule, values in SCHEDULE_PROBES.items():
                if kind != "adamw" or optimizer == "adam":
                    yield ScheduleKey(optimizer, kind, schedule), probe_case(optimizer, {"penalty.kind": kind} | values)
    for optimizer in ROLE_OPTIMIZERS:
        for kind in ROLE_KINDS:
            yield from _role_probes(optimizer, kind)
    for (optimizer, kind), named in (variants or {}).items():
        for variant in named:
            given = {"penalty.kind": kind, "penalty.variant": variant}
            yield (
                ProbeKey(optimizer, kind, False, variant),
                probe_case(optimizer, given | {"penalty.decay_bias": False}),
            )
            for bias in BIAS_MODES[1:]:  # after the others, so that a fingerprint's earlier probes keep their place
                yield (
                    ProbeKey(optimizer, kind, bias, variant),
                    probe_case(optimizer, given | {"penalty.decay_bias": bias}),
                )
            for schedule, values in SCHEDULE_PROBES.items():
                yield ScheduleKey(optimizer, kind, schedule, variant), probe_case(optimizer, given | values)
            if optimizer in ROLE_OPTIMIZERS and kind in ROLE_KINDS:
                yield from _role_probes(optimizer, kind, variant)
    yield from call_cases(variants)


def call_cases(variants=None):
    """(CallKey, case) of every call probe: each penalty probe's API and bias with every number it gives
    the framework one of ``forms.SENTINELS``, over one epoch; then ``SCHEDULED_CALL`` under each varying
    schedule, its numbers ``forms.SCHEDULE_SENTINELS`` too, over ``forms.SCHEDULE_STEPS`` steps."""
    keys = [key for key, _ in _penalty_cases()]
    keys += [ProbeKey(optimizer, kind, bias, variant) for (optimizer, kind), named in (variants or {}).items()
             for variant in named for bias in BIAS_MODES]  # fmt: skip
    for key in keys:
        values = {"penalty.kind": key.kind, "penalty.decay_bias": key.decay_bias, "penalty.variant": key.variant}
        yield CallKey(*key), probe_case(key.optimizer, values | forms.SENTINELS | {"train.epochs": 1})
    optimizer, kind = SCHEDULED_CALL
    for schedule in ("step", "cosine", "warmup_cosine"):
        values = {"penalty.kind": kind, "penalty.decay_bias": "default", "schedule.kind": schedule}
        values |= forms.SENTINELS | forms.SCHEDULE_SENTINELS | {"train.epochs": forms.SCHEDULE_STEPS // 2}
        yield CallKey(optimizer, kind, "default", "", schedule), probe_case(optimizer, values)


def _penalty_cases():
    """(ProbeKey, case) of every penalty probe called the default way."""
    for optimizer in OPTIMIZERS:
        for kind in KINDS:
            if kind == "adamw" and optimizer != "adam":
                continue
            biases = (False,) if kind == "lr_decay" else BIAS_MODES[:2] if kind == "l2_loss" else BIAS_MODES
            for bias in biases:
                yield (
                    ProbeKey(optimizer, kind, bias),
                    probe_case(optimizer, {"penalty.kind": kind, "penalty.decay_bias": bias}),
                )


def _role_probes(optimizer, kind, variant=""):
    """(RoleKey, case) of ``optimizer``'s ``kind`` on the role probe, for each sparing it can ask for."""
    if kind == "adamw" and optimizer != "adam":
        return
    for sparing, values in SPARINGS.items():
        if kind == "l2_loss" and values["penalty.decay_bias"] == "default":
            continue  # a penalty written into the loss has no default: it covers what the user writes
        given = {"penalty.kind": kind, "penalty.variant": variant} | values
        yield RoleKey(optimizer, kind, sparing, variant), probe_case(optimizer, given, ROLE_PROBE)


def probe(backend, adapter, command, progress=None):
    """Run every probe through ``adapter`` (an exception in one is that probe's ``error``): its
    Fingerprint. ``progress`` gets a line at every tenth of the probes: probes done of the total,
    and the time left at this pace."""
    parts = {part: {} for part in KEYS}
    cases = list(probe_cases(adapter.VARIANTS))
    start, every = time.perf_counter(), -(-len(cases) // 10)
    for done, (key, case) in enumerate(cases, start=1):
        part = next(part for part, kind in KEYS.items() if isinstance(key, kind))
        parts[part][key] = _probe(adapter, key, case, parts)
        if progress and (done % every == 0 or done == len(cases)):
            left = (time.perf_counter() - start) / done * (len(cases) - done)
            progress(f"{backend} probes {done}/{len(cases)} (about {left:.0f} s left)")
    return Fingerprint(
        backend, versions(adapter), command, platform.platform(), **parts, probes_sha256=digest(adapter.VARIANTS)
    )


def _probe(adapter, key, case, parts):
    """The Probe of ``case`` (the probes so far in ``parts``); a probe the framework cannot run in
    float64 is run in float32, where it can."""
    if isinstance(key, CallKey):
        return _call_probe(adapter, key, case, parts)
    arrays = role_arrays(case) if isinstance(key, RoleKey) else probe_arrays(case)
    (tried,) = attempt(adapter, [case], arrays)
    if tried.failure == "unsupported":
        float32 = case.replace({"model.dtype": "float32"})
        (again,) = attempt(adapter, [float32], arrays)
        case, tried = (float32, again) if again.trajectory is not None else (case, tried)
    if tried.trajectory is None:
        return Probe(tried.failure, tried.reason)
    strength, explained = None, None
    if isinstance(key, DefaultKey):
        strength, explained = explain.fit_strength(case, arrays, tried.trajectory, _placements(parts, key))
    else:
        explained = explain.explain(case, arrays, tried.trajectory)
    note = "" if explained.matched else own_behaviour(adapter, case)
    return Probe(
        "ok", api=tried.trajectory.api, explained=explained, note=note, strength=strength, dtype=case.model.dtype
    )


def _call_probe(adapter, key, case, parts):
    """The call probe of ``key``: the statements of its run, not explained (its numbers are chosen to be
    told apart, not to show a rule). An API its penalty or schedule probe found unsupported, or that
    raised there, is not run again (the call probe is that probe's outcome); the numbers a framework
    refuses (an RMSprop that takes no initial accumulator) are left at their defaults
    (``_leaving_defaults``), and so have no place in the statements."""
    before = _probed_before(key, parts)
    if before is not None and before.status != "ok":  # unsupported, or raising: so would this run
        return Probe(before.status, before.reason)
    arrays = probe_arrays(case)
    case = case.replace({"model.dtype": before.dtype}) if before is not None else case  # float32 where it ran so
    (tried,) = attempt(adapter, [case], arrays)
    if tried.failure == "unsupported":
        tried = _leaving_defaults(adapter, key, case, arrays) or tried
    if tried.trajectory is None:
        return Probe(tried.failure, tried.reason)
    return Probe("ok", api=tried.trajectory.api, statements=tried.trajectory.statements)


def _leaving_defaults(adapter, key, case, arrays):
    """The run of ``case`` with the fewest sentinels put back to the optimizer's defaults that the framework
    takes (each reset in turn until it runs, then each reset undone where it still runs); None if none."""
    plain = probe_case(key.optimizer, {"penalty.kind": key.kind})
    reset = {}
    for field in forms.SENTINELS:
        reset[field] = _get(plain, field)
        (tried,) = attempt(adapter, [case.replace(reset)], arrays)
        if tried.trajectory is not None:
            break
    else:
        return None
    for field in list(reset):
        kept = {f: v for f, v in reset.items() if f != field}
        (again,) = attempt(adapter, [case.replace(kept)], arrays)
        if again.trajectory is not None:
            reset, tried = kept, again
    return tried


def _probed_before(key, parts):
    """The penalty probe (or, under a schedule, the schedule probe) of a call probe's API."""
    if key.schedule != "constant":
        return parts["schedules"].get(ScheduleKey(key.optimizer, key.kind, key.schedule, key.variant))
    return parts["penalties"].get(ProbeKey(key.optimizer, key.kind, key.decay_bias, key.variant))


def _get(case, field):
    section, name = field.split(".")
    return getattr(getattr(case, section), name)


def digest(variants):
    """SHA-256 of every probe's key and case id, in order (``probe_cases(variants)``): a fingerprint
    with this digest and the installed versions is the one ``probe`` would make again."""
    lines = (f"{key!r} {case.id}\n" for key, case in probe_cases(variants))
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def is_current(path, backend, adapter):
    """Whether ``path`` holds ``backend``'s fingerprint of these probes and the installed versions,
    with no probe that raised (which the next probe may not): what ``run --probe`` need not redo."""
    try:
        found = Fingerprint.load(path)
    except ValueError:
        return False
    made_alike = (found.backend, found.versions, found.probes_sha256) == (
        backend, versions(adapter), digest(adapter.VARIANTS)
    )  # fmt: skip
    return made_alike and all(probe.status != "error" for _, probe in found.probes)


def _placements(parts, key):
    """The decoupled placements to fit a default probe's λ in: its API's, as the API's penalty probe
    (bias spared) found it, else both."""
    probe = parts["penalties"].get(ProbeKey(key.optimizer, key.kind, False))
    placement = probe.explained.form.placement if probe is not None and probe.matched else None
    return (placement,) if placement in ("decoupled_lr", "decoupled") else ("decoupled_lr", "decoupled")
