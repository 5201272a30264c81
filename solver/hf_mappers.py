"""How each Hugging Face ``model_type`` maps its ``config.json`` keys to ``ModelSpec`` fields.

``HfConfig`` gives typed access to one ``config.json`` (errors name the Hugging Face key); one
function per model family reads the shape (``HF_MAPPERS``). The facts every family states the
same way (RoPE, norm epsilon, dropout, the planned sequence length) and the entry point
``model_from_hf_config`` are ``solver.hf_config``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from solver.errors import SpecError
from solver.validate import as_bool, as_float, as_int


def shown(value: Any) -> str:
    """A value as an error shows it: its ``repr``, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class HfConfig:
    """Typed access to one ``config.json``: errors name the Hugging Face key."""

    def __init__(self, data: Mapping[str, Any], where: str, model_type: str) -> None:
        self.data = data
        self.where = where
        self.model_type = model_type

    def _get(self, key: str, default: Any, required: bool) -> Any:
        value = self.data.get(key)
        if value is None:  # absent, or null in the JSON
            if required:
                raise SpecError(f"{self.where}: missing key {key!r} "
                                f"(required for model_type {self.model_type!r})")
            return default
        return value

    def integer(self, key: str, default: int | None = None, *, minimum: int = 1) -> int:
        value = self._get(key, default, default is None)
        try:
            return as_int(key, value, minimum=minimum)
        except SpecError as err:
            raise SpecError(f"{self.where}: {err}") from None

    def flag(self, key: str, default: bool) -> bool:
        value = self._get(key, default, False)
        try:
            return as_bool(key, value)
        except SpecError as err:
            raise SpecError(f"{self.where}: {err}") from None

    def number(self, key: str, default: float, *, minimum: float = 0.0, strict: bool = True,
               maximum: float = 1e30) -> float:
        """A float under ``key`` (absent or null: ``default``); errors name the key."""
        return hf_number(key, self._get(key, default, False), self.where, minimum=minimum,
                         strict=strict, maximum=maximum)

    def reject(self, key: str, expected: str) -> SpecError:
        return SpecError(f"{self.where}: {key}: expected {expected} for gpuplan, got "
                         f"{shown(self.data.get(key))}")


def hf_number(key: str, value: Any, where: str, *, minimum: float = 0.0,
              strict: bool = True, maximum: float = 1e30) -> float:
    """A float under ``key`` of a ``config.json``; errors name ``where`` and the key."""
    try:
        return as_float(key, value, minimum=minimum, strict=strict, maximum=maximum)
    except SpecError as err:
        raise SpecError(f"{where}: {err}") from None


def _router_choice(c: HfConfig, key: str, default: str, choices: tuple[str, ...]) -> str:
    value = c.data.get(key)
    value = default if value is None else value
    if not isinstance(value, str) or value not in choices:
        raise c.reject(key, "one of " + "|".join(choices))
    return value


def _rope_decoder(c: HfConfig) -> dict[str, Any]:
    """The keys Llama-family and DeepSeek configs share: the shape under transformers' common
    names, SwiGLU, RMSNorm, RoPE, untied embeddings by default."""
    heads = c.integer("num_attention_heads")
    return {
        "layers": c.integer("num_hidden_layers"),
        "hidden": c.integer("hidden_size"),
        "heads": heads,
        "kv_heads": c.integer("num_key_value_heads", heads),
        "ffn_hidden": c.integer("intermediate_size"),
        "vocab": c.integer("vocab_size"),
        # The longest context the checkpoint supports; solver.hf_config plans a shorter one.
        "seq_len": c.integer("max_position_embeddings"),
        "tied_embeddings": c.flag("tie_word_embeddings", False),
        "gated_mlp": True,
        "norm": "rmsnorm",
        "position_embedding": "rope",
    }


def _window(c: HfConfig) -> dict[str, Any]:
    """Sliding-window attention: ``sliding_window`` keys (absent or null: none; Mistral 7B
    v0.1 4096, later Mistral configs null), for Qwen2 only with ``use_sliding_window`` and on
    the layers from ``max_window_layers`` on (transformers' Qwen2 attention), and on the
    layers ``layer_types`` calls ``"sliding_attention"`` when a config lists them (gpt-oss,
    Gemma 3: the newer transformers configs)."""
    if not c.flag("use_sliding_window", True):
        return {}
    window = c.integer("sliding_window", 0, minimum=0)
    if not window:
        return {}
    types = c.data.get("layer_types")
    if isinstance(types, list) and types:
        layers = sum(1 for kind in types if kind == "sliding_attention")
    elif c.model_type.startswith("qwen2") and "max_window_layers" in c.data:
        layers = c.integer("num_hidden_layers") - c.integer("max_window_layers", minimum=0)
    else:
        return {"sliding_window": window}
    return {"sliding_window": window, "sliding_window_layers": layers} if layers > 0 else {}


def _llama_like(c: HfConfig) -> dict[str, Any]:
    """Llama, Mistral and Qwen2."""
    return {
        **_rope_decoder(c),
        **_window(c),
        "head_dim": c.integer("head_dim", 0, minimum=0),  # Mistral Nemo: 128 != hidden / heads
        # Llama's optional biases: attention_bias puts biases on q, k, v and o; mlp_bias on the
        # MLP. ModelSpec has one switch for all linear layers: on only when both are.
        "linear_bias": c.flag("attention_bias", False) and c.flag("mlp_bias", False),
    }


def _from_llama(c: HfConfig) -> dict[str, Any]:
    return _llama_like(c)


def _from_qwen2(c: HfConfig) -> dict[str, Any]:
    # Qwen2 has biases on the q, k and v projections only (not o, not the MLP). ModelSpec's
    # linear_bias covers every linear layer, so it stays off: the count misses
    # layers * (heads + 2 * kv_heads) * head_dim parameters (under 0.01% for Qwen2-7B), which
    # is closer than turning on the o-projection and MLP biases Qwen2 does not have.
    return _llama_like(c)


def _from_mixtral(c: HfConfig) -> dict[str, Any]:
    spec = _llama_like(c)
    # Mixtral's router: softmax over the experts' logits, top-k kept and renormalised to sum
    # to 1 (arXiv:2401.04088 eq. 1, Softmax(TopK(x W_g)); transformers' MixtralSparseMoeBlock
    # divides the top-k weights by their sum unconditionally), with the Switch balancing
    # loss weighted by router_aux_loss_coef.
    spec.update(experts=c.integer("num_local_experts"), top_k=c.integer("num_experts_per_tok"),
                moe_ffn_hidden=spec["ffn_hidden"], router_score="softmax",
                router_norm_topk=True, router_balance="aux_loss",
                router_aux_loss_coeff=c.number("router_aux_loss_coef", 0.0, strict=False))
    return spec


def _from_qwen2_moe(c: HfConfig) -> dict[str, Any]:
    spec = _llama_like(c)  # q/k/v biases left out, as for qwen2
    if c.integer("decoder_sparse_step", 1) != 1:
        raise c.reject("decoder_sparse_step", "1 (every layer a MoE layer)")
    if c.data.get("mlp_only_layers"):
        raise c.reject("mlp_only_layers", "an empty list")
    expert = c.integer("moe_intermediate_size")
    shared = c.integer("shared_expert_intermediate_size", 0, minimum=0)
    if shared % expert:
        raise c.reject("shared_expert_intermediate_size",
                       f"a multiple of moe_intermediate_size={expert}")
    # The shared expert is one MLP of width shared_expert_intermediate_size: counted as
    # shared_width / routed_width experts of the routed width (same parameters); its 1-wide
    # sigmoid gate (hidden parameters per layer) is not counted.
    spec.update(experts=c.integer("num_experts"), top_k=c.integer("num_experts_per_tok"),
                moe_ffn_hidden=expert, shared_experts=shared // expert,
                router_score="softmax", router_norm_topk=c.flag("norm_topk_prob", False),
                router_balance="aux_loss",
                router_aux_loss_coeff=c.number("router_aux_loss_coef", 0.0, strict=False))
    return spec


def _from_deepseek(c: HfConfig) -> dict[str, Any]:
    """DeepSeek-V2 and V3: MLA attention, leading dense layers, shared + routed experts.

    The multi-token-prediction layers of V3 (``num_nextn_predict_layers``) become
    ``mtp_layers``: trained (their FLOPs and memory count) but not part of the main model's
    parameter count, as in DeepSeek's own 671B figure. Group-limited routing: ``n_group`` ->
    ``expert_groups``, ``topk_group`` -> ``expert_group_topk``. Router: ``scoring_func``
    (``"softmax"`` when absent, DeepSeek-V2) -> ``router_score``; ``topk_method: "noaux_tc"``
    (V3's ``e_score_correction_bias``) -> ``router_expert_bias``; ``routed_scaling_factor``;
    ``norm_topk_prob``; ``seq_aux`` (true when absent, as DeepSeek's own config class) ->
    ``router_balance = "seq_aux_loss"``; ``aux_loss_alpha``. ``qk_norm``: always on, the
    ``kv_a_layernorm`` (and with ``q_lora_rank`` the ``q_a_layernorm``) of MLA.
    """
    spec: dict[str, Any] = {
        **_rope_decoder(c),
        "linear_bias": False,
        "head_dim": c.integer("qk_nope_head_dim"),
        "qk_rope_head_dim": c.integer("qk_rope_head_dim"),
        "v_head_dim": c.integer("v_head_dim"),
        "q_lora_rank": c.integer("q_lora_rank", 0, minimum=0),  # null: full-rank query (V2-Lite)
        "kv_lora_rank": c.integer("kv_lora_rank"),
        "qk_norm": True,
    }
    if c.flag("attention_bias", False):
        raise c.reject("attention_bias", "false (MLA with biases is not modelled)")
    experts = c.integer("n_routed_experts", 1)
    if experts > 1:
        if c.integer("moe_layer_freq", 1) != 1:
            raise c.reject("moe_layer_freq", "1 (every layer after the dense ones a MoE layer)")
        spec.update(experts=experts, top_k=c.integer("num_experts_per_tok"),
                    moe_ffn_hidden=c.integer("moe_intermediate_size"),
                    shared_experts=c.integer("n_shared_experts", 0, minimum=0),
                    dense_layers=c.integer("first_k_dense_replace", 0, minimum=0))
        if c.data.get("topk_method") != "greedy":  # V2-Lite's greedy routing ignores groups
            spec.update(expert_groups=c.integer("n_group", 0, minimum=0),
                        expert_group_topk=c.integer("topk_group", 0, minimum=0))
        spec.update(
            router_score=_router_choice(c, "scoring_func", "softmax", ("softmax", "sigmoid")),
            router_expert_bias=c.data.get("topk_method") == "noaux_tc",
            router_scaling=c.number("routed_scaling_factor", 1.0, maximum=1e3),
            router_norm_topk=c.flag("norm_topk_prob", False),
            router_balance="seq_aux_loss" if c.flag("seq_aux", True) else "aux_loss",
            router_aux_loss_coeff=c.number("aux_loss_alpha", 0.0, strict=False, maximum=1e3))
    spec["mtp_layers"] = c.integer("num_nextn_predict_layers", 0, minimum=0)
    return spec


def _from_gpt2(c: HfConfig) -> dict[str, Any]:
    hidden = c.integer("n_embd")
    positions = c.integer("n_positions", c.integer("n_ctx", 0, minimum=0) or None)
    return {
        "layers": c.integer("n_layer"),
        "hidden": hidden,
        "heads": c.integer("n_head"),
        "ffn_hidden": c.integer("n_inner", 4 * hidden),  # null means 4 * n_embd
        "vocab": c.integer("vocab_size"),
        "seq_len": positions,
        "tied_embeddings": c.flag("tie_word_embeddings", True),
        "gated_mlp": False,
        "norm": "layernorm",
        "position_embedding": "learned",
        "linear_bias": True,
    }


def _from_opt(c: HfConfig) -> dict[str, Any]:
    hidden = c.integer("hidden_size")
    if c.integer("word_embed_proj_dim", hidden) != hidden:
        # OPT-350m embeds in 512 dimensions and projects in and out of the 1024-wide stack:
        # two extra matrices ModelSpec cannot describe.
        raise c.reject("word_embed_proj_dim", f"equal to hidden_size={hidden}")
    # OPT's learned position table has max_position_embeddings + 2 rows (its positions start
    # at offset 2): the 2 * hidden extra parameters are not counted.
    return {
        "layers": c.integer("num_hidden_layers"),
        "hidden": hidden,
        "heads": c.integer("num_attention_heads"),
        "ffn_hidden": c.integer("ffn_dim"),
        "vocab": c.integer("vocab_size"),
        "seq_len": c.integer("max_position_embeddings"),
        "tied_embeddings": c.flag("tie_word_embeddings", True),
        "gated_mlp": False,
        "norm": "layernorm",
        "position_embedding": "learned",
        "linear_bias": c.flag("enable_bias", True),
    }


HF_MAPPERS: dict[str, Callable[[HfConfig], dict[str, Any]]] = {
    "deepseek_v2": _from_deepseek,
    "deepseek_v3": _from_deepseek,
    "gpt2": _from_gpt2,
    "llama": _from_llama,
    "mistral": _from_llama,
    "mixtral": _from_mixtral,
    "opt": _from_opt,
    "qwen2": _from_qwen2,
    "qwen2_moe": _from_qwen2_moe,
}

#: ``architectures`` entries that identify a model type when ``model_type`` is absent.
HF_ARCHITECTURES = {
    "DeepseekV2ForCausalLM": "deepseek_v2",
    "DeepseekV3ForCausalLM": "deepseek_v3",
    "GPT2LMHeadModel": "gpt2",
    "LlamaForCausalLM": "llama",
    "MistralForCausalLM": "mistral",
    "MixtralForCausalLM": "mixtral",
    "OPTForCausalLM": "opt",
    "Qwen2ForCausalLM": "qwen2",
    "Qwen2MoeForCausalLM": "qwen2_moe",
}



__all__ = ["HF_ARCHITECTURES", "HF_MAPPERS", "HfConfig", "hf_number", "shown"]
