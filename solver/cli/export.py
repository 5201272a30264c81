"""``--export megatron|torchtitan|deepspeed`` for ``gpuplan solve`` (docs/export.md).

Without ``--json`` the configuration is the only thing on stdout (so that
``gpuplan solve ... --export megatron > args.sh`` works) and one line about the plan goes to
stderr; with ``--json`` the plan's JSON gains a field ``export``. A plan without a layout
(infeasible, none found in time) has nothing to export: it is shown as without ``--export``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from solver.cli.common import print_json
from solver.errors import SpecError

if TYPE_CHECKING:
    from solver.plan import Plan
    from solver.specs import TrainingJob

ExportOpt = Annotated[str | None, typer.Option(
    "--export", help="Print the plan as a launcher config instead of the summary: "
    "megatron (bash array of Megatron-LM arguments), torchtitan (TOML), deepspeed (JSON).",
    show_default=False)]


def check_format(fmt: str | None) -> None:
    """Refuse an unknown format before any solving."""
    from solver.export import FORMATS

    if fmt is not None and fmt not in FORMATS:
        raise SpecError(f"--export: expected one of {'|'.join(FORMATS)}, "
                        f"got {fmt!r}")


def export_field(plan: Plan, job: TrainingJob, fmt: str) -> dict[str, Any] | None:
    """The ``export`` field of ``solve --json``: format, upstream version followed, text."""
    from solver.export import FOLLOWS, export

    if plan.estimate is None:
        return None
    return {"format": fmt, "follows": FOLLOWS[fmt],
            "text": export(plan, fmt, job=job)}


def emit(plan: Plan, job: TrainingJob, fmt: str, *, json_out: bool,
         show: Any) -> int:
    """Print the export of ``plan`` (or, without a plan, what ``show`` prints); the exit code."""
    from solver.export import export

    if json_out:
        data = plan.to_dict()
        data["export"] = export_field(plan, job, fmt)
        print_json(data)
        return plan.exit_code
    if plan.estimate is None:
        show(plan)
        sys.stderr.write(f"gpuplan: nothing to export: no plan (status {plan.status})\n")
        return plan.exit_code
    sys.stdout.write(export(plan, fmt, job=job))
    e = plan.estimate
    x = e.layout
    sys.stderr.write(f"gpuplan: {plan.status} plan, {x.gpus:,} x {x.accelerator} TP{x.tp} "
                     f"PP{x.pp} DP{x.dp} CP{x.cp} EP{x.ep} VP{x.vp}, "
                     f"{e.training_days:,.1f} days; {fmt} config on stdout\n")
    return plan.exit_code
