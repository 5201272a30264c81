"""Exact parameter counts of a ``ModelSpec``, total and active per token.

The dense GPT case reduces to Narayanan et al. 2021 (arXiv:2104.04473) eq. (2):
``P = 12*l*h^2 * (1 + 13/(12h) + (V+s)/(12*l*h))`` (biases, two LayerNorms per layer, learned
positions; the final norm's 2h is the only term eq. (2) leaves out). Gated MLPs (SwiGLU) hold
three ``h x f`` matrices (Shazeer 2020, "GLU Variants Improve Transformer"). Multi-head latent
attention follows DeepSeek-V2 (arXiv:2405.04434) sec. 2.1: low-rank query and joint key/value
compressions with a norm on each latent and a decoupled RoPE key shared by all heads.
"""

from __future__ import annotations

from dataclasses import dataclass

from solver.specs import ModelSpec


@dataclass(frozen=True)
class ParamCount:
    """Parameters by part. ``expert`` is per routed expert; the totals count everything."""

    embedding: int
    lm_head: int
    attention_per_layer: int
    norms_per_layer: int
    dense_mlp_per_layer: int
    expert_mlp: int
    router_per_layer: int
    shared_mlp_per_layer: int
    final_norm: int
    total: int
    active: int

    @property
    def layer_dense(self) -> int:
        """One dense layer: attention, norms and MLP."""
        return self.attention_per_layer + self.norms_per_layer + self.dense_mlp_per_layer

    @property
    def layer_moe_nonexpert(self) -> int:
        """One MoE layer without its routed experts: attention, norms, router, shared experts."""
        return (self.attention_per_layer + self.norms_per_layer + self.router_per_layer
                + self.shared_mlp_per_layer)


def mlp_params(hidden: int, ffn: int, *, gated: bool, bias: bool) -> int:
    """One MLP: two matrices (three when gated), plus biases when the model has them."""
    matrices = (3 if gated else 2) * hidden * ffn
    biases = ((2 if gated else 1) * ffn + hidden) if bias else 0
    return matrices + biases


def attention_params(m: ModelSpec) -> int:
    """Q, K, V and output projections of one layer (GQA and MLA aware)."""
    h = m.hidden
    if m.uses_mla:
        qk_head = m.head_dim + m.qk_rope_head_dim  # non-RoPE part + decoupled RoPE part
        if m.q_lora_rank:
            q = h * m.q_lora_rank + m.q_lora_rank + m.q_lora_rank * m.heads * qk_head
        else:
            q = h * m.heads * qk_head
        kv = (h * (m.kv_lora_rank + m.qk_rope_head_dim) + m.kv_lora_rank
              + m.kv_lora_rank * m.heads * (m.head_dim + m.v_head_dim))
        out = m.heads * m.v_head_dim * h
        return q + kv + out
    q_width = m.heads * m.head_dim
    kv_width = m.kv_heads * m.head_dim
    weights = h * q_width + 2 * h * kv_width + q_width * h
    biases = (q_width + 2 * kv_width + h) if m.linear_bias else 0
    return weights + biases


def norm_params(m: ModelSpec) -> int:
    """One norm: LayerNorm has a scale and a bias, RMSNorm a scale only."""
    return 2 * m.hidden if m.norm == "layernorm" else m.hidden


def count_params(m: ModelSpec) -> ParamCount:
    h = m.hidden
    embedding = m.vocab * h + (m.seq_len * h if m.position_embedding == "learned" else 0)
    lm_head = 0 if m.tied_embeddings else m.vocab * h
    attention = attention_params(m)
    norms = 2 * norm_params(m)
    dense_mlp = mlp_params(h, m.ffn_hidden, gated=m.gated_mlp, bias=m.linear_bias)
    if m.is_moe:
        expert = mlp_params(h, m.moe_ffn_hidden, gated=m.gated_mlp, bias=m.linear_bias)
        router = h * m.experts
        shared = m.shared_experts * expert
    else:
        expert = router = shared = 0
    final_norm = norm_params(m)
    dense_layers = m.layers - m.moe_layers
    common = embedding + lm_head + final_norm + m.layers * (attention + norms)
    total = (common + dense_layers * dense_mlp
             + m.moe_layers * (router + shared + m.experts * expert))
    active = (common + dense_layers * dense_mlp
              + m.moe_layers * (router + shared + m.top_k * expert))
    return ParamCount(
        embedding=embedding,
        lm_head=lm_head,
        attention_per_layer=attention,
        norms_per_layer=norms,
        dense_mlp_per_layer=dense_mlp,
        expert_mlp=expert,
        router_per_layer=router,
        shared_mlp_per_layer=shared,
        final_norm=final_norm,
        total=total,
        active=active,
    )
