"""How long ``solve`` takes, from 8 to 100,000 accelerators, against the brute-force oracle.

Run: python benchmarks/solve_speed.py
Prints one line per question: the solver's status and wall time (``time.perf_counter`` around
``solver.solve`` with its defaults: 60 s limit, 2 CP-SAT workers), the layouts the step model
evaluated, the rows CP-SAT chose among, and the brute-force oracle
(``solver.search.oracle.brute_force``: every shape, dp and micro-batch count, no bounds, no
pruning). The oracle runs where its space holds fewer than ``ORACLE_MAX_LAYOUTS`` layouts and
must reach the same objective value; elsewhere its time is projected from the rate it reached
on the questions it did run. Tokens and batches follow the published runs where there are any.
"""

from __future__ import annotations

import math
import os
import platform
import time
from dataclasses import dataclass

import numpy as np

import solver
from solver.search.oracle import brute_force
from solver.search.rows import DEFAULT_MAX_GPUS
from solver.search.solve import select_accelerators
from solver.search.space import enumerate_shapes, search_masks

ORACLE_MAX_LAYOUTS = 20_000_000
H100 = "h100-sxm5-80gb"
A100 = "a100-sxm4-80gb"


@dataclass(frozen=True)
class Question:
    label: str
    job: solver.TrainingJob
    limits: solver.Limits
    objective: str


def job(model: str, tokens: float, global_batch: int = 0, seq_len: int = 0
        ) -> solver.TrainingJob:
    return solver.TrainingJob(model=solver.model(model), tokens=tokens,
                              global_batch=global_batch, seq_len=seq_len)


def suite() -> list[Question]:
    lim = solver.Limits
    q405 = job("llama3.1-405b", 15.6e12)
    return [
        Question("llama3-8b 15T fastest, exactly 8 h100", job("llama3-8b", 15e12),
                 lim(accelerators=(H100,), gpus=8), "time"),
        Question("gpt3-175b 300B GB1536 fastest, <=1,024 a100-80gb",
                 job("gpt3-175b", 300e9, 1536, 2048), lim(accelerators=(A100,), max_gpus=1024),
                 "time"),
        Question("mixtral-8x7b 1T fastest, <=256 h100", job("mixtral-8x7b", 1e12),
                 lim(accelerators=(H100,), max_gpus=256), "time"),
        Question("llama3-70b 15T cheapest in 60 d, any, <=8,192", job("llama3-70b", 15e12),
                 lim(max_gpus=8192, deadline_days=60), "cost"),
        Question("llama3.1-405b 15.6T fewest h100 in 90 d", q405,
                 lim(accelerators=(H100,), deadline_days=90), "gpus"),
        Question("gpt4-estimate 13T fewest a100-80gb in 95 d", job("gpt4-estimate", 13e12),
                 lim(accelerators=(A100,), deadline_days=95), "gpus"),
        Question("llama3.1-405b 15.6T fastest, any, <=1,000", q405, lim(max_gpus=1000), "time"),
        Question("llama3.1-405b 15.6T fastest, any, <=10,000", q405, lim(max_gpus=10_000),
                 "time"),
        Question("llama3.1-405b 15.6T fastest, any, <=100,000", q405, lim(max_gpus=100_000),
                 "time"),
        Question("deepseek-v3 14.8T cheapest in 60 d, h800/h100", job("deepseek-v3", 14.8e12),
                 lim(accelerators=("h800", H100), deadline_days=60), "cost"),
    ]


def oracle_layouts(q: Question, accelerators: list[solver.Accelerator]) -> int:
    """How many layouts ``brute_force`` evaluates for ``q``, counted without building them
    (the same loops as the oracle, per group of shapes with equal tp*pp*cp, mb, cp, ep)."""
    jb, limits = q.job, q.limits
    cap = limits.gpus or limits.max_gpus or DEFAULT_MAX_GPUS
    # The complete space has the same shapes on every accelerator: count one, times the number.
    shapes = enumerate_shapes(jb, accelerators[:1], limits.fixed, complete=True,
                              masks=search_masks(jb, limits.fixed), max_replica=cap)
    replica = shapes.tp * shapes.pp * shapes.cp
    keys = np.stack([replica, shapes.mb, shapes.cp, shapes.ep], axis=1)
    groups, counts = np.unique(keys, axis=0, return_counts=True)
    low, high = (int(v) for v in limits.tokens_per_step)
    total = 0
    for (rep, mb, cp, ep), n in zip(groups.tolist(), counts.tolist(), strict=True):
        # beyond these dp no micro-batch count is left (the oracle finds none there either)
        batch_cap = jb.global_batch // mb if jb.global_batch else high // (jb.seq_len * mb)
        dp = np.arange(1, min(cap // rep, batch_cap) + 1, dtype=np.int64)
        dp = dp[(dp * cp) % ep == 0]
        if limits.gpus is not None:
            dp = dp[rep * dp == limits.gpus]
        if jb.global_batch:
            per_shape = int(np.count_nonzero(jb.global_batch % (dp * mb) == 0))
        else:
            per = jb.seq_len * dp * mb
            first = np.maximum(1, -(-low // per))
            per_shape = int(np.maximum(0, high // per + 1 - first).sum())
        total += n * per_shape * len(accelerators)
    return total


def value(plan: solver.Plan, objective: str) -> float:
    e = plan.estimate
    if e is None:
        return math.inf
    # time: wall-clock (failures counted), what solve minimises and the oracle measures
    return {"time": e.wall_clock_days * 86400.0, "cost": e.cost_usd,
            "gpus": float(e.layout.gpus), "energy": e.energy_mwh}[objective]


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:,.0f} days"


COLUMNS = (("question", 49, "<"), ("status", 8, "<"), ("solve s", 7, ">"),
           ("layouts", 8, ">"), ("rows", 5, ">"), ("oracle layouts", 14, ">"),
           ("oracle s", 22, "<"), ("plan", 32, "<"))


def line(cells: list[str]) -> str:
    return "  ".join(f"{c:{align}{width}}" for c, (_, width, align) in zip(cells, COLUMNS,
                                                                          strict=True))


def main() -> None:
    rows: list[list[str]] = []
    skipped: list[tuple[int, int]] = []  # (row of the table, the oracle's layouts)
    oracle_layouts_run, oracle_seconds = 0, 0.0
    for q in suite():
        start = time.perf_counter()
        plan = solver.solve(q.job, q.limits, objective=q.objective)
        seconds = time.perf_counter() - start
        accelerators, _ = select_accelerators(q.limits, q.objective)
        items = oracle_layouts(q, accelerators)
        oracle = ""
        if items < ORACLE_MAX_LAYOUTS:
            start = time.perf_counter()
            answer = brute_force(q.job, accelerators, q.limits, q.objective)
            oracle_s = time.perf_counter() - start
            if answer.layouts != items:
                raise RuntimeError(f"{q.label}: counted {items} oracle layouts, it evaluated "
                                   f"{answer.layouts}")
            oracle_layouts_run += answer.layouts
            oracle_seconds += oracle_s
            agrees = answer.feasible == (plan.estimate is not None) and (
                not answer.feasible
                or math.isclose(answer.value, value(plan, q.objective), rel_tol=1e-9))
            oracle = f"{oracle_s:.1f} ({'same optimum' if agrees else 'DIFFERENT OPTIMUM'})"
        else:
            skipped.append((len(rows), items))
        e = plan.estimate
        summary = (f"{e.layout.gpus:,} x {e.layout.accelerator}, {e.wall_clock_days:.1f} d"
                   if e is not None else "-")
        rows.append([q.label, plan.status, f"{seconds:.2f}", f"{plan.candidates:,}",
                     f"{plan.rows:,}", f"{items:.1e}", oracle, summary])
    rate = oracle_layouts_run / oracle_seconds if oracle_seconds else math.nan
    for i, items in skipped:
        rows[i][6] = f"skipped (>= ~{duration(items / rate)})"

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, numpy {np.__version__}, gpuplan {solver.__version__}")
    print("solve s: wall time of solver.solve with its defaults (60 s limit, 2 CP-SAT workers)")
    print("layouts: evaluated by the step model; rows: left for CP-SAT after pruning")
    print(f"oracle layouts: the complete space brute_force evaluates; oracle s: its wall time, "
          f"run below {ORACLE_MAX_LAYOUTS:,} layouts,")
    print(f"  else projected at the {rate:,.0f} layouts/s it reached on the questions it ran "
          "(a floor: its loop also visits every dp up to the GPU cap)")
    print()
    print(line([name for name, _, _ in COLUMNS]))
    print(line(["-" * width for _, width, _ in COLUMNS]))
    for cells in rows:
        print(line(cells))


if __name__ == "__main__":
    main()
