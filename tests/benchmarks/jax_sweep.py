"""Time a λ sweep against one case on the JAX backend, compile included.

    python tests/benchmarks/jax_sweep.py [--optimizer sgd] [--kind weight_decay] [--cases 64]

Each timing is the first call in a fresh Python process (imports and data excluded), so
neither side reuses the other's compiled program; the median of ``--repeat`` processes
is printed, with the time of a second, already compiled call beside it. The target
(issue 4) is a 64-λ sweep in less than 3× the time of one case. Printed, not asserted.
"""

import argparse
import statistics
import subprocess
import sys
import time

STRENGTHS = (0.0, 6.0)  # the sweep's λ are evenly spaced over this range
ONE_STRENGTH = 3.0  # λ of the single case, as in the reference experiment


def measure(optimizer, kind, n):
    """(first call, second call) seconds of training ``n`` cases of the d2l spec in this
    process: ``train`` for one case, else one ``train_sweep``."""
    import numpy as np

    import backends
    from harness import data, spec

    adapter = backends.load("jax")
    _, base = spec.load("d2l").cases("jax")[0]
    strengths = np.linspace(*STRENGTHS, n) if n > 1 else [ONE_STRENGTH]
    cases = [base.replace({"optimizer.name": optimizer, "penalty.kind": kind, "penalty.strength": float(s)}) for s in strengths]
    arrays = data.make(cases[0])
    run = (lambda: adapter.train(cases[0], arrays)) if n == 1 else (lambda: adapter.train_sweep(cases, arrays))
    seconds = []
    for _ in range(2):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    return seconds


def in_fresh_process(args, n):
    command = [sys.executable, __file__, "--optimizer", args.optimizer, "--kind", args.kind, "--measure", str(n)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return [float(value) for value in output.split()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimizer", default="sgd", choices=("sgd", "momentum", "nesterov", "adam"))
    parser.add_argument("--kind", default="weight_decay", choices=("none", "l2_loss", "l1_loss", "weight_decay", "adamw"))
    parser.add_argument("--cases", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--measure", type=int, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.measure:
        print(*measure(args.optimizer, args.kind, args.measure))
        return
    timings = {}
    for n in (1, args.cases):
        runs = [in_fresh_process(args, n) for _ in range(args.repeat)]
        timings[n] = [statistics.median(run[i] for run in runs) for i in (0, 1)]
    (one, one_warm), (sweep, sweep_warm) = timings[1], timings[args.cases]
    print(f"{args.optimizer}, {args.kind}; median of {args.repeat} fresh processes")
    print(f"{'one case':<16}: {one:.3f} s compile included ({one_warm:.3f} s once compiled)")
    print(f"{f'{args.cases}-λ sweep':<16}: {sweep:.3f} s compile included ({sweep_warm:.3f} s once compiled)")
    print(f"{'sweep / one case':<16}: {sweep / one:.2f}× (target: < 3×)")


if __name__ == "__main__":
    main()
