"""Per-job constants of the step model: the model's sizes, computed once per question.

Everything here is a scalar; the vectorised formulas in ``memory.py`` and ``timing.py``
combine these with the per-layout arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

from solver.params import count_params
from solver.specs import ModelSpec, TrainingJob
from solver.stepmodel import calibration as C
from solver.stepmodel.flops import (
    attention_matmul_weights,
    layer_flops,
    mlp_matmul_weights,
    step_flops,
)


@dataclass(frozen=True)
class JobShape:
    """Scalars the step model reads (parameters, FLOPs per token, activation coefficients)."""

    layers: int
    moe_layers: int
    hidden: int
    heads: int
    kv_heads: int
    experts: int
    top_k: int
    vocab: int
    seq_len: int
    capacity_factor: float
    flash_attention: bool
    tp_comm_overlap: bool
    grad_reduce_overlap: bool
    ep_comm_overlap: bool
    zero3_impl: str  # "fsdp" or "deepspeed" (TrainingJob.zero3_impl)
    grad_bytes: int  # bytes of one gradient element: 4 (FP32) or 2 (TrainingJob.grad_dtype)
    fp8: bool  # linear layers in FP8 (Transformer Engine); attention and LM head in BF16
    # Parameters.
    dense_layer_params: int
    moe_nonexpert_params: int
    expert_params: int
    embedding_params: int
    head_params: int  # LM head weights held by the last stage (a copy when tied and pp > 1)
    tied: bool
    # Forward FLOPs per token.
    dense_layer_flops: float
    moe_nonexpert_flops: float  # attention projections, router, shared experts
    routed_expert_flops: float  # one routed expert
    score_flops: float  # attention scores per token at full sequence length
    head_flops: float
    # Activation bytes per token per layer, in units of hidden (Korthikanti et al. 2022 Table 2).
    attn_act: float
    dense_mlp_act: float
    moe_mlp_act: float
    norm_act: float
    dense_act_bf16: float  # attn + dense MLP + norms as BF16 (the traffic of the layer's kernels)
    moe_act_bf16: float
    score_act_per_token: float  # 5 * heads * s bytes per token without flash attention
    kv_width: int  # K and V widths per token, for context-parallel exchange
    # Totals for MFU.
    model_flops_per_token: float
    hw_flops_per_token: tuple[float, float, float]  # by recompute mode none/selective/full
    tokens: float


def _act_coefficients(m: ModelSpec, fp8: bool = False) -> tuple[float, float, float, float]:
    """Bytes per token per layer over ``hidden``, generalising Korthikanti et al. 2022 sec. 4.1.

    Attention ``11`` = QKV input 2 + Q 2 + K 2 + V 2 + projection input 2 + dropout mask 1,
    scaled here by the widths of Q and K/V relative to hidden (GQA stores narrower K, V).
    MLP ``19`` = input 2 + activation input 2f/h + activation output 2f/h + dropout mask 1
    (a gated MLP stores gate and up outputs and their product: 6f/h). Norms 4 (two inputs).
    For a plain GPT the sum is Korthikanti's 34.

    FP8 training (Transformer Engine, Micikevicius et al. 2022, arXiv:2209.05433) saves the
    inputs of the linear layers in FP8 for their weight gradients: 1 byte instead of 2 for the
    QKV input, the projection input, the MLP input and the down-projection input (``f/h``);
    Q, K, V (for BF16 attention), the activation's input and the masks stay as they are. A GPT
    layer then stores 34 - (1 + 1) - (1 + 4) = 27 bytes per token over ``h``.
    """
    h = m.hidden
    if m.uses_mla:
        q_w = m.heads * (m.head_dim + m.qk_rope_head_dim) / h
        k_w = q_w
        v_w = m.heads * m.v_head_dim / h
    else:
        q_w = m.heads * m.head_dim / h
        k_w = v_w = m.kv_heads * m.head_dim / h
    linear_in = 1.0 if fp8 else 2.0  # bytes of a saved linear-layer input
    attn = linear_in + 2 * q_w + 2 * k_w + 2 * v_w + linear_in * q_w + 1
    per_ffn = 4.0 if m.gated_mlp else 2.0  # stored in BF16 besides the down-projection input

    def mlp(ffn: int) -> float:
        return linear_in + 1 + (per_ffn + linear_in) * ffn / h

    dense_mlp = mlp(m.ffn_hidden)
    if m.is_moe:
        expert = mlp(m.moe_ffn_hidden)
        router = 4.0 * m.experts / h  # FP32 router logits
        moe_mlp = (m.top_k * m.capacity_factor + m.shared_experts) * expert + router
    else:
        moe_mlp = dense_mlp
    return attn, dense_mlp, moe_mlp, 4.0


def job_shape(job: TrainingJob) -> JobShape:
    m = job.model
    s = job.seq_len
    counts = count_params(m)
    flops = layer_flops(m, s)
    totals = step_flops(m, s)
    fp8 = job.precision == "fp8"
    attn_act, dense_act, moe_act, norm_act = _act_coefficients(m, fp8)
    attn16, dense16, moe16, norm16 = _act_coefficients(m, False)
    attn_w = attention_matmul_weights(m)
    expert_w = mlp_matmul_weights(m, m.moe_ffn_hidden) if m.is_moe else 0
    if m.uses_mla:
        kv_width = m.heads * (m.head_dim + m.qk_rope_head_dim + m.v_head_dim)
    else:
        kv_width = 2 * m.kv_heads * m.head_dim
    return JobShape(
        layers=m.layers,
        moe_layers=m.moe_layers,
        hidden=m.hidden,
        heads=m.heads,
        kv_heads=m.kv_heads,
        experts=m.experts,
        top_k=m.top_k,
        vocab=m.vocab,
        seq_len=s,
        capacity_factor=m.capacity_factor,
        flash_attention=job.flash_attention,
        tp_comm_overlap=job.tp_comm_overlap,
        grad_reduce_overlap=job.grad_reduce_overlap,
        ep_comm_overlap=job.ep_comm_overlap,
        zero3_impl=job.zero3_impl,
        grad_bytes=C.GRAD_BYTES if job.grad_dtype == "fp32" else C.WEIGHT_BYTES,
        fp8=fp8,
        dense_layer_params=counts.layer_dense,
        moe_nonexpert_params=counts.layer_moe_nonexpert,
        expert_params=counts.expert_mlp,
        embedding_params=counts.embedding,
        head_params=m.vocab * m.hidden,
        tied=m.tied_embeddings,
        dense_layer_flops=flops.dense_matmul,
        moe_nonexpert_flops=2.0 * (attn_w + m.hidden * m.experts + m.shared_experts * expert_w),
        routed_expert_flops=2.0 * expert_w,
        score_flops=flops.attention_scores,
        head_flops=flops.lm_head,
        attn_act=attn_act,
        dense_mlp_act=dense_act,
        moe_mlp_act=moe_act,
        norm_act=norm_act,
        dense_act_bf16=attn16 + dense16 + norm16,
        moe_act_bf16=attn16 + moe16 + norm16,
        score_act_per_token=5.0 * m.heads * s,
        kv_width=kv_width,
        model_flops_per_token=totals.model_per_token,
        hw_flops_per_token=(totals.hardware_per_token_none, totals.hardware_per_token_selective,
                            totals.hardware_per_token_full),
        tokens=job.tokens,
    )
