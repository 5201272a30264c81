"""Brute force over the same space, for tests and benchmarks: the optimiser's referee.

Unlike the solver it keeps the dominated ZeRO-0 and selective-recompute shapes, every
integer dp (no grid) and every micro-batch count in the token range (not only the largest that
fits), evaluates them all with the step model and takes the best feasible one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from solver.search.rows import DEFAULT_MAX_GPUS, fixed_violation
from solver.search.space import enumerate_shapes
from solver.specs import Accelerator, Limits, TrainingJob
from solver.stepmodel.arrays import HardwareTable, LayoutArrays
from solver.stepmodel.evaluate import StepResult, evaluate_arrays
from solver.stepmodel.pipeline import schedule_rules


@dataclass(frozen=True)
class OracleAnswer:
    feasible: bool
    value: float  # the objective's value of the best layout (inf when infeasible)
    layouts: int  # how many were evaluated


def objective_value(r: StepResult, objective: str) -> np.ndarray:
    values = {"time": r.training_s, "cost": r.cost_usd, "gpus": r.gpus.astype(float),
              "energy": r.energy_mwh}[objective]
    return np.where(np.isfinite(values), values, np.inf)


def brute_force(job: TrainingJob, accelerators: Sequence[Accelerator], limits: Limits,
                objective: str, *, chunk: int = 500_000) -> OracleAnswer:
    hw = HardwareTable.build(accelerators, job.precision)
    shapes = enumerate_shapes(job, accelerators, limits.fixed, complete=True)
    cap = limits.gpus or limits.max_gpus or DEFAULT_MAX_GPUS
    seq = job.seq_len
    low, high = limits.tokens_per_step
    items: list[tuple[int, int, int]] = []  # (shape, dp, nmb)
    for s in range(len(shapes)):
        replica = int(shapes.tp[s] * shapes.pp[s] * shapes.cp[s])
        mb = int(shapes.mb[s])
        for dp in range(1, cap // replica + 1):
            if (dp * int(shapes.cp[s])) % int(shapes.ep[s]):
                continue
            if limits.gpus is not None and replica * dp != limits.gpus:
                continue
            if job.global_batch:
                if job.global_batch % (dp * mb) == 0:
                    items.append((s, dp, job.global_batch // (dp * mb)))
                continue
            per = seq * dp * mb
            for nmb in range(max(1, -(-int(low) // per)), int(high) // per + 1):
                items.append((s, dp, nmb))
    best = np.inf
    for start in range(0, len(items), chunk):
        part = np.array(items[start:start + chunk], dtype=np.int64).reshape(-1, 3)
        idx = part[:, 0]
        x = LayoutArrays(accel=shapes.accel[idx], tp=shapes.tp[idx], pp=shapes.pp[idx],
                         dp=part[:, 1], cp=shapes.cp[idx], ep=shapes.ep[idx], vp=shapes.vp[idx],
                         mb=shapes.mb[idx], nmb=part[:, 2], zero=shapes.zero[idx],
                         recompute=shapes.recompute[idx], schedule=shapes.schedule[idx],
                         split=shapes.split[idx])
        r = evaluate_arrays(job, x, hw)
        ok = (r.fits_memory & r.placeable & ~fixed_violation(x, limits.fixed)
              & schedule_rules(x, x.nmb))
        if limits.max_gpus is not None:
            ok &= r.gpus <= limits.max_gpus
        with np.errstate(invalid="ignore"):
            if limits.deadline_days is not None:
                ok &= r.training_days <= limits.deadline_days
            if limits.budget_usd is not None:
                ok &= r.cost_usd <= limits.budget_usd
        values = objective_value(r, objective)
        if np.any(ok):
            best = min(best, float(values[ok].min()))
    return OracleAnswer(bool(np.isfinite(best)), best, len(items))
