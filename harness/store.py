"""Results: one JSON file per (backend, case) at ``<results>/<backend>/<case_id>.json``.

Files are written to a temporary name in the same directory and renamed, so a reader
never sees a half-written file, whatever happens to the writer.
"""

import json
from pathlib import Path

from harness import data, files
from harness.spec import Case, SpecError

SCHEMA_VERSION = 2  # 2: ok results carry "explained"
STATUSES = ("ok", "diverged", "unsupported", "error")
KEYS = (
    "schema_version", "backend", "versions", "case_id", "case", "data_sha256", "status",
    "reason", "api", "steps", "epochs", "final", "seconds",
)


class BadResult(ValueError):
    """A results file that is not a readable decaylens result of this schema."""


def path_for(results, backend, case_id):
    return Path(results) / backend / f"{case_id}.json"


def write(path, record):
    """Write ``record`` as JSON to ``path`` atomically."""
    files.write_atomically(path, json.dumps(record, allow_nan=False, indent=1, ensure_ascii=False))


def read(path):
    """The record in ``path``; raises BadResult saying what is wrong with it."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadResult(f"{path}: unreadable ({error})") from None
    if not isinstance(record, dict) or record.get("schema_version") != SCHEMA_VERSION:
        found = record.get("schema_version") if isinstance(record, dict) else None
        raise BadResult(f"{path}: not a schema {SCHEMA_VERSION} result (schema_version = {found!r})")
    missing = [key for key in KEYS if key not in record]
    if missing:
        raise BadResult(f"{path}: malformed result, missing {', '.join(missing)}")
    if record["status"] not in STATUSES:
        raise BadResult(f"{path}: malformed result, status {record['status']!r} is not one of {', '.join(STATUSES)}")
    return record


def is_current(path, case_id, versions):
    """Whether ``path`` holds a finished result of this case made with these versions."""
    try:
        record = read(path)
    except BadResult:
        return False
    return record["case_id"] == case_id and record["versions"] == versions and record["status"] != "error"


def scan(results):
    """Every trustworthy result under ``results``, keyed by (backend, case_id), and one line
    per file skipped: unreadable, of another schema, misnamed, holding a case that does
    not hash to its id, or made from arrays other than the ones its case gives."""
    records, problems = {}, []
    for path in sorted(Path(results).glob("*/*.json")):
        try:
            record = read(path)
            case = Case.from_dict(record["case"])
        except BadResult as error:
            problems.append(f"{error}; skipped")
            continue
        except (SpecError, TypeError, KeyError, AttributeError) as error:
            problems.append(f"{path}: its case is not a valid case ({error}); skipped")
            continue
        if (record["backend"], record["case_id"]) != (path.parent.name, path.stem) or case.id != path.stem:
            problems.append(f"{path}: holds {record['backend']} case {case.id}, not what its name says; skipped")
        elif record["data_sha256"] != data.make(case).sha256:
            problems.append(f"{path}: made from other arrays (SHA-256 {str(record['data_sha256'])[:16]}…) than its case gives; skipped")
        else:
            records[record["backend"], record["case_id"]] = record
    return records, problems
