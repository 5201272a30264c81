"""The search's shortcuts through the step model give the step model's own numbers.

- ``search.blocks.evaluate`` (blocks of ``BLOCK_ROWS``, memory handed in) equals one
  ``evaluate_arrays`` call, field by field and bit for bit;
- ``search.blocks.memory_check`` is ``memory`` with ``StepResult.fits_memory``'s rule;
- ``stepmodel.timing.slowest_rank`` times ``nmb`` is what ``step_time`` reports per part, and
  it does not read the ZeRO stage (the bounds share one probe among shapes differing in it);
- memory depends on the accelerator only through its software figures (``memory.Runtime``;
  the bounds probe once per group of equal figures), and without the hardware table it is
  at least what any accelerator needs (the bounds' upper bound);
- a question solved with the rows memory-first and the bounds' probes gives the plan of the
  same question solved on a tiny block size (every shortcut taken many times over).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import solver
from solver.layout_options import DUALPIPE, FULL_BIT, MODULE_BIT, ONE_F_ONE_B, ZERO_BUBBLE
from solver.search import blocks, bounds
from solver.search.table import Question
from solver.stepmodel.arrays import HardwareTable, LayoutArrays
from solver.stepmodel.calibration import DEFAULT_CALIBRATION
from solver.stepmodel.evaluate import evaluate_arrays
from solver.stepmodel.memory import memory
from solver.stepmodel.shape import job_shape
from solver.stepmodel.timing import slowest_rank, step_time

ACCELERATORS = ("a100-sxm4-40gb", "h100-sxm5-80gb", "tpu-v5p", "b200")


def question() -> Question:
    job = solver.TrainingJob(model=solver.model("mixtral-8x7b"), tokens=1e12,
                             global_batch=1024)
    hw = HardwareTable.build([solver.accelerator(n) for n in ACCELERATORS], job.precision)
    return Question(job, job_shape(job), solver.Limits(), hw, DEFAULT_CALIBRATION, False, (0,))


def layouts(n: int, seed: int = 0) -> LayoutArrays:
    rng = np.random.default_rng(seed)
    pp = rng.choice([1, 2, 4, 8], n)
    dp = rng.choice([1, 2, 4, 8, 16, 64], n)
    mb = rng.choice([1, 2, 4], n)
    return LayoutArrays.from_columns(
        accel=rng.integers(0, len(ACCELERATORS), n), tp=rng.choice([1, 2, 4, 8], n), pp=pp,
        dp=dp, cp=rng.choice([1, 2], n), ep=rng.choice([1, 2], n), vp=1, mb=mb,
        nmb=np.maximum(1, 1024 // (dp * mb)), zero=rng.integers(0, 4, n),
        recompute=rng.choice([0, FULL_BIT, MODULE_BIT["core_attn"], MODULE_BIT["moe_act"]], n),
        schedule=np.where(pp > 1, rng.choice([ONE_F_ONE_B, ZERO_BUBBLE, DUALPIPE], n),
                          ONE_F_ONE_B), split=0)


def arrays(obj: object, prefix: str = "") -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            out.update(arrays(value, f"{prefix}{f.name}."))
        elif isinstance(value, np.ndarray):
            out[prefix + f.name] = value
    return out


def test_blocks_evaluate_bit_for_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    q, x = question(), layouts(2_500)
    monkeypatch.setattr(blocks, "BLOCK_ROWS", 700)
    whole = arrays(evaluate_arrays(q.job, x, q.hw, q.calibration, q.js))
    mem = blocks.memory_check(q, x)
    for result in (blocks.evaluate(q, x), blocks.evaluate(q, x, mem)):
        parts = arrays(result)
        assert parts.keys() == whole.keys()
        for name, value in whole.items():
            np.testing.assert_array_equal(parts[name], value, err_msg=name)


def test_memory_check_is_memory_and_its_fit() -> None:
    q, x = question(), layouts(1_000, seed=1)
    result = evaluate_arrays(q.job, x, q.hw, q.calibration, q.js)
    mem = blocks.memory_check(q, x)
    np.testing.assert_array_equal(mem.total, memory(q.js, x, hw=q.hw).total)
    np.testing.assert_array_equal(mem.fits, result.fits_memory)
    nmb = np.maximum(1, x.nmb // 2)
    np.testing.assert_array_equal(blocks.memory_check(q, x, nmb).total,
                                  memory(q.js, dataclasses.replace(x, nmb=nmb), hw=q.hw).total)


def test_slowest_rank_is_what_step_time_reports_per_micro_batch() -> None:
    q, x = question(), layouts(1_000, seed=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = step_time(q.js, x, q.hw, q.calibration)
        rank = slowest_rank(q.js, x, q.hw, q.calibration)
    for part, name in (("compute", "compute"), ("memory_bound", "membound"), ("tp_comm", "tp"),
                       ("cp_comm", "cp"), ("ep_comm", "ep"), ("pp_comm", "pp"),
                       ("offload", "offload")):
        np.testing.assert_array_equal(getattr(t, part), x.nmb * getattr(rank, name),
                                      err_msg=part)


def test_slowest_rank_does_not_depend_on_the_zero_stage() -> None:
    q, x = question(), layouts(1_000, seed=3)
    ranks = []
    for stage in range(4):
        at_stage = dataclasses.replace(x, zero=np.full(len(x), stage))
        with np.errstate(invalid="ignore", divide="ignore"):
            ranks.append(arrays(slowest_rank(q.js, at_stage, q.hw, q.calibration)))
    for other in ranks[1:]:
        for name, value in ranks[0].items():
            np.testing.assert_array_equal(other[name], value, err_msg=name)


@pytest.mark.parametrize("precision", ["bf16", "fp8"])
def test_memory_reads_the_accelerator_only_through_its_software(precision: str) -> None:
    job = solver.TrainingJob(model=solver.model("mixtral-8x7b"), tokens=1e12,
                             global_batch=1024, precision=precision)
    accs = list(solver.catalog.accelerators().values())
    hw = HardwareTable.build(accs, job.precision)
    q = Question(job, job_shape(job), solver.Limits(), hw, DEFAULT_CALIBRATION, False, (0,))
    x = layouts(500, seed=4)
    most = memory(q.js, x).total
    groups = bounds._software_groups(q, len(accs))
    assert sorted(np.concatenate(groups).tolist()) == list(range(len(accs)))
    for group in groups:
        on = [arrays(memory(q.js, dataclasses.replace(x, accel=np.full(len(x), a)), hw=hw))
              for a in group]
        for other in on[1:]:
            for name, value in on[0].items():
                np.testing.assert_array_equal(other[name], value, err_msg=name)
        assert np.all(on[0]["weights"] + on[0]["gradients"] + on[0]["optimizer"]
                      + on[0]["activations"] + on[0]["buffers"] + on[0]["reserve"]
                      <= most * (1 + 1e-12))


def test_tiny_blocks_give_the_same_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    job = solver.TrainingJob(model=solver.model("llama3-8b"), tokens=1e12)
    limits = solver.Limits(accelerators=("h100-sxm5-80gb", "a100-sxm4-40gb"), max_gpus=64)
    plan = solver.solve(job, limits, objective="cost")
    monkeypatch.setattr(blocks, "BLOCK_ROWS", 97)
    again = solver.solve(job, limits, objective="cost")
    assert plan.status == again.status == "optimal"
    assert plan.estimate is not None and again.estimate is not None
    assert again.estimate.layout == plan.estimate.layout
    assert again.estimate.cost_usd == plan.estimate.cost_usd
