"""``gpuplan sweep SWEEP.toml``: many questions at once, into one table and a summary."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from solver.cli.common import JsonOpt, print_json
from solver.cli.output import check_plot_option, check_target
from solver.errors import SpecError


class _Progress:
    """Progress on stderr: one line rewritten in place on a terminal, else a line every
    ``every_s`` seconds."""

    def __init__(self, every_s: float = 10.0) -> None:
        self.tty = sys.stderr.isatty()
        self.every_s = every_s
        self.last = time.perf_counter()
        self.shown = False

    def __call__(self, message: str) -> None:
        now = time.perf_counter()
        if self.tty:
            sys.stderr.write(f"\r\x1b[2K{message}")
            self.shown = True
        elif now - self.last >= self.every_s or message.startswith("resuming"):
            sys.stderr.write(message + "\n")
            self.last = now
        sys.stderr.flush()

    def done(self) -> None:
        if self.tty and self.shown:
            sys.stderr.write("\r\x1b[2K")


def sweep(
    sweep_file: Annotated[Path, typer.Argument(metavar="SWEEP.toml", help="The sweep file "
                                               "(docs/sweeps.md).", show_default=False)],
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="The table, a .csv file (default: SWEEP.csv in the current "
        "folder). Rows go to FILE.partial as they finish; rerunning resumes from it.",
        show_default=False, metavar="FILE")] = None,
    workers: Annotated[int, typer.Option(
        "--workers", help="Local processes running points side by side.")] = 1,
    ray: Annotated[str | None, typer.Option(
        "--ray", help="Run the points on Ray instead: auto (a running cluster), local (start "
        "one here) or a cluster address (needs gpuplan\\[ray]).", show_default=False,
        metavar="ADDRESS")] = None,
    plot: Annotated[str | None, typer.Option(
        "--plot", help="Draw percentile bands of wall-clock days by accelerator to FILE.png "
        "or FILE.svg (needs gpuplan\\[plot]).", show_default=False)] = None,
    json_out: JsonOpt = False,
) -> None:
    """Run many questions -- grids and random draws around a base question -- into a table."""
    from solver.scenario import check_value
    from solver.sweep import load
    from solver.sweep import sweep as run_sweep
    from solver.sweep.result import text

    if plot is not None:
        check_plot_option(plot)
    workers = check_value("workers", workers, "--workers")
    if ray is not None and workers != 1:
        raise SpecError("--workers: expected 1 with --ray (Ray decides where points run), "
                        f"got {workers}")
    spec = load(sweep_file)
    out = output if output is not None else Path(sweep_file.stem + ".csv")
    if out.suffix.lower() != ".csv":
        raise SpecError(f"--output: expected a file name ending in .csv, got {str(out)!r:.80}")
    check_target(out)
    if ray is not None:
        from solver.sweep.engines import import_ray

        import_ray()
    progress = _Progress()
    try:
        result = run_sweep(spec, workers=workers, ray=ray, output=out, progress=progress)
    finally:
        progress.done()
    if json_out:
        print_json(result.to_dict())
    else:
        sys.stdout.write(text(result) + "\n")
    sys.stdout.flush()
    sys.stderr.write(f"gpuplan: wrote {out}\n")
    if plot is not None:
        path = result.plot(plot)
        sys.stderr.write(f"gpuplan: wrote {path}\n")
