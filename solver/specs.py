"""The typed inputs of gpuplan: model, job, accelerator, layout and limits.

Each is a frozen dataclass that validates itself on construction and raises ``SpecError`` naming
the offending field (docs/interface.md, "Library"). Field names and defaults are the public
contract.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from solver.errors import SpecError
from solver.layout_options import (
    PIPELINE_SPLITS,
    SCHEDULES,
    recompute_code,
    recompute_name,
)
from solver.validate import (
    MAX_DOCUMENT_BYTES,
    as_bool,
    as_choice,
    as_float,
    as_int,
    as_name,
    as_optional_float,
    as_tokens,
    close_matches,
    fail,
    parse_document,
)

PRECISIONS = ("bf16", "fp8")
#: ZeRO-3 implementations whose overlap of the weight gathers differs (``TrainingJob``).
ZERO3_IMPLEMENTATIONS = ("fsdp", "deepspeed")
#: Precisions of the gradient buffers and their data-parallel reduction (``TrainingJob``).
GRAD_DTYPES = ("fp32", "bf16")
#: Precisions of Adam's first and second moments (``TrainingJob.moments_dtype``).
MOMENTS_DTYPES = ("fp32", "bf16")
#: How MoE tokens reach their experts (``TrainingJob.moe_dispatcher``).
MOE_DISPATCHERS = ("alltoall", "deepep")
#: The highest dropout rate a job may give (``TrainingJob.dropout``).
DROPOUT_MAX = 0.99
#: Which end of the error band a deadline is judged at (``Limits.risk``).
RISKS = ("expected", "high")
#: Shapes of the scale-up fabric (``Accelerator.scaleup_topology``).
SCALEUP_TOPOLOGIES = ("switch", "mesh", "torus")
#: The plain recomputation modes; ``Layout.recompute`` also takes Megatron-LM's modules
#: joined by ``+`` (``solver.layout_options``).
RECOMPUTE_MODES = ("none", "selective", "full")
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
PEAK_KEYS = ("fp32", "tf32", "bf16", "fp8")


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
                     "expert_group_topk", "mtp_layers"):
            set_(self, name, as_int(name, getattr(self, name), minimum=0))
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


@dataclass(frozen=True)
class TrainingJob:
    """What is trained: the model, how many tokens, at what global batch and sequence length.

    ``model`` also takes what ``solver.model`` resolves, as the CLI's ``--model`` does (a
    preset name or a model file); ``tokens`` also takes the CLI's ``--tokens`` text (``15T``,
    ``300B``, ``1.5e12``; ``solver.validate.as_tokens``). Both are stored resolved.
    ``global_batch`` is in sequences per optimizer step; 0 lets ``solve`` choose it.
    ``seq_len`` 0 takes the model's ``seq_len``.

    The last three fields describe the training software, as facts of a run:
    ``flash_attention`` (Dao et al. 2022: the attention scores are never stored);
    ``tp_comm_overlap``, tensor-parallel collectives overlapped with the GEMMs they feed
    (Transformer Engine userbuffers, NeMo ``ub_tp_comm_overlap``); ``grad_reduce_overlap``,
    the data-parallel gradient reduction overlapped with the backward pass (bucketed DDP,
    Megatron-LM ``--overlap-grad-reduce``, FSDP); False where it runs after the backward
    (Megatron-LM's 2021 local DDP); ``zero3_impl``, the software that shards the weights at
    ZeRO stage 3: ``"fsdp"`` (PyTorch FSDP/FSDP2, Megatron-FSDP: one flat gather per layer,
    prefetched) or ``"deepspeed"`` (DeepSpeed ZeRO-3 as the published 2021 runs measured it:
    a part of its gathers never overlaps); ``grad_dtype``, the precision gradients are
    accumulated and reduced in: ``"fp32"`` (Megatron-LM forces it with BF16,
    ``--accumulate-allreduce-grads-in-fp32``; FSDP's usual ``reduce_dtype``) or ``"bf16"``
    (NeMo's H100 recipes, ``optim.grad_sync_dtype=bf16``), which halves gradient memory and
    data-parallel gradient traffic; ``ep_comm_overlap``, expert dispatch and combine
    all-to-alls run under another micro-batch's computation (DeepSeek-V3's DualPipe,
    arXiv:2412.19437 sec. 3.2.1; Megatron-LM ``--overlap-moe-expert-parallel-comm``).

    Mixture-of-experts software: ``moe_dispatcher``, ``"alltoall"`` (one copy of a token per
    routed expert, Megatron-LM's all-to-all dispatcher) or ``"deepep"`` (DeepEP,
    DeepSeek-V3 sec. 3.2.2: one copy per destination node over the scale-out network,
    forwarded inside the node over the scale-up fabric); ``fp8_dispatch``, the dispatch (and
    its backward twin) sent in FP8 while the combine stays BF16 (DeepSeek-V3 sec. 3.3.3);
    ``moe_imbalance``, the most loaded expert rank's tokens over the mean under dropless
    routing (1.0: perfectly balanced, as forced-balance benchmarks run). ``moments_dtype``:
    Adam's first and second moments in FP32 or BF16 (DeepSeek-V3 sec. 3.3.3 keeps them in
    BF16; master weights stay FP32). ``dropout``: the hidden and attention dropout rate
    (Megatron-LM's default 0.1, which Korthikanti et al. 2022 count; 0 in the recipes of
    Llama 3, Mixtral, DeepSeek-V3, NeMo, torchtitan and MaxText): above 0 each sublayer's
    output keeps a 1-byte mask for the backward; None (the default) takes the model's
    ``ModelSpec.dropout``, so after construction it is always a float. ``fp8_params``: with
    FP8 precision, the weights are held and gathered in FP8 only, with no BF16 copy (Megatron-LM
    ``--fp8-param-gather``, set by the FP8 recipes of Megatron-Bridge and NeMo 2; the FP32
    master copy stays in the optimizer). ``activation_offload``: the activations a layer
    keeps for its backward are copied to host memory during the forward and back during the
    backward, overlapped with the kernels (Megatron-LM ``--cpu-offloading-num-layers``,
    Transformer Engine's ``get_cpu_offload_context``; MaxText's ``offload`` remat policies
    to TPU host memory); the accelerator needs ``host_bw_gb_s`` and ``host_memory_gib``.

    Failures, checkpoints and restarts (``solver/stepmodel/goodput.py``, docs/model.md):
    ``failures`` False plans as if every hour were productive (wall-clock days = training
    days); ``mtbf_hours`` (0: the sourced table, ``solver/data/reliability.json``) the mean
    hours between interruptions of ONE accelerator, so a job of N fails every
    ``mtbf_hours / N`` hours; ``checkpoint_node_gb_s`` the storage write (and read) bandwidth
    of a node of 8 accelerators, ``checkpoint_total_gb_s`` the storage's total (0: no cap);
    ``async_checkpoint`` training waits only for the copy to host memory;
    ``restart_min`` minutes to reschedule, start and warm up after an interruption (the
    checkpoint load is counted apart); ``hot_spares`` a spare node takes a failed one's place
    at once, else each hardware interruption also waits ``replace_min`` minutes.
    """

    model: ModelSpec
    tokens: float
    global_batch: int = 0
    seq_len: int = 0
    precision: str = "bf16"
    flash_attention: bool = True
    tp_comm_overlap: bool = False
    grad_reduce_overlap: bool = True
    zero3_impl: str = "fsdp"
    grad_dtype: str = "fp32"
    ep_comm_overlap: bool = False
    moe_dispatcher: str = "alltoall"
    fp8_dispatch: bool = False
    moe_imbalance: float = 1.0
    moments_dtype: str = "fp32"
    dropout: float | None = None
    fp8_params: bool = False
    activation_offload: bool = False
    failures: bool = True
    mtbf_hours: float = 0.0
    checkpoint_node_gb_s: float = field(
        default_factory=lambda: _reliability_default("checkpoint_node_gb_s"))
    checkpoint_total_gb_s: float = field(
        default_factory=lambda: _reliability_default("checkpoint_total_gb_s"))
    async_checkpoint: bool = False
    restart_min: float = field(default_factory=lambda: _reliability_default("restart_min"))
    hot_spares: bool = True
    replace_min: float = field(default_factory=lambda: _reliability_default("replace_min"))

    def __post_init__(self) -> None:
        object.__setattr__(self, "model", _job_model(self.model))
        object.__setattr__(self, "tokens", as_tokens("tokens", self.tokens))
        if self.global_batch:
            object.__setattr__(self, "global_batch", as_int("global_batch", self.global_batch))
        else:
            as_int("global_batch", self.global_batch, minimum=0)
        seq = self.seq_len or self.model.seq_len
        object.__setattr__(self, "seq_len", as_int("seq_len", seq))
        as_choice("precision", self.precision, PRECISIONS)
        as_choice("zero3_impl", self.zero3_impl, ZERO3_IMPLEMENTATIONS)
        as_choice("grad_dtype", self.grad_dtype, GRAD_DTYPES)
        as_choice("moments_dtype", self.moments_dtype, MOMENTS_DTYPES)
        as_choice("moe_dispatcher", self.moe_dispatcher, MOE_DISPATCHERS)
        for name in ("flash_attention", "tp_comm_overlap", "grad_reduce_overlap",
                     "ep_comm_overlap", "fp8_dispatch", "fp8_params",
                     "activation_offload", "failures", "async_checkpoint", "hot_spares"):
            as_bool(name, getattr(self, name))
        object.__setattr__(self, "mtbf_hours", as_float("mtbf_hours", self.mtbf_hours,
                                                        strict=False))
        object.__setattr__(self, "checkpoint_node_gb_s",
                           as_float("checkpoint_node_gb_s", self.checkpoint_node_gb_s))
        object.__setattr__(self, "checkpoint_total_gb_s",
                           as_float("checkpoint_total_gb_s", self.checkpoint_total_gb_s,
                                    strict=False))
        for name in ("restart_min", "replace_min"):
            object.__setattr__(self, name, as_float(name, getattr(self, name), strict=False))
        if self.fp8_params and self.precision != "fp8":
            raise fail("fp8_params", "false unless precision is fp8", self.fp8_params)
        imbalance = as_float("moe_imbalance", self.moe_imbalance, minimum=1.0, strict=False)
        object.__setattr__(self, "moe_imbalance", imbalance)
        dropout = self.model.dropout if self.dropout is None else self.dropout
        object.__setattr__(self, "dropout", as_float("dropout", dropout, minimum=0.0,
                                                     strict=False, maximum=DROPOUT_MAX))


@functools.cache
def _reliability_defaults() -> dict[str, Any]:
    path = importlib.resources.files("solver") / "data" / "reliability.json"
    defaults: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))["defaults"]
    return defaults


def _reliability_default(name: str) -> float:
    """A default of the failure model, with its source, in ``solver/data/reliability.json``."""
    return float(_reliability_defaults()[name]["value"])


def _job_model(value: Any) -> ModelSpec:
    """``TrainingJob.model``: a ``ModelSpec``, or what ``solver.model`` resolves as the CLI's
    ``--model`` does (a preset name or a model file)."""
    if isinstance(value, ModelSpec):
        return value
    expected = "a ModelSpec, a preset name (solver.models()) or a model file"
    if not isinstance(value, (str, Path)):
        raise fail("model", expected, type(value).__name__)
    from solver import catalog  # catalog imports this module

    try:
        return catalog.model(str(value), field="model")
    except SpecError as err:
        if str(err).startswith("model:"):  # the name itself, not a model file's content
            raise SpecError(f"{err} (expected {expected})") from None
        raise


def _peak_dict(value: Any) -> dict[str, float | None]:
    if not isinstance(value, Mapping):
        raise fail("peak_tflops", "a table with keys " + ", ".join(PEAK_KEYS), value)
    unknown = sorted(set(value) - set(PEAK_KEYS) - {"fp4"})
    if unknown:
        raise fail("peak_tflops", "keys among " + ", ".join(PEAK_KEYS), unknown[0])
    peaks: dict[str, float | None] = {}
    for key in PEAK_KEYS:
        peaks[key] = as_optional_float(f"peak_tflops.{key}", value.get(key))
    if peaks["bf16"] is None:
        raise fail("peak_tflops.bf16", "a dense BF16 peak in TFLOP/s", None)
    return peaks


@dataclass(frozen=True)
class Accelerator:
    """One accelerator and the fabric around it (docs/interface.md, "Plugins").

    Bandwidths are GB/s per accelerator in one direction. ``scaleout_bw_gb_s`` None means no
    published figure: groups that would leave the scale-up domain are then not allowed.
    ``tdp_w`` or ``price_usd_per_hour`` None means energy or cost cannot be computed for it.
    ``scaleup_topology``: how the scale-up fabric connects the accelerators: ``"switch"``
    (NVSwitch, NVLink Switch: every group gets the full ``scaleup_bw_gb_s``), ``"mesh"``
    (point-to-point links to every peer of the domain, AMD Infinity Fabric, Gaudi's RoCE
    ports: a group of ``n`` uses ``n - 1`` of the ``domain - 1`` links) or ``"torus"`` (TPU ICI:
    ``torus_dims`` axes with ``torus_axis`` chips along each, two links per axis; a group uses
    the links of the axes it spans). ``host_bw_gb_s`` / ``host_memory_gib``: each
    accelerator's share of the link to its host and of the host's memory, where activations
    can be offloaded (``TrainingJob.activation_offload``); None means not published, and no
    offloading.
    The efficiency fields describe how much of the peak real training kernels reach; see
    ``docs/model.md`` for their meaning and how their defaults were fitted.
    """

    name: str
    vendor: str
    peak_tflops: Mapping[str, float | None]
    memory_gib: float
    memory_bw_gb_s: float
    scaleup_bw_gb_s: float
    scaleup_domain: int
    scaleout_bw_gb_s: float | None = None
    tdp_w: float | None = None
    price_usd_per_hour: float | None = None
    sources: tuple[str, ...] = ()
    # Defaulted extras.
    aliases: tuple[str, ...] = ()
    family: str = ""
    matmul_efficiency: float = 0.80
    fp8_matmul_efficiency: float | None = None
    matmul_scale: float | None = None
    attention_scale: float | None = None
    purchase_usd: float | None = None
    host_bw_gb_s: float | None = None
    host_memory_gib: float | None = None
    scaleup_topology: str = "switch"
    torus_dims: int = 0
    torus_axis: int = 0
    notes: str = ""

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "name", as_name("name", self.name).lower())
        set_(self, "vendor", as_name("vendor", self.vendor))
        set_(self, "peak_tflops", _peak_dict(self.peak_tflops))
        for name in ("memory_gib", "memory_bw_gb_s", "scaleup_bw_gb_s"):
            set_(self, name, as_float(name, getattr(self, name)))
        set_(self, "scaleup_domain", as_int("scaleup_domain", self.scaleup_domain))
        for name in ("scaleout_bw_gb_s", "tdp_w", "price_usd_per_hour", "purchase_usd",
                     "host_bw_gb_s", "host_memory_gib"):
            set_(self, name, as_optional_float(name, getattr(self, name)))
        eff = as_float("matmul_efficiency", self.matmul_efficiency)
        if eff > 1.0:
            raise fail("matmul_efficiency", "a fraction in (0, 1]", eff)
        set_(self, "matmul_efficiency", eff)
        if self.fp8_matmul_efficiency is not None:
            eff8 = as_float("fp8_matmul_efficiency", self.fp8_matmul_efficiency)
            if eff8 > 1.0:
                raise fail("fp8_matmul_efficiency", "a fraction in (0, 1]", eff8)
            set_(self, "fp8_matmul_efficiency", eff8)
        for name in ("matmul_scale", "attention_scale"):
            if getattr(self, name) is not None:
                value = as_float(name, getattr(self, name))
                if value > 1.0:
                    raise fail(name, "a fraction in (0, 1]", value)
                set_(self, name, value)
        if isinstance(self.sources, str) or not all(isinstance(s, str) for s in self.sources):
            raise fail("sources", "a list of citation strings", self.sources)
        set_(self, "sources", tuple(self.sources))
        if isinstance(self.aliases, str) or not all(isinstance(a, str) for a in self.aliases):
            raise fail("aliases", "a list of names", self.aliases)
        set_(self, "aliases", tuple(a.lower() for a in self.aliases))
        for name in ("family", "notes"):
            if not isinstance(getattr(self, name), str):
                raise fail(name, "a string", getattr(self, name))
        set_(self, "family", self.family or self.vendor.lower())
        as_choice("scaleup_topology", self.scaleup_topology, SCALEUP_TOPOLOGIES)
        if self.scaleup_topology == "torus":
            set_(self, "torus_dims", as_int("torus_dims", self.torus_dims, maximum=3))
            set_(self, "torus_axis", as_int("torus_axis", self.torus_axis, minimum=2))

    def peak_for(self, precision: str) -> float:
        """Dense peak TFLOP/s for the job's precision; FP8 falls back to BF16 where absent."""
        peak = self.peak_tflops.get(precision) if precision == "fp8" else None
        bf16 = self.peak_tflops["bf16"]
        assert bf16 is not None  # validated in __post_init__
        return float(peak) if peak else float(bf16)

    def linear_efficiency(self, precision: str) -> float:
        """Best-shape matmul throughput over ``peak_for(precision)`` (MAMF over peak).

        FP8 uses ``fp8_matmul_efficiency`` when the part has an FP8 peak and the figure is
        known, else the BF16 ``matmul_efficiency``.
        """
        if precision == "fp8" and self.peak_tflops.get("fp8") and self.fp8_matmul_efficiency:
            return float(self.fp8_matmul_efficiency)
        return float(self.matmul_efficiency)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, where: str = "accelerator") -> Accelerator:
        """Build from a mapping with the INTERFACE field names; unknown keys are an error."""
        if not isinstance(data, Mapping):
            raise SpecError(f"{where}: expected a table of accelerator fields")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(f"{where}: unknown field {str(unknown[0])[:60]!r}"
                            f"{close_matches(str(unknown[0]), known)}")
        required = [f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING]
        missing = [name for name in required if name not in data]
        if missing:
            raise SpecError(f"{where}: missing field {missing[0]!r}")
        try:
            values: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v)
                                      for k, v in data.items()}
            return cls(**values)
        except SpecError as err:
            raise SpecError(f"{where}: {err}") from None

    @classmethod
    def from_toml(cls, path: str | Path) -> Accelerator:
        """Read the format of ``hardware_specs/*.toml``: fields as top-level keys."""
        path = Path(path)
        try:
            with path.open("rb") as handle:
                raw = handle.read(MAX_DOCUMENT_BYTES + 1)  # a larger file is refused whole
        except OSError as err:
            raise SpecError(f"{path}: cannot read ({err.strerror or err})") from None
        return cls.from_toml_bytes(raw, where=str(path))

    @classmethod
    def from_toml_bytes(cls, raw: bytes, *, where: str) -> Accelerator:
        data = parse_document(raw, where=where, fmt="toml", what="an accelerator TOML file")
        return cls.from_mapping(data, where=where)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["peak_tflops"] = dict(self.peak_tflops)
        data["sources"] = list(self.sources)
        data["aliases"] = list(self.aliases)
        return data


LAYOUT_FIELDS = ("tp", "pp", "dp", "cp", "ep", "vp", "micro_batch", "zero_stage", "recompute",
                 "schedule", "pipeline_split")


@dataclass(frozen=True)
class Layout:
    """How one job is laid out (Megatron-LM semantics): ``gpus = tp * pp * cp * dp``.

    ``recompute``: ``none``, ``selective``, ``full`` or Megatron-LM recompute modules joined
    by ``+`` (``solver.layout_options``); stored in its canonical spelling. ``schedule``: the
    pipeline schedule (``1f1b``, interleaved when ``vp > 1``; ``zero-bubble``; ``dualpipe``).
    ``pipeline_split``: which edge stages give a layer's room to the embedding or the LM head
    (``even``, ``embedding``, ``loss``, ``both``).
    """

    accelerator: str
    tp: int
    pp: int
    dp: int
    cp: int = 1
    ep: int = 1
    vp: int = 1
    micro_batch: int = 1
    zero_stage: int = 0
    recompute: str = "none"
    schedule: str = "1f1b"
    pipeline_split: str = "even"

    def __post_init__(self) -> None:
        object.__setattr__(self, "accelerator", as_name("accelerator", self.accelerator).lower())
        for name in ("tp", "pp", "dp", "cp", "ep", "vp", "micro_batch"):
            object.__setattr__(self, name, as_int(name, getattr(self, name)))
        object.__setattr__(self, "zero_stage",
                           as_int("zero_stage", self.zero_stage, minimum=0, maximum=3))
        object.__setattr__(self, "recompute", recompute_name(recompute_code(self.recompute)))
        as_choice("schedule", self.schedule, SCHEDULES)
        as_choice("pipeline_split", self.pipeline_split, PIPELINE_SPLITS)
        if (self.dp * self.cp) % self.ep:
            raise fail("ep", f"a divisor of dp*cp={self.dp * self.cp}", self.ep)

    @property
    def gpus(self) -> int:
        return self.tp * self.pp * self.cp * self.dp


@dataclass(frozen=True)
class Limits:
    """What a plan must respect (docs/interface.md). None means no limit.

    ``tokens_per_step`` bounds the global batch the solver may choose when the job leaves it
    open: (1M, 16M) tokens by default, the range published pre-training runs use (GPT-3 3.2M,
    Llama 3 405B 4M-16M, DeepSeek-V3 about 15M tokens per step). ``risk``: ``"expected"``
    judges a deadline against the predicted training days; ``"high"`` against the high end of
    their error band (``solver.uncertainty``), so the deadline holds on the pessimistic side of
    what the published runs say about predictions like this one. ``launcher``: ``megatron``,
    ``torchtitan`` or ``deepspeed``: only layouts that launcher can start are searched
    (``solver.launchers``, docs/launchers.md); None: every layout the step model knows.
    """

    accelerators: tuple[str, ...] = ()
    gpus: int | None = None
    max_gpus: int | None = None
    deadline_days: float | None = None
    budget_usd: float | None = None
    fixed: Mapping[str, Any] = field(default_factory=dict)
    tokens_per_step: tuple[float, float] = (1_000_000.0, 16_000_000.0)
    risk: str = "expected"
    launcher: str | None = None

    def __post_init__(self) -> None:
        as_choice("risk", self.risk, RISKS)
        if self.launcher is not None:
            from solver.launchers import LAUNCHERS  # numpy: not for the CLI's --help

            as_choice("launcher", self.launcher, LAUNCHERS)
        accels = self.accelerators
        if isinstance(accels, str):
            accels = (accels,)
        if not isinstance(accels, (list, tuple)) or not all(
                isinstance(a, str) and a.strip() for a in accels):
            raise fail("accelerators", "a list of accelerator names", accels)
        object.__setattr__(self, "accelerators", tuple(a.strip().lower() for a in accels))
        if self.gpus is not None:
            object.__setattr__(self, "gpus", as_int("gpus", self.gpus))
        if self.max_gpus is not None:
            object.__setattr__(self, "max_gpus", as_int("max_gpus", self.max_gpus))
        if self.gpus is not None and self.max_gpus is not None and self.gpus > self.max_gpus:
            raise fail("gpus", f"at most max_gpus={self.max_gpus}", self.gpus)
        for name in ("deadline_days", "budget_usd"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, as_float(name, value))
        if not isinstance(self.fixed, Mapping):
            raise fail("fixed", "a table of layout fields", self.fixed)
        object.__setattr__(self, "fixed", _check_fixed(self.fixed))
        low, high = _token_range(self.tokens_per_step)
        object.__setattr__(self, "tokens_per_step", (low, high))


def _token_range(value: Any) -> tuple[float, float]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise fail("tokens_per_step", "a pair (low, high)", value)
    low = as_float("tokens_per_step", value[0])
    high = as_float("tokens_per_step", value[1])
    if low > high:
        raise fail("tokens_per_step", "low <= high", value)
    return low, high


def _check_fixed(fixed: Mapping[str, Any]) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    for key, value in fixed.items():
        name = f"fixed.{key}"
        if key == "recompute":
            checked[key] = recompute_name(recompute_code(value, name))
        elif key == "schedule":
            checked[key] = as_choice(name, value, SCHEDULES)
        elif key == "pipeline_split":
            checked[key] = as_choice(name, value, PIPELINE_SPLITS)
        elif key == "zero_stage":
            checked[key] = as_int(name, value, minimum=0, maximum=3)
        elif key in ("tp", "pp", "dp", "cp", "ep", "vp", "micro_batch"):
            checked[key] = as_int(name, value)
        else:
            raise fail("fixed", "keys among " + ", ".join(LAYOUT_FIELDS), key)
    return checked


__all__ = ["Accelerator", "Layout", "Limits", "ModelSpec", "TrainingJob"]
