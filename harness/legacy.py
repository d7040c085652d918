"""What earlier releases wrote, read into today's structures: the migrations of ``harness.store`` and
``harness.fingerprint`` call it for the documents written before explanations were structured."""

import dataclasses

from harness import oracle
from harness.explain import NONE, PLACEMENTS


def explanation(old, strength):
    """The ``to_json`` form of an explanation stored before it was structured (result schema
    2, fingerprint without a schema_version): placements by display name ("decoupled × lr"),
    equivalents as text ("decoupled × lr ×1"), the rule's fields flat, and the gap of the rule
    run on its own (which then decided the match, and is its drift); ``strength`` is the λ of its
    case, which the rule's coefficient is k times."""
    placement = {name: key for key, name in PLACEMENTS.items()} | {NONE: NONE}

    def form(name, multiplier):
        return {"placement": placement[name], "multiplier": float(multiplier)}

    own = form(old["placement"], old["multiplier"])
    coefficient = {own["placement"]: own["multiplier"] * strength} if own["placement"] != NONE else {}
    equivalents = [form(*text.rsplit(" ×", 1)) for text in old["equivalents"]]
    eps = {"after_correction": "outside", "before_correction": "outside_uncorrected"}[old["adam_eps"]]
    rule = oracle.Rule(loss=old["loss"], decay_bias=old["decay_bias"], eps=eps, **coefficient)
    return {
        "form": own,
        "rule": dataclasses.asdict(rule),
        "gap": old["gap"],
        "matched": old["matched"],
        "equivalents": equivalents,
        "drift": old["gap"],
    }
