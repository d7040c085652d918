"""The harness's parameter layout, for the adapters: NumPy only, no framework and no harness import.

A case's model is its ``case.layers``, input layer first, each with a weight W (fan_in, fan_out) and
a bias b (fan_out,). The shared initial arrays and every row of a ``Trajectory`` hold them flat:
``w`` is every W flattened row-major, input layer first, and ``b`` every b; the linear model's one
bias is a scalar. An adapter reads its framework's parameters as (W, b) pairs in that orientation
(a torch, Gluon or MLX weight is Wᵀ) and lets this module do the rest.
"""

import numpy as np


def blocks(case, w, b):
    """[(W (fan_in, fan_out), b (fan_out,))] of each layer, input layer first, as views of the flat ``w``, ``b``."""
    weights = np.split(np.asarray(w), np.cumsum([layer.fan_in * layer.fan_out for layer in case.layers])[:-1])
    biases = np.split(np.atleast_1d(b), np.cumsum([layer.fan_out for layer in case.layers])[:-1])
    return [
        (weight.reshape(layer.fan_in, layer.fan_out), bias)
        for layer, weight, bias in zip(case.layers, weights, biases, strict=True)
    ]


def roles(case, parameters):
    """[(role, parameter)] of ``parameters`` given layer by layer as (weight, bias), input layer first."""
    return [
        (role, parameter)
        for layer, pair in zip(case.layers, parameters, strict=True)
        for role, parameter in zip(layer.roles, pair, strict=True)
    ]


def flat(case, pairs, xp=np):
    """(w, b) of the layers' (W (fan_in, fan_out), b) ``pairs`` in the layout, with array namespace ``xp``
    (NumPy, or e.g. ``jax.numpy`` inside a traced step); the linear model's b is its one bias."""
    w = xp.concatenate([xp.reshape(weight, (-1,)) for weight, _ in pairs])
    b = xp.concatenate([xp.reshape(bias, (-1,)) for _, bias in pairs])
    return (w, b[0]) if case.model.kind == "linear" else (w, b)


class Rows:
    """The (w, b) trajectory of a run: ``write(step, pairs)`` stores row ``step`` (0 is before
    training) from the layers' (W, b) NumPy ``pairs``; ``w`` (steps + 1, weights) and ``b``
    (steps + 1,) for the linear model, else (steps + 1, biases)."""

    def __init__(self, case, dtype):
        self.case = case
        biases = sum(layer.fan_out for layer in case.layers)
        rows = case.steps + 1
        self.w = np.empty((rows, case.parameters - biases), dtype=dtype)
        self.b = np.empty(rows if case.model.kind == "linear" else (rows, biases), dtype=dtype)

    def write(self, step, pairs):
        self.w[step], self.b[step] = flat(self.case, pairs)
