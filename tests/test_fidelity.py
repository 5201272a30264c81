"""The step model against published training runs, with the calibration as stored.

Nothing is fitted here: the predictions use ``DEFAULT_CALIBRATION`` and the accelerators'
``matmul_scale`` and ``attention_scale`` as shipped (``benchmarks/fidelity.py --fit`` produced
them). The runs, their citations, and every assumption with its reason are in
``tests/data/published_runs.json``.
"""

from __future__ import annotations

import importlib.util
import json
import statistics
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data" / "published_runs.json"

#: The targets (issue 5): median absolute error <= 5%, worst <= 12% over the 42 runs; over
#: the newer runs too (issues 12, 13): median <= 5%, worst <= 15%.
MEDIAN_BOUND = 0.05
WORST_BOUND = 0.12
WORST_BOUND_ALL = 0.15


def load_fidelity() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fidelity", ROOT / "benchmarks" /
                                                  "fidelity.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fidelity"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fidelity() -> ModuleType:
    return load_fidelity()


@pytest.fixture(scope="module")
def errors(fidelity: ModuleType) -> dict[str, float]:
    """Relative error of every usable run, with the shipped calibration."""
    shipped = fidelity.shipped()
    return {run.id: shipped.predict(run) / run.published - 1.0 for run in fidelity.load_runs()}


@pytest.fixture(scope="module")
def all_runs(fidelity: ModuleType) -> list[Any]:
    return list(fidelity.load_all())


@pytest.fixture(scope="module")
def all_errors(fidelity: ModuleType, all_runs: list[Any]) -> dict[str, float]:
    """Relative error of every usable run of both files, with the shipped calibration."""
    shipped = fidelity.shipped()
    return {run.id: shipped.predict(run) / run.published - 1.0 for run in all_runs}


def test_median_error_over_all_runs_within_bound(all_errors: dict[str, float]) -> None:
    assert len(all_errors) >= 55
    median = statistics.median(abs(e) for e in all_errors.values())
    assert median <= MEDIAN_BOUND, f"median |error| {median:.1%}"


def test_every_fitted_run_within_bound(all_runs: list[Any],
                                       all_errors: dict[str, float]) -> None:
    # The runs left out of the fit (their why_not_fit says which kernels the step model has
    # no rate for) are not held to it; benchmarks/fidelity.py prints them with the rest.
    fitted = [r.id for r in all_runs if r.fitted]
    worst = max(fitted, key=lambda k: abs(all_errors[k]))
    assert abs(all_errors[worst]) <= WORST_BOUND_ALL, f"{worst}: {all_errors[worst]:+.1%}"


def test_runs_left_out_of_the_fit_say_why() -> None:
    left_out = 0
    for path in (DATA, DATA.with_name("published_runs_2024.json")):
        for row in json.loads(path.read_text(encoding="utf-8"))["runs"]:
            f = row["fidelity"]
            if f["use"] and not f.get("fit", True):
                left_out += 1
                assert len(f["why_not_fit"]) > 40, row["id"]
    assert left_out <= 1  # one run (docs/model.md); each more would need a reason as strong


def test_every_detailed_run_is_predicted(errors: dict[str, float]) -> None:
    doc = json.loads(DATA.read_text(encoding="utf-8"))
    used = [r["id"] for r in doc["runs"] if r["fidelity"]["use"]]
    assert sorted(used) == sorted(errors)
    assert len(used) >= 40


def test_median_error_within_bound(errors: dict[str, float]) -> None:
    median = statistics.median(abs(e) for e in errors.values())
    assert median <= MEDIAN_BOUND, f"median |error| {median:.1%}"


def test_worst_error_within_bound(errors: dict[str, float]) -> None:
    worst = max(errors, key=lambda k: abs(errors[k]))
    assert abs(errors[worst]) <= WORST_BOUND, f"{worst}: {errors[worst]:+.1%}"


def test_runs_carry_citations_and_reasons() -> None:
    doc = json.loads(DATA.read_text(encoding="utf-8"))
    metrics = {"hardware_tflops_per_gpu", "model_tflops_per_gpu", "mfu"}
    for row in doc["runs"]:
        f = row["fidelity"]
        assert row["source"], row["id"]
        if not f["use"]:
            assert f["why_not"], row["id"]
            continue
        assert f["metric"] in metrics, row["id"]
        assert f["published"] > 0
        for item in f["facts"] + f["assumptions"]:
            assert item["field"] and item["reason"], (row["id"], item)
        if "model_flops_per_token" in f:
            assert f["model_flops_formula"], row["id"]


def test_source_flop_counts_reproduce_the_published_mfu() -> None:
    # The sources' own FLOP counts (stored per run) give back their MFU from their throughput:
    # MPT-70B on 64 H100, 1039 tokens/s/GPU at 989 TFLOP/s peak: 42.57%.
    # torchtitan Llama 3 8B on 64 A100, 2973 tokens/s/GPU at 312 TFLOP/s: 58.2%.
    doc = {r["id"]: r for r in json.loads(DATA.read_text(encoding="utf-8"))["runs"]}
    mpt = doc["mpt-70b-64xh100-80gb"]["fidelity"]
    assert 1039 * mpt["model_flops_per_token"] / 989e12 == pytest.approx(0.4257, abs=5e-4)
    titan = doc["torchtitan-llama3-8b-64a100"]["fidelity"]
    assert 2973 * titan["model_flops_per_token"] / 312e12 == pytest.approx(0.582, abs=5e-4)


def test_stored_flop_counts_turn_tokens_into_the_published_tflops() -> None:
    # A transcription check on every run published in model TFLOP/s with tokens/s beside it:
    # tokens/s/GPU x the source's FLOPs per token = its TFLOP/s/GPU, to the page's rounding
    # (gpt-oss-120b on 64 B200: 13,045 x 27.164 GFLOP = 354.4 against 355).
    checked = 0
    for path in (DATA, DATA.with_name("published_runs_2024.json")):
        for row in json.loads(path.read_text(encoding="utf-8"))["runs"]:
            f = row["fidelity"]
            tokens, tflops = row.get("tokens_per_s_per_gpu"), row.get("achieved_tflops_per_gpu")
            if not (f["use"] and f.get("model_flops_per_token") and tokens and tflops
                    and f["metric"] == "model_tflops_per_gpu"):
                continue
            assert tokens * f["model_flops_per_token"] / 1e12 == pytest.approx(
                tflops, rel=0.005), row["id"]
            checked += 1
    assert checked >= 9
