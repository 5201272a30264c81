"""The typed inputs of gpuplan: model, job, accelerator, layout and limits.

Each is a frozen dataclass that validates itself on construction and raises ``SpecError`` naming
the offending field (docs/interface.md, "Library"). Field names and defaults are the public
contract.

This module is the public facade: the classes live in ``solver.model_spec`` (``ModelSpec``),
``solver.job_spec`` (``TrainingJob``), ``solver.accelerator_spec`` (``Accelerator``) and
``solver.layout_spec`` (``Layout``, ``Limits``), and every name is importable from here.
"""

from __future__ import annotations

from solver.accelerator_spec import PEAK_KEYS as PEAK_KEYS
from solver.accelerator_spec import SCALEUP_TOPOLOGIES as SCALEUP_TOPOLOGIES
from solver.accelerator_spec import Accelerator as Accelerator
from solver.job_spec import GRAD_DTYPES as GRAD_DTYPES
from solver.job_spec import MOE_DISPATCHERS as MOE_DISPATCHERS
from solver.job_spec import MOMENTS_DTYPES as MOMENTS_DTYPES
from solver.job_spec import PRECISIONS as PRECISIONS
from solver.job_spec import ZERO3_IMPLEMENTATIONS as ZERO3_IMPLEMENTATIONS
from solver.job_spec import TrainingJob as TrainingJob
from solver.layout_spec import LAYOUT_FIELDS as LAYOUT_FIELDS
from solver.layout_spec import RECOMPUTE_MODES as RECOMPUTE_MODES
from solver.layout_spec import RISKS as RISKS
from solver.layout_spec import Layout as Layout
from solver.layout_spec import Limits as Limits
from solver.model_spec import DROPOUT_MAX as DROPOUT_MAX
from solver.model_spec import NORMS as NORMS
from solver.model_spec import POSITION_EMBEDDINGS as POSITION_EMBEDDINGS
from solver.model_spec import ROPE_SCALINGS as ROPE_SCALINGS
from solver.model_spec import ROPE_SCALINGS_WITH_ORIGINAL as ROPE_SCALINGS_WITH_ORIGINAL
from solver.model_spec import ROUTER_BALANCES as ROUTER_BALANCES
from solver.model_spec import ROUTER_SCORES as ROUTER_SCORES
from solver.model_spec import ModelSpec as ModelSpec

__all__ = ["Accelerator", "Layout", "Limits", "ModelSpec", "TrainingJob"]
