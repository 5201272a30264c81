"""The options of ``gpuplan pareto`` that no other command shares, one alias each (the
shared ones are in ``common.py``)."""

from __future__ import annotations

from typing import Annotated

import typer

DeadlineDays = Annotated[float | None, typer.Option(
    "--deadline-days", help="Slowest plan to consider (the front's slow end).")]
BudgetUsd = Annotated[float | None, typer.Option("--budget-usd")]
Launcher = Annotated[str | None, typer.Option(
    "--launcher", help="megatron|torchtitan|deepspeed: every point is a layout that "
    "launcher can start (default: any).", show_default=False)]
Axes = Annotated[str, typer.Option("--axes", help="time,cost | time,gpus | time,energy")]
Points = Annotated[int, typer.Option(
    "--points", help="At most this many points (one or two solves each).")]
Plot = Annotated[str | None, typer.Option(
    "--plot", help="Draw the front to FILE.png or FILE.svg (needs gpuplan\\[plot]).",
    show_default=False)]
TimeLimit = Annotated[float, typer.Option("--time-limit-s", "--time-limit",
                                          help="Seconds per solve.")]
Workers = Annotated[int, typer.Option("--workers", help="CP-SAT workers.")]
Seed = Annotated[int, typer.Option("--seed", help="CP-SAT random seed.")]
