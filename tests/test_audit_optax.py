"""The jax auditor on a Flax-Linen-shaped params tree (built by hand: the jax env has no Flax) under the
Optax setups users write, against what the optax source (0.2.8, .tox/jax/lib/python3.11/site-packages/optax)
says each does; the user's objects as they were; what the auditor refuses."""

import numpy as np
import pytest

from harness.audit import audit_objects, measure
from harness.errors import UsageError

LR, DECAY, SGD_LR, ADDED = 1e-3, 0.01, 0.1, 1e-4
# A float32 step rounds p − lr·λ·p to 2⁻²⁴·|p|, ≤ 0.6 % of a 1e-5 shrink a value; averaged over the samples
# of the smallest leaf here (16 values) it stays under 1 %.
SHRINK_TOLERANCE = 0.01
SHAPES = {  # Flax Linen's names: nn.Embed, nn.Dense, nn.LayerNorm, nn.RMSNorm, and an Embed named pos_embedding
    "Embed_0/embedding": (32, 8), "pos_embedding/embedding": (10, 8), "Dense_0/kernel": (8, 16),
    "Dense_0/bias": (16,), "LayerNorm_0/scale": (16,), "LayerNorm_0/bias": (16,), "RMSNorm_0/scale": (16,),
    "Dense_1/kernel": (16, 4), "Dense_1/bias": (4,),
}  # fmt: skip
ROLES = {
    "Embed_0/embedding": "embedding", "pos_embedding/embedding": "positional", "Dense_0/kernel": "kernel",
    "Dense_0/bias": "bias", "LayerNorm_0/scale": "norm_scale", "LayerNorm_0/bias": "norm_shift",
    "RMSNorm_0/scale": "norm_scale", "Dense_1/kernel": "kernel", "Dense_1/bias": "bias",
}  # fmt: skip


def _jax(auditor):
    name, _ = auditor
    if name != "jax":
        pytest.skip("a jax auditor test")
    import jax
    import jax.numpy as jnp
    import optax

    return jax, jnp, optax


def variables(jnp, dtype="float32"):
    """A Linen variables dict: ``params`` by SHAPES and a ``batch_stats`` collection the optimizer never sees."""
    rng = np.random.default_rng(0)
    params = {}
    for path, shape in SHAPES.items():
        module, leaf = path.split("/")
        params.setdefault(module, {})[leaf] = jnp.asarray(rng.standard_normal(shape), dtype=dtype)
    return {"params": params, "batch_stats": {"BatchNorm_0": {"mean": jnp.zeros(16, dtype=dtype)}}}


def _by_ndim(jax):
    """The mask ``p.dim() >= 2`` users write in optax: decay the leaves of more than one dimension."""
    return lambda p: jax.tree.map(lambda x: x.ndim > 1, p)


def audited(objects):
    return {f.name.removeprefix("params/"): f for f in audit_objects("jax", objects, "test").findings}


def test_adamw_decays_every_leaf_by_lr_times_lambda_and_injected_reads_decoupled_lr(auditor):
    jax, jnp, optax = _jax(auditor)
    # optax/_src/alias.py:716-724: adamw = chain(scale_by_adam, add_decayed_weights(λ, mask), scale_by_learning_rate):
    # λ·p is added after Adam's normalization, then × −lr (transforms/_adding.py:71-77, _src/transform.py:1005).
    plain = audited((variables(jnp), optax.adamw(LR, weight_decay=DECAY)))
    injected = audited((variables(jnp), optax.inject_hyperparams(optax.adamw)(learning_rate=LR, weight_decay=DECAY)))
    assert set(plain) == set(injected) == set(SHAPES)  # the batch_stats collection is not audited
    for name, f in plain.items():
        assert f.role == ROLES[name] and f.groups == (0,)
        assert f.decay == pytest.approx(LR * DECAY, rel=SHRINK_TOLERANCE)
        assert f.placement == "decoupled_untold" and f.nominal == {}  # an alias's λ is in its closure: unread
        assert injected[name].placement == "decoupled_lr" and injected[name].k == pytest.approx(1, rel=SHRINK_TOLERANCE)
        assert injected[name].nominal == {"lr": pytest.approx(LR), "weight_decay": pytest.approx(DECAY)}
        assert injected[name].lrs == pytest.approx((LR,) * measure.STEPS)


def test_an_injected_schedule_gives_each_step_its_lr(auditor):
    jax, jnp, optax = _jax(auditor)
    # optax/schedules/_inject.py:184-205: the state after a step holds the hyperparameters that step used.
    schedule = optax.linear_schedule(LR, 0.0, 10)
    tx = optax.inject_hyperparams(optax.adamw)(learning_rate=schedule, weight_decay=DECAY)
    for f in audited((variables(jnp), tx)).values():
        assert f.lrs == pytest.approx([float(schedule(t)) for t in range(measure.STEPS)])
        assert f.placement == "decoupled_lr" and f.nominal["lr"] == pytest.approx(LR)


def test_an_ndim_mask_spares_norms_and_biases_and_keeps_decaying_embeddings(auditor):
    jax, jnp, optax = _jax(auditor)
    # optax/transforms/_masking.py:141-146: a leaf the mask gives False keeps the update it came with, so
    # add_decayed_weights adds nothing to it; the issue's "``p.dim() >= 2`` masks keep decaying embeddings".
    tx = optax.adamw(LR, weight_decay=DECAY, mask=_by_ndim(jax))
    for name, f in audited((variables(jnp), tx)).items():
        if len(SHAPES[name]) > 1:
            assert f.decay == pytest.approx(LR * DECAY, rel=SHRINK_TOLERANCE)
            assert f.flags == (("decays_embedding",) if f.role in ("embedding", "positional") else ())
        else:
            assert f.placement == "none" and f.flags == ()


def test_injected_adamw_takes_a_mask_function_for_a_schedule_and_decays_nothing(auditor):
    jax, jnp, optax = _jax(auditor)
    # optax/schedules/_inject.py:151-152: every callable argument is a schedule, so the mask becomes mask(count):
    # the tree of the step count, a scalar of ndim 0, False for every leaf; static_args="mask" (:147) keeps it.
    by_ndim = _by_ndim(jax)
    dropped = optax.inject_hyperparams(optax.adamw)(learning_rate=LR, weight_decay=DECAY, mask=by_ndim)
    kept = optax.inject_hyperparams(optax.adamw, static_args="mask")(learning_rate=LR, weight_decay=DECAY, mask=by_ndim)
    assert all(f.placement == "none" for f in audited((variables(jnp), dropped)).values())
    decayed = {name for name, f in audited((variables(jnp), kept)).items() if f.decays}
    assert decayed == {name for name, shape in SHAPES.items() if len(shape) > 1}


def test_add_decayed_weights_after_sgd_grows_and_before_it_is_coupled(auditor):
    jax, jnp, optax = _jax(auditor)
    # optax/_src/alias.py:2125-2136: sgd = chain(trace(momentum), scale_by_learning_rate): after it, the
    # update is −lr·m + λ·p (transforms/_adding.py:73), which at gradient 0 multiplies p by 1 + λ.
    after = optax.chain(optax.sgd(SGD_LR, momentum=0.9), optax.add_decayed_weights(ADDED))
    # Before it, λ·p enters the momentum trace and is scaled by −lr: a coupled decay that grows over the steps.
    before = optax.chain(optax.add_decayed_weights(ADDED), optax.sgd(SGD_LR, momentum=0.9))
    for f in audited((variables(jnp), after)).values():
        assert f.factor == pytest.approx(1 + ADDED, rel=SHRINK_TOLERANCE * ADDED) and f.flags == ("grows",)
    for f in audited((variables(jnp), before)).values():
        assert f.placement == "coupled" and f.decay == pytest.approx(SGD_LR * ADDED, rel=SHRINK_TOLERANCE)


def test_a_bf16_tree_whose_decay_rounds_away_is_flagged(auditor):
    jax, jnp, optax = _jax(auditor)
    # lr·λ = 1e-5 is under bfloat16's 2⁻⁸: p·(1 − 1e-5) rounds to p, while Adam's step of about lr = 1e-2 does
    # not (at lr = 1e-3 it rounds away too wherever |p| > ¼: the tensor is then never updated). The
    # hyperparameters are held in float32 (``hyperparam_dtype``): by default they take the params' dtype
    # (optax/schedules/_inject.py:160-166).
    inject = optax.inject_hyperparams(optax.adamw, hyperparam_dtype=jnp.float32)
    tx = inject(learning_rate=1e-2, weight_decay=1e-3)
    for f in audited((variables(jnp, "bfloat16"), tx)).values():
        assert f.dtype == "bfloat16" and f.placement == "none" and f.flags == ("rounds_away",)


def test_injected_adam_on_a_bf16_tree_steps_to_nan(auditor):
    jax, jnp, optax = _jax(auditor)
    # optax/schedules/_inject.py:160-166 casts every float hyperparameter to the params' dtype: b2 = 0.999 is
    # 1.0 in bfloat16, and Adam's bias correction 1 − b2ᵗ (tree_utils/_tree_math.py:449) divides by 0.
    tx = optax.inject_hyperparams(optax.adamw)(learning_rate=LR, weight_decay=DECAY)
    found = audited((variables(jnp, "bfloat16"), tx)).values()
    assert all((f.placement, f.factor, f.flags) == ("nonfinite", None, ("nonfinite",)) for f in found)


def test_the_user_objects_are_as_they_were_and_train_as_a_twin(auditor):
    jax, jnp, optax = _jax(auditor)
    user = variables(jnp)
    copy = jax.tree.map(np.array, user)
    tx = optax.inject_hyperparams(optax.adamw)(learning_rate=LR, weight_decay=DECAY)
    audited((user, tx))
    assert jax.tree.all(jax.tree.map(np.array_equal, user, copy))
    twin = optax.inject_hyperparams(optax.adamw)(learning_rate=LR, weight_decay=DECAY)
    trained = []
    for transformation in (tx, twin):
        params, state = user["params"], transformation.init(user["params"])
        for _ in range(3):
            grads = jax.tree.map(jnp.ones_like, params)
            updates, state = transformation.update(grads, state, params)
            params = optax.apply_updates(params, updates)
        trained.append(params)
    assert jax.tree.all(jax.tree.map(np.array_equal, *trained))


@pytest.mark.parametrize("objects", ["a string", "a bare tree", "an integer leaf"])
def test_objects_the_jax_auditor_does_not_take_are_named(auditor, objects):
    jax, jnp, optax = _jax(auditor)
    params = variables(jnp)["params"]
    given, named = {
        "a string": ((params, "sgd"), r"\(dict, str\)"),
        "a bare tree": (params, "returned dict;"),
        "an integer leaf": (({"step": jnp.zeros(3, dtype=jnp.int32)}, optax.sgd(LR)), "step is a jaxlib"),
    }[objects]
    with pytest.raises(UsageError, match=rf"{named}.*the jax auditor takes \(params, optax.GradientTransformation"):
        audit_objects("jax", given, "m.py:build")
