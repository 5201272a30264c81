"""Failures, checkpoints and restarts: the wall-clock time a failure-free training time becomes.

One place for each formula, vectorised over candidates (``evaluate_arrays`` calls ``goodput``
for every layout at once, so ``solve``, the oracle and ``evaluate`` read the same figures).

The model (docs/model.md, "Failures, checkpoints and restarts"):

* **Failure rate.** Interruptions arrive as a Poisson process whose rate grows linearly with
  the accelerators: ``lambda = gpus * rate`` per hour, ``rate`` the sum of the per-cause rates
  per accelerator-hour in ``solver/data/reliability.json`` (each the count of unexpected
  interruptions a published run reports over the accelerator-hours it ran), or
  ``1 / TrainingJob.mtbf_hours``. Host, network and software causes are counted per
  accelerator at the rate the source measured them on its 8-accelerator nodes, so a job's host
  count grows with its accelerators in the same proportion. The job's mean time between
  failures is ``M = 1 / lambda``.
* **Checkpoint.** Its size is the model state a restart needs: every parameter's weight as
  held (``JobShape.param_bytes``) plus the optimizer state (``JobShape.optimizer_bytes``: FP32
  master and Adam moments); gradients are not saved. Every node writes its share at once:
  the bandwidth is ``min(gpus / per_node * node_bw, total_bw)`` and the write takes
  ``delta = bytes / bandwidth``. The restart loads it back at the same bandwidth.
* **Asynchronous checkpointing.** Training stops only while each accelerator copies its share
  to host memory (``bytes / gpus / host_bw``); the write to storage runs in the background, so
  the interval is at least the write time, and a failure loses the snapshot still being
  written too (its write time is added to the work lost per failure).
* **Restart.** ``R = restart_min + load + hardware_share * replace_min`` (the last only
  without hot spares: a hardware failure then waits for the node to be replaced).
* **Wall-clock time.** Daly's model of a run checkpointed every ``tau`` seconds of work under
  exponential failures (J. T. Daly, "A higher order estimate of the optimum checkpoint
  interval for restart dumps", Future Generation Computer Systems 22(3):303-312, 2006,
  eq. 13): ``T_wall = M * exp(R / M) * (exp((tau + delta) / M) - 1) * T_solve / tau``. It
  counts the checkpoints, the rework since the last checkpoint and the restarts, failures
  during restarts and checkpoints included. ``tau`` is the interval that minimises it, which
  solves ``exp((tau + delta) / M) * (1 - tau / M) = 1``: ``tau = M * (1 + W0(-exp(-1 -
  delta / M)))`` (W0 the principal branch of Lambert's W). Young's first-order interval
  ``sqrt(2 * delta * M)`` (J. W. Young, "A first order approximation to the optimum
  checkpoint interval", CACM 17(9):530-531, 1974) and Daly's series (eq. 37) are its
  approximations for ``delta << M`` (``young_interval_s``, ``daly_interval_s``; the tests
  compare them).
* **Expected interruptions** ``T_wall / M``; **goodput** ``T_solve / T_wall``. The lost time
  splits exactly into checkpoints ``T/tau * M (e^(delta/M) - 1)``, restarts ``T/tau *
  (e^((tau+delta)/M) - 1) * M (e^(R/M) - 1)`` (restarts that fail counted) and rework (the
  rest; with asynchronous checkpointing, the snapshot lost in flight is rework).

Monotonicity (what the search's pruning and bounds need; tests/test_goodput.py checks it):
``T_wall / T_solve`` does not depend on ``T_solve``, and at a given accelerator it never
decreases with the accelerator count. Where the node bandwidth binds, ``delta * lambda`` and
``tau * lambda`` do not depend on the count (both scale as ``1/gpus`` and ``gpus``) while
``R * lambda`` grows; where the total bandwidth binds, ``delta`` is fixed and the minimum over
``tau`` of a function growing with ``lambda`` grows with it. So a layout with no more
accelerators and no more failure-free time takes no more wall-clock time, and the failure-free
floors of the bounds stay lower bounds of wall-clock time.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from solver.params import count_params
from solver.specs import TrainingJob
from solver.stepmodel.arrays import FloatArray
from solver.stepmodel.shape import JobShape


@functools.cache
def reliability_table() -> dict[str, Any]:
    """``solver/data/reliability.json``: the sourced rates and defaults."""
    path = importlib.resources.files("solver") / "data" / "reliability.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def default(name: str) -> float:
    """A default of the failure model (``reliability.json``, "defaults"; the job's defaults
    read the same entries)."""
    return float(reliability_table()["defaults"][name]["value"])


@dataclass(frozen=True)
class Cause:
    """One cause of interruptions: its rate per accelerator-hour and where it comes from."""

    name: str
    per_accelerator_hour: float
    hardware: bool
    source: str


def causes(run: str | None = None) -> tuple[Cause, ...]:
    """The causes of the published run ``run`` (default: the table's default run), each rate
    its count over the run's accelerator-hours."""
    table = reliability_table()
    entry = table["runs"][run or table["default"]]
    hours = float(entry["accelerators"]) * float(entry["days"]) * 24.0
    return tuple(Cause(name, float(c["count"]) / hours, bool(c["hardware"]),
                       f"{c['count']} in {entry['days']} days on {entry['accelerators']:,} "
                       f"accelerators ({c['parts']}); {entry['cite']}")
                 for name, c in entry["causes"].items())


@dataclass(frozen=True)
class FailureModel:
    """What the wall-clock time of a job depends on besides its layouts (scalars)."""

    enabled: bool
    rate_per_accelerator_hour: float
    hardware_share: float  # of the interruptions, those a hot spare would absorb
    checkpoint_bytes: float
    node_bytes_s: float
    total_bytes_s: float  # inf: no cap
    accelerators_per_node: float
    asynchronous: bool
    restart_s: float  # reschedule, start-up and warm-up (the load is counted apart)
    replace_s: float  # per hardware interruption; 0 with hot spares
    causes: tuple[Cause, ...]

    @property
    def accelerator_mtbf_hours(self) -> float:
        return 1.0 / self.rate_per_accelerator_hour


def checkpoint_bytes(job: TrainingJob, js: JobShape) -> float:
    """Bytes of one checkpoint: every parameter's weight as held plus its optimizer state
    (FP32 master weight and Adam moments, ``JobShape.optimizer_bytes``); MTP modules
    included, gradients not."""
    params = count_params(job.model).total + job.model.mtp_layers * js.mtp_params
    return float(params) * (js.param_bytes + js.optimizer_bytes)


def failure_model(job: TrainingJob, js: JobShape) -> FailureModel:
    """The job's failure model: its options (``TrainingJob``) over the sourced table."""
    table = causes()
    rate = sum(c.per_accelerator_hour for c in table)
    hardware = sum(c.per_accelerator_hour for c in table if c.hardware) / rate
    if job.mtbf_hours:
        rate = 1.0 / job.mtbf_hours
    total = job.checkpoint_total_gb_s
    return FailureModel(
        enabled=job.failures,
        rate_per_accelerator_hour=rate,
        hardware_share=hardware,
        checkpoint_bytes=checkpoint_bytes(job, js),
        node_bytes_s=job.checkpoint_node_gb_s * 1e9,
        total_bytes_s=total * 1e9 if total else math.inf,
        accelerators_per_node=default("accelerators_per_node"),
        asynchronous=job.async_checkpoint,
        restart_s=job.restart_min * 60.0,
        replace_s=0.0 if job.hot_spares else job.replace_min * 60.0,
        causes=table,
    )


def job_mtbf_s(rate_per_accelerator_hour: float, gpus: FloatArray) -> FloatArray:
    """Mean seconds between interruptions of a job on ``gpus`` accelerators:
    ``3600 / (gpus * rate)``."""
    return 3600.0 / (np.asarray(gpus, float) * rate_per_accelerator_hour)


def write_s(fm: FailureModel, gpus: FloatArray) -> FloatArray:
    """Seconds to write (or read) one checkpoint: its bytes over
    ``min(gpus / per_node * node_bw, total_bw)``."""
    nodes = np.asarray(gpus, float) / fm.accelerators_per_node
    return fm.checkpoint_bytes / np.minimum(nodes * fm.node_bytes_s, fm.total_bytes_s)


def young_interval_s(delta_s: FloatArray, mtbf_s: FloatArray) -> FloatArray:
    """Young (1974): ``sqrt(2 * delta * M)``."""
    return np.sqrt(2.0 * np.asarray(delta_s) * mtbf_s)


def daly_interval_s(delta_s: FloatArray, mtbf_s: FloatArray) -> FloatArray:
    """Daly (2006) eq. 37: ``sqrt(2 delta M) * (1 + sqrt(delta / (2M)) / 3 + delta / (18 M))
    - delta`` for ``delta < 2M``, else ``M``."""
    d, m = np.asarray(delta_s, float), np.asarray(mtbf_s, float)
    series = np.sqrt(2 * d * m) * (1 + np.sqrt(d / (2 * m)) / 3 + d / (18 * m)) - d
    return np.where(d < 2 * m, series, m)


def _lambert_w0_near_branch(d: FloatArray) -> FloatArray:
    """``1 + W0(-exp(-1 - d))`` for ``d >= 0`` (Halley's iteration from the branch-point
    series; the series alone where ``d`` is tiny, to keep its digits)."""
    d = np.asarray(d, float)
    z = -np.exp(-1.0 - d)
    p = np.sqrt(2.0 * -np.expm1(-d))  # sqrt(2 (e z + 1))
    series = p - p * p / 3.0 + 11.0 / 72.0 * p ** 3
    w = np.where(d < 1.0, series - 1.0, z * (1.0 - z))
    for _ in range(8):
        e = np.exp(w)
        f = w * e - z
        w = w - f / (e * (w + 1.0) - (w + 2.0) * f / (2.0 * w + 2.0))
    return np.where(p < 1e-3, series, 1.0 + w)


def optimal_interval_s(delta_s: FloatArray, mtbf_s: FloatArray) -> FloatArray:
    """The interval of work between checkpoints that minimises Daly's wall-clock time:
    ``M * (1 + W0(-exp(-1 - delta / M)))``."""
    m = np.asarray(mtbf_s, float)
    return m * _lambert_w0_near_branch(np.asarray(delta_s, float) / m)


def wall_factor(interval_s: FloatArray, delta_s: FloatArray, restart_s: FloatArray,
                mtbf_s: FloatArray) -> FloatArray:
    """Daly (2006) eq. 13 over the work: ``M exp(R/M) (exp((tau + delta)/M) - 1) / tau``."""
    m = np.asarray(mtbf_s, float)
    with np.errstate(over="ignore", invalid="ignore"):  # too many failures: inf, never done
        return m * np.exp(restart_s / m) * np.expm1((interval_s + delta_s) / m) / interval_s


@dataclass(frozen=True)
class GoodputArrays:
    """Per layout: wall-clock seconds, the checkpoint interval (seconds of work), expected
    interruptions, and the seconds spent checkpointing and restarting (the rest of the
    difference is rework)."""

    wall_s: FloatArray
    interval_s: FloatArray
    interruptions: FloatArray
    checkpoint_s: FloatArray
    restart_s: FloatArray


def goodput(fm: FailureModel, training_s: FloatArray, gpus: FloatArray,
            host_bw: FloatArray) -> GoodputArrays:
    """Wall-clock time of each layout (``training_s`` failure-free on ``gpus`` accelerators
    whose host links carry ``host_bw`` bytes/s; NaN: unknown, asynchronous checkpointing then
    blocks for the whole write)."""
    training_s = np.asarray(training_s, float)
    if not fm.enabled:
        zero = np.zeros_like(training_s)
        return GoodputArrays(training_s, np.full_like(training_s, np.nan), zero, zero, zero)
    g = np.asarray(gpus, float)
    m = job_mtbf_s(fm.rate_per_accelerator_hour, g)
    write = write_s(fm, g)
    restart = fm.restart_s + write + fm.hardware_share * fm.replace_s
    if fm.asynchronous:
        copy = fm.checkpoint_bytes / g / host_bw
        blocking = np.where(np.isfinite(copy) & (copy < write), copy, write)
        lost = restart + np.where(blocking < write, write, 0.0)
        interval = np.maximum(optimal_interval_s(blocking, m), write)
    else:
        blocking, lost = write, restart
        interval = optimal_interval_s(write, m)
    with np.errstate(over="ignore", invalid="ignore"):  # inf: failures outpace the work
        wall = training_s * wall_factor(interval, blocking, lost, m)
        wall = np.where(np.isnan(training_s), np.nan, wall)
        segments = training_s / interval
        # Per segment (tau of work, then a checkpoint) under Daly's model: e^((tau+delta)/M)
        # attempts, each failed one followed by restarts that may fail in turn; the time in
        # the checkpoint part of the attempts is M (e^(delta/M) - 1), the time in restarts
        # (e^((tau+delta)/M) - 1) M (e^(R/M) - 1); these and the rework sum to eq. 13.
        failed = np.expm1((interval + blocking) / m)
        return GoodputArrays(wall_s=wall, interval_s=interval, interruptions=wall / m,
                             checkpoint_s=segments * m * np.expm1(blocking / m),
                             restart_s=segments * failed * m * np.expm1(restart / m))
