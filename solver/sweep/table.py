"""The sweep's table: its columns, its cells, and the partial file an interrupted sweep
resumes from.

One row per point, in point order: the inputs (``points.columns``), the status and a one-line
message, the plan's layout and its estimate (names as in ``solve --json``'s ``layout`` and
``estimate`` objects, docs/interface.md; ``training_days_range`` as ``training_days_low`` and
``training_days_high``). No timing column, so that the table does not depend on the engine,
the workers or the machine's load.

While a sweep runs, each finished row is appended to ``OUT.partial`` and flushed; its first
line names the sweep's digest (``SweepSpec.digest``). At the end ``OUT`` is written whole
(a temporary file renamed over it) with the rows sorted by point, and the partial removed.
Running the same sweep with a partial present skips the points it holds; a partial of
another sweep is refused.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
from pathlib import Path
from typing import Any

from solver.errors import SpecError
from solver.file_output import write_atomic

LAYOUT_COLUMNS = ("accelerator", "gpus", "tp", "pp", "dp", "cp", "ep", "vp", "micro_batch",
                  "num_microbatches", "global_batch", "zero_stage", "recompute", "schedule",
                  "pipeline_split")
#: Estimate figures that scale with time (an efficiency draw multiplies them).
TIME_COLUMNS = ("step_time_s", "training_days", "wall_clock_days", "expected_interruptions",
                "gpu_hours", "cost_usd", "energy_mwh", "co2_tonnes")
ESTIMATE_COLUMNS = ("step_time_s", "tokens_per_s", "mfu", "training_days",
                    "training_days_low", "training_days_high", "wall_clock_days", "goodput",
                    "expected_interruptions", "gpu_hours", "memory_gib_per_gpu", "cost_usd",
                    "energy_mwh", "co2_tonnes", "calibrated")
PARETO_COLUMNS = ("front_points", "front_wall_clock_days", "front_second")
HEADER_MARK = "# gpuplan sweep"


def output_columns(mode: str = "solve", efficiency: bool = False) -> tuple[str, ...]:
    """The columns after the inputs."""
    cols = ["status", "message", *LAYOUT_COLUMNS, *ESTIMATE_COLUMNS]
    if efficiency:
        cols.append("efficiency_factor")
    if mode == "pareto":
        cols += PARETO_COLUMNS
    return tuple(cols)


def numeric_outputs() -> tuple[str, ...]:
    """Output columns the summary can take percentiles of."""
    return ("gpus", "tp", "pp", "dp", "global_batch", *[
        c for c in ESTIMATE_COLUMNS if c != "calibrated"], "efficiency_factor")


def cell(value: Any) -> str:
    """A value as the table writes it: numbers in the shortest form that reads back the same
    (six significant digits when they suffice), booleans as true/false, None as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        short = f"{value:.6g}"
        return short if float(short) == value else repr(value)
    return " ".join(str(value).split())


def parse(text: str) -> Any:
    """A cell read back: empty -> None, true/false, an integer, a number, else the text."""
    if text == "":
        return None
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _line(cells: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue()


class Table:
    """The rows of one sweep as written cells, by point; with ``out``, a partial file beside
    it that holds every finished row."""

    def __init__(self, columns: list[str], digest: str, out: Path | None = None) -> None:
        self.columns = columns
        self.digest = digest
        self.out = out
        self.rows: dict[int, list[str]] = {}
        self._handle: Any = None

    @property
    def partial(self) -> Path | None:
        return None if self.out is None else self.out.with_name(self.out.name + ".partial")

    def resume(self) -> int:
        """Read the partial file's rows (a row cut short by a kill is dropped); returns how
        many. ``SpecError`` when it belongs to another sweep."""
        path = self.partial
        if path is None or not path.exists():
            return 0
        text = path.read_text(encoding="utf-8", errors="replace")
        first, _, rest = text.partition("\n")
        if first != f"{HEADER_MARK} {self.digest}":
            raise SpecError(f"{path}: a partial table of another sweep (or another gpuplan "
                            f"version); delete it or choose another --output")
        if not rest.endswith("\n"):
            rest = rest[: rest.rfind("\n") + 1]
        reader = csv.reader(io.StringIO(rest))
        header = next(reader, None)
        if header != self.columns:
            raise SpecError(f"{path}: its columns are not this sweep's; delete it or choose "
                            f"another --output")
        for cells in reader:
            if len(cells) == len(self.columns) and cells[0].isdigit():
                self.rows.setdefault(int(cells[0]), cells)
        return len(self.rows)

    def open(self) -> None:
        """Start (or continue) the partial file: rewritten with the rows kept, so that a
        line cut short is gone before new rows follow it."""
        path = self.partial
        if path is None:
            return
        try:
            handle = path.open("w", encoding="utf-8", newline="")
            handle.write(f"{HEADER_MARK} {self.digest}\n" + _line(self.columns))
            for index in sorted(self.rows):
                handle.write(_line(self.rows[index]))
            handle.flush()
        except OSError as err:
            raise SpecError(f"--output: cannot write {str(path)!r:.80} "
                            f"({err.strerror or err})") from None
        self._handle = handle

    def add(self, rows: list[dict[str, Any]]) -> None:
        """Finished rows: kept, appended to the partial file and flushed."""
        lines = []
        for row in rows:
            cells = [cell(row.get(c)) for c in self.columns]
            self.rows[int(row["point"])] = cells
            lines.append(_line(cells))
        if self._handle is not None:
            self._handle.write("".join(lines))
            self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._handle.close()
            self._handle = None

    def text(self) -> str:
        """The whole table, rows sorted by point."""
        return _line(self.columns) + "".join(_line(self.rows[i]) for i in sorted(self.rows))

    def finish(self) -> None:
        """Write ``out`` whole and remove the partial file."""
        self.close()
        if self.out is None:
            return
        write_atomic(self.out, self.text())
        path = self.partial
        if path is not None:
            with contextlib.suppress(OSError):
                os.unlink(path)

    def records(self) -> list[dict[str, Any]]:
        """The rows as dicts of parsed cells, in point order."""
        return [dict(zip(self.columns, map(parse, self.rows[i]), strict=True))
                for i in sorted(self.rows)]


__all__ = ["ESTIMATE_COLUMNS", "LAYOUT_COLUMNS", "Table", "cell", "numeric_outputs",
           "output_columns", "parse"]
