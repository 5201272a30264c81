"""``solve`` against a brute force over every layout ``evaluate`` accepts: GPT-3 175B.

Run:  python benchmarks/whole_space.py

For GPT-3 175B (300B tokens, global batch 1536, sequence 2048) on at most 1,024 and at most
4,096 A100-80GB, fastest plan: the brute-force oracle (``solver.search.oracle.brute_force``)
evaluates every layout ``solver.evaluate`` accepts -- every tp dividing the heads and widths
(3, 6, 12, 24, ... too), every pp, vp and pipeline split of Megatron-LM's stage rule (vp up to
12), every schedule, every cp with ``2*cp`` dividing the sequence, every micro-batch dividing
the global batch, every dp, ZeRO 0-3 and every recomputation mask (one per set of masks with
identical effects: a dense model ignores the MoE and MLA modules) -- with no bound and no
pruning, and prints its best wall-clock training time (failures counted: what the time
objective minimises) beside ``solve``'s. They must be equal.
"""

from __future__ import annotations

import platform
import time

import numpy as np

import solver
from solver.search.oracle import brute_force

A100 = "a100-sxm4-80gb"


def main() -> int:
    job = solver.TrainingJob(model=solver.model("gpt3-175b"), tokens=300e9, global_batch=1536,
                             seq_len=2048)
    accs = [solver.accelerator(A100)]
    print(f"machine: {platform.machine()}, numpy {np.__version__}, gpuplan "
          f"{solver.__version__ if hasattr(solver, '__version__') else ''}".rstrip())
    head = (f"{'GPUs at most':>12}  {'oracle layouts':>14}  {'oracle s':>8}  {'oracle days':>11}  "
            f"{'solve s':>7}  {'solve days':>10}  {'status':<8} equal  (wall-clock days)")
    print(head)
    print("-" * len(head))
    failed = 0
    for cap in (1024, 4096):
        limits = solver.Limits(accelerators=(A100,), max_gpus=cap)
        started = time.perf_counter()
        oracle = brute_force(job, accs, limits, "time", every_mask=True)
        oracle_s = time.perf_counter() - started
        started = time.perf_counter()
        plan = solver.solve(job, limits, objective="time")
        solve_s = time.perf_counter() - started
        assert plan.estimate is not None
        days = plan.estimate.wall_clock_days
        equal = abs(days * 86_400.0 - oracle.value) <= 1e-9 * oracle.value
        failed += not equal
        print(f"{cap:>12,}  {oracle.layouts:>14,}  {oracle_s:>8.1f}  "
              f"{oracle.value / 86_400.0:>11.4f}  {solve_s:>7.2f}  {days:>10.4f}  "
              f"{plan.status:<8} {'yes' if equal else 'NO'}")
        x = plan.estimate.layout
        print(f"{'':>12}  plan: TP{x.tp} PP{x.pp} DP{x.dp} CP{x.cp} VP{x.vp} mb{x.micro_batch} "
              f"ZeRO-{x.zero_stage} {x.recompute} {x.schedule} split {x.pipeline_split}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
