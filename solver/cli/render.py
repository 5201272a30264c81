"""Readable terminal output (rich). Only the CLI imports this module."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console, ConsoleDimensions
from rich.table import Table

if TYPE_CHECKING:
    from solver.estimate import Estimate
    from solver.specs import TrainingJob

#: Line width when the output is not a terminal (a pipe, a file): no line of ours wraps, and
#: rich tables still take only the width they need.
PIPE_WIDTH = 10_000


class WideWhenPiped(Console):
    """A console that wraps at the terminal's width on a terminal and not at all otherwise, so
    ``gpuplan solve ... | grep ^Plan`` gets whole lines (rich would take the width of whichever
    of stdin, stdout and stderr is a terminal, or 80). ``COLUMNS``, when set, still wins."""

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        columns = self._environ.get("COLUMNS", "")
        if self._width is None and not columns.isdigit() and not self.is_terminal:
            return ConsoleDimensions(PIPE_WIDTH, size.height)
        return size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


console: Console = WideWhenPiped(highlight=False)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if abs(value) >= 1e5:
            return f"{value:,.0f}"
        if abs(value) >= 100 or value == int(value):
            return f"{value:.0f}"
        return f"{value:.3g}"
    return str(value)


def pipeline_words(layout: Any) -> list[str]:
    """``["dualpipe", "split both"]``: the schedule and pipeline split when not the defaults
    (1f1b, even)."""
    words = [] if layout.schedule == "1f1b" else [layout.schedule]
    if layout.pipeline_split != "even":
        words.append(f"split {layout.pipeline_split}")
    return words


def layout_line(e: Estimate) -> str:
    x = e.layout
    extra = "".join(f"  {w}" for w in pipeline_words(x))
    return (f"{x.gpus:,} x {x.accelerator}  TP{x.tp} PP{x.pp} DP{x.dp} CP{x.cp} EP{x.ep} "
            f"VP{x.vp}  micro-batch {x.micro_batch} x {e.num_microbatches} "
            f"(global {e.global_batch})  ZeRO-{x.zero_stage}  recompute {x.recompute}{extra}")


def days_with_band(e: Estimate) -> str:
    """``90.1 (80-104)``: training days and their error band (``solver/uncertainty.py``)."""
    low, high = e.training_days_range
    if low != low or high != high:  # NaN: no band
        return _fmt(e.training_days)
    def short(v: float) -> str:  # as _fmt, but whole days from 10 on, two digits below
        return _fmt(v) if v >= 100 else f"{v:.0f}" if v >= 10 else f"{v:.2g}"

    return f"{_fmt(e.training_days)} ({short(low)}-{short(high)})"


def failure_rows(e: Estimate) -> list[tuple[str, str]]:
    """Wall-clock days, goodput, interruptions and the checkpoint interval (none when
    failures are off)."""
    if e.failure_model.get("failures") is False or e.wall_clock_days != e.wall_clock_days:
        return [("wall-clock days", f"{_fmt(e.wall_clock_days)} (failures off)")]
    lost = e.lost_days
    return [
        ("wall-clock days", _fmt(e.wall_clock_days)),
        ("goodput", f"{e.goodput:.1%}"),
        ("expected interruptions", _fmt(e.expected_interruptions)),
        ("checkpoint every (min)", _fmt(e.checkpoint_interval_min)),
        ("days lost: ckpt/restart/rework",
         " / ".join(_fmt(lost.get(k, float("nan")))
                    for k in ("checkpoints", "restarts", "rework"))),
    ]


def failure_sources(e: Estimate) -> list[str]:
    """What the wall-clock figures rest on: each rate with its source, the checkpoint, the
    restart."""
    fm = e.failure_model
    if not fm.get("failures"):
        return []
    lines = [f"[bold]failures[/bold]: one interruption every {_fmt(fm['job_mtbf_hours'])} h "
             f"on {e.layout.gpus:,} accelerators ({_fmt(fm['accelerator_mtbf_hours'])} h per "
             f"accelerator); checkpoint {_fmt(fm['checkpoint_gb'])} GB written in "
             f"{_fmt(fm['checkpoint_write_s'])} s"
             f"{' (asynchronous)' if fm['async_checkpoint'] else ''}; restart "
             f"{_fmt(fm['restart_min'])} min"]
    for rate in fm["rates"]:
        lines.append(f"  {rate['cause']}: {rate['per_accelerator_hour']:.3g} per "
                     f"accelerator-hour: {rate['source']}")
    return lines


def job_line(job: TrainingJob) -> str:
    """``llama3-70b, 15T tokens at sequence length 8,192, bf16``: what is trained."""
    from solver.export.common import tokens_text

    return (f"{job.model.name}, {tokens_text(job.tokens)} tokens at sequence length "
            f"{job.seq_len:,}, {job.precision}")


def estimate(e: Estimate, title: str = "Estimate", job: TrainingJob | None = None) -> None:
    if job is not None:
        console.print(f"[bold]Job[/bold]: {job_line(job)}")
    console.print(f"[bold]{title}[/bold]: {layout_line(e)}")
    summary = Table(show_header=False, box=None, pad_edge=False)
    summary.add_column(style="bold")
    summary.add_column(justify="right")
    rows = [
        ("training days (failure-free)", days_with_band(e)),
        *failure_rows(e),
        ("step time (s)", _fmt(e.step_time_s)),
        ("tokens/s", _fmt(e.tokens_per_s)),
        ("MFU / HFU", f"{e.mfu:.1%} / {e.hfu:.1%}"),
        ("TFLOP/s per GPU (model/hw)",
         f"{e.model_tflops_per_gpu:.1f} / {e.hardware_tflops_per_gpu:.1f}"),
        ("memory per GPU (GiB)", f"{e.memory_gib_per_gpu:.1f} of {e.memory_capacity_gib:.0f}"),
        ("GPU-hours", _fmt(e.gpu_hours)),
        ("cost (USD)", _fmt(e.cost_usd)),
        ("energy (MWh) / CO2 (t)", f"{_fmt(e.energy_mwh)} / {_fmt(e.co2_tonnes)}"),
    ]
    for name, value in rows:
        summary.add_row(name, value)
    console.print(summary)
    note = e.calibration_note if e.calibrated else f"[yellow]{e.calibration_note}[/yellow]"
    console.print(f"[bold]error band[/bold]: {note}")
    breakdowns = Table(title=None, box=None, pad_edge=False)
    breakdowns.add_column("memory", style="bold")
    breakdowns.add_column("GiB", justify="right")
    breakdowns.add_column("time per step", style="bold")
    breakdowns.add_column("s", justify="right")
    mem = list(e.memory_breakdown_gib.items())
    tim = list(e.time_breakdown_s.items())
    for i in range(max(len(mem), len(tim))):
        m = mem[i] if i < len(mem) else ("", None)
        t = tim[i] if i < len(tim) else ("", None)
        breakdowns.add_row(m[0], _fmt(m[1]) if m[0] else "", t[0], _fmt(t[1]) if t[0] else "")
    console.print(breakdowns)
    for line in failure_sources(e):
        console.print(line)
    if e.violations:
        for v in e.violations:
            console.print(f"[red]does not fit[/red]: {v}")


def table(columns: list[str], rows: list[list[Any]], title: str | None = None) -> None:
    t = Table(title=title)
    for i, c in enumerate(columns):
        t.add_column(c, no_wrap=i == 0, justify="left" if i == 0 else "right")
    for r in rows:
        t.add_row(*[_fmt(v) for v in r])
    console.print(t)
