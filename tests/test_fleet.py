"""``gpuplan fleet``: the schedule against a brute-force oracle, the judge, the file format,
the example fleet and an infeasible fleet's explanation."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import random
from functools import cache
from pathlib import Path

import pytest

from solver import catalog
from solver.cli import run
from solver.errors import SpecError
from solver.fleet import check, model
from solver.fleet.candidates import Candidate, front
from solver.fleet.result import FleetPlan, Rental, ScheduledJob
from solver.fleet.spec import FleetJob, FleetSpec, Options, Pool, from_mapping
from solver.specs import Limits, TrainingJob

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fleets" / "three-runs.toml"
TYPES = ("h100-sxm5-80gb", "a100-sxm4-80gb")


@cache
def tiny_job() -> TrainingJob:
    """Any job: the synthetic instances give their candidates directly."""
    return TrainingJob(model=catalog.model("llama3-8b"), tokens=1e9)


# ------------------------------------------------------------------------- the oracle


def oracle(spec: FleetSpec, cands: dict[str, list[Candidate]]) -> tuple[float, ...] | None:
    """The lexicographically smallest objective over every schedule, by enumeration: each
    job's candidate and whole-day start (resolution 1 day), the rentals of each period the
    least that covers the use above what is owned, paid per whole period."""
    horizon = int(spec.options.horizon_days)
    period = int(spec.options.rent_period_days)
    pools = {p.accelerator: p for p in spec.pools}

    def owned(p: Pool, day: int) -> int:
        until = math.inf if p.until_day is None else p.until_day
        return p.owned if p.from_day <= day < until else 0

    choices = []
    for job in spec.jobs:
        mine = []
        for c in cands[job.name]:
            dur = math.ceil(c.wall_clock_days)
            last = horizon - dur
            if job.hard_deadline and job.deadline_day is not None:
                last = min(last, int(job.deadline_day) - dur)
            mine += [(c, s, s + dur) for s in range(int(job.release_day), last + 1)]
        choices.append(mine)
    best: tuple[float, ...] | None = None
    use = {name: [0] * horizon for name in pools}

    def visit(k: int, picked: list[tuple[Candidate, int, int]]) -> None:
        nonlocal best
        if k == len(choices):
            values = {"tardiness": 0.0, "makespan": 0.0, "rental_cost": 0.0, "energy": 0.0}
            for job, (c, _s, e) in zip(spec.jobs, picked, strict=True):
                if job.deadline_day is not None:
                    values["tardiness"] += job.weight * max(0, e - job.deadline_day)
                values["makespan"] = max(values["makespan"], e)
                values["energy"] += c.energy_mwh
            for name, p in pools.items():
                for first in range(0, horizon, period):
                    days = range(first, min(horizon, first + period))
                    need = max(max(0, use[name][d] - owned(p, d)) for d in days)
                    values["rental_cost"] += need * period * 24 * p.rent_usd_per_gpu_hour
            key = tuple(values[o] for o in spec.options.objective)
            if best is None or key < best:
                best = key
            return
        for c, s, e in choices[k]:
            p = pools[c.accelerator]
            row = use[c.accelerator]
            if any(row[d] + c.gpus > owned(p, d) + p.rent_max for d in range(s, e)):
                continue
            for d in range(s, e):
                row[d] += c.gpus
            visit(k + 1, [*picked, (c, s, e)])
            for d in range(s, e):
                row[d] -= c.gpus

    visit(0, [])
    return best


def random_instance(rng: random.Random) -> tuple[FleetSpec, dict[str, list[Candidate]]]:
    types = TYPES[:rng.choice((1, 2))]
    horizon = rng.randint(5, 8)
    pools = []
    for name in types:
        owned = rng.choice((0, 4, 8))
        rent = rng.choice((0, 4)) if owned else 4
        until = rng.choice((None, horizon - 1))
        pools.append(Pool(accelerator=name, owned=owned, from_day=float(rng.choice((0, 1))),
                          until_day=None if until is None else float(until), rent_max=rent,
                          rent_usd_per_gpu_hour=2.5))
    n = rng.randint(2, 4)
    jobs, cands = [], {}
    for i in range(n):
        name = f"j{i}"
        release = rng.randint(0, 2)
        deadline = rng.choice((None, rng.randint(release + 1, horizon)))
        jobs.append(FleetJob(name=name, job=tiny_job(), release_day=float(release),
                             deadline_day=None if deadline is None else float(deadline),
                             hard_deadline=deadline is not None and rng.random() < 0.3,
                             weight=rng.randint(1, 3)))
        mine = []
        for t in types:
            for _ in range(rng.randint(1, 2 if n > 3 else 3)):
                gpus = rng.choice((2, 4, 8))
                # fractional days: the schedule rounds them up to whole steps
                days = rng.randint(1, 4) - rng.choice((0.0, 0.25, 0.75))
                mine.append(Candidate(t, gpus, days, energy_mwh=rng.randint(1, 9) / 10))
        cands[name] = mine
    objective = tuple(rng.sample(("tardiness", "makespan", "rental_cost", "energy"),
                                 rng.randint(1, 3)))
    options = Options(objective=objective, horizon_days=float(horizon), resolution_days=1.0,
                      rent_period_days=float(rng.choice((2, 3))), time_limit_s=20, workers=2)
    return FleetSpec(pools=tuple(pools), jobs=tuple(jobs), options=options), cands


@pytest.mark.parametrize("seed", range(60))
def test_schedule_agrees_with_brute_force(seed: int) -> None:
    spec, cands = random_instance(random.Random(seed))
    expected = oracle(spec, cands)
    plan = model.schedule(spec, cands)
    if expected is None:
        assert plan.status == "infeasible"
        assert plan.explanation
        return
    assert plan.status == "optimal", plan.explanation
    got = tuple(plan.values[o] for o in spec.options.objective)
    assert got == pytest.approx(expected, abs=1e-6)


def test_oracle_instances_are_not_trivial() -> None:
    """The 60 instances hold infeasible ones, rentals and late jobs (else the comparison
    would prove little)."""
    kinds = set()
    for seed in range(60):
        spec, cands = random_instance(random.Random(seed))
        best = oracle(spec, cands)
        if best is None:
            kinds.add("infeasible")
            continue
        values = dict(zip(spec.options.objective, best, strict=True))
        if values.get("rental_cost", 0) > 0:
            kinds.add("rented")
        if values.get("tardiness", 0) > 0:
            kinds.add("late")
    assert kinds == {"infeasible", "rented", "late"}


# ------------------------------------------------------------------------- rounding, judge


def test_durations_round_up_and_deadlines_down() -> None:
    clock = model.Clock(0.5)
    assert clock.duration(2.01) == 5  # 2.5 days hold a 2.01-day run
    assert clock.duration(2.0) == 4
    assert clock.down(10.3) == 20  # a deadline at day 10.3: the last whole step ends at 10
    assert clock.up(0.2) == 1  # a release at day 0.2: the first step starts at 0.5


def two_job_spec(**job_fields: object) -> FleetSpec:
    pool = Pool(accelerator=TYPES[0], owned=8)
    jobs = tuple(FleetJob(name=n, job=tiny_job(), **job_fields)  # type: ignore[arg-type]
                 for n in ("a", "b"))
    return FleetSpec(pools=(pool,), jobs=jobs, options=Options(horizon_days=20,
                                                               resolution_days=1.0))


def test_capacity_check_catches_an_overlap() -> None:
    spec = two_job_spec()
    c = Candidate(TYPES[0], 8, 3.0)
    ok = FleetPlan("optimal", ("makespan",), {}, {}, jobs=(
        ScheduledJob("a", c, 0.0, 3.0), ScheduledJob("b", c, 3.0, 6.0)))
    check.capacity(spec, ok)
    bad = dataclasses.replace(ok, jobs=(ScheduledJob("a", c, 0.0, 3.0),
                                        ScheduledJob("b", c, 2.0, 5.0)))
    with pytest.raises(RuntimeError, match="day 2: 16 h100-sxm5-80gb in use, 8 owned"):
        check.capacity(spec, bad)
    rented = dataclasses.replace(bad, rented=(Rental(TYPES[0], 0.0, 10.0, 8, 0.0),))
    with pytest.raises(RuntimeError, match="over rent_max"):
        check.capacity(spec, rented)
    short = dataclasses.replace(ok, jobs=(ScheduledJob("a", c, 0.0, 2.5),
                                          ScheduledJob("b", c, 3.0, 6.0)))
    with pytest.raises(RuntimeError, match="less than its wall-clock days"):
        check.capacity(spec, short)


def test_infeasible_fleet_names_the_jobs_and_limits() -> None:
    spec = two_job_spec(deadline_day=5.0, hard_deadline=True)
    cands = {n: [Candidate(TYPES[0], 8, 4.0)] for n in ("a", "b")}
    plan = model.schedule(spec, cands)
    assert plan.status == "infeasible"
    text = "\n".join(plan.explanation)
    assert "jobs a, b" in text
    assert "jobs.a.deadline_day = 5 (hard)" in text
    assert "jobs.b.deadline_day = 5 (hard)" in text
    assert "fleet.h100-sxm5-80gb: owned = 8, rent_max = 0" in text


def test_front_keeps_the_pareto_set_and_thins_it() -> None:
    pts = [Candidate("x", g, d) for g, d in ((1, 10), (2, 6), (2, 5), (3, 7), (4, 3),
                                             (8, 2), (16, 1.5))]
    assert [(c.gpus, c.wall_clock_days) for c in front(pts, 10)] == [
        (1, 10), (2, 5), (4, 3), (8, 2), (16, 1.5)]
    # thinned to 3 evenly in log2(gpus) = 0..4: the ends and 4 (log 2)
    assert [c.gpus for c in front(pts, 3)] == [1, 4, 16]


# ------------------------------------------------------------------------- files and CLI


def test_example_fleet_runs_and_every_schedule_is_rechecked(
        capsys: pytest.CaptureFixture[str]) -> None:
    code = run(["fleet", str(EXAMPLE), "--json", "--time-limit-s", "30"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["status"] == "optimal"
    owned = {"h100-sxm5-80gb": (64, 0, math.inf), "a100-sxm4-80gb": (128, 0, 60),
             "h200-sxm-141gb": (0, 0, math.inf)}
    days = sorted({d for j in out["jobs"] for d in (j["start_day"], j["end_day"])})
    for day in days:  # capacity, recomputed here from the JSON and the file's figures
        for name, (count, first, last) in owned.items():
            used = sum(j["gpus"] for j in out["jobs"] if j["accelerator"] == name
                       and j["start_day"] <= day < j["end_day"])
            rented = sum(r["gpus"] for r in out["rented"] if r["accelerator"] == name
                         and r["from_day"] <= day < r["until_day"])
            assert used <= (count if first <= day < last else 0) + rented
    jobs = {j["name"]: j for j in out["jobs"]}
    assert jobs["main-8b"]["start_day"] >= 5 and jobs["main-8b"]["end_day"] <= 75
    assert jobs["moe"]["accelerator"] in ("h100-sxm5-80gb", "h200-sxm-141gb")
    for j in out["jobs"]:
        # the estimate is the step model's again: its wall-clock days fit in the slot
        assert j["estimate"]["wall_clock_days"] <= j["end_day"] - j["start_day"]
        assert j["layout"]["gpus"] == j["gpus"]
    assert all(r["gpus"] <= 64 for r in out["rented"])


def test_fleet_cli_infeasible_exit_1(tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "tight.toml"
    path.write_text('[fleet.h100-sxm5-80gb]\nowned = 64\n'
                    '[jobs.one]\nmodel = "llama3-8b"\ntokens = "100B"\ndeadline_day = 2.5\n'
                    'hard_deadline = true\n'
                    '[jobs.two]\nmodel = "llama3-8b"\ntokens = "100B"\ndeadline_day = 2.5\n'
                    'hard_deadline = true\n'
                    '[options]\nhorizon_days = 10\n')
    code = run(["fleet", str(path)])
    out = capsys.readouterr().out
    assert code == 1
    assert "Status: infeasible" in out
    assert "jobs one, two" in out


@pytest.mark.parametrize(("text", "message"), [
    ('[fleet.h100-sxm5-80gb]\nownd = 8\n', "[fleet.h100-sxm5-80gb]: unknown key 'ownd'; "
     "did you mean owned"),
    ('[fleet.h100]\nowned = 8\n[jobs.a]\nmodel = "llama3-8b"\ntokens = "1B"\nweigth = 2\n',
     "[jobs.a]: unknown key 'weigth'; did you mean weight"),
    ('[fleet.h100]\nowned = 8\n[jobs.a]\nmodel = "llama3-8b"\ntokens = "1B"\ntp = 3\n',
     "[jobs.a] tp: expected a divisor of heads=32"),
    ('[fleet.h100]\nowned = 8\n[jobs.a]\nmodel = "llama3-8b"\ntokens = "1B"\n'
     '[options]\nobjective = ["latness"]\n', "[options] objective: expected one of"),
    ('[fleet.h100]\nowned = 8\n[jobs.a]\nmodel = "llama3-8b"\n',
     "[jobs.a] tokens: missing"),
    ('[fleet.h100]\nowned = 8\n[jobs.a]\nmodel = "llama3-8b"\ntokens = "1B"\n'
     'accelerators = ["a100"]\n', "jobs.a.accelerators: expected accelerators of the fleet"),
    ('[fleet.h100]\nrent_max = 8\n[jobs.a]\nmodel = "llama3-8b"\ntokens = "1B"\n',
     "fleet.h100-sxm5-80gb.rent_usd_per_gpu_hour: missing"),
])
def test_bad_fleet_files_exit_2_with_one_line(tmp_path: Path, text: str, message: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    code = run(["fleet", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("gpuplan: error: ")
    assert message in err
    assert str(path) in err


def test_from_mapping_reads_the_scenario_job_keys() -> None:
    spec = from_mapping({"fleet": {"h100": {"owned": 8}}, "jobs": {"a": {
        "model": "llama3-8b", "tokens": "2B", "precision": "fp8", "global_batch": 512,
        "tp": 2, "release_day": 3, "deadline_day": 9, "weight": 2}}})
    job = spec.jobs[0]
    assert job.job.precision == "fp8" and job.job.global_batch == 512
    assert job.job.tokens == 2e9
    assert job.limits.fixed == {"tp": 2}
    assert (job.release_day, job.deadline_day, job.weight) == (3.0, 9.0, 2)
    assert spec.pools[0].accelerator == "h100-sxm5-80gb"
    with pytest.raises(SpecError, match="until_day: expected more than from_day"):
        from_mapping({"fleet": {"h100": {"owned": 8, "from_day": 5, "until_day": 5}},
                      "jobs": {"a": {"model": "llama3-8b", "tokens": "2B"}}})


def test_limits_default_allows_every_type() -> None:
    spec = two_job_spec()
    job = dataclasses.replace(spec.jobs[0], limits=Limits(accelerators=(TYPES[0],)))
    assert spec.allowed(job) == (TYPES[0],)
    assert list(itertools.islice(spec.allowed(spec.jobs[1]), 1)) == [TYPES[0]]


def test_step_model_judge_rejects_a_candidate_it_disagrees_with() -> None:
    """A real option of a real job passes the step model's re-check; the same option with
    its days shortened (a schedule that would hold the accelerators too briefly) does not."""
    from solver.fleet.candidates import candidates

    job = TrainingJob(model=catalog.model("llama3-8b"), tokens=1e11)
    options = candidates(job, Limits(), TYPES[0], 16, 4)
    assert options and all(c.gpus <= 16 for c in options)
    c = options[-1]
    spec = FleetSpec(pools=(Pool(TYPES[0], owned=16),),
                     jobs=(FleetJob(name="a", job=job),), options=Options(horizon_days=900))
    slot = math.ceil(c.wall_clock_days)
    plan = FleetPlan("optimal", ("makespan",), {}, {},
                     jobs=(ScheduledJob("a", c, 0.0, float(slot)),))
    judged = check.step_model(spec, plan)
    assert judged.jobs[0].estimate is not None
    assert judged.jobs[0].estimate.wall_clock_days == pytest.approx(c.wall_clock_days)
    wrong = dataclasses.replace(c, wall_clock_days=c.wall_clock_days * 0.9)
    with pytest.raises(RuntimeError, match="the step model gives"):
        check.step_model(spec, dataclasses.replace(
            plan, jobs=(ScheduledJob("a", wrong, 0.0, float(slot)),)))


def test_export_dir_writes_each_jobs_launcher_config(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "two.toml"
    path.write_text('[fleet.h100-sxm5-80gb]\nowned = 16\n'
                    '[jobs.mega]\nmodel = "llama3-8b"\ntokens = "10B"\nlauncher = "megatron"\n'
                    '[jobs.plain]\nmodel = "llama3-8b"\ntokens = "10B"\n'
                    '[options]\nhorizon_days = 60\n')
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code = run(["fleet", str(path), "--json", "--export-dir", str(out_dir)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    jobs = {j["name"]: j for j in json.loads(captured.out)["jobs"]}
    text = (out_dir / "mega.sh").read_text()
    assert f"--tensor-model-parallel-size {jobs['mega']['layout']['tp']}" in text
    assert not (out_dir / "plain.sh").exists()
    assert "plain: no launcher named" in captured.err
    assert run(["fleet", str(path), "--export-dir", str(tmp_path / "missing")]) == 2


def test_a_jobs_model_file_is_found_beside_the_fleet_file(tmp_path: Path) -> None:
    from solver.fleet.spec import load

    folder = tmp_path / "plans"
    folder.mkdir()
    (folder / "tiny.toml").write_text(
        'name = "tiny"\nlayers = 4\nhidden = 512\nheads = 8\nkv_heads = 8\n'
        'ffn_hidden = 2048\nvocab = 32000\nseq_len = 1024\n')
    (folder / "fleet.toml").write_text('[fleet.h100]\nowned = 8\n'
                                       '[jobs.a]\nmodel = "tiny.toml"\ntokens = "1B"\n')
    spec = load(folder / "fleet.toml")
    assert spec.jobs[0].job.model.layers == 4 and spec.jobs[0].job.model.hidden == 512


@pytest.mark.parametrize("seed", range(5))
def test_step_model_candidates_schedule_agrees_with_brute_force(seed: int) -> None:
    """The whole path (options from the step model, then the schedule, then the judge) on
    small fleets of real jobs: the same objective as the oracle over the same options."""
    from solver.fleet import fleet, job_candidates

    rng = random.Random(100 + seed)
    pools = (Pool(TYPES[0], owned=8),
             Pool(TYPES[1], owned=8, until_day=float(rng.randint(3, 6)), rent_max=8,
                  rent_usd_per_gpu_hour=1.5))
    jobs = tuple(FleetJob(name=f"r{i}", release_day=float(rng.randint(0, 2)),
                          job=TrainingJob(model=catalog.model("llama3-8b"),
                                          tokens=rng.choice((1.2e10, 2.4e10))),
                          deadline_day=float(rng.randint(3, 6)), weight=rng.randint(1, 3))
                 for i in range(rng.randint(2, 3)))
    objective = tuple(rng.sample(("tardiness", "makespan", "rental_cost"), 2))
    spec = FleetSpec(pools=pools, jobs=jobs, options=Options(
        objective=objective, horizon_days=8, resolution_days=1.0, rent_period_days=2,
        candidates=3, time_limit_s=20))
    cands = job_candidates(spec)
    assert all(1 <= len(c) <= 6 for c in cands.values())
    expected = oracle(spec, cands)
    plan = fleet(spec)
    if expected is None:
        assert plan.status == "infeasible"
        return
    assert plan.status == "optimal"
    assert tuple(plan.values[o] for o in objective) == pytest.approx(expected, abs=1e-6)
    assert all(j.estimate is not None for j in plan.jobs)  # the step model's re-check ran
