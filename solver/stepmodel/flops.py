"""FLOPs of one training step.

Matmul FLOPs are 2 per multiply-accumulate. Per token and layer, the forward pass costs
``2 * (matmul weights)`` for the projections and MLP plus ``2 * s * heads * (d_qk + d_v)``
for the attention scores and their product with V. Backward costs twice the forward, so model
FLOPs per token are ``3 * forward`` -- for a dense GPT this is Narayanan et al. 2021
(arXiv:2104.04473) eq. (3) without recomputation, i.e. Korthikanti et al. 2022
(arXiv:2205.05198) App. A ``72*B*L*s*h^2*(1 + s/(6h) + V/(12*h*L))``, and PaLM's
``6N + 12*L*H*Q*T`` (Chowdhery et al. 2022, arXiv:2204.02311, App. B). Causal masking is not
discounted in this count (the convention of all three papers). A layer with a sliding window
of ``w`` keys (``ModelSpec.sliding_window``) counts ``min(w, s)`` keys per query in place of
``s``, averaged over the layers (``attention_keys``).

Hardware FLOPs add what recomputation repeats: full recomputation repeats the forward of every
transformer layer (Narayanan eq. (3): factor 4 instead of 3, LM head not repeated); selective
recomputation repeats one forward of the attention scores (QK^T and scores x V). Korthikanti
App. A writes ``s/(3h)`` in place of ``s/(6h)`` for it, which counts three extra score passes
rather than one; gpuplan counts the one pass the kernels actually repeat, so its HFU for
selective runs is about 1.8% below Korthikanti's published HFU (GPT-3 175B: ratio 1.009 vs
1.027). MFU is unaffected.
"""

from __future__ import annotations

from dataclasses import dataclass

from solver.specs import ModelSpec


@dataclass(frozen=True)
class LayerFlops:
    """Forward FLOPs per token of one layer, split the way time and recompute need them."""

    dense_matmul: float  # attention projections + dense MLP
    moe_matmul: float  # attention projections + router + top_k routed + shared experts
    attention_scores: float  # QK^T and scores x V, per token, for sequence length s
    lm_head: float  # per token, once per model


def attention_matmul_weights(m: ModelSpec) -> int:
    """Weights of the attention projections (no biases): what the projections multiply."""
    h = m.hidden
    if m.uses_mla:
        qk_head = m.head_dim + m.qk_rope_head_dim
        q = (h * m.q_lora_rank + m.q_lora_rank * m.heads * qk_head) if m.q_lora_rank \
            else h * m.heads * qk_head
        kv = h * (m.kv_lora_rank + m.qk_rope_head_dim) + m.kv_lora_rank * m.heads * (
            m.head_dim + m.v_head_dim)
        return q + kv + m.heads * m.v_head_dim * h
    q_width = m.heads * m.head_dim
    return 2 * h * q_width + 2 * h * m.kv_heads * m.head_dim


def mlp_matmul_weights(m: ModelSpec, ffn: int) -> int:
    return (3 if m.gated_mlp else 2) * m.hidden * ffn


def score_width(m: ModelSpec) -> int:
    """``heads * (d_qk + d_v)``: the width the attention scores multiply per key."""
    if m.uses_mla:
        return m.heads * (m.head_dim + m.qk_rope_head_dim + m.v_head_dim)
    return m.heads * 2 * m.head_dim


def attention_keys(m: ModelSpec, seq_len: int) -> tuple[float, float]:
    """Keys per query averaged over the layers: as FLOP counts count them (``s`` for full
    attention, ``min(w, s)`` for a window of ``w``: no causal discount) and as a causal
    kernel that skips masked blocks visits them (FlashAttention-2, Dao 2023, sec. 3.1; its
    ``window_size`` skips the blocks left of the window too): query ``t`` of ``s`` sees
    ``min(t, w)`` keys, on average ``s / 2`` without a window and ``w - w^2 / (2 s)`` with one
    (``w <= s``; the continuum limit, equal to ``s / 2`` at ``w = s``)."""
    s = float(seq_len)
    windowed = m.sliding_window_layers if 0 < m.sliding_window < seq_len else 0
    w = float(m.sliding_window)
    full = m.layers - windowed
    counted = (full * s + windowed * w) / m.layers
    visited = (full * s / 2 + windowed * (w - w * w / (2 * s))) / m.layers
    return counted, visited


def layer_flops(m: ModelSpec, seq_len: int) -> LayerFlops:
    attn = attention_matmul_weights(m)
    dense = 2.0 * (attn + mlp_matmul_weights(m, m.ffn_hidden))
    if m.is_moe:
        expert = mlp_matmul_weights(m, m.moe_ffn_hidden)
        moe = 2.0 * (attn + m.hidden * m.experts + (m.top_k + m.shared_experts) * expert)
    else:
        moe = dense
    return LayerFlops(
        dense_matmul=dense,
        moe_matmul=moe,
        attention_scores=2.0 * attention_keys(m, seq_len)[0] * score_width(m),
        lm_head=2.0 * m.hidden * m.vocab,
    )


@dataclass(frozen=True)
class StepFlops:
    """FLOPs per token of the whole model: model (for MFU) and hardware (for HFU)."""

    model_per_token: float
    hardware_per_token_none: float
    hardware_per_token_selective: float
    hardware_per_token_full: float


def mtp_flops(m: ModelSpec, seq_len: int) -> float:
    """Forward FLOPs per token of the multi-token-prediction modules."""
    f = layer_flops(m, seq_len)
    layer = f.moe_matmul if m.is_moe else f.dense_matmul
    return m.mtp_layers * (2.0 * 2 * m.hidden * m.hidden + layer + f.attention_scores
                           + f.lm_head)


def step_flops(m: ModelSpec, seq_len: int) -> StepFlops:
    f = layer_flops(m, seq_len)
    dense_layers = m.layers - m.moe_layers
    layers_fwd = dense_layers * f.dense_matmul + m.moe_layers * f.moe_matmul
    scores_fwd = m.layers * f.attention_scores
    forward = layers_fwd + scores_fwd + f.lm_head + mtp_flops(m, seq_len)
    model = 3.0 * forward
    return StepFlops(
        model_per_token=model,
        hardware_per_token_none=model,
        hardware_per_token_selective=model + scores_fwd,
        hardware_per_token_full=model + layers_fwd + scores_fwd,
    )


def projection_widths(m: ModelSpec) -> tuple[int, int, int]:
    """Widths of the query, key and value projections (MLA: the up-projected ones)."""
    if m.uses_mla:
        qk = m.heads * (m.head_dim + m.qk_rope_head_dim)
        return qk, qk, m.heads * m.v_head_dim
    return m.heads * m.head_dim, m.kv_heads * m.head_dim, m.kv_heads * m.head_dim
