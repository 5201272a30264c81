"""The tables ``fidelity.py`` prints: one row per run, the summaries per family and for the
MoE runs, the published layouts the memory model puts over capacity, and how honest the error
band is. Split from ``fidelity.py``, which loads the runs, fits and calls these."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import band_residuals as band  # beside this file, on the path fidelity.py puts it on

import solver

if TYPE_CHECKING:
    from fidelity import Fitted, Run


def summary(errors: Sequence[float]) -> tuple[float, float]:
    absolute = [abs(e) for e in errors]
    return statistics.median(absolute), max(absolute)


def memory_misfits(runs: Sequence[Run]) -> list[str]:
    """The published layouts the memory model says do not fit (they ran, so they did)."""
    lines = []
    for run in runs:
        est = solver.evaluate(run.job, run.layout)
        if est.memory_gib_per_gpu > est.memory_capacity_gib:
            lines.append(f"{run.id}: {est.memory_gib_per_gpu:.1f} GiB predicted, "
                         f"{est.memory_capacity_gib:.0f} GiB on the accelerator")
    return lines


UNITS = {"hardware_tflops_per_gpu": "hw TFLOP/s", "model_tflops_per_gpu": "model TFLOP/s",
         "mfu": "MFU", "tokens_per_s_per_gpu": "tokens/s"}


def by_group(runs: Sequence[Run], fitted: Fitted) -> str:
    """Median and worst |error| per accelerator family, and over the MoE runs."""
    groups: dict[str, list[float]] = {}
    for run in runs:
        err = fitted.predict(run) / run.published - 1.0
        groups.setdefault(f"family {run.family}", []).append(err)
        if run.job.model.is_moe:
            groups.setdefault("MoE runs", []).append(err)
    lines = [f"{'group':<28} {'runs':>4} {'median':>7} {'worst':>7}"]
    for name, errors in sorted(groups.items()):
        median, worst = summary(errors)
        lines.append(f"{name:<28} {len(errors):>4} {median:>7.1%} {worst:>7.1%}")
    return "\n".join(lines)


def table(runs: Sequence[Run], fitted: Fitted, loo: Sequence[float] | None = None) -> str:
    head = f"{'run':<44} {'metric':<13} {'published':>9} {'predicted':>9} {'error':>7}"
    if loo is not None:
        head += f" {'LOO err':>8}"
    lines = [head, "-" * len(head)]
    errors = []
    for i, run in enumerate(runs):
        pred = fitted.predict(run)
        err = pred / run.published - 1.0
        errors.append(err)
        fmt = ".3f" if run.metric == "mfu" else ".1f"
        line = (f"{run.id:<44} {UNITS[run.metric]:<13} {run.published:>9{fmt}} "
                f"{pred:>9{fmt}} {err:>+7.1%}")
        if loo is not None:
            line += f" {loo[i]:>+8.1%}"
        lines.append(line)
    median, worst = summary(errors)
    lines.append("-" * len(head))
    lines.append(f"{len(runs)} runs: median |error| {median:.1%}, worst {worst:.1%}")
    if loo is not None:
        lmed, lworst = summary(loo)
        lines.append(f"leave-one-out: median |error| {lmed:.1%}, worst {lworst:.1%}")
    return "\n".join(lines)


def band_report(runs: Sequence[Run], loo: Sequence[float] | None, write: bool,
                norm: int) -> None:
    """Write the residual table (``--write-residuals``: ``loo`` over all ``runs``) and print
    how honest the band is."""
    if loo is not None:
        table = band.rows(runs, loo)
        source = "the leave-one-out errors above"
    else:
        from solver import uncertainty

        table = list(uncertainty.shipped())
        source = f"the shipped {band.RESIDUALS.relative_to(Path(__file__).parent.parent)}"
    if write:
        band.write(table, norm=norm)
        print(f"\nwrote the leave-one-out errors of {len(table)} runs to {band.RESIDUALS}")
    print()
    print("\n".join(band.honesty_lines(table, source)))


def report_new(everyone: Sequence[Run], n_old: int, fitted: Fitted,
               loo: Sequence[float] | None) -> None:
    """Print the 2024-2026 runs (``--new``), the summaries per family and over all runs."""
    new = everyone[n_old:]
    print("\n2024-2026 runs (the same calibration, fitted over all runs together):")
    print(table(new, fitted, None if loo is None else loo[n_old:]))
    print()
    print(by_group(everyone, fitted))
    errors = [fitted.predict(r) / r.published - 1.0 for r in everyone]
    median, worst = summary(errors)
    print(f"\nall {len(errors)} runs: median |error| {median:.1%}, worst {worst:.1%}")
    if loo is not None:
        lmed, lworst = summary(loo)
        print(f"leave-one-out over all: median |error| {lmed:.1%}, worst {lworst:.1%}")
    misfits = memory_misfits(new)
    print(f"\nmemory: {len(new) - len(misfits)} of {len(new)} of these layouts fit as "
          "predicted; over capacity:")
    for line in misfits or ["(none)"]:
        print(f"  {line}")
