"""Hugging Face ``config.json`` files as ``ModelSpec``: recognising one, the facts every model
family states the same way, and the planned sequence length (``model_from_hf_config``).

The per-family key mappings are ``solver.hf_mappers``; ``solver.model_files`` reads the files and
re-exports the public names here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from solver.errors import SpecError
from solver.hf_mappers import HF_ARCHITECTURES, HF_MAPPERS, HfConfig, hf_number, shown
from solver.specs import DROPOUT_MAX, ROPE_SCALINGS, ROPE_SCALINGS_WITH_ORIGINAL, ModelSpec
from solver.validate import as_int

#: The longest sequence a ``config.json`` without a pre-extension length is planned at: 8192,
#: the pre-training length of Llama 3 (arXiv:2407.21783 sec. 3.4.1: 8K, before the long-context
#: stage), the longest of the published pre-training runs the presets describe (GPT-3 2048,
#: DeepSeek-V3 4096, arXiv:2412.19437 sec. 4.2). A ``config.json``'s
#: ``max_position_embeddings`` is the longest context the checkpoint serves after any
#: extension (Llama 3.1: 131072), not the length it was trained at; ``--seq-len`` overrides.
HF_PRETRAIN_SEQ_LEN = 8192


def is_hf_config(data: Any) -> bool:
    """Whether a parsed JSON object looks like a Hugging Face ``config.json``."""
    return isinstance(data, Mapping) and ("model_type" in data or "architectures" in data)


def _rope_facts(c: HfConfig) -> dict[str, Any]:
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
        theta = hf_number("rope_parameters.rope_theta", params["rope_theta"], c.where)
    facts: dict[str, Any] = {"rope_theta": theta}
    key = "rope_scaling" if c.data.get("rope_scaling") is not None else "rope_parameters"
    scaling = c.data.get(key) or {}
    if not isinstance(scaling, Mapping):
        raise c.reject(key, "a table or null")
    kind = scaling.get("rope_type", scaling.get("type")) or "default"
    kind = "none" if kind == "default" else kind
    if not isinstance(kind, str) or kind not in ROPE_SCALINGS:
        raise SpecError(f"{c.where}: {key}.rope_type: expected one of default|"
                        f"{'|'.join(ROPE_SCALINGS[1:])}, got {shown(kind)}")
    if kind == "none":
        return facts
    factor = scaling.get("factor")
    factor = 1.0 if factor is None else hf_number(f"{key}.factor", factor, c.where,
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


def _first_number(c: HfConfig, keys: tuple[str, ...], **bounds: Any) -> float | None:
    for key in keys:
        if c.data.get(key) is not None:
            return c.number(key, 0.0, **bounds)
    return None


def _common_facts(c: HfConfig, fields: dict[str, Any]) -> tuple[dict[str, Any], str]:
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



SUPPORTED_HF_MODEL_TYPES = tuple(sorted(HF_MAPPERS))


def model_from_hf_config(data: Mapping[str, Any], *, where: str, name: str) -> ModelSpec:
    """Map a Hugging Face ``config.json`` (already parsed) to a ``ModelSpec`` named ``name``."""
    if not isinstance(data, Mapping):
        raise SpecError(f"{where}: expected a config.json object, got {type(data).__name__}")
    supported = ", ".join(SUPPORTED_HF_MODEL_TYPES)
    model_type = data.get("model_type")
    if model_type is None:
        architectures = data.get("architectures")
        if isinstance(architectures, list):
            known = [HF_ARCHITECTURES[a] for a in architectures
                     if isinstance(a, str) and a in HF_ARCHITECTURES]
            model_type = known[0] if known else None
        if model_type is None:
            raise SpecError(f"{where}: missing key 'model_type' and no known 'architectures' "
                            f"entry (supported model_type: {supported})")
    if not isinstance(model_type, str) or model_type not in HF_MAPPERS:
        raise SpecError(f"{where}: model_type: unsupported value {shown(model_type)} "
                        f"(supported: {supported})")
    config = HfConfig(data, where, model_type)
    fields = HF_MAPPERS[model_type](config)
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


def hf_name(data: Mapping[str, Any], fallback: str) -> str:
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



__all__ = ["HF_PRETRAIN_SEQ_LEN", "SUPPORTED_HF_MODEL_TYPES", "hf_name", "is_hf_config",
           "model_from_hf_config"]
