"""The optimizer steps of the oracle, one step under every rule at once (``harness.oracle``).

Optimizer step Δ from g at step t = 1, 2, … (every state starts at 0 unless said), then p −= Δ:
    sgd        Δ = lr·g
    momentum   v = μv + g;  Δ = lr·v;  with ``momentum_scaled``: v = μv + lr·g;  Δ = v
    nesterov   v = μv + g;  Δ = lr·(g + μv);  with ``momentum_scaled``: v = μv + lr·g;  Δ = lr·g + μv
               (the two forms are one while lr is constant; they part when it changes)
    signum     m = μm + (1−μ)g;  Δ = lr·sign(m)
    lion       c = sign(β₁m + (1−β₁)g);  m = β₂m + (1−β₂)g;  Δ = lr·c
    adam       m = β₁m + (1−β₁)g;  s = β₂s + (1−β₂)g²;  m̂ = m/(1−β₁ᵗ), ŝ = s/(1−β₂ᵗ);  Δ = lr·D with
               eps outside:             D = m̂/(√ŝ + ε)
               eps outside_uncorrected: D = √(1−β₂ᵗ)/(1−β₁ᵗ)·m/(√s + ε)
               eps inside:              D = m̂/√(ŝ + ε)
    radam      m̂, ŝ as adam;  ρ∞ = 2/(1−β₂) − 1,  ρₜ = ρ∞ − 2tβ₂ᵗ/(1−β₂ᵗ);  while ρₜ ≤ 5: Δ = lr·m̂; then
               Δ = lr·rₜ·D (D as adam), rₜ = √((ρₜ−4)(ρₜ−2)ρ∞ / ((ρ∞−4)(ρ∞−2)ρₜ))
    nadam      m, s, ŝ as adam; with ``momentum_decay`` ψ: μₜ = β₁(1 − ½·0.96^(ψt)), Πₜ = μ₁⋯μₜ,
               Δ = lr·((1−μₜ)/(1−Πₜ)·g + μₜ₊₁/(1−Πₜμₜ₊₁)·m) / (√ŝ + ε); without (None):
               Δ = lr·(β₁m/(1−β₁ᵗ⁺¹) + (1−β₁)g/(1−β₁ᵗ)) / (√ŝ + ε)
    adamax     m = β₁m + (1−β₁)g;  Δ = lr/(1−β₁ᵗ)·m/d with, by eps:
               inside: u = max(β₂u, |g| + ε), d = u;  outside: u = max(β₂u, |g|), d = u + ε;  none: d = u
    rmsprop    s = ρs + (1−ρ)g² (s₀ = initial_accumulator); centered: a = ρa + (1−ρ)g, q = s − a²,
               else q = s;  r = g/(√q + ε) (eps outside) or g/√(q + ε) (inside);
               with μ > 0: v = μv + r, Δ = lr·v (or, ``momentum_scaled``, v = μv + lr·r, Δ = v); else Δ = lr·r
    adagrad    s = s + g² (s₀ = initial_accumulator);  Δ = lr·g/(√s + ε) (outside) or lr·g/√(s + ε) (inside)
    adadelta   s = ρs + (1−ρ)g²;  δ = √(x + ε)/√(s + ε)·g;  x = ρx + (1−ρ)δ²;  Δ = lr·δ, or δ if ``lr_ignored``
    lamb       m̂, ŝ as adam;  r = m̂/(√ŝ + ε) + c·p (decoupled_ratio);  per tensor ratio = ‖p‖/‖r‖
               (1 when either is 0);  Δ = lr·ratio·r
    adafactor  per tensor, unfactored (a linear model's weight is a single row or column, where the
               factored moment is the same; a framework that factors an MLP's matrices parts from it):
               β̂ₜ = 1 − t^−0.8;  s = β̂ₜs + (1−β̂ₜ)(g² + 10⁻³⁰);
               u = g/√s;  û = u/max(1, RMS(u));  Δ = ρₜ·max(10⁻³, RMS(p))·û with ρₜ = min(lr, 1/√t)
               (``relative_step``) or ρₜ = lr
"""

import numpy as np

EPS = ("outside", "outside_uncorrected", "inside", "none")  # where ε enters an adaptive step (above)
# What each optimizer's step does to its gradient beside scaling it by lr, as the steps above state it: the
# state a decay added to the gradient (coupled) goes through, and one added beside the step does not.
STATES = {
    "momentum": "momentum", "nesterov": "momentum", "signum": "sign", "lion": "sign", "adam": "normalisation",
    "radam": "normalisation", "nadam": "normalisation", "adamax": "normalisation", "rmsprop": "normalisation",
    "adagrad": "normalisation", "adadelta": "normalisation", "lamb": "normalisation", "adafactor": "normalisation",
}  # fmt: skip


class Step:
    """One optimizer step under every rule at once: per-rule coefficients and conventions as
    columns (rules, 1) or masks, the optimizer's state as arrays (rules, parameters)."""

    def __init__(self, rules, case, tensors, multipliers):
        self.opt = opt = case.optimizer
        self.multipliers = multipliers  # the schedule's ηₖ, k = 0, …, steps
        self.direction = getattr(self, f"_{opt.name}")
        self.tensors = [tensor.index for tensor in tensors]  # harness.network.tensors: slices of p
        size = tensors[-1].index.stop

        def column(value):
            return np.array([[value(rule)] for rule in rules], dtype=np.float64)

        self.grad_scale = column(lambda r: {"half_mse": 1.0, "mse": 2.0}[r.loss])
        decays = np.hstack(
            [np.repeat(column(lambda r, t=t: r.decays(t.role)), t.index.stop - t.index.start, axis=1) for t in tensors]
        )
        self.coupled, self.l1 = decays * column(lambda r: r.coupled), decays * column(lambda r: r.l1)
        self.decoupled_lr, self.decoupled_base, self.decoupled_multiplier, self.decoupled = (
            decays * column(lambda r, name=name: getattr(r, name))
            for name in ("decoupled_lr", "decoupled_base", "decoupled_multiplier", "decoupled")
        )
        self.offset = column(lambda r: r.schedule_offset).astype(int)
        self.ratio_decay = decays * column(lambda r: r.decoupled_ratio)
        self.lr_decay = column(lambda r: r.lr_decay)
        self.eps = {mode: column(lambda r, mode=mode: r.eps == mode).astype(bool) for mode in EPS}
        self.psi = column(lambda r: np.nan if r.momentum_decay is None else r.momentum_decay)
        self.scale_after = column(lambda r: r.scale_after_decay).astype(bool)
        self.relative_step = column(lambda r: r.relative_step).astype(bool)
        self.lr_factor = 1.0 - column(lambda r: r.lr_ignored)
        self.scaled = column(lambda r: r.momentum_scaled).astype(bool)
        zeros = np.zeros((len(rules), size))
        self.state = {
            "m": zeros,
            "s": zeros,
            "v": zeros,
            "x": zeros,
            "a": zeros,
            "u": zeros,
            "product": np.ones_like(self.psi),
        }
        if opt.name in ("adagrad", "rmsprop"):
            self.state["s"] = zeros + opt.initial_accumulator

    def __call__(self, p, g, t):
        """The parameters after step t from ``p`` with data gradient ``g`` (both (rules, parameters))."""
        eta = self.multipliers[t - 1 + self.offset]  # (rules, 1)
        lr = self.opt.lr * eta / (1 + self.lr_decay * (t - 1))
        g = g + self.coupled * p + self.l1 * np.sign(p)
        base = self.opt.lr * self.decoupled_base
        decayed = p - (lr * self.decoupled_lr + base + eta * self.decoupled_multiplier + self.decoupled) * p
        return decayed - self.direction(g, np.where(self.scale_after, decayed, p), p, lr, t)

    # Each direction: (g, p as the step reads it, p before the decay, lr (rules, 1), t) -> Δ.

    def _sgd(self, g, p, p_old, lr, t):
        return lr * g

    def _accumulate(self, step, lr):
        """The momentum buffer after adding ``step``, raw or × lr by each rule's convention."""
        self.state["v"] = self.opt.momentum * self.state["v"] + np.where(self.scaled, lr * step, step)
        return self.state["v"]

    def _momentum(self, g, p, p_old, lr, t):
        v = self._accumulate(g, lr)
        return np.where(self.scaled, v, lr * v)

    def _nesterov(self, g, p, p_old, lr, t):
        v, mu = self._accumulate(g, lr), self.opt.momentum
        return np.where(self.scaled, lr * g + mu * v, lr * (g + mu * v))

    def _signum(self, g, p, p_old, lr, t):
        mu = self.opt.momentum
        self.state["m"] = mu * self.state["m"] + (1 - mu) * g
        return lr * np.sign(self.state["m"])

    def _lion(self, g, p, p_old, lr, t):
        b1, b2 = self.opt.beta1, self.opt.beta2
        direction = np.sign(b1 * self.state["m"] + (1 - b1) * g)
        self.state["m"] = b2 * self.state["m"] + (1 - b2) * g
        return lr * direction

    def _moments(self, g, t):
        """Adam's moments after step t, and their bias corrections 1 − β₁ᵗ, 1 − β₂ᵗ."""
        b1, b2 = self.opt.beta1, self.opt.beta2
        self.state["m"] = b1 * self.state["m"] + (1 - b1) * g
        self.state["s"] = b2 * self.state["s"] + (1 - b2) * g * g
        return self.state["m"], self.state["s"], 1 - b1**t, 1 - b2**t

    def _adaptive(self, m, s, c1, c2):
        """Adam's D = m̂ over the root of ŝ, with ε where each rule's convention puts it."""
        eps, masks = self.opt.eps, self.eps
        found = (m / c1) / (np.sqrt(s / c2) + eps)  # outside, each other convention where a rule has it
        if masks["inside"].any():
            found = np.where(masks["inside"], (m / c1) / np.sqrt(s / c2 + eps), found)
        if masks["outside_uncorrected"].any():
            found = np.where(masks["outside_uncorrected"], np.sqrt(c2) / c1 * m / (np.sqrt(s) + eps), found)
        return found

    def _adam(self, g, p, p_old, lr, t):
        return lr * self._adaptive(*self._moments(g, t))

    def _radam(self, g, p, p_old, lr, t):
        m, s, c1, c2 = self._moments(g, t)
        b2 = self.opt.beta2
        rho_inf = 2 / (1 - b2) - 1
        rho = rho_inf - 2 * t * b2**t / c2
        if rho <= 5:
            return lr * m / c1
        rectification = np.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
        return lr * rectification * self._adaptive(m, s, c1, c2)

    def _nadam(self, g, p, p_old, lr, t):
        b1, eps = self.opt.beta1, self.opt.eps
        m, s, c1, c2 = self._moments(g, t)
        root = np.sqrt(s / c2) + eps
        scheduled = ~np.isnan(self.psi)
        psi = np.where(scheduled, self.psi, 0.0)
        mu, mu_next = (b1 * (1 - 0.5 * 0.96 ** (psi * k)) for k in (t, t + 1))
        self.state["product"] = self.state["product"] * mu
        product = self.state["product"]
        with_schedule = ((1 - mu) / (1 - product) * g + mu_next / (1 - product * mu_next) * m) / root
        without = (b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / c1) / root
        return lr * np.where(scheduled, with_schedule, without)

    def _adamax(self, g, p, p_old, lr, t):
        b1, b2, eps, masks = self.opt.beta1, self.opt.beta2, self.opt.eps, self.eps
        self.state["m"] = b1 * self.state["m"] + (1 - b1) * g
        self.state["u"] = np.maximum(b2 * self.state["u"], np.abs(g) + np.where(masks["inside"], eps, 0.0))
        denominator = self.state["u"] + np.where(masks["outside"] | masks["outside_uncorrected"], eps, 0.0)
        return lr / (1 - b1**t) * self.state["m"] / denominator

    def _root(self, q):
        """1/√q with ε outside (√q + ε) or inside (√(q + ε)) by each rule's convention."""
        eps = self.opt.eps
        return np.where(self.eps["inside"], 1 / np.sqrt(q + eps), 1 / (np.sqrt(q) + eps))

    def _rmsprop(self, g, p, p_old, lr, t):
        opt = self.opt
        self.state["s"] = opt.rho * self.state["s"] + (1 - opt.rho) * g * g
        q = self.state["s"]
        if opt.centered:
            self.state["a"] = opt.rho * self.state["a"] + (1 - opt.rho) * g
            q = q - self.state["a"] ** 2
        step = g * self._root(q)
        if opt.momentum > 0:
            v = self._accumulate(step, lr)
            return np.where(self.scaled, v, lr * v)
        return lr * step

    def _adagrad(self, g, p, p_old, lr, t):
        self.state["s"] = self.state["s"] + g * g
        return lr * g * self._root(self.state["s"])

    def _adadelta(self, g, p, p_old, lr, t):
        rho, eps = self.opt.rho, self.opt.eps
        self.state["s"] = rho * self.state["s"] + (1 - rho) * g * g
        delta = np.sqrt(self.state["x"] + eps) / np.sqrt(self.state["s"] + eps) * g
        self.state["x"] = rho * self.state["x"] + (1 - rho) * delta * delta
        return (lr * self.lr_factor + (1 - self.lr_factor)) * delta

    def _per_tensor(self, values, function):
        """``function`` of each tensor's slice of ``values`` (rules, parameters), spread over the tensor."""
        out = np.empty_like(values)
        for tensor in self.tensors:
            out[:, tensor] = function(values[:, tensor])
        return out

    def _lamb(self, g, p, p_old, lr, t):
        m, s, c1, c2 = self._moments(g, t)
        update = (m / c1) / (np.sqrt(s / c2) + self.opt.eps) + self.ratio_decay * p_old
        norms = self._per_tensor(p, _norm), self._per_tensor(update, _norm)
        ratio = np.where((norms[0] > 0) & (norms[1] > 0), norms[0] / norms[1], 1.0)
        return lr * ratio * update

    def _adafactor(self, g, p, p_old, lr, t):
        beta = 1 - t**-0.8
        self.state["s"] = beta * self.state["s"] + (1 - beta) * (g * g + 1e-30)
        u = g / np.sqrt(self.state["s"])
        clipped = u / np.maximum(1.0, self._per_tensor(u, _rms))
        step_size = np.where(self.relative_step, np.minimum(lr, 1 / np.sqrt(t)), lr)
        return step_size * np.maximum(1e-3, self._per_tensor(p, _rms)) * clipped


def _norm(values):
    return np.linalg.norm(values, axis=-1, keepdims=True)


def _rms(values):
    return np.sqrt(np.mean(values * values, axis=-1, keepdims=True))
