"""``gpuplan design``: the model size and token count of least predicted loss within a
deadline or a budget, with its plan (docs/design.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from solver.cli import render
from solver.cli.common import (
    CostModelOpt,
    CostParamOpt,
    JsonOpt,
    PrecisionOpt,
    as_option_error,
    parse_cost_params,
    parse_key_values,
    parse_tokens,
    print_json,
)
from solver.cli.output import OutputOpt, Progress, stdout_to, wants_json
from solver.errors import SpecError

if TYPE_CHECKING:  # the search loads when the command runs, not for --help
    from solver.design import Design

#: solver.scaling_law.LAWS and DEFAULT_LAW, here so that the help does not import them (a test
#: checks they agree).
LAW_NAMES = ("besiroglu2024", "hoffmann2022")
#: solver.design.MIN_PARAMS and MAX_PARAMS, as the help shows them.
DEFAULT_MIN_PARAMS, DEFAULT_MAX_PARAMS = "500M", "2T"


def design(
    gpu: Annotated[str, typer.Option("--gpu", help="The accelerator (name or alias).",
                                     show_default=False)],
    gpus: Annotated[int | None, typer.Option("--gpus", help="Exactly this many "
                                             "accelerators.")] = None,
    max_gpus: Annotated[int | None, typer.Option("--max-gpus", help="At most this many "
                                                 "accelerators.")] = None,
    days: Annotated[float | None, typer.Option(
        "--days", help="Wall-clock days the training may take (failures counted).")] = None,
    budget_usd: Annotated[float | None, typer.Option(
        "--budget-usd", help="US dollars the training may cost (the cost model's prices).")
    ] = None,
    law: Annotated[str, typer.Option(
        "--law", help="Loss law constants: besiroglu2024 (Chinchilla's data refitted) or "
        "hoffmann2022 (as published); docs/design.md.")] = LAW_NAMES[0],
    law_param: Annotated[list[str] | None, typer.Option(
        "--law-param", help="KEY=VALUE replacing one of the law's constants E, A, B, alpha, "
        "beta; repeatable.", show_default=False, metavar="KEY=VALUE")] = None,
    precision: PrecisionOpt = "bf16",
    seq_len: Annotated[int, typer.Option("--seq-len", help="Sequence length of every "
                                         "candidate.")] = 8192,
    min_params: Annotated[str, typer.Option(
        "--min-params", help="Smallest model tried (parameters: 500M, 7e9, 1T).")
    ] = DEFAULT_MIN_PARAMS,
    max_params: Annotated[str, typer.Option(
        "--max-params", help="Largest model tried.")] = DEFAULT_MAX_PARAMS,
    time_limit: Annotated[float, typer.Option(
        "--time-limit-s", help="Seconds each solve may take.")] = 10.0,
    cost_model: CostModelOpt = None,
    cost_param: CostParamOpt = None,
    output: OutputOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The model size and tokens of least predicted loss within --days or --budget-usd."""
    from solver import scaling_law
    from solver.design import design as run_design

    if gpus is None and max_gpus is None:
        raise SpecError("--gpus: missing; a design needs the accelerator count: give --gpus "
                        "4096 (exactly) or --max-gpus 4096 (at most)")
    if days is None and budget_usd is None:
        raise SpecError("--days: missing; a design needs a deadline or a budget: give --days "
                        "90 or --budget-usd 5e7")
    fitted = scaling_law.resolve(law, parse_key_values(law_param, "--law-param"),
                                 field="--law", params_field="--law-param")
    low = parse_tokens(min_params, field="--min-params")
    high = parse_tokens(max_params, field="--max-params")
    with stdout_to(output):
        progress = Progress()
        try:
            answer = run_design(gpu, gpus=gpus, max_gpus=max_gpus, days=days,
                                budget_usd=budget_usd, law=fitted, precision=precision,
                                seq_len=seq_len, min_params=low, max_params=high,
                                time_limit_s=time_limit, cost_model=cost_model,
                                cost_params=parse_cost_params(cost_param), progress=progress)
        except SpecError as err:
            raise as_option_error(err) from None
        finally:
            progress.done()
        if wants_json(output, json_out):
            print_json(answer.to_dict())
        else:
            show(answer)
        raise typer.Exit(answer.exit_code)


def _ratio(value: float) -> str:
    """Tokens per parameter: one decimal below 100, whole numbers with separators above."""
    return f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def _limits_line(answer: Design) -> str:
    x = answer.limits
    count = f"{x.gpus:,}" if x.gpus is not None else f"up to {x.max_gpus:,}"
    within = [f"{x.deadline_days:g} days"] if x.deadline_days is not None else []
    within += [f"${x.budget_usd:,.0f}"] if x.budget_usd is not None else []
    return f"{count} x {x.accelerators[0]} within {' and '.join(within)}"


def show(answer: Design) -> None:
    from solver.cli.solve import show as show_plan
    from solver.export.common import tokens_text  # loads NumPy: not for --help

    console = render.console
    law = answer.law
    console.print(f"[bold]Design[/bold]: {_limits_line(answer)}; law {law.name}: L = "
                  f"{law.E:g} + {law.A:g}/N^{law.alpha:g} + {law.B:g}/D^{law.beta:g}")
    if answer.model is not None:
        m = answer.model
        n_opt, d_opt = answer.law_optimum()
        console.print(f"[bold]Model[/bold]: {m.name}: {m.layers} layers x {m.hidden:,}, "
                      f"{m.heads} heads ({m.kv_heads} KV) of {m.head_dim}, FFN "
                      f"{m.ffn_hidden:,}, vocabulary {m.vocab:,}: {answer.params:,} parameters")
        console.print(f"[bold]Tokens[/bold]: {tokens_text(answer.tokens)} "
                      f"({answer.tokens_per_param:.1f} per parameter); predicted loss "
                      f"{answer.loss:.4f}; compute 6ND = {answer.compute_flops:.3g} FLOPs")
        console.print(f"the law's own optimum at that compute: {tokens_text(n_opt)} parameters, "
                      f"{tokens_text(d_opt)} tokens ({d_opt / n_opt:.1f} per parameter)")
        near = answer.near_optimal()
        if near is not None and near[0] != near[1]:
            console.print(f"sizes within 0.001 of the best loss: {tokens_text(near[0])} to "
                          f"{tokens_text(near[1])} parameters")
    if answer.plan is not None:
        show_plan(answer.plan, answer.job)
    _candidates(answer)
    for note in answer.notes:
        console.print(f"[dim]note: {note}[/dim]")
    console.print(f"{len(answer.candidates)} sizes tried, {answer.solves} solves in "
                  f"{answer.solve_time_s:.1f} s")


def _candidates(answer: Design) -> None:
    from solver.export.common import tokens_text

    rows = []
    for c in answer.candidates:
        e = c.estimate
        mark = "*" if answer.model is not None and c.model.name == answer.model.name else ""
        if c.skipped is not None:
            rows.append([f"{c.model.name}{mark}", tokens_text(c.params), "skipped", "-", "-", "-",
                         "-", "-"])
            continue
        rows.append([f"{c.model.name}{mark}", tokens_text(c.params), tokens_text(c.tokens),
                     _ratio(c.tokens / c.params), f"{c.loss:.4f}",
                     f"{c.wall_clock_days:.1f}", f"{e.mfu:.1%}" if e else "-",
                     f"{e.layout.gpus:,}" if e else "-"])
    render.table(["model", "params", "tokens", "tok/param", "loss", "days", "MFU", "GPUs"],
                 rows, title="Sizes tried (* chosen)")
