"""What ``solve`` returns: a ``Plan`` (docs/interface.md, "JSON")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from solver.estimate import SCHEMA_VERSION, Estimate

OBJECTIVES = ("time", "cost", "gpus", "energy")
STATUSES = ("optimal", "feasible", "infeasible", "unknown")
#: CLI exit code by status (docs/interface.md): a plan 0, proven infeasible 1, none found in time 3.
EXIT_CODES = {"optimal": 0, "feasible": 0, "infeasible": 1, "unknown": 3}


@dataclass(frozen=True)
class Plan:
    """The solver's answer: status, the best layout's estimate, and why."""

    status: str
    objective: str
    estimate: Estimate | None
    explanation: tuple[str, ...]
    solve_time_s: float
    alternatives: tuple[Estimate, ...] = ()
    candidates: int = 0
    rows: int = 0
    notes: tuple[str, ...] = field(default=())
    #: What was asked (``solver.question``): printed as ``"question"`` so a saved plan reads
    #: alone and ``gpuplan evaluate --plan`` can re-check it.
    question: Mapping[str, Any] | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "status": self.status,
            "objective": self.objective,
            "layout": self.estimate.layout_dict() if self.estimate else None,
            "estimate": self.estimate.estimate_dict() if self.estimate else None,
            "explanation": list(self.explanation),
            "solve_time_s": round(self.solve_time_s, 3),
            "search": {"layouts_evaluated": self.candidates, "cp_sat_rows": self.rows},
        }
        if self.alternatives:
            data["alternatives"] = [
                {"layout": e.layout_dict(), "estimate": e.estimate_dict()}
                for e in self.alternatives
            ]
        if self.notes:
            data["notes"] = list(self.notes)
        if self.question is not None:
            data["question"] = dict(self.question)
        return data
