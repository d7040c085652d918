"""decaylens audit on Flax models with the Optax decay masks Flax users write: a Linen model and an NNX
model with every role (nn.Embed, an Embed named pos_embedding, Dense, LayerNorm, BatchNorm, RMSNorm). What
the libraries' source (flax 0.12.8, optax 0.2.8, .tox/audit-flax/lib/python3.11/site-packages) says:

optax/_src/alias.py:672-676 and transforms/_masking.py:127-146: a mask is a tree of the params' structure
(or a function of the params giving one) whose True leaves get ``add_decayed_weights``' λ·p and whose False
leaves keep the update they came with; alias.py:716-724: adamw applies it after Adam's normalization, × −lr.
flax/linen/normalization.py:209-220: LayerNorm's and BatchNorm's ``scale`` and ``bias`` params, RMSNorm's
``scale`` alone; :358-369: BatchNorm's running ``mean`` and ``var`` live in the ``batch_stats`` collection,
not in ``params``; flax/linen/linear.py:1166-1167: Embed's ``embedding`` param. flax/nnx/training/optimizer.py:164:
nnx.Optimizer steps ``nnx.state(model, wrt)`` (``nnx.Param`` by default), so NNX BatchNorm's ``BatchStat``
mean and var (flax/nnx/nn/normalization.py:312-313) are not stepped either."""

import numpy as np
import pytest

from harness.audit import audit_objects
from harness.audit.plugin import Pinned

LR, DECAY = 1e-3, 0.01
# A float32 step rounds p − lr·λ·p to 2⁻²⁴·|p|, ≤ 0.6 % of a 1e-5 shrink a value, averaged over each leaf's values.
SHRINK_TOLERANCE = 0.01
LINEN_ROLES = {
    "Embed_0/embedding": "embedding", "pos_embedding/embedding": "positional", "Dense_0/kernel": "kernel",
    "Dense_0/bias": "bias", "LayerNorm_0/scale": "norm_scale", "LayerNorm_0/bias": "norm_shift",
    "BatchNorm_0/scale": "norm_scale", "BatchNorm_0/bias": "norm_shift", "RMSNorm_0/scale": "norm_scale",
    "Dense_1/kernel": "kernel", "Dense_1/bias": "bias",
}  # fmt: skip
NNX_ROLES = {
    "embed/embedding": "embedding", "pos_embedding/embedding": "positional", "hidden/kernel": "kernel",
    "hidden/bias": "bias", "ln/scale": "norm_scale", "ln/bias": "norm_shift", "bn/scale": "norm_scale",
    "bn/bias": "norm_shift", "rms/scale": "norm_scale", "head/kernel": "kernel", "head/bias": "bias",
}  # fmt: skip


def _libraries(client):
    flax = client("flax")
    import jax
    import optax
    from flax import nnx, traverse_util

    return flax, jax, optax, nnx, traverse_util


def linen_variables(flax, jax):
    """A Linen model's variables: its ``params`` and its BatchNorm's ``batch_stats``."""
    nn = flax.linen

    class Net(nn.Module):
        @nn.compact
        def __call__(self, tokens):
            h = nn.Embed(12, 6)(tokens) + nn.Embed(3, 6, name="pos_embedding")(jax.numpy.arange(3))
            h = nn.LayerNorm()(nn.Dense(8)(h.mean(1)))
            return nn.Dense(2)(nn.RMSNorm()(nn.BatchNorm(use_running_average=True)(h)))

    return Net().init(jax.random.key(0), jax.numpy.zeros((5, 3), dtype=jax.numpy.int32))


def nnx_model(nnx):
    """The Linen model's layers as an NNX module."""

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.embed, self.pos_embedding = nnx.Embed(12, 6, rngs=rngs), nnx.Embed(3, 6, rngs=rngs)
            self.hidden, self.ln = nnx.Linear(6, 8, rngs=rngs), nnx.LayerNorm(8, rngs=rngs)
            self.bn, self.rms = nnx.BatchNorm(8, rngs=rngs), nnx.RMSNorm(8, rngs=rngs)
            self.head = nnx.Linear(8, 2, rngs=rngs)

    return Net(nnx.Rngs(0))


def by_ndim(jax):
    """optax.masked's docstring's own mask (optax/transforms/_masking.py:55-59): spare the 1-D leaves, "in many
    networks" the norms' scales and the biases; an embedding is 2-D."""
    return lambda p: jax.tree.map(lambda x: x.ndim != 1, p)


def masks(jax, optax, traverse_util, params):
    """Each idiom -> (the transformation, its mask as a tree of the params' structure)."""
    by_name = traverse_util.path_aware_map(lambda path, x: "bias" not in path and "scale" not in path, params)
    # A mask by module name that spares LayerNorm and every bias, and misses BatchNorm and RMSNorm.
    flat = traverse_util.flatten_dict(params)
    by_module = traverse_util.unflatten_dict(
        {path: path[-1] != "bias" and not path[-2].startswith("LayerNorm") for path in flat}
    )
    decay = optax.masked(optax.add_decayed_weights(DECAY), by_module)
    chained = optax.chain(optax.scale_by_adam(), decay, optax.scale_by_learning_rate(LR))
    return {
        "ndim != 1": (optax.adamw(LR, weight_decay=DECAY, mask=by_ndim(jax)), by_ndim(jax)(params)),
        "path_aware_map": (optax.adamw(LR, weight_decay=DECAY, mask=by_name), by_name),
        "optax.masked by module": (chained, by_module),
    }


EXPECTED = {  # the idiom -> the roles it decays, by its own definition above
    "ndim != 1": {"kernel", "embedding", "positional"},
    "path_aware_map": {"kernel", "embedding", "positional"},
    "optax.masked by module": {"kernel", "embedding", "positional", "norm_scale"},
}


def _decayed_by_mask(traverse_util, mask):
    return {"/".join(path) for path, decayed in traverse_util.flatten_dict(mask).items() if decayed}


@pytest.mark.parametrize("idiom", EXPECTED)
def test_linen_each_mask_decays_exactly_its_true_leaves(client, idiom):
    flax, jax, optax, nnx, traverse_util = _libraries(client)
    variables = linen_variables(flax, jax)
    tx, mask = masks(jax, optax, traverse_util, variables["params"])[idiom]
    found = {f.name.removeprefix("params/"): f for f in audit_objects("jax", (variables, tx), idiom).findings}
    assert {name: f.role for name, f in found.items()} == LINEN_ROLES  # batch_stats is not audited
    assert {name for name, f in found.items() if f.decays} == _decayed_by_mask(traverse_util, mask)
    assert {f.role for f in found.values() if f.decays} == EXPECTED[idiom]
    for f in found.values():
        if f.decays:
            assert f.placement == "decoupled_untold" and f.decay == pytest.approx(LR * DECAY, rel=SHRINK_TOLERANCE)
        else:
            assert f.placement == "none" and f.flags == ()


def test_linen_the_module_name_mask_decays_batchnorm_and_rmsnorm_scales(client):
    flax, jax, optax, nnx, traverse_util = _libraries(client)
    variables = linen_variables(flax, jax)
    tx, _ = masks(jax, optax, traverse_util, variables["params"])["optax.masked by module"]
    audit = audit_objects("jax", (variables, tx), "by module")
    flagged = {f.name for f in audit.findings if "decays_norm" in f.flags}
    assert flagged == {"params/BatchNorm_0/scale", "params/RMSNorm_0/scale"}
    Pinned(audit).assert_spares("bias").assert_decays("kernel", "embedding", "positional")


@pytest.mark.parametrize("idiom", ["ndim != 1", "path names"])
def test_nnx_params_state_decays_what_its_mask_says_and_is_left_as_it_was(client, idiom):
    flax, jax, optax, nnx, traverse_util = _libraries(client)
    model = nnx_model(nnx)
    state = nnx.state(model, nnx.Param)
    before = jax.tree.map(np.array, state)
    spared = {"bias", "scale"}  # by name: the leaves whose path holds neither, as path_aware_map's mask above
    mask = {
        "ndim != 1": by_ndim(jax),
        "path names": lambda p: jax.tree_util.tree_map_with_path(
            lambda path, x: not spared & {getattr(key, "key", None) for key in path}, p
        ),
    }[idiom]
    tx = optax.adamw(LR, weight_decay=DECAY, mask=mask)
    found = {f.name: f for f in audit_objects("jax", (state, tx), idiom).findings}
    assert {name: f.role for name, f in found.items()} == NNX_ROLES  # BatchNorm's BatchStat is not in the state
    decayed = {name for name, role in NNX_ROLES.items() if role in EXPECTED["path_aware_map"]}
    assert {name for name, f in found.items() if f.decays} == decayed
    assert jax.tree.all(jax.tree.map(np.array_equal, nnx.state(model, nnx.Param), before))
