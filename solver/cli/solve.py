"""``gpuplan solve``: the best layout under limits, with a proof of optimality."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from solver.cli import render
from solver.cli import solve_options as q
from solver.cli.common import (
    COUNT_OPTIONS,
    FAILURE_PARAMS,
    CandidatesOpt,
    CostModelOpt,
    CostParamOpt,
    FailureParamOpt,
    Fix,
    JsonOpt,
    MaxGpusOpt,
    MicroBatchFix,
    MtbfOpt,
    RecomputeFix,
    ScheduleFix,
    SplitFix,
    ZeroFix,
    as_option_error,
    failure_fields,
    given_count,
    parse_cost_params,
    print_json,
)
from solver.cli.export import ExportOpt, check_format, emit
from solver.cli.output import OutputOpt, Progress, stdout_to, wants_json
from solver.errors import SpecError

if TYPE_CHECKING:  # the search and the step model load when a command runs, not for --help
    from solver.plan import Plan
    from solver.scenario import Scenario
    from solver.specs import TrainingJob


#: The option that sets each scenario key (errors name it).
OPTIONS = {
    "model": "--model", "tokens": "--tokens", "seq_len": "--seq-len",
    "global_batch": "--global-batch", "precision": "--precision",
    "flash_attention": "--flash-attention", "tp_comm_overlap": "--tp-comm-overlap",
    "grad_reduce_overlap": "--grad-reduce-overlap", "zero3_impl": "--zero3-impl",
    "grad_dtype": "--grad-dtype", "ep_comm_overlap": "--ep-comm-overlap",
    "sequence_parallel": "--sequence-parallel",
    "moe_dispatcher": "--moe-dispatcher", "fp8_dispatch": "--fp8-dispatch",
    "moe_imbalance": "--moe-imbalance", "moments_dtype": "--moments-dtype",
    "dropout": "--dropout", "fp8_params": "--fp8-params",
    "activation_offload": "--activation-offload", "unfused_expert_bias": "--unfused-expert-bias",
    "failures": "--failures", "mtbf_hours": "--mtbf-hours",
    **{key: "--failure-param" for key in FAILURE_PARAMS},
    "accelerators": "--gpu", "gpus": "--gpus",
    "max_gpus": "--max-gpus", "deadline_days": "--deadline-days", "budget_usd": "--budget-usd",
    "risk": "--risk", "launcher": "--launcher",
    "tp": "--tp", "pp": "--pp", "dp": "--dp", "cp": "--cp", "ep": "--ep", "vp": "--vp",
    "micro_batch": "--micro-batch", "zero_stage": "--zero", "recompute": "--recompute",
    "schedule": "--schedule", "pipeline_split": "--pipeline-split",
    "objective": "--objective", "time_limit_s": "--time-limit-s", "top": "--top",
    "workers": "--workers", "seed": "--seed", "cost_model": "--cost-model",
    "cost_params": "--cost-param",
}

ScenarioArg = Annotated[Path | None, typer.Argument(
    help="Scenario file (TOML; docs/scenarios.md). Options given here override its values.",
    show_default=False, metavar="[SCENARIO.toml]")]


def solve(
    scenario: ScenarioArg = None,
    model: q.Model = None,
    tokens: q.Tokens = None,
    gpu: CandidatesOpt = None,
    gpus: q.Gpus = None,
    max_gpus: MaxGpusOpt = None,
    deadline_days: q.DeadlineDays = None,
    risk: q.Risk = None,
    launcher: q.Launcher = None,
    budget_usd: q.BudgetUsd = None,
    objective: q.Objective = None,
    global_batch: q.GlobalBatch = None,
    seq_len: q.SeqLen = None,
    precision: q.Precision = None,
    flash_attention: q.FlashAttention = None,
    tp_comm_overlap: q.TpCommOverlap = None,
    grad_reduce_overlap: q.GradReduceOverlap = None,
    zero3_impl: q.Zero3Impl = None,
    ep_comm_overlap: q.EpCommOverlap = None,
    grad_dtype: q.GradDtype = None,
    sequence_parallel: q.SequenceParallel = None,
    moe_dispatcher: q.MoeDispatcher = None,
    fp8_dispatch: q.Fp8Dispatch = None,
    moe_imbalance: q.MoeImbalance = None,
    moments_dtype: q.MomentsDtype = None,
    dropout: q.Dropout = None,
    fp8_params: q.Fp8Params = None,
    activation_offload: q.ActivationOffload = None,
    unfused_expert_bias: q.UnfusedExpertBias = None,
    failures: q.Failures = None,
    mtbf_hours: MtbfOpt = None,
    failure_param: FailureParamOpt = None,
    time_limit: q.TimeLimit = None,
    top: q.Top = None,
    workers: q.Workers = None,
    seed: q.Seed = None,
    tp: Fix = None, pp: Fix = None, dp: Fix = None, cp: Fix = None, ep: Fix = None,
    vp: Fix = None,
    micro_batch: MicroBatchFix = None,
    zero: ZeroFix = None,
    recompute: RecomputeFix = None,
    schedule: ScheduleFix = None,
    pipeline_split: SplitFix = None,
    cost_model: CostModelOpt = None,
    cost_param: CostParamOpt = None,
    export: ExportOpt = None,
    output: OutputOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Find the best layout: accelerator, count, tp/pp/dp/cp/ep/vp, batch, ZeRO, recompute."""
    check_format(export)
    options = {
        "model": model, "tokens": tokens, "seq_len": seq_len, "global_batch": global_batch,
        "precision": precision, "flash_attention": flash_attention,
        "tp_comm_overlap": tp_comm_overlap, "grad_reduce_overlap": grad_reduce_overlap,
        "zero3_impl": zero3_impl, "grad_dtype": grad_dtype,
        "ep_comm_overlap": ep_comm_overlap, "moe_dispatcher": moe_dispatcher,
        "sequence_parallel": sequence_parallel,
        "fp8_dispatch": fp8_dispatch, "moe_imbalance": moe_imbalance,
        "moments_dtype": moments_dtype, "dropout": dropout, "fp8_params": fp8_params,
        "activation_offload": activation_offload, "unfused_expert_bias": unfused_expert_bias,
        **failure_fields(failures, mtbf_hours, failure_param),
        "accelerators": gpu or None, "gpus": gpus, "max_gpus": max_gpus,
        "deadline_days": deadline_days, "budget_usd": budget_usd, "risk": risk,
        "launcher": launcher,
        "tp": tp, "pp": pp, "dp": dp,
        "cp": cp, "ep": ep, "vp": vp, "micro_batch": micro_batch, "zero_stage": zero,
        "recompute": recompute, "schedule": schedule, "pipeline_split": pipeline_split,
        "objective": objective, "time_limit_s": time_limit, "top": top,
        "workers": workers, "seed": seed, "cost_model": cost_model}
    question = export_launcher(merged_question(scenario, options, parse_cost_params(cost_param)),
                               export)
    from solver.scenario import check_bounded

    check_bounded(question.objective, question.limits, OPTIONS.__getitem__)
    answer(question, export, output, json_out)


def answer(question: Scenario, export: str | None, output: Path | None,
           json_out: bool) -> None:
    """Solve ``question`` and write the plan (``--export``, ``--json``, ``--output``); exit
    with the plan's code."""
    with stdout_to(output):
        progress = Progress()
        try:
            plan = question.solve(progress=progress)
        except SpecError as err:
            raise as_option_error(err) from None
        finally:
            progress.done()
        json_out = wants_json(output, json_out)
        if export is not None:
            raise typer.Exit(emit(plan, question.job, export, json_out=json_out, show=show))
        if json_out:
            print_json(plan.to_dict())
        else:
            show(plan, question.job)
        raise typer.Exit(plan.exit_code)


def merged_question(scenario: Path | None, options: dict[str, Any],
                    cost_params: dict[str, str]) -> Scenario:
    """The scenario file's values with the options given on the command line over them."""
    from solver.scenario import Values, build, check_value, read_values

    given = read_values(scenario) if scenario is not None else Values()
    if options["gpus"] is not None or options["max_gpus"] is not None:
        # --gpus and --max-gpus are alternatives: either replaces the file's count limits.
        for key in ("gpus", "max_gpus"):
            given.values.pop(key, None)
            given.origins.pop(key, None)
    for key in COUNT_OPTIONS:  # 0 given on the command line is an error, not "the default"
        given_count(key, options.get(key))
    for key, value in options.items():
        if value is not None:
            given.set(key, check_value(key, value, OPTIONS[key]), OPTIONS[key])
    if cost_params:
        file_params = given.values.get("cost_params")
        if file_params:  # the file's own parameters are checked under the file's name
            build(given, OPTIONS)
        merged = {**(file_params or {}), **cost_params}
        given.set("cost_params", check_value("cost_params", merged, OPTIONS["cost_params"]),
                  OPTIONS["cost_params"])
    return build(given, OPTIONS)


def export_launcher(question: Scenario, export: str | None) -> Scenario:
    """``--export X`` searches only what X can start: the question's launcher, X when it has
    none; another launcher is an error (exit 2)."""
    if export is None or question.limits.launcher == export:
        return question
    if question.limits.launcher is not None:
        raise SpecError(f"--export: expected {question.limits.launcher} (the --launcher the "
                        f"plan is searched for), got {export!r}")
    import dataclasses

    from solver.launchers import check_fixed

    limits = dataclasses.replace(question.limits, launcher=export)
    try:
        check_fixed(export, question.job, limits.fixed)
    except SpecError as err:
        raise as_option_error(err) from None
    return dataclasses.replace(question, limits=limits)


def show(plan: Plan, job: TrainingJob | None = None) -> None:
    render.console.print(f"[bold]status[/bold]: {plan.status}   objective: {plan.objective}   "
                         f"solved in {plan.solve_time_s:.2f} s over {plan.candidates:,} "
                         f"layouts ({plan.rows:,} after pruning)")
    if plan.estimate is not None:
        render.estimate(plan.estimate, title="Plan", job=job)
    for line in plan.explanation:
        render.console.print(f"- {line}")
    if plan.alternatives:
        rows = [[1, plan.estimate.layout.accelerator if plan.estimate else "-",
                 *_summary(plan.estimate)] if plan.estimate else []]
        rows += [[i + 2, e.layout.accelerator, *_summary(e)]
                 for i, e in enumerate(plan.alternatives)]
        render.table(["#", "accelerator", "gpus", "layout", "wall days", "cost $", "MFU"], rows,
                     title="Best distinct layouts")
    for note in plan.notes:
        render.console.print(f"[dim]note: {note}[/dim]")


def _summary(e: Any) -> list[Any]:
    x = e.layout
    words = " ".join([x.recompute, *render.pipeline_words(x)])
    return [x.gpus, f"TP{x.tp} PP{x.pp} DP{x.dp} CP{x.cp} EP{x.ep} VP{x.vp} mb{x.micro_batch}"
            f" Z{x.zero_stage} {words}", e.wall_clock_days, e.cost_usd, f"{e.mfu:.1%}"]
