"""The error band on training time (``solver/uncertainty.py``): the rule worked by hand on a
small made-up residual table, the flag on an accelerator family with no published run, the
JSON keys and text output, and the shipped table's honesty (issue 13, item 4)."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

import solver
from solver import uncertainty
from solver.cli import run
from solver.uncertainty import Query, Residual, Rule, band_from, distance, spread

ROOT = Path(__file__).resolve().parent.parent

#: A small rule to work by hand: 3 nearest runs, rank ceil(0.5 * (3 + 1)) = 2 of 3.
RULE = Rule(k=3, coverage=0.5, floor=0.02, family_w=100.0, precision_w=1.0, moe_w=1.0,
            gpus_w=0.25, seq_w=0.5, family_widen=2.0, moe_widen=1.5, range_widen=0.5,
            envelope=2.0)


def residual(id: str, family: str, precision: str, is_moe: bool, gpus: int, seq_len: int,
             log_error: float) -> Residual:
    """A run whose log error ln(1 + e) is ``log_error``."""
    return Residual(id, family, precision, is_moe, gpus, seq_len, math.expm1(log_error))


#: Family x: three runs (64 to 128 GPUs, 2048 to 4096 tokens); family y: two.
TABLE = (
    residual("A", "x", "bf16", False, 64, 2048, +0.10),
    residual("B", "x", "bf16", False, 128, 2048, -0.05),
    residual("C", "x", "fp8", False, 64, 4096, +0.20),
    residual("D", "y", "bf16", False, 64, 2048, -0.30),
    residual("E", "y", "bf16", True, 256, 2048, +0.40),
)


def test_distance_by_hand() -> None:
    q = Query("x", "bf16", False, 64, 2048)
    # A: same everything, 0. B: 0.25 * |log2(64/128)| = 0.25.
    # C: precision 1 + seq 0.5 * |log2(2048/4096)| = 1.5.
    # E: family 100 + MoE 1 + gpus 0.25 * |log2(64/256)| = 101.5.
    assert [distance(q, r, RULE) for r in TABLE] == pytest.approx([0.0, 0.25, 1.5, 100.0, 101.5])


def test_spread_takes_the_conformal_rank() -> None:
    values = [0.1, -0.3, 0.05, 0.2]  # |l| sorted: 0.05, 0.1, 0.2, 0.3
    assert spread(values, 0.5) == pytest.approx(0.2)  # rank ceil(0.5 * 5) = 3
    assert spread(values, 0.8) == pytest.approx(0.3)  # rank ceil(0.8 * 5) = 4
    assert spread(values, 0.95) == pytest.approx(0.3)  # rank ceil(4.75) = 5, capped at 4
    twelve = [i / 100 for i in range(1, 13)]
    assert spread(twelve, 0.8) == pytest.approx(0.11)  # rank ceil(0.8 * 13) = 11 of 12


def test_band_inside_the_envelope_by_hand() -> None:
    # Nearest 3: A (0), B (0.25), C (1.5); |l| 0.10, 0.05, 0.20 -> sorted 0.05, 0.10, 0.20;
    # rank 2 -> w = 0.10. Inside family x's range: no widening. Band exp(-+0.10).
    b = band_from(TABLE, Query("x", "bf16", False, 64, 2048), RULE)
    assert (b.low, b.high) == pytest.approx((0.904837, 1.105171), rel=1e-6)
    assert b.calibrated
    assert "3 nearest published runs (3 x)" in b.note
    low, high, calibrated, note = b  # unpacks as (low_factor, high_factor, calibrated, note)
    assert (low, high, calibrated, note) == (b.low, b.high, b.calibrated, b.note)


def test_band_of_a_family_with_no_run_by_hand() -> None:
    # Every run is 100 away for the family; then A (100), D (100), B (100.25): |l| 0.10,
    # 0.30, 0.05 -> sorted 0.05, 0.10, 0.30; rank 2 -> 0.10, widened x2 -> 0.20.
    # GPUs 64 and 2048 tokens lie inside all runs' range (64-256, 2048-4096).
    b = band_from(TABLE, Query("z", "bf16", False, 64, 2048), RULE)
    assert (b.low, b.high) == pytest.approx((0.818731, 1.221403), rel=1e-6)
    assert not b.calibrated
    assert b.note.startswith("uncalibrated: no published run on z: efficiencies inherited "
                             "from the NVIDIA Hopper fit")


def test_moe_on_a_family_with_no_moe_run_by_hand() -> None:
    # A (1), B (1.25), C (2.5): w = 0.10 as above, x1.5 for MoE -> 0.15.
    b = band_from(TABLE, Query("x", "bf16", True, 64, 2048), RULE)
    assert (b.low, b.high) == pytest.approx((math.exp(-0.15), math.exp(0.15)))
    assert not b.calibrated
    assert "MoE with no published MoE run on x" in b.note


def test_scale_beyond_the_family_range_by_hand() -> None:
    # 512 GPUs: B (0.5), A (0.75), C (2.25) -> w = 0.10; 4x beyond x's 128 GPUs: widened
    # 1 + 0.5 * log2(4) = 2 -> 0.20, and more than 2x beyond: an extrapolation.
    far = band_from(TABLE, Query("x", "bf16", False, 512, 2048), RULE)
    assert (far.low, far.high) == pytest.approx((math.exp(-0.20), math.exp(0.20)))
    assert not far.calibrated
    assert "GPUs 512 outside the x runs' 64-128" in far.note
    # 256 GPUs: 2x beyond, widened 1 + 0.5 * 1 = 1.5 -> 0.15, still inside the envelope.
    near = band_from(TABLE, Query("x", "bf16", False, 256, 2048), RULE)
    assert (near.low, near.high) == pytest.approx((math.exp(-0.15), math.exp(0.15)))
    assert near.calibrated
    # Sequence length 16384 on x (2048-4096): 4x beyond, widened x2 as well.
    long = band_from(TABLE, Query("x", "bf16", False, 64, 16384), RULE)
    assert long.high == pytest.approx(math.exp(0.20))
    assert not long.calibrated


def test_floor_and_empty_table() -> None:
    tiny = (residual("a", "x", "bf16", False, 64, 2048, 0.001),
            residual("b", "x", "bf16", False, 64, 2048, -0.002))
    # rank min(2, ceil(0.5 * 3)) = 2 -> 0.002, below the floor 0.02.
    b = band_from(tiny, Query("x", "bf16", False, 64, 2048), RULE)
    assert (b.low, b.high) == pytest.approx((math.exp(-0.02), math.exp(0.02)))
    empty = band_from((), Query("x", "bf16", False, 64, 2048), RULE)
    assert math.isnan(empty.low) and not empty.calibrated


# ------------------------------------------------------------------ on real estimates


def _llama70b(accelerator: str) -> solver.Estimate:
    job = solver.TrainingJob(model=solver.model("llama3-70b"), tokens=15e12, seq_len=8192,
                             global_batch=512)
    layout = solver.Layout(accelerator=accelerator, tp=8, pp=4, dp=2, micro_batch=1,
                           recompute="full")
    return solver.evaluate(job, layout)


def _width(e: solver.Estimate) -> float:
    return e.training_days_range[1] / e.training_days_range[0]


def test_a_family_with_no_published_run_is_uncalibrated_and_wider() -> None:
    hopper, trainium = _llama70b("h100-sxm5-80gb"), _llama70b("trainium2")
    assert hopper.calibrated
    assert "nvidia-hopper" in hopper.calibration_note
    assert not trainium.calibrated
    assert trainium.calibration_note.startswith(
        "uncalibrated: no published run on aws-trainium: efficiencies inherited from")
    for est in (hopper, trainium):
        low, high = est.training_days_range
        assert 0 < low < est.training_days < high
    assert _width(trainium) > _width(hopper)


def test_json_has_the_band_keys() -> None:
    est = _llama70b("h100-sxm5-80gb")
    data = est.to_dict()["estimate"]
    assert {"training_days", "step_time_s", "mfu", "cost_usd"} <= set(data)  # kept
    low, high = data["training_days_range"]
    assert low < data["training_days"] < high
    assert data["calibrated"] is True
    assert isinstance(data["calibration_note"], str) and data["calibration_note"]
    json.dumps(data)


def test_text_output_shows_the_band(capsys: pytest.CaptureFixture[str]) -> None:
    code = run(["evaluate", "--model", "llama3-70b", "--tokens", "15e12", "--seq-len", "8192",
                "--global-batch", "512", "--gpu", "trainium2", "--tp", "8", "--pp", "4",
                "--dp", "2", "--micro-batch", "1", "--recompute", "full"])
    out = capsys.readouterr().out
    assert code == 0
    line = next(x for x in out.splitlines() if x.startswith("training days (failure-free)"))
    days, band = line.split()[-2], line.split()[-1]
    low, high = (float(v) for v in band.strip("()").split("-"))
    assert low < float(days) < high
    assert "error band: uncalibrated: no published run on aws-trainium" in out


# ------------------------------------------------------------------ the shipped table


def _usable_ids() -> list[str]:
    ids = []
    for name in ("published_runs.json", "published_runs_2024.json"):
        doc = json.loads((ROOT / "tests" / "data" / name).read_text(encoding="utf-8"))
        ids += [r["id"] for r in doc["runs"] if r["fidelity"]["use"]]
    return ids


def test_the_shipped_table_covers_every_usable_run() -> None:
    path = ROOT / "solver" / "data" / "loo_residuals.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert {"about", "made_by", "date", "runs"} <= set(doc)
    assert "--write-residuals" in doc["made_by"]
    assert [r.id for r in uncertainty.shipped()] == _usable_ids()


def _band_residuals() -> ModuleType:
    path = ROOT / "benchmarks" / "band_residuals.py"
    spec = importlib.util.spec_from_file_location("band_residuals", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["band_residuals"] = module
    spec.loader.exec_module(module)
    return module


def test_the_band_is_honest_over_the_published_runs() -> None:
    # Issue 13: each run's band built from the other runs' leave-one-out errors holds its own
    # leave-one-out error in >= 80% of runs, and the median band is no wider than +-15%.
    coverage, width, _ = _band_residuals().band_honesty(uncertainty.shipped())
    assert coverage >= 0.80
    assert width <= 0.15
