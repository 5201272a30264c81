"""Built-in plugin: the model presets of ``solver/presets/*.toml``."""

from __future__ import annotations

from solver.hookspecs import hookimpl
from solver.model_files import preset_models
from solver.specs import ModelSpec


@hookimpl
def gpuplan_models() -> list[ModelSpec]:
    return preset_models()
