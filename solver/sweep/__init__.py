"""``solver.sweep``: many questions at once -- a base question and its axes (grids and
random draws), each point one ``solve``, ``evaluate`` or ``pareto``, run on this process,
local worker processes or Ray, into one table and a summary (docs/sweeps.md).

Steps: the sweep file (``spec.py``, distributions in ``dists.py``), the points from their
index alone (``points.py``), one point to one row (``run.py``), the engines (``engines.py``),
the table and its resumable partial file (``table.py``), the summary (``summary.py``,
``result.py``) and the plot (``plot.py``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

from solver.errors import SpecError
from solver.sweep.points import check_draws, columns
from solver.sweep.result import SweepResult
from solver.sweep.spec import SweepSpec, load
from solver.sweep.summary import summarize
from solver.sweep.table import Table, output_columns
from solver.validate import MAX_WORKERS, as_int


def sweep(spec: SweepSpec | str | Path, *, workers: int = 1, ray: str | None = None,
          output: str | Path | None = None,
          progress: Callable[[str], None] | None = None) -> SweepResult:
    """Run a sweep (a ``SweepSpec`` or a sweep file's path) and return its rows and summary.

    ``workers``: local processes (1: this one). ``ray``: ``"auto"``, ``"local"`` or a Ray
    address instead (the ``gpuplan[ray]`` extra). ``output``: a ``.csv`` file the table is
    written to, whole, at the end; finished rows go to ``OUTPUT.partial`` meanwhile, and a
    sweep that finds its own partial there resumes from it. ``progress`` gets one-line
    messages. The rows are the same whatever the engine and the workers.
    """
    if isinstance(spec, (str, Path)):
        spec = load(spec)
    if not isinstance(spec, SweepSpec):
        raise SpecError(f"spec: expected a SweepSpec or a sweep file, got {type(spec).__name__}")
    workers = as_int("workers", workers, maximum=MAX_WORKERS)
    if ray is not None and (not isinstance(ray, str) or not ray.strip()):
        raise SpecError(f"ray: expected auto, local or a Ray address, got {ray!r}")
    out = None if output is None else Path(output)
    if out is not None and out.suffix.lower() != ".csv":
        raise SpecError(f"--output: expected a file name ending in .csv, got {str(out)!r:.80}")
    check_draws(spec)
    if ray is not None:
        from solver.sweep.engines import import_ray

        import_ray()
    names = columns(spec) + list(output_columns(spec.mode, spec.efficiency))
    table = Table(names, spec.digest(), out)
    resumed = table.resume()
    todo = [i for i in range(spec.points) if i not in table.rows]
    say = progress or (lambda message: None)
    if resumed:
        say(f"resuming: {resumed} of {spec.points} points from {table.partial}")
    started = time.perf_counter()
    done = [0]

    def on_rows(rows: list[dict[str, object]]) -> None:
        table.add(rows)
        done[0] += len(rows)
        took = time.perf_counter() - started
        rate = done[0] / took if took > 0 else 0.0
        left = (len(todo) - done[0]) / rate if rate > 0 else 0.0
        say(f"sweep: {resumed + done[0]}/{spec.points} points, {rate:.2f} points/s, "
            f"about {left:.0f} s left")

    from solver.sweep import engines

    with contextlib.ExitStack() as stack:
        if ray is not None:  # connected before the partial table is opened
            stack.enter_context(engines.ray_session(ray))
        table.open()
        try:
            engines.run(spec, todo, workers=workers, ray=ray, on_rows=on_rows)
        finally:
            table.close()
    wall = time.perf_counter() - started
    table.finish()
    rows = table.records()
    return SweepResult(spec=spec, columns=tuple(names), rows=tuple(rows),
                       summary=summarize(spec, rows), output=out, computed=len(todo),
                       resumed=resumed, wall_s=wall)


__all__ = ["SweepResult", "SweepSpec", "load", "sweep"]
