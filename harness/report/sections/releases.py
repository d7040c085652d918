"""What each API's λ did in every release probed: a framework's pinned fingerprint beside those of the
release matrix (``tox -m versions``, in ``<results>/releases/``), the first release where an
outcome changed in bold."""

import re

from harness.document import Heading, Items, Text, table
from harness.fingerprint import ProbeKey, api

TITLE = "Across releases"
RUNTIME = ("numpy", "python")  # versions a fingerprint records that are not the framework's


def release(fingerprint):
    """A fingerprint's framework versions in words: ``optax 0.1.7, jax 0.4.23``."""
    return ", ".join(
        f"{package} {version}" for package, version in fingerprint.versions.items() if package not in RUNTIME
    )


def _order(fingerprint):
    """Sort key: the framework's version numbers, package by package."""
    return [
        tuple(int(n) for n in re.findall(r"\d+", version)[:3])
        for package, version in sorted(fingerprint.versions.items())
        if package not in RUNTIME
    ]


def changes(fingerprints):
    """(rows, changed, appeared): for the penalty probes, bias spared, of one backend's fingerprints in
    release order, a row (optimizer, API, outcome per release) with the first cell that differs from
    the one before it in bold (two unsupported ones, whatever their reasons, do not); the lines of an
    API whose rule changed between two releases that both ran it, and of one that came or went
    (unsupported, or not probed, in one of them)."""
    keys = list(
        dict.fromkeys(k for f in fingerprints for k in f.penalties if isinstance(k, ProbeKey) and k.decay_bias is False)
    )
    rows, changed, appeared = [], [], []
    for key in keys:
        probes = [f.penalties.get(key) for f in fingerprints]
        cells, marked = [_shown(probe) for probe in probes], False
        for i in range(1, len(probes)):
            if _same(probes[i - 1], probes[i]):
                continue
            if not marked:
                cells[i], marked = f"**{cells[i]}**", True
            ran = [p is not None and p.status == "ok" for p in probes[i - 1 : i + 1]]
            line = (
                f"{key.optimizer} {api(key)}: {_brief(probes[i - 1])} in {release(fingerprints[i - 1])}; "
                f"{_brief(probes[i])} in {release(fingerprints[i])}"
            )
            (changed if all(ran) else appeared).append(line)
        rows.append((key.optimizer, api(key), *cells))
    return rows, changed, appeared


def _same(a, b):
    """Whether two releases' probes found the same (``Probe.pinned``), or both could not run it (whatever
    their reasons)."""
    if a is None or b is None:
        return a is b
    return a.pinned == b.pinned or a.status == b.status == "unsupported"


def _shown(probe):
    """A probe's outcome as a cell: its rule (no gap), its dtype where float32, or why it did not run."""
    if probe is None:
        return "not probed"
    if probe.status != "ok":
        return probe.outcome()
    return probe.explained.summary + (" (in float32)" if probe.dtype != "float64" else "")


def _brief(probe):
    """A probe's outcome without an unsupported probe's reason, which the table gives."""
    return "unsupported" if probe is not None and probe.status == "unsupported" else _shown(probe)


def build(ctx):
    out = [Heading(2, TITLE)]
    backends = [f.backend for f in ctx.releases]
    if not ctx.releases:
        return out + [
            Text(
                "No fingerprint of another release: `python3 -m tox -m versions` probes the release matrix "
                "(`tox.ini`) into `results/releases/`."
            )
        ]
    out.append(
        Text(
            "Each framework's pinned fingerprint beside those of the other releases probed (the release matrix), "
            "oldest first: what each API's λ does (bias spared), and in bold the first release where that changed."
        )
    )
    for backend in dict.fromkeys(backends):
        found = sorted([f for f in (*ctx.fingerprints, *ctx.releases) if f.backend == backend], key=_order)
        rows, changed, appeared = changes(found)
        out += [Heading(3, f"{backend}: {', '.join(release(f) for f in found)}")]
        out += (
            [
                Text(f"{len(changed)} change(s) of meaning (an API that ran in both releases, under another rule):"),
                Items(tuple(changed)),
            ]
            if changed
            else [Text("No API that ran in two releases changed its meaning.")]
        )
        out += [Text(f"{len(appeared)} API(s) came or went:"), Items(tuple(appeared))] if appeared else []
        out.append(table(("optimizer", "API", *(release(f) for f in found)), rows))
    return out
