"""The JAX adapter's vectorized sweeps: one compiled, vmapped call trains many (lr, λ) cases.

A sweep is not bit-identical to training its cases one by one: ``jax.vmap`` batches every
case's products x·w into one product over all cases, whose sums XLA orders differently
from the one-case program, so the trajectories part by rounding from the first step (measured on these
cases: ≤ 1e-14 in float64, ≤ 2e-6 in float32). They must agree within
``diff.TOLERANCE``, the gap that calls a backend and the oracle the same semantics.
The cases use smooth penalties only: under λ·‖w‖₁ a float32 rounding difference can
flip sign(wᵢ) of a weight near 0 and send two runs apart, however they are computed.
"""

import numpy as np
import pytest
from conftest import load_adapter

from harness import data, diff, spec

SWEEPS = {"penalty.strength": [0.0, 0.1, 1.0, 3.0, 10.0], "optimizer.lr": [0.001, 0.003, 0.01]}
PENALTIES = [
    ("sgd", "weight_decay"),
    ("momentum", "weight_decay"),
    ("nesterov", "l2_loss"),
    ("adam", "weight_decay"),
    ("adam", "adamw"),
]


def cases(key, optimizer, kind, dtype="float64"):
    """The d2l case at λ = 3 with ``optimizer`` and penalty ``kind``, one per value of ``key``."""
    _, base = spec.load("d2l").cases("jax")[0]
    base = base.replace(
        {"optimizer.name": optimizer, "penalty.kind": kind, "penalty.strength": 3.0, "model.dtype": dtype}
    )
    return [base.replace({key: value}) for value in SWEEPS[key]]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("optimizer, kind", PENALTIES)
@pytest.mark.parametrize("key", SWEEPS)
def test_a_sweep_trains_each_case_as_train_does(key, optimizer, kind, dtype):
    adapter = load_adapter("jax")
    swept = cases(key, optimizer, kind, dtype)
    arrays = data.make(swept[0])
    for value, case, trajectory in zip(SWEEPS[key], swept, adapter.train_sweep(swept, arrays), strict=True):
        alone = adapter.train(case, arrays)
        gaps = diff.relative_gaps((trajectory.w, trajectory.b), (alone.w, alone.b))
        step = diff.first_divergent_step(gaps, diff.TOLERANCE[dtype])
        assert step is None, f"{key} = {value}: parts from train() at step {step}, gap {gaps[step]:.3g}"
        assert trajectory.w.dtype == alone.w.dtype == np.dtype(dtype)
        assert trajectory.api == alone.api


def test_a_sweep_is_traced_once_whatever_its_lr_and_lambda(monkeypatch):
    """The optimizer is built with traced lr and λ once per trace of the run; new values reuse it.
    (Each case's ``api`` builds it once more from the case's own numbers, outside the trace.)"""
    adapter = load_adapter("jax")
    import jax
    import optax

    traces = []
    sgd = optax.sgd

    def counting_sgd(*args, **kwargs):
        if isinstance(kwargs["learning_rate"], jax.core.Tracer):
            traces.append(kwargs)
        return sgd(*args, **kwargs)

    monkeypatch.setattr(optax, "sgd", counting_sgd)
    jax.clear_caches()
    swept = cases("penalty.strength", "momentum", "weight_decay")
    arrays = data.make(swept[0])
    adapter.train_sweep(swept, arrays)
    other_values = [
        case.replace({"optimizer.lr": 0.01, "penalty.strength": 2 * case.penalty.strength}) for case in swept
    ]
    adapter.train_sweep(other_values, arrays)
    assert len(traces) == 1, f"traced {len(traces)} times: {traces}"


def test_a_sweep_refuses_cases_that_differ_beyond_lr_and_lambda():
    adapter = load_adapter("jax")
    swept = cases("penalty.strength", "sgd", "weight_decay")
    mixed = [swept[0], swept[1].replace({"optimizer.name": "momentum"})]
    with pytest.raises(ValueError, match="differ only in optimizer.lr, penalty.strength"):
        adapter.train_sweep(mixed, data.make(swept[0]))
