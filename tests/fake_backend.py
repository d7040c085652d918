"""A stand-in adapter whose 'framework' is the oracle, for testing the harness without one.

``regularizer`` is unsupported; ``l1_loss`` raises when FAKE_BACKEND_RAISE is set;
each case sleeps FAKE_BACKEND_SLEEP seconds (to be interrupted).
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
    w, b = oracle.simulate(oracle.loss_penalty_rule(case), case, arrays)
    return Trajectory(w=w, b=b, api="oracle.simulate(...)")
