"""What the results and fingerprints were made with, and when; the specs and their arrays."""

import datetime
import json
import platform

import backends
from harness.document import Heading, Items

TITLE = "Environment"


def build(ctx):
    items = []
    for backend in backends.NAMES:
        mine = [r for (name, _), r in ctx.results.items() if name == backend]
        if mine:
            versions = sorted({json.dumps(r.versions, sort_keys=True) for r in mine})
            made = sorted(r.created or "an unrecorded time" for r in mine)
            places = sorted({r.platform or "an unrecorded platform" for r in mine})
            stamps = " | ".join(", ".join(f"{k} {v}" for k, v in json.loads(v).items()) for v in versions)
            items.append(
                f"{backend}: {stamps}; on {', '.join(places)}; {len(mine)} results made from {made[0]} to {made[-1]}"
            )
    missing = [name for name in backends.NAMES if not any(key[0] == name for key in ctx.results)]
    items += [f"no results for: {', '.join(missing)}"] if missing else []
    for spec_runs in ctx.specs:
        hashes = sorted({r.result.data_sha256 for r in spec_runs.runs if r.result})
        items.append(
            f"spec `{spec_runs.spec.name}`: {spec_runs.spec.source}; arrays SHA-256 "
            + (", ".join(hashes) or "none yet")
        )
    items += [
        f"fingerprint of {f.backend}: `{f.command}` with " + ", ".join(f"{k} {v}" for k, v in f.versions.items())
        for f in ctx.fingerprints
    ]
    items.append(
        f"report made {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M UTC} with Python "
        f"{platform.python_version()} on {platform.platform()}"
    )
    return [Heading(2, TITLE), Items(tuple(items))]
