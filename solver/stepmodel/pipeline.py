"""Pipeline parallelism: which layers each stage holds, which stages each rank holds, how many
micro-batches a rank keeps in flight, and the bubble of each schedule.

Stages (Megatron-LM ``transformer_block.py``, d98e8a6): the ``L`` layers, the ``mtp_layers``
multi-token-prediction modules (on the last stage) and, with ``pipeline_split``, one slot for
the embedding (first stage) and one for the loss (last stage) are divided evenly over ``p``
stages (``(L + mtp + slots) % (p*v) == 0``, Megatron-LM's rule). Dense layers come first, so
the first stages of a DeepSeek-style model hold them.

Ranks: with 1F1B and zero-bubble schedules rank ``i`` holds stage ``i``; gpuplan evaluates the
first rank, the second (the busiest middle rank in memory) holding the middle stage with the most
MoE layers, and the last rank. DualPipe (DeepSeek-V3 arXiv:2412.19437 sec. 3.2.1) feeds
micro-batches from both ends: rank ``i`` holds stages ``i`` and ``p-1-i`` ("two copies of the
model parameters"), runs half its micro-batches through each, and the first rank holds the
embedding and the LM head together.

In flight on a rank, in micro-batches of one stage (what its activations hold):
- 1F1B: ``min(m, p - i)`` on rank ``i`` (Narayanan et al. 2021, sec. 2.2.1); interleaved with
  ``v`` chunks, rank ``i`` warms up ``2(p-1-i) + (v-1)p`` chunks (Megatron-LM ``schedules.py``)
  and holds one more: ``/v`` stages' worth;
- zero-bubble ZB-H1: at most ``p`` on every rank (Qi et al. 2024, arXiv:2401.10241, Table 2 and
  sec. 3: worker ``i`` holds ``(p-i+1) M_B + (i-1) M_W``, at most ``p M_B``);
- DualPipe: ``p + 1`` (DeepSeek-V3 Table 2).

Bubble, with F, B, W a micro-batch's forward, input-gradient and weight-gradient time on the
slowest rank: 1F1B ``(p-1)(F+B+W)``, divided by ``v`` when interleaved (Narayanan et al. 2021,
sec. 2.2.2); ZB-H1 ``(p-1)(F+B-W)`` (Qi et al. Table 2); DualPipe ``(p/2-1)(F&B + B' - 3W)``
with ``B' = B+W`` and ``F&B = F+B+W`` (the overlapped pair; DeepSeek-V3 Table 2), i.e.
``(p/2-1)(F+2B-W)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solver.layout_options import DUALPIPE, ZERO_BUBBLE
from solver.stepmodel.arrays import FloatArray, IntArray, LayoutArrays
from solver.stepmodel.shape import JobShape


def ceil_div(a: int | IntArray, b: IntArray) -> IntArray:
    return -(-a // b)


def split_slots(x: LayoutArrays) -> tuple[IntArray, IntArray]:
    """Slots the embedding (first stage) and the loss (last stage) take: 0 or 1 each."""
    embedding = ((x.split == 1) | (x.split == 3)).astype(np.int64)
    loss = ((x.split == 2) | (x.split == 3)).astype(np.int64)
    return embedding, loss


@dataclass(frozen=True)
class Stage:
    """What one pipeline stage holds (arrays over layouts)."""

    dense: IntArray
    moe: IntArray
    mtp: IntArray
    embedding: np.ndarray  # bool
    head: np.ndarray  # bool


@dataclass(frozen=True)
class Stages:
    first: Stage
    middle: Stage  # the middle stage with the most MoE layers; zero layers when p < 3
    last: Stage
    per_stage: IntArray  # slots per stage


def stages(js: JobShape, x: LayoutArrays) -> Stages:
    """The layers of the first, the heaviest middle and the last stage."""
    emb, loss = split_slots(x)
    p = x.pp
    per = ceil_div(js.layers + js.mtp_layers + emb + loss, p)
    single = p == 1
    n_first = np.where(single, js.layers, np.maximum(per - emb, 0))
    n_last = np.where(single, js.layers, np.maximum(per - loss - js.mtp_layers, 0))
    n_mid = np.where(p >= 3, per, 0)
    dense = js.dense_layers
    first_dense = np.minimum(n_first, dense)
    # The last middle stage (index p-2) starts after the first stage and p-3 middle ones.
    mid_start = n_first + np.maximum(p - 3, 0) * per
    mid_dense = np.clip(dense - mid_start, 0, n_mid)
    last_start = js.layers - n_last
    last_dense = np.where(single, first_dense, np.clip(dense - last_start, 0, n_last))
    true = np.ones(p.shape, bool)
    zero = np.zeros(p.shape, np.int64)
    mtp = np.full(p.shape, js.mtp_layers, np.int64)
    first = Stage(first_dense, n_first - first_dense, np.where(single, mtp, zero), true, single)
    middle = Stage(mid_dense, n_mid - mid_dense, zero, ~true, ~true)
    last = Stage(last_dense, n_last - last_dense, mtp, single, true)
    return Stages(first, middle, last, per)


@dataclass(frozen=True)
class RankWeights:
    """How a rank's per-micro-batch work (``time``) and its parameters (``params``) are made
    of the first, middle and last stage."""

    time: tuple[FloatArray, FloatArray, FloatArray]
    params: tuple[FloatArray, FloatArray, FloatArray]


def rank_weights(x: LayoutArrays) -> tuple[RankWeights, RankWeights, RankWeights]:
    """Weights of the first, a middle and the last rank (DualPipe pairs stages ``i`` and
    ``p-1-i``)."""
    one = np.ones(x.pp.shape)
    zero = np.zeros(x.pp.shape)
    dual = (x.schedule == DUALPIPE) & (x.pp > 1)
    half = np.where(dual, 0.5, 0.0)
    edge = RankWeights((np.where(dual, 0.5, 1.0), zero, half),
                       (one, zero, np.where(dual, 1.0, 0.0)))
    last = RankWeights((half, zero, np.where(dual, 0.5, 1.0)),
                       (np.where(dual, 1.0, 0.0), zero, one))
    middle = RankWeights((zero, one, zero), (zero, np.where(dual, 2.0, 1.0), zero))
    return edge, middle, last


def forwards_before_backward(x: LayoutArrays, rank: IntArray) -> FloatArray:
    """Micro-batches (of one stage) 1F1B rank ``rank`` runs forward up to its first backward,
    that micro-batch's own forward included: ``p - i`` (Narayanan et al. 2021, sec. 2.2.1);
    interleaved with ``v`` chunks, ``2(p-1-i) + (v-1)p`` warm-up chunks and one more, of
    ``1/v`` each (Megatron-LM ``schedules.py``, ``get_pp_schedule``). What the rank holds in
    flight, and what an overlapping schedule leaves unpaired (``unpaired_share``)."""
    p, v = x.pp, x.vp
    chunks = 2 * (p - 1 - rank) + (v - 1) * p + 1
    return np.where(v > 1, chunks / v, p - rank).astype(float)


def inflight(x: LayoutArrays, nmb: IntArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Micro-batches of one stage in flight on the first, the second and the last rank."""
    p, m = x.pp, nmb
    zb = np.minimum(m, p).astype(float)
    dual = np.minimum(m, p + 1).astype(float)
    out = []
    for rank in (np.zeros_like(p), np.minimum(1, p - 1), p - 1):
        one_f_one_b = np.minimum(m, forwards_before_backward(x, rank))
        out.append(np.select([x.schedule == ZERO_BUBBLE, x.schedule == DUALPIPE],
                             [zb, dual], one_f_one_b))
    return out[0], out[1], out[2]


def unpaired_share(x: LayoutArrays) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Share of the first, a middle and the last rank's micro-batches whose forward (and as
    many backwards) run with no other micro-batch's pass beside them, so that nothing hides
    their all-to-alls when the schedule overlaps expert-parallel traffic with computation.

    - DualPipe (deepseek-ai/DualPipe ``dualpipe.py`` @ 3da1bbe, ``DualPipe.step``): rank ``i``
      of ``p`` with ``h = min(i, p-1-i)`` and ``H = p/2`` runs ``2(H-h-1)`` forward chunks
      alone (step 1), ``2(h+1)`` (step 2) and ``H-h-1`` (step 3), and as many backward
      chunks alone (steps 3, 5, 6, 7): ``3H-h-1``; the middle ranks (``h = H-1``) one pair
      more, which step 4 does not overlap. The first and last ranks have ``h = 0``; a middle
      rank, the busiest, ``h = 1``.
    - 1F1B and zero-bubble schedules with the all-to-alls overlapped (Megatron-LM's combined
      1F1B, ``--overlap-moe-expert-parallel-comm``, pairs one micro-batch's forward with
      another's backward in the steady state, ``pipeline_parallel/combined_1f1b.py`` @
      d98e8a6): the warm-up forwards and as many cool-down backwards, plus the first forward,
      which has no backward to pair with (``schedules.py``: "we schedule one extra
      micro-batch forward step"): ``forwards_before_backward``, ``p-i`` micro-batches on
      rank ``i``, one without a pipeline."""
    p, m = x.pp, x.nmb.astype(float)
    half = p // 2
    dual = (x.schedule == DUALPIPE) & (p > 1)

    def dualpipe(h: IntArray | int) -> FloatArray:
        return (3 * half - h - 1 + np.where(h == half - 1, 1, 0)).astype(float)

    out = []
    for rank, h in ((np.zeros_like(p), 0), (np.minimum(1, p - 1), 1), (p - 1, 0)):
        alone = np.where(dual, dualpipe(h), forwards_before_backward(x, rank))
        out.append(np.minimum(1.0, alone / m))
    return out[0], out[1], out[2]


def saturation(x: LayoutArrays) -> IntArray:
    """Micro-batches per step beyond which no rank holds more in flight."""
    warm = np.ceil(forwards_before_backward(x, np.zeros_like(x.pp)) - 1e-9).astype(x.pp.dtype)
    return np.select([x.schedule == ZERO_BUBBLE, x.schedule == DUALPIPE], [x.pp, x.pp + 1],
                     warm)


def bubble(x: LayoutArrays, forward: FloatArray, input_grad: FloatArray,
           weight_grad: FloatArray) -> FloatArray:
    """Idle time per step of the slowest rank (its per-micro-batch F, B, W)."""
    p = x.pp.astype(float)
    whole = forward + input_grad + weight_grad
    one_f = (p - 1) / x.vp * whole  # interleaving runs only with a multiple of p (rules)
    zb = (p - 1) * np.maximum(0.0, forward + input_grad - weight_grad)
    dual = np.maximum(0.0, p / 2 - 1) * np.maximum(0.0, forward + 2 * input_grad - weight_grad)
    return np.select([x.schedule == ZERO_BUBBLE, x.schedule == DUALPIPE], [zb, dual], one_f)


def schedule_rules(x: LayoutArrays, nmb: IntArray) -> np.ndarray:
    """Micro-batch counts the schedules need (True = satisfied): interleaving a multiple of
    ``p`` (Megatron-LM ``schedules.py``); zero-bubble at least ``p``; DualPipe an even count of
    at least ``2p`` on an even ``p`` (deepseek-ai/DualPipe ``dualpipe.py``, DualPipe.step)."""
    p, m = x.pp, nmb
    one_f = (x.vp == 1) | ((m >= p) & (m % p == 0))
    zb = (x.vp == 1) & (p > 1) & (m >= p)
    dual = (x.vp == 1) & (p > 1) & (p % 2 == 0) & (m % 2 == 0) & (m >= 2 * p)
    return np.select([x.schedule == ZERO_BUBBLE, x.schedule == DUALPIPE], [zb, dual], one_f)


def microbatch_grain(x: LayoutArrays) -> tuple[IntArray, IntArray]:
    """(step, least) of the micro-batch counts a schedule accepts: multiples of ``step``,
    at least ``least`` (``schedule_rules``)."""
    p = x.pp
    step = np.select([x.schedule == DUALPIPE, x.vp > 1], [np.full_like(p, 2), p], 1)
    least = np.select([x.schedule == DUALPIPE, x.schedule == ZERO_BUBBLE, x.vp > 1],
                      [2 * p, p, p], 1)
    return step, least


__all__ = ["RankWeights", "Stage", "Stages", "bubble", "ceil_div", "forwards_before_backward",
           "inflight", "microbatch_grain", "rank_weights", "saturation", "schedule_rules",
           "split_slots", "stages", "unpaired_share"]
