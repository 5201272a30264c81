"""Small checks shared by every spec: each raises ``SpecError`` naming the field.

Messages follow one form: ``<field>: expected <what>, got <value>``.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from solver.errors import SpecError

#: Largest value accepted for counts (layers, GPUs, batch): far above any real job, small
#: enough that products of several of them stay exact in int64.
MAX_COUNT = 10_000_000

#: Largest token count accepted: a thousand times any published pre-training run.
MAX_TOKENS = 1e18

#: Bounds on the solve options: a week of search, 100 alternatives, 256 CP-SAT workers (CP-SAT
#: refuses far more), CP-SAT's 32-bit seed.
MAX_TIME_LIMIT_S = 7 * 86_400.0
MAX_TOP = 100
MAX_WORKERS = 256
MAX_SEED = 2**31 - 1

_TOKEN_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}
_TOKENS = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMbBgGtT]?)\s*$")


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
        if maximum < 1e30:
            low = "(" if strict else "["
            raise fail(field, f"a number in {low}{minimum:g}, {maximum:g}]", value)
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


def as_tokens(field: str, value: Any) -> float:
    """A token count: a number, or text like ``300e9``, ``300B``, ``15T``; in [1, 1e18)."""
    if isinstance(value, str):
        match = _TOKENS.match(value)
        if not match:
            raise fail(field, "a token count like 300e9, 300B or 15T", value)
        number = float(match.group(1)) * _TOKEN_SUFFIX[match.group(2).lower()]
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        raise fail(field, "a token count like 300e9, 300B or 15T", value)
    if not (1.0 <= number < MAX_TOKENS):
        raise fail(field, f"a token count in [1, {MAX_TOKENS:g})", value)
    return number


def close_matches(name: str, options: Iterable[str], listed: Iterable[str] | None = None) -> str:
    """``; did you mean a, b?`` for the options close to ``name``, else a short list of
    ``listed`` (default: the options)."""
    known = sorted(set(options))
    close = difflib.get_close_matches(str(name).lower(), known, n=3, cutoff=0.5)
    if close:
        return f"; did you mean {', '.join(close)}?"
    names = sorted(set(listed)) if listed is not None else known
    more = f", ... ({len(names)} in all)" if len(names) > 20 else ""
    return f"; known: {', '.join(names[:20])}{more}"


def as_table(value: Any, field: str) -> dict[str, Any]:
    """A TOML table (a ``dict``), else ``SpecError`` naming ``field``."""
    if not isinstance(value, dict):
        raise fail(field, "a table", value)
    return value


def unknown_name(label: str, key: str, known: Iterable[str], what: str = "key") -> SpecError:
    """``<label> unknown key 'x'; did you mean y?``: a key (or section) no reader knows."""
    shown = repr(key) if len(key) <= 60 else repr(key[:57] + "...")
    return SpecError(f"{label} unknown {what} {shown}{close_matches(key, known)}")


#: Largest file read as a document (model, hardware, scenario): each is a few KiB.
MAX_DOCUMENT_BYTES = 1_000_000


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise SpecError(f"duplicate key {key!r}")
        seen[key] = value
    return seen


def read_toml_file(path: Path, *, what: str, hint: str = "") -> dict[str, Any]:
    """A ``.toml`` file of ``what`` (``"a scenario file"``) read, at most one byte past
    ``MAX_DOCUMENT_BYTES`` (a larger file is refused whole), and parsed
    (``parse_document``); ``hint`` follows the message for another suffix."""
    where = str(path)
    if path.suffix.lower() != ".toml":
        raise SpecError(f"{where}: expected {what} ending in .toml, got "
                        f"{path.suffix or 'no extension'!r}{hint}")
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as err:
        raise SpecError(f"{where}: cannot read the {what.removeprefix('a ')} "
                        f"({err.strerror or err})") from None
    return parse_document(raw, where=where, fmt="toml", what=what)


def parse_document(raw: bytes, *, where: str, fmt: str, what: str,
                   limit: int = MAX_DOCUMENT_BYTES) -> dict[str, Any]:
    """Decode a TOML (``fmt="toml"``) or JSON document into its top-level table.

    Every way bytes can be wrong -- too large, not UTF-8, not valid TOML or JSON, numbers with
    thousands of digits, nesting deep enough to exhaust the stack, duplicate JSON keys, a
    top level that is not a table -- is one ``SpecError`` starting with ``where``; ``what`` says
    what the file should have been (``"a model file"``).
    """
    if len(raw) > limit:
        raise SpecError(f"{where}: file too large for {what} ({len(raw)} bytes, limit {limit})")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SpecError(f"{where}: not UTF-8 text (byte 0x{raw[err.start]:02x} at offset "
                        f"{err.start}); expected {what}") from None
    name = "TOML" if fmt == "toml" else "JSON"
    data: Any
    try:
        data = tomllib.loads(text) if fmt == "toml" else json.loads(
            text, object_pairs_hook=_no_duplicates)
    except RecursionError:
        raise SpecError(f"{where}: not valid {name} (nested too deeply)") from None
    except (SpecError, ValueError) as err:  # TOMLDecodeError, JSONDecodeError, huge integers
        detail = " ".join(str(err).split())
        if "integer string conversion" in detail:
            detail = "a number with thousands of digits"
        if len(detail) > 160:
            detail = detail[:157] + "..."
        raise SpecError(f"{where}: not valid {name} ({detail})") from None
    if not isinstance(data, dict):
        raise SpecError(f"{where}: expected a table of fields at the top level, got "
                        f"{_kind(data)}")
    return data


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number",
            bool: "a boolean", type(None): "null"}.get(type(value), type(value).__name__)


def solve_options(time_limit_s: Any, workers: Any, seed: Any, top: Any
                  ) -> tuple[float, int, int, int]:
    """``solver.solve``'s keyword options, checked (``SpecError`` naming the keyword)."""
    return (as_float("time_limit_s", time_limit_s, maximum=MAX_TIME_LIMIT_S),
            as_int("workers", workers, maximum=MAX_WORKERS),
            as_int("seed", seed, minimum=0, maximum=MAX_SEED),
            as_int("top", top, maximum=MAX_TOP))
