"""A user's statements run as their script runs them (``contract.Adapter.train_code``, what
``port --check`` trains): the calls and code once, up to the training loop; the penalties they add
to the loss at every step. No framework and no harness import: an adapter gives the names."""


def run(statements, namespace):
    """``namespace`` after each ``call`` and ``code`` statement ran in it, in order (the names the user's
    script imports, and the model)."""
    for statement in statements:
        if statement.kind in ("call", "code"):
            exec(statement.text, namespace)
    return namespace


def penalized(statements, namespace):
    """``add(loss, **names)``: ``loss`` after every ``penalty`` statement (``loss = loss + ...``) ran on it,
    in ``namespace`` and the step's own ``names`` (a model, ``F``)."""
    penalties = [compile(s.text, "<penalty>", "exec") for s in statements if s.kind == "penalty"]

    def add(loss, **names):
        scope = namespace | names | {"loss": loss}
        for penalty in penalties:
            exec(penalty, scope)
        return scope["loss"]

    return add
