"""Time of one optimizer step, by component, for N layouts at once: the parts of the mechanism
modules added up.

Per micro-batch and rank: kernels (``compute.py``), tensor-parallel collectives
(``tensor.py``), the context-parallel ring (``context.py``), the expert all-to-alls
(``expert.py``) and the pipeline's point-to-point sends. Overlap: each second of GEMMs hides at
most one second of traffic: the backward's overlappable tensor-parallel collectives first
(under the backward GEMMs), then, with ``tp_comm_overlap``, every tensor-parallel collective,
then, with ``ep_comm_overlap`` or the DualPipe schedule, the all-to-alls and (DualPipe) the
pipeline sends under another micro-batch's computation (DeepSeek-V3 arXiv:2412.19437 sec.
3.2.1) -- only for the micro-batches the schedule pairs with another: the warm-up and
cool-down passes run alone and wait for their own traffic (``pipeline.unpaired_share``). The
pipeline moves at its slowest rank; the bubble and the rank layout per schedule are
in ``pipeline.py``, data parallelism and the optimizer in ``data.py``. Every step also pays
``Calibration.step_overhead_s`` whatever its size (the update's host synchronisations and small
kernels, the next batch's fetch), reported with the optimizer.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from solver.layout_options import DUALPIPE
from solver.stepmodel import calibration as C
from solver.stepmodel import fieldwise
from solver.stepmodel.arrays import FloatArray, HardwareTable, LayoutArrays
from solver.stepmodel.calibration import Calibration
from solver.stepmodel.collectives import link, point_to_point
from solver.stepmodel.compute import (
    Kernels,
    Rates,
    elementwise_seconds,
    head_kernels,
    layer_kernels,
    logits_seconds,
    mtp_kernels,
    rates,
    tokens_per_rank,
)
from solver.stepmodel.context import context_comm
from solver.stepmodel.data import data_parallel
from solver.stepmodel.expert import expert_comm
from solver.stepmodel.memory import stage_activation_bytes, stage_params
from solver.stepmodel.offload import offload_exposed
from solver.stepmodel.pipeline import (
    RankWeights,
    Stage,
    bubble,
    rank_weights,
    stages,
    unpaired_share,
)
from solver.stepmodel.shape import JobShape
from solver.stepmodel.tensor import LayerComm, tensor_comm


@dataclass(frozen=True)
class TimeArrays:
    """Seconds per step by component (they add up to ``step``)."""

    compute: FloatArray  # matmuls and overheads of all micro-batches
    memory_bound: FloatArray
    tp_comm: FloatArray
    cp_comm: FloatArray
    ep_comm: FloatArray
    pp_comm: FloatArray
    bubble: FloatArray
    dp_comm: FloatArray  # exposed part
    optimizer: FloatArray  # the Adam update and the fixed cost of a step
    offload: FloatArray  # activation copies to and from the host the kernels do not hide

    @property
    def step(self) -> FloatArray:
        return (self.compute + self.memory_bound + self.tp_comm + self.cp_comm + self.ep_comm
                + self.pp_comm + self.bubble + self.dp_comm + self.optimizer + self.offload)

    def breakdown(self, i: int) -> dict[str, float]:
        names = ("compute", "memory_bound", "tp_comm", "cp_comm", "ep_comm", "pp_comm",
                 "bubble", "dp_comm", "optimizer", "offload")
        return {name: float(getattr(self, name)[i]) for name in names}


@dataclass(frozen=True)
class LayerParts:
    """Per-layer kernels and communication of a dense and of an MoE layer, per micro-batch."""

    dense: Kernels
    moe: Kernels
    mtp: Kernels
    head: Kernels
    tp: LayerComm
    cp: LayerComm
    ep: LayerComm


@dataclass(frozen=True)
class StageTime:
    """One stage (or one rank, weighted) per micro-batch."""

    kernels: Kernels
    membound: FloatArray
    tp: LayerComm
    cp: LayerComm
    ep: LayerComm

    def paired(self, other: StageTime, where: np.ndarray) -> StageTime:
        """Where ``where`` holds, the mean of this stage and ``other`` (a DualPipe rank runs
        half its micro-batches through each of its two stages); elsewhere this stage."""
        return StageTime(fieldwise.paired(self.kernels, other.kernels, where),
                         np.where(where, 0.5 * (self.membound + other.membound), self.membound),
                         fieldwise.paired(self.tp, other.tp, where),
                         fieldwise.paired(self.cp, other.cp, where),
                         fieldwise.paired(self.ep, other.ep, where))


def _layer_parts(js: JobShape, x: LayoutArrays, hw: HardwareTable, cal: Calibration,
                 r: Rates) -> LayerParts:
    zero = np.zeros(len(x))
    moe = layer_kernels(js, x, r, cal, moe=True) if js.is_moe else \
        Kernels(zero, zero, zero, zero, zero)
    ep = expert_comm(js, x, hw, cal) if js.is_moe else LayerComm(zero, zero, zero, zero)
    return LayerParts(
        dense=layer_kernels(js, x, r, cal, moe=False), moe=moe,
        mtp=mtp_kernels(js, x, r, cal) if js.mtp_layers else Kernels(zero, zero, zero, zero,
                                                                      zero),
        head=head_kernels(js, x, r), tp=tensor_comm(js, x, hw, cal),
        cp=context_comm(js, x, hw, cal, r), ep=ep)


def _membound(js: JobShape, x: LayoutArrays, r: Rates, cal: Calibration, s: Stage
              ) -> FloatArray:
    """The memory-bound share of a stage's kernels (reported apart from the GEMMs)."""
    passes = np.where(x.full, 4.0, 3.0)
    per_layer_dense = elementwise_seconds(js, x, r, cal, moe=False)
    per_layer_moe = elementwise_seconds(js, x, r, cal, moe=True)
    mtp_layer = per_layer_moe if js.is_moe else per_layer_dense
    logits = np.where(s.head, 3 * logits_seconds(js, x, r), 0.0)
    return passes * (s.dense * per_layer_dense + s.moe * per_layer_moe + s.mtp * mtp_layer) \
        + logits * (1 + s.mtp)


def _stage_time(js: JobShape, x: LayoutArrays, r: Rates, cal: Calibration, lp: LayerParts,
                s: Stage) -> StageTime:
    layers = (s.dense + s.moe + s.mtp).astype(float)
    kernels = (lp.dense.scaled(s.dense.astype(float)) + lp.moe.scaled(s.moe.astype(float))
               + lp.mtp.scaled(s.mtp.astype(float)) + lp.head.scaled(s.head.astype(float)))
    moe_layers = (s.moe + np.where(js.is_moe, s.mtp, 0)).astype(float)
    return StageTime(kernels, _membound(js, x, r, cal, s), lp.tp.scaled(layers),
                     lp.cp.scaled(layers), lp.ep.scaled(moe_layers))


@dataclass(frozen=True)
class RankTime:
    """One rank per micro-batch after overlap: forward, input-gradient and weight-gradient
    seconds (exposed communication included), and the parts for the report."""

    forward: FloatArray
    input_grad: FloatArray
    weight_grad: FloatArray
    compute: FloatArray
    membound: FloatArray
    tp: FloatArray
    cp: FloatArray
    ep: FloatArray
    pp: FloatArray
    offload: FloatArray | float = 0.0

    @property
    def total(self) -> FloatArray:
        return self.forward + self.input_grad + self.weight_grad


#: Share of the streaming multiprocessors the all-to-all kernels occupy while they run beside
#: the computation: DeepSeek-V3 gives DeepEP's dispatch and combine 20 of the H800's 132 SMs
#: for the whole overlapped forward-backward pair (arXiv:2412.19437 sec. 3.2.2 and 3.5.1), so
#: the kernels of a rank that overlaps its all-to-alls run on the other 112.
OVERLAP_SM_SHARE = 20 / 132


def _overlap(js: JobShape, x: LayoutArrays, t: StageTime, pp_send: FloatArray,
             unpaired: FloatArray) -> RankTime:
    """``unpaired``: the share of the rank's micro-batches with no partner pass to hide their
    all-to-alls and (DualPipe) pipeline sends under (``pipeline.unpaired_share``)."""
    dual = x.schedule == DUALPIPE
    overlapped = (js.ep_comm_overlap | dual) & (t.ep.total > 0)
    paired = 1.0 - unpaired
    # Only the paired passes share the SMs with the all-to-all kernels; an unpaired pass
    # waits for its own traffic with all of them.
    slow = np.where(overlapped, 1.0 + paired * OVERLAP_SM_SHARE / (1.0 - OVERLAP_SM_SHARE), 1.0)
    k = t.kernels.scaled(slow)
    t = StageTime(k, t.membound * slow, t.tp, t.cp, t.ep)
    gemm_capacity = k.gemm_backward
    hidden = np.minimum(t.tp.hideable, gemm_capacity)
    tp_exposed = t.tp.forward + t.tp.backward + t.tp.recompute + (t.tp.hideable - hidden)
    capacity = k.total - t.membound - hidden
    if js.tp_comm_overlap:
        more = np.minimum(tp_exposed, capacity)
        tp_exposed, capacity = tp_exposed - more, capacity - more
    ep = t.ep.total
    # Per micro-batch on average: the paired share of the traffic hides under the paired
    # share of the kernels.
    ep_hidden = np.where(js.ep_comm_overlap | dual, paired * np.minimum(ep, capacity), 0.0)
    ep_exposed = ep - ep_hidden
    capacity = capacity - ep_hidden
    pp_exposed = np.where(dual, pp_send - paired * np.minimum(pp_send, capacity), pp_send)
    cp = t.cp.total
    comm = tp_exposed + cp + ep_exposed + pp_exposed
    # Exposed communication is spread over the passes in proportion to their kernels.
    share = comm / np.maximum(k.total, 1e-30)
    return RankTime(
        forward=k.forward * (1 + share),
        input_grad=(k.input_grad + k.recompute) * (1 + share),
        weight_grad=k.weight_grad * (1 + share),
        compute=k.total - t.membound, membound=t.membound, tp=tp_exposed, cp=cp,
        ep=ep_exposed, pp=pp_exposed)


def _rank_inputs(js: JobShape, x: LayoutArrays, hw: HardwareTable, cal: Calibration
                 ) -> tuple[list[Stage], list[StageTime], FloatArray]:
    """The stages (first, a middle, last), what each rank runs per micro-batch (DualPipe
    ranks pair two stages) and the pipeline send per micro-batch."""
    r = rates(js, x, hw, cal)
    lp = _layer_parts(js, x, hw, cal, r)
    st = stages(js, x)
    parts = [st.first, st.middle, st.last]
    stage_times = [_stage_time(js, x, r, cal, lp, s) for s in parts]
    pp_path = link(hw, x.accel, x.tp * x.cp * x.dp, x.pp, cal)
    boundary = C.ACT_BYTES * tokens_per_rank(js, x) * js.hidden / x.tp
    pp_send = np.where(x.pp > 1, 2 * x.vp * point_to_point(boundary, pp_path), 0.0)
    dual = (x.schedule == DUALPIPE) & (x.pp > 1)
    edge = stage_times[0].paired(stage_times[2], dual)
    rank_times = [edge, stage_times[1], stage_times[2].paired(stage_times[0], dual)]
    return parts, rank_times, pp_send


def _rank_time(js: JobShape, x: LayoutArrays, hw: HardwareTable, combined: StageTime,
               pp_send: FloatArray, w: RankWeights, parts: list[Stage], unpaired: FloatArray
               ) -> RankTime:
    """One rank per micro-batch after overlap, with its exposed activation copies."""
    rt = _overlap(js, x, combined, pp_send, unpaired)
    stored = sum(k * stage_activation_bytes(js, x, s) for k, s in zip(
        w.time, parts, strict=True)) if js.activation_offload else 0.0
    off_f, off_b = offload_exposed(js, x, hw, np.asarray(stored), rt.forward,
                                   rt.input_grad + rt.weight_grad)
    return RankTime(rt.forward + off_f, rt.input_grad + off_b, rt.weight_grad, rt.compute,
                    rt.membound, rt.tp, rt.cp, rt.ep, rt.pp, off_f + off_b)


def _exists(x: LayoutArrays) -> list[np.ndarray]:
    """Whether the first, a middle and the last rank exist (a middle one from pp = 3)."""
    return [np.ones(len(x), bool), x.pp >= 3, np.ones(len(x), bool)]


def slowest_rank(js: JobShape, x: LayoutArrays, hw: HardwareTable, cal: Calibration
                 ) -> RankTime:
    """Per micro-batch, the times of the rank the pipeline moves at (the slowest of the
    first, a middle and the last): ``step_time`` reports ``nmb`` times its parts."""
    parts, rank_times, pp_send = _rank_inputs(js, x, hw, cal)
    ranks = [_rank_time(js, x, hw, combined, pp_send, w, parts, alone)
             for w, combined, alone in zip(rank_weights(x), rank_times, unpaired_share(x),
                                           strict=True)]
    totals = [np.where(alive, rt.total, -np.inf) for rt, alive in zip(ranks, _exists(x),
                                                                         strict=True)]
    slowest = np.argmax(np.stack(totals), axis=0)
    return RankTime(*(np.choose(slowest, [getattr(rt, f.name) for rt in ranks])
                      for f in fields(RankTime)))


def step_time(js: JobShape, x: LayoutArrays, hw: HardwareTable, cal: Calibration) -> TimeArrays:
    parts, rank_times, pp_send = _rank_inputs(js, x, hw, cal)
    ranks: list[RankTime] = []
    dp_parts = []
    params = [stage_params(js, x, s) for s in parts]
    for w, alive, combined, alone in zip(rank_weights(x), _exists(x), rank_times,
                                         unpaired_share(x), strict=True):
        dense = sum(k * p.replicated for k, p in zip(w.params, params, strict=True))
        experts = sum(k * p.experts for k, p in zip(w.params, params, strict=True))
        kernels = combined.kernels
        forward = kernels.forward
        backward = kernels.input_grad + kernels.weight_grad + kernels.recompute
        dpt = data_parallel(js, x, hw, cal, np.asarray(dense), np.asarray(experts), forward,
                            backward)
        rt = _rank_time(js, x, hw, combined, pp_send, w, parts, alone)
        total = np.where(alive, rt.total, -np.inf)
        ranks.append(rt)
        dp_parts.append((np.where(alive, x.nmb * dpt.per_microbatch + dpt.end_of_step, -np.inf),
                         dpt.optimizer, total))
    slowest = np.argmax(np.stack([t for _, _, t in dp_parts]), axis=0)

    def pick(name: str) -> FloatArray:
        return np.choose(slowest, [getattr(rt, name) for rt in ranks])

    m = x.nmb
    idle = bubble(x, pick("forward"), pick("input_grad"), pick("weight_grad"))
    dp_index = np.argmax(np.stack([d + o for d, o, _ in dp_parts]), axis=0)
    dp = np.choose(dp_index, [d for d, _, _ in dp_parts])
    optimizer = np.choose(dp_index, [o for _, o, _ in dp_parts])
    return TimeArrays(
        compute=m * pick("compute"), memory_bound=m * pick("membound"), tp_comm=m * pick("tp"),
        cp_comm=m * pick("cp"), ep_comm=m * pick("ep"), pp_comm=m * pick("pp"), bubble=idle,
        dp_comm=dp, optimizer=optimizer + cal.step_overhead_s, offload=m * pick("offload"))


__all__ = ["RankTime", "TimeArrays", "slowest_rank", "step_time"]
