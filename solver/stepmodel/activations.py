"""What one transformer layer stores for its backward pass, and what recomputing a module costs.

Per token, a layer's stored activations are a list of parts (bytes), each dropped by the
recompute modules named beside it (``solver.layout_options``); full recomputation keeps only
the layer's input. The parts generalise Korthikanti et al. 2022 (arXiv:2205.05198) sec. 4.1,
whose GPT layer stores ``34*h`` bytes per token (``11h`` attention, ``19h`` MLP, ``4h`` norms)
plus ``5*a*s`` for the attention scores:

- attention: the norm's input (2h), the QKV projection's input (the norm's output: 2h, 1h in
  FP8), Q, K and V for the attention kernel (2 bytes each, at their widths: GQA keeps narrower K
  and V, MLA the up-projected ones), the scores without flash attention (``5*heads*s``), the
  output projection's input, the dropout mask (1h, only with ``TrainingJob.dropout`` > 0;
  Korthikanti's 5as scores are 2as without dropout). MLA (DeepSeek-V2 arXiv:2405.04434 sec. 2.1)
  also keeps its latents (the query and key-value compressions and the decoupled RoPE key, and
  the normalised latents the up-projections read);
- dense MLP: the norm's input and output, the first GEMM's outputs (gate and up for a gated MLP,
  BF16), the second GEMM's input (the activation's output), the dropout mask;
- MoE: the norm's input and output (the router's and the dispatch's input), the router's FP32
  logits, and per routed copy of a token (``top_k`` times the load factor) the expert's input,
  its first GEMM's outputs and its second GEMM's input; the shared experts' likewise.

FP8 training (Transformer Engine; DeepSeek-V3 arXiv:2412.19437 sec. 3.3) keeps the inputs of
the linear layers in FP8 (1 byte). DeepSeek-V3 also caches its experts' SwiGLU inputs in FP8
and recomputes the SwiGLU output (sec. 3.3.3): that is the ``moe_act`` module in an FP8 job.

What recomputing a module costs is its forward work again during the backward: GEMM FLOPs
(``mla_up_proj``, ``mlp``, ``moe``, ``shared_experts``), attention-score FLOPs (``core_attn``)
or memory-bound traffic (``layernorm``, ``moe_act``), and for ``moe`` the dispatch and combine
again (``expert.py``).

``alternate_matmuls`` (torchtitan's per-op selective checkpointing, ``solver.layout_options``)
keeps the layer's input, the attention kernel's output and the outputs of the odd-numbered
matmuls in execution order -- for a layer with separate Q, K and V projections and an MLP of
gate, up and down (torchtitan's Llama): Q, V, the gate and the down projection -- and
recomputes the even ones (K, the output projection, the up projection; for a plain MLP its
second matmul, the same FLOPs) with every norm, RoPE and activation between them. In an MoE
layer the routed experts run as grouped matmuls, which its policy does not save
(``_save_list`` holds ``aten.mm`` and the attention kernels only): the whole MoE block is
recomputed, its dispatch and combine too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solver.layout_options import ALTERNATE_BIT, FULL_BIT, MODULE_BIT
from solver.specs import ModelSpec
from solver.stepmodel.flops import (
    attention_keys,
    mlp_matmul_weights,
    projection_widths,
    score_width,
)

LN = MODULE_BIT["layernorm"]
CORE_ATTN = MODULE_BIT["core_attn"]
MLA_UP = MODULE_BIT["mla_up_proj"]
MOE_ACT = MODULE_BIT["moe_act"]
MLP = MODULE_BIT["mlp"]
MOE = MODULE_BIT["moe"]
SHARED = MODULE_BIT["shared_experts"]


@dataclass(frozen=True)
class Part:
    """Bytes per token one layer stores, and the modules whose recomputation drops them."""

    name: str
    bytes_per_token: float
    dropped_by: int = 0  # bit mask of modules (full recomputation drops everything)
    sequence: bool = False  # split over tensor-parallel ranks only by sequence parallelism


@dataclass(frozen=True)
class RecomputeCost:
    """Forward work per token that recomputing one module repeats in the backward."""

    matmul_flops: float = 0.0  # at the linear-layer rate
    expert_flops: float = 0.0  # routed-expert GEMMs, at the grouped-GEMM rate
    score_flops: float = 0.0  # attention scores, at the attention rate
    membound_bytes: float = 0.0  # memory-bound traffic, at HBM bandwidth


def _attention_parts(m: ModelSpec, seq_len: int, linear_in: float, flash: bool,
                     mask: float) -> list[Part]:
    h = m.hidden
    q_w, k_w, v_w = projection_widths(m)
    if m.uses_mla:
        latent = m.q_lora_rank + m.kv_lora_rank
        mla = [Part("mla_latent_norm_in", 2.0 * (latent + m.qk_rope_head_dim)),
               Part("mla_latent_in", linear_in * latent, LN)]
    else:
        mla = []
    parts = [Part("attn_norm_in", 2.0 * h, sequence=True),
             Part("qkv_in", linear_in * h, LN, sequence=True), *mla,
             Part("qkv", 2.0 * (q_w + k_w + v_w), MLA_UP if m.uses_mla else 0)]
    if not flash:
        # The softmax output (2 bytes per score); with dropout also its mask (1) and output (2).
        parts.append(Part("scores", (2.0 + 3.0 * mask) * m.heads * seq_len, CORE_ATTN))
    out_w = m.heads * (m.v_head_dim if m.uses_mla else m.head_dim)
    parts += [Part("attn_out", linear_in * out_w), Part("attn_mask", mask * h, sequence=True)]
    return parts


def _mlp_parts(m: ModelSpec, linear_in: float, mask: float) -> list[Part]:
    h, f = m.hidden, m.ffn_hidden
    fc1 = (4.0 if m.gated_mlp else 2.0) * f
    return [Part("mlp_norm_in", 2.0 * h, sequence=True),
            Part("mlp_in", linear_in * h, LN, sequence=True),
            Part("mlp_fc1_out", fc1, MLP), Part("mlp_act_out", linear_in * f, MLP),
            Part("mlp_mask", mask * h, sequence=True)]


def _moe_parts(m: ModelSpec, linear_in: float, routed: float, mask: float) -> list[Part]:
    h, f = m.hidden, m.moe_ffn_hidden
    # BF16 gate and up outputs; DeepSeek-V3 caches the SwiGLU input in FP8 when its output is
    # recomputed (sec. 3.3.3): with moe_act in an FP8 job the input is 1 byte, see
    # ``stored_bytes``.
    fc1 = (4.0 if m.gated_mlp else 2.0) * f
    return [
        Part("moe_norm_in", 2.0 * h, sequence=True),
        Part("moe_in", linear_in * h, LN | MOE, sequence=True),
        Part("router_logits", 4.0 * m.experts, MOE),
        Part("expert_in", routed * linear_in * h, MOE),
        Part("expert_fc1_out", routed * fc1, MOE),
        Part("expert_act_out", routed * linear_in * f, MOE_ACT | MOE),
        Part("shared_fc1_out", m.shared_experts * fc1, SHARED | MOE),
        Part("shared_act_out", m.shared_experts * linear_in * f, SHARED | MOE),
        Part("moe_mask", mask * h, sequence=True),
    ]


@dataclass(frozen=True)
class LayerActivations:
    """The parts of one layer kind, and the FP8 saving of cached SwiGLU inputs."""

    parts: tuple[Part, ...]
    fp8_swiglu_saving: float  # bytes per token saved when moe_act runs in an FP8 job
    alternate_bytes: float  # bytes per token kept under alternate_matmuls

    @property
    def total(self) -> float:
        return sum(p.bytes_per_token for p in self.parts)

    @property
    def sequence_total(self) -> float:
        """Bytes of the parts only sequence parallelism splits over tensor-parallel ranks."""
        return sum(p.bytes_per_token for p in self.parts if p.sequence)

    def stored(self, mask: np.ndarray, cp: np.ndarray,
               replicas: np.ndarray | int = 1) -> np.ndarray:
        """Bytes per token kept under each recompute mask (full keeps only the layer input,
        counted by the caller; alternate matmuls keep ``alternate_bytes``, the layer input
        included). Context parallelism shortens the scores' rows to ``s/cp``. ``replicas``
        multiplies the parts only sequence parallelism splits: ``tp`` without it, so that the
        caller's division by ``tp`` leaves them whole (Korthikanti et al. 2022, Table 2: the
        ``10`` of ``sbh(10 + 24/t)``)."""
        mask = np.asarray(mask)
        if mask.size and mask.min() == mask.max():  # one mask for every layout: no sort
            masks, index = mask.reshape(-1)[:1], np.zeros(mask.shape, np.int64)
        else:
            masks, index = np.unique(mask, return_inverse=True)
        plain = np.zeros(masks.size)
        sequence = np.zeros(masks.size)
        scores = np.zeros(masks.size)
        for part in self.parts:
            kept = np.where((masks & part.dropped_by) == 0, part.bytes_per_token, 0.0)
            if part.name == "scores":
                scores = scores + kept
            elif part.sequence:
                sequence = sequence + kept
            else:
                plain = plain + kept
        plain = plain - np.where((masks & MOE_ACT) != 0, self.fp8_swiglu_saving, 0.0)
        full = (masks & FULL_BIT) != 0
        alternate = (masks & ALTERNATE_BIT) != 0
        plain = np.where(full, 0.0, np.where(alternate, self.alternate_bytes, plain))
        sequence = np.where(full | alternate, 0.0, sequence)
        scores = np.where(full | alternate, 0.0, scores)
        index = index.reshape(np.shape(mask))
        return plain[index] + replicas * sequence[index] + scores[index] / cp


def layer_activations(m: ModelSpec, seq_len: int, *, moe: bool, fp8: bool, flash: bool,
                      routed: float, dropout: bool = True) -> LayerActivations:
    """Parts of a dense (``moe`` False) or MoE layer; ``routed`` copies of each token reach
    the experts (``top_k`` x load factor). Without ``dropout`` no mask is stored (PyTorch's
    dropout at rate 0 returns its input; flash attention never stores one)."""
    linear_in = 1.0 if fp8 else 2.0
    mask = 1.0 if dropout else 0.0
    attention = _attention_parts(m, seq_len, linear_in, flash, mask)
    if moe:
        parts = attention + _moe_parts(m, linear_in, routed, mask)
        fc1 = (4.0 if m.gated_mlp else 2.0) * m.moe_ffn_hidden
        saving = routed * fc1 / 2.0 if fp8 else 0.0
    else:
        parts = attention + _mlp_parts(m, linear_in, mask)
        saving = 0.0
    return LayerActivations(tuple(parts), saving, alternate_kept(m, moe=moe))


def alternate_kept(m: ModelSpec, *, moe: bool) -> float:
    """BF16 bytes per token a layer keeps under ``alternate_matmuls``: its input (``2h``),
    the query and value projections, the attention kernel's output (the query's width) and,
    in a dense layer, the MLP's first matmul output (the gate, ``2f``) and its last (``2h``);
    in an MoE layer the router's FP32 logits. Matmul outputs are BF16 in FP8 training too."""
    q_w, _, v_w = projection_widths(m)
    kept = 2.0 * (m.hidden + q_w + v_w + q_w)
    if moe:
        return kept + 4.0 * m.experts
    return kept + 2.0 * (m.ffn_hidden + m.hidden)


def recompute_costs(m: ModelSpec, seq_len: int, *, moe: bool, fp8: bool, routed: float
                    ) -> dict[int, RecomputeCost]:
    """Forward work per token each module repeats, for a dense or an MoE layer (attention
    scores counted without the causal discount, as FLOP counts are; ``compute.py`` applies
    it to the time)."""
    h = m.hidden
    linear_in = 1.0 if fp8 else 2.0
    score_flops = 2.0 * attention_keys(m, seq_len)[0] * score_width(m)
    costs = {CORE_ATTN: RecomputeCost(score_flops=score_flops)}
    norms = 2.0 * (2.0 + linear_in) * h  # read each norm's input, write its output
    if m.uses_mla:
        latent = m.q_lora_rank + m.kv_lora_rank
        norms += (2.0 + linear_in) * latent
        up = (m.q_lora_rank * m.heads * (m.head_dim + m.qk_rope_head_dim)
              + m.kv_lora_rank * m.heads * (m.head_dim + m.v_head_dim))
        costs[MLA_UP] = RecomputeCost(matmul_flops=2.0 * up)
    costs[LN] = RecomputeCost(membound_bytes=norms)
    q_w, k_w, _ = projection_widths(m)
    # alternate matmuls: K and the output projection again, the norms too
    alternate = RecomputeCost(matmul_flops=2.0 * h * (k_w + q_w), membound_bytes=norms)
    if moe:
        f = m.moe_ffn_hidden
        fc1 = (4.0 if m.gated_mlp else 2.0) * f
        expert = 2.0 * mlp_matmul_weights(m, f)
        costs[MOE_ACT] = RecomputeCost(membound_bytes=routed * (fc1 / 2 + linear_in * f))
        costs[SHARED] = RecomputeCost(matmul_flops=m.shared_experts * expert)
        costs[MOE] = RecomputeCost(matmul_flops=m.shared_experts * expert + 2.0 * h * m.experts,
                                   expert_flops=routed * expert)
        # ... and the whole MoE block (its grouped matmuls are never saved)
        costs[ALTERNATE_BIT] = RecomputeCost(
            matmul_flops=alternate.matmul_flops + costs[MOE].matmul_flops,
            expert_flops=costs[MOE].expert_flops,
            membound_bytes=alternate.membound_bytes + costs[MOE_ACT].membound_bytes)
    else:
        costs[MLP] = RecomputeCost(matmul_flops=2.0 * h * m.ffn_hidden * (
            2 if m.gated_mlp else 1), membound_bytes=(4.0 + linear_in) * m.ffn_hidden)
        # ... and the MLP's up (or second) projection with its activation
        costs[ALTERNATE_BIT] = RecomputeCost(
            matmul_flops=alternate.matmul_flops + 2.0 * h * m.ffn_hidden,
            membound_bytes=alternate.membound_bytes + costs[MLP].membound_bytes)
    return costs


__all__ = ["LayerActivations", "Part", "RecomputeCost", "layer_activations", "recompute_costs"]
