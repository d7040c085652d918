"""Command line: ``decaylens run | probe | port | audit | validate | specs | report | bench``."""

import argparse
import json
import os
import re
import signal
import sys
from pathlib import Path

import numpy as np

import backends
from backends.contract import Statement
from harness import bench, files, fingerprint, port, probes, report, spec
from harness.audit import command as audit_command
from harness.case import Case
from harness.errors import UsageError
from harness.port import check
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
    for add in (_run_command, _probe_command, _port_commands, _spec_commands, _report_command, _bench_command):
        add(commands, backend, specs)
    audit_command.add(commands, backend)
    return parser


def _run_command(commands, backend, specs):
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


def _probe_command(commands, backend, specs):
    probe_cmd = commands.add_parser(
        "probe", parents=[backend], help="derive a backend's semantic fingerprint from tiny probe runs"
    )
    probe_cmd.add_argument("--out", default="results", help="directory for semantics-<backend>.json (default results)")
    probe_cmd.add_argument(
        "--update-golden",
        action="store_true",
        help=f"also write {GOLDEN}/<backend>.json (run from the repository root)",
    )
    probe_cmd.add_argument(
        "--release",
        type=_release,
        metavar="TAG",
        help="a release other than the pinned one (the release matrix, e.g. optax-0.1.7): write "
        "releases/semantics-<backend>@TAG.json instead (and the golden under releases/)",
    )


def _port_commands(commands, backend, specs):
    port_cmd = commands.add_parser(
        "port", help="the lines of another framework that train like your optimizer code, from the fingerprints"
    )
    port_cmd.add_argument(
        "code",
        help="your optimizer code as written, one or several statements (a call, its param groups or mask, a "
        'schedule): "torch.optim.AdamW(params, lr=1e-3)"',
    )
    port_cmd.add_argument("--from", dest="source", required=True, metavar="BACKEND", help="the code's backend")
    port_cmd.add_argument(
        "--to", dest="targets", action="append", metavar="BACKEND", help="a target backend (repeatable; default: "
        "every other one with a fingerprint)"
    )  # fmt: skip
    port_cmd.add_argument("--results", default="results", help="where semantics-<backend>.json are (default results)")
    port_cmd.add_argument(
        "--check",
        action="store_true",
        help="run your code and each answer as written, in their tox envs, on the probe problem; exit 1 where "
        "they part beyond the tolerance",
    )

    code_cmd = commands.add_parser(
        "train-code", parents=[backend], help="(for port --check) train a case by statements, in the backend's env"
    )
    code_cmd.add_argument("--code", type=Path, required=True, help='JSON {"case": ..., "statements": [[kind, text]]}')
    code_cmd.add_argument("--out", type=Path, required=True, help="JSON file for the trajectory's w, b")


def _spec_commands(commands, backend, specs):
    validate = commands.add_parser("validate", help="check a spec and list its cases")
    validate.add_argument("spec", help="built-in spec name or TOML path")

    commands.add_parser("specs", help="list the built-in specs")


def _report_command(commands, backend, specs):
    report_cmd = commands.add_parser(
        "report", parents=[specs], help="write reports/index.html and reports/REPORT.md from the results"
    )
    report_cmd.add_argument("--results", default="results", help="results directory (default results)")
    report_cmd.add_argument("--out", default="reports", help="report directory (default reports)")


def _bench_command(commands, backend, specs):
    bench_cmd = commands.add_parser(
        "bench", parents=[backend], help="time each case's training run against the NumPy oracle's"
    )
    bench_cmd.add_argument("--spec", default="d2l", help="built-in spec name or TOML path (default d2l)")
    bench_cmd.add_argument(
        "--repeats", type=_count, default=5, help="timed calls per case, whose median is shown (default 5)"
    )
    bench_cmd.add_argument("--json", type=Path, help="also write the timings to this JSON file")


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
    files.writable(args.out, "--out")
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
        path = fingerprint.document_path(args.out, args.backend)
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
    command = " ".join(
        ["decaylens probe --backend", args.backend]
        + (["--release", args.release] if args.release else [])
        + (["--update-golden"] if args.update_golden else [])
    )
    goldens = [_golden_path(args.backend, args.release)] if args.update_golden else []
    return 1 if _write_fingerprint(args.backend, args.out, command, goldens, args.release) else 0


def _golden_path(backend, release=""):
    """The checked-in fingerprint of ``backend`` (at ``release``, one of the release matrix)."""
    path = fingerprint.document_path(GOLDEN, backend, release)
    return path.with_name(path.name.removeprefix("semantics-"))


def _release(text):
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not allowed; allowed: letters, digits, . _ + -, e.g. optax-0.1.7"
        )
    return text


def _write_fingerprint(backend, out, command, goldens=(), release=""):
    """Probe ``backend`` and write its fingerprint into ``out`` (``fingerprint.document_path``) and
    ``goldens``; return the number of probes whose framework raised (each is stored as an ``error`` probe)."""
    found = probes.probe(backend, backends.load(backend), command, progress=print_progress)
    written = fingerprint.document_path(out, backend, release)
    for path in [written, *goldens]:
        found.save(path)
        print(f"wrote {path}")
    failed = [key for key, probe in found.probes if probe.status == "error"]
    if failed:
        print(f"decaylens: {len(failed)} probe(s) raised an error; see {written}", file=sys.stderr)
    return len(failed)


def _known_backend(name):
    if name not in backends.NAMES:
        raise UsageError(f"unknown backend {name!r}; allowed backends: {', '.join(backends.NAMES)}")


def _port(args):
    for name in [args.source, *(args.targets or [])]:
        _known_backend(name)
    source = _fingerprint(args.results, args.source)
    targets = args.targets or [
        name
        for name in backends.NAMES
        if name != args.source and fingerprint.document_path(args.results, name).exists()
    ]
    if not targets:
        raise UsageError(
            f"no fingerprint of another backend in {args.results}/; make them: python3 -m tox -m compare -p auto -o"
        )
    reading = port.validated(port.read(args.code, source))
    answers = [port.port(reading, source, _fingerprint(args.results, name)) for name in targets]
    print(f"{args.source}:")
    print("\n".join(f"  {line}" for line in args.code.strip().splitlines()))
    print("\n".join(port.reading(answers[0])))
    parted = 0
    if args.check:
        case = check.case(reading)
        mine = _train_code(args.source, case, check.source_statements(reading, source))
    for answer in answers:
        print("\n".join(port.describe(answer)))
        if args.check and answer.printed and mine is not None:
            parted += not _check(answer, case, mine)
    return 1 if parted else 0


def _train_code(backend, case, statements):
    """(w, b, hyperparameter dtype) of ``statements`` run in ``backend``'s env, or None (said why)."""
    try:
        return check.train(backend, case, statements)
    except RuntimeError as error:
        print(f"  check: the code did not run in the {backend} env: {error}")
        return None


def _check(answer, case, mine):
    """Run the answer's lines in the target's env and print how far they train from the user's code;
    whether they train alike."""
    theirs = _train_code(answer.target, case, [*answer.bindings, *answer.printed])
    if theirs is None:
        return False
    found = check.compare(mine, theirs, case.model.dtype)
    worst = float(np.max(found.gaps))
    if found.parting is None:
        print(f"  check: trains as your code over {case.steps} steps (largest relative gap {worst:.2g}, tolerance "
              f"{found.tolerance:g})")  # fmt: skip
        return True
    shown = ", ".join(f"{gap:.2g}" for gap in found.gaps[1 : min(len(found.gaps), found.parting + 4)])
    print(f"  check: PARTS from your code at step {found.parting} of {case.steps} (relative gap per step {shown}; "
          f"largest {worst:.2g}, tolerance {found.tolerance:g})")  # fmt: skip
    return False


def _train_code_command(args):
    _known_backend(args.backend)
    try:
        document = json.loads(args.code.read_text(encoding="utf-8"))
        case = Case.from_dict(document["case"])
        statements = tuple(Statement(kind, text) for kind, text in document["statements"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UsageError(f"--code {args.code}: not a train-code document ({error}); it is written by port --check")
    trajectory = backends.load(args.backend).train_code(case, probes.probe_arrays(case), statements)
    found = {
        "w": trajectory.w.tolist(),
        "b": trajectory.b.tolist(),
        "hyperparameter_dtype": trajectory.hyperparameter_dtype,
    }
    files.write_atomically(args.out, json.dumps(found))
    return 0


def _fingerprint(results, backend):
    path = fingerprint.document_path(results, backend)
    if not path.is_file():
        raise UsageError(
            f"no fingerprint of {backend} in {results}/ ({path}); make it: "
            f"python3 -m tox exec -e {backend} -- decaylens probe --backend {backend} --out {results}"
        )
    try:
        return fingerprint.Fingerprint.load(path)
    except ValueError as error:
        raise UsageError(f"{error}; make it again: python3 -m tox exec -e {backend} -- decaylens probe") from None


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
    files.writable(args.out, "--out")
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


_COMMANDS = {
    "run": _run,
    "probe": _probe,
    "port": _port,
    "audit": audit_command.run,
    "train-code": _train_code_command,
    "validate": _validate,
    "specs": _specs,
    "report": _report,
    "bench": _bench,
}
