"""``solver.export``: a plan as a launcher's configuration (Megatron-LM, torchtitan, DeepSpeed).

Each exporter writes what the launcher can express of the plan (layout, model shape, batch,
precision, recomputation) and says in a comment what it cannot, never silently. The names
used were checked against one version of each project, named in ``FOLLOWS`` and in
``docs/export.md``; ``tests/data/megatron_flags.txt`` and ``tests/data/torchtitan_fields.txt``
hold the verified excerpts that ``tests/test_export.py`` checks every exported name against.
"""

from __future__ import annotations

from solver.errors import SpecError
from solver.estimate import Estimate
from solver.export.common import (
    DEEPSPEED_COMMIT,
    FOLLOWS,
    FORMATS,
    MEGATRON_LM_COMMIT,
    TORCHTITAN_COMMIT,
    stage_layers,
    tokens_text,
)
from solver.export.deepspeed import deepspeed
from solver.export.megatron import MEGATRON_FLAGS, megatron
from solver.export.torchtitan import TORCHTITAN_MODELS, torchtitan
from solver.plan import Plan
from solver.specs import TrainingJob


def export(plan_or_estimate: Plan | Estimate, fmt: str, *, job: TrainingJob) -> str:
    """The plan as ``fmt``: ``megatron`` (bash array of Megatron-LM arguments), ``torchtitan``
    (TOML job config) or ``deepspeed`` (JSON config). ``job`` gives the model and the tokens.

    Raises ``SpecError`` for an unknown format or a plan without a layout (infeasible).
    """
    if fmt not in FORMATS:
        raise SpecError(f"export: expected one of {'|'.join(FORMATS)}, got {fmt!r}")
    est = plan_or_estimate.estimate if isinstance(plan_or_estimate, Plan) else plan_or_estimate
    if not isinstance(est, Estimate):
        status = getattr(plan_or_estimate, "status", "?")
        raise SpecError(f"export: the plan has no layout to export (status {status})")
    if not isinstance(job, TrainingJob):
        raise SpecError("job: expected the TrainingJob the plan was made for")
    return {"megatron": megatron, "torchtitan": torchtitan, "deepspeed": deepspeed}[fmt](
        est, job)


__all__ = ["DEEPSPEED_COMMIT", "FOLLOWS", "FORMATS", "MEGATRON_FLAGS", "MEGATRON_LM_COMMIT",
           "TORCHTITAN_COMMIT", "TORCHTITAN_MODELS", "deepspeed", "export", "megatron",
           "stage_layers", "tokens_text", "torchtitan"]
