"""What ``solver.fleet`` returns: each job's placement, the rentals, the objective's values."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from solver.estimate import SCHEMA_VERSION, Estimate, json_number
from solver.fleet.candidates import Candidate

#: Units of each objective's reported value.
OBJECTIVE_UNITS = {"tardiness": "weighted_days_late", "makespan": "days",
                   "rental_cost": "usd", "energy": "mwh"}


@dataclass(frozen=True)
class ScheduledJob:
    """A job's placement: it holds ``candidate.gpus`` accelerators from ``start_day`` to
    ``end_day`` (start plus its wall-clock days rounded up to the schedule's resolution)."""

    name: str
    candidate: Candidate
    start_day: float
    end_day: float
    days_late: float = 0.0
    estimate: Estimate | None = None  # the step model's re-evaluation (``check.py``)


@dataclass(frozen=True)
class Rental:
    """``gpus`` rented accelerators of one type from ``from_day`` to ``until_day``."""

    accelerator: str
    from_day: float
    until_day: float
    gpus: int
    cost_usd: float


@dataclass(frozen=True)
class FleetPlan:
    status: str  # optimal | feasible | infeasible | unknown
    objective: tuple[str, ...]
    values: dict[str, float]  # each objective's value, in OBJECTIVE_UNITS
    bounds: dict[str, float]  # the solver's proven lower bound of each objective
    jobs: tuple[ScheduledJob, ...] = ()
    rented: tuple[Rental, ...] = ()
    explanation: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    candidates: int = 0  # (job, option) pairs the schedule chose among
    candidates_s: float = 0.0
    solve_time_s: float = 0.0

    def gap(self) -> float | None:
        """Relative gap of the first objective not proven optimal (0 when all are)."""
        for name in self.objective:
            value, bound = self.values.get(name), self.bounds.get(name)
            if value is None or bound is None:
                return None
            if value - bound > 1e-9 * max(1.0, abs(value)):
                return (value - bound) / max(abs(value), 1e-12)
        return 0.0

    def to_dict(self) -> dict[str, Any]:
        gap = self.gap() if self.jobs else None
        return {
            "schema_version": SCHEMA_VERSION,
            "status": self.status,
            "objective": {
                "order": list(self.objective),
                "values": {k: json_number(v) for k, v in self.values.items()},
                "bounds": {k: json_number(v) for k, v in self.bounds.items()},
                "units": {k: OBJECTIVE_UNITS[k] for k in self.objective},
                "gap": None if gap is None else json_number(gap),
            },
            "jobs": [_job_dict(j) for j in self.jobs],
            "rented": [{"accelerator": r.accelerator, "from_day": json_number(r.from_day),
                        "until_day": json_number(r.until_day), "gpus": r.gpus,
                        "cost_usd": json_number(r.cost_usd)} for r in self.rented],
            "explanation": list(self.explanation),
            "notes": list(self.notes),
            "candidates": self.candidates,
            "candidates_s": round(self.candidates_s, 3),
            "solve_time_s": round(self.solve_time_s, 3),
        }

    def plot(self, path: str | Path, *, title: str | None = None,
             deadlines: dict[str, float] | None = None) -> Path:
        """A Gantt chart to ``path`` (.png or .svg); needs matplotlib (``gpuplan[plot]``)."""
        from solver.fleet.render import plot_gantt

        return plot_gantt(self, path, title=title, deadlines=deadlines)


def _job_dict(j: ScheduledJob) -> dict[str, Any]:
    est = j.estimate
    return {
        "name": j.name,
        "accelerator": j.candidate.accelerator,
        "gpus": j.candidate.gpus,
        "start_day": json_number(j.start_day),
        "end_day": json_number(j.end_day),
        "days_late": json_number(j.days_late),
        "wall_clock_days": json_number(j.candidate.wall_clock_days),
        "layout": est.layout_dict() if est is not None else None,
        "estimate": est.estimate_dict() if est is not None else None,
    }


__all__ = ["FleetPlan", "Rental", "ScheduledJob"]
