"""The shape of the model to train: ``ModelSpec`` and the choices its fields take.

Split from ``solver.specs``, which re-exports every name here (docs/interface.md, "Library").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from solver.validate import as_bool, as_choice, as_float, as_int, as_name, fail

#: The highest dropout rate a job may give (``TrainingJob.dropout``).
DROPOUT_MAX = 0.99
NORMS = ("layernorm", "rmsnorm")
POSITION_EMBEDDINGS = ("learned", "rope")
#: RoPE context-extension schemes (``ModelSpec.rope_scaling``), as config.json's
#: ``rope_scaling.rope_type`` (or ``type``) names them: ``"linear"`` position interpolation
#: (Chen et al. 2023, arXiv:2306.15595), ``"dynamic"`` NTK scaling, ``"yarn"`` (Peng et al. 2023,
#: arXiv:2309.00071; DeepSeek-V2/V3), ``"llama3"`` (Llama 3.1's frequency-band scaling),
#: ``"longrope"`` (Phi-3); ``"none"``: plain RoPE.
ROPE_SCALINGS = ("none", "linear", "dynamic", "yarn", "llama3", "longrope")
#: Schemes whose frequencies depend on the pre-extension context length.
ROPE_SCALINGS_WITH_ORIGINAL = ("yarn", "llama3", "longrope")
#: How a MoE router turns logits into expert scores (``ModelSpec.router_score``).
ROUTER_SCORES = ("softmax", "sigmoid")
#: The load-balancing loss a MoE router trains with (``ModelSpec.router_balance``).
ROUTER_BALANCES = ("aux_loss", "seq_aux_loss", "none")


@dataclass(frozen=True)
class ModelSpec:
    """The shape of a decoder-only transformer.

    The first fields are the original contract's; the rest describe what exact parameter counts need
    (biases, norm kind, learned positions, MLA attention, dense leading layers of MoE models).
    ``experts == 1`` means a dense model. ``head_dim`` 0 means ``hidden // heads``.
    Multi-head latent attention (DeepSeek-V2/V3) is on when ``kv_lora_rank > 0``.
    MoE routing: ``capacity_factor`` > 0 pads every expert to that multiple of its mean load
    (GShard, Lepikhin et al. 2020); 0 is dropless routing (the most loaded expert then sets the
    pace: ``TrainingJob.moe_imbalance``). ``expert_groups`` / ``expert_group_topk``:
    group-limited routing (DeepSeek-V3 config.json ``n_group`` 8, ``topk_group`` 4: each token's
    experts lie in at most 4 of 8 groups, one group per node, so at most 4 nodes, arXiv:2412.19437
    sec. 2.1.2 and 3.2.2; Megatron-LM ``--moe-router-num-groups`` / ``--moe-router-group-topk``);
    0 = no limit. ``mtp_layers``: multi-token-prediction modules trained beside the model
    (DeepSeek-V3 sec. 2.2: one, a transformer layer plus a projection sharing the LM head), held
    by the last pipeline stage.

    Sliding-window attention: ``sliding_window`` > 0 limits each query of
    ``sliding_window_layers`` of the layers (all of them when 0) to the ``sliding_window`` most
    recent keys; the other layers attend to the whole causal prefix (Mistral 7B, Jiang et al.
    2023, arXiv:2310.06825 sec. 2: every layer, 4,096; Gemma 2, arXiv:2408.00118 sec. 2: every
    other layer, 4,096; gpt-oss-120b, its config.json ``layer_types``: 18 of 36 layers, 128
    tokens). 0: full causal attention everywhere. The step model averages the attention work
    over the layers (``stepmodel/flops.py``); which layers carry the window matters only for
    the exports.

    Architecture facts a launcher needs (they change no count, FLOP or byte of the step model,
    except ``dropout``, which is the default of ``TrainingJob.dropout``); each is read from the
    Hugging Face ``config.json`` key named here (``solver.model_files``):

    - ``rope_theta``: the RoPE base (``rope_theta``; Su et al. 2021, arXiv:2104.09864, used
      10000; Llama 3 500000, arXiv:2407.21783 Table 3; Megatron-LM ``--rotary-base``). Read
      only with ``position_embedding = "rope"``.
    - ``rope_scaling``, ``rope_scaling_factor``, ``rope_original_seq_len``: the context
      extension in ``rope_scaling`` (``rope_type``/``type`` among ``ROPE_SCALINGS``, ``factor``,
      ``original_max_position_embeddings``): Llama 3.1 ``"llama3"``, factor 8, original 8192;
      DeepSeek-V3 ``"yarn"``, factor 40, original 4096 (arXiv:2412.19437 sec. 4.3). ``"none"``
      takes factor 1 and original 0; ``"yarn"``, ``"llama3"`` and ``"longrope"`` need the
      original length.
    - ``norm_eps``: the epsilon of every LayerNorm/RMSNorm (``rms_norm_eps``,
      ``layer_norm_epsilon``, ``layer_norm_eps``; Megatron-LM ``--norm-epsilon``, default 1e-5).
    - ``qk_norm``: a norm on queries and keys before attention; for MLA models the norms of
      the query and key/value latents (``q_a_layernorm``, ``kv_a_layernorm`` in DeepSeek's
      modelling code), which Megatron-LM builds with ``--qk-layernorm``
      (``gpt_layer_specs.py``: MLA up-projections fused with a norm when ``qk_layernorm``; its
      DeepSeek-V3 example ``examples/megatron_fsdp/sbatch_mfsdp_deepseek_v3.sh`` and
      Megatron-Bridge's ``DeepSeekV3Bridge`` set it). Its parameters are not counted apart:
      the MLA latent norms are part of the MLA count already.
    - ``dropout``: the hidden and attention dropout of the model's own recipe
      (``attention_dropout``/``hidden_dropout``; GPT-2's ``resid_pdrop``; OPT's ``dropout``);
      ``TrainingJob.dropout`` takes it when the job gives none.
    - Router of an MoE model (ignored when ``experts == 1``; the defaults describe Mixtral's):
      ``router_score``, ``"softmax"`` or ``"sigmoid"`` (``scoring_func``; DeepSeek-V3 sigmoid,
      sec. 2.1.2; Megatron-LM ``--moe-router-score-function``); ``router_expert_bias``, the
      auxiliary-loss-free balancing bias added to the scores for top-k selection only
      (``topk_method: "noaux_tc"``, ``e_score_correction_bias``; sec. 2.1.2;
      ``--moe-router-enable-expert-bias``); ``router_scaling``, the factor on the routed
      experts' weights (``routed_scaling_factor``; ``--moe-router-topk-scaling-factor``);
      ``router_norm_topk``, the top-k weights renormalised to sum to 1 (``norm_topk_prob``;
      Mixtral's ``Softmax(TopK(x W_g))``, arXiv:2401.04088 eq. 1, is a renormalised top-k);
      ``router_balance``, the balancing loss: ``"aux_loss"`` over the micro-batch (Switch
      Transformer, Fedus et al. 2021), ``"seq_aux_loss"`` per sequence (``seq_aux``;
      DeepSeek-V3 eq. 17-20), ``"none"``; ``router_aux_loss_coeff``, its weight
      (``router_aux_loss_coef``, ``aux_loss_alpha``; ``--moe-aux-loss-coeff``), 0 meaning not
      given (the launcher's default then applies).
    """

    name: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int = 0
    ffn_hidden: int = 0
    vocab: int = 50257
    seq_len: int = 2048
    experts: int = 1
    top_k: int = 1
    moe_ffn_hidden: int = 0
    shared_experts: int = 0
    gated_mlp: bool = False
    tied_embeddings: bool = False
    # Beyond the original contract (all defaulted): what exact counts and memory need.
    head_dim: int = 0
    norm: str = "layernorm"
    linear_bias: bool = True
    position_embedding: str = "learned"
    dense_layers: int = 0
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    capacity_factor: float = 1.0
    expert_groups: int = 0
    expert_group_topk: int = 0
    mtp_layers: int = 0
    sliding_window: int = 0
    sliding_window_layers: int = 0
    # Architecture facts for launchers (all defaulted).
    rope_theta: float = 10000.0
    rope_scaling: str = "none"
    rope_scaling_factor: float = 1.0
    rope_original_seq_len: int = 0
    norm_eps: float = 1e-5
    qk_norm: bool = False
    dropout: float = 0.0
    router_score: str = "softmax"
    router_expert_bias: bool = False
    router_scaling: float = 1.0
    router_norm_topk: bool = False
    router_balance: str = "aux_loss"
    router_aux_loss_coeff: float = 0.0
    description: str = ""
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "name", as_name("name", self.name))
        self._check_facts()
        for name in ("layers", "hidden", "heads", "vocab", "seq_len", "experts", "top_k"):
            set_(self, name, as_int(name, getattr(self, name)))
        set_(self, "kv_heads", as_int("kv_heads", self.kv_heads or self.heads))
        set_(self, "ffn_hidden", as_int("ffn_hidden", self.ffn_hidden or 4 * self.hidden))
        if not self.head_dim and self.hidden % self.heads:
            raise fail("heads", f"a divisor of hidden={self.hidden} (or an explicit head_dim)",
                       self.heads)
        set_(self, "head_dim", as_int("head_dim", self.head_dim or self.hidden // self.heads))
        for name in ("shared_experts", "dense_layers", "q_lora_rank", "kv_lora_rank",
                     "qk_rope_head_dim", "v_head_dim", "moe_ffn_hidden", "expert_groups",
                     "expert_group_topk", "mtp_layers", "sliding_window",
                     "sliding_window_layers"):
            set_(self, name, as_int(name, getattr(self, name), minimum=0))
        self._check_window()
        for name in ("gated_mlp", "tied_embeddings", "linear_bias"):
            set_(self, name, as_bool(name, getattr(self, name)))
        as_choice("norm", self.norm, NORMS)
        as_choice("position_embedding", self.position_embedding, POSITION_EMBEDDINGS)
        set_(self, "capacity_factor", as_float("capacity_factor", self.capacity_factor,
                                               strict=False))
        if not isinstance(self.description, str):
            raise fail("description", "a text", self.description)
        if isinstance(self.sources, (str, bytes)) or not all(
                isinstance(s, str) for s in self.sources):
            raise fail("sources", "a list of citation strings", self.sources)
        set_(self, "sources", tuple(self.sources))
        if self.heads % self.kv_heads:
            raise fail("kv_heads", f"a divisor of heads={self.heads}", self.kv_heads)
        if self.kv_lora_rank == 0 and self.heads * self.head_dim < 1:
            raise fail("head_dim", "a positive size", self.head_dim)
        if self.experts > 1:
            if self.top_k > self.experts:
                raise fail("top_k", f"at most experts={self.experts}", self.top_k)
            if self.moe_ffn_hidden == 0:
                set_(self, "moe_ffn_hidden", self.ffn_hidden)
            if self.dense_layers >= self.layers:
                raise fail("dense_layers", f"fewer than layers={self.layers}", self.dense_layers)
            if self.expert_groups and self.experts % self.expert_groups:
                raise fail("expert_groups", f"a divisor of experts={self.experts}",
                           self.expert_groups)
            if self.expert_group_topk > self.expert_groups:
                raise fail("expert_group_topk", f"at most expert_groups={self.expert_groups}",
                           self.expert_group_topk)
        elif self.top_k != 1:
            raise fail("top_k", "1 for a dense model (experts=1)", self.top_k)
        if self.kv_lora_rank and not self.v_head_dim:
            set_(self, "v_head_dim", self.head_dim)

    def _check_window(self) -> None:
        if self.sliding_window_layers > self.layers:
            raise fail("sliding_window_layers", f"at most layers={self.layers}",
                       self.sliding_window_layers)
        if self.sliding_window_layers and not self.sliding_window:
            raise fail("sliding_window_layers", "0 without a sliding_window",
                       self.sliding_window_layers)
        if self.sliding_window and not self.sliding_window_layers:
            object.__setattr__(self, "sliding_window_layers", self.layers)

    def _check_facts(self) -> None:
        """Validate the launcher facts (rope, norm epsilon, dropout, router)."""
        set_ = object.__setattr__
        set_(self, "rope_theta", as_float("rope_theta", self.rope_theta))
        as_choice("rope_scaling", self.rope_scaling, ROPE_SCALINGS)
        set_(self, "rope_scaling_factor", as_float("rope_scaling_factor",
                                                   self.rope_scaling_factor, minimum=1.0,
                                                   strict=False, maximum=1e6))
        set_(self, "rope_original_seq_len", as_int("rope_original_seq_len",
                                                   self.rope_original_seq_len, minimum=0))
        if self.rope_scaling == "none":
            if self.rope_scaling_factor != 1.0:
                raise fail("rope_scaling_factor", "1 when rope_scaling is 'none'",
                           self.rope_scaling_factor)
            if self.rope_original_seq_len:
                raise fail("rope_original_seq_len", "0 when rope_scaling is 'none'",
                           self.rope_original_seq_len)
        elif self.position_embedding != "rope":
            raise fail("rope_scaling", "'none' unless position_embedding is 'rope'",
                       self.rope_scaling)
        elif self.rope_scaling in ROPE_SCALINGS_WITH_ORIGINAL and not self.rope_original_seq_len:
            raise fail("rope_original_seq_len",
                       f"the pre-extension length (> 0) with rope_scaling {self.rope_scaling!r}",
                       self.rope_original_seq_len)
        set_(self, "norm_eps", as_float("norm_eps", self.norm_eps, maximum=1.0))
        set_(self, "dropout", as_float("dropout", self.dropout, minimum=0.0, strict=False,
                                       maximum=DROPOUT_MAX))
        for name in ("qk_norm", "router_expert_bias", "router_norm_topk"):
            as_bool(name, getattr(self, name))
        as_choice("router_score", self.router_score, ROUTER_SCORES)
        as_choice("router_balance", self.router_balance, ROUTER_BALANCES)
        set_(self, "router_scaling", as_float("router_scaling", self.router_scaling,
                                              maximum=1e3))
        coeff = as_float("router_aux_loss_coeff", self.router_aux_loss_coeff, strict=False,
                         maximum=1e3)
        if coeff and self.router_balance == "none":
            raise fail("router_aux_loss_coeff", "0 when router_balance is 'none'", coeff)
        set_(self, "router_aux_loss_coeff", coeff)

    @property
    def is_moe(self) -> bool:
        return self.experts > 1

    @property
    def expert_biases(self) -> bool:
        """A mixture of experts whose experts have biases (``linear_bias``: gpt-oss), which
        ``TrainingJob.unfused_expert_bias`` concerns."""
        return self.is_moe and self.linear_bias

    @property
    def moe_layers(self) -> int:
        """Layers whose MLP is a mixture of experts."""
        return self.layers - self.dense_layers if self.is_moe else 0

    @property
    def uses_mla(self) -> bool:
        return self.kv_lora_rank > 0

    @property
    def params_total(self) -> int:
        from solver.params import count_params

        return count_params(self).total

    @property
    def params_active(self) -> int:
        from solver.params import count_params

        return count_params(self).active

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["sources"] = list(self.sources)
        data["params_total"] = self.params_total
        data["params_active"] = self.params_active
        return data


__all__ = ["ModelSpec"]
