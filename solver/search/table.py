"""The table the search works on: evaluated rows (one complete layout each, with its estimate
and one flag per violated limit family), the question they answer, and the helpers that build
layouts from shapes and read limits and objectives off the rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from solver import uncertainty
from solver.layout_options import SCHEDULE_CODE, SPLIT_CODE, recompute_code
from solver.search.space import Shapes
from solver.specs import Limits, TrainingJob
from solver.stepmodel.arrays import HardwareTable, LayoutArrays
from solver.stepmodel.calibration import Calibration
from solver.stepmodel.evaluate import StepResult
from solver.stepmodel.shape import JobShape

#: Limit families, in the order explanations list them.
FAMILIES = ("memory", "interconnect", "fixed", "gpus", "deadline", "budget")


FIELD_COLUMNS = {"tp": "tp", "pp": "pp", "dp": "dp", "cp": "cp", "ep": "ep", "vp": "vp",
                 "micro_batch": "mb", "zero_stage": "zero", "recompute": "recompute",
                 "schedule": "schedule", "pipeline_split": "split"}


def field_code(key: str, value: Any) -> int:
    """The integer a layout field's value takes in ``LayoutArrays``."""
    if key == "recompute":
        return recompute_code(value)
    if key == "schedule":
        return SCHEDULE_CODE[value]
    if key == "pipeline_split":
        return SPLIT_CODE[value]
    return int(value)


@dataclass(frozen=True)
class Rows:
    """Evaluated layouts with one boolean column per violated limit family."""

    result: StepResult
    violates: dict[str, np.ndarray]
    evaluated: int = 0  # layouts the step model evaluated to build these rows
    complete: bool = True  # False when a time budget stopped the evaluation early

    @property
    def x(self) -> LayoutArrays:
        return self.result.x

    def __len__(self) -> int:
        return len(self.result.x)

    def take(self, index: np.ndarray) -> Rows:
        return Rows(_take_result(self.result, index),
                    {k: v[index] for k, v in self.violates.items()}, self.evaluated,
                    self.complete)


def _take_result(r: StepResult, index: np.ndarray) -> StepResult:
    from dataclasses import fields, replace

    from solver.stepmodel.memory import MemoryArrays
    from solver.stepmodel.timing import TimeArrays

    def sub(obj: Any) -> Any:
        return replace(obj, **{f.name: getattr(obj, f.name)[index] for f in fields(obj)})

    changes: dict[str, Any] = {}
    for f in fields(r):
        value = getattr(r, f.name)
        if isinstance(value, LayoutArrays):
            changes[f.name] = value.take(index)
        elif isinstance(value, (MemoryArrays, TimeArrays)):
            changes[f.name] = sub(value)
        elif isinstance(value, np.ndarray):
            changes[f.name] = value[index]
    return replace(r, **changes)


@dataclass(frozen=True)
class Question:
    """What row building needs besides the shapes, computed once."""

    job: TrainingJob
    js: JobShape
    limits: Limits
    hw: HardwareTable
    calibration: Calibration
    relaxed: bool
    masks: tuple[int, ...] = (0,)  # recomputation masks each row chooses among


def feasible(rows: Rows) -> np.ndarray:
    ok = np.ones(len(rows), bool)
    for bad in rows.violates.values():
        ok &= ~bad
    return ok


def objective_values(rows: Rows, objective: str) -> np.ndarray:
    """The objective of each row (inf where it cannot be computed)."""
    r = rows.result
    values = {"time": r.wall_s, "cost": r.cost_usd, "gpus": r.gpus.astype(float),
              "energy": r.energy_mwh}[objective]
    return np.where(np.isfinite(values), values, np.inf)


def join_results(results: Sequence[StepResult]) -> StepResult:
    """One ``StepResult`` from several of the same job, in order."""
    from dataclasses import fields, replace

    from solver.stepmodel.memory import MemoryArrays
    from solver.stepmodel.timing import TimeArrays

    if len(results) == 1:
        return results[0]

    def join(objs: Sequence[Any]) -> Any:
        return replace(objs[0], **{f.name: np.concatenate([getattr(o, f.name) for o in objs])
                                   for f in fields(objs[0])})

    changes: dict[str, Any] = {}
    for f in fields(results[0]):
        values = [getattr(r, f.name) for r in results]
        if isinstance(values[0], (LayoutArrays, MemoryArrays, TimeArrays)):
            changes[f.name] = join(values)
        elif isinstance(values[0], np.ndarray):
            changes[f.name] = np.concatenate(values)
    return replace(results[0], **changes)


def concat(parts: Sequence[Rows]) -> Rows:
    """One ``Rows`` from several chunks of the same question."""
    violates = {k: np.concatenate([p.violates[k] for p in parts]) for k in parts[0].violates}
    return Rows(join_results([p.result for p in parts]), violates)


def layouts_of(shapes: Shapes, idx: np.ndarray, dp: np.ndarray, nmb: np.ndarray,
             mask: int | None = None) -> LayoutArrays:
    """Layouts of the rows (shape ``idx``, ``dp``, ``nmb``); ``mask`` overrides the shapes'
    recomputation."""
    recompute = shapes.recompute[idx] if mask is None else np.full(np.size(idx), mask,
                                                                    np.int64)
    return LayoutArrays(accel=shapes.accel[idx], tp=shapes.tp[idx], pp=shapes.pp[idx],
                        dp=np.asarray(dp, np.int64), cp=shapes.cp[idx], ep=shapes.ep[idx],
                        vp=shapes.vp[idx], mb=shapes.mb[idx], nmb=np.asarray(nmb, np.int64),
                        zero=shapes.zero[idx], recompute=recompute,
                        schedule=shapes.schedule[idx], split=shapes.split[idx])


def fixed_violation(x: LayoutArrays, fixed: Mapping[str, Any]) -> np.ndarray:
    bad = np.zeros(len(x), bool)
    for key, value in fixed.items():
        bad |= getattr(x, FIELD_COLUMNS[key]) != field_code(key, value)
    return bad


def deadline_days(r: StepResult, job: TrainingJob, limits: Limits, families: Sequence[str]
                  ) -> np.ndarray:
    """The days a deadline is judged against: the wall-clock days (failures, checkpoints and
    restarts counted; the failure-free days with ``TrainingJob.failures`` off), or with
    ``Limits.risk = "high"`` the high end of their error band (wall-clock time is
    proportional to the failure-free time at a given layout, so the band scales it)."""
    if limits.risk != "high":
        return r.wall_clock_days
    return r.wall_clock_days * uncertainty.high_factors(job, families, r.x.accel, r.gpus)


def violations(r: StepResult, limits: Limits, *, relaxed: bool, job: TrainingJob,
               families: Sequence[str]) -> dict[str, np.ndarray]:
    n = len(r.x)
    gpus_bad = np.zeros(n, bool)
    if limits.gpus is not None:
        gpus_bad |= r.gpus != limits.gpus
    if limits.max_gpus is not None:
        gpus_bad |= r.gpus > limits.max_gpus
    with np.errstate(invalid="ignore"):
        deadline_bad = (deadline_days(r, job, limits, families) > limits.deadline_days
                        if limits.deadline_days is not None else np.zeros(n, bool))
        budget_bad = (~(r.cost_usd <= limits.budget_usd) if limits.budget_usd is not None
                      else np.zeros(n, bool))
    return {
        "memory": ~r.fits_memory,
        "interconnect": ~r.placeable,
        "fixed": fixed_violation(r.x, limits.fixed) if relaxed else np.zeros(n, bool),
        "gpus": gpus_bad,
        "deadline": np.asarray(deadline_bad & r.placeable),
        "budget": np.asarray(budget_bad & r.placeable),
    }
