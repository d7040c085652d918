"""``decaylens port --check``: the user's code and the printed answer, each run as written in its framework's env.

Both run on the probe problem (``harness.probes``), float64, for ``steps`` steps: enough for every
hyperparameter to show, and for a schedule to run to its end (up to MAX_STEPS). Each side is the
statements themselves, given to the adapter's ``train_code`` in the backend's tox env
(``decaylens train-code``): the user's code as pasted (what trains bound to the name the framework's
probe gives it), and the answer's lines as printed; before each, the probe's own statements that
give the user's names (a parameter group, ``params``) their meaning on the probe's model.
"""

import ast
import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness import diff, probes
from harness.errors import UsageError
from harness.forms import STEPS

MIN_STEPS, MAX_STEPS = 40, 400  # 40: a momentum's or Adam's averages settle; 400 keeps a check within seconds


@dataclass(frozen=True)
class Checked:
    """Both runs' relative gap per step (``diff.relative_gaps`` of (w, b)), the tolerance they are held
    to, and the first step beyond it (None: they train alike)."""

    gaps: np.ndarray
    tolerance: float
    parting: int | None


def case(reading):
    """The probe problem run for the steps of the user's schedule (within MIN_STEPS … MAX_STEPS)."""
    steps = min(max(int(reading.values.get(STEPS, MIN_STEPS)), MIN_STEPS), MAX_STEPS)
    return probes.probe_case("sgd", {"train.epochs": -(-steps // 2)})


def source_statements(reading, fingerprint):
    """The user's statements as run: each of the user's names that the code does not define bound
    first to what the probe has in its place."""
    probe = fingerprint.calls[reading.key._replace(schedule="constant")]
    defined = {_target(s.text) for s in reading.statements}
    return [*_bindings(reading.names, probe.statements, defined), *reading.statements]


def _bindings(names, statements, defined):
    """``user = what the probe has`` for each of the user's bare names in the probe's place."""
    definitions = {_target(s.text): s for s in statements if s.kind == "code"}
    found = []
    for theirs, mine in names.items():
        if not mine.isidentifier() or mine in defined:
            continue
        given = definitions.get(theirs)
        text = ast.unparse(ast.parse(given.text).body[0].value) if given is not None else theirs
        found.append(type(statements[0])("code", f"{mine} = {text}"))
    return found


def _target(text):
    try:
        node = ast.parse(text).body[0]
    except (SyntaxError, IndexError):
        return None
    return node.targets[0].id if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) else None


def train(backend, case, statements, tox=".tox"):
    """Run ``statements`` on ``case`` through ``backend``'s ``train_code`` in its tox env: (w, b, the
    dtype of its hyperparameters). UsageError when the env is not built; RuntimeError with the
    framework's last lines when the code fails there."""
    program = Path(tox) / backend / "bin" / "decaylens"
    if not program.exists():
        raise UsageError(
            f"--check runs the code in the {backend} env, not built here ({program}): "
            f"python3 -m tox -e {backend} --notest, from the repository root"
        )
    with tempfile.TemporaryDirectory() as directory:
        code, out = Path(directory, "code.json"), Path(directory, "out.json")
        code.write_text(json.dumps({"case": case.to_dict(), "statements": [[s.kind, s.text] for s in statements]}))
        command = [str(program), "train-code", "--backend", backend, "--code", str(code), "--out", str(out)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(" / ".join(done.stderr.strip().splitlines()[-3:]) or f"exit status {done.returncode}")
        found = json.loads(out.read_text())
    return np.asarray(found["w"]), np.asarray(found["b"]), found["hyperparameter_dtype"]


def compare(source, target, dtype="float64"):
    """The Checked of two runs' (w, b, hyperparameter dtype)."""
    gaps = diff.relative_gaps(source[:2], target[:2])
    coarser = [d for d in (source[2], target[2]) if d]
    tolerance = max(diff.tolerance(dtype, d) for d in [dtype, *coarser])
    return Checked(gaps, tolerance, diff.first_divergent_step(gaps, tolerance))
