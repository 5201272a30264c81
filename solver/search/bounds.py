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
(exact); cost and energy ``rate * tp*pp*cp * (a + b*dp) / 3600 + fixed`` with the
accelerator's cost (or energy) per GPU-hour and per plan (``solver/costs.py``: a cost is that
rate x GPU-hours plus the fixed part; energy has none). ``rows.build_rows`` evaluates rows
best floor first and stops as soon as the next floor is worse than the K-th best feasible row
found: every row left is provably worse. A deadline gives each shape a smallest dp, a budget
drops shapes whose cost floor is above it. Only strictly worse rows are skipped, so the
optimum and its ties are evaluated.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, fields

import numpy as np

from solver import footprint, uncertainty
from solver.layout_options import ALTERNATE_BIT, FULL_BIT, ONE_F_ONE_B, STANDALONE_BITS
from solver.search.blocks import memory_total, per_microbatch
from solver.search.space import Shapes, placed
from solver.search.table import Question, layouts_of
from solver.stepmodel.arrays import LayoutArrays
from solver.stepmodel.memory import Runtime

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
    fixed: np.ndarray  # cost per plan (0 for the other objectives)

    def take(self, index: np.ndarray) -> Floors:
        """The floors of the shapes ``index`` (indices or a boolean mask)."""
        return Floors(self.objective, self.a[index], self.b[index], self.replica[index],
                      self.rate[index], self.fixed[index])

    def at(self, shape: np.ndarray, dp: np.ndarray) -> np.ndarray:
        """The objective's floor for rows (shape index, dp)."""
        a, b, replica = self.a[shape], self.b[shape], self.replica[shape]
        if self.objective == "time":
            value = a / dp + b
        elif self.objective == "gpus":
            value = (replica * dp).astype(float)
        else:
            value = self.rate[shape] * replica * (a + b * dp) / 3600.0 + self.fixed[shape]
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
        a, b, replica, rate, fixed = self.a, self.b, self.replica, self.rate, self.fixed
        # An open end (``high`` near the largest float) may overflow to inf: the window only
        # widens, which is safe.
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
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
                        y = x - fixed
                        return np.where(b > 0, (y * 3600.0 / (rate * replica) - a) / b,
                                        np.where(rate * replica * a / 3600.0 <= y, np.inf,
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


def _lean_masks(q: Question) -> list[int]:
    """The masks that store least of those the question searches (``Question.masks``):
    memory never grows as a mask drops more parts, so the union of the module masks bounds
    every module mask; full recomputation and alternate matmuls, which stand alone, bound
    themselves (first: full stores least)."""
    modules = [int(m) for m in q.masks if not m & STANDALONE_BITS]
    alone = [m for m in (FULL_BIT, ALTERNATE_BIT) if any(int(k) == m for k in q.masks)]
    return alone + (
        [int(np.bitwise_or.reduce(modules))] if modules else [])


def memory_floor(q: Question, x: LayoutArrays, *, any_accelerator: bool = False
                 ) -> np.ndarray:
    """A lower bound of the memory of ``x`` under every recomputation mask the question
    searches (``_lean_masks``). With ``any_accelerator``, the bound for the accelerator whose
    software needs the most (``stepmodel.memory`` without the hardware table): at least the
    bound on every one."""
    bound = np.full(len(x), np.inf)
    for mask in _lean_masks(q):
        with_mask = dataclasses.replace(x, recompute=np.full(len(x), mask))
        bound = np.minimum(bound, memory_total(q, with_mask, any_accelerator=any_accelerator))
    return bound


def take_shapes(shapes: Shapes, keep: np.ndarray) -> Shapes:
    return Shapes(*(getattr(shapes, f.name)[keep] for f in fields(shapes)))


def tighten(q: Question, block: Shapes, accelerators: int, dp_max: np.ndarray,
            objective: str | None, stop_at: float | None = None
            ) -> tuple[Shapes, np.ndarray, np.ndarray, Floors | None, bool]:
    """The shapes of ``block`` (one accelerator's, ``space.shape_block``, each with its
    largest dp ``dp_max``) on each of the question's ``accelerators``, less those that cannot
    fit or meet the deadline or budget; their smallest and largest dp and floors.

    The last value is False when ``stop_at`` (a ``time.perf_counter()`` value) cut a probe
    short: shapes not probed by then are left out (largest replicas are probed first).
    """
    job, limits = q.job, q.limits
    alive = np.flatnonzero(dp_max >= 1)
    block, dp_max = take_shapes(block, alive), dp_max[alive]
    complete = True
    if len(block) * accelerators > MEMORY_FIRST_SHAPES:
        # Memory first (cheaper than a full evaluation): most shapes of a large model never fit.
        accel, at, complete = _fitting(q, block, accelerators, dp_max, stop_at)
    else:
        accel = np.repeat(np.arange(accelerators, dtype=np.int64), len(block))
        at = np.tile(np.arange(len(block), dtype=np.int64), accelerators)
    shapes, siblings, dp_max = placed(block, accel, at), _zero_siblings(block, dp_max), dp_max[at]
    dp_min = np.ones(len(shapes), np.int64)
    if len(shapes) == 0:
        return shapes, dp_min, dp_max, None, complete
    per_mb, probed = _per_microbatch(q, shapes, dp_max, siblings[at], stop_at)
    if not probed.all():
        complete = False  # shapes not probed by then are left out
        shapes, dp_min, dp_max = take_shapes(shapes, probed), dp_min[probed], dp_max[probed]
        per_mb = per_mb[probed]
    a = job.tokens * per_mb / (job.seq_len * shapes.mb) * (1 - SLACK)
    sequences = job.global_batch or limits.tokens_per_step[1] / job.seq_len
    # 1F1B's bubble is (p-1)/v micro-batch times; the zero-bubble and DualPipe bubbles can be
    # as small as zero (pipeline.bubble), so their floor counts none.
    # (Only where there is a bubble: a probe that could not be placed has an infinite a.)
    bubbled = (shapes.schedule == ONE_F_ONE_B) & (shapes.pp > 1)
    b = np.zeros_like(a)
    b[bubbled] = a[bubbled] * ((shapes.pp - 1) / shapes.vp * shapes.mb)[bubbled] / sequences
    replica = shapes.tp * shapes.pp * shapes.cp
    hw, accel = q.hw, shapes.accel
    cost_rate, fixed = _known(hw.rate_usd_per_hour[accel]), _known(hw.fixed_usd[accel])
    if limits.deadline_days is not None:
        # At the band's high end every row takes at least HIGH_FACTOR_FLOOR times its
        # prediction: the deadline over that floor keeps the smallest dp a true bound.
        risk = uncertainty.HIGH_FACTOR_FLOOR if limits.risk == "high" else 1.0
        dp_min = np.maximum(dp_min, smallest_dp(a, b, limits.deadline_days * 86_400.0 / risk,
                                                dp_max))
    keep = dp_min <= dp_max
    if limits.budget_usd is not None:
        keep &= ~(cost_rate * replica * (a + b * dp_min) / 3600.0 + fixed > limits.budget_usd)
    if not keep.all():
        shapes, dp_min, dp_max = take_shapes(shapes, keep), dp_min[keep], dp_max[keep]
    if objective is None:
        return shapes, dp_min, dp_max, None, complete
    if objective == "cost":
        rate = cost_rate
    elif objective == "energy":
        one = np.ones_like(a)  # the energy of one GPU-hour
        rate, fixed = _known(footprint.energy_mwh(one, one, hw.facility_w[accel])), 0.0 * one
    else:
        rate, fixed = np.ones_like(a), np.zeros_like(a)
    floors = Floors(objective, a, b, replica, rate, fixed)
    return shapes, dp_min, dp_max, floors if keep.all() else floors.take(keep), complete


def _known(values: np.ndarray) -> np.ndarray:
    """``values`` with 0 where unknown (NaN): 0 keeps a floor a true lower bound."""
    return np.where(np.isfinite(values), values, 0.0)


def _fitting(q: Question, block: Shapes, accelerators: int, dp_max: np.ndarray,
             stop_at: float | None) -> tuple[np.ndarray, np.ndarray, bool]:
    """(accelerator, position in ``block``) of the shapes whose memory floor
    (``memory_floor`` at ``dp_max``, one micro-batch) fits the accelerator, largest replicas
    first (then by accelerator and position), and whether every shape was probed before
    ``stop_at`` (those that were not are left out).

    One probe per shape of the block bounds it on every accelerator from above (the software
    that needs the most): where that fits, the shape fits. Elsewhere the floor on the
    accelerator's own software decides, probed once for the accelerators whose software is
    the same (``_software_groups``)."""
    replica = block.tp * block.pp * block.cp
    order = np.argsort(-replica, kind="stable")
    capacity = q.hw.memory_bytes[np.arange(accelerators)]
    fits = np.zeros((accelerators, len(block)), bool)
    done = 0
    step = max(1, PROBE_CHUNK // accelerators)
    for start in range(0, order.size, step):
        if start and stop_at is not None and time.perf_counter() > stop_at:
            break
        part = order[start:start + step]
        x = layouts_of(block, part, dp_max[part], np.ones(part.size, np.int64))
        most = memory_floor(q, x, any_accelerator=True)
        for group in _software_groups(q, accelerators):
            sure = most[np.newaxis, :] <= capacity[group, np.newaxis]
            unsure = np.flatnonzero(~sure.all(axis=0))
            on_group = dataclasses.replace(x.take(unsure), accel=np.full(unsure.size, group[0]))
            floor = memory_floor(q, on_group)
            fits[np.ix_(group, part)] = sure
            fits[np.ix_(group, part[unsure])] = floor[np.newaxis, :] <= capacity[group, np.newaxis]
        done = start + part.size
    accel, at = np.nonzero(fits)
    first = np.argsort(-replica[at], kind="stable")
    return accel[first], at[first], done == order.size


def _software_groups(q: Question, accelerators: int) -> list[np.ndarray]:
    """The accelerators in groups of equal software figures (``memory.Runtime``): memory
    reads the hardware table only through them, so every accelerator of a group holds the
    same memory for the same layout (``tests/test_search_blocks.py`` checks it)."""
    every = LayoutArrays.from_columns(**{f.name: 0 for f in fields(LayoutArrays)
                                         if f.name != "accel"},
                                      accel=np.arange(accelerators))
    runtime = Runtime.of(every, q.hw)
    figures = np.stack([np.broadcast_to(getattr(runtime, f.name), (accelerators,))
                        for f in fields(runtime)], axis=1)
    _, group = np.unique(figures, axis=0, return_inverse=True)
    group = group.reshape(-1)
    return [np.flatnonzero(group == g) for g in range(int(group.max(initial=-1)) + 1)]


def _zero_siblings(block: Shapes, dp_max: np.ndarray) -> np.ndarray:
    """Per shape of the block, a number shared by the shapes that differ in the ZeRO stage
    alone (and ``base``, their index)."""
    columns = [getattr(block, f.name) for f in fields(block)
               if f.name not in ("accel", "zero", "base")] + [dp_max]
    order = np.lexsort(columns)
    new = np.zeros(order.size, bool)
    new[:1] = True
    for column in columns:
        ranked = column[order]
        new[1:] |= ranked[1:] != ranked[:-1]
    sibling = np.empty(order.size, np.int64)
    sibling[order] = np.cumsum(new) - 1
    return sibling


def _per_microbatch(q: Question, shapes: Shapes, dp_max: np.ndarray, siblings: np.ndarray,
                    stop_at: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Per shape, the matmul, memory-bound, tensor-, context- and expert-parallel seconds of
    one micro-batch (the step model at ``dp_max`` with one micro-batch per step), and whether
    it was probed.

    ZeRO changes the data-parallel traffic, the optimizer step and memory, not one
    micro-batch's time on the slowest rank (``timing.slowest_rank`` never reads it; a test
    checks it): the shapes on one accelerator with equal ``siblings`` (``_zero_siblings``)
    share one probe. The probes go in interleaved chunks (every n-th), so that past
    ``stop_at``, when no further chunk is started, those probed still span the space."""
    n = len(shapes)
    key = shapes.accel * (int(siblings.max(initial=0)) + 1) + siblings
    first = np.full(int(key.max(initial=0)) + 1, n)
    np.minimum.at(first, key, np.arange(n))  # each key's first shape: the one probed
    reps = np.sort(first[first < n])  # in the order of the shapes
    per_mb = np.zeros(n)
    probed = np.zeros(n, bool)
    chunks = -(-reps.size // PROBE_CHUNK)
    for start in range(chunks):
        if start and stop_at is not None and time.perf_counter() > stop_at:
            break
        rep = reps[start::chunks]
        x = layouts_of(shapes, rep, dp_max[rep], np.ones(rep.size, np.int64))
        per_mb[rep] = per_microbatch(q, x, ("compute", "membound", "tp", "cp", "ep"))
        probed[rep] = True
    shared = first[key]
    return per_mb[shared], probed[shared]
