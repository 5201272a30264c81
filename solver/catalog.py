"""The accelerator and model catalogs, as plugins provide them.

Names are lower-case slugs; an accelerator may also be named by one of its aliases
(``a100`` -> ``a100-sxm4-80gb``). An unknown name is a ``SpecError`` listing close matches.
"""

from __future__ import annotations

from pathlib import Path

from solver import plugins
from solver.costs import CostModel
from solver.errors import SpecError
from solver.model_files import load_model_file
from solver.specs import Accelerator, ModelSpec
from solver.validate import close_matches


def accelerators() -> dict[str, Accelerator]:
    """Every accelerator, by name, in name order."""
    found = plugins.collect("gpuplan_accelerators", Accelerator, lambda a: a.name)
    return {name: found[name][0] for name in sorted(found)}


def accelerator_provider(name: str) -> str:
    return plugins.collect("gpuplan_accelerators", Accelerator, lambda a: a.name)[name][1]


def _aliases(catalog: dict[str, Accelerator]) -> dict[str, str]:
    table: dict[str, str] = {}
    for acc in catalog.values():
        for alias in acc.aliases:
            if alias not in catalog:
                table.setdefault(alias, acc.name)
    return table


def _unknown(kind: str, name: str, options: list[str], field: str,
             listed: list[str] | None = None) -> SpecError:
    shown = repr(name) if len(name) <= 60 else repr(name[:57] + "...")
    return SpecError(f"{field}: unknown {kind} {shown}{close_matches(name, options, listed)}")


def accelerator(name: str, *, field: str = "accelerator") -> Accelerator:
    """Look one accelerator up by name or alias."""
    if not isinstance(name, str) or not name.strip():
        raise SpecError(f"{field}: expected an accelerator name, got {name!r:.60}")
    catalog = accelerators()
    key = name.strip().lower()
    if key in catalog:
        return catalog[key]
    aliases = _aliases(catalog)
    if key in aliases:
        return catalog[aliases[key]]
    raise _unknown("accelerator", name, sorted([*catalog, *aliases]), field, sorted(catalog))


def models() -> dict[str, ModelSpec]:
    found = plugins.collect("gpuplan_models", ModelSpec, lambda m: m.name)
    return {name: found[name][0] for name in sorted(found)}


def cost_model_entries() -> dict[str, tuple[CostModel, str]]:
    """Every cost model, by name, with the plugin that provides it."""
    return plugins.collect("gpuplan_cost_models", CostModel, lambda c: c.name)


def cost_models() -> dict[str, CostModel]:
    """Every cost model, by name, in name order."""
    found = cost_model_entries()
    return {name: found[name][0] for name in sorted(found)}


def cost_model(name: str, *, field: str = "cost_model") -> CostModel:
    """Look one cost model up by name."""
    catalog = cost_models()
    key = name.strip().lower() if isinstance(name, str) else name
    if key in catalog:
        return catalog[key]
    raise _unknown("cost model", str(name), sorted(catalog), field)


def provided_by() -> dict[str, dict[str, list[str]]]:
    """What each plugin provides: ``{plugin: {"accelerators": [...], "cost_models": [...],
    "models": [...]}}``."""
    out: dict[str, dict[str, list[str]]] = {}
    found: list[tuple[str, dict[str, str]]] = [
        ("accelerators", {n: p for n, (_, p) in plugins.collect(
            "gpuplan_accelerators", Accelerator, lambda a: a.name).items()}),
        ("cost_models", {n: p for n, (_, p) in cost_model_entries().items()}),
        ("models", {n: p for n, (_, p) in plugins.collect(
            "gpuplan_models", ModelSpec, lambda m: m.name).items()}),
    ]
    for kind, providers in found:
        for name in sorted(providers):
            out.setdefault(providers[name], {}).setdefault(kind, []).append(name)
    return out


def model(name_or_path: str, *, field: str = "model") -> ModelSpec:
    """A preset by name, or a model file (TOML/JSON model file or HF ``config.json``)."""
    if isinstance(name_or_path, Path):
        name_or_path = str(name_or_path)
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise SpecError(f"{field}: expected a preset name or a model file, "
                        f"got {name_or_path!r:.60}")
    catalog = models()
    for key in (name_or_path, name_or_path.strip().lower()):
        if key in catalog:
            return catalog[key]
    path = Path(name_or_path)
    try:
        exists, is_file = path.exists(), path.is_file()
    except (OSError, ValueError) as err:  # a name too long for a path, a NUL byte
        raise SpecError(f"{field}: not a preset and not a readable file "
                        f"({getattr(err, 'strerror', None) or err}): {name_or_path!r:.60}"
                        ) from None
    if path.suffix.lower() in (".toml", ".json") or exists:
        if path.is_dir():
            raise SpecError(f"{field}: {name_or_path!r:.60} is a folder, expected a model file "
                            f"(.toml or .json)")
        if not is_file:
            raise SpecError(f"{field}: no such file {name_or_path!r:.60}")
        return load_model_file(path)
    raise _unknown("model", name_or_path, sorted(catalog), field)
