"""Time of one optimizer step, by component, for N layouts at once.

Per micro-batch and pipeline stage (the slowest of the first and last stage):
- Matmuls at ``peak * matmul_efficiency * matmul_scale`` (roofline: never faster than reading
  the weights from HBM), plus a fixed overhead per layer and pass (``calibration.py``).
  Forward 1 pass, backward 2; full recomputation repeats the forward, selective the attention
  scores (Korthikanti et al. 2022, sec. 5). With flash attention the causal mask halves the
  score work that is actually done (Dao 2023, FlashAttention-2, sec. 3.1) and the fused
  kernel runs at ``bf16 peak * matmul_efficiency * attention_scale``.
- Memory-bound kernels: the layer's stored activations times ``elementwise_traffic`` bytes at
  HBM bandwidth, forward once and backward twice.
- Tensor (+ sequence) parallelism: 2 all-gathers and 2 reduce-scatters of ``s*b*h`` BF16 per
  layer and pass (Korthikanti sec. 4.2.2), not overlapped.
- Context parallelism: ring attention passes K and V ``cp-1`` times per layer (Liu et al.
  2023, arXiv:2310.01889), twice as much in backward, hidden behind the score computation.
- Expert parallelism: a dispatch and a combine all-to-all per MoE layer and pass (Lepikhin et
  al. 2020, GShard), ``tokens * top_k * capacity * h`` BF16 each; with
  ``TrainingJob.ep_comm_overlap`` hidden under computation as far as it lasts.
- Pipeline: point-to-point activations ``s*b*h/t`` per stage boundary, chunk and direction;
  the bubble adds ``(p-1)/v`` micro-batch times (Narayanan et al. 2021, sec. 2.2).
Per step: gradient reduction over dp*cp (all-reduce; reduce-scatter + all-gather with the
distributed optimizer; per micro-batch with ZeRO-2/3, plus ZeRO-3's weight all-gathers in
forward and backward), partly hidden behind the passes (how much of ZeRO-3's traffic hides
depends on the implementation, ``TrainingJob.zero3_impl``); and the Adam update, memory-
bound on each accelerator's shard.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solver.stepmodel import calibration as C
from solver.stepmodel.arrays import FULL, NONE, SELECTIVE, FloatArray, HardwareTable, LayoutArrays
from solver.stepmodel.calibration import Calibration
from solver.stepmodel.collectives import (
    all_reduce,
    all_to_all,
    gather_or_scatter,
    link,
    point_to_point,
)
from solver.stepmodel.memory import layer_activation_bytes, stage_params
from solver.stepmodel.shape import JobShape


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
    optimizer: FloatArray

    @property
    def step(self) -> FloatArray:
        return (self.compute + self.memory_bound + self.tp_comm + self.cp_comm + self.ep_comm
                + self.pp_comm + self.bubble + self.dp_comm + self.optimizer)

    def breakdown(self, i: int) -> dict[str, float]:
        names = ("compute", "memory_bound", "tp_comm", "cp_comm", "ep_comm", "pp_comm",
                 "bubble", "dp_comm", "optimizer")
        return {name: float(getattr(self, name)[i]) for name in names}


def step_time(js: JobShape, x: LayoutArrays, hw: HardwareTable, cal: Calibration) -> TimeArrays:
    a = x.accel
    tokens = js.seq_len // x.cp * x.mb  # per accelerator and micro-batch
    # Linear layers run at the job's precision (FP8 GEMMs with Transformer Engine); the
    # attention scores (flash attention) and the LM head stay in BF16, as Megatron-LM / NeMo
    # FP8 recipes keep them (Micikevicius et al. 2022, arXiv:2209.05433, sec. 4).
    # Software efficiency over MAMF: the accelerator family's fitted value, else the default.
    scale = np.where(np.isnan(hw.matmul_scale[a]), cal.matmul_scale, hw.matmul_scale[a])
    rate = hw.peak_flops[a] * hw.linear_efficiency[a] * scale
    rate_bf16 = hw.bf16_peak_flops[a] * hw.matmul_efficiency[a] * scale
    # Fused (flash) attention kernels reach less of the peak than GEMMs, and how much less
    # depends on the architecture: FlashAttention-2 reaches 50-73% of the A100's peak (Dao
    # 2023, arXiv:2307.08691, sec. 4.1) but about 35% of the H100's (Shah et al. 2024,
    # FlashAttention-3, arXiv:2407.08608, sec. 1). Unfused, the scores are batched GEMMs.
    attention = np.where(np.isnan(hw.attention_scale[a]), cal.attention_scale,
                         hw.attention_scale[a])
    rate_scores = (hw.bf16_peak_flops[a] * hw.matmul_efficiency[a] * attention
                   if js.flash_attention else rate_bf16)
    hbm = hw.memory_bw[a]
    full = x.recompute == FULL
    passes = np.where(full, 4.0, 3.0)
    score_passes = np.where(full | (x.recompute == SELECTIVE), 4.0, 3.0)
    causal = 0.5 if js.flash_attention else 1.0

    def matmul_time(flops_per_token: float | FloatArray, weights: float | FloatArray,
                    at: FloatArray = rate) -> FloatArray:
        """One forward pass: compute or weight reads, whichever is slower (roofline)."""
        return np.maximum(tokens * flops_per_token / x.tp / at,
                          C.WEIGHT_BYTES * weights / x.tp / hbm)

    scores = tokens * js.score_flops * causal / x.tp / rate_scores  # one forward pass
    dense_fwd = matmul_time(js.dense_layer_flops, np.float64(js.dense_layer_params))
    routed_tokens = js.top_k * js.capacity_factor
    expert_weights = js.experts * js.expert_params / x.ep
    moe_fwd = (matmul_time(js.moe_nonexpert_flops, np.float64(js.moe_nonexpert_params))
               + matmul_time(routed_tokens * js.routed_expert_flops, expert_weights))
    overhead = cal.layer_overhead_s * passes

    dense_mem = layer_activation_bytes(js, x.with_recompute_none(), moe=False, bf16=True)
    moe_mem = layer_activation_bytes(js, x.with_recompute_none(), moe=True, bf16=True)
    mem_passes = np.where(full, 4.0, 3.0)
    dense_elem = dense_mem * cal.elementwise_traffic * mem_passes / hbm
    moe_elem = moe_mem * cal.elementwise_traffic * mem_passes / hbm

    # Tensor parallelism: 4 collectives of the gathered s*b*h per layer and pass.
    tp_bw, tp_lat = link(hw, a, x.tp, cal)
    act = C.ACT_BYTES * tokens * js.hidden
    tp_layer = 4 * passes * gather_or_scatter(act, x.tp, tp_bw, tp_lat)

    # Context parallelism: K and V of the local chunk circulate cp-1 times.
    cp_bw, cp_lat = link(hw, a, x.tp * x.cp, cal)
    kv = C.ACT_BYTES * tokens * js.kv_width / x.tp
    ring = np.where(x.cp > 1, (x.cp - 1) * point_to_point(kv, cp_bw, cp_lat), 0.0)
    cp_layer = np.maximum(0.0, ring - scores) + np.maximum(0.0, 2 * ring - 2 * scores)
    cp_layer = cp_layer + np.where(full, np.maximum(0.0, ring - scores), 0.0)

    # Expert parallelism: dispatch + combine per pass (forward, backward x2, recompute).
    ep_bw, ep_lat = link(hw, a, x.tp * x.cp * x.ep, cal)
    a2a_bytes = C.ACT_BYTES * tokens * routed_tokens * js.hidden / x.tp
    ep_layer = 2 * passes * all_to_all(a2a_bytes, x.ep, ep_bw, ep_lat)

    sp = stage_params(js, x)
    n_moe = sp.moe_on_stage
    n_dense = sp.layers_on_stage - n_moe
    compute_mb = (n_dense * (passes * dense_fwd + overhead) + n_moe * (passes * moe_fwd + overhead)
                  + (n_dense + n_moe) * score_passes * scores)
    head_fwd = matmul_time(js.head_flops, np.float64(js.head_params), rate_bf16)
    logits_mem = 3 * 4.0 * tokens * js.vocab / x.tp * 2 / hbm  # FP32 logits, fwd + bwd
    compute_mb_last = compute_mb + 3 * head_fwd
    membound_mb = n_dense * dense_elem + n_moe * moe_elem
    membound_mb_last = membound_mb + logits_mem
    tp_mb = (n_dense + n_moe) * tp_layer
    cp_mb = (n_dense + n_moe) * cp_layer
    ep_mb = n_moe * ep_layer
    # Communication overlapped with computation; each second of kernels hides at most one
    # second of traffic, tensor-parallel collectives first.
    capacity = compute_mb
    if js.tp_comm_overlap:
        # Collectives split into chunks that run under the GEMMs they feed (Transformer
        # Engine userbuffers; Wang et al. 2023, "Overlap communication with dependent
        # computation via decomposition", ASPLOS, arXiv:2105.05720).
        hidden = np.minimum(tp_mb, capacity)
        tp_mb, capacity = tp_mb - hidden, capacity - hidden
    if js.ep_comm_overlap:
        # One micro-batch's dispatch and combine run under another's computation
        # (DeepSeek-V3's DualPipe, arXiv:2412.19437 sec. 3.2.1).
        ep_mb = np.maximum(0.0, ep_mb - capacity)

    pp_bw, pp_lat = link(hw, a, x.tp * x.cp * x.dp * x.pp, cal)
    boundary = C.ACT_BYTES * tokens * js.hidden / x.tp
    pp_mb = np.where(x.pp > 1, 2 * x.vp * point_to_point(boundary, pp_bw, pp_lat), 0.0)

    # The last stage also runs the LM head; the pipeline moves at the slower stage.
    last_slower = compute_mb_last + membound_mb_last >= compute_mb + membound_mb
    compute_mb = np.where(last_slower, compute_mb_last, compute_mb)
    membound_mb = np.where(last_slower, membound_mb_last, membound_mb)
    one_mb = compute_mb + membound_mb + tp_mb + cp_mb + ep_mb + pp_mb

    # Data parallelism over dp*cp (expert weights over dp*cp/ep).
    group = x.dp * x.cp
    expert_group = group // x.ep
    dp_bw, dp_lat = link(hw, a, x.tp * group, cal)
    dense_params = np.maximum(sp.first_replicated, sp.last_replicated)
    grads = js.grad_bytes * dense_params
    expert_grads = js.grad_bytes * sp.experts
    weights = C.WEIGHT_BYTES * dense_params
    expert_w = C.WEIGHT_BYTES * sp.experts

    # Per micro-batch: ZeRO-2 reduce-scatters the gradients during the backward; ZeRO-3 also
    # gathers the weights before the forward and again before the backward (Rajbhandari et
    # al. 2020, arXiv:1910.02054, sec. 5 and 7; PyTorch FSDP, Zhao et al. 2023,
    # arXiv:2304.11277, sec. 3). ZeRO-3 prefetches the next layer's weights while the current
    # one computes, so each pass's traffic runs under that pass's kernels: only what exceeds
    # ``dp_overlap`` of their time is exposed. Once per step: ZeRO-0 all-reduces the
    # gradients, ZeRO-1 reduce-scatters them, under what the last micro-batch's backward has
    # left after its own traffic; ZeRO-1/2 all-gather the updated weights after the optimizer,
    # under the next step's first forward (Megatron-LM ``--overlap-param-gather``). Both
    # overlaps need the software to bucket the traffic (``grad_reduce_overlap``). No kernel
    # time hides two transfers.
    scatter = (gather_or_scatter(grads, group, dp_bw, dp_lat)
               + gather_or_scatter(expert_grads, expert_group, dp_bw, dp_lat))
    gather = (gather_or_scatter(weights, group, dp_bw, dp_lat)
              + gather_or_scatter(expert_w, expert_group, dp_bw, dp_lat))
    grads_end = np.select(
        [x.zero == 0, x.zero == 1],
        [all_reduce(grads, group, dp_bw, dp_lat)
         + all_reduce(expert_grads, expert_group, dp_bw, dp_lat), scatter], 0.0)
    weights_end = np.where((x.zero == 1) | (x.zero == 2), gather, 0.0)
    kernels_mb = compute_mb + membound_mb
    forward_mb = kernels_mb / passes
    backward_mb = kernels_mb - forward_mb
    overlap = cal.dp_overlap if js.grad_reduce_overlap else 0.0
    zero2_mb = np.maximum(0.0, scatter - overlap * backward_mb)
    # FSDP gathers one flat buffer per layer, prefetched: only what exceeds the kernels is
    # exposed. DeepSpeed's ZeRO-3, as the published 2021 runs measured it, gathers parameter
    # by parameter: its collectives reach ``zero3_bandwidth_deepspeed`` of a ring's bus
    # bandwidth, and at least ``zero3_exposed_deepspeed`` of each pass's traffic stays
    # exposed however long the pass.
    deepspeed = js.zero3_impl == "deepspeed"
    slowdown = 1.0 / cal.zero3_bandwidth_deepspeed if deepspeed else 1.0
    floor = cal.zero3_exposed_deepspeed if deepspeed else 0.0
    gather3, scatter3 = gather * slowdown, scatter * slowdown
    zero3_mb = (np.maximum(floor * gather3, gather3 - cal.dp_overlap * forward_mb)
                + np.maximum(floor * (gather3 + scatter3),
                             gather3 + scatter3 - cal.dp_overlap * backward_mb))
    exposed_per_mb = np.select([x.zero == 2, x.zero == 3], [zero2_mb, zero3_mb], 0.0)
    backward_left = np.maximum(0.0, overlap * backward_mb - np.where(x.zero == 2, scatter, 0.0))
    exposed_end = (np.maximum(0.0, grads_end - backward_left)
                   + np.maximum(0.0, weights_end - overlap * forward_mb))

    m = x.nmb
    opt_div = np.where(x.zero >= 1, group.astype(float), 1.0)
    expert_div = np.where(x.zero >= 1, expert_group.astype(float), 1.0)
    step_bytes = C.OPTIMIZER_STEP_BYTES - C.GRAD_BYTES + js.grad_bytes  # reads the gradient
    optimizer = step_bytes * (dense_params / opt_div + sp.experts / expert_div) / hbm
    # Pipeline fill and drain: (p-1)/v micro-batch times (Narayanan et al. 2021, sec. 2.2).
    # Interleaving needs at least p micro-batches per step (sec. 2.2.2: a multiple of p);
    # with fewer the chunks run one after another and the bubble is the plain (p-1).
    interleaves = (x.vp > 1) & (m >= x.pp)
    bubble = (x.pp - 1) / np.where(interleaves, x.vp, 1) * one_mb

    return TimeArrays(
        compute=m * compute_mb,
        memory_bound=m * membound_mb,
        tp_comm=m * tp_mb,
        cp_comm=m * cp_mb,
        ep_comm=m * ep_mb,
        pp_comm=m * pp_mb,
        bubble=bubble,
        dp_comm=m * exposed_per_mb + exposed_end,
        optimizer=optimizer,
    )


__all__ = ["NONE", "TimeArrays", "step_time"]
