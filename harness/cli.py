"""Command line: ``decaylens run | probe | validate | specs | report | bench``."""

import argparse
import json
import os
import signal
import sys
from pathlib import Path

import backends
from harness import bench, files, probes, report, spec
from harness.errors import UsageError
from harness.run import print_progress, run

GOLDEN = "tests/golden"  # checked-in fingerprints, one per backend


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser():
    parser = _Parser(prog="decaylens", description="What weight_decay really does, framework by framework.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    # Arguments several commands share, as argparse parents (asv's common_args).
    backend = _Parser(add_help=False)
    env_backend = os.environ.get("DECAYLENS_BACKEND")  # set in every framework's tox env
    backend.add_argument(
        "--backend",
        default=env_backend,
        required=not env_backend,
        help=f"one of: {', '.join(backends.NAMES)} (default $DECAYLENS_BACKEND)",
    )
    specs = _Parser(add_help=False)
    specs.add_argument(
        "--spec", action="append", help="built-in spec name or TOML path, repeatable (default: every built-in spec)"
    )

    run_cmd = commands.add_parser(
        "run", parents=[backend, specs], help="train every case of some specs with one backend and store the results"
    )
    run_cmd.add_argument("--out", default="results", help="results directory (default results)")
    run_cmd.add_argument(
        "--force", action="store_true", help="recompute cases already stored (and, with --probe, the fingerprint)"
    )
    run_cmd.add_argument(
        "--shard", type=_shard, default=(1, 1), metavar="I/N", help="run only shard I of N (1 ≤ I ≤ N)"
    )
    run_cmd.add_argument(
        "--probe",
        action="store_true",
        help="then probe the backend's fingerprint as decaylens probe does, in the same process",
    )

    probe_cmd = commands.add_parser(
        "probe", parents=[backend], help="derive a backend's semantic fingerprint from tiny probe runs"
    )
    probe_cmd.add_argument("--out", default="results", help="directory for semantics-<backend>.json (default results)")
    probe_cmd.add_argument(
        "--update-golden",
        action="store_true",
        help=f"also write {GOLDEN}/<backend>.json (run from the repository root)",
    )

    validate = commands.add_parser("validate", help="check a spec and list its cases")
    validate.add_argument("spec", help="built-in spec name or TOML path")

    commands.add_parser("specs", help="list the built-in specs")

    report_cmd = commands.add_parser(
        "report", parents=[specs], help="write reports/index.html and reports/REPORT.md from the results"
    )
    report_cmd.add_argument("--results", default="results", help="results directory (default results)")
    report_cmd.add_argument("--out", default="reports", help="report directory (default reports)")

    bench_cmd = commands.add_parser(
        "bench", parents=[backend], help="time each case's training run against the NumPy oracle's"
    )
    bench_cmd.add_argument("--spec", default="d2l", help="built-in spec name or TOML path (default d2l)")
    bench_cmd.add_argument(
        "--repeats", type=_count, default=5, help="timed calls per case, whose median is shown (default 5)"
    )
    bench_cmd.add_argument("--json", type=Path, help="also write the timings to this JSON file")
    return parser


def _shard(text):
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count)):
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; allowed: I/N with 1 <= I <= N, e.g. 2/4")
    return int(index), int(count)


def _count(text):
    if not (text.isdigit() and int(text) >= 1):
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; allowed: a whole number ≥ 1")
    return int(text)


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except (UsageError, backends.MissingFramework) as error:
        print(f"decaylens: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("decaylens: interrupted; every stored result is complete, run again to resume", file=sys.stderr)
        return 130


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _run(args):
    _known_backend(args.backend)
    loaded = _load_specs(args.spec)
    signal.signal(signal.SIGTERM, _interrupt)  # so a terminated run cleans up like Ctrl-C
    errors = 0
    for one in loaded:
        counts = run(args.backend, one, args.out, force=args.force, shard=args.shard, progress=print_progress)
        summary = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
        print(f"{args.backend} {one.name}: {summary}; results in {args.out}/{args.backend}/")
        errors += counts["error"]
    if errors:
        print(f"decaylens: {errors} case(s) raised an error; see their results files", file=sys.stderr)
    if args.probe:
        path = Path(args.out) / f"semantics-{args.backend}.json"
        if not args.force and probes.is_current(path, args.backend, backends.load(args.backend)):
            print(f"{path} is up to date (the same probes and framework versions); --force probes again")
        else:
            errors += _write_fingerprint(args.backend, args.out, f"decaylens run --backend {args.backend} --probe")
    return 1 if errors else 0


def _load_specs(names):
    """Every spec named (default: every built-in one), all validated before any is used."""
    return [spec.load(name) for name in dict.fromkeys(names or spec.builtin_names())]


def _probe(args):
    _known_backend(args.backend)
    golden = Path(GOLDEN)
    if args.update_golden and not golden.parent.is_dir():
        raise UsageError(
            f"--update-golden writes {GOLDEN}/, but there is no tests/ here; run it from the repository root"
        )
    command = "decaylens probe --backend " + args.backend + (" --update-golden" if args.update_golden else "")
    errors = _write_fingerprint(
        args.backend, args.out, command, golden / f"{args.backend}.json" if args.update_golden else None
    )
    return 1 if errors else 0


def _write_fingerprint(backend, out, command, golden=None):
    """Probe ``backend`` and write ``<out>/semantics-<backend>.json`` (and ``golden``, if given);
    return the number of probes whose framework raised (each is stored as an ``error`` probe)."""
    found = probes.probe(backend, backends.load(backend), command)
    for path in [Path(out) / f"semantics-{backend}.json"] + ([golden] if golden else []):
        found.save(path)
        print(f"wrote {path}")
    failed = [key for key, probe in found.probes if probe.status == "error"]
    if failed:
        print(
            f"decaylens: {len(failed)} probe(s) raised an error; see {Path(out) / f'semantics-{backend}.json'}",
            file=sys.stderr,
        )
    return len(failed)


def _known_backend(name):
    if name not in backends.NAMES:
        raise UsageError(f"unknown backend {name!r}; allowed backends: {', '.join(backends.NAMES)}")


def _validate(args):
    loaded = spec.load(args.spec)
    for backend in backends.NAMES:
        print(f"{backend}: {len(loaded.cases(backend))} cases")
    print(f"{loaded.source}: valid")
    return 0


def _specs(args):
    for name in spec.builtin_names():
        print(name)
    return 0


def _report(args):
    loaded = _load_specs(args.spec)
    if not Path(args.results).is_dir():
        raise UsageError(f"--results {args.results}: no such directory; allowed: a directory that decaylens run wrote")
    for path in report.write(loaded, args.results, args.out):
        print(f"wrote {path}")
    return 0


def _bench(args):
    _known_backend(args.backend)
    document = bench.bench(args.backend, spec.load(args.spec), args.repeats, progress=print_progress)
    print(bench.table(document))
    if args.json:
        files.write_atomically(args.json, json.dumps(document, indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {args.json}")
    return 0


_COMMANDS = {"run": _run, "probe": _probe, "validate": _validate, "specs": _specs, "report": _report, "bench": _bench}
