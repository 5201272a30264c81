"""``gpuplan pareto``: training time against cost (or GPU count, or energy), one solve a point."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import typer
from rich import box
from rich.table import Table

from solver.cli import pareto_options as o
from solver.cli import render
from solver.cli.common import (
    ActivationOffloadOpt,
    CandidatesOpt,
    CostModelOpt,
    CostParamOpt,
    DropoutOpt,
    EpOverlapOpt,
    FailureParamOpt,
    FailuresOpt,
    Fix,
    FlashOpt,
    Fp8DispatchOpt,
    Fp8ParamsOpt,
    GlobalBatchOpt,
    GradDtypeOpt,
    GradOverlapOpt,
    JsonOpt,
    MaxGpusOpt,
    MicroBatchFix,
    ModelOpt,
    MoeDispatcherOpt,
    MoeImbalanceOpt,
    MomentsDtypeOpt,
    MtbfOpt,
    PrecisionOpt,
    RecomputeFix,
    ScheduleFix,
    SeqLenOpt,
    SeqParallelOpt,
    SplitFix,
    TokensOpt,
    TpOverlapOpt,
    UnfusedExpertBiasOpt,
    Zero3ImplOpt,
    ZeroFix,
    as_option_error,
    build_job,
    failure_fields,
    parse_cost_params,
    print_json,
)
from solver.cli.output import Progress, check_plot_option
from solver.errors import SpecError
from solver.specs import Limits, TrainingJob

if TYPE_CHECKING:  # the search (OR-Tools) is imported when a command runs, not for --help
    from solver.estimate import Estimate
    from solver.pareto import ParetoFront

#: solver.pareto.DEFAULT_POINTS, here so that the help does not import the search (a test
#: checks they agree).
DEFAULT_POINTS = 12

#: Exit code by front status, as ``solve``'s (docs/interface.md, exit codes).
EXIT_CODES = {"complete": 0, "sampled": 0, "infeasible": 1, "unknown": 3}


def pareto(
    model: ModelOpt,
    tokens: TokensOpt,
    gpu: CandidatesOpt = None,
    max_gpus: MaxGpusOpt = None,
    deadline_days: o.DeadlineDays = None,
    budget_usd: o.BudgetUsd = None,
    launcher: o.Launcher = None,
    axes: o.Axes = "time,cost",
    points: o.Points = DEFAULT_POINTS,
    plot: o.Plot = None,
    global_batch: GlobalBatchOpt = None,
    seq_len: SeqLenOpt = None,
    precision: PrecisionOpt = "bf16",
    flash_attention: FlashOpt = True,
    tp_comm_overlap: TpOverlapOpt = False,
    grad_reduce_overlap: GradOverlapOpt = True,
    zero3_impl: Zero3ImplOpt = "fsdp",
    grad_dtype: GradDtypeOpt = "fp32",
    ep_comm_overlap: EpOverlapOpt = False,
    sequence_parallel: SeqParallelOpt = True,
    moe_dispatcher: MoeDispatcherOpt = "alltoall",
    fp8_dispatch: Fp8DispatchOpt = False,
    moe_imbalance: MoeImbalanceOpt = 1.0,
    moments_dtype: MomentsDtypeOpt = "fp32",
    dropout: DropoutOpt = None,
    fp8_params: Fp8ParamsOpt = False,
    activation_offload: ActivationOffloadOpt = False,
    unfused_expert_bias: UnfusedExpertBiasOpt = False,
    failures: FailuresOpt = True,
    mtbf_hours: MtbfOpt = None,
    failure_param: FailureParamOpt = None,
    time_limit: o.TimeLimit = 60.0,
    workers: o.Workers = 2,
    seed: o.Seed = 0,
    tp: Fix = None, pp: Fix = None, dp: Fix = None, cp: Fix = None, ep: Fix = None,
    vp: Fix = None,
    micro_batch: MicroBatchFix = None,
    zero: ZeroFix = None,
    recompute: RecomputeFix = None,
    schedule: ScheduleFix = None,
    pipeline_split: SplitFix = None,
    cost_model: CostModelOpt = None,
    cost_param: CostParamOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The Pareto front of training time against cost or GPU count; each point proven."""
    from solver.export import tokens_text
    from solver.scenario import check_value

    axis_pair = _checked_axes(axes, plot)
    time_limit = check_value("time_limit_s", time_limit, "--time-limit-s")
    workers = check_value("workers", workers, "--workers")
    seed = check_value("seed", seed, "--seed")
    job = build_job(model, tokens, seq_len, global_batch, precision, flash_attention,
                    tp_comm_overlap, grad_reduce_overlap, zero3_impl, grad_dtype,
                    ep_comm_overlap, moe_dispatcher, fp8_dispatch, moe_imbalance,
                    moments_dtype, dropout, fp8_params, activation_offload,
                    unfused_expert_bias=unfused_expert_bias,
                    sequence_parallel=sequence_parallel,
                    failures=failure_fields(failures, mtbf_hours, failure_param))
    fixed: dict[str, Any] = {k: v for k, v in {
        "tp": tp, "pp": pp, "dp": dp, "cp": cp, "ep": ep, "vp": vp, "micro_batch": micro_batch,
        "zero_stage": zero, "recompute": recompute, "schedule": schedule,
        "pipeline_split": pipeline_split}.items() if v is not None}
    limits = {"accelerators": tuple(gpu or ()), "max_gpus": max_gpus,
              "deadline_days": deadline_days, "budget_usd": budget_usd, "fixed": fixed,
              "launcher": launcher}
    front = _search(job, limits, axes=axis_pair, points=points, time_limit_s=time_limit,
                    workers=workers, seed=seed, cost_model=cost_model,
                    cost_param=cost_param)
    if json_out:
        print_json(front.to_dict())
    else:
        show(front, f"{job.model.name}, {tokens_text(job.tokens)} tokens")
    if plot is not None and front.points:
        _draw(front, plot, f"{job.model.name}, {tokens_text(job.tokens)} tokens")
    raise typer.Exit(EXIT_CODES[front.status])


def _search(job: TrainingJob, limit_fields: dict[str, Any], *, axes: list[str], points: int,
            time_limit_s: float, workers: int, seed: int, cost_model: str | None,
            cost_param: list[str] | None) -> ParetoFront:
    """The front under ``Limits(**limit_fields)``; a bad limit or fixed field is an option
    error naming the option."""
    from solver.launchers import check_fixed
    from solver.pareto import pareto as run_pareto
    from solver.scenario import check_question

    try:
        limits = Limits(**limit_fields)
        check_question(job, limits)
        if limits.launcher is not None:  # what the launcher cannot run, before any search
            check_fixed(limits.launcher, job, dict(limits.fixed))
        progress = Progress()
        try:
            return run_pareto(job, limits, axes=axes, points=points, time_limit_s=time_limit_s,
                              workers=workers, seed=seed, cost_model=cost_model,
                              cost_params=parse_cost_params(cost_param), progress=progress)
        finally:
            progress.done()
    except SpecError as err:
        message = str(err).replace("fixed.zero_stage", "zero").replace("fixed.", "")
        raise as_option_error(SpecError(message)) from None


def _checked_axes(axes: str, plot: str | None) -> list[str]:
    """``--axes`` as its two axes, after checking it and ``--plot`` (the file name and its
    folder first, then the optional extra), before any search."""
    from solver.pareto import SECOND_AXES

    axis_pair = [a.strip().lower() for a in axes.split(",")]
    if len(axis_pair) != 2 or axis_pair[0] != "time" or \
            axis_pair[1] not in SECOND_AXES:
        raise SpecError(f"--axes: expected time,cost or time,gpus (or time,energy), "
                        f"got {axes!r}")
    if plot is not None:
        check_plot_option(plot)
    return axis_pair


def _draw(front: ParetoFront, plot: str, what: str) -> None:
    """Draw ``front`` to ``plot`` (``--plot``), titled with ``what`` (model, tokens)."""
    try:
        path = front.plot(plot, title=f"{what}: training time vs {front.axes[1]} "
                          f"({front.status}, {len(front.points)} points, each optimal for "
                          "its bound)")
    except SpecError as err:
        raise as_option_error(err) from None
    sys.stderr.write(f"gpuplan: wrote {path}\n")


def short_layout(e: Estimate) -> str:
    """``TP8 PP4 DP64 CP2 mb1 Z1 full``: TP, PP, DP, the others above 1, micro-batch, ZeRO,
    recomputation (full, sel; nothing for none), then the schedule and pipeline split when not
    1f1b and even (``dualpipe split both``)."""
    x = e.layout
    parts = [f"TP{x.tp}", f"PP{x.pp}", f"DP{x.dp}"]
    parts += [f"{n}{v}" for n, v in (("CP", x.cp), ("EP", x.ep), ("VP", x.vp)) if v > 1]
    parts.append(f"mb{x.micro_batch} Z{x.zero_stage}")
    if x.recompute != "none":
        parts.append({"selective": "sel"}.get(x.recompute, x.recompute))
    parts += render.pipeline_words(x)
    return " ".join(parts)


def money(value: float) -> str:
    if value != value:
        return "-"
    if abs(value) >= 1e6:
        return f"{value / 1e6:,.1f}M"
    if abs(value) >= 1e3:
        return f"{value / 1e3:,.1f}k"
    return f"{value:,.0f}"


def show(front: ParetoFront, what: str) -> None:
    console = render.console
    second = front.axes[1]
    console.print(f"[bold]Pareto front[/bold]: {what}; training time vs {second}")
    console.print(f"{front.status}: {len(front.points)} points from {front.solves} solves in "
                  f"{front.solve_time_s:.1f} s")
    for line in front.explanation:
        console.print(f"- {line}")
    if front.points:
        table = Table(box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), show_edge=False)
        table.add_column("#", justify="right")
        table.add_column("days", justify="right")
        table.add_column({"cost": "USD", "gpus": "USD", "energy": "MWh"}[second],
                         justify="right")
        table.add_column("GPUs", justify="right")
        table.add_column("accelerator")
        table.add_column("layout")
        table.add_column("MFU", justify="right")
        for i, plan in enumerate(front.points):
            e = plan.estimate
            assert e is not None
            third = money(e.cost_usd) if second != "energy" else f"{e.energy_mwh:,.0f}"
            table.add_row(str(i + 1), f"{e.wall_clock_days:,.1f}", third,
                          f"{e.layout.gpus:,}", e.layout.accelerator, short_layout(e),
                          f"{e.mfu:.1%}")
        console.print(table)
    for note in front.notes:
        console.print(f"[dim]note: {note}[/dim]")
