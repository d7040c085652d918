"""Value checks for the case's fields: a number in a range, or one of a set of choices."""

import json
import math
import re
from dataclasses import dataclass

from harness.errors import SpecError


@dataclass(frozen=True)
class Number:
    """An int or float in [low, high]; ``open_low`` excludes ``low``."""

    kind: type
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False

    def allowed(self):
        name = "an integer" if self.kind is int else "a finite number"
        low = f"> {self.low}" if self.open_low else f">= {self.low}"
        high = f"< {self.high}" if self.open_high else f"<= {self.high}"
        if self.low is not None and self.high is not None:
            return f"{name} {low} and {high}"
        return f"{name} {low}" if self.low is not None else name

    def check(self, value):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError
        if self.kind is int and not isinstance(value, int):
            raise ValueError
        if not math.isfinite(value) or abs(value) > 1e300:
            raise ValueError
        value = self.kind(value)
        if self.low is not None and (value < self.low or (self.open_low and value == self.low)):
            raise ValueError
        if self.high is not None and (value > self.high or (self.open_high and value == self.high)):
            raise ValueError
        return value


@dataclass(frozen=True)
class Choice:
    """One of ``values``, of the same type (``true`` is not ``1``)."""

    values: tuple

    def allowed(self):
        return "one of " + ", ".join(json.dumps(v) for v in self.values)

    def check(self, value):
        if not any(value == allowed and type(value) is type(allowed) for allowed in self.values):
            raise ValueError
        return value


Count = Number(int, 1, 10**6)
Positive = Number(float, 0, open_low=True)
NonNegative = Number(float, 0)
Real = Number(float)
Decay = Number(float, 0, 1, open_high=True)  # a moving average's β: 1 would make a bias correction 1 − βᵗ zero
Bool = Choice((True, False))


@dataclass(frozen=True)
class Name:
    """ "" or a lowercase identifier (letters, digits, ``_``), at most 40 characters."""

    def allowed(self):
        return '"" or a lowercase identifier, e.g. "eta_multiplier"'

    def check(self, value):
        if not (isinstance(value, str) and re.fullmatch(r"([a-z][a-z0-9_]{0,39})?", value)):
            raise ValueError
        return value


@dataclass(frozen=True)
class Items:
    """A list of values each allowed by ``item``, at most ``most`` of them (``unique``: no repeats),
    coerced to a tuple."""

    item: object
    most: int
    unique: bool = False

    def allowed(self):
        repeats = ", none repeated" if self.unique else ""
        return f"a list of at most {self.most} values, each {self.item.allowed()}{repeats}"

    def check(self, value):
        if not isinstance(value, list | tuple) or len(value) > self.most:
            raise ValueError
        items = tuple(self.item.check(item) for item in value)
        if self.unique and len(set(items)) < len(items):
            raise ValueError
        return items


def checked(dotted, field, value, prefix=""):
    """``value`` checked and coerced by ``field``'s check, or SpecError naming ``prefix + dotted``."""
    check = field.metadata["check"]
    try:
        return check.check(value)
    except ValueError:
        raise SpecError(
            f"{prefix}{dotted} = {json.dumps(value, default=str)} is not allowed; allowed: {check.allowed()}"
        ) from None
