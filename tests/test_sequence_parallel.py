"""Tensor parallelism without sequence parallelism (``TrainingJob.sequence_parallel = False``):
the norms, dropouts and the linear layers' inputs are whole on every tensor-parallel rank.

Hand arithmetic from Korthikanti et al. 2022 (arXiv:2205.05198), Table 2: a GPT layer with
dropout and no stored scores keeps ``34 sbh/t`` bytes with sequence parallelism and
``sbh(10 + 24/t)`` without it.
"""

from __future__ import annotations

import numpy as np
import pytest

import solver
from solver.launchers import shape_refusals
from solver.stepmodel.arrays import LayoutArrays
from solver.stepmodel.compute import elementwise_bytes
from solver.stepmodel.shape import job_shape

H = 12288  # GPT-3 175B


def gpt3_job(sequence_parallel: bool) -> solver.TrainingJob:
    return solver.TrainingJob(model=solver.model("gpt3-175b"), tokens=300e9, seq_len=2048,
                              global_batch=1536, dropout=0.1,
                              sequence_parallel=sequence_parallel)


LAYOUT = solver.Layout(accelerator="a100-sxm4-80gb", tp=8, pp=8, dp=16, micro_batch=1,
                       recompute="selective")


def test_activations_follow_korthikanti_table_2() -> None:
    on = solver.evaluate(gpt3_job(True), LAYOUT).memory_breakdown_gib["activations"]
    off = solver.evaluate(gpt3_job(False), LAYOUT).memory_breakdown_gib["activations"]
    # 12 layers per stage, 8 micro-batches in flight on the first 1F1B rank, 2048 tokens:
    # with sequence parallelism 34/8 = 4.25 sbh per layer, without 10 + 24/8 = 13 sbh.
    per_layer_sbh = 2048 * H
    assert on == pytest.approx(12 * 8 * 4.25 * per_layer_sbh / 2**30, rel=1e-9)
    assert off - on == pytest.approx(12 * 8 * (13 - 4.25) * per_layer_sbh / 2**30, rel=1e-9)


def test_memory_bound_work_is_whole_on_every_rank() -> None:
    # A GPT layer's activations in BF16 are 34h per token, of which 10h are the parts only
    # sequence parallelism splits; without it each of the 8 ranks does all of those 10h.
    x = LayoutArrays.from_layouts([LAYOUT], [12], {"a100-sxm4-80gb": 0})
    assert elementwise_bytes(job_shape(gpt3_job(True)), x, moe=False) == 34 * H
    assert np.all(elementwise_bytes(job_shape(gpt3_job(False)), x, moe=False)
                  == 34 * H + 10 * H * 7)
    slower = solver.evaluate(gpt3_job(False), LAYOUT)
    assert slower.step_time_s > solver.evaluate(gpt3_job(True), LAYOUT).step_time_s


def test_without_tensor_parallelism_nothing_changes() -> None:
    layout = solver.Layout(accelerator="a100-sxm4-80gb", tp=1, pp=8, dp=128, micro_batch=1,
                           recompute="full")
    a, b = (solver.evaluate(gpt3_job(sp), layout) for sp in (True, False))
    assert a.step_time_s == b.step_time_s
    assert a.memory_gib_per_gpu == b.memory_gib_per_gpu


def test_launchers() -> None:
    from solver.export import export

    est = solver.evaluate(gpt3_job(False), LAYOUT)
    assert "--sequence-parallel" not in export(est, "megatron", job=gpt3_job(False))
    assert "--sequence-parallel" in export(solver.evaluate(gpt3_job(True), LAYOUT), "megatron",
                                           job=gpt3_job(True))
    job = solver.TrainingJob(model=solver.model("llama3-8b"), tokens=1e12, seq_len=8192,
                             global_batch=128, sequence_parallel=False)
    rules = shape_refusals("torchtitan", job, tp=[1, 2], pp=1, vp=1, cp=1, ep=1, zero=1,
                           schedule=0, split=0)
    refused = [r for name, _, r in rules if name == "sequence_parallel"]
    assert refused and refused[0].tolist() == [False, True]
