"""How well the step model predicts published training runs, and the fit of its calibration.

Run:  python benchmarks/fidelity.py            (the table with the stored calibration)
      python benchmarks/fidelity.py --fit      (also refit the calibration; needs scipy:
                                                pip install -e ".[fit]")

Each published run of ``tests/data/published_runs.json`` with enough detail is predicted with
its published layout held fixed, in the metric its source reports (hardware TFLOP/s per GPU in
Megatron-LM's accounting, model TFLOP/s per GPU, or MFU with the source's own FLOP count).
The table shows published, predicted and the error; below it the median and worst absolute
error, and the leave-one-out figures: each run predicted by a calibration fitted without it.

The fit: the free fields of ``Calibration`` (``FIT_FIELDS``) minimise the sum of squared log
errors over all runs together (``scipy.optimize.least_squares``, bounded to physical ranges).
No constant belongs to one run or one model.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import solver
from solver.stepmodel.arrays import HardwareTable, LayoutArrays
from solver.stepmodel.calibration import DEFAULT_CALIBRATION, Calibration
from solver.stepmodel.evaluate import evaluate_arrays
from solver.stepmodel.shape import JobShape, job_shape

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "published_runs.json"

#: Calibration fields fitted over all runs, with their physical bounds.
FIT_FIELDS: dict[str, tuple[float, float]] = {
    "layer_overhead_s": (0.0, 500e-6),
    "elementwise_traffic": (1.0, 8.0),
    "scaleout_bus_efficiency": (0.3, 1.0),
    "dp_overlap": (0.0, 1.0),
}
#: Accelerator families whose training-GEMM efficiency over MAMF (``matmul_scale`` in their
#: ``hardware_specs/*.toml``) is fitted; every published run ran on one of them.
FIT_FAMILIES: dict[str, tuple[float, float]] = {
    "nvidia-ampere": (0.5, 1.0),
    "nvidia-hopper": (0.5, 1.0),
}


@dataclass(frozen=True)
class Run:
    """One published run, ready to predict: the job, the layout and what to compare."""

    id: str
    metric: str
    published: float
    job: solver.TrainingJob
    layout: solver.Layout
    js: JobShape
    family: str
    hw: HardwareTable
    x: LayoutArrays
    model_flops_per_token: float | None  # the source's own count, when it differs

    def predict(self, cal: Calibration = DEFAULT_CALIBRATION,
                families: dict[str, float] | None = None) -> float:
        """The metric as predicted; ``families`` overrides the accelerator's matmul_scale."""
        hw = self.hw
        if families and self.family in families:
            hw = dataclasses.replace(hw, matmul_scale=np.array([families[self.family]]))
        r = evaluate_arrays(self.job, self.x, hw, cal, self.js)
        if self.metric == "mfu" and self.model_flops_per_token is not None:
            per_gpu = float(r.tokens_per_s[0]) / float(r.gpus[0])
            return per_gpu * self.model_flops_per_token / float(r.peak_flops[0])
        return float(getattr(r, self.metric)[0])


def load_runs(path: Path = DATA) -> list[Run]:
    """The runs of ``published_runs.json`` marked ``use`` (the others lack detail)."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    runs = []
    for row in doc["runs"]:
        f: dict[str, Any] = row["fidelity"]
        if not f["use"]:
            continue
        model = solver.model(f["preset"]) if "preset" in f else solver.ModelSpec(**f["model"])
        job = solver.TrainingJob(model=model, tokens=1e12, **f["job"])
        layout = solver.Layout(**f["layout"])
        acc = solver.accelerator(layout.accelerator)
        nmb = job.global_batch // (layout.dp * layout.micro_batch)
        runs.append(Run(
            id=row["id"], metric=f["metric"], published=float(f["published"]), job=job,
            layout=layout, js=job_shape(job), family=acc.family,
            hw=HardwareTable.build([acc], job.precision),
            x=LayoutArrays.from_layouts([layout], [nmb], {acc.name: 0}),
            model_flops_per_token=f.get("model_flops_per_token")))
    return runs


@dataclass(frozen=True)
class Fitted:
    """A calibration and the per-family matmul scales that go with it."""

    calibration: Calibration
    families: dict[str, float]

    def predict(self, run: Run) -> float:
        return run.predict(self.calibration, self.families)


def shipped() -> Fitted:
    """The calibration as stored: ``DEFAULT_CALIBRATION`` and the hardware specs' values."""
    families: dict[str, float] = {}
    for acc in solver.accelerators().values():
        if acc.family in FIT_FAMILIES and acc.matmul_scale is not None:
            families.setdefault(acc.family, acc.matmul_scale)
    return Fitted(DEFAULT_CALIBRATION, families)


def _unpack(values: Sequence[float], base: Calibration) -> Fitted:
    n = len(FIT_FIELDS)
    cal = dataclasses.replace(base, **dict(zip(FIT_FIELDS, values[:n], strict=True)))
    return Fitted(cal, dict(zip(FIT_FAMILIES, values[n:], strict=True)))


def log_errors(runs: Sequence[Run], fitted: Fitted) -> np.ndarray:
    return np.array([math.log(fitted.predict(r) / r.published) for r in runs])


def fit(runs: Sequence[Run], start: Fitted | None = None) -> Fitted:
    """Least squares on log(predicted / published) over all ``runs`` together."""
    from scipy.optimize import least_squares

    start = start or shipped()
    bounds = list(FIT_FIELDS.values()) + list(FIT_FAMILIES.values())
    low, high = [b[0] for b in bounds], [b[1] for b in bounds]
    x0 = [getattr(start.calibration, k) for k in FIT_FIELDS]
    x0 += [start.families.get(k, start.calibration.matmul_scale) for k in FIT_FAMILIES]
    x0 = [min(max(v, lo), hi) for v, lo, hi in zip(x0, low, high, strict=True)]
    scale = [hi - lo for lo, hi in zip(low, high, strict=True)]
    result = least_squares(lambda v: log_errors(runs, _unpack(v, start.calibration)), x0,
                           bounds=(low, high), x_scale=scale, diff_step=1e-4)
    return _unpack(result.x, start.calibration)


def leave_one_out(runs: Sequence[Run], start: Fitted | None = None) -> list[float]:
    """Relative error of each run predicted by a calibration fitted on all the others."""
    out = []
    for i, run in enumerate(runs):
        fitted = fit([r for j, r in enumerate(runs) if j != i], start)
        out.append(fitted.predict(run) / run.published - 1.0)
    return out


def summary(errors: Sequence[float]) -> tuple[float, float]:
    absolute = [abs(e) for e in errors]
    return statistics.median(absolute), max(absolute)


UNITS = {"hardware_tflops_per_gpu": "hw TFLOP/s", "model_tflops_per_gpu": "model TFLOP/s",
         "mfu": "MFU"}


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit", action="store_true",
                        help="refit the calibration over all runs and print its values")
    parser.add_argument("--no-loo", action="store_true", help="skip the leave-one-out fits")
    args = parser.parse_args(argv)
    runs = load_runs()
    fitted = shipped()
    if args.fit:
        fitted = fit(runs)
        print("fitted over all runs:")
        for name in FIT_FIELDS:
            print(f"  Calibration.{name} = {getattr(fitted.calibration, name):.4g}")
        for family, value in fitted.families.items():
            print(f"  matmul_scale of {family} = {value:.4g}")
        print()
    loo = None if args.no_loo else leave_one_out(runs, fitted)
    print(table(runs, fitted, loo))
    return 0


if __name__ == "__main__":
    sys.exit(main())
