"""A sweep's points, each computed from its index alone, so that any engine and any number of
workers lay out the same points.

Point ``i`` is grid point ``i // draws`` (the grid is the product of the ``[grid]`` axes in
file order, the last varying fastest) and draw ``i % draws``. The draws are *common random
numbers*: draw ``d`` of an axis comes from NumPy's generator seeded by
``SeedSequence(seed, spawn_key=(d, crc32(key)))``, the same at every grid point, so two
accelerators are compared under the same drawn failure rates, prices and efficiencies, and
adding or removing one drawn axis leaves the others' draws as they were
(https://numpy.org/doc/stable/reference/random/parallel.html: ``spawn_key`` gives
independent streams).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from solver.scenario_files import Values
from solver.sweep.keys import checker, scenario_key
from solver.sweep.spec import SweepSpec

#: The key the efficiency draw's stream is named by.
EFFICIENCY = "efficiency"


@dataclass(frozen=True)
class Point:
    """One point: its index, what it sets (scenario key, value, origin) and what the table
    shows of it, and the efficiency draw's standard normal deviate (None without one)."""

    index: int
    settings: tuple[tuple[str, Any, str], ...]
    inputs: tuple[tuple[str, Any], ...]
    efficiency_z: float | None = None


def _rng(spec: SweepSpec, draw: int, key: str) -> np.random.Generator:
    stream = np.random.SeedSequence(spec.seed, spawn_key=(draw, zlib.crc32(key.encode())))
    return np.random.default_rng(stream)


def point(spec: SweepSpec, index: int) -> Point:
    """Point ``index`` (0 <= index < spec.points). Drawn values are checked here
    (``SpecError`` naming the key and the draw)."""
    grid_index, draw = divmod(index, spec.draws)
    settings: list[tuple[str, Any, str]] = []
    inputs: list[tuple[str, Any]] = [("point", index)]
    rest = grid_index
    chosen: list[int] = []
    for axis in reversed(spec.grid):
        rest, k = divmod(rest, len(axis.values))
        chosen.append(k)
    for axis, k in zip(spec.grid, reversed(chosen), strict=True):
        settings.append((scenario_key(axis.key), axis.values[k],
                         f"{spec.path}: [grid] {axis.key}"))
        inputs.append((axis.key, axis.shown[k]))
    if spec.randomized:
        inputs.append(("draw", draw))
    sweep_file = Path(spec.path)  # model.path values are relative to its folder
    for d in spec.draw:
        label = f"{spec.path}: [draw] {d.key} (draw {draw})"
        value, shown = d.sample(_rng(spec, draw, d.key))
        if d.dist != "choice":
            value = checker(d.key, sweep_file)(value, label)
        settings.append((scenario_key(d.key), value, label))
        inputs.append((d.key, shown))
    z = None
    if spec.efficiency:
        z = float(f"{_rng(spec, draw, EFFICIENCY).standard_normal():.6g}")
        inputs.append(("efficiency_z", z))
    return Point(index=index, settings=tuple(settings), inputs=tuple(inputs), efficiency_z=z)


def check_draws(spec: SweepSpec) -> None:
    """Draw every draw once (they are the same at every grid point) so that a value out of
    its key's range stops the sweep before it starts."""
    if not spec.draw:
        return
    for draw in range(spec.draws):
        point(spec, draw)


def values_of(spec: SweepSpec, p: Point) -> Values:
    """The point's scenario values: the base's, with the point's settings over them
    (a cost parameter is set inside ``cost_params``)."""
    out = Values(dict(spec.base.values), dict(spec.base.origins), spec.base.description)
    for key, value, label in p.settings:
        if key.startswith("cost_params."):
            name = key.partition(".")[2]
            out.set("cost_params", {**out.values.get("cost_params", {}), name: value}, label)
        else:
            out.set(key, value, label)
    if "workers" not in out.values:  # one CP-SAT worker: deterministic, and workers run
        out.set("workers", 1, f"{spec.path}: CP-SAT workers")  # points side by side
    return out


def columns(spec: SweepSpec) -> list[str]:
    """The input columns, in the table's order."""
    names = ["point", *[a.key for a in spec.grid]]
    if spec.randomized:
        names.append("draw")
    names += [d.key for d in spec.draw]
    if spec.efficiency:
        names.append("efficiency_z")
    return names


__all__ = ["Point", "check_draws", "columns", "point", "values_of"]
