"""A stand-in adapter whose 'framework' is the oracle, for testing the harness without one.

``make(...)`` builds one in-process: its ``weight_decay`` is the oracle rule field named by
``weight_decay`` (``coupled`` by default) and its ``adamw`` is ``decoupled_lr``, both with λ,
decaying the bias unless decay_bias is false; its native loss is mean e²; ``regularizer`` is
unsupported; ``l1_loss`` raises when ``raises``; each case sleeps ``sleep`` seconds. The module
itself is such an adapter, steered by FAKE_BACKEND_WEIGHT_DECAY, FAKE_BACKEND_RAISE and
FAKE_BACKEND_SLEEP, for the tests that run it in a subprocess.
"""

import dataclasses
import os
import time
from types import SimpleNamespace

from backends.contract import Statement, Trajectory, Unsupported
from harness import oracle

# contract.EXPORTS
__all__ = ("SWEEPABLE", "RATIO_TARGET", "OWN_BEHAVIOURS", "VARIANTS", "versions", "train", "train_sweep", "train_code")

SWEEPABLE = ()
RATIO_TARGET = 10.0
OWN_BEHAVIOURS = {}
VARIANTS = {}


def versions():
    return {"fake": "1"}


def train(case, arrays):
    return _from_environment().train(case, arrays)


def train_sweep(cases, arrays):
    return _from_environment().train_sweep(cases, arrays)


def train_code(case, arrays, statements):
    return _from_environment().train_code(case, arrays, statements)


def _from_environment():
    return make(
        weight_decay=os.environ.get("FAKE_BACKEND_WEIGHT_DECAY", "coupled"),
        raises=bool(os.environ.get("FAKE_BACKEND_RAISE")),
        sleep=float(os.environ.get("FAKE_BACKEND_SLEEP", "0")),
    )


# The fake's one variant (``make(variants=True)``): its adamw with the decay × the schedule's multiplier.
MULTIPLIER = {("adam", "adamw"): {"eta_multiplier": "oracle.Rule(decoupled_multiplier=λ)"}}


def make(weight_decay="coupled", raises=False, sleep=0.0, sweepable=(), trained=None, variants=False):
    """A fake adapter; ``trained``, a list, gets the id of every case it trains. Its ``decoupled``
    and ``adamw`` are ``decoupled_lr`` with λ, or λ = 0.01 when given none (with ``variants``, its
    adamw variant ``eta_multiplier`` is ``decoupled_multiplier``); its ``lr_decay`` is the
    oracle's lr decay."""

    def train(case, arrays):
        time.sleep(sleep)
        if trained is not None:
            trained.append(case.id)
        penalty, loss = case.penalty, case.train.loss.replace("native", "mse")
        if penalty.kind == "regularizer":
            raise Unsupported("no regularizer here")
        if penalty.kind == "l1_loss" and raises:
            raise RuntimeError("framework exploded")
        if penalty.in_optimizer:
            field = {"weight_decay": weight_decay, "lr_decay": "lr_decay"}.get(penalty.kind, "decoupled_lr")
            field = "decoupled_multiplier" if penalty.variant else field
            strength = 0.01 if penalty.omit_strength else penalty.strength
            bias = not penalty.spares_bias
            rule = oracle.Rule(loss=loss, decay_bias=bias, spared=penalty.spare, **{field: strength})
        else:
            rule = oracle.loss_penalty_rule(case.replace({"train.loss": loss}))
        rule = dataclasses.replace(rule, momentum_decay=case.optimizer.momentum_decay)
        return train_code(case, arrays, (Statement("code", f"rule = oracle.{rule!r}"),))

    def train_sweep(cases, arrays):
        return [train(case, arrays) for case in cases]

    def train_code(case, arrays, statements):
        """The oracle's run of the ``rule`` that the code statements assign."""
        namespace = {"oracle": oracle}
        for statement in statements:
            if statement.kind in ("call", "code"):
                exec(statement.text, namespace)
        w, b = oracle.simulate(namespace["rule"], case, arrays)
        return Trajectory(w=w, b=b, statements=tuple(statements))

    return SimpleNamespace(
        SWEEPABLE=sweepable, RATIO_TARGET=RATIO_TARGET, OWN_BEHAVIOURS=OWN_BEHAVIOURS,
        VARIANTS=MULTIPLIER if variants else VARIANTS, versions=versions, train=train, train_sweep=train_sweep,
        train_code=train_code,
    )  # fmt: skip
