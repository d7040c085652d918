"""decaylens audit on timm's own optimizer setup: ``timm.optim.create_optimizer_v2`` on a tiny ViT built
from its registry without weights. What timm's source (1.0.31) says it does, and the audit's finding:

timm/optim/_optim_factory.py:273 reads the model's ``no_weight_decay()``, which for a VisionTransformer is
{pos_embed, cls_token, reg_token, dist_token} (timm/models/vision_transformer.py:1001-1003);
timm/optim/_param_groups.py:52-53 spares those and, with ``weight_decay_exclude_1d`` (the default), every
parameter of ndim ≤ 1 or named ``*.bias``; :37-39 leaves out a parameter that does not require a gradient;
``filter_bias_and_bn=False`` turns the 1-D filter off (_optim_factory.py:1339). ``opt="adamw"`` is torch's
AdamW (decoupled × lr); ``opt="momentum"`` torch's SGD with momentum (coupled)."""

import pytest

from harness.audit import audit_objects
from harness.audit.plugin import Pinned

LR, DECAY = 1e-3, 0.05
VIT = {"pretrained": False, "img_size": 32, "patch_size": 8, "embed_dim": 32, "depth": 2, "num_heads": 2,
       "num_classes": 3}  # fmt: skip


def vit(timm):
    return timm.create_model("vit_tiny_patch16_224", **VIT)


def expected_decayed(model, exclude_1d=True):
    """The names timm's _param_groups.py:52-53 puts in the decayed group, by its own rule."""
    spared = model.no_weight_decay()
    return {
        n for n, p in model.named_parameters()
        if p.requires_grad and n not in spared and not (exclude_1d and (p.ndim <= 1 or n.endswith(".bias")))
    }  # fmt: skip


@pytest.mark.parametrize(("opt", "placement"), [("adamw", "decoupled_lr"), ("momentum", "coupled")])
def test_create_optimizer_v2_spares_its_no_weight_decay_names_and_every_1d_parameter(client, opt, placement):
    timm = client("timm")
    model = vit(timm)
    optimizer = client("timm", "timm.optim").create_optimizer_v2(model, opt=opt, lr=LR, weight_decay=DECAY)
    found = audit_objects("torch", (model, optimizer), f"timm {opt}")
    assert {f.name for f in found.findings if f.decays} == expected_decayed(model)
    assert {f.placement for f in found.findings if f.decays} == {placement}
    Pinned(found).assert_spares("norm", "bias", "positional").assert_decays("kernel")
    assert {f.name: f.role for f in found.findings}["pos_embed"] == "positional"


def test_without_the_1d_filter_the_norms_decay_and_are_flagged(client):
    timm = client("timm")
    model = vit(timm)
    model.blocks[0].attn.qkv.weight.requires_grad_(False)
    optimizer = client("timm", "timm.optim").create_optimizer_v2(model, opt="adamw", lr=LR, weight_decay=DECAY,
                                               filter_bias_and_bn=False)  # fmt: skip
    found = audit_objects("torch", (model, optimizer), "timm")
    assert {f.name for f in found.findings if f.decays} == expected_decayed(model, exclude_1d=False)
    flagged = {f.name for f in found.findings if "decays_norm" in f.flags}
    assert flagged == {f.name for f in found.findings if f.role in ("norm_scale", "norm_shift")} != set()
    assert {f.name for f in found.findings if "never_updated" in f.flags} == {"blocks.0.attn.qkv.weight"}
