"""``solver.pareto`` and ``gpuplan pareto``, tested like an optimiser.

- Every point is optimal for its bound: the brute-force oracle
  (``solver.search.oracle.brute_force``) finds the same best value under the same deadline.
- A front reported complete is complete: between two neighbouring points the oracle finds
  nothing better than the faster one that is strictly faster than the slower one.
- On the issue's question (llama3-70b over H100 and A100, at most 4,096 GPUs) more cost never
  buys more time: sorted by time, cost strictly falls.
- The command line: the table, ``--json`` as docs/interface.md says, ``--plot`` (PNG/SVG with
  matplotlib; a one-line error and exit 2 when the extra is missing, simulated here, so the
  suite passes without matplotlib).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from itertools import pairwise
from pathlib import Path

import pytest

import solver
from solver.cli import run
from solver.pareto import REL, ParetoFront, axis_value
from solver.pareto import pareto as pareto_front
from solver.search.oracle import brute_force

#: A question small enough for the oracle: dp up to 12 is every integer for the solver too.
SMALL_JOB = solver.TrainingJob(model=solver.model("llama3-8b"), tokens=2e11, seq_len=4096)
SMALL_LIMITS = solver.Limits(accelerators=("h100-sxm5-80gb", "a100-sxm4-80gb"), max_gpus=12,
                             tokens_per_step=(1e6, 1.2e6), fixed={"pp": 1, "cp": 1})

ISSUE = ["pareto", "--model", "llama3-70b", "--tokens", "15T", "--gpu", "h100-sxm5-80gb",
         "--gpu", "a100-sxm4-80gb", "--max-gpus", "4096", "--workers", "1"]


def needs_matplotlib() -> None:
    """Skip unless the optional extra ``gpuplan[plot]`` (matplotlib) is importable."""
    try:
        import matplotlib.figure  # noqa: F401
    except ImportError:
        pytest.skip("matplotlib (gpuplan[plot]) is not installed")


def _est(plan: solver.Plan) -> solver.Estimate:
    assert plan.estimate is not None
    return plan.estimate


@pytest.mark.parametrize("second", ["cost", "gpus"])
def test_small_front_is_complete_and_each_point_is_optimal(second: str) -> None:
    front = pareto_front(SMALL_JOB, SMALL_LIMITS, axes=("time", second), points=40, workers=1)
    assert front.status == "complete"
    assert len(front.points) >= 3
    accs = [solver.accelerator(a) for a in SMALL_LIMITS.accelerators]
    for plan, bound in zip(front.points, front.bounds_days, strict=True):
        assert plan.status == "optimal"
        limits = SMALL_LIMITS if bound is None else dataclasses.replace(
            SMALL_LIMITS, deadline_days=bound)
        oracle = brute_force(SMALL_JOB, accs, limits, second)
        assert axis_value(_est(plan), second) == pytest.approx(oracle.value, rel=1e-9)
    for fast, slow in pairwise(front.points):
        limits = dataclasses.replace(SMALL_LIMITS,
                                     deadline_days=_est(slow).training_days * (1 - REL))
        oracle = brute_force(SMALL_JOB, accs, limits, second)
        assert oracle.value >= axis_value(_est(fast), second) * (1 - 1e-9)


def test_front_trades_time_for_the_second_axis_monotonically() -> None:
    front = pareto_front(SMALL_JOB, SMALL_LIMITS, points=40, workers=1)
    days = front.values("time")
    cost = front.values("cost")
    assert days == sorted(days) and len(set(days)) == len(days)
    assert all(a > b for a, b in pairwise(cost))


def test_the_cap_samples_the_front_and_says_so() -> None:
    front = pareto_front(SMALL_JOB, SMALL_LIMITS, points=3, workers=1)
    assert front.status == "sampled" and len(front.points) == 3
    assert any("sampled" in note for note in front.notes)
    full = pareto_front(SMALL_JOB, SMALL_LIMITS, points=40, workers=1)
    # The ends are the fastest and the cheapest plans of the complete front.
    assert front.values("time")[0] == full.values("time")[0]
    assert front.values("cost")[-1] == full.values("cost")[-1]


def test_a_deadline_bounds_the_slow_end() -> None:
    full = pareto_front(SMALL_JOB, SMALL_LIMITS, points=40, workers=1)
    deadline = full.values("time")[-2]
    cut = pareto_front(SMALL_JOB, dataclasses.replace(SMALL_LIMITS, deadline_days=deadline),
                       points=40, workers=1)
    assert max(cut.values("time")) <= deadline
    assert cut.values("time") == full.values("time")[:-1]


def test_infeasible_question_has_no_points_and_says_why() -> None:
    limits = solver.Limits(accelerators=("a100-sxm4-40gb",), max_gpus=8)
    job = solver.TrainingJob(model=solver.model("gpt3-175b"), tokens=300e9, global_batch=1536)
    front = pareto_front(job, limits, workers=1, time_limit_s=20)
    assert front.status == "infeasible" and front.points == ()
    assert any("memory" in line for line in front.explanation)


def test_bad_arguments_name_the_field() -> None:
    with pytest.raises(solver.SpecError, match="axes: expected time,cost"):
        pareto_front(SMALL_JOB, SMALL_LIMITS, axes=("cost", "time"))
    with pytest.raises(solver.SpecError, match="points: expected an integer >= 2"):
        pareto_front(SMALL_JOB, SMALL_LIMITS, points=1)


# ---------------------------------------------------------------------------- command line


def test_issue_front_more_cost_never_buys_more_time(capsys: pytest.CaptureFixture[str]) -> None:
    assert run([*ISSUE, "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    data = json.loads(captured.out)
    assert data["schema_version"] == 1 and data["axes"] == ["time", "cost"]
    points = data["points"]
    assert 2 <= len(points) <= 12
    days = [p["estimate"]["training_days"] for p in points]
    cost = [p["estimate"]["cost_usd"] for p in points]
    assert days == sorted(days)  # sorted by the first axis
    assert all(a > b for a, b in pairwise(cost))  # paying more always buys time
    for p in points:
        assert {"status", "layout", "estimate", "bound"} <= set(p)
        assert p["layout"]["accelerator"] in ("h100-sxm5-80gb", "a100-sxm4-80gb")
        assert p["layout"]["gpus"] <= 4096
        bound = p["bound"]["deadline_days"]
        assert bound is None or p["estimate"]["training_days"] <= bound * (1 + 1e-9)


def test_pareto_table_reads_at_80_columns(capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # an 80-column terminal (piped output is not wrapped)
    assert run([*ISSUE, "--points", "4", "--axes", "time,gpus"]) == 0
    out = capsys.readouterr().out
    assert "Pareto front" in out and "GPUs" in out
    assert max(len(line) for line in out.splitlines()) <= 80


def test_pareto_bad_axes_and_points_are_one_line_errors(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert run([*ISSUE, "--axes", "time,speed"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--axes" in err
    assert run([*ISSUE, "--points", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--points" in err


def test_pareto_infeasible_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["pareto", "--model", "gpt3-175b", "--tokens", "300e9", "--global-batch", "1536",
            "--gpu", "a100-sxm4-40gb", "--max-gpus", "8", "--workers", "1", "--json"]
    assert run(argv) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["points"] == [] and data["status"] == "infeasible"


def test_plot_without_matplotlib_is_a_one_line_error(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    # None in sys.modules makes ``import matplotlib...`` raise ImportError: the extra missing.
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    target = tmp_path / "front.png"
    assert run([*ISSUE, "--plot", str(target)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # refused before any solving
    assert captured.err == ("gpuplan: error: --plot: drawing needs matplotlib, which is not "
                            "installed; pip install 'gpuplan[plot]'\n")
    assert not target.exists()


def test_plot_needs_a_png_or_svg_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert run([*ISSUE, "--plot", "front.jpg"]) == 2
    assert "--plot: expected a file name ending in .png or .svg" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_plot_writes_the_file(suffix: str, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    needs_matplotlib()
    target = tmp_path / f"front{suffix}"
    assert run([*ISSUE, "--points", "5", "--plot", str(target)]) == 0
    assert f"wrote {target}" in capsys.readouterr().err
    head = target.read_bytes()[:200]
    assert head.startswith(b"\x89PNG") if suffix == ".png" else b"<svg" in target.read_bytes()


def test_library_plot(tmp_path: Path) -> None:
    needs_matplotlib()
    front = pareto_front(SMALL_JOB, SMALL_LIMITS, points=4, workers=1)
    assert isinstance(front, ParetoFront)
    path = front.plot(tmp_path / "small.svg")
    assert path.exists() and path.stat().st_size > 1000
