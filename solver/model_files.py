"""Models from files: gpuplan's own TOML/JSON model files, Hugging Face ``config.json`` files,
and the built-in presets in ``solver/presets/*.toml``.

No plugin code and no printing: every problem is a one-line ``SpecError`` that names the file (or
``where``) and the field.

The Hugging Face import is ``solver.hf_config`` (with the per-family mappings in
``solver.hf_mappers``); its public names are importable from here.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from solver.errors import SpecError
from solver.hf_config import HF_PRETRAIN_SEQ_LEN as HF_PRETRAIN_SEQ_LEN
from solver.hf_config import SUPPORTED_HF_MODEL_TYPES as SUPPORTED_HF_MODEL_TYPES
from solver.hf_config import hf_name, is_hf_config, model_from_hf_config
from solver.hf_mappers import shown
from solver.specs import ModelSpec
from solver.validate import close_matches, parse_document

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
        raise SpecError(f"{where}: unknown field {shown(unknown[0])}"
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
                            f"{shown(sources)}")
        fields["sources"] = tuple(sources)
    try:
        spec = ModelSpec(**fields)
    except SpecError as err:
        raise SpecError(f"{where}: {err}") from None
    for key in DERIVED_KEYS:
        if key in data and data[key] != getattr(spec, key):
            raise SpecError(f"{where}: {key}: the file says {shown(data[key])} but the fields "
                            f"give {getattr(spec, key)}; remove it or fix the fields")
    return spec



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
        return model_from_hf_config(data, where=where, name=hf_name(data, stem))
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



__all__ = [
    "MAX_FILE_BYTES",
    "SUPPORTED_HF_MODEL_TYPES",
    "is_hf_config",
    "load_model_file",
    "model_from_hf_config",
    "model_from_mapping",
    "preset_models",
]
