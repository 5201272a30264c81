"""The leave-one-out residuals behind the error band, and how honest the band is.

``benchmarks/fidelity.py --write-residuals`` computes each published run's leave-one-out error
(the run predicted by a calibration fitted without it) and writes them, with each run's
descriptors, to ``solver/data/loo_residuals.json``: the table ``solver/uncertainty.py`` builds
every estimate's band from. ``band_honesty`` checks that band the same way: each run's band is
built from the other runs' residuals only, and the run's own leave-one-out error must fall in it.
Nothing here imports ``fidelity.py``; it passes the runs and their errors in.
"""

from __future__ import annotations

import datetime
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from solver import uncertainty
from solver.uncertainty import Residual

RESIDUALS = Path(uncertainty.__file__).resolve().parent / "data" / "loo_residuals.json"

ABOUT = (
    "Leave-one-out (LOO) errors of the step model on the published runs of "
    "tests/data/published_runs.json (each refitted without the run: benchmarks/fidelity.py "
    "leave_one_out) and tests/data/published_runs_2024.json, fitted together (a run left out "
    "of the fit is predicted by the fit over the others). loo_error = predicted / "
    "published - 1 of the run's throughput metric, so the true training time is the predicted "
    "time x (1 + loo_error). solver/uncertainty.py builds the error band of every estimate "
    "from these rows.")


def rows(runs: Sequence[Any], errors: Sequence[float]) -> list[Residual]:
    """One ``Residual`` per run (``fidelity.Run``) and its leave-one-out error."""
    return [Residual(id=r.id, family=r.family, precision=r.job.precision,
                     is_moe=bool(r.job.model.is_moe), gpus=int(r.layout.gpus),
                     seq_len=int(r.job.seq_len), loo_error=float(e))
            for r, e in zip(runs, errors, strict=True)]


def write(table: Sequence[Residual], path: Path = RESIDUALS, norm: int = 8) -> None:
    """Write ``table`` with a header saying how it was made and when."""
    head = {"about": ABOUT, "made_by": "python benchmarks/fidelity.py --write-residuals",
            "fit_norm": norm, "date": datetime.date.today().isoformat()}
    runs = [json.dumps({"id": r.id, "family": r.family, "precision": r.precision,
                        "is_moe": r.is_moe, "gpus": r.gpus, "seq_len": r.seq_len,
                        "loo_error": round(r.loo_error, 5)}) for r in table]
    text = json.dumps(head, indent=1)[:-2] + ',\n "runs": [\n  ' + ",\n  ".join(runs)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n ]\n}\n", encoding="utf-8")  # one run a line


def band_honesty(table: Sequence[Residual]) -> tuple[float, float, list[str]]:
    """Coverage, median half-width and the runs outside their band, each run's band built
    from the other runs' residuals only (leave-one-out for the band too).

    Coverage: the share of runs whose published value falls inside the band around their
    leave-one-out prediction, i.e. ``low <= 1 + loo_error <= high`` on training time.
    Half-width: ``(high - low) / 2`` of the band as a share of the predicted time.
    """
    inside, widths, misses = 0, [], []
    for i, run in enumerate(table):
        others = [r for j, r in enumerate(table) if j != i]
        b = uncertainty.band_from(others, run.query())
        ratio = 1.0 + run.loo_error
        widths.append((b.high - b.low) / 2.0)
        if b.low <= ratio <= b.high:
            inside += 1
        else:
            misses.append(f"{run.id}: true/predicted time {ratio:.3f}, band "
                          f"{b.low:.3f}-{b.high:.3f}")
    return inside / len(table), statistics.median(widths), misses


def honesty_lines(table: Sequence[Residual], source: str) -> list[str]:
    """What ``fidelity.py`` prints about the band."""
    coverage, width, misses = band_honesty(table)
    lines = [f"error band ({source}; each run's band from the other runs' residuals): "
             f"published inside the band for {coverage:.0%} of {len(table)} runs, "
             f"median band +-{width:.1%}",
             f"  band rule: {uncertainty.RULE_SUMMARY}",
             "  outside their band:"]
    lines += [f"    {m}" for m in misses] or ["    (none)"]
    return lines
