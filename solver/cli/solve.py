"""``gpuplan solve``: the best layout under limits, with a proof of optimality."""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import typer

from solver.cli import render
from solver.cli.common import (
    CostModelOpt,
    CostParamOpt,
    FlashOpt,
    GlobalBatchOpt,
    JsonOpt,
    ModelOpt,
    PrecisionOpt,
    SeqLenOpt,
    TokensOpt,
    as_option_error,
    build_job,
    parse_cost_params,
    print_json,
)
from solver.cli.export import ExportOpt, check_format, emit
from solver.errors import SpecError
from solver.plan import Plan
from solver.search.solve import solve as run_solve
from solver.specs import Limits

Fix = Annotated[int | None, typer.Option(help="Fix this layout dimension.", show_default=False)]


class Progress:
    """Progress on stderr, only on a terminal and only once a solve runs past a second."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.enabled = sys.stderr.isatty()

    def __call__(self, message: str) -> None:
        if self.enabled and time.perf_counter() - self.started > 1.0:
            sys.stderr.write(f"\r\x1b[2K{message}")
            sys.stderr.flush()

    def done(self) -> None:
        if self.enabled and time.perf_counter() - self.started > 1.0:
            sys.stderr.write("\r\x1b[2K")


def solve(
    model: ModelOpt,
    tokens: TokensOpt,
    gpu: Annotated[list[str] | None, typer.Option("--gpu", help="Candidate accelerator "
                                                  "(repeatable; default: all).")] = None,
    gpus: Annotated[int | None, typer.Option("--gpus", help="Exactly this many "
                                             "accelerators.")] = None,
    max_gpus: Annotated[int | None, typer.Option("--max-gpus", help="At most this many "
                                                 "accelerators.")] = None,
    deadline_days: Annotated[float | None, typer.Option("--deadline-days")] = None,
    budget_usd: Annotated[float | None, typer.Option("--budget-usd")] = None,
    objective: Annotated[str, typer.Option("--objective", help="time|cost|gpus|energy")
                         ] = "time",
    global_batch: GlobalBatchOpt = 0,
    seq_len: SeqLenOpt = 0,
    precision: PrecisionOpt = "bf16",
    flash_attention: FlashOpt = True,
    time_limit: Annotated[float, typer.Option("--time-limit", help="Seconds.")] = 60.0,
    top: Annotated[int, typer.Option("--top", help="List the K best distinct layouts.")] = 1,
    workers: Annotated[int, typer.Option("--workers", help="CP-SAT workers.")] = 2,
    seed: Annotated[int, typer.Option("--seed", help="CP-SAT random seed.")] = 0,
    tp: Fix = None, pp: Fix = None, dp: Fix = None, cp: Fix = None, ep: Fix = None,
    vp: Fix = None,
    micro_batch: Annotated[int | None, typer.Option("--micro-batch", show_default=False)
                           ] = None,
    zero: Annotated[int | None, typer.Option("--zero", show_default=False)] = None,
    recompute: Annotated[str | None, typer.Option("--recompute", show_default=False)] = None,
    cost_model: CostModelOpt = None,
    cost_param: CostParamOpt = None,
    export: ExportOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Find the best layout: accelerator, count, tp/pp/dp/cp/ep/vp, batch, ZeRO, recompute."""
    check_format(export)
    job = build_job(model, tokens, seq_len, global_batch, precision, flash_attention)
    fixed: dict[str, Any] = {k: v for k, v in {
        "tp": tp, "pp": pp, "dp": dp, "cp": cp, "ep": ep, "vp": vp, "micro_batch": micro_batch,
        "zero_stage": zero, "recompute": recompute}.items() if v is not None}
    try:
        limits = Limits(accelerators=tuple(gpu or ()), gpus=gpus, max_gpus=max_gpus,
                        deadline_days=deadline_days, budget_usd=budget_usd, fixed=fixed)
    except SpecError as err:
        message = str(err).replace("fixed.zero_stage", "zero").replace("fixed.", "")
        raise as_option_error(SpecError(message)) from None
    if workers < 1:
        raise SpecError(f"--workers: expected an integer >= 1, got {workers}")
    cost_params = parse_cost_params(cost_param)
    progress = Progress()
    try:
        plan = run_solve(job, limits, objective=objective, time_limit_s=time_limit,
                         workers=workers, seed=seed, top=top, progress=progress,
                         cost_model=cost_model, cost_params=cost_params)
    except SpecError as err:
        raise as_option_error(err) from None
    finally:
        progress.done()
    if export is not None:
        raise typer.Exit(emit(plan, job, export, json_out=json_out, show=show))
    if json_out:
        print_json(plan.to_dict())
    else:
        show(plan)
    raise typer.Exit(plan.exit_code)


def show(plan: Plan) -> None:
    render.console.print(f"[bold]status[/bold]: {plan.status}   objective: {plan.objective}   "
                         f"solved in {plan.solve_time_s:.2f} s over {plan.candidates:,} "
                         f"layouts ({plan.rows:,} after pruning)")
    if plan.estimate is not None:
        render.estimate(plan.estimate, title="Plan")
    for line in plan.explanation:
        render.console.print(f"- {line}")
    if plan.alternatives:
        rows = [[1, plan.estimate.layout.accelerator if plan.estimate else "-",
                 *_summary(plan.estimate)] if plan.estimate else []]
        rows += [[i + 2, e.layout.accelerator, *_summary(e)]
                 for i, e in enumerate(plan.alternatives)]
        render.table(["#", "accelerator", "gpus", "layout", "days", "cost $", "MFU"], rows,
                     title="Best distinct layouts")
    for note in plan.notes:
        render.console.print(f"[dim]note: {note}[/dim]")


def _summary(e: Any) -> list[Any]:
    x = e.layout
    return [x.gpus, f"TP{x.tp} PP{x.pp} DP{x.dp} CP{x.cp} EP{x.ep} VP{x.vp} mb{x.micro_batch}"
            f" Z{x.zero_stage} {x.recompute}", e.training_days, e.cost_usd, f"{e.mfu:.1%}"]
