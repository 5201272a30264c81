"""``gpuplan evaluate``: the estimate of one given layout."""

from __future__ import annotations

from typing import Annotated

import typer

from solver.cli import render
from solver.cli.common import (
    RECOMPUTE_HELP,
    ActivationOffloadOpt,
    CostModelOpt,
    CostParamOpt,
    DropoutOpt,
    EpOverlapOpt,
    FlashOpt,
    Fp8DispatchOpt,
    Fp8ParamsOpt,
    GlobalBatchOpt,
    GradDtypeOpt,
    GradOverlapOpt,
    JsonOpt,
    ModelOpt,
    MoeDispatcherOpt,
    MoeImbalanceOpt,
    MomentsDtypeOpt,
    PrecisionOpt,
    ScheduleOpt,
    SeqLenOpt,
    SplitOpt,
    TokensOpt,
    TpOverlapOpt,
    Zero3ImplOpt,
    as_option_error,
    build_job,
    parse_cost_params,
    print_json,
)
from solver.cli.output import OutputOpt, stdout_to, wants_json
from solver.errors import SpecError
from solver.specs import Layout


def evaluate(
    model: ModelOpt,
    tokens: TokensOpt,
    gpu: Annotated[str, typer.Option("--gpu", help="Accelerator name or alias.")],
    tp: Annotated[int, typer.Option("--tp", help="Tensor-parallel degree.")],
    pp: Annotated[int, typer.Option("--pp", help="Pipeline-parallel degree.")],
    dp: Annotated[int, typer.Option("--dp", help="Data-parallel degree.")],
    global_batch: GlobalBatchOpt = None,
    seq_len: SeqLenOpt = None,
    cp: Annotated[int, typer.Option("--cp", help="Context-parallel degree.")] = 1,
    ep: Annotated[int, typer.Option("--ep", help="Expert-parallel degree.")] = 1,
    vp: Annotated[int, typer.Option("--vp", help="Interleaved virtual stages per rank.")] = 1,
    micro_batch: Annotated[int, typer.Option("--micro-batch", help="Sequences per "
                                             "micro-batch.")] = 1,
    zero: Annotated[int, typer.Option("--zero", help="ZeRO stage 0-3.")] = 0,
    recompute: Annotated[str, typer.Option("--recompute", help=RECOMPUTE_HELP)] = "none",
    schedule: ScheduleOpt = "1f1b",
    pipeline_split: SplitOpt = "even",
    precision: PrecisionOpt = "bf16",
    flash_attention: FlashOpt = True,
    tp_comm_overlap: TpOverlapOpt = False,
    grad_reduce_overlap: GradOverlapOpt = True,
    zero3_impl: Zero3ImplOpt = "fsdp",
    grad_dtype: GradDtypeOpt = "fp32",
    ep_comm_overlap: EpOverlapOpt = False,
    moe_dispatcher: MoeDispatcherOpt = "alltoall",
    fp8_dispatch: Fp8DispatchOpt = False,
    moe_imbalance: MoeImbalanceOpt = 1.0,
    moments_dtype: MomentsDtypeOpt = "fp32",
    dropout: DropoutOpt = 0.0,
    fp8_params: Fp8ParamsOpt = False,
    activation_offload: ActivationOffloadOpt = False,
    cost_model: CostModelOpt = None,
    cost_param: CostParamOpt = None,
    output: OutputOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Estimate time, memory, cost, energy and CO2 of one layout (Megatron-LM semantics)."""
    job = build_job(model, tokens, seq_len, global_batch, precision, flash_attention,
                    tp_comm_overlap, grad_reduce_overlap, zero3_impl, grad_dtype,
                    ep_comm_overlap, moe_dispatcher, fp8_dispatch, moe_imbalance,
                    moments_dtype, dropout, fp8_params, activation_offload)
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
            print_json(est.to_dict())
        else:
            render.estimate(est)
