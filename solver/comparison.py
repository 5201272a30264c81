"""``solver.compare``: several layouts of one job side by side, and why one wins.

Each layout is evaluated by ``solver.evaluate`` (the same step model as ``gpuplan evaluate``);
the comparison names the fastest and the cheapest layout that fit, and for every other layout
the time and memory components that differ most from the fastest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from solver import catalog, evaluation
from solver.costs import CostModel
from solver.errors import SpecError
from solver.estimate import SCHEMA_VERSION, Estimate
from solver.specs import Layout, TrainingJob

#: Keys of a layout string and the ``Layout`` field each sets.
LAYOUT_KEYS = {
    "gpu": "accelerator", "accelerator": "accelerator", "tp": "tp", "pp": "pp", "dp": "dp",
    "cp": "cp", "ep": "ep", "vp": "vp", "mb": "micro_batch", "micro_batch": "micro_batch",
    "micro-batch": "micro_batch", "zero": "zero_stage", "zero_stage": "zero_stage",
    "recompute": "recompute", "schedule": "schedule", "split": "pipeline_split",
    "pipeline_split": "pipeline_split", "pipeline-split": "pipeline_split",
}
_INT_FIELDS = {"tp", "pp", "dp", "cp", "ep", "vp", "micro_batch", "zero_stage"}


def parse_layout(text: str) -> Layout:
    """``"a100-sxm4-80gb tp=8 pp=8 dp=16 mb=1 recompute=full"`` -> a ``Layout``.

    The accelerator comes first (or as ``gpu=NAME``); then ``KEY=VALUE`` words separated by
    spaces or commas, keys among tp, pp, dp, cp, ep, vp, mb, zero, recompute, schedule, split
    (or pipeline_split). tp, pp and dp are required; the others default as in
    ``solver.Layout``.
    """
    words = [w for w in re.split(r"[\s,]+", text.strip()) if w]
    if not words:
        raise SpecError("layout: expected 'ACCELERATOR tp=N pp=N dp=N ...', got an empty one")
    fields: dict[str, Any] = {}
    for i, word in enumerate(words):
        key, sep, value = word.partition("=")
        if not sep:
            if i == 0:
                fields["accelerator"] = word
                continue
            raise SpecError(f"layout: expected KEY=VALUE, got {word!r} in {text!r}")
        name = LAYOUT_KEYS.get(key.strip().lower())
        if name is None:
            raise SpecError(f"layout: unknown key {key!r} in {text!r} (known: "
                            f"{', '.join(sorted(k for k in LAYOUT_KEYS if '_' not in k))})")
        if name in fields:
            raise SpecError(f"layout: {key} is given twice in {text!r}")
        if name in _INT_FIELDS:
            try:
                fields[name] = int(value)
            except ValueError:
                raise SpecError(f"layout: {key} expects an integer, got {value!r} in "
                                f"{text!r}") from None
        else:
            fields[name] = value.strip()
    missing = [k for k in ("accelerator", "tp", "pp", "dp") if k not in fields]
    if missing:
        shown = {"accelerator": "the accelerator"}.get(missing[0], missing[0])
        raise SpecError(f"layout: {shown} is missing in {text!r}")
    fields["accelerator"] = catalog.accelerator(fields["accelerator"], field="layout").name
    try:
        return Layout(**fields)
    except SpecError as err:
        raise SpecError(f"layout: {err} (in {text!r})") from None


@dataclass(frozen=True)
class Comparison:
    """Estimates of the given layouts, in the order given."""

    estimates: tuple[Estimate, ...]
    fastest: int | None  # index of the fastest layout that fits
    cheapest: int | None  # index of the cheapest layout that fits (None when unpriced)
    why: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "layouts": [e.to_dict() for e in self.estimates],
            "fastest": self.fastest,
            "cheapest": self.cheapest,
            "explanation": list(self.why),
        }


def compare(job: TrainingJob, layouts: Sequence[Layout | str], *,
            cost_model: str | CostModel | None = None,
            cost_params: Mapping[str, Any] | None = None) -> Comparison:
    """Evaluate each layout (a ``Layout`` or a layout string) for ``job`` and compare them."""
    if not layouts:
        raise SpecError("layouts: expected at least one layout to compare")
    if not job.global_batch:
        raise SpecError("global_batch: expected a positive number of sequences per step to "
                        "compare layouts, got 0")
    parsed = [parse_layout(x) if isinstance(x, str) else x for x in layouts]
    estimates = []
    for i, layout in enumerate(parsed):
        try:
            estimates.append(evaluation.evaluate(job, layout, cost_model=cost_model,
                                                 cost_params=cost_params))
        except SpecError as err:
            raise SpecError(f"layout #{i + 1}: {err}") from None
    fits = [i for i, e in enumerate(estimates) if e.fits]
    fastest = min(fits, key=lambda i: estimates[i].wall_clock_days) if fits else None
    priced = [i for i in fits if estimates[i].cost_usd == estimates[i].cost_usd]
    cheapest = min(priced, key=lambda i: estimates[i].cost_usd) if priced else None
    return Comparison(estimates=tuple(estimates), fastest=fastest, cheapest=cheapest,
                      why=tuple(_why(estimates, fastest)))


def _why(estimates: Sequence[Estimate], fastest: int | None) -> list[str]:
    lines: list[str] = []
    for i, e in enumerate(estimates):
        for v in e.violations:
            lines.append(f"#{i + 1} does not fit: {v}")
    if fastest is None:
        return lines
    best = estimates[fastest]
    for i, e in enumerate(estimates):
        if i == fastest or not e.fits:
            continue
        ratio = (e.wall_clock_days / best.wall_clock_days if best.wall_clock_days
                 else float("nan"))
        diffs = _biggest(e.time_breakdown_s, best.time_breakdown_s, 2, "s")
        text = f"#{fastest + 1} is {ratio:.2f}x faster than #{i + 1}"
        if e.layout.gpus != best.layout.gpus:
            text += f" ({best.layout.gpus:,} vs {e.layout.gpus:,} accelerators)"
        if diffs:
            text += "; per step: " + ", ".join(diffs)
        lines.append(text)
    return lines


def _biggest(a: Mapping[str, float], b: Mapping[str, float], k: int, unit: str) -> list[str]:
    keys = [key for key in a if key in b]
    keys.sort(key=lambda key: -abs(a[key] - b[key]))
    return [f"{key} {a[key]:.3g} vs {b[key]:.3g} {unit}" for key in keys[:k]
            if abs(a[key] - b[key]) > 1e-9]


__all__ = ["Comparison", "compare", "parse_layout"]
