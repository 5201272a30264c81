"""Megatron-LM: the model's architecture as ``megatron/training/arguments.py`` flags (shape,
attention, MoE routing, RoPE, windows); ``megatron.py`` writes the plan around them."""

from __future__ import annotations

from typing import Any

from solver.specs import ModelSpec, TrainingJob


def model_flags(m: ModelSpec, job: TrainingJob, arg: Any, note: Any, ep: int) -> None:
    arg("--num-layers", m.layers)
    arg("--hidden-size", m.hidden)
    arg("--num-attention-heads", m.heads)
    if m.uses_mla:
        arg("--multi-latent-attention")
        if m.q_lora_rank:
            arg("--q-lora-rank", m.q_lora_rank)
        arg("--kv-lora-rank", m.kv_lora_rank)
        arg("--qk-head-dim", m.head_dim)
        arg("--qk-pos-emb-head-dim", m.qk_rope_head_dim)
        arg("--v-head-dim", m.v_head_dim)
    else:
        if m.kv_heads != m.heads:
            arg("--group-query-attention")
            arg("--num-query-groups", m.kv_heads)
        if m.head_dim * m.heads != m.hidden:
            arg("--kv-channels", m.head_dim)
    arg("--ffn-hidden-size", m.ffn_hidden)
    if m.is_moe:
        arg("--num-experts", m.experts)
        arg("--moe-router-topk", m.top_k)
        arg("--moe-ffn-hidden-size", m.moe_ffn_hidden)
        if m.shared_experts:
            arg("--moe-shared-expert-intermediate-size", m.shared_experts * m.moe_ffn_hidden)
        if m.dense_layers:
            arg("--moe-layer-freq", _moe_pattern(m))
        arg("--moe-grouped-gemm")
        if ep > 1:
            if job.moe_dispatcher == "deepep":
                arg("--moe-token-dispatcher-type", "flex")
                arg("--moe-enable-deepep")
            else:
                arg("--moe-token-dispatcher-type", "alltoall")
            if job.ep_comm_overlap:
                arg("--overlap-moe-expert-parallel-comm")
        _megatron_router(m, arg, note)
        if m.capacity_factor > 0:
            arg("--moe-expert-capacity-factor", m.capacity_factor)
        else:
            note(f"routing: dropless (Megatron-LM's default), the busiest expert rank at "
                 f"{job.moe_imbalance:g}x the mean load")
    arg("--seq-length", job.seq_len)
    arg("--max-position-embeddings", max(job.seq_len, m.seq_len))
    arg("--position-embedding-type", "rope" if m.position_embedding == "rope"
        else "learned_absolute")
    if m.position_embedding == "rope":
        _megatron_rope(m, arg, note)
    if m.norm == "rmsnorm":
        arg("--normalization", "RMSNorm")
    arg("--norm-epsilon", f"{m.norm_eps:g}")
    if m.qk_norm:
        arg("--qk-layernorm")
    if m.gated_mlp:
        arg("--swiglu")
    if not m.linear_bias:
        arg("--disable-bias-linear")
    if not m.tied_embeddings:
        arg("--untie-embeddings-and-output-weights")
    note(f"vocabulary: {m.vocab:,} tokens come from your tokenizer (--tokenizer-type, "
         "--tokenizer-model); Megatron-LM pads it to a multiple of "
         "--make-vocab-size-divisible-by x TP")
    if m.mtp_layers:
        arg("--mtp-num-layers", m.mtp_layers)
    if m.sliding_window:
        _megatron_window(m, arg, note)


def _megatron_window(m: ModelSpec, arg: Any, note: Any) -> None:
    """Sliding-window attention: ``--window-size W,0`` (W keys to the left, none to the right)
    and, when some layers attend fully, ``--window-attn-skip-freq``: N for one full layer
    after every N - 1 windowed ones, else a list with 1 for each windowed layer (Megatron-LM
    ``arguments.py``, ``--window-size`` and ``--window-attn-skip-freq``)."""
    arg("--window-size", f"{m.sliding_window},0")
    full = m.layers - m.sliding_window_layers
    if not full:
        return
    if m.layers % full == 0:
        arg("--window-attn-skip-freq", m.layers // full)
    else:
        arg("--window-attn-skip-freq",
            f"[1]*{m.sliding_window_layers}+[0]*{full}")
        note(f"sliding window: the {m.sliding_window_layers} windowed layers are put first; "
             "give your model's own pattern to --window-attn-skip-freq")


def _megatron_rope(m: ModelSpec, arg: Any, note: Any) -> None:
    """The RoPE base and context extension, in Megatron-LM's names.

    ``--rotary-base`` is an ``int`` argument at the followed commit. Llama 3.1's scaling is
    ``--use-rope-scaling --rope-scaling-factor F`` (``rotary_pos_embedding.py``: original length
    8192, frequency factors 1 and 4 built in). YaRN exists for MLA only (``--rope-type yarn``,
    ``--rotary-scaling-factor``; ``MLATransformerConfig`` fixes the original length at 4096 and
    beta 32/1) and MLA takes YaRN by default, so plain RoPE with MLA is ``--rope-type rope``
    with ``--no-rope-fusion`` (``MLATransformerConfig`` refuses rope fusion without YaRN).
    """
    theta = m.rope_theta
    if theta == int(theta):
        arg("--rotary-base", int(theta))
    else:
        arg("--rotary-base", round(theta))
        note(f"RoPE base {theta:g}: Megatron-LM's --rotary-base takes an integer; rounded")
    kind, factor, original = m.rope_scaling, m.rope_scaling_factor, m.rope_original_seq_len
    if kind == "none":
        if m.uses_mla:
            note("plain RoPE: MLA takes YaRN unless --rope-type rope, and its rope fusion "
                 "only works with YaRN")
            arg("--rope-type", "rope")
            arg("--no-rope-fusion")
        return
    if kind == "llama3":
        arg("--use-rope-scaling")
        arg("--rope-scaling-factor", f"{factor:g}")
        if original != 8192:
            note(f"Llama 3.1 RoPE scaling: Megatron-LM builds in an original length of 8192, "
                 f"the model's is {original}; the frequencies differ")
    elif kind == "yarn" and m.uses_mla:
        arg("--rope-type", "yarn")
        arg("--rotary-scaling-factor", f"{factor:g}")
        note("YaRN's attention scale: --mscale and --mscale-all-dim stay at Megatron-LM's "
             "defaults (1.0 and 0.0); set them to config.json's rope_scaling.mscale and "
             "mscale_all_dim (DeepSeek-V3: 1.0 and 1.0)")
        if original != 4096:
            note(f"YaRN: Megatron-LM's MLA fixes the original length at 4096 (no flag), the "
                 f"model's is {original}; the frequencies differ")
    elif kind == "linear" and factor == int(factor):
        arg("--rotary-seq-len-interpolation-factor", int(factor))
    else:
        note(f"RoPE scaling {kind} (factor {factor:g}): no Megatron-LM flag for it with this "
             "attention at the followed commit; plain RoPE is used and long-context "
             "positions differ from the model's")


def _megatron_router(m: ModelSpec, arg: Any, note: Any) -> None:
    """The MoE router: score function, top-k normalisation, expert bias, scaling, groups and
    the balancing loss.

    Megatron-LM's ``topk_routing_with_score_function`` (``moe_utils.py``): softmax after top-k
    (the default) gives weights that sum to 1, ``--moe-router-pre-softmax`` a softmax over all
    experts before top-k (not renormalised); sigmoid scores are renormalised over the top-k
    whenever k > 1; the scaling factor multiplies the weights in every case.
    ``TransformerConfig`` allows the expert bias with sigmoid scores only and refuses softmax
    after top-k with k = 1.
    """
    arg("--moe-router-score-function", m.router_score)
    if m.router_score == "softmax":
        if not m.router_norm_topk or m.top_k == 1:
            arg("--moe-router-pre-softmax")
            if m.router_norm_topk:
                note("top-1 routing: Megatron-LM needs --moe-router-pre-softmax (the weight is "
                     "the softmax probability, not 1)")
    elif not m.router_norm_topk and m.top_k > 1:
        note("sigmoid routing without renormalised top-k weights: Megatron-LM always "
             "renormalises sigmoid scores over the top-k; the weights differ")
    if m.router_expert_bias:
        if m.router_score == "sigmoid":
            arg("--moe-router-enable-expert-bias")
        else:
            note("the expert bias of aux-loss-free balancing: Megatron-LM allows it with "
                 "sigmoid scores only; not written, so routing differs from the model's")
    if m.router_scaling != 1.0:
        arg("--moe-router-topk-scaling-factor", f"{m.router_scaling:g}")
    if m.expert_groups and m.expert_group_topk:
        arg("--moe-router-num-groups", m.expert_groups)
        arg("--moe-router-group-topk", m.expert_group_topk)
    arg("--moe-router-load-balancing-type", m.router_balance)
    if m.router_balance != "none":
        if m.router_aux_loss_coeff:
            arg("--moe-aux-loss-coeff", f"{m.router_aux_loss_coeff:g}")
        else:
            note(f"{m.router_balance}: the model file gives no coefficient; Megatron-LM's "
                 "default --moe-aux-loss-coeff 0 turns the loss off")


def _moe_pattern(m: ModelSpec) -> str:
    """Megatron-LM ``--moe-layer-freq`` list expression: leading dense layers, then MoE."""
    return f"([0]*{m.dense_layers}+[1]*{m.moe_layers})"


__all__ = ["model_flags"]
