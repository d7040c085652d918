"""Time the whole comparison as ``tox -m compare`` runs it, with every env already built.

    python tests/benchmarks/whole_comparison.py [--spec d2l ...] [--env tensorflow=/path/to/venv/bin ...]

Into a fresh temporary directory: in each framework's env, ``decaylens run --probe`` (the
runs, then the fingerprint's probes, in one process) as tox does; then ``decaylens report``
with this Python. Every ``--spec`` is passed on to run and report (none: their default, as
in tox). An env's commands are taken from ``.tox/<backend>/bin`` unless ``--env`` names
another directory. Prints each command's wall time and the total; the target (issue 9) is
the whole d2l comparison under 60 s. Printed, not asserted.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import backends

TARGET_SECONDS = 60.0


def timed(command):
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", action="append", default=[], help="a spec to run and report (repeatable)")
    parser.add_argument("--env", action="append", default=[], metavar="BACKEND=BIN", help="an env's bin directory")
    args = parser.parse_args()
    bins = {name: Path(".tox", name, "bin") for name in backends.NAMES} | dict(e.split("=", 1) for e in args.env)
    specs = [argument for name in args.spec for argument in ("--spec", name)]
    seconds = {}
    with tempfile.TemporaryDirectory() as results:
        for name in backends.NAMES:
            decaylens = str(Path(bins[name], "decaylens"))
            seconds[f"{name} run + probe"] = timed(
                [decaylens, "run", "--backend", name, *specs, "--out", results, "--probe"]
            )
        report = [sys.executable, "-m", "harness", "report", *specs, "--results", results, "--out", results]
        seconds["report"] = timed(report)
    for step, value in seconds.items():
        print(f"{step:<24} {value:6.1f} s")
    total = sum(seconds.values())
    print(
        f"{'in all':<24} {total:6.1f} s "
        f"(target < {TARGET_SECONDS:g} s: {'met' if total < TARGET_SECONDS else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
