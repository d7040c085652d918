"""Command line: ``decaylens run | probe | validate | specs | report``."""

import argparse
import json
import signal
import sys
from pathlib import Path

import backends
from harness import fingerprint, report, spec, store
from harness.run import print_progress, run

DEFAULT_SPEC = "d2l"
GOLDEN = "tests/golden"  # checked-in fingerprints, one per backend


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser():
    parser = _Parser(prog="decaylens", description="What weight_decay really does, framework by framework.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run_cmd = commands.add_parser("run", help="train every case of a spec with one backend and store the results")
    run_cmd.add_argument("--backend", required=True, help=f"one of: {', '.join(backends.NAMES)}")
    run_cmd.add_argument("--spec", default=DEFAULT_SPEC, help=f"built-in spec name or TOML path (default {DEFAULT_SPEC})")
    run_cmd.add_argument("--out", default="results", help="results directory (default results)")
    run_cmd.add_argument("--force", action="store_true", help="recompute cases already stored")
    run_cmd.add_argument("--shard", type=_shard, default=(1, 1), metavar="I/N", help="run only shard I of N (1 ≤ I ≤ N)")

    probe_cmd = commands.add_parser("probe", help="derive a backend's semantic fingerprint from tiny probe runs")
    probe_cmd.add_argument("--backend", required=True, help=f"one of: {', '.join(backends.NAMES)}")
    probe_cmd.add_argument("--out", default="results", help="directory for semantics-<backend>.json (default results)")
    probe_cmd.add_argument(
        "--update-golden", action="store_true", help=f"also write {GOLDEN}/<backend>.json (run from the repository root)"
    )

    validate = commands.add_parser("validate", help="check a spec and list its cases")
    validate.add_argument("spec", help="built-in spec name or TOML path")

    commands.add_parser("specs", help="list the built-in specs")

    report_cmd = commands.add_parser("report", help="write reports/REPORT.md from the results")
    report_cmd.add_argument("--spec", default=DEFAULT_SPEC, help=f"built-in spec name or TOML path (default {DEFAULT_SPEC})")
    report_cmd.add_argument("--results", default="results", help="results directory (default results)")
    report_cmd.add_argument("--out", default="reports", help="report directory (default reports)")
    return parser


def _shard(text):
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count)):
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; allowed: I/N with 1 <= I <= N, e.g. 2/4")
    return int(index), int(count)


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except (spec.SpecError, backends.MissingFramework) as error:
        print(f"decaylens: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("decaylens: interrupted; every stored result is complete, run again to resume", file=sys.stderr)
        return 130


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _run(args):
    _known_backend(args.backend)
    loaded = spec.load(args.spec)
    signal.signal(signal.SIGTERM, _interrupt)  # so a terminated run cleans up like Ctrl-C
    counts = run(args.backend, loaded, args.out, force=args.force, shard=args.shard, progress=print_progress)
    summary = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    print(f"{args.backend}: {summary}; results in {args.out}/{args.backend}/")
    if counts["error"]:
        print(f"decaylens: {counts['error']} case(s) raised an error; see their results files", file=sys.stderr)
        return 1
    return 0


def _probe(args):
    _known_backend(args.backend)
    golden = Path(GOLDEN)
    if args.update_golden and not golden.parent.is_dir():
        raise spec.SpecError(f"--update-golden writes {GOLDEN}/, but there is no tests/ here; run it from the repository root")
    adapter = backends.load(args.backend)
    command = "decaylens probe --backend " + args.backend + (" --update-golden" if args.update_golden else "")
    document = fingerprint.probe(args.backend, adapter, command)
    targets = [Path(args.out) / f"semantics-{args.backend}.json"] + ([golden / f"{args.backend}.json"] if args.update_golden else [])
    for path in targets:
        store.write_text(path, json.dumps(document, indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {path}")
    return 0


def _known_backend(name):
    if name not in backends.NAMES:
        raise spec.SpecError(f"unknown backend {name!r}; allowed backends: {', '.join(backends.NAMES)}")


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
    path = report.write(spec.load(args.spec), args.results, args.out)
    print(f"wrote {path}")
    return 0


_COMMANDS = {"run": _run, "probe": _probe, "validate": _validate, "specs": _specs, "report": _report}
