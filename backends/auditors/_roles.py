"""A parameter's role (``backends.contract.ROLES``) from the model's structure: the type of the module
or layer that owns it directly, the parameter's own name and its number of dimensions. Every
auditor names the owner by its framework's class (``LayerNorm``, ``LayerNormalization``,
``BatchNorm1d``, ``Embedding``, ``Dense``, a user's ``LlamaRMSNorm``) and the rule is the same."""

import re

NORM = re.compile(r"norm", re.IGNORECASE)  # LayerNorm, BatchNorm2d, RMSNorm, GroupNorm, LayerNormalization, ...
EMBEDDING = re.compile(r"embed", re.IGNORECASE)  # Embedding, Embed, EmbeddingBag
# Learned positions and tokens: HF's position_embeddings, GPT-2's wpe, timm's pos_embed and cls_token.
POSITIONAL = re.compile(r"pos(ition)?(_|$|al|emb)|^wpe$|(cls|reg|dist|mask)_token", re.IGNORECASE)
SHIFTS = ("bias", "beta", "shift", "offset")


def role(owner, name, ndim, holder=""):
    """The role of parameter ``name`` (its own name in its owner, e.g. ``weight``) of ``ndim``
    dimensions, held directly by a module or layer of type ``owner``, which its parent calls
    ``holder`` (``position_embeddings``; empty for the model itself)."""
    if NORM.search(owner):
        return "norm_shift" if name.lower() in SHIFTS else "norm_scale"
    if EMBEDDING.search(owner) and ndim == 2:
        return "positional" if POSITIONAL.search(holder) else "embedding"
    if POSITIONAL.search(name):
        return "positional"
    if "bias" in name.lower():
        return "bias"
    return "kernel" if ndim >= 2 else "other"
