"""Exact lower bounds that let the search skip rows which cannot matter.

Per shape, one evaluation at its largest dp with one micro-batch gives bounds that hold for
every row of the shape, because of how the step model depends on dp and on the micro-batch
count m (``docs/solver.md``):
- memory never grows with dp (ZeRO shards) and never shrinks with m, so this memory is the
  shape's smallest: above capacity, no row of the shape fits;
- the matmul, memory-bound, tensor-, context- and expert-parallel time of one micro-batch,
  ``t``, depends on neither dp nor m (those groups span tp*cp*ep ranks), and a step takes at
  least m of them plus a bubble of (p-1)/v of them, so training takes at least
  ``a/dp + b`` seconds with ``a = tokens*t/(seq*mb)`` and ``b = a*(p-1)/v*mb/sequences``
  (``sequences`` per step at most).
From these, every row gets a floor on the objective: time ``a/dp + b``; GPUs ``tp*pp*cp*dp``
(exact); cost and energy ``rate * tp*pp*cp * (a + b*dp) / 3600`` with the shape's cost (or
energy) per GPU-hour. ``rows.build_rows`` evaluates rows best floor first and stops as soon as
the next floor is worse than the K-th best feasible row found: every row left is provably
worse. A deadline gives each shape a smallest dp, a budget drops shapes whose cost floor is
above it. Only strictly worse rows are skipped, so the optimum and its ties are evaluated.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, fields

import numpy as np

from solver.layout_options import FULL_BIT, ONE_F_ONE_B
from solver.search.space import Shapes
from solver.search.table import Question, layouts_of
from solver.stepmodel.arrays import LayoutArrays
from solver.stepmodel.evaluate import evaluate_arrays
from solver.stepmodel.memory import memory

SLACK = 1e-9  # relative: float noise must never turn a tie into a cut
#: Above this many shapes, a memory-only probe runs first (it pays off on large questions).
MEMORY_FIRST_SHAPES = 20_000
PROBE_CHUNK = 200_000


@dataclass(frozen=True)
class Floors:
    """Per shape: training-time floor ``a/dp + b`` and the objective's rate per GPU-hour."""

    objective: str
    a: np.ndarray
    b: np.ndarray
    replica: np.ndarray
    rate: np.ndarray  # cost or energy per GPU-hour (1 for time and gpus)

    def at(self, shape: np.ndarray, dp: np.ndarray) -> np.ndarray:
        """The objective's floor for rows (shape index, dp)."""
        a, b, replica = self.a[shape], self.b[shape], self.replica[shape]
        if self.objective == "time":
            value = a / dp + b
        elif self.objective == "gpus":
            value = (replica * dp).astype(float)
        else:
            value = self.rate[shape] * replica * (a + b * dp) / 3600.0
        return np.where(np.isfinite(value), value, np.inf)


    def best(self, dp_min: np.ndarray, dp_max: np.ndarray) -> np.ndarray:
        """Each shape's best floor over its dp range (time falls with dp, the rest grow)."""
        shape = np.arange(self.a.size)
        return self.at(shape, dp_max if self.objective == "time" else dp_min)

    def worst(self, dp_min: np.ndarray, dp_max: np.ndarray) -> np.ndarray:
        """Each shape's worst floor over its dp range."""
        shape = np.arange(self.a.size)
        return self.at(shape, dp_min if self.objective == "time" else dp_max)

    def window(self, low: float, high: float, dp_min: np.ndarray, dp_max: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        """Per shape, a dp range that holds every dp whose floor lies in (low, high]
        (a little wider; callers filter with ``at``)."""
        a, b, replica, rate = self.a, self.b, self.replica, self.rate
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.objective == "time":  # a/dp + b <= x  <=>  dp >= a/(x - b)
                def cut(x: float) -> np.ndarray:
                    return np.where(x > b, a / (x - b), np.inf)
                lo, hi = np.floor(cut(high)) - 1, np.ceil(cut(low)) + 1
            else:  # increasing in dp
                if self.objective == "gpus":
                    def cut(x: float) -> np.ndarray:
                        return x / replica
                else:
                    def cut(x: float) -> np.ndarray:
                        return np.where(b > 0, (x * 3600.0 / (rate * replica) - a) / b,
                                        np.where(rate * replica * a / 3600.0 <= x, np.inf,
                                                 -np.inf))
                lo, hi = np.floor(cut(low)) - 1, np.ceil(cut(high)) + 1
        lo = np.where(np.isnan(lo), dp_min, lo)
        hi = np.where(np.isnan(hi), dp_max, hi)
        lo = np.clip(lo, dp_min, dp_max + 1).astype(np.int64)
        hi = np.clip(hi, dp_min - 1, dp_max).astype(np.int64)
        return lo, hi


def smallest_dp(a: np.ndarray, b: np.ndarray, limit_s: float, dp_max: np.ndarray
                ) -> np.ndarray:
    """Smallest dp whose training-time floor ``a/dp + b`` is within ``limit_s``
    (``dp_max + 1`` when none is)."""
    room = limit_s - b
    with np.errstate(divide="ignore", invalid="ignore"):
        need = np.ceil(a / room * (1 - SLACK))
    need = np.where(room > 0, need, np.inf)
    # No floor where the probe could not be placed (NaN): such shapes keep every dp.
    need = np.where(np.isnan(a) | np.isnan(b), 1.0, need)
    return np.minimum(need, dp_max + 1).astype(np.int64)


def memory_floor(q: Question, x: LayoutArrays) -> np.ndarray:
    """A lower bound of the memory of ``x`` under every recomputation mask the question
    searches (``Question.masks``): memory never grows as a mask drops more parts, so the union
    of the module masks bounds them all, and full recomputation bounds itself."""
    masks = q.masks
    modules = [int(m) for m in masks if not m & FULL_BIT]
    bound = np.full(len(x), np.inf)
    if modules:
        union = int(np.bitwise_or.reduce(modules))
        bound = memory(q.js, dataclasses.replace(x, recompute=np.full(len(x), union)),
                       hw=q.hw).total
    if any(m & FULL_BIT for m in masks):
        full = memory(q.js, dataclasses.replace(x, recompute=np.full(len(x), FULL_BIT)),
                      hw=q.hw).total
        bound = np.minimum(bound, full)
    return bound


def take_shapes(shapes: Shapes, keep: np.ndarray) -> Shapes:
    return Shapes(*(getattr(shapes, f.name)[keep] for f in fields(shapes)))


def tighten(q: Question, shapes: Shapes, dp_min: np.ndarray, dp_max: np.ndarray,
            objective: str | None, stop_at: float | None = None
            ) -> tuple[Shapes, np.ndarray, np.ndarray, Floors | None, bool]:
    """Drop shapes that cannot fit or meet the deadline or budget; floors for the rest.

    The last value is False when ``stop_at`` (a ``time.perf_counter()`` value) cut the memory
    probe short: shapes not probed by then are left out (largest replicas are probed first).
    """
    job, limits = q.job, q.limits
    alive = np.flatnonzero(dp_max >= 1)
    shapes, dp_min, dp_max = take_shapes(shapes, alive), dp_min[alive], dp_max[alive]
    complete = True
    if len(shapes) == 0:
        return shapes, dp_min, dp_max, None, complete
    if len(shapes) > MEMORY_FIRST_SHAPES:
        # Memory first (cheaper than a full evaluation): most shapes of a large model never fit.
        order = np.argsort(-(shapes.tp * shapes.pp * shapes.cp), kind="stable")
        shapes, dp_min, dp_max = take_shapes(shapes, order), dp_min[order], dp_max[order]
        fits_parts: list[np.ndarray] = []
        for start in range(0, len(shapes), PROBE_CHUNK):
            if fits_parts and stop_at is not None and time.perf_counter() > stop_at:
                complete = False
                break
            part = np.arange(start, min(len(shapes), start + PROBE_CHUNK))
            sub = take_shapes(shapes, part)
            smallest = memory_floor(q, layouts_of(sub, np.arange(part.size), dp_max[part],
                                                   np.ones(part.size, np.int64)))
            fits_parts.append(part[smallest <= q.hw.memory_bytes[sub.accel]])
        fits = np.concatenate(fits_parts)
        shapes, dp_min, dp_max = take_shapes(shapes, fits), dp_min[fits], dp_max[fits]
        if len(shapes) == 0:
            return shapes, dp_min, dp_max, None, complete
    per_mb_parts: list[np.ndarray] = []
    cost_parts: list[np.ndarray] = []
    energy_parts: list[np.ndarray] = []
    for start in range(0, len(shapes), PROBE_CHUNK):
        if per_mb_parts and stop_at is not None and time.perf_counter() > stop_at:
            complete = False  # shapes not probed by then are left out
            done = start
            shapes, dp_min, dp_max = (take_shapes(shapes, np.arange(done)), dp_min[:done],
                                      dp_max[:done])
            break
        part = np.arange(start, min(len(shapes), start + PROBE_CHUNK))
        probe = evaluate_arrays(job, layouts_of(shapes, part, dp_max[part],
                                              np.ones(part.size, np.int64)),
                                q.hw, q.calibration, q.js)
        t = probe.time
        per_mb_parts.append(t.compute + t.memory_bound + t.tp_comm + t.cp_comm + t.ep_comm)
        with np.errstate(invalid="ignore", divide="ignore"):
            # rate + fixed/GPU-hours of the probe row >= rate, and the probe row's GPU-hours
            # are at least the floor's, so rate_probe * floor <= rate * floor + fixed.
            cost_parts.append(probe.cost_usd / probe.gpu_hours)
            energy_parts.append(probe.energy_mwh / probe.gpu_hours)
    per_mb = np.concatenate(per_mb_parts)
    a = job.tokens * per_mb / (job.seq_len * shapes.mb) * (1 - SLACK)
    sequences = job.global_batch or limits.tokens_per_step[1] / job.seq_len
    # 1F1B's bubble is (p-1)/v micro-batch times; the zero-bubble and DualPipe bubbles can be
    # as small as zero (pipeline.bubble), so their floor counts none.
    one_f = shapes.schedule == ONE_F_ONE_B
    b = np.where(one_f, a * (shapes.pp - 1) / shapes.vp * shapes.mb / sequences, 0.0)
    replica = shapes.tp * shapes.pp * shapes.cp
    cost_rate, energy_rate = np.concatenate(cost_parts), np.concatenate(energy_parts)
    # A probe that cannot be placed (its dp leaves the scale-up domain of an accelerator with no
    # scale-out figure) says nothing about the rate: 0 keeps the floor a true lower bound.
    cost_rate = np.where(np.isfinite(cost_rate), cost_rate, 0.0)
    energy_rate = np.where(np.isfinite(energy_rate), energy_rate, 0.0)
    if limits.deadline_days is not None:
        dp_min = np.maximum(dp_min, smallest_dp(a, b, limits.deadline_days * 86_400.0, dp_max))
    keep = dp_min <= dp_max
    if limits.budget_usd is not None:
        keep &= ~(cost_rate * replica * (a + b * dp_min) / 3600.0 > limits.budget_usd)
    shapes, dp_min, dp_max = take_shapes(shapes, keep), dp_min[keep], dp_max[keep]
    if objective is None:
        return shapes, dp_min, dp_max, None, complete
    rate = {"cost": cost_rate, "energy": energy_rate}.get(objective, np.ones_like(a))
    floors = Floors(objective, a[keep], b[keep], replica[keep], rate[keep])
    return shapes, dp_min, dp_max, floors, complete
