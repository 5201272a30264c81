"""The CP-SAT model: pick one evaluated row under named limit families.

Variables (one family each):
- ``x[r]`` = 1 if row r (one complete layout, evaluated by the step model) is the plan;
- ``enforce[f]`` = 1 if limit family f is enforced (all are, as assumptions; an infeasible
  question is re-solved to find a small set of families that conflict);
- ``tp, pp, cp, dp, ep, vp, micro_batch, num_microbatches, zero_stage, recompute, schedule,
  split, gpus, global_batch``: the chosen layout's integers, channelled from ``x``, with the
  true couplings
  ``gpus = tp*pp*cp*dp`` and ``global_batch = dp*micro_batch*num_microbatches`` stated as
  multiplication constraints. Fixed layout fields and GPU-count limits are constraints on
  these variables behind ``enforce["fixed"]`` and ``enforce["gpus"]``.
Memory, interconnect, deadline and budget are per-row facts from the step model:
``enforce[f] => not x[r]`` for each row r that breaks f.

The objective is exact and integer: rows are ranked in numpy by (objective, tie-breaks, a
canonical layout order) and CP-SAT minimises the rank of the chosen row, so no float is
rounded and ties are broken the same way on every run and with any number of workers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from ortools.sat.python import cp_model

from solver import cpsat_run
from solver.search.table import FAMILIES, FIELD_COLUMNS, Rows, field_code
from solver.specs import Limits


@dataclass(frozen=True)
class Model:
    """A built CP-SAT model and the handles needed to read it back."""

    model: cp_model.CpModel
    x: list[cp_model.IntVar]
    enforce: dict[str, cp_model.IntVar]
    rank: np.ndarray


def build(rows: Rows, rank: np.ndarray, limits: Limits, *, fixed: Mapping[str, Any]
          ) -> Model:
    m = cp_model.CpModel()
    n = len(rows)
    x = [m.new_bool_var(f"x[{r}]") for r in range(n)]
    m.add_exactly_one(x)
    enforce = {f: m.new_bool_var(f"enforce[{f}]") for f in FAMILIES}

    for family in ("memory", "interconnect", "deadline", "budget"):
        for r in np.flatnonzero(rows.violates[family]):
            m.add_implication(enforce[family], x[int(r)].Not())

    lay = rows.x
    columns = {
        "tp": lay.tp, "pp": lay.pp, "cp": lay.cp, "dp": lay.dp, "ep": lay.ep, "vp": lay.vp,
        "mb": lay.mb, "nmb": lay.nmb, "zero": lay.zero, "recompute": lay.recompute,
        "schedule": lay.schedule, "split": lay.split,
        "gpus": rows.result.gpus, "global_batch": rows.result.global_batch,
    }
    var: dict[str, cp_model.IntVar] = {}
    for name, values in columns.items():
        lo, hi = (int(values.min()), int(values.max())) if n else (0, 0)
        var[name] = m.new_int_var(lo, hi, name)
        m.add(var[name] == sum(int(v) * x[r] for r, v in enumerate(values)))
    if n:
        replica = m.new_int_var(1, int((lay.tp * lay.pp * lay.cp).max()), "tp*pp")
        tp_pp = m.new_int_var(1, int((lay.tp * lay.pp).max()), "tp*pp_")
        m.add_multiplication_equality(tp_pp, [var["tp"], var["pp"]])
        m.add_multiplication_equality(replica, [tp_pp, var["cp"]])
        m.add_multiplication_equality(var["gpus"], [replica, var["dp"]])
        dp_mb = m.new_int_var(1, int((lay.dp * lay.mb).max()), "dp*micro_batch")
        m.add_multiplication_equality(dp_mb, [var["dp"], var["mb"]])
        m.add_multiplication_equality(var["global_batch"], [dp_mb, var["nmb"]])

    for key, value in fixed.items():
        m.add(var[FIELD_COLUMNS[key]] == field_code(key, value)).only_enforce_if(
            enforce["fixed"])
    if limits.gpus is not None:
        m.add(var["gpus"] == limits.gpus).only_enforce_if(enforce["gpus"])
    if limits.max_gpus is not None:
        m.add(var["gpus"] <= limits.max_gpus).only_enforce_if(enforce["gpus"])

    m.minimize(sum(int(k) * x[r] for r, k in enumerate(rank)))
    return Model(m, x, enforce, rank)


def objective_rank(keys: Sequence[np.ndarray]) -> np.ndarray:
    """Rank 0.. of each row by ``keys`` (most significant first), ties impossible."""
    order = np.lexsort(list(reversed(list(keys))))
    rank = np.empty(order.size, np.int64)
    rank[order] = np.arange(order.size)
    return rank


@dataclass(frozen=True)
class Outcome:
    status: str  # optimal | feasible | infeasible | unknown
    chosen: int | None
    wall_s: float
    best_bound: float
    conflict: tuple[str, ...]


STATUS = {cp_model.OPTIMAL: "optimal", cp_model.FEASIBLE: "feasible",
          cp_model.INFEASIBLE: "infeasible", cp_model.UNKNOWN: "unknown"}


def solve(built: Model, *, enforced: Sequence[str], time_limit_s: float, workers: int,
          seed: int, exclude: Sequence[int] = (), hint: int | None = None,
          want_conflict: bool = False) -> Outcome:
    """Solve with the families in ``enforced`` on (``hint``: a feasible row).

    With ``want_conflict`` the families are assumptions, so that an infeasible model names a
    conflicting subset (CP-SAT then searches with one thread); otherwise they are fixed.
    """
    m = built.model.clone()

    def var(v: cp_model.IntVar) -> cp_model.IntVar:
        return m.get_bool_var_from_proto_index(v.index)

    if hint is not None:
        m.add_hint(var(built.x[hint]), 1)
    for r in exclude:
        m.add(var(built.x[r]) == 0)
    if want_conflict:
        m.add_assumptions([built.enforce[f] for f in enforced])
    for f in FAMILIES:
        if f not in enforced:
            m.add(var(built.enforce[f]) == 0)
        elif not want_conflict:
            m.add(var(built.enforce[f]) == 1)
    s = cp_model.CpSolver()
    s.parameters.max_time_in_seconds = float(time_limit_s)
    s.parameters.num_workers = int(workers)
    s.parameters.random_seed = int(seed)
    # The model is an exactly-one over rows plus channelling: presolve probing costs more
    # (0.3 s on 300 rows) than the whole search, and finds nothing the structure does not say.
    s.parameters.cp_model_probing_level = 0
    code = cpsat_run.solve(s, m)
    if code == cp_model.MODEL_INVALID:
        raise RuntimeError(f"gpuplan bug: CP-SAT model invalid: {m.validate()}")
    status = STATUS.get(code, "unknown")
    chosen = None
    if status in ("optimal", "feasible"):
        chosen = next(r for r, v in enumerate(built.x) if s.boolean_value(v))
    conflict: tuple[str, ...] = ()
    if status == "infeasible":
        core = set(s.sufficient_assumptions_for_infeasibility())
        conflict = tuple(f for f in FAMILIES if built.enforce[f].index in core)
    return Outcome(status, chosen, s.wall_time, s.best_objective_bound, conflict)
