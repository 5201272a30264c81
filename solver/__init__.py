"""gpuplan: how many accelerators, laid out how, for how long, at what cost.

The public library API (docs/interface.md). Everything else is internal.
"""

from __future__ import annotations

from solver.catalog import accelerator, accelerators, cost_models, models
from solver.catalog import model as _model
from solver.comparison import Comparison, compare
from solver.costs import CostModel, CostParam
from solver.errors import PluginError, SpecError
from solver.estimate import Estimate
from solver.evaluation import evaluate
from solver.export import export
from solver.hookspecs import hookimpl
from solver.pareto import ParetoFront, pareto
from solver.plan import Plan
from solver.search.solve import solve
from solver.specs import Accelerator, Layout, Limits, ModelSpec, TrainingJob

__version__ = "0.1.0"


def model(name_or_path: str) -> ModelSpec:
    """A model preset by name, or a model file (TOML/JSON or Hugging Face ``config.json``)."""
    return _model(name_or_path)


__all__ = [
    "Accelerator",
    "Comparison",
    "CostModel",
    "CostParam",
    "Estimate",
    "Layout",
    "Limits",
    "ModelSpec",
    "ParetoFront",
    "Plan",
    "PluginError",
    "SpecError",
    "TrainingJob",
    "__version__",
    "accelerator",
    "accelerators",
    "compare",
    "cost_models",
    "evaluate",
    "export",
    "hookimpl",
    "model",
    "models",
    "pareto",
    "solve",
]
