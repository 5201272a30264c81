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
from solver.specs import ModelSpec
from solver.validate import as_bool, as_int, close_matches, parse_document

#: Largest model file read, in bytes: a model file or ``config.json`` is a few KiB.
MAX_FILE_BYTES = 1_000_000

#: Keys of ``ModelSpec.to_dict()`` that are derived, not fields: accepted in a model file (so
#: that ``gpuplan models show --json`` output can be read back) and checked against the spec.
DERIVED_KEYS = ("params_total", "params_active")

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

    def reject(self, key: str, expected: str) -> SpecError:
        return SpecError(f"{self.where}: {key}: expected {expected} for gpuplan, got "
                         f"{_shown(self.data.get(key))}")


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
        # The longest context the checkpoint supports; not capped (INTERFACE: the model's
        # usual length, which a job can override with --seq-len).
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
    spec.update(experts=c.integer("num_local_experts"), top_k=c.integer("num_experts_per_tok"),
                moe_ffn_hidden=spec["ffn_hidden"])
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
                moe_ffn_hidden=expert, shared_experts=shared // expert)
    return spec


def _from_deepseek(c: _Config) -> dict[str, Any]:
    """DeepSeek-V2 and V3: MLA attention, leading dense layers, shared + routed experts.

    The multi-token-prediction layers of V3 (``num_nextn_predict_layers``) become
    ``mtp_layers``: trained (their FLOPs and memory count) but not part of the main model's
    parameter count, as in DeepSeek's own 671B figure. Group-limited routing: ``n_group`` ->
    ``expert_groups``, ``topk_group`` -> ``expert_group_topk``.
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
    fields = _HF_MAPPERS[model_type](_Config(data, where, model_type))
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


def _model_from_data(data: dict[str, Any], *, where: str, stem: str) -> ModelSpec:
    if is_hf_config(data):
        name = data.get("name") or data.get("_name_or_path") or stem
        if not isinstance(name, str) or not name.strip():
            name = stem
        return model_from_hf_config(data, where=where, name=name)
    if "name" not in data:
        data = {"name": stem, **data}
    return model_from_mapping(data, where=where)


def load_model_file(path: str | Path) -> ModelSpec:
    """Read a gpuplan model file (``.toml``/``.json``) or a Hugging Face ``config.json``.

    The model's name is its ``name`` key, else a ``config.json``'s ``_name_or_path``, else the
    file's stem.
    """
    path = Path(path)
    where = str(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise SpecError(f"{where}: cannot read ({err.strerror or err})") from None
    data = _parse(raw, where=where, suffix=path.suffix.lower())
    return _model_from_data(data, where=where, stem=path.stem)


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
