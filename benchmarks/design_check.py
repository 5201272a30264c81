"""The issue's design question and a few like it: the size chosen, its tokens per parameter
beside Chinchilla's rule of thumb (about 20), and how long each design takes.

Run: python benchmarks/design_check.py [--time-limit-s 10]
Questions: 4,096 H100 for 90 days under both built-in laws (the issue's done-when question:
the default law should give 10 to 40 tokens per parameter); 4,096 H100 with a $30M budget;
up to 8,192 H100 for 30 days. For each: the model, parameters, tokens, tokens per parameter,
the law's own compute-optimal ratio at the same compute, the sizes within 0.001 of the best
loss, the plan's wall-clock days and cost, and the seconds and solves it took.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from typing import Any

from solver.design import Design, design

QUESTIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("4096 H100, 90 days, besiroglu2024", {"gpus": 4096, "days": 90}),
    ("4096 H100, 90 days, hoffmann2022", {"gpus": 4096, "days": 90, "law": "hoffmann2022"}),
    ("4096 H100, $30M", {"gpus": 4096, "budget_usd": 3e7}),
    ("up to 8192 H100, 30 days", {"max_gpus": 8192, "days": 30}),
)


def row(label: str, answer: Design, seconds: float) -> str:
    n_opt, d_opt = answer.law_optimum()
    near = answer.near_optimal()
    e = answer.plan.estimate if answer.plan is not None else None
    days = f"{e.wall_clock_days:6.1f}" if e else "     -"
    cost = f"{e.cost_usd / 1e6:7.1f}M" if e else "       -"
    span = f"{near[0] / 1e9:5.0f}B-{near[1] / 1e9:5.0f}B" if near else "-"
    name = answer.model.name if answer.model is not None else "-"
    return (f"{label:36} {name:24} {answer.params / 1e9:6.0f}B {answer.tokens / 1e12:6.2f}T "
            f"{answer.tokens_per_param:7.1f} {d_opt / n_opt:7.1f}  {span:14} {days} {cost} "
            f"{seconds:6.1f} {answer.solves:4d}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit-s", type=float, default=10.0)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}")
    print(f"{'question':36} {'model':24} {'params':>7} {'tokens':>7} {'tok/N':>7} "
          f"{'law tok/N':>8}  {'within 0.001':14} {'days':>6} {'cost':>8} {'s':>6} solves")
    answers = {}
    for label, kwargs in QUESTIONS:
        started = time.perf_counter()
        answer = design("h100-sxm5-80gb", time_limit_s=args.time_limit_s, **kwargs)
        print(row(label, answer, time.perf_counter() - started), flush=True)
        answers[label] = answer
    first = answers[QUESTIONS[0][0]]
    verdict = "within" if 10 <= first.tokens_per_param <= 40 else "OUTSIDE"
    print(f"\nissue 17 done-when: {first.tokens_per_param:.1f} tokens per parameter, {verdict} "
          "[10, 40] (Chinchilla's rule of thumb: about 20)")
    print("\nsizes tried for the first question:")
    for c in first.candidates:
        text = c.skipped or (f"{c.tokens / 1e12:9.3f}T {c.tokens / c.params:12,.1f} "
                             f"{c.loss:.4f} {c.wall_clock_days:5.1f} d")
        print(f"  {c.model.name:24} {c.params / 1e9:8.1f}B  {text}")


if __name__ == "__main__":
    main()
