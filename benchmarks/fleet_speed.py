"""How long ``solver.fleet`` takes on a year-long plan: 20 jobs, 4 accelerator types, 365 days.

Run: python benchmarks/fleet_speed.py [--time-limit-s 60] [--workers 2] [--seed 0]
The fleet: 1,024 H100 owned all year, 512 A100 retired on day 200, 256 B200 arriving on day
120, and up to 512 H200 for rent by the month at $3.50 an hour. The jobs: five kinds (Llama 3
8B and 70B, Mixtral 8x7B, at several token counts), four of each, with release days, deadlines
(a few of them hard) and weights drawn from ``--seed``. The objective: weighted days late, then
the rental bill, then the makespan. Prints each job's placement, then the objectives' values
and proven bounds, the gap, and the times: the candidates' (the step model, once per distinct
job and type) apart from the schedule's (CP-SAT, the 60 s limit the issue sets).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import time

from solver import catalog
from solver.fleet import FleetJob, FleetSpec, Options, Pool, fleet
from solver.specs import TrainingJob

KINDS = (("llama3-8b", 1e12), ("llama3-8b", 4e12), ("llama3-70b", 2e12),
         ("mixtral-8x7b", 2e12), ("llama3-70b", 3e12))


def build(seed: int, time_limit_s: float, workers: int) -> FleetSpec:
    rng = random.Random(seed)
    pools = (Pool("h100-sxm5-80gb", owned=1024),
             Pool("a100-sxm4-80gb", owned=512, until_day=200),
             Pool("b200", owned=256, from_day=120),
             Pool("h200-sxm-141gb", rent_max=512, rent_usd_per_gpu_hour=3.5))
    jobs = []
    for i in range(20):
        model, tokens = KINDS[i % len(KINDS)]
        release = float(rng.randrange(0, 240, 5))
        deadline = min(365.0, release + rng.randrange(30, 150, 5))
        jobs.append(FleetJob(name=f"job{i:02d}-{model}", release_day=release,
                             job=TrainingJob(model=catalog.model(model), tokens=tokens),
                             deadline_day=deadline, hard_deadline=rng.random() < 0.15,
                             weight=rng.randint(1, 5)))
    options = Options(horizon_days=365, resolution_days=0.5, rent_period_days=30,
                      time_limit_s=time_limit_s, workers=workers, seed=seed)
    return FleetSpec(pools=pools, jobs=tuple(jobs), options=options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit-s", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}")
    spec = build(args.seed, args.time_limit_s, args.workers)
    started = time.perf_counter()
    plan = fleet(spec)
    total = time.perf_counter() - started
    due = {j.name: j for j in spec.jobs}
    print(f"{'job':24} {'release':>7} {'deadline':>9} {'w':>2} {'accelerator':15} "
          f"{'count':>6} {'start':>6} {'end':>6} {'late':>5}")
    for j in sorted(plan.jobs, key=lambda j: (j.start_day, j.name)):
        f = due[j.name]
        hard = "!" if f.hard_deadline else " "
        print(f"{j.name:24} {f.release_day:7g} {f.deadline_day:8g}{hard} {f.weight:2d} "
              f"{j.candidate.accelerator:15} {j.candidate.gpus:6,} {j.start_day:6g} "
              f"{j.end_day:6g} {j.days_late:5g}")
    print(f"status: {plan.status}")
    for name in plan.objective:
        if name in plan.values:
            print(f"  {name:12} value {plan.values[name]:>14,.2f}  bound "
                  f"{plan.bounds[name]:>14,.2f}")
    gap = plan.gap()
    print(f"gap: {'n/a' if gap is None else f'{gap:.2%}'}")
    rented = sum(r.cost_usd for r in plan.rented)
    print(f"rented: {sum(r.gpus for r in plan.rented):,} accelerator-periods, ${rented:,.0f}")
    print(f"options: {plan.candidates:,}; candidates {plan.candidates_s:.1f} s, schedule "
          f"{plan.solve_time_s:.1f} s (limit {args.time_limit_s:g} s), total {total:.1f} s")
    for line in (*plan.explanation, *plan.notes):
        print(f"  {line}")


if __name__ == "__main__":
    main()
