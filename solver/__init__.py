"""gpuplan: how many accelerators, laid out how, for how long, at what cost.

The public library API (docs/interface.md). Everything else is internal.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from solver.catalog import accelerator, accelerators, cost_models, models
    from solver.comparison import Comparison, compare
    from solver.costs import CostModel, CostParam
    from solver.design import Design, design
    from solver.errors import PluginError, SpecError
    from solver.estimate import Estimate
    from solver.evaluation import evaluate
    from solver.export import export
    from solver.fleet import FleetPlan, FleetSpec, fleet
    from solver.hookspecs import hookimpl
    from solver.pareto import ParetoFront, pareto
    from solver.plan import Plan
    from solver.search.solve import solve
    from solver.specs import Accelerator, Layout, Limits, ModelSpec, TrainingJob
    from solver.sweep import SweepResult, SweepSpec, sweep

__version__ = "0.1.0"

#: Where each public name lives. They are imported on first use, so that ``import solver``
#: (and ``gpuplan --help``) does not load the search (OR-Tools, pandas) or NumPy.
_HOMES = {
    "accelerator": "solver.catalog", "accelerators": "solver.catalog",
    "cost_models": "solver.catalog", "models": "solver.catalog",
    "Comparison": "solver.comparison", "compare": "solver.comparison",
    "CostModel": "solver.costs", "CostParam": "solver.costs",
    "Design": "solver.design", "design": "solver.design",
    "PluginError": "solver.errors", "SpecError": "solver.errors",
    "Estimate": "solver.estimate", "evaluate": "solver.evaluation", "export": "solver.export",
    "fleet": "solver.fleet", "FleetPlan": "solver.fleet", "FleetSpec": "solver.fleet",
    "hookimpl": "solver.hookspecs", "ParetoFront": "solver.pareto", "pareto": "solver.pareto",
    "Plan": "solver.plan", "solve": "solver.search.solve",
    "Accelerator": "solver.specs", "Layout": "solver.specs", "Limits": "solver.specs",
    "ModelSpec": "solver.specs", "TrainingJob": "solver.specs",
    "sweep": "solver.sweep", "SweepResult": "solver.sweep", "SweepSpec": "solver.sweep",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'solver' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})


class _Package(types.ModuleType):
    """``solver.pareto``, ``solver.export`` and ``solver.fleet`` are the functions, as when
    they were imported eagerly: loading the submodules of the same name later must not
    replace them."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _HOMES and isinstance(value, types.ModuleType):
            return  # the submodule stays in sys.modules; the name keeps the public function
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def model(name_or_path: str) -> ModelSpec:
    """A model preset by name, or a model file (TOML/JSON or Hugging Face ``config.json``)."""
    from solver.catalog import model as _model

    return _model(name_or_path)


__all__ = [
    "Accelerator",
    "Comparison",
    "CostModel",
    "CostParam",
    "Design",
    "Estimate",
    "FleetPlan",
    "FleetSpec",
    "Layout",
    "Limits",
    "ModelSpec",
    "ParetoFront",
    "Plan",
    "PluginError",
    "SpecError",
    "SweepResult",
    "SweepSpec",
    "TrainingJob",
    "__version__",
    "accelerator",
    "accelerators",
    "compare",
    "cost_models",
    "design",
    "evaluate",
    "export",
    "fleet",
    "hookimpl",
    "model",
    "models",
    "pareto",
    "solve",
    "sweep",
]
