"""The layout search (``solver.search``) tested like an optimiser, and ``gpuplan solve``.

- On random small questions ``solve`` is compared with the brute-force oracle
  (``solver.search.oracle.brute_force``, which also keeps the dominated ZeRO-0 and selective
  shapes, every dp and every micro-batch count): equal objective values when both find a plan,
  and a proven ``infeasible`` exactly when the oracle finds nothing. Ties exist, so the layouts
  themselves are not compared.
- Every returned plan is re-checked here, independently of the solver's own judge: memory,
  GPU count, deadline, budget, fixed fields, batch arithmetic, and ``solver.evaluate`` of the
  plan's layout reproduces its estimate exactly.
- The command line: published reference points, explanations of infeasible questions,
  ``--top``, determinism, and one-line errors with exit code 2 for bad input.

Unit tests use one CP-SAT worker and seed 0.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import solver
from solver.cli import run
from solver.layout_options import all_recompute_masks, recompute_name
from solver.search.oracle import brute_force
from solver.search.solve import solve
from solver.search.space import recompute_masks
from solver.stepmodel.arrays import HardwareTable, LayoutArrays
from solver.stepmodel.evaluate import evaluate_arrays
from solver.stepmodel.shape import job_shape

#: Accelerators of the property test: two NVIDIA parts, one without a price (mi300x) and one
#: without a TDP (tpu-v5e), whose scale-up domain (256) allows tp up to 64.
ACCELERATORS = ("a100-sxm4-40gb", "h100-sxm5-80gb", "mi300x", "tpu-v5e")
OBJECTIVES = ("time", "cost", "gpus", "energy")
REL = 1e-9


@dataclasses.dataclass(frozen=True)
class Question:
    job: solver.TrainingJob
    limits: solver.Limits
    objective: str
    top: int = 1


@functools.cache
def _has(name: str, field: str) -> bool:
    return getattr(solver.accelerator(name), field) is not None


def objective_value(est: solver.Estimate, objective: str) -> float:
    """The solver's objective in the oracle's units (seconds, USD, accelerators, MWh)."""
    # time: wall-clock (failures counted), what the search minimises and deadlines judge
    return {"time": est.wall_clock_days * 86400.0, "cost": est.cost_usd,
            "gpus": float(est.layout.gpus), "energy": est.energy_mwh}[objective]


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL, abs_tol=0.0)


def with_batch(job: solver.TrainingJob, global_batch: int) -> solver.TrainingJob:
    return dataclasses.replace(job, global_batch=global_batch)


def check_estimate(est: solver.Estimate, job: solver.TrainingJob, limits: solver.Limits) -> None:
    """Re-check one returned layout against every limit, without the solver's code."""
    x = est.layout
    acc = solver.accelerator(x.accelerator)
    if limits.accelerators:
        assert x.accelerator in {solver.accelerator(a).name for a in limits.accelerators}
    assert est.fits and est.violations == ()
    assert est.memory_capacity_gib == acc.memory_gib
    assert est.memory_gib_per_gpu <= est.memory_capacity_gib
    assert x.gpus == x.tp * x.pp * x.cp * x.dp
    assert (x.dp * x.cp) % x.ep == 0
    assert est.global_batch == x.dp * x.micro_batch * est.num_microbatches
    assert est.num_microbatches >= 1
    if job.global_batch:
        assert est.global_batch == job.global_batch
    else:
        low, high = limits.tokens_per_step
        assert low <= est.global_batch * job.seq_len <= high
    if limits.gpus is not None:
        assert x.gpus == limits.gpus
    if limits.max_gpus is not None:
        assert x.gpus <= limits.max_gpus
    if limits.deadline_days is not None:  # judged on wall-clock days
        assert est.training_days <= est.wall_clock_days <= limits.deadline_days
    if limits.budget_usd is not None:
        assert est.cost_usd <= limits.budget_usd
    for key, value in limits.fixed.items():
        assert getattr(x, key) == value, key
    # The plan's estimate is exactly what ``solver.evaluate`` says of its layout.
    again = solver.evaluate(with_batch(job, est.global_batch), x)
    assert again.to_dict() == est.to_dict()


def check_plan(plan: solver.Plan, job: solver.TrainingJob, limits: solver.Limits) -> None:
    assert plan.estimate is not None
    for est in (plan.estimate, *plan.alternatives):
        check_estimate(est, job, limits)


# --- Random small questions against the brute-force oracle ---------------------------------

#: One fixed layout field at a time; zero_stage 0 and selective recomputation are the values
#: the solver leaves out as dominated, so fixing them checks that they come back.
FIXED_CHOICES: tuple[tuple[str, Any], ...] = (
    ("dp", 2), ("tp", 2), ("pp", 2), ("vp", 2), ("vp", 3), ("cp", 2), ("micro_batch", 2),
    ("zero_stage", 0), ("zero_stage", 3), ("recompute", "selective"), ("recompute", "full"),
    ("recompute", "layernorm+mlp"), ("schedule", "zero-bubble"), ("schedule", "dualpipe"),
    ("pipeline_split", "both"), ("pipeline_split", "embedding"))


@st.composite
def questions(draw: st.DrawFn) -> Question:
    seq = draw(st.sampled_from([512, 1024, 2048]))
    moe = draw(st.integers(0, 3)) == 0
    experts, top_k = (draw(st.sampled_from([4, 8])), draw(st.integers(1, 2))) if moe else (1, 1)
    model = solver.ModelSpec(
        name="random", layers=draw(st.integers(2, 8)),
        hidden=draw(st.sampled_from([256, 512, 1024])), heads=draw(st.sampled_from([4, 8, 16])),
        vocab=draw(st.integers(1000, 32000)), seq_len=seq, experts=experts, top_k=top_k,
        capacity_factor=draw(st.sampled_from([0.0, 1.0, 1.25])) if moe else 1.0)
    global_batch = draw(st.sampled_from([0, 0, 16, 32, 48, 64]))
    tokens = 10.0 ** draw(st.floats(8.0, 10.0))
    # The training software too: every fact of the job changes what the search must weigh.
    software = {"flash_attention": draw(st.booleans()),
                "tp_comm_overlap": draw(st.booleans()),
                "grad_reduce_overlap": draw(st.booleans()),
                "zero3_impl": draw(st.sampled_from(["fsdp", "deepspeed"])),
                "grad_dtype": draw(st.sampled_from(["fp32", "bf16"])),
                "ep_comm_overlap": draw(st.booleans()),
                "moe_dispatcher": draw(st.sampled_from(["alltoall", "deepep"])),
                "fp8_dispatch": draw(st.booleans()),
                "moe_imbalance": draw(st.sampled_from([1.0, 1.3])),
                "moments_dtype": draw(st.sampled_from(["fp32", "bf16"]))}
    job = solver.TrainingJob(model=model, tokens=tokens, global_batch=global_batch, seq_len=seq,
                             **software)  # type: ignore[arg-type]

    objective = draw(st.sampled_from(OBJECTIVES))
    with_budget = draw(st.integers(0, 4)) == 0
    pool = [a for a in ACCELERATORS
            if (_has(a, "price_usd_per_hour") or (objective != "cost" and not with_budget))
            and (_has(a, "tdp_w") or objective != "energy")]
    accelerators = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=2, unique=True))
    count = draw(st.integers(1, 32))
    exact = draw(st.integers(0, 3)) == 0
    deadline = draw(st.none() | st.floats(-3.0, 1.0).map(lambda e: 10.0 ** e))
    budget = 10.0 ** draw(st.floats(0.0, 4.0)) if with_budget else None
    fixed_choices = FIXED_CHOICES + ((("ep", 2),) if moe else ())
    fixed = dict([draw(st.sampled_from(fixed_choices))]) if draw(st.integers(0, 2)) == 0 else {}
    limits = solver.Limits(
        accelerators=tuple(accelerators), gpus=count if exact else None,
        max_gpus=None if exact else count, deadline_days=deadline, budget_usd=budget,
        fixed=fixed, tokens_per_step=(seq * 8.0, seq * 64.0))
    return Question(job, limits, objective, draw(st.sampled_from([1, 1, 2, 3])))


def test_solve_agrees_with_the_brute_force_oracle() -> None:
    ran: list[str] = []

    @settings(max_examples=60, deadline=None)
    @given(q=questions())
    def check(q: Question) -> None:
        plan = solve(q.job, q.limits, objective=q.objective, workers=1, seed=0, top=q.top)
        accs = [solver.accelerator(a) for a in q.limits.accelerators]
        oracle = brute_force(q.job, accs, q.limits, q.objective, top=q.top)
        if oracle.feasible:
            assert plan.status == "optimal", plan.explanation
            assert plan.estimate is not None
            assert close(objective_value(plan.estimate, q.objective), oracle.value)
            check_plan(plan, q.job, q.limits)
            # --top: the best layouts of distinct shapes (accelerator, tp, pp, cp, ep), in
            # order of the objective: the oracle's best of each shape, the K best of them
            ranked = [plan.estimate, *plan.alternatives]
            shapes = {(e.layout.accelerator, e.layout.tp, e.layout.pp, e.layout.cp, e.layout.ep)
                      for e in ranked}
            assert len(shapes) == len(ranked) == len(oracle.top_values)
            values = [objective_value(e, q.objective) for e in ranked]
            assert all(close(v, o) for v, o in zip(values, oracle.top_values, strict=True))
        else:
            assert plan.status == "infeasible", plan.to_dict()
            assert plan.estimate is None and plan.explanation
        ran.append(plan.status)

    check()
    assert len(ran) >= 50
    assert "optimal" in ran


# --- Regressions: bugs the oracle found ---------------------------------------------------

SMALL = solver.ModelSpec(name="small", layers=4, hidden=1024, heads=4, vocab=30843,
                         seq_len=1024)


def test_exact_gpus_keep_the_fixed_global_batch() -> None:
    # 7 accelerators: dp * tp * pp * cp = 7 needs dp = 7, which does not divide 48.
    job = solver.TrainingJob(model=SMALL, tokens=4.1e9, global_batch=48)
    limits = solver.Limits(accelerators=("h100-sxm5-80gb",), gpus=7)
    assert not brute_force(job, [solver.accelerator("h100-sxm5-80gb")], limits, "gpus").feasible
    plan = solve(job, limits, objective="gpus", workers=1, seed=0)
    assert plan.status == "infeasible", plan.to_dict()["layout"]


def test_fixed_dp_is_optimal() -> None:
    model = solver.ModelSpec(name="tiny", layers=2, hidden=256, heads=8, vocab=24438,
                             seq_len=2048)
    job = solver.TrainingJob(model=model, tokens=117976722.0, global_batch=16)
    limits = solver.Limits(accelerators=("h100-sxm5-80gb",), max_gpus=21, fixed={"dp": 2})
    oracle = brute_force(job, [solver.accelerator("h100-sxm5-80gb")], limits, "time")
    plan = solve(job, limits, objective="time", workers=1, seed=0)
    assert plan.estimate is not None
    assert close(objective_value(plan.estimate, "time"), oracle.value)


def test_cost_and_energy_bounds_raise_no_float_warning() -> None:
    # An energy objective whose only layouts break the limits once overflowed a float in the
    # cost/energy floor (RuntimeWarning, an error in this suite).
    model = solver.ModelSpec(name="moe", layers=2, hidden=256, heads=4, vocab=1000,
                             seq_len=512, experts=4, top_k=1)
    job = solver.TrainingJob(model=model, tokens=1e8)
    limits = solver.Limits(accelerators=("a100-sxm4-40gb",), gpus=1, fixed={"dp": 2},
                           tokens_per_step=(4096, 131072))
    for objective in ("energy", "cost"):
        plan = solve(job, limits, objective=objective, workers=1, seed=0)
        assert plan.status == "infeasible"
        assert any(line.startswith("fixed") for line in plan.explanation)


# --- Library: a plan is what evaluate says, and the answer is deterministic ----------------


def test_plan_estimate_is_what_evaluate_says() -> None:
    job = solver.TrainingJob(model=SMALL, tokens=2e9)  # the solver chooses the global batch
    limits = solver.Limits(accelerators=("a100-sxm4-40gb", "h100-sxm5-80gb"), max_gpus=16,
                           tokens_per_step=(1024 * 16, 1024 * 128))
    plan = solve(job, limits, objective="cost", workers=1, seed=0, top=2)
    assert plan.status == "optimal"
    assert plan.estimate is not None and len(plan.alternatives) == 1
    check_plan(plan, job, limits)


def _without_time(plan: solver.Plan) -> dict[str, Any]:
    """The answer, without how long it took or the options it was asked with (``question``
    records the worker count, which must not change the answer)."""
    data = plan.to_dict()
    data.pop("solve_time_s")
    data["question"]["solve"].pop("workers")
    return data


def test_same_answer_every_run_and_any_worker_count() -> None:
    # Many ties (ZeRO 1/2/3 and other shapes with the same time on one node): the tie-breaks
    # and the canonical layout order must pick the same plans every time.
    job = solver.TrainingJob(model=solver.model("llama3-8b"), tokens=1e12, global_batch=512)
    limits = solver.Limits(accelerators=("a100-sxm4-80gb", "h100-sxm5-80gb"), max_gpus=64,
                           deadline_days=200)
    answers = [_without_time(solve(job, limits, objective="cost", workers=w, seed=0, top=3))
               for w in (1, 1, 2)]
    assert answers[0]["status"] == "optimal"
    assert len(answers[0]["alternatives"]) == 2
    assert answers[0] == answers[1] == answers[2]


# --- The command line ---------------------------------------------------------------------

GPT3 = ["--model", "gpt3-175b", "--tokens", "300e9", "--seq-len", "2048",
        "--global-batch", "1536"]
UNIT = ["--workers", "1", "--seed", "0"]


def run_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, dict[str, Any]]:
    code = run(argv)
    out, err = capsys.readouterr()
    assert err == ""
    return code, json.loads(out)


def evaluate_argv(base: list[str], layout: dict[str, Any]) -> list[str]:
    return ["evaluate", *base, "--gpu", layout["accelerator"],
            "--tp", str(layout["tp"]), "--pp", str(layout["pp"]), "--dp", str(layout["dp"]),
            "--cp", str(layout["cp"]), "--ep", str(layout["ep"]), "--vp", str(layout["vp"]),
            "--micro-batch", str(layout["micro_batch"]), "--zero", str(layout["zero_stage"]),
            "--recompute", layout["recompute"], "--json"]


def test_cli_gpt3_beats_megatrons_layout_and_evaluate_reproduces_it(
        capsys: pytest.CaptureFixture[str]) -> None:
    megatron = {"accelerator": "a100-sxm4-80gb", "tp": 8, "pp": 8, "dp": 16, "cp": 1, "ep": 1,
                "vp": 1, "micro_batch": 1, "zero_stage": 0, "recompute": "full"}
    code, reference = run_json(capsys, evaluate_argv(GPT3, megatron))
    assert code == 0 and reference["fits"]
    assert reference["layout"]["gpus"] == 1024

    code, plan = run_json(capsys, ["solve", *GPT3, "--gpu", "a100-sxm4-80gb",
                                   "--max-gpus", "1024", "--objective", "time", *UNIT, "--json"])
    assert code == 0
    assert plan["status"] == "optimal" and plan["objective"] == "time"
    layout = plan["layout"]
    assert layout["gpus"] <= 1024 and layout["global_batch"] == 1536
    assert plan["estimate"]["training_days"] <= reference["estimate"]["training_days"]

    base = [*GPT3[:-1], str(layout["global_batch"])]
    code, again = run_json(capsys, evaluate_argv(base, layout))
    assert code == 0 and again["fits"]
    assert again["layout"] == layout
    assert again["estimate"] == plan["estimate"]


def test_cli_gpt3_on_eight_40gb_gpus_is_infeasible_for_memory(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, plan = run_json(capsys, ["solve", "--model", "gpt3-175b", "--tokens", "300e9",
                                   "--global-batch", "1536", "--gpu", "a100-sxm4-40gb",
                                   "--gpus", "8", *UNIT, "--json"])
    assert code == 1
    assert plan["status"] == "infeasible" and plan["layout"] is None
    assert any(line.startswith("memory") for line in plan["explanation"])


def test_cli_fixed_fields_and_exact_count_are_kept(capsys: pytest.CaptureFixture[str]) -> None:
    code, plan = run_json(capsys, ["solve", "--model", "llama3-70b", "--tokens", "15T",
                                   "--tp", "8", "--pp", "4", "--gpus", "4096", *UNIT, "--json"])
    assert code == 0 and plan["status"] == "optimal"
    layout = plan["layout"]
    assert (layout["tp"], layout["pp"], layout["gpus"]) == (8, 4, 4096)
    assert layout["gpus"] == layout["tp"] * layout["pp"] * layout["cp"] * layout["dp"]


def test_cli_unreachable_deadline_names_the_fastest_days(
        capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--model", "llama3-8b", "--tokens", "1T", "--seq-len", "2048",
            "--global-batch", "256", "--gpu", "h100-sxm5-80gb", "--max-gpus", "64"]
    code, fastest = run_json(capsys, ["solve", *argv, *UNIT, "--json"])
    assert code == 0
    days = fastest["estimate"]["training_days"]
    assert days > 1

    code, plan = run_json(capsys, ["solve", *argv, "--deadline-days", "1", *UNIT, "--json"])
    assert code == 1 and plan["status"] == "infeasible"
    lines = [line for line in plan["explanation"] if line.startswith("deadline")]
    assert len(lines) == 1
    # it names the fastest plan within the other limits: the one solve found without it
    said = re.search(r"takes ([0-9,]+\.[0-9]) days", lines[0])
    assert said is not None, lines[0]
    assert abs(float(said.group(1).replace(",", "")) - days) <= 0.05 + 1e-6


def test_cli_top_three_distinct_layouts_in_objective_order(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, plan = run_json(capsys, ["solve", "--model", "llama3-8b", "--tokens", "1T",
                                   "--gpu", "h100-sxm5-80gb", "--gpu", "a100-sxm4-80gb",
                                   "--max-gpus", "64", "--deadline-days", "365",
                                   "--objective", "cost", "--top", "3", *UNIT, "--json"])
    assert code == 0 and plan["status"] == "optimal"
    entries = [plan, *plan["alternatives"]]
    assert len(entries) == 3
    # genuinely different: another accelerator or tp/pp/cp/ep, not one data-parallel rank apart
    shapes = {tuple(e["layout"][k] for k in ("accelerator", "tp", "pp", "cp", "ep"))
              for e in entries}
    assert len(shapes) == 3
    costs = [e["estimate"]["cost_usd"] for e in entries]
    assert costs == sorted(costs)
    assert all(e["layout"]["gpus"] <= 64 for e in entries)


@pytest.mark.parametrize(("options", "names"), [
    (["--objective", "fast"], "--objective"),
    (["--gpus", "0"], "--gpus"),
    (["--gpus", "64", "--max-gpus", "32"], "--gpus"),
    (["--gpu", "nosuch"], "--gpu"),
    (["--time-limit", "0"], "--time-limit-s"),
    (["--top", "0"], "--top"),
])
def test_cli_bad_input_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str],
                                               options: list[str], names: str) -> None:
    code = run(["solve", "--model", "llama3-8b", "--tokens", "1T", "--gpu", "h100-sxm5-80gb",
                *options, *UNIT, "--json"])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.endswith("\n")
    assert err.startswith("gpuplan: error: ")
    assert names in err
    assert "Traceback" not in err


def test_the_judge_keeps_every_fact_of_the_job() -> None:
    # A job field the judge did not copy (grad_reduce_overlap) once made it re-evaluate a
    # different job and call its own plan broken.
    job = solver.TrainingJob(model=solver.model("llama3-8b"), tokens=1e11,
                             grad_reduce_overlap=False)
    plan = solve(job, solver.Limits(accelerators=("h100-sxm5-80gb",), max_gpus=64),
                 objective="time", workers=1, seed=0)
    assert plan.status == "optimal"
    assert plan.estimate is not None
    again = solver.evaluate(dataclasses.replace(job, global_batch=plan.estimate.global_batch),
                            plan.estimate.layout)
    assert again.to_dict() == plan.estimate.to_dict()


@pytest.mark.parametrize("options", [
    {"workers": 0}, {"workers": "2"}, {"seed": -1}, {"time_limit_s": 0.0},
    {"time_limit_s": float("inf")}, {"top": 0}, {"objective": "fast"},
])
def test_library_options_are_checked(options: dict[str, Any]) -> None:
    job = solver.TrainingJob(model=solver.model("llama3-8b"), tokens=1e9)
    with pytest.raises(solver.SpecError) as err:
        solve(job, solver.Limits(accelerators=("h100-sxm5-80gb",), max_gpus=8), **options)
    assert str(err.value).startswith(next(iter(options)))  # names the keyword


def test_library_job_and_limits_types_are_checked() -> None:
    with pytest.raises(solver.SpecError, match="job"):
        solve("llama3-8b", solver.Limits())  # type: ignore[arg-type]
    job = solver.TrainingJob(model=solver.model("llama3-8b"), tokens=1e9)
    with pytest.raises(solver.SpecError, match="limits"):
        solve(job, {"max_gpus": 8})  # type: ignore[arg-type]


# --- The recomputation masks the search leaves out are dominated --------------------------


@settings(max_examples=40, deadline=None)
@given(q=questions(), dp=st.integers(1, 8), nmb=st.integers(1, 8), pp=st.sampled_from([1, 2]))
def test_every_mask_left_out_is_no_better_than_one_kept(q: Question, dp: int, nmb: int,
                                                         pp: int) -> None:
    """``space.recompute_masks`` keeps a mask unless another is no worse part by part; then,
    on any layout, some kept mask is as fast and needs as little memory as each left out
    (every mask evaluated here, the kept ones and the others)."""
    job = q.job
    m = job.model
    slots = m.layers
    pp = pp if slots % pp == 0 else 1
    kept = recompute_masks(job_shape(job))
    every = all_recompute_masks()
    acc = solver.accelerator(q.limits.accelerators[0])
    hw = HardwareTable.build([acc], job.precision)
    n = len(every)
    x = LayoutArrays.from_columns(accel=0, tp=1, pp=pp, dp=dp, cp=1, ep=1, vp=1, mb=1,
                                  nmb=nmb, zero=1, recompute=every, schedule=0, split=0)
    r = evaluate_arrays(job, x, hw)
    time_s = dict(zip(every, r.step_s.tolist(), strict=True))
    mem = dict(zip(every, r.memory.total.tolist(), strict=True))
    assert n == len(time_s)
    for mask in every:
        if mask in kept:
            continue
        assert any(time_s[k] <= time_s[mask] * (1 + 1e-12) and mem[k] <= mem[mask] * (1 + 1e-12)
                   for k in kept), recompute_name(mask)
