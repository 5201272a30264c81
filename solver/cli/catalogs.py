"""``gpuplan hardware`` and ``gpuplan models``: the catalogs."""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.table import Table

from solver.cli import render
from solver.cli.common import JsonOpt, print_json

hardware_app = typer.Typer(help="Accelerators in the catalog.", no_args_is_help=True)
models_app = typer.Typer(help="Model presets.", no_args_is_help=True)


@hardware_app.command("list")
def hardware_list(json_out: JsonOpt = False) -> None:
    """List every accelerator."""
    from solver import catalog  # imported when the command runs: --help stays fast

    accs = list(catalog.accelerators().values())
    if json_out:
        print_json({"schema_version": 1, "accelerators": [a.to_dict() for a in accs]})
        return
    rows = [[a.name, a.peak_tflops["bf16"], a.peak_tflops.get("fp8"), a.memory_gib,
             a.memory_bw_gb_s, a.scaleup_bw_gb_s, a.scaleup_domain, a.scaleout_bw_gb_s,
             a.host_bw_gb_s, a.host_memory_gib, a.tdp_w, a.price_usd_per_hour] for a in accs]
    # render.table's cells, one space apart and without edges: twelve columns in 80.
    table = Table(title="TFLOP/s dense; bandwidths GB/s one direction (host: the link to the "
                  "host); hGiB: host memory per accelerator; W; USD per hour",
                  box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), show_edge=False)
    for i, column in enumerate(["name", "BF16", "FP8", "GiB", "HBM", "up", "dom", "out",
                                "host", "hGiB", "TDP", "$/h"]):
        table.add_column(column, no_wrap=i == 0, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*[render._fmt(v) for v in row])
    render.console.print(table)


@hardware_app.command("show")
def hardware_show(name: Annotated[str, typer.Argument(help="Name or alias.")],
                  json_out: JsonOpt = False) -> None:
    """Show one accelerator with its sources."""
    from solver import catalog  # imported when the command runs: --help stays fast

    acc = catalog.accelerator(name, field="NAME")
    data = acc.to_dict()
    if json_out:
        print_json({"schema_version": 1, **data})
        return
    rows = [[k, v] for k, v in data.items() if k not in ("sources", "notes")]
    render.table(["field", "value"], rows, title=acc.name)
    render.console.print(f"[bold]notes[/bold]: {acc.notes}")
    for s in acc.sources:
        render.console.print(f"- {s}")


@models_app.command("list")
def models_list(json_out: JsonOpt = False) -> None:
    """List the model presets."""
    from solver import catalog  # imported when the command runs: --help stays fast

    specs = list(catalog.models().values())
    if json_out:
        print_json({"schema_version": 1, "models": [m.to_dict() for m in specs]})
        return
    rows = [[m.name, m.layers, m.hidden, m.heads, m.kv_heads, m.experts, m.top_k,
             m.params_total / 1e9, m.params_active / 1e9] for m in specs]
    render.table(["name", "layers", "hidden", "heads", "kv", "experts", "top-k", "params (B)",
                  "active (B)"], rows)


@models_app.command("show")
def models_show(name: Annotated[str, typer.Argument(help="Preset name or model file.")],
                json_out: JsonOpt = False) -> None:
    """Show one model (preset or file) with its parameter counts and sources."""
    from solver import catalog  # imported when the command runs: --help stays fast

    spec = catalog.model(name, field="NAME")
    data = spec.to_dict()
    if json_out:
        print_json({"schema_version": 1, **data})
        return
    rows = [[k, v] for k, v in data.items() if k not in ("sources", "description")]
    render.table(["field", "value"], rows, title=spec.name)
    if spec.description:
        render.console.print(spec.description)
    for s in spec.sources:
        render.console.print(f"- {s}")
