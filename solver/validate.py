"""Small checks shared by every spec: each raises ``SpecError`` naming the field.

Messages follow one form: ``<field>: expected <what>, got <value>``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from solver.errors import SpecError

#: Largest value accepted for counts (layers, GPUs, batch): far above any real job, small
#: enough that products of several of them stay exact in int64.
MAX_COUNT = 10_000_000


def fail(field: str, expected: str, got: Any) -> SpecError:
    """Build the one-line error for ``field``."""
    shown = repr(got) if not isinstance(got, str) else repr(got[:60])
    return SpecError(f"{field}: expected {expected}, got {shown}")


def as_int(field: str, value: Any, *, minimum: int = 1, maximum: int = MAX_COUNT) -> int:
    """An integer in [minimum, maximum]; floats with an integral value are accepted."""
    if isinstance(value, bool):
        raise fail(field, f"an integer >= {minimum}", value)
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise fail(field, f"an integer >= {minimum}", value)
        value = int(value)
    if not isinstance(value, int):
        raise fail(field, f"an integer >= {minimum}", value)
    if value < minimum or value > maximum:
        raise fail(field, f"an integer in [{minimum}, {maximum}]", value)
    return value


def as_float(
    field: str, value: Any, *, minimum: float = 0.0, strict: bool = True, maximum: float = 1e30
) -> float:
    """A finite number above ``minimum`` (or at least it when ``strict`` is False)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(field, "a number", value)
    number = float(value)
    too_small = number <= minimum if strict else number < minimum
    if not math.isfinite(number) or too_small or number > maximum:
        relation = ">" if strict else ">="
        raise fail(field, f"a finite number {relation} {minimum:g}", value)
    return number


def as_optional_float(field: str, value: Any, *, minimum: float = 0.0) -> float | None:
    return None if value is None else as_float(field, value, minimum=minimum)


def as_choice(field: str, value: Any, choices: Iterable[str]) -> str:
    options = tuple(choices)
    if not isinstance(value, str) or value not in options:
        raise fail(field, "one of " + "|".join(options), value)
    return value


def as_bool(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise fail(field, "true or false", value)
    return value


def as_name(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise fail(field, "a non-empty name", value)
    return value.strip()
