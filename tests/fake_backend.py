"""A stand-in adapter whose 'framework' is the oracle, for testing the harness without one.

Its ``weight_decay`` is the oracle rule named by FAKE_BACKEND_WEIGHT_DECAY (``coupled`` by
default) and its ``adamw`` is ``decoupled_lr``, both with λ, decaying the bias unless
decay_bias is false; ``regularizer`` is unsupported; ``l1_loss`` raises when
FAKE_BACKEND_RAISE is set; each case sleeps FAKE_BACKEND_SLEEP seconds (to be interrupted).
"""

import os
import time

from harness import oracle
from harness.trajectory import Trajectory, Unsupported


def versions():
    return {"fake": "1"}


def train(case, arrays):
    time.sleep(float(os.environ.get("FAKE_BACKEND_SLEEP", "0")))
    if case.penalty.kind == "regularizer":
        raise Unsupported("no regularizer here")
    if case.penalty.kind == "l1_loss" and os.environ.get("FAKE_BACKEND_RAISE"):
        raise RuntimeError("framework exploded")
    kind, strength = case.penalty.kind, case.penalty.strength
    if kind in ("weight_decay", "adamw"):
        field = os.environ.get("FAKE_BACKEND_WEIGHT_DECAY", "coupled") if kind == "weight_decay" else "decoupled_lr"
        rule = oracle.Rule(loss=case.train.loss.replace("native", "mse"), decay_bias=case.penalty.decay_bias is not False, **{field: strength})
    else:
        rule = oracle.loss_penalty_rule(case.replace({"train.loss": case.train.loss.replace("native", "mse")}))
    w, b = oracle.simulate(rule, case, arrays)
    return Trajectory(w=w, b=b, api=f"oracle.simulate({rule})")
