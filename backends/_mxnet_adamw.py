"""Adam with decoupled weight decay for Gluon's Trainer: MXNet 1.9.1 has the ``mx.nd.contrib.adamw_update``
operator but no optimizer class that calls it, so a user writes one, as GluonNLP's ``BERTAdam`` does."""

import math

import mxnet as mx


@mx.optimizer.register
class ContribAdamW(mx.optimizer.Optimizer):
    """Adam with decoupled weight decay, registered as ``'contribadamw'`` (MXNet's registry names an
    optimizer by its class): at step t, one call per parameter of MXNet's own

        mx.nd.contrib.adamw_update:  m = β₁m + (1−β₁)g;  v = β₂v + (1−β₂)g²;
                                     w -= eta·(lr·m/(√v + ε) + wd·w),  g = rescale_grad·grad

    with ``wd`` = λ·wd_mult and, c = √(1−β₂ᵗ)/(1−β₁ᵗ) being Adam's bias correction (which
    ``mx.optimizer.Adam`` folds into ``adam_update``'s lr as well): ``eta`` = the learning rate
    lrₜ (the schedule's, if any) and ``lr`` = c, as GluonNLP's BERTAdam calls it, so that the decay is
    × lrₜ; or, with ``eta_multiplier``, ``eta`` = lrₜ / lr₀ (the operator's "learning rate schedule
    multiplier") and ``lr`` = lr₀·c, so that the decay is × the multiplier only. Its defaults are
    ``mx.optimizer.Adam``'s.
    """

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-08, eta_multiplier=False, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon
        self.eta_multiplier = eta_multiplier
        self._rescale = (None, None)

    def create_state(self, index, weight):
        return tuple(mx.nd.zeros(weight.shape, weight.context, dtype=weight.dtype) for _ in range(2))

    def update(self, index, weight, grad, state):
        self._update_count(index)
        t = self._index_update_count[index]
        mean, var = state
        correction, lr = math.sqrt(1 - self.beta2**t) / (1 - self.beta1**t), self._get_lr(index)
        # The operator reads rescale_grad from an NDArray; given a float, adamw_update makes
        # mx.nd.full((1,), rescale_grad) (float32) on every call. Made here once per value instead.
        if self._rescale[0] != self.rescale_grad:
            self._rescale = (self.rescale_grad, mx.nd.full((1,), self.rescale_grad, ctx=weight.context))
        mx.nd.contrib.adamw_update(
            weight,
            grad,
            mean,
            var,
            self._rescale[1],
            lr=correction * self.lr if self.eta_multiplier else correction,
            eta=lr / self.lr if self.eta_multiplier else lr,
            wd=self._get_wd(index),
            beta1=self.beta1,
            beta2=self.beta2,
            epsilon=self.epsilon,
            out=weight,
        )
