"""The model in NumPy float64 over flat parameters, batched over any leading axes.

p = (w, b): w is every weight, each layer's W (fan_in, fan_out) flattened row-major, input layer
first; b is every bias, input layer first (``harness.data.Arrays``, ``backends.contract.Trajectory``).
A linear model's b is one number per step; ``joined`` gives it its own last axis.

    forward   h₀ = x,  zₗ = hₗ₋₁Wₗ + bₗ,  hₗ = σ(zₗ) for the hidden layers,  ŷ = z_L
    backward  of L = (1/n) Σᵢ ½eᵢ², e = ŷ − y:  δ_L = e/n,  ∇Wₗ = hₗ₋₁ᵀδₗ,  ∇bₗ = Σᵢ δₗᵢ,
              δₗ₋₁ = δₗWₗᵀ ⊙ σ'(zₗ₋₁),  σ'(z) = [z > 0] (relu) or 1 − tanh²(z) (tanh)
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tensor:
    """One parameter tensor: its name (``W1``, ``b1``, … ; ``w``, ``b`` for the linear model), its
    role (``harness.case.ROLES``), its shape and its place in the joined p = (w, b)."""

    name: str
    role: str
    shape: tuple
    index: slice

    @property
    def is_weight(self):
        return self.role.endswith("_weight")


def tensors(case):
    """The model's parameter tensors in the order of p = (w, b): every weight, then every bias."""
    linear = case.model.kind == "linear"
    weights, biases = [], []
    for number, layer in enumerate(case.layers, start=1):
        weight_role, bias_role = layer.roles
        weights.append(("w" if linear else f"W{number}", weight_role, (layer.fan_in, layer.fan_out)))
        biases.append(("b" if linear else f"b{number}", bias_role, (layer.fan_out,)))
    found, start = [], 0
    for name, role, shape in weights + biases:
        size = int(np.prod(shape))
        found.append(Tensor(name, role, shape, slice(start, start + size)))
        start += size
    return tuple(found)


def joined(w, b):
    """p = (w, b) as one float64 array (..., parameters); a linear model's b (...) gets a last axis."""
    w, b = np.asarray(w, np.float64), np.asarray(b, np.float64)
    return np.concatenate([w, b if b.ndim == w.ndim else b[..., None]], axis=-1)


def split(case, p):
    """(w, b) of a joined p: the inverse of ``joined`` (a linear model's b loses its last axis)."""
    weights = sum(t.index.stop - t.index.start for t in tensors(case) if t.is_weight)
    w, b = p[..., :weights], p[..., weights:]
    return (w, b[..., 0]) if case.model.kind == "linear" else (w, b)


def _layers(case, p):
    """[(W (..., fan_in, fan_out), b (..., 1, fan_out))] of each layer, input first."""
    found = [p[..., t.index].reshape(*p.shape[:-1], *t.shape) for t in tensors(case)]  # every W, then every b
    half = len(found) // 2
    return [(w, b[..., None, :]) for w, b in zip(found[:half], found[half:])]


def _activation(case, z):
    return np.maximum(z, 0.0) if case.model.activation == "relu" else np.tanh(z)


def predict(case, p, x):
    """ŷ for each row of p (..., parameters) on the examples x (n, dim): shape (..., n)."""
    if case.model.kind == "linear":
        return p[..., :-1] @ x.T + p[..., -1:]
    layers = _layers(case, p)
    h = x
    for weight, bias in layers[:-1]:
        h = _activation(case, h @ weight + bias)
    weight, bias = layers[-1]
    return (h @ weight + bias)[..., 0]


def gradient(case, p, x, y):
    """∇p of L = (1/n) Σ ½(ŷᵢ − yᵢ)² for each row of p (..., parameters): the same shape. The
    linear model's is one product with x augmented by a column of ones, the bias's input."""
    if case.model.kind == "linear":
        x = np.hstack([x, np.ones((len(x), 1))])
        return ((p @ x.T - y) @ x) / len(x)
    layers = _layers(case, p)
    inputs, h = [], x
    for weight, bias in layers[:-1]:
        inputs.append(h)
        h = _activation(case, h @ weight + bias)
    inputs.append(h)
    delta = ((h @ layers[-1][0] + layers[-1][1]) - y[:, None]) / len(x)  # (..., n, 1)
    weights, biases = [], []
    for index in reversed(range(len(layers))):
        h = inputs[index]
        weights.append(np.swapaxes(h, -1, -2) @ delta if h.ndim > 2 else np.einsum("ni,...no->...io", h, delta))
        biases.append(delta.sum(axis=-2))
        if index:
            slope = (h > 0) if case.model.activation == "relu" else 1 - h * h  # σ' from σ(z) itself
            delta = (delta @ np.swapaxes(layers[index][0], -1, -2)) * slope
    parts = [g.reshape(*p.shape[:-1], -1) for g in reversed(weights)] + list(reversed(biases))
    return np.concatenate(parts, axis=-1)
