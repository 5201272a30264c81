"""Explanations in a person's terms: why a plan was chosen, or which limits conflict.

For an infeasible question the rows are rebuilt over a relaxed space (fixed fields free, up to
``DEFAULT_MAX_GPUS`` accelerators), CP-SAT is re-solved with every limit family as an
assumption, and ``sufficient_assumptions_for_infeasibility`` names a conflicting subset. For
each family in it, the best value reachable when that family alone is relaxed says what would
make the question feasible.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from solver.estimate import Estimate
from solver.search import cpsat
from solver.search.rows import build_rows, pareto_keep
from solver.search.table import FAMILIES, Rows
from solver.specs import Accelerator, Limits, TrainingJob
from solver.stepmodel.arrays import HardwareTable
from solver.stepmodel.calibration import Calibration
from solver.stepmodel.memory import GIB


def why_this_plan(est: Estimate, limits: Limits, objective: str) -> list[str]:
    """The limits that bind (or nearly), and what the plan spends its time on."""
    lines = []
    used, cap = est.memory_gib_per_gpu, est.memory_capacity_gib
    lines.append(f"memory: {used:.1f} of {cap:.0f} GiB per accelerator")
    if limits.deadline_days is not None and limits.risk == "high":
        lines.append(f"deadline: {est.training_days_range[1]:.1f} days at the high end of the "
                     f"error band, of {limits.deadline_days:g}")
    elif limits.deadline_days is not None:
        lines.append(f"deadline: {est.training_days:.1f} of {limits.deadline_days:g} days")
    if limits.budget_usd is not None:
        lines.append(f"budget: ${est.cost_usd:,.0f} of ${limits.budget_usd:,.0f}")
    if limits.max_gpus is not None:
        lines.append(f"gpus: {est.layout.gpus:,} of at most {limits.max_gpus:,}")
    if limits.gpus is not None:
        lines.append(f"gpus: exactly {limits.gpus:,}")
    parts = sorted(est.time_breakdown_s.items(), key=lambda kv: -kv[1])
    total = sum(v for _, v in parts) or 1.0
    shares = ", ".join(f"{k} {v / total:.0%}" for k, v in parts[:3])
    lines.append(f"step time {est.step_time_s:.2f} s: {shares}")
    lines.append(f"objective {objective}: every other layout in the search space is no better")
    return lines


def _mask(rows: Rows, families: Sequence[str]) -> np.ndarray:
    ok = np.ones(len(rows), bool)
    for f in families:
        ok &= ~rows.violates[f]
    return ok


def _relief(family: str, rows: Rows, ok: np.ndarray, limits: Limits,
            names: Sequence[str]) -> str:
    r = rows.result
    if family == "memory":
        i = int(np.argmin(np.where(ok, r.memory.total, np.inf)))
        need = r.memory.total[i] / GIB
        fits = ok.copy()
        fits &= r.fits_memory
        where = names[int(rows.x.accel[i])]
        text = (f"memory: the smallest footprint within the other limits is {need:,.0f} GiB "
                f"per accelerator on {where} ({r.capacity_bytes[i] / GIB:.0f} GiB available)")
        others = _mask(rows, [f for f in FAMILIES if f not in ("memory", "gpus")]) & \
            r.fits_memory
        if np.any(others):
            text += f"; a layout that fits needs at least {int(r.gpus[others].min()):,} " \
                "accelerators"
        return text
    if family == "gpus":
        limit = (f"exactly {limits.gpus:,}" if limits.gpus is not None
                 else f"at most {limits.max_gpus:,}")
        fewest, most = int(r.gpus[ok].min()), int(r.gpus[ok].max())
        if limits.gpus is not None and limits.gpus > most:
            return (f"gpus: the other limits allow at most {most:,} accelerators (each "
                    f"layout's data-parallel degree is capped by the global batch) "
                    f"(limit: {limit})")
        return (f"gpus: the other limits need at least {fewest:,} accelerators "
                f"(limit: {limit})")
    if family == "deadline":
        days = float(r.training_days[ok].min())
        judged = (", judged at the high end of its error band" if limits.risk == "high"
                  else "")
        return (f"deadline: the fastest plan within the other limits takes {days:,.1f} days "
                f"(deadline: {limits.deadline_days:g} days{judged})")
    if family == "budget":
        cost = float(np.nanmin(np.where(ok, r.cost_usd, np.nan)))
        return (f"budget: the cheapest plan within the other limits costs ${cost:,.0f} "
                f"(budget: ${limits.budget_usd:,.0f})")
    if family == "fixed":
        fixed = ", ".join(f"{k}={v}" for k, v in limits.fixed.items())
        return f"fixed: no layout with {fixed} meets the other limits; free these fields"
    return ("interconnect: the layouts left need groups beyond the scale-up domain on an "
            "accelerator whose scale-out bandwidth is not published")


def infeasible(job: TrainingJob, accs: list[Accelerator], limits: Limits, hw: HardwareTable,
               *, calibration: Calibration, time_limit_s: float, seed: int,
               stop_at: float | None = None) -> list[str]:
    """Why no plan exists; past ``stop_at`` the relaxed space is only partly evaluated and the
    explanation says so."""
    if not accs:
        return ["accelerators: no candidate accelerator has the figures this question needs"]
    rows = build_rows(job, accs, limits, hw, relaxed=True, keep_layers=1, stop_at=stop_at,
                      calibration=calibration)
    if len(rows) == 0:
        return [f"shape: no layout of {job.model.name} satisfies the divisibility rules "
                f"(heads, layers, experts, sequence length, global batch) on these "
                "accelerators"]
    kept = rows.take(pareto_keep(rows, 1))
    rank = np.arange(len(kept))
    built = cpsat.build(kept, rank, limits, fixed=limits.fixed)
    active = [f for f in FAMILIES if np.any(rows.violates[f])]
    outcome = cpsat.solve(built, enforced=active, time_limit_s=time_limit_s, workers=1,
                          seed=seed, want_conflict=True)
    conflict = [f for f in outcome.conflict if f in active] or active
    # Deletion-based minimisation: drop a family if the rest still conflict without it.
    for family in list(conflict):
        rest = [f for f in conflict if f != family]
        if rest and cpsat.solve(built, enforced=rest, time_limit_s=time_limit_s, workers=1,
                                seed=seed).status == "infeasible":
            conflict = rest
    names = hw.names
    lines = [] if rows.complete else [
        f"(time limit: the explanation rests on the {rows.evaluated:,} layouts of the relaxed "
        "question evaluated in time)"]
    for family in conflict:
        others = [f for f in FAMILIES if f != family]
        ok = _mask(rows, others)
        if not np.any(ok):
            ok = _mask(rows, [f for f in FAMILIES if f not in conflict])
        if not np.any(ok):
            ok = np.ones(len(rows), bool)
        lines.append(_relief(family, rows, ok, limits, names))
    return lines
