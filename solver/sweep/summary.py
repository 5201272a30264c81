"""A sweep's summary: the status counts, percentiles per group and which inputs move the
answer most.

- Percentiles: P10, P50 and P90 of each metric (``[sweep] metrics``, default wall-clock days
  and cost) over the points of each group (``[sweep] group_by``; one group without it) that
  have a plan (in ``evaluate`` mode: a layout that fits), by linear interpolation between
  order statistics (``numpy.percentile``'s default, Hyndman and Fan 1996, definition 7).
- Which inputs move the answer: for each varied input that is a number, Spearman's rank
  correlation with each metric (the Pearson correlation of the ranks, ties given their mean
  rank; Spearman 1904); for an input that is a name (an accelerator, a preset), the ratio of
  the largest to the smallest median of the metric over its values. Inputs are listed by
  the size of their effect on the first metric: |rho| for numbers, then names by ratio.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from solver.estimate import json_number
from solver.sweep.spec import SweepSpec

PERCENTILES = (10, 50, 90)


def ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks from 1, ties given their mean rank."""
    x = np.asarray(values, dtype=float)
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    out = np.empty(len(x))
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        out[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation; None when either side is constant or too short."""
    if len(x) < 3:
        return None
    rx, ry = ranks(x), ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    den = math.sqrt(float(np.dot(rx, rx) * np.dot(ry, ry)))
    return None if den == 0 else float(np.dot(rx, ry) / den)


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {f"p{q}": None for q in PERCENTILES}
    got = np.percentile(np.asarray(values, dtype=float), PERCENTILES)
    return {f"p{q}": json_number(float(v)) for q, v in zip(PERCENTILES, got, strict=True)}


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def has_plan(row: dict[str, Any]) -> bool:
    """A row with a plan: a solved layout, or an evaluated one that fits."""
    return row.get("accelerator") is not None and row["status"] != "no-fit"


def summarize(spec: SweepSpec, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The summary object (``sweep --json``'s ``summary``)."""
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    planned = [r for r in rows if has_plan(r)]
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row.get(k) for k in spec.group_by), []).append(row)
    out_groups = []
    for key in sorted(groups, key=lambda k: [str(v) for v in k]):
        members = [r for r in groups[key] if has_plan(r)]
        out_groups.append({
            "group": dict(zip(spec.group_by, key, strict=True)), "points": len(groups[key]),
            "plans": len(members),
            "metrics": {m: percentiles([r[m] for r in members if _number(r.get(m))])
                        for m in spec.metrics}})
    return {"points": len(rows), "statuses": statuses, "metrics": list(spec.metrics),
            "group_by": list(spec.group_by), "groups": out_groups,
            "sensitivity": sensitivity(spec, planned)}


def sensitivity(spec: SweepSpec, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """How much each varied input moves each metric (module docstring)."""
    inputs = [a.key for a in spec.grid] + [d.key for d in spec.draw]
    if spec.efficiency:
        inputs.append("efficiency_z")
    out = []
    for name in inputs:
        values = [r.get(name) for r in rows]
        if len({repr(v) for v in values}) < 2:
            continue
        numeric = all(_number(v) for v in values)
        entry: dict[str, Any] = {"input": name,
                                 "measure": "spearman" if numeric else "median_ratio"}
        for m in spec.metrics:
            pairs = [(r.get(name), r[m]) for r in rows if _number(r.get(m))]
            entry[m] = _effect(pairs, numeric)
        out.append(entry)
    first = spec.metrics[0]

    def order(e: dict[str, Any]) -> tuple[int, float]:
        v = e.get(first)
        size = 0.0 if v is None else abs(v) if e["measure"] == "spearman" else v
        return (0 if e["measure"] == "spearman" else 1, -size)

    return sorted(out, key=order)


def _effect(pairs: list[tuple[Any, float]], numeric: bool) -> float | None:
    if numeric:
        rho = spearman([float(x) for x, _ in pairs], [y for _, y in pairs])
        return None if rho is None else round(rho, 4)
    by: dict[str, list[float]] = {}
    for x, y in pairs:
        by.setdefault(str(x), []).append(y)
    medians = [float(np.median(v)) for v in by.values() if v]
    if len(medians) < 2 or min(medians) <= 0:
        return None
    return round(max(medians) / min(medians), 4)


__all__ = ["has_plan", "percentiles", "ranks", "spearman", "summarize"]
