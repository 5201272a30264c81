"""Failures, checkpoints and restarts (solver/stepmodel/goodput.py), each formula against
arithmetic done here: the job's failure rate from the Llama 3 table, the checkpoint's size and
write time, Young's and Daly's intervals, Daly's wall-clock time; then the search: wall-clock
time is monotone in the accelerator count, solve meets deadlines on it, and with failures it
may choose a smaller cluster, as the brute-force oracle does."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import solver
from solver import catalog
from solver.cli import run
from solver.search.oracle import brute_force
from solver.stepmodel import goodput as G
from solver.stepmodel.shape import job_shape

H100 = "h100-sxm5-80gb"
#: Llama 3 (arXiv:2407.21783 sec. 3.3.4, Table 5): 419 unexpected interruptions in 54 days on
#: 16,384 H100; by category GPU 148+72+19+17+6+6, Host 7+3+3+2+2+2+2 plus unplanned host
#: maintenance 32, Network 35, Dependency 54+2, Unknown 7.
LLAMA3_COUNTS = {"gpu": 268, "host": 53, "network": 35, "software": 56, "unknown": 7}
LLAMA3_GPU_HOURS = 16_384 * 54 * 24


def test_causes_are_the_llama3_table_over_its_accelerator_hours() -> None:
    assert sum(LLAMA3_COUNTS.values()) == 419
    rates = {c.name: c.per_accelerator_hour for c in G.causes()}
    assert rates.keys() == LLAMA3_COUNTS.keys()
    for name, count in LLAMA3_COUNTS.items():
        assert rates[name] == pytest.approx(count / 21_233_664, rel=1e-12)
    assert LLAMA3_GPU_HOURS == 21_233_664
    assert all("arXiv:2407.21783" in c.source for c in G.causes())


def test_job_failure_rate_grows_with_accelerators() -> None:
    fm = G.failure_model(solver.TrainingJob("llama3-8b", 1e12), job_shape(
        solver.TrainingJob("llama3-8b", 1e12)))
    # 16,384 accelerators: 419 interruptions per 54 x 24 = 1,296 hours -> 3.093 h apart.
    assert G.job_mtbf_s(fm.rate_per_accelerator_hour, np.array([16_384]))[0] / 3600 == \
        pytest.approx(1296 / 419, rel=1e-12)
    # 1,024 accelerators: 16 times fewer, 16 times longer apart (49.5 h).
    assert G.job_mtbf_s(fm.rate_per_accelerator_hour, np.array([1024]))[0] / 3600 == \
        pytest.approx(16 * 1296 / 419, rel=1e-12)
    # Hardware causes (GPU, host, network): 356 of 419.
    assert fm.hardware_share == pytest.approx(356 / 419, rel=1e-12)
    # An override is per accelerator: 20,000 h on 2,000 accelerators -> one every 10 h.
    job = solver.TrainingJob("llama3-8b", 1e12, mtbf_hours=20_000)
    fm = G.failure_model(job, job_shape(job))
    assert G.job_mtbf_s(fm.rate_per_accelerator_hour, np.array([2000]))[0] == \
        pytest.approx(36_000, rel=1e-12)


def test_checkpoint_size_and_write_time() -> None:
    # Llama 3 8B: 8,030,261,248 parameters (its config.json, counted); BF16 weight 2 bytes +
    # FP32 master and two Adam moments 12 bytes = 14 bytes each: 112.4237 GB.
    job = solver.TrainingJob("llama3-8b", 1e12)
    fm = G.failure_model(job, job_shape(job))
    assert fm.checkpoint_bytes == 8_030_261_248 * 14
    # 64 accelerators = 8 nodes x 12.5 GB/s = 100 GB/s: 1.124 s.
    assert G.write_s(fm, np.array([64]))[0] == pytest.approx(112.42365747 / 100, rel=1e-9)
    # A total of 50 GB/s caps it: 2.248 s; on 4 accelerators, half a node: 6.25 GB/s, 17.99 s.
    capped = dataclasses.replace(job, checkpoint_total_gb_s=50)
    fm = G.failure_model(capped, job_shape(capped))
    assert G.write_s(fm, np.array([64, 4])) == pytest.approx(
        [112.42365747 / 50, 112.42365747 / 6.25], rel=1e-9)
    # BF16 moments: 2 + 4 (master) + 2 + 2 = 10 bytes per parameter.
    bf16 = dataclasses.replace(job, moments_dtype="bf16")
    assert G.failure_model(bf16, job_shape(bf16)).checkpoint_bytes == 8_030_261_248 * 10


def test_young_and_daly_intervals() -> None:
    # delta = 60 s, M = 3,600 s: Young sqrt(2 * 60 * 3600) = 657.27 s; Daly's series
    # 657.27 * (1 + sqrt(60/7200)/3 + 60/64800) - 60 = 617.88 s.
    young = math.sqrt(2 * 60 * 3600)
    assert G.young_interval_s(60.0, 3600.0) == pytest.approx(657.2670690, rel=1e-9)
    daly = young * (1 + math.sqrt(60 / 7200) / 3 + 60 / 64800) - 60
    assert daly == pytest.approx(617.88, abs=0.01)
    assert G.daly_interval_s(60.0, 3600.0) == pytest.approx(daly, rel=1e-12)
    assert G.daly_interval_s(8000.0, 3600.0) == 3600.0  # delta >= 2M: M
    # The exact optimum solves exp((tau + delta)/M) * (1 - tau/M) = 1, and lies within 0.5%
    # of Daly's series (his approximation of it) here.
    tau = float(G.optimal_interval_s(60.0, 3600.0))
    assert math.exp((tau + 60) / 3600) * (1 - tau / 3600) == pytest.approx(1.0, abs=1e-12)
    assert tau == pytest.approx(daly, rel=5e-3)
    # delta << M: all three agree with Young.
    assert float(G.optimal_interval_s(0.01, 3600.0)) == pytest.approx(
        math.sqrt(2 * 0.01 * 3600), rel=1e-3)
    # It is the minimum of the wall-clock factor.
    f = [float(G.wall_factor(t, 60.0, 600.0, 3600.0)) for t in (tau * 0.9, tau, tau * 1.1)]
    assert f[1] < f[0] and f[1] < f[2]


def test_daly_wall_clock_and_goodput() -> None:
    # M = 3,600 s, delta = 60 s, R = 600 s, tau = 600 s: 3600 e^(600/3600) (e^(660/3600) - 1)
    # / 600 = 3600 * 1.181360 * 0.201214 / 600 = 1.426243; goodput 0.70114.
    factor = 3600 * math.exp(1 / 6) * (math.exp(660 / 3600) - 1) / 600
    assert factor == pytest.approx(1.426243, rel=1e-6)
    assert G.wall_factor(600.0, 60.0, 600.0, 3600.0) == pytest.approx(factor, rel=1e-12)
    assert 1 / factor == pytest.approx(0.70114, abs=1e-5)


def test_estimate_reads_the_formulas() -> None:
    # Llama 3 8B on 64 H100 for 100B tokens: the estimate's wall-clock days are its
    # failure-free days times Daly's factor at its own figures, worked out here.
    job = solver.TrainingJob("llama3-8b", 100e9, global_batch=512)
    layout = solver.Layout(accelerator=H100, tp=1, pp=1, dp=64, zero_stage=1)
    est = solver.evaluate(job, layout)
    m = 3600 / (64 * 419 / LLAMA3_GPU_HOURS)  # seconds between interruptions
    delta = 8_030_261_248 * 14 / 100e9  # 8 nodes x 12.5 GB/s
    restart = 600 + delta  # 10 min plus loading the checkpoint; hot spares
    tau = est.checkpoint_interval_min * 60
    assert math.exp((tau + delta) / m) * (1 - tau / m) == pytest.approx(1.0, abs=1e-9)
    factor = m * math.exp(restart / m) * (math.exp((tau + delta) / m) - 1) / tau
    assert est.wall_clock_days == pytest.approx(est.training_days * factor, rel=1e-9)
    assert est.goodput == pytest.approx(1 / factor, rel=1e-3)
    assert est.expected_interruptions == pytest.approx(est.wall_clock_days * 86400 / m,
                                                       rel=1e-9)
    lost = est.lost_days
    assert sum(lost.values()) == pytest.approx(est.wall_clock_days - est.training_days,
                                               rel=1e-9)
    # Daly's model per segment of tau: e^((tau+delta)/M) - 1 failed attempts, each followed
    # by M (e^(R/M) - 1) of restarts; M (e^(delta/M) - 1) checkpointing.
    segments = est.training_days * 86400 / tau
    assert lost["restarts"] * 86400 == pytest.approx(
        segments * (math.exp((tau + delta) / m) - 1) * m * (math.exp(restart / m) - 1),
        rel=1e-5)
    assert lost["checkpoints"] * 86400 == pytest.approx(
        segments * m * (math.exp(delta / m) - 1), rel=1e-5)
    assert lost["rework"] > 0
    # Cost on wall-clock hours; --no-failures is the failure-free plan.
    off = solver.evaluate(dataclasses.replace(job, failures=False), layout)
    assert off.wall_clock_days == off.training_days == est.training_days
    assert est.cost_usd == pytest.approx(off.cost_usd * factor, rel=1e-9)
    # Without hot spares each hardware interruption (356 of 419) waits 60 more minutes.
    cold = solver.evaluate(dataclasses.replace(job, hot_spares=False), layout)
    assert cold.failure_model["restart_min"] == pytest.approx(
        10 + delta / 60 + 356 / 419 * 60, rel=1e-6)


def test_llama3_run_of_54_days_reproduces_its_interruptions() -> None:
    # The source run itself: 16,384 H100, 54 wall-clock days -> 419 * 54 / 54 interruptions
    # (the rate is that run's), whatever the layout's speed.
    job = solver.TrainingJob("llama3.1-405b", 7e12, global_batch=2048)
    layout = solver.Layout(accelerator=H100, tp=8, pp=16, dp=128, zero_stage=1,
                           pipeline_split="both", recompute="selective")
    est = solver.evaluate(job, layout)
    assert est.expected_interruptions == pytest.approx(est.wall_clock_days * 419 / 54,
                                                       rel=1e-9)
    assert est.failure_model["job_mtbf_hours"] == pytest.approx(1296 / 419, rel=1e-5)
    assert 0 < est.goodput < 1


@pytest.mark.parametrize("options", [
    {}, {"checkpoint_total_gb_s": 5.0}, {"async_checkpoint": True},
    {"async_checkpoint": True, "checkpoint_total_gb_s": 2.0, "hot_spares": False},
    {"mtbf_hours": 50.0, "checkpoint_total_gb_s": 1.0, "restart_min": 0.0},
    {"checkpoint_node_gb_s": 0.01, "restart_min": 0.0},
])
def test_wall_clock_is_monotone_in_the_accelerator_count(options: dict[str, object]) -> None:
    """What the search's Pareto pruning on (gpus, failure-free time) and its failure-free
    bounds need: at one accelerator, wall-clock time over failure-free time never falls as
    the count grows (docstring of goodput.py), and it is proportional to the latter."""
    job = solver.TrainingJob("llama3-70b", 1e12, **options)  # type: ignore[arg-type]
    fm = G.failure_model(job, job_shape(job))
    gpus = np.unique(np.round(np.geomspace(1, 200_000, 4000))).astype(float)
    host_bw = np.full(gpus.size, 55e9)
    factor = G.goodput(fm, np.ones(gpus.size), gpus, host_bw).wall_s
    finite = np.isfinite(factor)
    split = G.goodput(fm, np.ones(gpus.size), gpus, host_bw)
    with np.errstate(invalid="ignore"):  # inf - inf where the job never finishes
        rework = split.wall_s - 1 - split.checkpoint_s - split.restart_s
    assert np.all(rework[finite] >= -1e-9 * split.wall_s[finite])  # the split is exact
    assert np.all(np.diff(factor[finite]) >= -1e-12 * factor[finite][1:])
    assert np.all(factor[finite] >= 1)
    # proportional to the failure-free time
    twice = G.goodput(fm, np.full(gpus.size, 2.0), gpus, host_bw).wall_s
    assert np.allclose(twice[finite], 2 * factor[finite], rtol=1e-12)


FAILING = {"mtbf_hours": 20.0, "checkpoint_total_gb_s": 1.0}


def test_solve_chooses_the_smaller_cluster_when_failures_make_the_larger_one_slower() -> None:
    # Llama 3 8B, 100B tokens, at most 128 H100 at tp 2: with one interruption per 20
    # accelerator-hours and 1 GB/s of storage, the fastest plan in wall-clock time uses fewer
    # accelerators than the cap; failure-free, it uses them all. The oracle agrees.
    job = solver.TrainingJob("llama3-8b", 100e9, global_batch=512, **FAILING)
    acc = catalog.accelerator(H100)
    limits = solver.Limits(accelerators=(H100,), max_gpus=128,
                           fixed={"tp": 2, "pp": 1, "cp": 1, "vp": 1, "zero_stage": 1})
    plan = solver.solve(job, limits, objective="time")
    free = solver.solve(dataclasses.replace(job, failures=False), limits, objective="time")
    assert plan.estimate is not None and free.estimate is not None
    assert free.estimate.layout.gpus == 128
    assert plan.estimate.layout.gpus < 128
    at_cap = solver.evaluate(job, free.estimate.layout)
    assert at_cap.wall_clock_days > plan.estimate.wall_clock_days
    oracle = brute_force(job, [acc], limits, "time")
    assert oracle.value == pytest.approx(plan.estimate.wall_clock_days * 86400, rel=1e-9)


def test_deadline_is_judged_on_wall_clock_days() -> None:
    job = solver.TrainingJob("llama3-8b", 100e9, global_batch=512, **FAILING)
    acc = catalog.accelerator(H100)
    limits = solver.Limits(accelerators=(H100,), max_gpus=128, deadline_days=8.0,
                           fixed={"tp": 2, "pp": 1, "cp": 1, "vp": 1, "zero_stage": 1})
    plan = solver.solve(job, limits, objective="gpus")
    assert plan.estimate is not None
    assert plan.estimate.wall_clock_days <= 8.0 < plan.estimate.wall_clock_days * 1.5
    oracle = brute_force(job, [acc], limits, "gpus")
    assert oracle.value == plan.estimate.layout.gpus
    # failure-free, fewer accelerators meet the same deadline
    free = solver.solve(dataclasses.replace(job, failures=False), limits, objective="gpus")
    assert free.estimate is not None and free.estimate.layout.gpus < plan.estimate.layout.gpus


def test_cli_failure_options(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["evaluate", "--model", "llama3-8b", "--tokens", "100e9", "--global-batch", "512",
            "--gpu", H100, "--tp", "1", "--pp", "1", "--dp", "64", "--zero", "1"]
    assert run([*base, "--no-failures"]) == 0
    out = capsys.readouterr().out
    assert "failures off" in out
    assert run([*base, "--mtbf-hours", "1000", "--failure-param", "restart_min=5"]) == 0
    out = capsys.readouterr().out
    assert "goodput" in out and "mtbf_hours = 1000" in out
    assert run([*base, "--failure-param", "restart=5"]) == 2
    assert "--failure-param: expected a key among" in capsys.readouterr().err
    assert run([*base, "--mtbf-hours", "0"]) == 2
    assert "--mtbf-hours" in capsys.readouterr().err
