"""The ``decaylens audit`` command: its arguments and what it does with them."""

from pathlib import Path

from harness import files
from harness.audit import audit, text
from harness.errors import UsageError


def add(commands, backend):
    command = commands.add_parser(
        "audit", parents=[backend], help="which of your model's parameters your optimizer decays, by how much and how"
    )
    command.add_argument(
        "target", metavar="FILE.py:FUNCTION", help="your function, returning what you train with (torch: "
        "(module, optimizer[, scheduler]); Keras: (model, optimizer); optax: (params, transformation); Gluon: "
        "(block, trainer); Paddle: (layer, optimizer); MLX: (module, optimizer))"
    )  # fmt: skip
    command.add_argument("--json", type=Path, help="also write the audit to this JSON file")
    command.add_argument("--strict", action="store_true", help="exit 1 where a flag is raised (for CI)")


def run(args):
    """Print the audit (and write it, with --json); exit status 1 where a flag is raised under --strict."""
    if args.json is not None:
        if args.json.is_dir():
            raise UsageError(f"--json {args.json}: a directory; allowed: a file path")
        files.writable(args.json.parent, "--json")
    found = audit(args.backend, args.target)
    print(text.render(found))
    if args.json is not None:
        files.write_atomically(args.json, found.to_json())
        print(f"audit in {args.json}")
    return 1 if args.strict and any(f.flags for f in found.findings) else 0
