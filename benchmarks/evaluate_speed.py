"""How long one vectorised step-model call takes for 10,000 and 100,000 layouts.

Run: python benchmarks/evaluate_speed.py
Prints a table: layouts, best and median wall time of one ``evaluate_arrays`` call.
"""

from __future__ import annotations

import platform
import statistics
import time

import numpy as np

import solver
from solver.layout_options import DUALPIPE, FULL_BIT, MODULE_BIT, ONE_F_ONE_B, ZERO_BUBBLE
from solver.stepmodel.arrays import HardwareTable, LayoutArrays
from solver.stepmodel.evaluate import evaluate_arrays
from solver.stepmodel.shape import job_shape


def random_layouts(n: int, accelerators: int, rng: np.random.Generator) -> LayoutArrays:
    tp = rng.choice([1, 2, 4, 8], n)
    pp = rng.choice([1, 2, 4, 8, 16], n)
    dp = rng.choice([1, 2, 4, 8, 16, 32, 64], n)
    mb = rng.choice([1, 2, 4], n)
    return LayoutArrays.from_columns(
        accel=rng.integers(0, accelerators, n), tp=tp, pp=pp, dp=dp, cp=rng.choice([1, 2], n),
        ep=1, vp=1, mb=mb, nmb=np.maximum(1, 1536 // (dp * mb)), zero=rng.integers(0, 4, n),
        recompute=rng.choice([0, FULL_BIT, MODULE_BIT["core_attn"], MODULE_BIT["layernorm"]], n),
        schedule=rng.choice([ONE_F_ONE_B, ZERO_BUBBLE, DUALPIPE], n), split=rng.integers(0, 4, n))


def main() -> None:
    job = solver.TrainingJob(model=solver.model("gpt3-175b"), tokens=300e9, global_batch=1536)
    accs = [solver.accelerator(n) for n in ("a100-sxm4-80gb", "h100-sxm5-80gb", "b200")]
    hw = HardwareTable.build(accs, job.precision)
    js = job_shape(job)
    rng = np.random.default_rng(0)
    print(f"machine: {platform.processor() or platform.machine()}, numpy {np.__version__}")
    print(f"{'layouts':>10}  {'best ms':>9}  {'median ms':>9}  {'ns/layout':>9}")
    for n in (10_000, 100_000):
        x = random_layouts(n, len(accs), rng)
        evaluate_arrays(job, x, hw, js=js)  # warm-up
        times = []
        for _ in range(7):
            start = time.perf_counter()
            evaluate_arrays(job, x, hw, js=js)
            times.append(time.perf_counter() - start)
        best, median = min(times), statistics.median(times)
        print(f"{n:>10,}  {best * 1e3:>9.1f}  {median * 1e3:>9.1f}  {best / n * 1e9:>9.0f}")


if __name__ == "__main__":
    main()
