"""decaylens audit on Hugging Face's own optimizer setup: ``Trainer.create_optimizer()`` (and its
scheduler) on a tiny BERT and a tiny GPT-2 built from configs (no download), with
``TrainingArguments(weight_decay=0.01)``. What the library's source says it does, and the audit's finding:

transformers/trainer.py:1431-1432 (5.25.0) ``get_decay_parameter_names``: every parameter decays but those
of ``nn.LayerNorm`` modules and those whose name matches bias, layernorm, rmsnorm or a ``norm`` part;
trainer.py:1288-1301: two groups, the decayed at ``args.weight_decay``, the rest at 0.0; the default
optimizer is torch's AdamW (decoupled × lr). Nothing spares the embeddings: they decay."""

import numpy as np
import pytest

from harness.audit import audit_objects
from harness.audit.plugin import Pinned

LR, DECAY, STEPS = 5e-5, 0.01, 100
# torch/optim/adam.py:419 (2.13.0) multiplies a float32 parameter by the Python float 1 − lr·λ = 1 − 5e-7, which
# float32 holds as 1 − 8·2⁻²⁴ = 1 − 4.77e-7: the decay a step really takes is 0.954 of lr·λ, and the audit sees it.
REALIZED = 1.0 - float(np.float32(1.0 - LR * DECAY))
# The measured shrink against REALIZED: 8 float32 ulps a step, rounded per value, averaged over 256 samples.
SHRINK_TOLERANCE = 0.02
CONFIGS = {
    "bert": ("BertConfig", "BertForSequenceClassification", {"hidden_size": 16, "num_hidden_layers": 2,
             "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 32, "vocab_size": 64}),
    "gpt2": ("GPT2Config", "GPT2LMHeadModel", {"n_embd": 16, "n_layer": 2, "n_head": 2, "n_positions": 32,
             "vocab_size": 64, "bos_token_id": 0, "eos_token_id": 0}),
}  # fmt: skip


def model(transformers, name):
    config, model_class, settings = CONFIGS[name]
    return getattr(transformers, model_class)(getattr(transformers, config)(**settings))


def trainer(transformers, tmp_path, model, optimizers=(None, None)):
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), weight_decay=DECAY, learning_rate=LR, report_to=[], use_cpu=True
    )
    return transformers.Trainer(model=model, args=args, optimizers=optimizers)


@pytest.mark.parametrize("name", CONFIGS)
def test_the_trainer_decays_exactly_its_decay_parameter_names_and_the_embeddings(client, tmp_path, name):
    transformers = client("transformers")
    t = trainer(transformers, tmp_path, model(transformers, name))
    optimizer = t.create_optimizer()
    scheduler = t.create_scheduler(num_training_steps=STEPS, optimizer=optimizer)
    found = audit_objects("torch", (t.model, optimizer, scheduler), f"{name} Trainer")
    # By tensor: GPT-2's lm_head.weight is its wte.weight (tied), which the audit names once, as torch's
    # named_parameters() does.
    tensors = {n: id(p) for n, p in t.model.named_parameters(remove_duplicate=False)}
    decayed = {tensors[n] for n in t.get_decay_parameter_names(t.model)}
    assert {tensors[f.name] for f in found.findings if f.decays} == decayed
    for f in found.findings:
        if f.decays:
            assert f.placement == "decoupled_lr" and f.decay == pytest.approx(REALIZED, rel=SHRINK_TOLERANCE)
        assert f.lrs[0] == pytest.approx(LR)  # the linear schedule, no warmup: the first step at the full lr
    Pinned(found).assert_spares("norm", "bias").assert_decays("embedding", "positional", "kernel")


def test_an_optimizer_handed_one_flat_parameter_list_decays_the_norms(client, tmp_path):
    """The integration bug: an optimizer built on ``model.parameters()`` and passed to the Trainer keeps no
    groups, so its weight_decay reaches every LayerNorm and bias; the audit names them."""
    transformers = client("transformers")
    import torch

    bert = model(transformers, "bert")
    flat = torch.optim.AdamW(bert.parameters(), lr=LR, weight_decay=DECAY)
    t = trainer(transformers, tmp_path, bert, optimizers=(flat, None))
    assert t.create_optimizer() is flat  # the Trainer keeps the optimizer it is given (trainer.py:1286)
    found = audit_objects("torch", (t.model, flat), "flat")
    norms = {f.name for f in found.findings if f.role in ("norm_scale", "norm_shift")}
    assert norms and {f.name for f in found.findings if "decays_norm" in f.flags} == norms
    with pytest.raises(AssertionError, match="LayerNorm"):
        Pinned(found).assert_spares("norm")
