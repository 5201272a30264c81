"""Per-job constants of the step model: the model's sizes, computed once per question.

Everything here is a scalar (or a small per-module table); the vectorised formulas of the
mechanism modules (``compute``, ``tensor``, ``context``, ``expert``, ``pipeline``, ``data``,
``memory``) combine these with the per-layout arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

from solver.params import count_params
from solver.specs import TrainingJob
from solver.stepmodel import calibration as C
from solver.stepmodel.activations import (
    LayerActivations,
    RecomputeCost,
    layer_activations,
    recompute_costs,
)
from solver.stepmodel.flops import (
    attention_keys,
    attention_matmul_weights,
    layer_flops,
    mlp_matmul_weights,
    projection_widths,
    score_width,
    step_flops,
)


@dataclass(frozen=True)
class JobShape:
    """Scalars the step model reads (parameters, FLOPs per token, activation parts)."""

    layers: int
    dense_layers: int  # leading dense layers (all layers of a dense model)
    moe_layers: int
    mtp_layers: int
    hidden: int
    heads: int
    kv_heads: int
    experts: int
    top_k: int
    vocab: int
    seq_len: int
    routed: float  # routed copies of a token the busiest expert rank computes: top_k x load
    expert_groups: int
    expert_group_topk: int
    flash_attention: bool
    tp_comm_overlap: bool
    grad_reduce_overlap: bool
    ep_comm_overlap: bool
    sequence_parallel: bool  # TrainingJob.sequence_parallel
    deepep: bool  # TrainingJob.moe_dispatcher == "deepep"
    dispatch_bytes: float  # bytes per element of the dispatch (FP8 with its scales, or BF16)
    zero3_impl: str  # "fsdp" or "deepspeed" (TrainingJob.zero3_impl)
    grad_bytes: int  # bytes of one gradient element: 4 (FP32) or 2 (TrainingJob.grad_dtype)
    optimizer_bytes: int  # FP32 master weights and Adam moments per parameter
    fp8: bool  # linear layers in FP8 (Transformer Engine); attention and LM head in BF16
    biased_experts_unfused: bool  # expert biases on the unfused TEGroupedMLP path
    param_bytes: int  # bytes of a weight as held and gathered: 2 (BF16), 1 with fp8_params
    fp8_copy_bytes: int  # FP8 copy kept beside it between micro-batches (see memory.py)
    largest_module_params: int  # the largest single linear layer (DeepSpeed ZeRO-3 fetches)
    activation_offload: bool  # stored activations wait in host memory (see memory.py)
    # Parameters.
    dense_layer_params: int
    moe_nonexpert_params: int
    expert_params: int
    embedding_params: int
    head_params: int  # LM head weights held by the last stage (a copy when tied and pp > 1)
    mtp_params: int  # one MTP module without the shared embedding and head
    tied: bool
    # Forward FLOPs per token.
    dense_layer_flops: float
    moe_nonexpert_flops: float  # attention projections, router, shared experts
    routed_expert_flops: float  # one routed expert
    score_flops: float  # attention scores per token, keys as FLOP counts count them
    score_work: float  # of those, the share the kernels compute (``score_work``)
    score_element_flops: float  # matmul FLOPs per score of one head: 2 (d_qk + d_v)
    head_flops: float
    mtp_projection_flops: float
    # Stored activations per layer (``activations.py``) and what recomputation costs.
    dense_act: LayerActivations
    moe_act: LayerActivations
    dense_act_bf16: LayerActivations  # the same in BF16: the measure of elementwise traffic
    moe_act_bf16: LayerActivations
    dense_recompute: dict[int, RecomputeCost]
    moe_recompute: dict[int, RecomputeCost]
    kv_width: int  # K and V widths per token, for context-parallel exchange
    # Totals for MFU.
    model_flops_per_token: float
    tokens: float

    @property
    def is_moe(self) -> bool:
        return self.experts > 1


def score_work(job: TrainingJob) -> float:
    """The attention-score work the kernels do over what FLOP counts count: with flash
    attention the causal kernel skips the masked blocks (1/2 without windows, Dao 2023,
    FlashAttention-2, sec. 3.1); unfused attention computes every score of the ``s x s``
    matrix, masked or not (1 without windows, more when windows shorten the count)."""
    counted, visited = attention_keys(job.model, job.seq_len)
    return (visited if job.flash_attention else float(job.seq_len)) / counted


def job_shape(job: TrainingJob) -> JobShape:
    m = job.model
    s = job.seq_len
    counts = count_params(m)
    flops = layer_flops(m, s)
    fp8 = job.precision == "fp8"
    load = (m.capacity_factor if m.capacity_factor > 0 else job.moe_imbalance) if m.is_moe \
        else 1.0
    routed = m.top_k * load if m.is_moe else 0.0
    attn_w = attention_matmul_weights(m)
    expert_w = mlp_matmul_weights(m, m.moe_ffn_hidden) if m.is_moe else 0
    _, k_width, v_width = projection_widths(m)
    flash = job.flash_attention

    def acts(moe: bool, fp8_: bool) -> LayerActivations:
        return layer_activations(m, s, moe=moe, fp8=fp8_, flash=flash, routed=routed,
                                 dropout=bool(job.dropout))

    mtp_layer = counts.layer_moe_nonexpert + m.experts * counts.expert_mlp if m.is_moe \
        else counts.layer_dense
    return JobShape(
        layers=m.layers,
        dense_layers=m.layers - m.moe_layers,
        moe_layers=m.moe_layers,
        mtp_layers=m.mtp_layers,
        hidden=m.hidden,
        heads=m.heads,
        kv_heads=m.kv_heads,
        experts=m.experts,
        top_k=m.top_k,
        vocab=m.vocab,
        seq_len=s,
        routed=routed,
        expert_groups=m.expert_groups,
        expert_group_topk=m.expert_group_topk,
        flash_attention=flash,
        tp_comm_overlap=job.tp_comm_overlap,
        grad_reduce_overlap=job.grad_reduce_overlap,
        ep_comm_overlap=job.ep_comm_overlap,
        sequence_parallel=job.sequence_parallel,
        deepep=job.moe_dispatcher == "deepep",
        # FP8 E4M3 with one FP32 scale per 128 elements (DeepSeek-V3 sec. 3.3.2): 1 + 4/128.
        dispatch_bytes=1.0 + 4.0 / 128 if job.fp8_dispatch else float(C.ACT_BYTES),
        zero3_impl=job.zero3_impl,
        grad_bytes=C.GRAD_BYTES if job.grad_dtype == "fp32" else C.WEIGHT_BYTES,
        optimizer_bytes=C.OPTIMIZER_BYTES if job.moments_dtype == "fp32"
        else C.OPTIMIZER_BYTES - 4,
        fp8=fp8,
        biased_experts_unfused=m.expert_biases and job.unfused_expert_bias,
        param_bytes=1 if job.fp8_params else C.WEIGHT_BYTES,
        activation_offload=job.activation_offload,
        largest_module_params=max(
            (2 if m.gated_mlp else 1) * m.hidden * max(m.ffn_hidden, m.moe_ffn_hidden),
            attention_matmul_weights(m) - m.heads * (m.v_head_dim if m.uses_mla else m.head_dim)
            * m.hidden),
        fp8_copy_bytes=0 if job.fp8_params or not fp8 else C.FP8_WEIGHT_COPY_BYTES,
        dense_layer_params=counts.layer_dense,
        moe_nonexpert_params=counts.layer_moe_nonexpert,
        expert_params=counts.expert_mlp,
        embedding_params=counts.embedding,
        head_params=m.vocab * m.hidden,
        mtp_params=2 * m.hidden * m.hidden + mtp_layer,
        tied=m.tied_embeddings,
        dense_layer_flops=flops.dense_matmul,
        moe_nonexpert_flops=2.0 * (attn_w + m.hidden * m.experts + m.shared_experts * expert_w),
        routed_expert_flops=2.0 * expert_w,
        score_flops=flops.attention_scores,
        score_work=score_work(job),
        score_element_flops=2.0 * score_width(m) / m.heads,
        head_flops=flops.lm_head,
        mtp_projection_flops=2.0 * 2 * m.hidden * m.hidden,
        dense_act=acts(False, fp8),
        moe_act=acts(m.is_moe, fp8),
        dense_act_bf16=acts(False, False),
        moe_act_bf16=acts(m.is_moe, False),
        dense_recompute=recompute_costs(m, s, moe=False, fp8=fp8, routed=routed),
        moe_recompute=recompute_costs(m, s, moe=m.is_moe, fp8=fp8, routed=routed),
        kv_width=k_width + v_width,
        model_flops_per_token=step_flops(m, s).model_per_token,
        tokens=job.tokens,
    )
