"""``gpuplan fleet FLEET.toml``: several training jobs on a mixed fleet over time."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from solver.cli.common import JsonOpt, print_json
from solver.cli.output import Progress, check_plot_option
from solver.errors import SpecError

if TYPE_CHECKING:
    from solver.fleet import FleetPlan, FleetSpec

#: Exit code by status, as ``solve``'s (docs/interface.md, exit codes).
EXIT_CODES = {"optimal": 0, "feasible": 0, "infeasible": 1, "unknown": 3}


def fleet(
    fleet_file: Annotated[Path, typer.Argument(metavar="FLEET.toml", help="The fleet file "
                                               "(docs/fleet.md).", show_default=False)],
    time_limit: Annotated[float | None, typer.Option(
        "--time-limit-s", "--time-limit", help="Seconds for the schedule (default: the "
        "file's time_limit_s option, else 60).", show_default=False)] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="CP-SAT workers (default: "
                                                "the file's, else 2).", show_default=False)
                       ] = None,
    plot: Annotated[str | None, typer.Option(
        "--plot", help="Draw the schedule as a Gantt chart to FILE.png or FILE.svg (needs "
        "gpuplan\\[plot]).", show_default=False)] = None,
    export_dir: Annotated[Path | None, typer.Option(
        "--export-dir", help="Write each job's launcher config to DIR/JOB.sh|.toml|.json, for "
        "the jobs whose fleet entry names a launcher.", show_default=False, metavar="DIR")
                          ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Schedule several training jobs on owned and rented accelerators over time."""
    from solver.fleet import fleet as run_fleet
    from solver.fleet import load
    from solver.fleet.render import text
    from solver.scenario import check_value

    if plot is not None:
        check_plot_option(plot)
    if time_limit is not None:
        time_limit = check_value("time_limit_s", time_limit, "--time-limit-s")
    if workers is not None:
        workers = check_value("workers", workers, "--workers")
    if export_dir is not None and not export_dir.is_dir():
        raise SpecError(f"--export-dir: no such folder {str(export_dir)!r:.80}")
    spec = load(fleet_file)
    progress = Progress()
    try:
        plan = run_fleet(spec, time_limit_s=time_limit, workers=workers, progress=progress)
    finally:
        progress.done()
    if json_out:
        print_json(plan.to_dict())
    else:
        sys.stdout.write(text(spec, plan) + "\n")
    if plot is not None and plan.jobs:
        path = plan.plot(plot, title=f"{fleet_file.name}: {len(plan.jobs)} jobs "
                         f"({plan.status})", deadlines={
                             j.name: j.deadline_day for j in spec.jobs
                             if j.deadline_day is not None})
        sys.stderr.write(f"gpuplan: wrote {path}\n")
    if export_dir is not None:
        write_exports(spec, plan, export_dir)
    raise typer.Exit(EXIT_CODES[plan.status])


#: The file name ending of each launcher's config (``solver.export``'s formats).
EXPORT_SUFFIX = {"megatron": ".sh", "torchtitan": ".toml", "deepspeed": ".json"}


def write_exports(spec: FleetSpec, plan: FleetPlan, folder: Path) -> None:
    """Each scheduled job's config for its launcher (``[jobs.NAME] launcher``), as
    ``solve --export`` writes it; jobs without a launcher are named on stderr."""
    from solver.cli.output import write_atomic
    from solver.export import export

    for j in plan.jobs:
        job = next(f for f in spec.jobs if f.name == j.name)
        launcher = job.limits.launcher
        if launcher is None or j.estimate is None:
            sys.stderr.write(f"gpuplan: {j.name}: no launcher named ([jobs.{j.name}] "
                             "launcher), nothing exported\n")
            continue
        path = folder / f"{j.name}{EXPORT_SUFFIX[launcher]}"
        write_atomic(path, export(j.estimate, launcher, job=job.job), "--export-dir")
        sys.stderr.write(f"gpuplan: wrote {path}\n")
