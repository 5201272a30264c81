"""One vectorised call: N layouts in, time, memory, FLOPs, cost and limits out.

This is the only place where the step model's parts are put together; ``solver.evaluate`` for
one layout and the search over thousands both call ``evaluate_arrays``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solver import footprint
from solver.specs import TrainingJob
from solver.stepmodel.arrays import FloatArray, HardwareTable, LayoutArrays
from solver.stepmodel.calibration import DEFAULT_CALIBRATION, Calibration
from solver.stepmodel.compute import hardware_flops_per_token
from solver.stepmodel.goodput import FailureModel, GoodputArrays, failure_model, goodput
from solver.stepmodel.memory import MemoryArrays, memory
from solver.stepmodel.pipeline import schedule_rules, split_slots
from solver.stepmodel.shape import JobShape, job_shape
from solver.stepmodel.timing import TimeArrays, step_time

SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class Divisibility:
    """Megatron-LM's shape rules, each a boolean array (True = satisfied)."""

    heads_by_tp: np.ndarray
    kv_heads_by_tp: np.ndarray
    ffn_by_tp: np.ndarray
    experts_by_ep: np.ndarray
    seq_by_cp: np.ndarray
    layers_by_stages: np.ndarray
    batch_by_dp: np.ndarray
    split_needs_stages: np.ndarray
    schedule: np.ndarray

    MESSAGES = {
        "heads_by_tp": "tp must divide heads={heads}",
        "kv_heads_by_tp": "tp must divide kv_heads={kv_heads} (or be a multiple of it)",
        "ffn_by_tp": "tp must divide ffn_hidden={ffn}",
        "experts_by_ep": "ep must divide experts={experts}",
        "seq_by_cp": "2*cp must divide seq_len={seq} (load-balanced context parallelism)",
        "layers_by_stages": ("pp*vp must divide the {slots} layers, MTP modules and "
                             "accounted embedding/loss slots, every stage keeping a layer"),
        "batch_by_dp": "global_batch={gb} must be a multiple of dp*micro_batch",
        "split_needs_stages": "an uneven pipeline_split needs pp > 1",
        "schedule": ("the schedule's micro-batch rule: interleaving (vp>1) needs a multiple of "
                     "pp, zero-bubble at least pp and vp=1, dualpipe an even pp, vp=1 and an "
                     "even count of at least 2*pp micro-batches (here {nmb})"),
    }

    @property
    def all(self) -> np.ndarray:
        return (self.heads_by_tp & self.kv_heads_by_tp & self.ffn_by_tp & self.experts_by_ep
                & self.seq_by_cp & self.layers_by_stages & self.batch_by_dp
                & self.split_needs_stages & self.schedule)


def layer_slots(job: TrainingJob, x: LayoutArrays) -> np.ndarray:
    """Layers, MTP modules and accounted embedding/loss slots the stages divide."""
    embedding, loss = split_slots(x)
    return job.model.layers + job.model.mtp_layers + embedding + loss


def stages_fit(job: TrainingJob, x: LayoutArrays) -> np.ndarray:
    """Megatron-LM's split rule: ``(L + mtp + slots) % (pp*vp) == 0`` with every stage and
    every chunk keeping at least one transformer layer (or, on the last stage, MTP module),
    and virtual stages only with pipeline stages (``vp > 1`` needs ``pp > 1``)."""
    embedding, loss = split_slots(x)
    slots = layer_slots(job, x)
    chunks = x.pp * x.vp
    per_chunk = slots // chunks
    first = per_chunk - embedding
    last = per_chunk - loss
    # Interleaving needs pipeline stages: Megatron-LM refuses virtual stages on one rank
    # (arguments.py validate_args at d98e8a6: VPP needs pp > 1 with its default p2p overlap).
    return (slots % chunks == 0) & (first >= 1) & (last >= 1) & ((x.vp == 1) | (x.pp > 1))


def divisibility(job: TrainingJob, x: LayoutArrays, global_batch: np.ndarray) -> Divisibility:
    m = job.model
    kv_ok = (m.kv_heads % x.tp == 0) | (x.tp % m.kv_heads == 0)
    ffn = m.moe_ffn_hidden if m.is_moe else m.ffn_hidden
    nmb = global_batch // np.maximum(x.dp * x.mb, 1)
    return Divisibility(
        heads_by_tp=m.heads % x.tp == 0,
        kv_heads_by_tp=kv_ok | np.bool_(m.uses_mla),
        ffn_by_tp=(m.ffn_hidden % x.tp == 0) & (ffn % x.tp == 0),
        experts_by_ep=(m.experts % x.ep == 0) & ((x.ep == 1) | np.bool_(m.is_moe)),
        seq_by_cp=(x.cp == 1) | (job.seq_len % (2 * x.cp) == 0),
        layers_by_stages=stages_fit(job, x),
        batch_by_dp=global_batch % (x.dp * x.mb) == 0,
        split_needs_stages=(x.split == 0) | (x.pp > 1),
        schedule=schedule_rules(x, nmb),
    )


def memory_fits(mem: MemoryArrays, capacity: FloatArray, host_capacity: FloatArray
                ) -> np.ndarray:
    """Device memory within ``capacity``, and offloaded activations (if any) within the host
    memory ``host_capacity`` (unknown host memory holds none)."""
    host = mem.host
    return (mem.total <= capacity) & ((host <= 0) | (host <= host_capacity))


@dataclass(frozen=True)
class StepResult:
    """Everything the step model says about N layouts (arrays of length N)."""

    x: LayoutArrays
    memory: MemoryArrays
    time: TimeArrays
    gpus: np.ndarray
    global_batch: np.ndarray
    seq_len: int
    capacity_bytes: FloatArray
    step_s: FloatArray
    steps: FloatArray
    training_s: FloatArray
    model_flops_per_step: FloatArray
    hardware_flops_per_step: FloatArray
    peak_flops: FloatArray
    cost_usd: FloatArray
    energy_mwh: FloatArray
    co2_tonnes: FloatArray

    host_capacity_bytes: FloatArray
    #: Failures, checkpoints and restarts (``goodput.py``): wall-clock seconds, the checkpoint
    #: interval (seconds of work), expected interruptions, seconds checkpointing and
    #: restarting. ``training_s`` stays the failure-free time; cost and energy are on
    #: ``wall_s``.
    wall_s: FloatArray
    checkpoint_interval_s: FloatArray
    interruptions: FloatArray
    checkpointing_s: FloatArray
    restarting_s: FloatArray

    @property
    def fits_memory(self) -> np.ndarray:
        """Device memory within capacity, and offloaded activations (if any) within the
        host memory (unknown host memory holds none)."""
        return memory_fits(self.memory, self.capacity_bytes, self.host_capacity_bytes)

    @property
    def placeable(self) -> np.ndarray:
        """False where a group must leave the scale-up domain but scale-out is unknown."""
        return np.isfinite(self.step_s)

    @property
    def tokens_per_s(self) -> FloatArray:
        return self.global_batch * self.seq_len / self.step_s

    @property
    def training_days(self) -> FloatArray:
        return self.training_s / SECONDS_PER_DAY

    @property
    def wall_clock_days(self) -> FloatArray:
        return self.wall_s / SECONDS_PER_DAY

    @property
    def goodput(self) -> FloatArray:
        """Useful time over wall-clock time (NaN where both are unknown or infinite)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.training_s / self.wall_s

    @property
    def gpu_hours(self) -> FloatArray:
        """Accelerator-hours of wall-clock time (what is paid for)."""
        return self.gpus * self.wall_s / 3600.0

    @property
    def model_tflops_per_gpu(self) -> FloatArray:
        return self.model_flops_per_step / self.step_s / self.gpus / 1e12

    @property
    def hardware_tflops_per_gpu(self) -> FloatArray:
        return self.hardware_flops_per_step / self.step_s / self.gpus / 1e12

    @property
    def mfu(self) -> FloatArray:
        return self.model_tflops_per_gpu * 1e12 / self.peak_flops

    @property
    def hfu(self) -> FloatArray:
        return self.hardware_tflops_per_gpu * 1e12 / self.peak_flops


def evaluate_arrays(job: TrainingJob, x: LayoutArrays, hw: HardwareTable,
                    cal: Calibration = DEFAULT_CALIBRATION, js: JobShape | None = None,
                    mem: MemoryArrays | None = None, fm: FailureModel | None = None
                    ) -> StepResult:
    """Evaluate every layout of ``x`` for ``job`` on the accelerators of ``hw`` (``mem``:
    their memory, ``memory(js, x, hw=hw)``, when the caller has it already; ``fm``: the job's
    failure model, ``failure_model(job, js)``, likewise)."""
    js = job_shape(job) if js is None else js
    fm = failure_model(job, js) if fm is None else fm
    mem = memory(js, x, hw=hw) if mem is None else mem
    with np.errstate(invalid="ignore", divide="ignore"):
        times = step_time(js, x, hw, cal)
        step_s = times.step
    global_batch = x.dp * x.mb * x.nmb
    tokens_per_step = global_batch * job.seq_len
    steps = job.tokens / tokens_per_step
    training_s = steps * step_s
    gpus = x.tp * x.pp * x.cp * x.dp
    hw_per_token = hardware_flops_per_token(js, x)
    lost: GoodputArrays = goodput(fm, training_s, gpus, hw.host_bw[x.accel])
    # Cost and energy on wall-clock hours: the accelerators are held, and drawing their
    # average facility power, through checkpoints, rework and restarts alike (an upper bound
    # for the restarts, when they idle; docs/model.md).
    hours = lost.wall_s / 3600.0
    # Cost through the cost model's contract (solver/costs.py): rate x GPU-hours + fixed.
    cost = gpus * hours * hw.rate_usd_per_hour[x.accel] + hw.fixed_usd[x.accel]
    energy = footprint.energy_mwh(gpus, hours, hw.facility_w[x.accel])
    return StepResult(
        x=x,
        memory=mem,
        time=times,
        gpus=gpus,
        global_batch=global_batch,
        seq_len=job.seq_len,
        capacity_bytes=hw.memory_bytes[x.accel],
        host_capacity_bytes=hw.host_memory_bytes[x.accel],
        step_s=step_s,
        steps=steps,
        training_s=training_s,
        model_flops_per_step=js.model_flops_per_token * tokens_per_step,
        hardware_flops_per_step=hw_per_token * tokens_per_step,
        peak_flops=hw.peak_flops[x.accel],
        cost_usd=cost,
        energy_mwh=energy,
        co2_tonnes=footprint.co2_tonnes(energy, hw.grid_g_per_kwh[x.accel]),
        wall_s=lost.wall_s,
        checkpoint_interval_s=lost.interval_s,
        interruptions=lost.interruptions,
        checkpointing_s=lost.checkpoint_s,
        restarting_s=lost.restart_s,
    )
