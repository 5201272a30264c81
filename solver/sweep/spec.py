"""Reading a sweep file (``gpuplan sweep SWEEP.toml``, docs/sweeps.md): a base question and
its axes.

    description = "..."
    base = "../question.toml"      # a scenario file, relative to the sweep file; and/or the
    [model] [job] [limits] [fixed] [solve] [solve.cost_params]   # scenario sections inline
    [sweep]   mode = "solve"|"evaluate"|"pareto", seed, draws, group_by, metrics,
              pareto_axes, pareto_points
    [grid]    "section.key" = [values] | {start, stop, step} | {start, stop, num, log}
    [draw]    "section.key" = {dist = ..., ...} ; efficiency = "band"

Every grid value is checked here with the scenario's own checks (``check_value``), so that a
bad value is one line naming ``sweep.toml: [grid] job.tokens`` before anything runs; drawn
values are checked when the points are laid out (``points.check_draws``). Inline sections
override the base file's values key by key (``[solve.cost_params]`` key by key too), as
command-line options override a scenario file.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from solver import costs
from solver.errors import SpecError
from solver.scenario_files import (
    SECTIONS,
    Values,
    read_values,
    values_from_table,
)
from solver.sweep.dists import DrawAxis, read_draw
from solver.sweep.grid import RANGE_KEYS, GridAxis, grid_axis
from solver.sweep.keys import axis_keys, check_axis_key, checker, scenario_key
from solver.validate import (
    MAX_SEED,
    as_choice,
    as_int,
    as_table,
    fail,
    read_toml_file,
    unknown_name,
)

MODES = ("solve", "evaluate", "pareto")
TOP_LEVEL = ("description", "base", "sweep", "grid", "draw", "model", *SECTIONS)
SWEEP_KEYS = ("mode", "seed", "draws", "group_by", "metrics", "pareto_axes", "pareto_points")
#: The most points one sweep may have: a week of one-second solves on 16 cores.
MAX_POINTS = 10_000_000
#: The most draws per grid point.
MAX_DRAWS = 1_000_000
#: The summary's default percentiles are of these outputs.
DEFAULT_METRICS = ("wall_clock_days", "cost_usd")
SECOND_AXES = ("cost", "gpus", "energy")


@dataclass(frozen=True)
class SweepSpec:
    """A whole sweep: the base question's checked values, the axes and the options."""

    path: str
    base: Values
    mode: str = "solve"
    seed: int = 0
    draws: int = 1
    grid: tuple[GridAxis, ...] = ()
    draw: tuple[DrawAxis, ...] = ()
    efficiency: bool = False
    group_by: tuple[str, ...] = ()
    metrics: tuple[str, ...] = DEFAULT_METRICS
    pareto_axes: tuple[str, str] = ("time", "cost")
    pareto_points: int = 6
    description: str = ""

    @property
    def grid_size(self) -> int:
        return math.prod(len(a.values) for a in self.grid)

    @property
    def points(self) -> int:
        return self.grid_size * self.draws

    @property
    def randomized(self) -> bool:
        return bool(self.draw) or self.efficiency

    def digest(self) -> str:
        """A hash of everything that decides the table: a partial table written by another
        sweep (or another gpuplan) is refused rather than mixed in."""
        from solver import __version__

        data = {
            "version": __version__, "mode": self.mode, "seed": self.seed,
            "draws": self.draws, "efficiency": self.efficiency,
            "grid": [(a.key, list(a.shown)) for a in self.grid],
            "draw": [(d.key, d.dist, list(d.params)) for d in self.draw],
            "pareto": [list(self.pareto_axes), self.pareto_points],
            "base": sorted((k, repr(v)) for k, v in self.base.values.items()),
        }
        text = json.dumps(data, sort_keys=True, default=repr)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def load(path: str | Path) -> SweepSpec:
    """Read and check a sweep file (``SpecError`` naming the file, table and key)."""
    path = Path(path)
    data = read_toml_file(path, what="a sweep file")
    return from_table(data, path)


def from_table(data: dict[str, Any], path: Path) -> SweepSpec:
    """A ``SweepSpec`` from a sweep file's parsed table; ``path`` names it in errors."""
    where = str(path)
    for key in data:
        if key not in TOP_LEVEL:
            raise unknown_name(f"{where}:", key, TOP_LEVEL, "section")
    base = _base(data, path)
    options = as_table(data.get("sweep", {}), f"{where}: [sweep]")
    for key in options:
        if key not in SWEEP_KEYS:
            raise unknown_name(f"{where}: [sweep]", key, SWEEP_KEYS)

    def opt(key: str) -> str:
        return f"{where}: [sweep] {key}"

    mode = as_choice(opt("mode"), options.get("mode", "solve"), MODES)
    seed = as_int(opt("seed"), options.get("seed", 0), minimum=0, maximum=MAX_SEED)
    grid = tuple(grid_axis(k, v, f"{where}: [grid] {k}", path)
                 for k, v in _flatten(as_table(data.get("grid", {}), f"{where}: [grid]"),
                                      RANGE_KEYS))
    draw_table = _flatten(as_table(data.get("draw", {}), f"{where}: [draw]"), ("dist",))
    efficiency = False
    draws: list[DrawAxis] = []
    for key, value in draw_table:
        label = f"{where}: [draw] {key}"
        if key == "efficiency":
            if value != "band":
                raise fail(label, '"band" (a factor from each plan\'s own error band)', value)
            efficiency = True
            continue
        check_axis_key(key, f"{where}: [draw]")
        draws.append(read_draw(key, value, label, checker(key, path)))
    _no_repeats([a.key for a in grid] + [d.key for d in draws], where)
    randomized = efficiency or bool(draws)
    n_draws = as_int(opt("draws"), options.get("draws", 1 if not randomized else 100),
                     maximum=MAX_DRAWS)
    if n_draws > 1 and not randomized:
        raise SpecError(f"{opt('draws')}: expected 1 without a [draw] table (every draw "
                        f"would be the same question), got {n_draws}")
    spec = SweepSpec(path=where, base=base, mode=mode, seed=seed, draws=n_draws, grid=grid,
                     draw=tuple(draws), efficiency=efficiency,
                     description=str(data.get("description", "")),
                     **_summary_options(options, where, grid, draws),
                     **_pareto_options(options, where, mode))
    if spec.points > MAX_POINTS:
        raise SpecError(f"{where}: expected at most {MAX_POINTS:,} points, got "
                        f"{spec.points:,} ({spec.grid_size:,} grid points x {n_draws:,} draws)")
    _check_complete(spec)
    return spec


def _base(data: dict[str, Any], path: Path) -> Values:
    """The base question: the ``base`` file's values, then the inline sections over them."""
    where = str(path)
    out = Values()
    if "base" in data:
        file = data["base"]
        if not isinstance(file, str) or not file.strip():
            raise fail(f"{where}: base", "a scenario file path", file)
        resolved = Path(file) if Path(file).is_absolute() else path.parent / file
        if not resolved.is_file():
            raise SpecError(f"{where}: base: no such file {str(resolved)!r:.80}")
        out = read_values(resolved)
    inline = {k: v for k, v in data.items() if k in ("description", "model", *SECTIONS)}
    if not isinstance(inline.get("description", ""), str):
        raise fail(f"{where}: description", "a text", inline["description"])
    inline.pop("description", None)
    given = values_from_table(inline, path)
    for key, value in given.values.items():
        if key == "cost_params":
            value = {**out.values.get("cost_params", {}), **value}
        out.set(key, value, given.origins[key])
    return out


def _flatten(table: dict[str, Any], leaf_keys: tuple[str, ...]) -> list[tuple[str, Any]]:
    """``{"job": {"tokens": [..]}}`` (TOML's dotted keys) and ``{"job.tokens": [..]}`` both
    as ``[("job.tokens", [..])]``; a table with any of ``leaf_keys`` is a value."""
    out: list[tuple[str, Any]] = []
    for key, value in table.items():
        if isinstance(value, dict) and value and not any(k in value for k in leaf_keys):
            out += [(f"{key}.{k}", v) for k, v in _flatten(value, leaf_keys)]
        else:
            out.append((key, value))
    return out


def _no_repeats(keys: list[str], where: str) -> None:
    seen: set[str] = set()
    for key in keys:
        name = scenario_key(key)
        if name in seen:
            raise SpecError(f"{where}: {key}: expected in [grid] or [draw] once, got it twice")
        seen.add(name)


def _summary_options(options: dict[str, Any], where: str, grid: tuple[GridAxis, ...],
                     draws: list[DrawAxis]) -> dict[str, Any]:
    from solver.sweep.table import numeric_outputs, output_columns

    known = (*[a.key for a in grid], *[d.key for d in draws], *output_columns())
    group_by = options.get("group_by", [])
    if isinstance(group_by, str):
        group_by = [group_by]
    if not isinstance(group_by, list) or not all(isinstance(g, str) for g in group_by):
        raise fail(f"{where}: [sweep] group_by", "a list of column names", group_by)
    for g in group_by:
        if g not in known:
            raise unknown_name(f"{where}: [sweep] group_by", g, known, "column")
    metrics = options.get("metrics", list(DEFAULT_METRICS))
    if not isinstance(metrics, list) or not metrics or not all(
            isinstance(m, str) for m in metrics):
        raise fail(f"{where}: [sweep] metrics", "a non-empty list of output columns", metrics)
    for m in metrics:
        if m not in numeric_outputs():
            raise unknown_name(f"{where}: [sweep] metrics", m, numeric_outputs(), "column")
    return {"group_by": tuple(group_by), "metrics": tuple(metrics)}


def _pareto_options(options: dict[str, Any], where: str, mode: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "pareto_axes" in options:
        text = options["pareto_axes"]
        choices = tuple(f"time,{s}" for s in SECOND_AXES)
        axes = as_choice(f"{where}: [sweep] pareto_axes", text, choices)
        out["pareto_axes"] = tuple(axes.split(","))
    if "pareto_points" in options:
        out["pareto_points"] = as_int(f"{where}: [sweep] pareto_points",
                                      options["pareto_points"], minimum=2, maximum=100)
    if out and mode != "pareto":
        raise SpecError(f"{where}: [sweep] {next(iter(out))}: expected only with mode = "
                        f"\"pareto\", got mode = {mode!r}")
    return out


def _check_complete(spec: SweepSpec) -> None:
    """What every point needs, given by the base or by an axis: a model and tokens; for
    ``evaluate`` one accelerator, tp, pp, dp and the global batch; cost parameters the cost
    model knows."""
    given = set(spec.base.values) | {scenario_key(a.key) for a in spec.grid} | {
        scenario_key(d.key) for d in spec.draw}
    needs = {"model": "model.preset, model.path or [model]", "tokens": "job.tokens"}
    if spec.mode == "evaluate":
        needs |= {"accelerators": "limits.accelerators (one)", "tp": "fixed.tp",
                  "pp": "fixed.pp", "dp": "fixed.dp", "global_batch": "job.global_batch"}
    for key, what in needs.items():
        if key not in given:
            raise SpecError(f"{spec.path}: missing {what}: expected it in the base question "
                            f"or as an axis (mode {spec.mode})")
    model = spec.base.values.get("cost_model")
    names = [a.key for a in spec.grid] + [d.key for d in spec.draw]
    params = {scenario_key(k).partition(".")[2]: 1.0 for k in names
              if scenario_key(k).startswith("cost_params.")}
    if params and not any(k == "solve.cost_model" for k in names):
        try:
            costs.resolve(model, {**spec.base.values.get("cost_params", {}), **params})
        except SpecError as err:
            raise SpecError(f"{spec.path}: {err}") from None


__all__ = ["MODES", "GridAxis", "SweepSpec", "axis_keys", "from_table", "load",
           "scenario_key"]
