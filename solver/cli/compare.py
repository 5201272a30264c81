"""``gpuplan compare``: several layouts side by side, with memory and time breakdowns."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.table import Table

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
    ModelOpt,
    MoeDispatcherOpt,
    MoeImbalanceOpt,
    MomentsDtypeOpt,
    MtbfOpt,
    PrecisionOpt,
    SeqLenOpt,
    SeqParallelOpt,
    TokensOpt,
    TpOverlapOpt,
    UnfusedExpertBiasOpt,
    Zero3ImplOpt,
    as_option_error,
    build_job,
    failure_fields,
    parse_cost_params,
    print_json,
)
from solver.cli.pareto import money, short_layout
from solver.errors import SpecError

if TYPE_CHECKING:
    from solver.comparison import Comparison

#: Help text is rich markup: "\\[" keeps a bracket that would read as a style tag.
LAYOUT_HELP = ('A layout: "ACCELERATOR tp=N pp=N dp=N \\[cp= ep= vp= mb= zero= recompute= '
               'schedule= split=]"; repeatable.')


def compare(
    model: ModelOpt,
    tokens: TokensOpt,
    layouts: Annotated[list[str] | None, typer.Argument(
        help=LAYOUT_HELP, show_default=False, metavar="[LAYOUT]...")] = None,
    layout: Annotated[list[str] | None, typer.Option("--layout", help=LAYOUT_HELP,
                                                     show_default=False)] = None,
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
    cost_model: CostModelOpt = None,
    cost_param: CostParamOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Evaluate several layouts of one job side by side and say why one wins."""
    from solver.comparison import compare as run_compare
    from solver.export import tokens_text

    given = [*(layouts or ()), *(layout or ())]
    if not given:
        raise SpecError("--layout: expected at least one layout, e.g. --layout "
                        "\"a100-sxm4-80gb tp=8 pp=8 dp=16 mb=1 recompute=full\"")
    job = build_job(model, tokens, seq_len, global_batch, precision, flash_attention,
                    tp_comm_overlap, grad_reduce_overlap, zero3_impl, grad_dtype,
                    ep_comm_overlap, moe_dispatcher, fp8_dispatch, moe_imbalance,
                    moments_dtype, dropout, fp8_params, activation_offload,
                    unfused_expert_bias=unfused_expert_bias,
                    sequence_parallel=sequence_parallel,
                    failures=failure_fields(failures, mtbf_hours, failure_param))
    try:
        result = run_compare(job, given, cost_model=cost_model,
                                     cost_params=parse_cost_params(cost_param))
    except SpecError as err:
        raise as_option_error(err) from None
    if json_out:
        print_json(result.to_dict())
        return
    show(result, f"{job.model.name}, {tokens_text(job.tokens)} tokens, global batch "
         f"{result.estimates[0].global_batch:,}, sequence {job.seq_len:,}")


def _fmt(value: float) -> str:
    if value != value:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def show(result: Comparison, what: str) -> None:
    console = render.console
    ests = result.estimates
    console.print(f"[bold]Compare[/bold]: {what}")
    console.print("[dim]layout: TP PP DP, CP EP VP above 1, micro-batch, ZeRO, recompute, "
                  "schedule[/dim]")
    for i, e in enumerate(ests):
        x = e.layout
        tags = [t for t, j in (("fastest", result.fastest), ("cheapest", result.cheapest))
                if j == i]
        console.print(f"[bold]#{i + 1}[/bold] {x.gpus:,} x {x.accelerator}  {short_layout(e)}"
                      + (f"  [green]{', '.join(tags)}[/green]" if tags else ""))
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), show_edge=False)
    table.add_column("", no_wrap=True)
    for i in range(len(ests)):
        table.add_column(f"#{i + 1}", justify="right")

    def row(label: str, values: Sequence[float], text: Callable[[float], str] = _fmt,
            best: str | None = None, style: str | None = None) -> None:
        cells = [text(v) for v in values]
        if best and len(values) > 1:
            finite = [v for v in values if v == v]
            target = (min if best == "min" else max)(finite) if finite else None
            cells = [f"[bold green]{c}[/bold green]" if v == target else c
                     for c, v in zip(cells, values, strict=True)]
        table.add_row(label, *cells, style=style)

    table.add_row("fits", *[("yes" if e.fits else "[red]no[/red]") for e in ests])
    row("accelerators", [float(e.layout.gpus) for e in ests], best="min")
    row("micro-batches/step", [float(e.num_microbatches) for e in ests],
        lambda v: f"{v:,.0f}", style="dim")
    row("training days", [e.training_days for e in ests], best="min")
    row("wall-clock days", [e.wall_clock_days for e in ests], best="min")
    row("goodput", [e.goodput for e in ests], lambda v: f"{v:.1%}", best="max")
    row("step time (s)", [e.step_time_s for e in ests], best="min")
    row("MFU", [e.mfu for e in ests], lambda v: f"{v:.1%}", best="max")
    row("cost (USD)", [e.cost_usd for e in ests], money, best="min")
    row("energy (MWh)", [e.energy_mwh for e in ests], best="min")
    row("memory/GPU (GiB)", [e.memory_gib_per_gpu for e in ests], best="min")
    row("  of capacity", [e.memory_capacity_gib for e in ests], style="dim")
    _breakdown(row, "memory (GiB)", [e.memory_breakdown_gib for e in ests])
    _breakdown(row, "time per step (s)", [e.time_breakdown_s for e in ests])
    console.print(table)
    for line in result.why:
        console.print(f"- {line}")


def _breakdown(row: Callable[..., None], title: str,
               parts: Sequence[dict[str, float]]) -> None:
    keys: list[str] = []
    for p in parts:
        keys += [k for k in p if k not in keys]
    row(f"[bold]{title}[/bold]", [float("nan")] * len(parts), lambda v: "")
    for key in keys:
        values = [p.get(key, float("nan")) for p in parts]
        if all(v == 0 or v != v for v in values):
            continue  # a component no layout has (e.g. ep_comm of a dense model)
        row(f"  {key}", values, best="min")
