"""The keys a sweep's axes name: ``section.key`` of the scenario file (``job.tokens``,
``limits.accelerators``, ``model.preset``, ``solve.cost_params.NAME``), and the check of one
value of each, the scenario file's own (``check_value``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from solver.scenario_files import KEY_ALIASES, SECTIONS, check_value
from solver.validate import fail, unknown_name


def axis_keys() -> tuple[str, ...]:
    """Every ``section.key`` an axis may name (``solve.cost_params.NAME`` apart)."""
    keys = ["model.preset", "model.path"]
    for section, names in SECTIONS.items():
        keys += [f"{section}.{k}" for k in names if k != "cost_params"]
    return tuple(keys)


def scenario_key(path: str) -> str:
    """``job.tokens`` -> ``tokens``; ``model.preset`` -> ``model``;
    ``solve.cost_params.price_usd_per_hour`` -> ``cost_params.price_usd_per_hour``."""
    section, _, key = path.partition(".")
    if section == "model":
        return "model"
    if key.startswith("cost_params."):
        return key
    return KEY_ALIASES.get(key, key)


def check_axis_key(key: str, label: str) -> None:
    """``SpecError`` (``label unknown key 'x'; did you mean ...``) for a key no axis may
    name."""
    if key.startswith("solve.cost_params.") and len(key) > len("solve.cost_params."):
        return
    if key not in axis_keys():
        raise unknown_name(label, key, (*axis_keys(), "solve.cost_params.NAME"))


def checker(key: str, path: Path) -> Callable[[Any, str], Any]:
    """The check of one value of axis ``key`` (``check_value``, or a cost parameter's)."""
    name = scenario_key(key)

    def check(value: Any, label: str) -> Any:
        if name == "model":
            if key == "model.path":
                if not isinstance(value, str):
                    raise fail(label, "a model file path", value)
                value = str(value if Path(value).is_absolute() else path.parent / value)
            return check_value("model", value, label)
        if name.startswith("cost_params."):
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise fail(label, "a number or a text", value)
            return value
        return check_value(name, value, label)

    return check


__all__ = ["axis_keys", "check_axis_key", "checker", "scenario_key"]
