"""The step model end to end: a published Megatron-LM point and physics checks that can fail."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

import solver

DATA = Path(__file__).parent / "data"


def load_megatron_gpt3() -> dict[str, Any]:
    return json.loads((DATA / "megatron_gpt3.json").read_text(encoding="utf-8"))


def gpt3_job(global_batch: int = 1536) -> solver.TrainingJob:
    return solver.TrainingJob(model=solver.model("gpt3-175b"), tokens=300e9,
                              global_batch=global_batch, seq_len=2048)


def tiny_job(global_batch: int = 64) -> solver.TrainingJob:
    spec = solver.ModelSpec(name="tiny", layers=8, hidden=512, heads=8, vocab=32000,
                            seq_len=1024)
    return solver.TrainingJob(model=spec, tokens=1e9, global_batch=global_batch)


# ------------------------------------------------------------------------------ published point


def test_megatron_gpt3_175b_on_1024_a100() -> None:
    ref = load_megatron_gpt3()
    job = solver.TrainingJob(model=solver.model(ref["job"]["model"]),
                             tokens=float(ref["job"]["tokens"]),
                             global_batch=ref["job"]["global_batch"],
                             seq_len=ref["job"]["seq_len"],
                             flash_attention=ref["job"]["flash_attention"],
                             grad_reduce_overlap=ref["job"]["grad_reduce_overlap"])
    est = solver.evaluate(job, solver.Layout(**ref["layout"]))
    expected, tolerance = ref["expected"], ref["tolerance"]
    assert est.layout.gpus == expected["gpus"]
    assert est.fits, est.violations
    assert est.memory_capacity_gib == expected["memory_capacity_gib"]
    assert est.memory_gib_per_gpu <= expected["memory_capacity_gib"]
    assert est.hardware_tflops_per_gpu == pytest.approx(
        expected["hardware_tflops_per_gpu"], rel=tolerance["hardware_tflops_per_gpu"])
    assert est.training_days == pytest.approx(expected["training_days"],
                                              rel=tolerance["training_days"])


def test_published_figures_are_consistent_with_eq4() -> None:
    # Narayanan eq. (4): time ~ 8*T*P / (n*X) = 8 * 300e9 * 175e9 / (1024 * 140e12) s
    #   = 2.93e6 s = 33.9 days, quoted as 34.
    ref = load_megatron_gpt3()
    e = ref["expected"]
    seconds = 8 * ref["job"]["tokens"] * e["params"] / (e["gpus"] * e["hardware_tflops_per_gpu"]
                                                        * 1e12)
    assert seconds / 86_400 == pytest.approx(e["training_days"], rel=0.01)


# ------------------------------------------------------------------------------ physics


def test_more_data_parallelism_at_fixed_global_batch_shortens_the_step() -> None:
    steps = [solver.evaluate(gpt3_job(), solver.Layout(accelerator="a100-sxm4-80gb", tp=8, pp=8,
                                                       dp=dp, recompute="full")).step_time_s
             for dp in (4, 8, 16, 32)]
    assert all(a > b for a, b in zip(steps, steps[1:], strict=False)), steps
    # Fewer micro-batches per replica and the same bubble: close to 1/dp, never better.
    assert steps[0] / steps[-1] <= 8.0


def test_full_recompute_trades_activation_memory_for_flops() -> None:
    def run(mode: str) -> solver.Estimate:
        return solver.evaluate(gpt3_job(), solver.Layout(accelerator="a100-sxm4-80gb", tp=8,
                                                         pp=8, dp=16, recompute=mode))

    none, selective, full = run("none"), run("selective"), run("full")

    def hardware_flops(e: solver.Estimate) -> float:
        return e.hardware_tflops_per_gpu * 1e12 * e.step_time_s * e.layout.gpus

    def model_flops(e: solver.Estimate) -> float:
        return e.model_tflops_per_gpu * 1e12 * e.step_time_s * e.layout.gpus

    acts = [e.memory_breakdown_gib["activations"] for e in (none, selective, full)]
    assert acts[0] >= acts[1] > acts[2]  # flash attention: selective saves nothing more
    assert hardware_flops(none) < hardware_flops(selective) < hardware_flops(full)
    assert model_flops(none) == pytest.approx(model_flops(full), rel=1e-9)
    assert none.step_time_s < full.step_time_s
    # Model states do not depend on recomputation.
    for name in ("weights", "gradients", "optimizer"):
        assert none.memory_breakdown_gib[name] == full.memory_breakdown_gib[name]


def test_scale_out_without_published_bandwidth_is_not_placeable(
        island_gpu: solver.Accelerator) -> None:
    job = tiny_job()

    def run(tp: int, pp: int, dp: int) -> solver.Estimate:
        return solver.evaluate(job, solver.Layout(accelerator="island-gpu", tp=tp, pp=pp, dp=dp),
                               accelerator=island_gpu)

    # 8 accelerators in one scale-up domain of 8: placeable.
    for inside in ((8, 1, 1), (4, 1, 2), (2, 2, 2)):
        est = run(*inside)
        assert est.fits, (inside, est.violations)
        assert math.isfinite(est.step_time_s)
    # 16 accelerators: data- or pipeline-parallel groups must leave the domain.
    for outside in ((8, 1, 2), (8, 2, 1)):
        est = run(*outside)
        assert not est.fits
        assert any(v.startswith("interconnect:") for v in est.violations), est.violations
        assert est.to_dict()["estimate"]["step_time_s"] is None


@pytest.mark.parametrize(("model", "gpu", "layout", "global_batch"), [
    ("gpt3-175b", "a100-sxm4-80gb", dict(tp=8, pp=8, dp=16, recompute="full"), 1536),
    ("gpt3-175b", "h100-sxm5-80gb", dict(tp=8, pp=12, dp=8, vp=2, zero_stage=1,
                                         recompute="selective"), 1536),
    ("llama3-70b", "h100-sxm5-80gb", dict(tp=8, pp=4, dp=4, cp=2, zero_stage=1), 512),
    ("llama3-8b", "a100-sxm4-80gb", dict(tp=1, pp=1, dp=64, zero_stage=3, micro_batch=2), 512),
    ("mixtral-8x7b", "h100-sxm5-80gb", dict(tp=2, pp=4, dp=8, ep=8, zero_stage=2), 256),
])
def test_time_breakdown_sums_and_utilisation_is_bounded(
        model: str, gpu: str, layout: dict[str, Any], global_batch: int) -> None:
    job = solver.TrainingJob(model=solver.model(model), tokens=1e12, global_batch=global_batch)
    est = solver.evaluate(job, solver.Layout(accelerator=gpu, **layout))
    breakdown = est.time_breakdown_s
    assert all(v >= 0 for v in breakdown.values()), breakdown
    assert sum(breakdown.values()) == pytest.approx(est.step_time_s, rel=1e-9)
    assert 0 < est.mfu <= est.hfu <= 1
    # Identities between the reported figures.
    assert est.tokens_per_s * est.step_time_s == pytest.approx(
        est.global_batch * job.seq_len, rel=1e-9)
    # GPU-hours are paid on wall-clock time (failures, checkpoints and restarts counted).
    assert est.gpu_hours == pytest.approx(est.layout.gpus * est.wall_clock_days * 24, rel=1e-9)
    assert est.wall_clock_days >= est.training_days
    assert est.memory_gib_per_gpu == pytest.approx(sum(est.memory_breakdown_gib.values()),
                                                   rel=1e-9)


def test_pipeline_stages_divide_the_model_states() -> None:
    def weights(pp: int) -> float:
        est = solver.evaluate(gpt3_job(), solver.Layout(accelerator="a100-sxm4-80gb", tp=8,
                                                        pp=pp, dp=16, recompute="full"))
        return est.memory_breakdown_gib["weights"]

    assert weights(4) > weights(8) > weights(16)


def test_bigger_micro_batches_store_more_activations() -> None:
    acts = [solver.evaluate(gpt3_job(), solver.Layout(
        accelerator="a100-sxm4-80gb", tp=8, pp=8, dp=16, micro_batch=mb,
        recompute="full")).memory_breakdown_gib["activations"] for mb in (1, 2, 4)]
    assert acts[0] < acts[1] < acts[2]
