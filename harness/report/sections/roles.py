"""Which parameters of a multi-layer model each framework's penalty decays: its default, and what
each idiom for sparing parameters really spares (the role probes)."""

from harness import verdict
from harness.document import Heading, Text, table
from harness.explain import ROLE_NAMES
from harness.fingerprint import api
from harness.probes import ROLE_PROBE, SPARINGS

TITLE = "Which parameters a penalty decays"


def build(ctx):
    probed = [f for f in ctx.fingerprints if f.roles]
    if not probed:
        return []
    names = [f.backend for f in probed]
    keys = list(dict.fromkeys(key for f in probed for key in f.roles))
    rows = [(key.optimizer, api(key), key.sparing, *(_cell(f.roles.get(key), key) for f in probed)) for key in keys]
    return [
        Heading(2, TITLE),
        Text(
            "On a 2-2-1 tanh MLP, each API asked to say nothing of which parameters to spare, to spare the biases, and "
            "to spare the output layer, by each framework's own idiom (the adapter's `api` shows the call); each cell "
            "is what the rule that reproduces the run decays, and where that is not what was asked, the difference."
        ),
        table(("optimizer", "API", "asked", *names), rows),
    ]


def _cell(probe, key):
    if probe is None:
        return "—"
    if not probe.matched:
        return probe.outcome()
    if probe.explained.form.placement == "none":
        return "no decay"
    case = ROLE_PROBE.replace({"penalty.kind": key.kind} | SPARINGS[key.sparing])
    return described(verdict.roles(probe.explained, case))


def described(found):
    """A ``verdict.Roles`` in words: what decays, then what differs from what was asked, and what is not seen."""
    text = "decays " + ", ".join(ROLE_NAMES[role] for role in found.decayed)
    if found.more:
        text += f"; also {', '.join(ROLE_NAMES[role] for role in found.more)}, asked to spare"
    if found.fewer:
        text += f"; not {', '.join(ROLE_NAMES[role] for role in found.fewer)}, asked to decay"
    if found.unseen:
        text += f"; {', '.join(ROLE_NAMES[role] for role in found.unseen)}: not seen"
    return text
