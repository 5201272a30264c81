"""``gpuplan plugins list``: every plugin, built-in ones included, and what each provides."""

from __future__ import annotations

import typer

from solver import plugins
from solver.cli import render
from solver.cli.common import JsonOpt, print_json

plugins_app = typer.Typer(help="Plugins: built-in and installed (entry-point group gpuplan).",
                          no_args_is_help=True)


@plugins_app.command("list")
def plugins_list(json_out: JsonOpt = False) -> None:
    """List each plugin: name, version, distribution, hooks, what it provides, status."""
    from solver import catalog  # imported when the command runs: --help stays fast

    provided = catalog.provided_by()  # calls every hook: problems show on stderr
    infos = plugins.plugin_infos()
    if json_out:
        entries = [{
            "name": i.name, "distribution": i.distribution, "version": i.version,
            "hooks": list(i.hooks), "builtin": i.builtin, "status": i.status,
            "provides": provided.get(i.name, {}),
        } for i in infos]
        print_json({"schema_version": 1, "plugins": entries,
                    "autoload": not plugins.autoload_disabled()})
        return
    rows = [[i.name, i.distribution, i.version,
             ", ".join(h.removeprefix("gpuplan_") for h in i.hooks) or "-",
             _provides(provided.get(i.name, {})), i.status] for i in infos]
    render.table(["name", "distribution", "version", "hooks", "provides", "status"], rows,
                 title="gpuplan plugins in discovery order (hooks without gpuplan_)")


def _provides(provides: dict[str, list[str]]) -> str:
    parts = []
    for kind, names in provides.items():
        shown = ", ".join(names) if len(names) <= 3 else f"{len(names)} {kind.replace('_', ' ')}"
        parts.append(shown if len(names) > 3 else f"{kind.replace('_', ' ')}: {shown}")
    return "; ".join(parts) or "-"
