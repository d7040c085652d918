"""What every auditor does first with the objects a user's function returns: take the pair it audits, or
say in one line what it received and what it takes."""

from backends.contract import NotAuditable


def qualified(kind):
    """A type's dotted name (``torch.optim.adamw.AdamW``), a builtin's bare (``str``)."""
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def received(objects):
    """The objects as an error names them: ``(A, B)`` for a tuple or list, else the type."""
    if isinstance(objects, tuple | list):
        return f"({', '.join(qualified(type(o)) for o in objects)})"
    return qualified(type(objects))


def pair(objects, kinds, backend, takes):
    """``objects``, two of the types ``kinds`` in order; NotAuditable naming what was received and what the
    ``backend``'s auditor ``takes`` otherwise."""
    if isinstance(objects, tuple | list) and len(objects) == 2:
        if all(isinstance(o, kind) for o, kind in zip(objects, kinds, strict=True)):
            return tuple(objects)
    raise NotAuditable(f"the function returned {received(objects)}; the {backend} auditor takes {takes}")
