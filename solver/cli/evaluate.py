"""``gpuplan evaluate``: the estimate of one given layout."""

from __future__ import annotations

from pathlib import Path

import typer

from solver.cli import evaluate_options as o
from solver.cli import render
from solver.cli.common import (
    ActivationOffloadOpt,
    CostModelOpt,
    CostParamOpt,
    DropoutOpt,
    EpOverlapOpt,
    FailureParamOpt,
    FailuresOpt,
    FlashOpt,
    Fp8DispatchOpt,
    Fp8ParamsOpt,
    GlobalBatchOpt,
    GradDtypeOpt,
    GradOverlapOpt,
    JsonOpt,
    MoeDispatcherOpt,
    MoeImbalanceOpt,
    MomentsDtypeOpt,
    MtbfOpt,
    PrecisionOpt,
    ScheduleOpt,
    SeqLenOpt,
    SeqParallelOpt,
    SplitOpt,
    TpOverlapOpt,
    UnfusedExpertBiasOpt,
    Zero3ImplOpt,
    as_option_error,
    build_job,
    failure_fields,
    parse_cost_params,
    print_json,
)
from solver.cli.output import OutputOpt, stdout_to, wants_json
from solver.errors import SpecError
from solver.specs import Layout

#: What ``evaluate`` needs unless ``--plan`` gives it all.
REQUIRED = ("model", "tokens", "gpu", "tp", "pp", "dp")
#: The options that may go with ``--plan`` (the rest would change the question).
WITH_PLAN = ("plan", "output", "json_out")


def evaluate(
    ctx: typer.Context,
    model: o.Model = None,
    tokens: o.Tokens = None,
    gpu: o.Gpu = None,
    tp: o.Tp = None,
    pp: o.Pp = None,
    dp: o.Dp = None,
    plan: o.Plan = None,
    global_batch: GlobalBatchOpt = None,
    seq_len: SeqLenOpt = None,
    cp: o.Cp = 1,
    ep: o.Ep = 1,
    vp: o.Vp = 1,
    micro_batch: o.MicroBatch = 1,
    zero: o.Zero = 0,
    recompute: o.Recompute = "none",
    schedule: ScheduleOpt = "1f1b",
    pipeline_split: SplitOpt = "even",
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
    cost_model: CostModelOpt = None,
    cost_param: CostParamOpt = None,
    output: OutputOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Estimate time, memory, cost, energy and CO2 of one layout (Megatron-LM semantics)."""
    if plan is not None:
        raise typer.Exit(recheck(ctx, plan, output, json_out))
    for name in REQUIRED:
        if locals()[name] is None:
            raise SpecError(f"--{name.replace('_', '-')}: missing; evaluate needs --model, "
                            "--tokens, --gpu, --tp, --pp and --dp (or --plan PLAN.json)")
    assert model is not None and tokens is not None and gpu is not None
    assert tp is not None and pp is not None and dp is not None
    job = build_job(model, tokens, seq_len, global_batch, precision, flash_attention,
                    tp_comm_overlap, grad_reduce_overlap, zero3_impl, grad_dtype,
                    ep_comm_overlap, moe_dispatcher, fp8_dispatch, moe_imbalance,
                    moments_dtype, dropout, fp8_params, activation_offload,
                    unfused_expert_bias=unfused_expert_bias,
                    sequence_parallel=sequence_parallel,
                    failures=failure_fields(failures, mtbf_hours, failure_param))
    cost_params = parse_cost_params(cost_param)
    from solver import catalog, evaluation

    acc = catalog.accelerator(gpu, field="--gpu")
    try:
        layout = Layout(accelerator=acc.name, tp=tp, pp=pp, dp=dp, cp=cp, ep=ep, vp=vp,
                        micro_batch=micro_batch, zero_stage=zero, recompute=recompute,
                        schedule=schedule, pipeline_split=pipeline_split)
    except SpecError as err:
        raise as_option_error(err) from None
    try:
        est = evaluation.evaluate(job, layout, accelerator=acc, cost_model=cost_model,
                                  cost_params=cost_params)
    except SpecError as err:
        raise as_option_error(err) from None
    with stdout_to(output):
        if wants_json(output, json_out):
            from solver.question import question_dict

            print_json({**est.to_dict(), "question": question_dict(
                job, cost_model=cost_model, cost_params=cost_params)})
        else:
            render.estimate(est, job=job)


def recheck(ctx: typer.Context, path: Path, output: Path | None, json_out: bool) -> int:
    """``evaluate --plan``: re-evaluate a saved plan; 0 when its estimate is reproduced."""
    from solver import catalog, evaluation
    from solver.question import differences, read_saved

    given = [name for name in ctx.params if name not in WITH_PLAN
             and getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"]
    if given:
        raise SpecError(f"--{given[0].replace('_', '-')}: not with --plan (the saved plan "
                        "gives the job, the layout and the cost model); leave it out")
    saved = read_saved(path)
    acc = catalog.accelerator(saved.layout.accelerator, field="--plan")
    est = evaluation.evaluate(saved.job, saved.layout, accelerator=acc,
                              cost_model=saved.cost_model, cost_params=saved.cost_params)
    changed = differences(saved.estimate, est.estimate_dict())
    with stdout_to(output):
        if wants_json(output, json_out):
            print_json({**est.to_dict(), "reproduced": not changed, "differences": changed})
        else:
            render.estimate(est, job=saved.job)
            if changed:
                render.console.print(f"[red]not reproduced[/red]: {len(changed)} field(s) "
                                     f"differ from {path.name} (saved -> now):")
                for line in changed:
                    render.console.print(f"  {line}")
            else:
                render.console.print(f"reproduced: every figure of {path.name}'s estimate")
    return 1 if changed else 0
