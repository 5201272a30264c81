"""Models from files: gpuplan's own TOML/JSON model files, Hugging Face ``config.json`` files,
and the built-in presets in ``solver/presets/*.toml``.

No plugin code and no printing: every problem is a one-line ``SpecError`` that names the file (or
``where``) and the field.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from solver.errors import SpecError
from solver.specs import DROPOUT_MAX, ROPE_SCALINGS, ROPE_SCALINGS_WITH_ORIGINAL, ModelSpec
from solver.validate import as_bool, as_float, as_int, close_matches, parse_document

#: Largest model file read, in bytes: a model file or ``config.json`` is a few KiB.
MAX_FILE_BYTES = 1_000_000

#: Keys of ``ModelSpec.to_dict()`` that are derived, not fields: accepted in a model file (so
#: that ``gpuplan models show --json`` output can be read back) and checked against the spec.
DERIVED_KEYS = ("params_total", "params_active")

#: The longest sequence a ``config.json`` without a pre-extension length is planned at: 8192,
#: the pre-training length of Llama 3 (arXiv:2407.21783 sec. 3.4.1: 8K, before the long-context
#: stage), the longest of the published pre-training runs the presets describe (GPT-3 2048,
#: DeepSeek-V3 4096, arXiv:2412.19437 sec. 4.2). A ``config.json``'s
#: ``max_position_embeddings`` is the longest context the checkpoint serves after any
#: extension (Llama 3.1: 131072), not the length it was trained at; ``--seq-len`` overrides.
HF_PRETRAIN_SEQ_LEN = 8192

_FIELDS = tuple(f.name for f in dataclasses.fields(ModelSpec))
_REQUIRED = tuple(f.name for f in dataclasses.fields(ModelSpec)
                  if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)


# --------------------------------------------------------------------------------------------
# gpuplan's own format: ModelSpec fields by name.


def model_from_mapping(data: Mapping[str, Any], *, where: str) -> ModelSpec:
    """Build a ``ModelSpec`` from its fields by name; unknown keys are an error."""
    if not isinstance(data, Mapping):
        raise SpecError(f"{where}: expected a table of model fields, got {type(data).__name__}")
    unknown = sorted(str(key) for key in data if key not in _FIELDS and key not in DERIVED_KEYS)
    if unknown:
        raise SpecError(f"{where}: unknown field {_shown(unknown[0])}"
                        f"{close_matches(unknown[0], _FIELDS)}")
    missing = [name for name in _REQUIRED if name not in data]
    if missing:
        raise SpecError(f"{where}: missing field {missing[0]!r}")
    fields = {key: value for key, value in data.items() if key in _FIELDS}
    if "description" in fields and not isinstance(fields["description"], str):
        raise SpecError(f"{where}: description: expected a string, got "
                        f"{type(fields['description']).__name__}")
    if "sources" in fields:
        sources = fields["sources"]
        # ModelSpec turns any iterable into a tuple of strings: a bare string would become a
        # tuple of characters, so the list form is checked here.
        if (isinstance(sources, (str, bytes)) or not isinstance(sources, (list, tuple))
                or not all(isinstance(s, str) for s in sources)):
            raise SpecError(f"{where}: sources: expected a list of citation strings, got "
                            f"{_shown(sources)}")
        fields["sources"] = tuple(sources)
    try:
        spec = ModelSpec(**fields)
    except SpecError as err:
        raise SpecError(f"{where}: {err}") from None
    for key in DERIVED_KEYS:
        if key in data and data[key] != getattr(spec, key):
            raise SpecError(f"{where}: {key}: the file says {_shown(data[key])} but the fields "
                            f"give {getattr(spec, key)}; remove it or fix the fields")
    return spec


# --------------------------------------------------------------------------------------------
# Hugging Face config.json.


def is_hf_config(data: Any) -> bool:
    """Whether a parsed JSON object looks like a Hugging Face ``config.json``."""
    return isinstance(data, Mapping) and ("model_type" in data or "architectures" in data)


class _Config:
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
        return _number(key, self._get(key, default, False), self.where, minimum=minimum,
                       strict=strict, maximum=maximum)

    def reject(self, key: str, expected: str) -> SpecError:
        return SpecError(f"{self.where}: {key}: expected {expected} for gpuplan, got "
                         f"{_shown(self.data.get(key))}")


def _number(key: str, value: Any, where: str, *, minimum: float = 0.0, strict: bool = True,
            maximum: float = 1e30) -> float:
    try:
        return as_float(key, value, minimum=minimum, strict=strict, maximum=maximum)
    except SpecError as err:
        raise SpecError(f"{where}: {err}") from None


def _rope_facts(c: _Config) -> dict[str, Any]:
    """``rope_theta`` and ``rope_scaling`` (``rope_type`` or the older ``type``, ``factor``,
    ``original_max_position_embeddings``); newer transformers releases hold the same keys in
    ``rope_parameters``. ``"default"`` means no scaling."""
    params = c.data.get("rope_parameters")
    if params is not None and not isinstance(params, Mapping):
        raise c.reject("rope_parameters", "a table or null")
    params = params or {}
    if c.data.get("rope_theta") is not None or "rope_theta" not in params:
        theta = c.number("rope_theta", 10000.0)
    else:
        theta = _number("rope_parameters.rope_theta", params["rope_theta"], c.where)
    facts: dict[str, Any] = {"rope_theta": theta}
    key = "rope_scaling" if c.data.get("rope_scaling") is not None else "rope_parameters"
    scaling = c.data.get(key) or {}
    if not isinstance(scaling, Mapping):
        raise c.reject(key, "a table or null")
    kind = scaling.get("rope_type", scaling.get("type")) or "default"
    kind = "none" if kind == "default" else kind
    if not isinstance(kind, str) or kind not in ROPE_SCALINGS:
        raise SpecError(f"{c.where}: {key}.rope_type: expected one of default|"
                        f"{'|'.join(ROPE_SCALINGS[1:])}, got {_shown(kind)}")
    if kind == "none":
        return facts
    factor = scaling.get("factor")
    factor = 1.0 if factor is None else _number(f"{key}.factor", factor, c.where,
                                                 minimum=1.0, strict=False, maximum=1e6)
    original = scaling.get("original_max_position_embeddings",
                           c.data.get("original_max_position_embeddings"))
    if original is None:
        if kind in ROPE_SCALINGS_WITH_ORIGINAL:
            raise SpecError(f"{c.where}: {key}.original_max_position_embeddings: expected the "
                            f"pre-extension length for rope_type {kind!r}, got None")
        original = 0
    try:
        original = as_int(f"{key}.original_max_position_embeddings", original, minimum=0)
    except SpecError as err:
        raise SpecError(f"{c.where}: {err}") from None
    facts.update(rope_scaling=kind, rope_scaling_factor=factor, rope_original_seq_len=original)
    return facts


def _first_number(c: _Config, keys: tuple[str, ...], **bounds: Any) -> float | None:
    for key in keys:
        if c.data.get(key) is not None:
            return c.number(key, 0.0, **bounds)
    return None


def _common_facts(c: _Config, fields: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The facts every model type states the same way, and the planned sequence length.

    Norm epsilon: ``rms_norm_eps`` (Llama, Mistral, Qwen2, DeepSeek), ``layer_norm_epsilon``
    (GPT-2), ``layer_norm_eps``; absent (OPT): 1e-5, PyTorch's ``nn.LayerNorm`` default.
    Dropout: the hidden rate (``hidden_dropout``, GPT-2's ``resid_pdrop``, OPT's ``dropout``)
    where the config has one, else the attention rate (``attention_dropout``, ``attn_pdrop``),
    else 0. Sequence length: the rope scaling's pre-extension length, else the longest context
    capped at ``HF_PRETRAIN_SEQ_LEN``; the returned text says which.
    """
    facts: dict[str, Any] = {}
    if fields.get("position_embedding") == "rope":
        facts.update(_rope_facts(c))
    eps = _first_number(c, ("rms_norm_eps", "layer_norm_epsilon", "layer_norm_eps"),
                        maximum=1.0)
    facts["norm_eps"] = 1e-5 if eps is None else eps
    rate = dict(minimum=0.0, strict=False, maximum=DROPOUT_MAX)
    dropout = _first_number(c, ("hidden_dropout", "resid_pdrop", "dropout"), **rate)
    if dropout is None:
        dropout = _first_number(c, ("attention_dropout", "attn_pdrop"), **rate)
    facts["dropout"] = dropout or 0.0
    longest = fields["seq_len"]
    original = facts.get("rope_original_seq_len", 0)
    if original:
        facts["seq_len"] = min(original, longest)
        why = (f"the pre-extension length (the RoPE scaling's "
               f"original_max_position_embeddings; the config's longest context is {longest})")
    elif longest > HF_PRETRAIN_SEQ_LEN:
        facts["seq_len"] = HF_PRETRAIN_SEQ_LEN
        why = (f"the config's longest context {longest} capped at gpuplan's pre-training "
               f"default {HF_PRETRAIN_SEQ_LEN}")
    else:
        why = "the config's longest context, within gpuplan's pre-training default " \
              f"{HF_PRETRAIN_SEQ_LEN}"
    return facts, why


def _router_choice(c: _Config, key: str, default: str, choices: tuple[str, ...]) -> str:
    value = c.data.get(key)
    value = default if value is None else value
    if not isinstance(value, str) or value not in choices:
        raise c.reject(key, "one of " + "|".join(choices))
    return value


def _llama_like(c: _Config) -> dict[str, Any]:
    """Llama, Mistral and Qwen2: SwiGLU, RMSNorm, RoPE, untied by default."""
    heads = c.integer("num_attention_heads")
    return {
        "layers": c.integer("num_hidden_layers"),
        "hidden": c.integer("hidden_size"),
        "heads": heads,
        "kv_heads": c.integer("num_key_value_heads", heads),
        "ffn_hidden": c.integer("intermediate_size"),
        "vocab": c.integer("vocab_size"),
        # The longest context the checkpoint supports; _common_facts plans a shorter one.
        "seq_len": c.integer("max_position_embeddings"),
        "head_dim": c.integer("head_dim", 0, minimum=0),  # Mistral Nemo: 128 != hidden / heads
        "tied_embeddings": c.flag("tie_word_embeddings", False),
        "gated_mlp": True,
        "norm": "rmsnorm",
        "position_embedding": "rope",
        # Llama's optional biases: attention_bias puts biases on q, k, v and o; mlp_bias on the
        # MLP. ModelSpec has one switch for all linear layers: on only when both are.
        "linear_bias": c.flag("attention_bias", False) and c.flag("mlp_bias", False),
    }


def _from_llama(c: _Config) -> dict[str, Any]:
    return _llama_like(c)


def _from_qwen2(c: _Config) -> dict[str, Any]:
    # Qwen2 has biases on the q, k and v projections only (not o, not the MLP). ModelSpec's
    # linear_bias covers every linear layer, so it stays off: the count misses
    # layers * (heads + 2 * kv_heads) * head_dim parameters (under 0.01% for Qwen2-7B), which
    # is closer than turning on the o-projection and MLP biases Qwen2 does not have.
    return _llama_like(c)


def _from_mixtral(c: _Config) -> dict[str, Any]:
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


def _from_qwen2_moe(c: _Config) -> dict[str, Any]:
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


def _from_deepseek(c: _Config) -> dict[str, Any]:
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
    heads = c.integer("num_attention_heads")
    spec: dict[str, Any] = {
        "layers": c.integer("num_hidden_layers"),
        "hidden": c.integer("hidden_size"),
        "heads": heads,
        "kv_heads": c.integer("num_key_value_heads", heads),
        "ffn_hidden": c.integer("intermediate_size"),
        "vocab": c.integer("vocab_size"),
        "seq_len": c.integer("max_position_embeddings"),
        "tied_embeddings": c.flag("tie_word_embeddings", False),
        "gated_mlp": True,
        "norm": "rmsnorm",
        "position_embedding": "rope",
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


def _from_gpt2(c: _Config) -> dict[str, Any]:
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


def _from_opt(c: _Config) -> dict[str, Any]:
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


_HF_MAPPERS: dict[str, Callable[[_Config], dict[str, Any]]] = {
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
_HF_ARCHITECTURES = {
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

SUPPORTED_HF_MODEL_TYPES = tuple(sorted(_HF_MAPPERS))


def model_from_hf_config(data: Mapping[str, Any], *, where: str, name: str) -> ModelSpec:
    """Map a Hugging Face ``config.json`` (already parsed) to a ``ModelSpec`` named ``name``."""
    if not isinstance(data, Mapping):
        raise SpecError(f"{where}: expected a config.json object, got {type(data).__name__}")
    supported = ", ".join(SUPPORTED_HF_MODEL_TYPES)
    model_type = data.get("model_type")
    if model_type is None:
        architectures = data.get("architectures")
        if isinstance(architectures, list):
            known = [_HF_ARCHITECTURES[a] for a in architectures
                     if isinstance(a, str) and a in _HF_ARCHITECTURES]
            model_type = known[0] if known else None
        if model_type is None:
            raise SpecError(f"{where}: missing key 'model_type' and no known 'architectures' "
                            f"entry (supported model_type: {supported})")
    if not isinstance(model_type, str) or model_type not in _HF_MAPPERS:
        raise SpecError(f"{where}: model_type: unsupported value {_shown(model_type)} "
                        f"(supported: {supported})")
    config = _Config(data, where, model_type)
    fields = _HF_MAPPERS[model_type](config)
    facts, why = _common_facts(config, fields)
    fields.update(facts)
    fields["description"] = (
        f"Read from a Hugging Face config.json (model_type {model_type!r}). seq_len "
        f"{fields['seq_len']}: {why}; --seq-len (TrainingJob.seq_len) overrides it.")
    fields["sources"] = (f"Hugging Face config.json: {where}",)
    try:
        return ModelSpec(name=name, **fields)
    except SpecError as err:
        raise SpecError(f"{where}: {err} (mapped from config.json, model_type "
                        f"{model_type!r})") from None


# --------------------------------------------------------------------------------------------
# Files and presets.


def _parse(raw: bytes, *, where: str, suffix: str) -> dict[str, Any]:
    """Decode one model file's bytes into its top-level table."""
    if suffix not in (".toml", ".json"):
        raise SpecError(f"{where}: expected a .toml or .json model file, got "
                        f"{suffix or 'no extension'!r}")
    return parse_document(raw, where=where, fmt=suffix[1:], what="a model file",
                          limit=MAX_FILE_BYTES)


def _hf_name(data: Mapping[str, Any], fallback: str) -> str:
    """A ``config.json``'s model name: ``name``, ``_name_or_path`` or ``name_or_path`` (a hub
    id such as ``meta-llama/Llama-3.1-8B`` as it is; a local path by its last part), else
    ``fallback``."""
    for key in ("name", "_name_or_path", "name_or_path"):
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            value = value.strip().rstrip("/\\")
            if value.startswith(("/", ".", "~")) or "\\" in value:
                value = value.replace("\\", "/").rsplit("/", 1)[-1]
            if value.strip(".~ ") and len(value) <= 200:
                return value.strip()
    return fallback


def _model_from_data(data: dict[str, Any], *, where: str, stem: str) -> ModelSpec:
    if is_hf_config(data):
        return model_from_hf_config(data, where=where, name=_hf_name(data, stem))
    if "name" not in data:
        data = {"name": stem, **data}
    return model_from_mapping(data, where=where)


def load_model_file(path: str | Path) -> ModelSpec:
    """Read a gpuplan model file (``.toml``/``.json``) or a Hugging Face ``config.json``.

    The model's name is its ``name`` key; for a Hugging Face ``config.json`` then its
    ``_name_or_path`` or ``name_or_path``, then the folder's name when the file is called
    ``config.json`` (a checkpoint's folder, ``Llama-3.1-8B/config.json``); else the file's stem.
    """
    path = Path(path)
    where = str(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise SpecError(f"{where}: cannot read ({err.strerror or err})") from None
    data = _parse(raw, where=where, suffix=path.suffix.lower())
    stem = path.stem
    if path.name.lower() == "config.json" and is_hf_config(data):
        stem = path.resolve().parent.name or stem
    return _model_from_data(data, where=where, stem=stem)


def preset_models() -> list[ModelSpec]:
    """Every preset in ``solver/presets/*.toml``, sorted by name, read as package data."""
    folder = importlib.resources.files("solver") / "presets"
    models = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.is_file() or not entry.name.endswith(".toml"):
            continue
        where = f"solver/presets/{entry.name}"
        stem = entry.name.removesuffix(".toml")
        data = _parse(entry.read_bytes(), where=where, suffix=".toml")
        spec = _model_from_data(data, where=where, stem=stem)
        if spec.name != stem:
            raise SpecError(f"{where}: name: expected the file's slug {stem!r}, got "
                            f"{spec.name!r}")
        models.append(spec)
    return models


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


__all__ = [
    "MAX_FILE_BYTES",
    "SUPPORTED_HF_MODEL_TYPES",
    "is_hf_config",
    "load_model_file",
    "model_from_hf_config",
    "model_from_mapping",
    "preset_models",
]
