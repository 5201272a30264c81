"""What a sweep returns: its rows and summary (``SweepResult``), and the summary as text."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from solver.estimate import SCHEMA_VERSION
from solver.sweep.spec import SweepSpec


@dataclass(frozen=True)
class SweepResult:
    """A finished sweep: the table's ``columns`` and ``rows`` (dicts, in point order), the
    ``summary`` (``summary.summarize``), where the table was written, how many points this
    run computed (the others came from a partial table) and how long it took."""

    spec: SweepSpec
    columns: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]
    summary: dict[str, Any]
    output: Path | None = None
    computed: int = 0
    resumed: int = 0
    wall_s: float = 0.0

    @property
    def points_per_s(self) -> float:
        return self.computed / self.wall_s if self.wall_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "sweep": self.spec.path,
                "mode": self.spec.mode, "output": None if self.output is None
                else str(self.output), "columns": list(self.columns),
                "computed": self.computed, "resumed": self.resumed,
                "wall_s": round(self.wall_s, 3),
                "points_per_s": round(self.points_per_s, 3), **self.summary}

    def plot(self, path: str | Path, *, title: str | None = None) -> Path:
        """Percentile bands of wall-clock days by accelerator (the ``plot`` extra)."""
        from solver.sweep.plot import plot_days

        return plot_days(self, path, title=title)


NAMES = {"wall_clock_days": "wall-clock days", "cost_usd": "cost (USD)",
         "training_days": "training days", "energy_mwh": "energy (MWh)"}


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1e6:
        return f"{value / 1e6:,.4g}M"
    if abs(value) >= 1e4:
        return f"{value / 1e3:,.4g}k"
    return f"{value:,.4g}"


def text(result: SweepResult) -> str:
    """The summary as a few plain-text lines."""
    s, spec = result.summary, result.spec
    counts = ", ".join(f"{n} {k}" for k, n in sorted(s["statuses"].items()))
    lines = [f"sweep {spec.path}: {s['points']} points ({spec.mode}): {counts}"]
    where = f"; table: {result.output}" if result.output is not None else ""
    lines.append(f"{result.computed} computed, {result.resumed} resumed from a partial table, "
                 f"{result.wall_s:.1f} s ({result.points_per_s:.2f} points/s){where}")
    heads = [" / ".join(f"P{q}" for q in (10, 50, 90)) + " " + NAMES.get(m, m)
             for m in s["metrics"]]
    names = [", ".join("-" if v is None else str(v) for v in g["group"].values()) or "all"
             for g in s["groups"]]
    width = max([len(n) for n in names] + [5])
    lines.append("")
    lines.append(f"{'group':<{width}}  {'points':>6}  {'plans':>6}  " +
                 "  ".join(f"{h:<34}" for h in heads).rstrip())
    for name, g in zip(names, s["groups"], strict=True):
        cells = ["  /  ".join(_fmt(g["metrics"][m][f"p{q}"]) for q in (10, 50, 90))
                 for m in s["metrics"]]
        lines.append(f"{name:<{width}}  {g['points']:>6}  {g['plans']:>6}  " +
                     "  ".join(f"{c:<34}" for c in cells).rstrip())
    if s["sensitivity"]:
        first = s["metrics"][0]
        lines.append("")
        lines.append(f"what moves {NAMES.get(first, first)} most (numbers: Spearman rank "
                     "correlation; names: largest / smallest median):")
        for e in s["sensitivity"]:
            v = e.get(first)
            shown = "-" if v is None else f"{v:+.2f}" if e["measure"] == "spearman" \
                else f"x{v:.2f}"
            others = [f"{NAMES.get(m, m)} {'-' if e.get(m) is None else format(e[m], '.2f')}"
                      for m in s["metrics"][1:]]
            extra = f"   ({'; '.join(others)})" if others else ""
            lines.append(f"  {e['input']:<40} {shown:>7}{extra}")
    return "\n".join(lines)


__all__ = ["SweepResult", "text"]
