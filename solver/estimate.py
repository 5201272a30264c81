"""What gpuplan says about one layout: the ``Estimate`` (docs/interface.md, "JSON")."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from solver import uncertainty
from solver.layout_options import PIPELINE_SPLITS, SCHEDULES, recompute_name
from solver.specs import Accelerator, Layout, TrainingJob
from solver.stepmodel import goodput
from solver.stepmodel.evaluate import SECONDS_PER_DAY, StepResult
from solver.stepmodel.memory import GIB
from solver.stepmodel.shape import job_shape

SCHEMA_VERSION = 1


def json_number(value: float, digits: int = 6) -> float | None:
    """JSON-safe float: NaN (unknown) becomes null; values rounded to ``digits`` significant."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.{digits}g}")


@dataclass(frozen=True)
class Estimate:
    """The step model's answer for one layout of one job."""

    layout: Layout
    num_microbatches: int
    global_batch: int
    step_time_s: float
    tokens_per_s: float
    model_tflops_per_gpu: float
    hardware_tflops_per_gpu: float
    mfu: float
    hfu: float
    training_days: float
    gpu_hours: float
    memory_gib_per_gpu: float
    memory_capacity_gib: float
    memory_breakdown_gib: dict[str, float]
    time_breakdown_s: dict[str, float]
    cost_usd: float
    energy_mwh: float
    co2_tonnes: float
    violations: tuple[str, ...] = field(default=())
    #: The error band on ``training_days`` (``solver/uncertainty.py``): low and high days,
    #: whether the question lies inside the calibrated envelope, and what the band rests on.
    training_days_range: tuple[float, float] = (math.nan, math.nan)
    calibrated: bool = False
    calibration_note: str = "no error band: the job was not given"
    #: Failures, checkpoints and restarts (``solver/stepmodel/goodput.py``): the wall-clock
    #: days the failure-free ``training_days`` become, their ratio, the interruptions expected
    #: in that time, the checkpoint interval (minutes of work), the days lost to checkpoints,
    #: restarts and rework, and what the figures rest on (``failure_model``).
    wall_clock_days: float = math.nan
    goodput: float = math.nan
    expected_interruptions: float = math.nan
    checkpoint_interval_min: float = math.nan
    lost_days: dict[str, float] = field(default_factory=dict)
    failure_model: dict[str, Any] = field(default_factory=dict)

    @property
    def fits(self) -> bool:
        return not self.violations

    def judged_days(self, risk: str = "expected") -> float:
        """The days a deadline is judged against: the wall-clock days, or with ``risk``
        "high" the high end of their error band (``search.table.deadline_days`` for one
        layout: wall-clock time is proportional to the failure-free time at a layout)."""
        if risk != "high":
            return self.wall_clock_days
        return self.wall_clock_days * self.training_days_range[1] / self.training_days

    def layout_dict(self) -> dict[str, Any]:
        x = self.layout
        return {
            "accelerator": x.accelerator, "gpus": x.gpus, "tp": x.tp, "pp": x.pp, "dp": x.dp,
            "cp": x.cp, "ep": x.ep, "vp": x.vp, "micro_batch": x.micro_batch,
            "num_microbatches": self.num_microbatches, "global_batch": self.global_batch,
            "zero_stage": x.zero_stage, "recompute": x.recompute, "schedule": x.schedule,
            "pipeline_split": x.pipeline_split,
        }

    def estimate_dict(self) -> dict[str, Any]:
        return {
            "step_time_s": json_number(self.step_time_s),
            "tokens_per_s": json_number(self.tokens_per_s),
            "model_tflops_per_gpu": json_number(self.model_tflops_per_gpu),
            "hardware_tflops_per_gpu": json_number(self.hardware_tflops_per_gpu),
            "mfu": json_number(self.mfu, 4),
            "hfu": json_number(self.hfu, 4),
            "training_days": json_number(self.training_days),
            "training_days_range": [json_number(v) for v in self.training_days_range],
            "wall_clock_days": json_number(self.wall_clock_days),
            "goodput": json_number(self.goodput, 4),
            "expected_interruptions": json_number(self.expected_interruptions),
            "checkpoint_interval_min": json_number(self.checkpoint_interval_min),
            "lost_days": {k: json_number(v) for k, v in self.lost_days.items()},
            "failure_model": self.failure_model,
            "calibrated": self.calibrated,
            "calibration_note": self.calibration_note,
            "gpu_hours": json_number(self.gpu_hours),
            "memory_gib_per_gpu": json_number(self.memory_gib_per_gpu),
            "memory_capacity_gib": json_number(self.memory_capacity_gib),
            "memory_breakdown_gib": {k: json_number(v)
                                     for k, v in self.memory_breakdown_gib.items()},
            "time_breakdown_s": {k: json_number(v) for k, v in self.time_breakdown_s.items()},
            "cost_usd": json_number(self.cost_usd),
            "energy_mwh": json_number(self.energy_mwh),
            "co2_tonnes": json_number(self.co2_tonnes),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "layout": self.layout_dict(),
            "estimate": self.estimate_dict(),
            "fits": self.fits,
            "explanation": list(self.violations),
        }


def memory_violation(used_gib: float, capacity_gib: float, name: str) -> str:
    return (f"memory: needs {used_gib:.1f} GiB per accelerator, {name} has {capacity_gib:.0f} GiB")


def host_memory_violation(offloaded_gib: float, capacity_gib: float, name: str) -> str:
    if capacity_gib != capacity_gib:  # NaN: not published
        return (f"host memory: activation offload moves {offloaded_gib:.1f} GiB per "
                f"accelerator to the host, and {name} has no published host memory")
    return (f"host memory: activation offload moves {offloaded_gib:.1f} GiB per accelerator "
            f"to the host, {name} has {capacity_gib:.0f} GiB of host memory per accelerator")


def failure_model_dict(job: TrainingJob, gpus: int) -> dict[str, Any]:
    """What the wall-clock figures of ``job`` on ``gpus`` accelerators rest on: the rates and
    their sources, the job's mean time between interruptions, the checkpoint and its write
    time, the restart (``estimate.failure_model`` in docs/interface.md)."""
    if not job.failures:
        return {"failures": False}
    fm = goodput.failure_model(job, job_shape(job))
    rates = [{"cause": c.name, "per_accelerator_hour": json_number(c.per_accelerator_hour),
              "source": c.source} for c in fm.causes]
    if job.mtbf_hours:
        rates = [{"cause": "all", "per_accelerator_hour": json_number(1 / job.mtbf_hours),
                  "source": f"mtbf_hours = {job.mtbf_hours:g} per accelerator (given)"}]
    write = float(goodput.write_s(fm, np.array([gpus]))[0])
    return {
        "failures": True,
        "rates": rates,
        "accelerator_mtbf_hours": json_number(fm.accelerator_mtbf_hours),
        "job_mtbf_hours": json_number(fm.accelerator_mtbf_hours / gpus),
        "checkpoint_gb": json_number(fm.checkpoint_bytes / 1e9),
        "checkpoint_write_s": json_number(write),
        "async_checkpoint": fm.asynchronous,
        "restart_min": json_number(fm.restart_s / 60 + write / 60
                                   + fm.hardware_share * fm.replace_s / 60),
    }


def estimate_at(result: StepResult, i: int, names: tuple[str, ...], *,
                job: TrainingJob | None = None,
                accelerator: Accelerator | None = None) -> Estimate:
    """The ``Estimate`` of row ``i`` of a vectorised result (one code path for all callers).

    With ``job`` and the row's ``accelerator`` it carries the error band on training days
    (``solver/uncertainty.py``: a few dozen distances, cheap); without them, none (NaN)."""
    x = result.x
    layout = Layout(
        accelerator=names[int(x.accel[i])], tp=int(x.tp[i]), pp=int(x.pp[i]),
        dp=int(x.dp[i]), cp=int(x.cp[i]), ep=int(x.ep[i]), vp=int(x.vp[i]),
        micro_batch=int(x.mb[i]), zero_stage=int(x.zero[i]),
        recompute=recompute_name(int(x.recompute[i])),
        schedule=SCHEDULES[int(x.schedule[i])],
        pipeline_split=PIPELINE_SPLITS[int(x.split[i])],
    )
    used = float(result.memory.total[i]) / GIB
    capacity = float(result.capacity_bytes[i]) / GIB
    violations = []
    if used > capacity:
        violations.append(memory_violation(used, capacity, layout.accelerator))
    host = float(result.memory.host[i]) / GIB
    host_capacity = float(result.host_capacity_bytes[i]) / GIB
    if host > 0 and not host <= host_capacity:
        violations.append(host_memory_violation(host, host_capacity, layout.accelerator))
    if not bool(result.placeable[i]):
        violations.append(
            "interconnect: a parallel group leaves the scale-up domain of "
            f"{layout.accelerator}, whose scale-out bandwidth is not published")
    days = float(result.training_days[i])
    wall_days = float(result.wall_clock_days[i])
    checkpointing = float(result.checkpointing_s[i]) / SECONDS_PER_DAY
    restarting = float(result.restarting_s[i]) / SECONDS_PER_DAY
    band = uncertainty.Band(math.nan, math.nan, False, Estimate.calibration_note)
    if job is not None and accelerator is not None:
        band = uncertainty.band(job, layout, accelerator)
    return Estimate(
        layout=layout,
        num_microbatches=int(x.nmb[i]),
        global_batch=int(result.global_batch[i]),
        step_time_s=float(result.step_s[i]),
        tokens_per_s=float(result.tokens_per_s[i]),
        model_tflops_per_gpu=float(result.model_tflops_per_gpu[i]),
        hardware_tflops_per_gpu=float(result.hardware_tflops_per_gpu[i]),
        mfu=float(result.mfu[i]),
        hfu=float(result.hfu[i]),
        training_days=days,
        gpu_hours=float(result.gpu_hours[i]),
        memory_gib_per_gpu=used,
        memory_capacity_gib=capacity,
        memory_breakdown_gib=result.memory.breakdown_gib(i),
        time_breakdown_s=result.time.breakdown(i),
        cost_usd=float(result.cost_usd[i]),
        energy_mwh=float(result.energy_mwh[i]),
        co2_tonnes=float(result.co2_tonnes[i]),
        violations=tuple(violations),
        training_days_range=(days * band.low, days * band.high),
        calibrated=band.calibrated,
        calibration_note=band.note,
        wall_clock_days=wall_days,
        goodput=float(result.goodput[i]),
        expected_interruptions=float(result.interruptions[i]),
        checkpoint_interval_min=float(result.checkpoint_interval_s[i]) / 60.0,
        lost_days={"checkpoints": checkpointing, "restarts": restarting,
                   "rework": wall_days - days - checkpointing - restarting},
        failure_model={} if job is None else failure_model_dict(job, layout.gpus),
    )
