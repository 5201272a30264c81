"""Reading scenario files: the sections and keys, each value checked where it is read.

Every key is checked when the file is read, and an unknown key is an error naming its section
(with close matches). Values are kept with their *origin* (``file.toml: [limits] max_gpus`` or a
command-line option such as ``--max-gpus``) so that every error names where the bad value came
from (``solver.scenario`` assembles them into a question; docs/scenarios.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from solver import catalog
from solver.errors import SpecError
from solver.launchers import LAUNCHERS
from solver.layout_options import (
    PIPELINE_SPLITS,
    SCHEDULES,
    recompute_code,
    recompute_name,
)
from solver.model_files import load_model_file, model_from_mapping
from solver.plan import OBJECTIVES
from solver.specs import (
    DROPOUT_MAX,
    GRAD_DTYPES,
    LAYOUT_FIELDS,
    MOE_DISPATCHERS,
    MOMENTS_DTYPES,
    PRECISIONS,
    RISKS,
    ZERO3_IMPLEMENTATIONS,
    ModelSpec,
)
from solver.validate import (
    MAX_SEED,
    MAX_TIME_LIMIT_S,
    MAX_TOP,
    MAX_WORKERS,
    as_bool,
    as_choice,
    as_float,
    as_int,
    as_table,
    as_tokens,
    close_matches,
    fail,
    read_toml_file,
    unknown_name,
)

#: The job's failure-model keys (``TrainingJob``; ``solver/stepmodel/goodput.py``).
FAILURE_KEYS = ("failures", "mtbf_hours", "checkpoint_node_gb_s", "checkpoint_total_gb_s",
                "async_checkpoint", "restart_min", "hot_spares", "replace_min")

#: The keys of each section (``model`` is special: ``preset``, ``path`` or ModelSpec fields).
SECTIONS: dict[str, tuple[str, ...]] = {
    "job": ("tokens", "seq_len", "global_batch", "precision", "flash_attention",
            "tp_comm_overlap", "grad_reduce_overlap", "zero3_impl", "grad_dtype",
            "ep_comm_overlap", "sequence_parallel", "moe_dispatcher", "fp8_dispatch",
            "moe_imbalance",
            "moments_dtype", "dropout", "fp8_params", "activation_offload",
            "unfused_expert_bias", *FAILURE_KEYS),
    "limits": ("accelerators", "gpus", "max_gpus", "deadline_days", "budget_usd",
               "tokens_per_step", "risk", "launcher"),
    "fixed": LAYOUT_FIELDS,
    "solve": ("objective", "time_limit_s", "top", "workers", "seed", "cost_model",
              "cost_params"),
}
#: Earlier spellings of keys, still read: ``[solve] time_limit`` is ``time_limit_s``.
KEY_ALIASES = {"time_limit": "time_limit_s"}
TOP_LEVEL = ("description", "model", *SECTIONS)
MODEL_SOURCES = ("preset", "path")


def check_value(key: str, value: Any, label: str) -> Any:
    """One value, checked and normalised; errors start with ``label`` (its origin)."""
    if key == "model":
        return value if isinstance(value, ModelSpec) else catalog.model(value, field=label)
    for section, check in _SECTION_CHECKS.items():
        if key in SECTIONS[section]:
            return check(key, value, label)
    raise SpecError(f"{label}: unknown key")  # not reached: keys are checked before


def _job_value(key: str, value: Any, label: str) -> Any:
    """A ``[job]`` value (``TrainingJob``'s ranges)."""
    if key == "tokens":
        return as_tokens(label, value)
    if key in ("seq_len", "global_batch"):
        return as_int(label, value, minimum=0)  # 0: the model's length, the solver's choice
    if key == "precision":
        return as_choice(label, value, PRECISIONS)
    if key in ("flash_attention", "tp_comm_overlap", "grad_reduce_overlap", "ep_comm_overlap",
               "sequence_parallel",
               "fp8_dispatch", "fp8_params", "activation_offload", "unfused_expert_bias",
               "failures",
               "async_checkpoint", "hot_spares"):
        return as_bool(label, value)
    if key in ("checkpoint_total_gb_s", "restart_min", "replace_min"):
        return as_float(label, value, strict=False)
    if key in ("mtbf_hours", "checkpoint_node_gb_s"):
        return as_float(label, value)
    if key == "zero3_impl":
        return as_choice(label, value, ZERO3_IMPLEMENTATIONS)
    if key == "grad_dtype":
        return as_choice(label, value, GRAD_DTYPES)
    if key == "moe_dispatcher":
        return as_choice(label, value, MOE_DISPATCHERS)
    if key == "moe_imbalance":
        return as_float(label, value, minimum=1.0, strict=False)
    if key == "moments_dtype":
        return as_choice(label, value, MOMENTS_DTYPES)
    if key == "dropout":  # TrainingJob's range
        return as_float(label, value, minimum=0.0, strict=False, maximum=DROPOUT_MAX)
    raise SpecError(f"{label}: unknown key")  # not reached: keys are checked before


def _limits_value(key: str, value: Any, label: str) -> Any:
    """A ``[limits]`` value (``Limits``'s ranges)."""
    if key == "accelerators":
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, (list, tuple)) or not names:
            raise fail(label, "a list of accelerator names", value)
        return tuple(dict.fromkeys(catalog.accelerator(n, field=label).name for n in names))
    if key in ("gpus", "max_gpus"):
        return as_int(label, value)
    if key in ("deadline_days", "budget_usd"):
        return as_float(label, value)
    if key == "risk":
        return as_choice(label, value, RISKS)
    if key == "launcher":
        return as_choice(label, value, LAUNCHERS)
    if key == "tokens_per_step":
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise fail(label, "a pair [low, high] of tokens per optimizer step", value)
        low, high = (as_tokens(label, v) for v in value)
        if low > high:
            raise fail(label, "low <= high", list(value))
        return (low, high)
    raise SpecError(f"{label}: unknown key")  # not reached: keys are checked before


def _fixed_value(key: str, value: Any, label: str) -> Any:
    """A ``[fixed]`` layout field (``Layout``'s ranges)."""
    if key == "recompute":
        return recompute_name(recompute_code(value, label))
    if key == "schedule":
        return as_choice(label, value, SCHEDULES)
    if key == "pipeline_split":
        return as_choice(label, value, PIPELINE_SPLITS)
    if key == "zero_stage":
        return as_int(label, value, minimum=0, maximum=3)
    if key in LAYOUT_FIELDS:
        return as_int(label, value)
    raise SpecError(f"{label}: unknown key")  # not reached: keys are checked before


def _solve_value(key: str, value: Any, label: str) -> Any:
    """A ``[solve]`` option (``solver.solve``'s ranges)."""
    if key == "objective":
        return as_choice(label, value, OBJECTIVES)
    if key == "time_limit_s":
        return as_float(label, value, maximum=MAX_TIME_LIMIT_S)
    if key == "top":
        return as_int(label, value, maximum=MAX_TOP)
    if key == "workers":
        return as_int(label, value, maximum=MAX_WORKERS)
    if key == "seed":
        return as_int(label, value, minimum=0, maximum=MAX_SEED)
    if key == "cost_model":
        if value is None:
            return None
        if not isinstance(value, str):
            raise fail(label, "a cost model name", value)
        return catalog.cost_model(value, field=label).name
    if key == "cost_params":
        if not isinstance(value, Mapping):
            raise fail(label, "a table of KEY = VALUE", value)
        for k, v in value.items():
            if isinstance(v, bool) or not isinstance(v, (str, int, float)):
                raise fail(f"{label}.{k}", "a number or a text", v)
        return dict(value)
    raise SpecError(f"{label}: unknown key")  # not reached: keys are checked before


_SECTION_CHECKS: dict[str, Callable[[str, Any, str], Any]] = {
    "job": _job_value, "limits": _limits_value, "fixed": _fixed_value, "solve": _solve_value,
}


# --------------------------------------------------------------------------------------------
# Reading a file.


@dataclass
class Values:
    """Scenario values by key (``tokens``, ``max_gpus``, ``tp``, ``model``, ...), each with the
    origin that errors name."""

    values: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    description: str = ""

    def set(self, key: str, value: Any, origin: str) -> None:
        self.values[key] = value
        self.origins[key] = origin


def read_values(path: str | Path) -> Values:
    """The checked values of a scenario file (any key may be absent)."""
    path = Path(path)
    data = read_toml_file(path, what="a scenario file", hint=" (a model file goes to --model)")
    return values_from_table(data, path)


def values_from_table(data: Mapping[str, Any], path: Path) -> Values:
    """The checked values of a scenario's parsed top-level table; ``path`` is the file the
    table came from (errors name it; a ``[model] path`` is relative to its folder)."""
    where = str(path)
    for key in data:
        if key not in TOP_LEVEL:
            raise unknown_name(f"{where}:", key, TOP_LEVEL, "section")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise fail(f"{where}: description", "a text", description)
    out = Values(description=description)
    if "model" in data:
        out.set("model", _model(as_table(data["model"], f"{where}: [model]"), path),
                f"{where}: [model]")
    for section, keys in SECTIONS.items():
        if section not in data:
            continue
        table = as_table(data[section], f"{where}: [{section}]")
        for written, value in table.items():
            key = KEY_ALIASES.get(written, written)
            if key not in keys:
                raise unknown_name(f"{where}: [{section}]", key, keys)
            label = f"{where}: [{section}] {written}"
            out.set(key, check_value(key, value, label), label)
    return out


def _model(table: dict[str, Any], path: Path) -> ModelSpec:
    where = f"{path}: [model]"
    given = [k for k in MODEL_SOURCES if k in table]
    fields = [k for k in table if k not in MODEL_SOURCES]
    if len(given) > 1 or (given and fields):
        other = given[1] if len(given) > 1 else fields[0]
        raise SpecError(f"{where}: expected one of preset, path or the model's fields, got "
                        f"both {given[0]} and {other}")
    if "preset" in table:
        preset = table["preset"]
        if not isinstance(preset, str):
            raise fail(f"{where} preset", "a preset name", preset)
        models = catalog.models()
        if preset not in models:
            raise SpecError(f"{where} preset: unknown model {preset!r:.60}"
                            f"{close_matches(preset, models)}")
        return models[preset]
    if "path" in table:
        file = table["path"]
        if not isinstance(file, str) or not file.strip():
            raise fail(f"{where} path", "a model file path", file)
        resolved = Path(file) if Path(file).is_absolute() else path.parent / file
        try:
            found = resolved.is_file()
        except (OSError, ValueError):
            found = False
        if not found:
            raise SpecError(f"{where} path: no such file {str(resolved)!r:.80}")
        return load_model_file(resolved)
    if not fields:
        raise SpecError(f"{where}: expected preset = NAME, path = FILE or the model's fields, "
                        f"got an empty table")
    return model_from_mapping({"name": path.stem, **table}, where=where)


__all__ = ["SECTIONS", "Values", "check_value", "read_values", "values_from_table"]
