"""A sweep's ``[grid]`` axes: a list of values, ``{start, stop, step}`` (stop included when
on the grid) or ``{start, stop, num}`` (evenly spaced, in log space with ``log = true``), each
value checked as a scenario file's value would be."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from solver.errors import SpecError
from solver.sweep.dists import number
from solver.sweep.keys import check_axis_key, checker
from solver.validate import as_int, fail, unknown_name

RANGE_KEYS = ("start", "stop", "step", "num", "log")
#: The most values one range may give.
MAX_VALUES = 10_000_000


@dataclass(frozen=True)
class GridAxis:
    """One grid axis: a scenario key and its checked values, each with the text the table
    shows."""

    key: str
    values: tuple[Any, ...]
    shown: tuple[Any, ...]
    log: bool = False

    @property
    def numeric(self) -> bool:
        return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in self.shown)


def grid_axis(key: str, value: Any, label: str, path: Path) -> GridAxis:
    check_axis_key(key, label.rsplit(" ", 1)[0])
    log = False
    if isinstance(value, dict):
        raw, log = _range(value, label)
    elif isinstance(value, list) and value:
        raw = value
    else:
        raise fail(label, "a non-empty list of values or a range {start, stop, step} or "
                   "{start, stop, num, log}", value)
    check = checker(key, path)
    values, shown = [], []
    for i, v in enumerate(raw):
        values.append(check(v, f"{label}[{i}]"))
        shown.append(_shown(v, values[-1]))
    if len(set(map(repr, values))) != len(values):
        raise fail(label, "distinct values", raw)
    return GridAxis(key=key, values=tuple(values), shown=tuple(shown), log=log)


def _shown(written: Any, checked: Any) -> Any:
    """What the table prints for a grid value: the number, the name as written (a preset),
    the canonical accelerator names joined by ``+``."""
    if isinstance(checked, tuple):
        return "+".join(checked)
    if isinstance(checked, (int, float, str, bool)):
        return checked
    return written if isinstance(written, str) else repr(written)


def _range(table: dict[str, Any], label: str) -> tuple[list[Any], bool]:
    """``{start, stop, step}`` (stop included when on the grid) or ``{start, stop, num}``
    (evenly spaced, or in log space with ``log = true``). All-integer ends and step give
    integers."""
    for key in table:
        if key not in RANGE_KEYS:
            raise unknown_name(label, key, RANGE_KEYS)
    start = number(f"{label}.start", table.get("start"))
    stop = number(f"{label}.stop", table.get("stop"))
    log = table.get("log", False)
    if not isinstance(log, bool):
        raise fail(f"{label}.log", "true or false", log)
    ints = all(isinstance(table.get(k), int) and not isinstance(table.get(k), bool)
               for k in ("start", "stop") + (("step",) if "step" in table else ()))
    if ("step" in table) == ("num" in table):
        raise SpecError(f"{label}: expected one of step or num, got "
                        f"{'both' if 'step' in table else 'neither'}")
    if stop < start:
        raise fail(f"{label}.stop", f"at least start={start:g}", table["stop"])
    if "step" in table:
        if log:
            raise SpecError(f"{label}: expected num with log = true, got step")
        step = number(f"{label}.step", table["step"])
        if step <= 0:
            raise fail(f"{label}.step", "a number > 0", table["step"])
        count = math.floor((stop - start) / step * (1 + 1e-12)) + 1
        if count > MAX_VALUES:
            raise fail(f"{label}.step", f"at most {MAX_VALUES:,} values", table["step"])
        raw = [start + i * step for i in range(count)]
    else:
        num = as_int(f"{label}.num", table["num"], maximum=MAX_VALUES)
        if log and start <= 0:
            raise fail(f"{label}.start", "a number > 0 with log = true", table["start"])
        raw = _spaced(start, stop, num, log)
    if ints:
        return list(dict.fromkeys(round(v) for v in raw)), log
    return [float(f"{v:.6g}") for v in raw], log


def _spaced(start: float, stop: float, num: int, log: bool) -> list[float]:
    if num == 1:
        return [start]
    if log:
        a, b = math.log(start), math.log(stop)
        return [math.exp(a + (b - a) * i / (num - 1)) for i in range(num)]
    return [start + (stop - start) * i / (num - 1) for i in range(num)]


__all__ = ["RANGE_KEYS", "GridAxis", "grid_axis"]
