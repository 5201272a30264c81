"""Memory of the most loaded accelerator, by component, for N layouts at once.

Sources:
- Model states: mixed-precision Adam, BF16 weights + FP32 gradients + 12 bytes of FP32 master
  weights and moments (``calibration.WEIGHT_BYTES`` etc.); ZeRO stages 1/2/3 shard the
  optimizer states / + gradients / + weights over the data-parallel group (Rajbhandari et al.
  2020, arXiv:1910.02054, sec. 5). Megatron-LM's distributed optimizer shards over dp x cp,
  so the group here is ``dp * cp`` (``dp * cp / ep`` for expert weights).
- Activations: Korthikanti et al. 2022 (arXiv:2205.05198) Table 2 per layer and micro-batch:
  ``s*b*h*(34/t + 5*a*s/(h*t))`` with tensor + sequence parallelism, the score term dropped by
  selective recomputation or flash attention (Dao et al. 2022, which never stores the
  ``s x s`` scores), ``2*s*b*h`` per layer with full recomputation (sequence-parallel here:
  ``/t``), plus one layer's working set while it is recomputed. Context parallelism splits
  ``s`` by ``cp``.
- Micro-batches in flight on the first stage: ``min(pp, m)`` with 1F1B (Narayanan et al. 2021,
  sec. 2.2.1); with ``v`` interleaved chunks rank 0 warms up ``2(p-1) + (v-1)p`` chunks
  (Megatron-LM ``schedules.py``), i.e. Korthikanti's ``(1 + (p-1)/(p*v))`` factor.
  The last stage holds one micro-batch (``(v-1)p + 1`` chunks when interleaved) and the FP32
  logits ``4*s*b*V/t`` (Korthikanti sec. 4.3).
- Buffers: NCCL buffers, the tensor-parallel all-gather of the full sequence, pipeline send
  and receive tensors, and with ZeRO-3 the gathered weights of the current and the prefetched
  layer. Reserve: CUDA context plus allocator fragmentation (``calibration.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solver.stepmodel import calibration as C
from solver.stepmodel.arrays import FULL, NONE, FloatArray, IntArray, LayoutArrays
from solver.stepmodel.shape import JobShape

GIB = 2.0**30


def ceil_div(a: int | IntArray, b: IntArray) -> IntArray:
    return -(-a // b)


@dataclass(frozen=True)
class StageParams:
    """Parameters held by one accelerator of the first and of the last pipeline stage."""

    layers_on_stage: IntArray
    moe_on_stage: IntArray
    first_replicated: FloatArray  # sharded over dp*cp by ZeRO
    last_replicated: FloatArray
    experts: FloatArray  # sharded over dp*cp/ep by ZeRO


def stage_params(js: JobShape, x: LayoutArrays) -> StageParams:
    """The most loaded stage holds ``ceil(L/p)`` layers, MoE layers first (they are larger)."""
    n = ceil_div(js.layers, x.pp)
    moe = np.minimum(n, js.moe_layers)
    dense = n - moe
    body = (dense * js.dense_layer_params + moe * js.moe_nonexpert_params) / x.tp
    embedding = js.embedding_params / x.tp
    head = js.head_params / x.tp
    single = x.pp == 1
    first = body + embedding + np.where(single & ~np.bool_(js.tied), head, 0.0)
    last = np.where(single, first, body + head)
    experts = moe * js.experts * js.expert_params / (x.tp * x.ep)
    return StageParams(n, moe, first, last, experts)


def zero_divisors(x: LayoutArrays, stage: int) -> tuple[FloatArray, FloatArray]:
    """Shard counts of replicated and expert states whose ZeRO stage is at least ``stage``."""
    dense_group = (x.dp * x.cp).astype(float)
    expert_group = dense_group / x.ep
    on = x.zero >= stage
    return np.where(on, dense_group, 1.0), np.where(on, expert_group, 1.0)


def model_state_bytes(params: FloatArray, experts: FloatArray, x: LayoutArrays,
                      grad_bytes: int = C.GRAD_BYTES
                      ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Weights, gradients (``grad_bytes`` each) and optimizer states in bytes after ZeRO
    sharding."""
    out = []
    for stage, nbytes in ((3, C.WEIGHT_BYTES), (2, grad_bytes), (1, C.OPTIMIZER_BYTES)):
        dense_div, expert_div = zero_divisors(x, stage)
        out.append(nbytes * (params / dense_div + experts / expert_div))
    return out[0], out[1], out[2]


def layer_activation_bytes(js: JobShape, x: LayoutArrays, *, moe: bool,
                           bf16: bool = False) -> FloatArray:
    """Stored activations of one layer for one micro-batch with no recomputation.

    ``bf16`` counts every tensor in BF16 even in an FP8 job: the bytes the layer's
    memory-bound kernels read and write (``timing.py``).
    """
    tokens = js.seq_len // x.cp * x.mb
    if bf16:
        per_token = (js.moe_act_bf16 if moe else js.dense_act_bf16) * js.hidden
    else:
        mlp = js.moe_mlp_act if moe else js.dense_mlp_act
        per_token = (js.attn_act + mlp + js.norm_act) * js.hidden
    keeps_scores = (not js.flash_attention) & (x.recompute == NONE)
    scores = np.where(keeps_scores, js.score_act_per_token / x.cp, 0.0)
    return tokens * (per_token + scores) / x.tp


def stored_per_layer(js: JobShape, x: LayoutArrays, full_layer: FloatArray) -> FloatArray:
    """What one layer keeps per micro-batch under the layout's recomputation mode."""
    tokens = js.seq_len // x.cp * x.mb
    checkpoint = C.ACT_BYTES * tokens * js.hidden / x.tp
    return np.where(x.recompute == FULL, checkpoint, full_layer)


def inflight_first(x: LayoutArrays, nmb: IntArray) -> IntArray:
    """Layer-chunks of micro-batches alive on pipeline rank 0 (in chunks of L/(p*v) layers)."""
    warmup = np.where(x.vp > 1, 2 * (x.pp - 1) + (x.vp - 1) * x.pp + 1, x.pp)
    return np.minimum(nmb * x.vp, warmup)


def inflight_last(x: LayoutArrays, nmb: IntArray) -> IntArray:
    warmup = np.where(x.vp > 1, (x.vp - 1) * x.pp + 1, 1)
    return np.minimum(nmb * x.vp, warmup)


@dataclass(frozen=True)
class MemoryArrays:
    """Bytes per accelerator of the most loaded stage, by component."""

    weights: FloatArray
    gradients: FloatArray
    optimizer: FloatArray
    activations: FloatArray
    buffers: FloatArray
    reserve: FloatArray

    @property
    def total(self) -> FloatArray:
        return (self.weights + self.gradients + self.optimizer + self.activations
                + self.buffers + self.reserve)

    def breakdown_gib(self, i: int) -> dict[str, float]:
        return {name: float(getattr(self, name)[i]) / GIB for name in
                ("weights", "gradients", "optimizer", "activations", "buffers", "reserve")}


def memory(js: JobShape, x: LayoutArrays, nmb: IntArray | None = None) -> MemoryArrays:
    """Per-accelerator memory of the more loaded of the first and the last stage."""
    nmb = x.nmb if nmb is None else nmb
    sp = stage_params(js, x)
    dense_layers = sp.layers_on_stage - sp.moe_on_stage
    full_dense = layer_activation_bytes(js, x, moe=False)
    full_moe = layer_activation_bytes(js, x, moe=True)
    # While a layer is recomputed it holds everything it would store without recomputation.
    work_dense = layer_activation_bytes(js, x.with_recompute_none(), moe=False)
    work_moe = layer_activation_bytes(js, x.with_recompute_none(), moe=True)
    per_stage_mb = (dense_layers * stored_per_layer(js, x, full_dense)
                    + sp.moe_on_stage * stored_per_layer(js, x, full_moe))
    per_chunk = per_stage_mb / x.vp
    working = np.where(x.recompute == FULL, np.maximum(work_dense, np.where(
        sp.moe_on_stage > 0, work_moe, 0.0)), 0.0)
    tokens = js.seq_len // x.cp * x.mb
    logits = 4.0 * tokens * js.vocab / x.tp
    act_first = per_chunk * inflight_first(x, nmb) + working
    act_last = per_chunk * inflight_last(x, nmb) + working + logits
    act_last = np.where(x.pp == 1, act_first + logits, act_last)

    w1, g1, o1 = model_state_bytes(sp.first_replicated, sp.experts, x, js.grad_bytes)
    w2, g2, o2 = model_state_bytes(sp.last_replicated, sp.experts, x, js.grad_bytes)
    if js.fp8:
        # Transformer Engine keeps an FP8 copy of each weight and of its transpose between
        # micro-batches (1 + 1 bytes per parameter); with ZeRO-3 weights are gathered per
        # layer and no copy persists.
        cached = np.where(x.zero >= 3, 0.0, C.FP8_WEIGHT_CACHE_BYTES)
        w1 = w1 + cached * (sp.first_replicated + sp.experts)
        w2 = w2 + cached * (sp.last_replicated + sp.experts)
    layer_weights = np.where(sp.moe_on_stage > 0,
                             js.moe_nonexpert_params + js.experts * js.expert_params / x.ep,
                             js.dense_layer_params) / x.tp
    zero3_gather = np.where(x.zero >= 3, 2 * C.WEIGHT_BYTES * layer_weights, 0.0)
    tp_gather = np.where(x.tp > 1, C.ACT_BYTES * tokens * js.hidden, 0.0)
    p2p = np.where(x.pp > 1, 2 * C.ACT_BYTES * tokens * js.hidden / x.tp, 0.0)
    buffers = C.NCCL_BUFFERS_GIB * GIB + zero3_gather + tp_gather + p2p

    first = w1 + g1 + o1 + act_first
    last = w2 + g2 + o2 + act_last
    use_last = last > first

    def pick(first_stage: FloatArray, last_stage: FloatArray) -> FloatArray:
        return np.where(use_last, last_stage, first_stage)

    weights, grads, optim = pick(w1, w2), pick(g1, g2), pick(o1, o2)
    acts = pick(act_first, act_last)
    allocated = weights + grads + optim + acts + buffers
    reserve = C.CONTEXT_GIB * GIB + C.FRAGMENTATION * allocated
    return MemoryArrays(weights, grads, optim, acts, buffers, reserve)

