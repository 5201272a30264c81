"""``gpuplan sweep`` / ``solver.sweep``: the sweep file, the points, the engines, the table,
resuming, the summary (docs/sweeps.md)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import solver
from solver.cli import run
from solver.errors import SpecError
from solver.sweep import load, points, summary
from solver.sweep.run import Z90, _factor

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "sweeps" / "llama3-70b-accelerators.toml"
GPT4 = ROOT / "examples" / "sweeps" / "gpt4-monte-carlo.toml"

SMALL = """
[model]
preset = "llama3-8b"
[job]
tokens = 1e12
[limits]
max_gpus = 256
[solve]
objective = "time"
"""


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def fails(tmp_path: Path, text: str) -> str:
    with pytest.raises(SpecError) as err:
        load(write(tmp_path, SMALL + text))
    return str(err.value)


# ------------------------------------------------------------------------------------------
# The sweep file.


def test_errors_name_the_file_table_and_key(tmp_path: Path) -> None:
    msg = fails(tmp_path, "[grid]\njob.tokenz = [1e12]\n")
    assert msg.startswith(f"{tmp_path / 's.toml'}: [grid] unknown key 'job.tokenz'")
    assert "did you mean job.tokens" in msg
    msg = fails(tmp_path, '[grid]\n"job.tokens" = [1e12, "lots"]\n')
    assert msg.startswith(f"{tmp_path / 's.toml'}: [grid] job.tokens[1]: expected a token")
    assert "unknown section 'grids'" in fails(tmp_path, "[grids]\n")
    assert "[sweep] draws: expected 1 without a [draw] table" in fails(
        tmp_path, "[sweep]\ndraws = 5\n")
    msg = fails(tmp_path, '[draw]\njob.mtbf_hours = {dist = "normal", mean = 1, sd = 0}\n')
    assert msg.endswith("[draw] job.mtbf_hours.sd: expected a number > 0, got 0")
    msg = fails(tmp_path, '[draw]\njob.mtbf_hours = {dist = "gauss", mean = 1, sd = 1}\n')
    assert "job.mtbf_hours.dist: expected one of uniform|loguniform" in msg
    assert "[sweep] group_by unknown column 'acelerator'; did you mean accelerator" in fails(
        tmp_path, '[sweep]\ngroup_by = ["acelerator"]\n')
    assert "in [grid] or [draw] once" in fails(
        tmp_path, '[grid]\njob.tokens = [1e12]\n[draw]\n"job.tokens" = {dist = "uniform", '
        "low = 1e12, high = 2e12}\n")
    assert "unknown key 'price'" in fails(
        tmp_path, "[grid]\nsolve.cost_params.price = [1.0, 2.0]\n")


def test_a_base_file_with_inline_sections_over_it(tmp_path: Path) -> None:
    (tmp_path / "q").mkdir()
    write(tmp_path / "q", SMALL + "[solve.cost_params]\npue = 1.2\n", "base.toml")
    spec = load(write(tmp_path, """
base = "q/base.toml"
[limits]
max_gpus = 64
[solve.cost_params]
price_usd_per_hour = 2.0
[grid]
"model.preset" = ["llama3-8b", "llama3-70b"]
"""))
    values = spec.base.values
    assert values["max_gpus"] == 64 and values["tokens"] == 1e12  # inline over the base
    assert values["cost_params"] == {"pue": 1.2, "price_usd_per_hour": 2.0}  # merged
    assert spec.base.origins["max_gpus"].endswith("s.toml: [limits] max_gpus")
    assert [dict(points.point(spec, i).inputs)["model.preset"] for i in range(2)] == [
        "llama3-8b", "llama3-70b"]
    assert spec.grid[0].values[1].layers == 80  # Llama 3 70B (Meta's model card)


def test_a_drawn_value_out_of_range_stops_the_sweep(tmp_path: Path) -> None:
    spec = load(write(tmp_path, SMALL + "[sweep]\ndraws = 50\n[draw]\njob.mtbf_hours = "
                      '{dist = "normal", mean = 10, sd = 100}\n'))
    with pytest.raises(SpecError, match=r"\[draw\] job.mtbf_hours \(draw \d+\): expected a "
                       r"finite number > 0"):
        solver.sweep(spec)


def test_ranges_by_hand(tmp_path: Path) -> None:
    spec = load(write(tmp_path, SMALL + """
[grid]
limits.deadline_days = {start = 30, stop = 120, step = 30}
job.tokens = {start = 1e12, stop = 4e12, num = 3, log = true}
limits.max_gpus = {start = 64, stop = 256, num = 3, log = true}
"solve.cost_params.price_usd_per_hour" = [2.0, 2.5]
"""))
    # TOML reads dotted keys section by section: limits.* first, then job.tokens
    days, gpus, tokens, price = spec.grid
    assert days.values == (30, 60, 90, 120)  # stop included
    assert tokens.values == (1e12, 2e12, 4e12)  # 1e12 * 2**k
    assert gpus.values == (64, 128, 256)  # integer ends give integers
    assert price.values == (2.0, 2.5)
    assert spec.points == 4 * 3 * 3 * 2


def test_points_last_axis_fastest_and_common_draws(tmp_path: Path) -> None:
    spec = load(write(tmp_path, SMALL + """
[sweep]
draws = 3
seed = 7
[grid]
limits.accelerators = ["h100", "a100"]
job.tokens = [1e12, 2e12]
[draw]
job.mtbf_hours = {dist = "uniform", low = 1000, high = 2000}
efficiency = "band"
"""))
    assert spec.points == 12
    p = [dict(points.point(spec, i).inputs) for i in range(12)]
    assert [(r["limits.accelerators"], r["job.tokens"], r["draw"]) for r in p[:4]] == [
        ("h100-sxm5-80gb", 1e12, 0), ("h100-sxm5-80gb", 1e12, 1),
        ("h100-sxm5-80gb", 1e12, 2), ("h100-sxm5-80gb", 2e12, 0)]
    assert p[11]["limits.accelerators"] == "a100-sxm4-80gb"
    # the same draws at every grid point, within the distribution's range
    for i in range(12):
        assert p[i]["job.mtbf_hours"] == p[i % 3]["job.mtbf_hours"]
        assert p[i]["efficiency_z"] == p[i % 3]["efficiency_z"]
        assert 1000 <= p[i]["job.mtbf_hours"] < 2000
    assert len({p[i]["job.mtbf_hours"] for i in range(3)}) == 3
    other = dataclasses.replace(spec, seed=8)
    assert dict(points.point(other, 0).inputs)["job.mtbf_hours"] != p[0]["job.mtbf_hours"]


def test_distributions_match_their_parameters(tmp_path: Path) -> None:
    spec = load(write(tmp_path, SMALL + """
[sweep]
draws = 4000
[draw]
job.mtbf_hours = {dist = "lognormal", median = 50000, sigma = 0.5}
"solve.cost_params.price_usd_per_hour" = {dist = "triangular", low = 1, mode = 2, high = 4}
limits.accelerators = {dist = "choice", values = ["h100", "a100"], weights = [3, 1]}
"""))
    rows = [dict(points.point(spec, i).inputs) for i in range(spec.points)]
    mtbf = np.array([r["job.mtbf_hours"] for r in rows])
    # a lognormal's median is exp(mu); P84 / P50 = exp(sigma)
    assert np.median(mtbf) == pytest.approx(50000, rel=0.05)
    assert np.percentile(mtbf, 84.13) / np.median(mtbf) == pytest.approx(math.exp(0.5),
                                                                         rel=0.05)
    price = np.array([r["solve.cost_params.price_usd_per_hour"] for r in rows])
    assert price.min() >= 1 and price.max() <= 4
    assert price.mean() == pytest.approx((1 + 2 + 4) / 3, rel=0.03)  # triangular mean
    share = np.mean([r["limits.accelerators"] == "h100-sxm5-80gb" for r in rows])
    assert share == pytest.approx(0.75, abs=0.03)


# ------------------------------------------------------------------------------------------
# Points and rows.


def test_efficiency_factor_puts_the_band_ends_at_p10_and_p90() -> None:
    job = solver.TrainingJob(model="llama3-8b", tokens=1e12, global_batch=512)
    est = solver.evaluate(job, solver.Layout(accelerator="h100", tp=1, pp=1, dp=64,
                                             micro_batch=2, zero_stage=1))
    low, high = est.training_days_range
    assert est.training_days * _factor(est, Z90) == pytest.approx(high, rel=1e-4)
    assert est.training_days * _factor(est, -Z90) == pytest.approx(low, rel=1e-4)
    assert _factor(est, 0.0) == 1.0
    assert _factor(est, None) is None


#: Llama 3 8B on 64 H100 at one layout, less its recomputation: the evaluate sweeps' base.
FIXED_LAYOUT = """
[model]
preset = "llama3-8b"
[job]
tokens = 1e12
global_batch = 512
[limits]
accelerators = "h100"
[fixed]
tp = 1
pp = 1
dp = 64
micro_batch = 2
zero_stage = 1
"""


def test_evaluate_rows_follow_the_price_and_the_efficiency(tmp_path: Path) -> None:
    spec = write(tmp_path, FIXED_LAYOUT + """recompute = "full"
[sweep]
mode = "evaluate"
draws = 3
[grid]
"solve.cost_params.price_usd_per_hour" = [2.0, 4.0]
[draw]
efficiency = "band"
""")
    result = solver.sweep(spec)
    assert [r["status"] for r in result.rows] == ["fits"] * 6
    est = solver.evaluate(solver.TrainingJob(model="llama3-8b", tokens=1e12, global_batch=512),
                          solver.Layout(accelerator="h100", tp=1, pp=1, dp=64, micro_batch=2,
                                        zero_stage=1, recompute="full"))
    for r in result.rows:
        price = r["solve.cost_params.price_usd_per_hour"]
        # cloud cost = price x accelerators x wall-clock hours (docs/plugins.md)
        assert r["cost_usd"] == pytest.approx(price * 64 * r["wall_clock_days"] * 24,
                                              rel=1e-4)
        assert r["training_days"] == pytest.approx(est.training_days * r["efficiency_factor"],
                                                   rel=1e-5)
        assert r["training_days_high"] == pytest.approx(est.training_days_range[1], rel=1e-5)
    # draws are shared by both prices
    assert [r["efficiency_factor"] for r in result.rows[:3]] == [
        r["efficiency_factor"] for r in result.rows[3:]]


def test_layouts_that_do_not_fit_are_rows_but_not_percentiles(tmp_path: Path) -> None:
    result = solver.sweep(write(tmp_path, FIXED_LAYOUT + """[sweep]
mode = "evaluate"
group_by = ["fixed.recompute"]
[grid]
fixed.recompute = ["full", "none"]
"""))
    full, none = result.rows
    assert full["status"] == "fits" and none["status"] == "no-fit"
    assert none["message"].startswith("memory: needs")
    # every activation kept: more memory than recomputing them (and an H100 has 80 GiB)
    assert none["memory_gib_per_gpu"] > 80 > full["memory_gib_per_gpu"]
    assert [(g["points"], g["plans"]) for g in result.summary["groups"]] == [(1, 1), (1, 0)]
    assert result.summary["groups"][1]["metrics"]["wall_clock_days"]["p50"] is None


def test_a_bad_combination_is_an_error_row(tmp_path: Path) -> None:
    result = solver.sweep(write(tmp_path, SMALL + """
[grid]
fixed.tp = [3, 1]
limits.accelerators = ["h100"]
"""))
    assert result.rows[0]["status"] == "error"
    assert "[grid] fixed.tp: expected a divisor of heads=32" in result.rows[0]["message"]
    assert result.rows[1]["status"] == "optimal" and result.rows[1]["tp"] == 1


def test_pareto_rows(tmp_path: Path) -> None:
    result = solver.sweep(write(tmp_path, SMALL + """
[sweep]
mode = "pareto"
pareto_points = 3
[grid]
limits.accelerators = ["h100"]
"""))
    (row,) = result.rows
    assert row["status"] in ("complete", "sampled")
    days = [float(d) for d in str(row["front_wall_clock_days"]).split(";")]
    costs = [float(c) for c in str(row["front_second"]).split(";")]
    assert len(days) == row["front_points"] >= 1
    assert days == sorted(days) and costs == sorted(costs, reverse=True)
    assert row["wall_clock_days"] == days[0]


def test_summary_by_hand() -> None:
    assert summary.percentiles(list(range(1, 11))) == {"p10": 1.9, "p50": 5.5, "p90": 9.1}
    # ranks of y = 5, 6, 7, 8, 7 are 1, 2, 3.5, 5, 3.5: rho = 8 / sqrt(10 * 9.5)
    assert summary.spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(
        8 / math.sqrt(95))
    assert summary.spearman([1, 2, 3], [4, 4, 4]) is None


def test_no_ray_cluster_is_exit_2_and_nothing_written(tmp_path: Path) -> None:
    # A fresh process (this one may hold the module's local Ray instance) with no cluster
    # address: "auto" finds no cluster.
    spec = write(tmp_path, SMALL + '[grid]\nlimits.accelerators = ["h100"]\n')
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run([sys.executable, "-m", "solver.cli", "sweep", str(spec), "-o",
                           str(tmp_path / "t.csv"), "--ray", "auto"], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 2
    assert done.stderr.startswith("gpuplan: error: --ray: cannot reach Ray at 'auto' (")
    assert list(tmp_path.iterdir()) == [spec]


# ------------------------------------------------------------------------------------------
# Engines, the table, resuming.


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> solver.SweepResult:
    out = tmp_path_factory.mktemp("one") / "t.csv"
    result = solver.sweep(EXAMPLE, workers=1, output=out)
    assert result.computed == 500
    return result


@pytest.fixture(scope="module")
def one_worker(example: solver.SweepResult) -> str:
    assert example.output is not None
    return example.output.read_text()


def test_the_example_plot(example: solver.SweepResult, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = example.plot(tmp_path / "days.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the groups: four accelerators, 125 plans each (5 token budgets x 25 draws)
    groups = example.summary["groups"]
    assert [g["plans"] for g in groups] == [125] * 4
    assert {g["group"]["accelerator"] for g in groups} == {
        "h100-sxm5-80gb", "h200-sxm-141gb", "a100-sxm4-80gb", "b200"}


def test_example_has_500_points_and_a_plan_at_each(one_worker: str) -> None:
    lines = one_worker.splitlines()
    assert len(lines) == 501
    header = lines[0].split(",")
    assert header[:5] == ["point", "limits.accelerators", "job.tokens", "draw",
                          "efficiency_z"]
    assert [int(x.split(",")[0]) for x in lines[1:]] == list(range(500))
    assert all(",optimal," in line for line in lines[1:])


def test_two_workers_give_the_same_table(one_worker: str, tmp_path: Path) -> None:
    out = tmp_path / "t.csv"
    code = run(["sweep", str(EXAMPLE), "--workers", "2", "-o", str(out)])
    assert code == 0
    assert out.read_text() == one_worker
    assert not out.with_name("t.csv.partial").exists()


@pytest.fixture(scope="module")
def local_ray():  # type: ignore[no-untyped-def]
    import ray  # the test extra installs it: CI runs this test

    ray.init(address="local", _node_ip_address="127.0.0.1", num_cpus=2,
             include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_gives_the_same_table(one_worker: str, local_ray: object, tmp_path: Path) -> None:
    out = tmp_path / "t.csv"
    result = solver.sweep(EXAMPLE, ray="auto", output=out)
    assert out.read_text() == one_worker
    assert result.computed == 500


def test_a_killed_sweep_resumes_to_the_same_table(one_worker: str, tmp_path: Path) -> None:
    out = tmp_path / "t.csv"
    partial = tmp_path / "t.csv.partial"
    cmd = [sys.executable, "-m", "solver.cli", "sweep", str(EXAMPLE), "-o", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if partial.exists() and partial.read_text().count("\n") >= 2 + 25:
            break  # a grid point's 25 rows are in
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = partial.read_text().count("\n") - 2
    assert 25 <= kept < 500 and not out.exists()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert f"{500 - kept} computed, {kept} resumed" in done.stdout
    assert out.read_text() == one_worker
    assert not partial.exists()


def test_a_partial_of_another_sweep_is_refused(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    spec = write(tmp_path, SMALL + '[grid]\nlimits.accelerators = ["h100"]\n')
    out = tmp_path / "t.csv"
    (tmp_path / "t.csv.partial").write_text("# gpuplan sweep 0123456789abcdef\npoint\n")
    assert run(["sweep", str(spec), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(r"gpuplan: error: \S+t\.csv\.partial: a partial table of another "
                        r"sweep .*\n", err)
    assert not out.exists()


def test_bad_input_exits_2_and_writes_nothing(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    spec = write(tmp_path, SMALL + "[grid]\njob.tokenz = [1e12]\n")
    out = tmp_path / "t.csv"
    assert run(["sweep", str(spec), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "[grid] unknown key 'job.tokenz'" in err
    assert list(tmp_path.iterdir()) == [spec]
    good = write(tmp_path, SMALL + '[grid]\nlimits.accelerators = ["h100"]\n', "g.toml")
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    assert run(["sweep", str(good), "-o", str(out), "--ray", "auto"]) == 2
    assert capsys.readouterr().err == ('gpuplan: error: --ray: needs the ray extra: pip install '
                                       '"gpuplan[ray]"\n')
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.toml", "s.toml"]


def test_gpt4_monte_carlo_prints_percentiles(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """The example with 3 draws instead of 100 (each draw is a GPT-4 solve)."""
    text = GPT4.read_text().replace("draws = 100", "draws = 3").replace(
        '"../gpt4-estimate-fewest-a100.toml"', json.dumps(str(ROOT / "examples" /
                                                            "gpt4-estimate-fewest-a100.toml")))
    spec = write(tmp_path, text)
    assert run(["sweep", str(spec), "-o", str(tmp_path / "t.csv"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["statuses"] == {"optimal": 3}
    (group,) = data["groups"]
    for metric in ("wall_clock_days", "cost_usd"):
        p = group["metrics"][metric]
        assert 0 < p["p10"] <= p["p50"] <= p["p90"]
    assert run(["sweep", str(spec), "-o", str(tmp_path / "t.csv")]) == 0
    out = capsys.readouterr().out
    assert "P10 / P50 / P90 wall-clock days" in out and "P10 / P50 / P90 cost (USD)" in out


def test_sweep_json_keys_are_documented(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    spec = write(tmp_path, SMALL + """
[sweep]
draws = 2
group_by = ["accelerator"]
[grid]
limits.accelerators = ["h100"]
[draw]
efficiency = "band"
""")
    assert run(["sweep", str(spec), "-o", str(tmp_path / "t.csv"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    doc = (ROOT / "docs" / "interface.md").read_text()
    section = doc.split("### `gpuplan sweep --json`", 1)[1].split("\n### ", 1)[0]
    names = set(re.findall(r"`([A-Za-z_][A-Za-z0-9_.\[\]]*)`", section))

    def keys(value: object, prefix: str) -> list[str]:
        if isinstance(value, dict) and not prefix.endswith(("].group", "statuses")):
            out = [] if prefix.endswith("[]") else [prefix]
            for k, v in value.items():
                out += keys(v, f"{prefix}.{k}")
            return out
        if isinstance(value, list) and value and isinstance(value[0], dict):
            return [prefix, *[k for v in value for k in keys(v, f"{prefix}[]")]]
        return [prefix]

    found = {k for key, v in data.items() for k in keys(v, key)}
    found = {re.sub(r"metrics\.(wall_clock_days|cost_usd)", "metrics.METRIC", k) for k in found}
    found = {re.sub(r"^sensitivity\[\]\.(wall_clock_days|cost_usd)$", "sensitivity[].METRIC",
                    k) for k in found}
    assert "groups[].metrics.METRIC.p90" in found and "sensitivity[].METRIC" in found
    missing = sorted(k for k in found if k not in names)
    assert not missing, missing


def test_a_model_path_axis_reads_files_beside_the_sweep(tmp_path: Path) -> None:
    # Two model files next to the sweep file: the same shape but 16 and 32 layers. Per token,
    # a layer's matmuls 2 * (4h^2 + 2hf) = 100.7M FLOPs and scores 2 * 2048 * 16 * 256 = 16.8M,
    # the LM head 2 * 2048 * 32,000 = 131M: 16 layers 2.01G, 32 layers 3.89G, a ratio of 1.93
    # (1.93 forward, the same in backward); everything per layer scales alike, so the training
    # days at one fixed layout must differ by a ratio between 1.6 and 2.
    for layers in (16, 32):
        write(tmp_path, f"""
name = "m{layers}"
layers = {layers}
hidden = 2048
heads = 16
ffn_hidden = 8192
vocab = 32000
seq_len = 2048
""", f"m{layers}.toml")
    spec = write(tmp_path, """
[job]
tokens = 1e11
global_batch = 256
[limits]
accelerators = "h100"
[fixed]
tp = 1
pp = 1
dp = 8
micro_batch = 4
zero_stage = 1
[sweep]
mode = "evaluate"
[grid]
"model.path" = ["m16.toml", "m32.toml"]
""")
    rows = solver.sweep(spec).rows
    assert [r["model.path"] for r in rows] == ["m16.toml", "m32.toml"]
    assert [r["status"] for r in rows] == ["fits", "fits"]
    assert 1.6 < rows[1]["training_days"] / rows[0]["training_days"] < 2.0
