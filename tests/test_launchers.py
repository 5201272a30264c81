"""The launcher capability table (``solver.launchers``) and its enforcement by the search.

The table's facts are checked against what the upstream code says (the file and line each
entry cites, read at the commits the exporters follow); the search is checked against an
independent enumeration of the layouts the launcher accepts (``why_not`` on every layout).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from solver import catalog
from solver.cli import run
from solver.errors import SpecError
from solver.export import common
from solver.launchers import LAUNCHERS, check_fixed, job_refusal, layout_refusal, why_not
from solver.layout_options import PIPELINE_SPLITS, SCHEDULES, recompute_name
from solver.pareto import pareto
from solver.search.solve import solve
from solver.search.space import CP_MAX, enumerate_shapes, search_masks
from solver.specs import Layout, Limits, TrainingJob
from solver.stepmodel.arrays import HardwareTable, LayoutArrays
from solver.stepmodel.evaluate import evaluate_arrays
from solver.stepmodel.pipeline import schedule_rules

DENSE = TrainingJob(model="llama3-8b", tokens=1e11, global_batch=256)
MOE = TrainingJob(model="mixtral-8x7b", tokens=1e11, global_batch=256)


def lay(**fields: object) -> Layout:
    base: dict[str, object] = {"accelerator": "h100", "tp": 1, "pp": 1, "dp": 8}
    return Layout(**{**base, **fields})  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- the table


def test_versions_are_the_exporters() -> None:
    from solver import launchers

    assert launchers.MEGATRON_LM_COMMIT == common.MEGATRON_LM_COMMIT
    assert launchers.TORCHTITAN_COMMIT == common.TORCHTITAN_COMMIT
    assert launchers.DEEPSPEED_COMMIT == common.DEEPSPEED_COMMIT
    assert LAUNCHERS == common.FORMATS


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_plain_layouts_run_everywhere(launcher: str) -> None:
    # Data parallelism alone with 1F1B and no recomputation: every launcher's first example.
    for zero in (0, 1, 2):
        if launcher == "torchtitan" and zero == 1:
            continue
        assert why_not(launcher, DENSE, lay(zero_stage=zero)) is None
    zero = 2 if launcher == "torchtitan" else 1
    assert why_not(launcher, DENSE, lay(tp=2, pp=2, dp=2, zero_stage=zero,
                                        recompute="full")) is None


def test_deepspeed() -> None:
    # pipe/schedule.py TrainSchedule is 1F1B without interleaving.
    assert why_not("deepspeed", DENSE, lay(pp=2, vp=2)).startswith("vp:")
    # pipe/engine.py:76-77: ZeRO-2/3 are refused with pipeline parallelism, not without.
    assert why_not("deepspeed", DENSE, lay(pp=2, zero_stage=2)).startswith("zero_stage:")
    assert why_not("deepspeed", DENSE, lay(pp=1, zero_stage=2)) is None
    assert why_not("deepspeed", DENSE, lay(pp=2, zero_stage=1)) is None
    # engine.py:1872-1893: native MoE refuses ZeRO-3; a dense model takes it (as DeepSpeed's).
    assert why_not("deepspeed", MOE, lay(zero_stage=3)).startswith("zero_stage:")
    ds3 = dataclasses.replace(DENSE, zero3_impl="deepspeed")
    assert why_not("deepspeed", ds3, lay(zero_stage=3)) is None
    assert why_not("deepspeed", DENSE, lay(zero_stage=3)).startswith("zero3_impl:")
    # Ulysses is not ring attention; no zero-bubble or DualPipe; module sets are model code.
    assert why_not("deepspeed", DENSE, lay(cp=2)).startswith("cp:")
    assert why_not("deepspeed", DENSE, lay(pp=2, schedule="zero-bubble")).startswith("schedule:")
    assert why_not("deepspeed", DENSE, lay(recompute="selective")).startswith("recompute:")
    assert why_not("deepspeed", DENSE, lay(pp=2, pipeline_split="both")).startswith(
        "pipeline_split:")
    # config.py:1041-1049: BF16 moments only with BF16 master weights.
    bf16m = dataclasses.replace(DENSE, moments_dtype="bf16")
    assert why_not("deepspeed", bf16m, lay(zero_stage=1)).startswith("moments_dtype:")
    assert why_not("megatron", bf16m, lay(zero_stage=1)) is None


def test_torchtitan() -> None:
    # FSDP2 or DDP: no optimizer-only sharding.
    assert why_not("torchtitan", DENSE, lay(zero_stage=1)).startswith("zero_stage:")
    # parallelize.py:126-128: DDP only on a one-dimensional mesh.
    assert why_not("torchtitan", DENSE, lay(tp=2, dp=4, zero_stage=0)).startswith("zero_stage:")
    assert why_not("torchtitan", DENSE, lay(tp=2, dp=1, zero_stage=0)) is None
    assert why_not("torchtitan", DENSE, lay(dp=64, zero_stage=0)) is None
    assert why_not("torchtitan", DENSE, lay(tp=2, dp=4, zero_stage=3)) is None
    # Interleaved1F1B yes; multi-stage schedules need two stages a rank (no ZB at vp 1).
    assert why_not("torchtitan", DENSE, lay(pp=4, vp=2, zero_stage=3)) is None
    assert why_not("torchtitan", DENSE, lay(pp=4, zero_stage=3, schedule="zero-bubble")
                   ).startswith("schedule:")
    assert why_not("torchtitan", DENSE, lay(pp=4, zero_stage=3, schedule="dualpipe")
                   ).startswith("schedule:")
    # Activation checkpointing modes none|selective|full: no Megatron-LM module sets.
    assert why_not("torchtitan", DENSE, lay(recompute="full")) is None
    assert why_not("torchtitan", DENSE, lay(recompute="layernorm")).startswith("recompute:")
    # parallel_dims.py:56-58: ep a multiple of cp (the layout rules, the model aside)
    assert layout_refusal("torchtitan", MOE, lay(cp=2, ep=4, dp=4, zero_stage=3)) is None
    assert layout_refusal("torchtitan", MOE, lay(cp=4, ep=2, dp=2, zero_stage=3)
                          ).startswith("ep:")
    # job_config.py:207: gradients are reduced in float32 only.
    bf16 = dataclasses.replace(DENSE, grad_dtype="bf16")
    assert why_not("torchtitan", bf16, lay()).startswith("grad_dtype:")


def test_megatron() -> None:
    assert why_not("megatron", DENSE, lay(zero_stage=1, recompute="layernorm+mlp")) is None
    assert why_not("megatron", DENSE, lay(pp=4, vp=2, cp=2)) is None
    # schedules.py:124-132: 1F1B with or without interleaving, nothing else.
    assert why_not("megatron", DENSE, lay(pp=4, schedule="zero-bubble")).startswith("schedule:")
    assert why_not("megatron", DENSE, lay(pp=4, schedule="dualpipe")).startswith("schedule:")
    # transformer_config.py:918-926: CPU offloading refuses pp > 1 and recomputation.
    off = dataclasses.replace(DENSE, activation_offload=True)
    assert why_not("megatron", off, lay()) is None
    assert why_not("megatron", off, lay(pp=2)).startswith("pp:")
    assert why_not("megatron", off, lay(recompute="full")).startswith("recompute:")
    # arguments.py:683-685: --fp8-param-gather needs the distributed optimizer.
    fp8w = dataclasses.replace(DENSE, precision="fp8", fp8_params=True)
    assert why_not("megatron", fp8w, lay(zero_stage=0)).startswith("zero_stage:")
    assert why_not("megatron", fp8w, lay(zero_stage=1)) is None
    # transformer_config.py:1465-1504: the expert all-to-all overlap needs interleaving with
    # pp > 1 and refuses full recomputation.
    ov = dataclasses.replace(MOE, ep_comm_overlap=True)
    assert why_not("megatron", ov, lay(pp=2, ep=2)).startswith("vp:")
    assert why_not("megatron", ov, lay(pp=2, vp=2, ep=2)) is None
    assert why_not("megatron", ov, lay(ep=2, recompute="full")).startswith("recompute:")
    assert why_not("megatron", MOE, lay(pp=2, ep=2, recompute="full")) is None


def test_accelerators() -> None:
    # Megatron-LM: CUDA and Transformer Engine; torchtitan: CUDA or ROCm PyTorch; DeepSpeed:
    # its CUDA (and ROCm) and HPU accelerators. None runs on TPUs or Trainium.
    for launcher, runs, refuses in (("megatron", ["h100", "b200"], ["mi300x", "gaudi3"]),
                                    ("torchtitan", ["h100", "mi300x"], ["gaudi3"]),
                                    ("deepspeed", ["a100", "mi300x", "gaudi3"], [])):
        for name in runs:
            assert why_not(launcher, DENSE, lay(accelerator=name, zero_stage=2)) is None
        for name in [*refuses, "tpu-v5p", "trainium2"]:
            reason = why_not(launcher, DENSE, lay(accelerator=name, zero_stage=2))
            assert reason is not None and reason.startswith("accelerator:")
    # FP8 needs FP8 hardware: the A100 has none (its step model falls back to BF16).
    fp8 = dataclasses.replace(DENSE, precision="fp8")
    for launcher in LAUNCHERS:
        assert why_not(launcher, fp8, lay(accelerator="a100", zero_stage=2)).startswith(
            "accelerator:")
        assert why_not(launcher, fp8, lay(accelerator="h100", zero_stage=2)) is None
    with pytest.raises(SpecError, match=r"^accelerators: megatron runs on NVIDIA"):
        solve(DENSE, Limits(accelerators=("tpu-v5p",), max_gpus=64, launcher="megatron"))
    plan = solve(DENSE, Limits(accelerators=("tpu-v5p", "h100"), max_gpus=64,
                               launcher="megatron"))
    assert plan.estimate is not None and plan.estimate.layout.accelerator == "h100-sxm5-80gb"
    assert any("accelerators left out: tpu-v5p" in n for n in plan.notes)


def test_fixed_fields_the_launcher_cannot_run_are_refused_before_searching() -> None:
    with pytest.raises(SpecError, match=r"^vp: deepspeed"):
        check_fixed("deepspeed", DENSE, {"vp": 2})
    with pytest.raises(SpecError, match=r"^zero_stage: deepspeed's pipeline"):
        check_fixed("deepspeed", DENSE, {"zero_stage": 2, "pp": 4})
    with pytest.raises(SpecError, match=r"^activation_offload: torchtitan"):
        check_fixed("torchtitan", dataclasses.replace(DENSE, activation_offload=True), {})
    # The fused expert MLP (Megatron-LM 6815c0fefe, 2026-05-15) is later than every followed
    # commit: experts with biases run only on the unfused path; without biases it is moot.
    biased = dataclasses.replace(MOE, model=dataclasses.replace(MOE.model, linear_bias=True))
    with pytest.raises(SpecError, match=r"^unfused_expert_bias: megatron runs expert biases "
                                        r"only on an unfused path \(megatron/core/"):
        check_fixed("megatron", biased, {})
    for launcher in LAUNCHERS:  # check_fixed meets torchtitan's model refusal first
        assert job_refusal(launcher, biased).startswith("unfused_expert_bias:"), launcher
        assert job_refusal(launcher, dataclasses.replace(biased, unfused_expert_bias=True)) \
            is None, launcher
    check_fixed("megatron", dataclasses.replace(biased, unfused_expert_bias=True), {})
    assert why_not("megatron", MOE, lay(dp=8, ep=8)) is None
    check_fixed("deepspeed", DENSE, {"zero_stage": 2})  # runnable with pp 1
    check_fixed("torchtitan", DENSE, {"tp": 8, "zero_stage": 0})  # at dp 1
    with pytest.raises(SpecError, match=r"^vp:"):
        solve(DENSE, Limits(accelerators=("h100",), max_gpus=64, fixed={"vp": 2},
                            launcher="deepspeed"))
    with pytest.raises(SpecError, match=r"^launcher:"):
        Limits(launcher="nemo")


# ------------------------------------------------------------------- the search, checked


@pytest.mark.parametrize("launcher", LAUNCHERS)
@pytest.mark.parametrize("job", [DENSE, MOE], ids=["dense", "moe"])
def test_the_searched_shapes_are_those_why_not_accepts(launcher: str, job: TrainingJob
                                                       ) -> None:
    # Every shape of 64 H100 at micro-batch 1 (each at its smallest dp, no recomputation):
    # the search keeps exactly those the layout rules accept, but for torchtitan's DDP, whose
    # dp is capped instead (the model rule is checked before any search: test below).
    acc = catalog.accelerator("h100")
    one = {"micro_batch": 1}
    every = enumerate_shapes(job, [acc], one, complete=True, max_replica=64)
    kept = enumerate_shapes(job, [acc], one, complete=True, max_replica=64, launcher=launcher)
    columns = ("tp", "pp", "vp", "cp", "ep", "mb", "zero", "schedule", "split")
    kept_set = set(zip(*(getattr(kept, c).tolist() for c in columns), strict=True))
    accepted = set()
    for row in zip(*(getattr(every, c).tolist() for c in columns), strict=True):
        tp, pp, vp, cp, ep, mb, zero, schedule, split = row
        layout = Layout(accelerator=acc.name, tp=tp, pp=pp, dp=ep // math.gcd(ep, cp), cp=cp,
                        ep=ep, vp=vp, micro_batch=mb, zero_stage=zero,
                        schedule=SCHEDULES[schedule], pipeline_split=PIPELINE_SPLITS[split])
        reason = layout_refusal(launcher, job, layout)
        if reason is None or "ZeRO-0 is DDP, which refuses tp" in reason:
            accepted.add(row)
    assert kept_set == accepted
    assert len(accepted) < len(every.tp)  # every launcher refuses something here



def runnable_optimum(job: TrainingJob, limits: Limits, launcher: str | None
                     ) -> tuple[float, Layout | None]:
    """The fastest layout on exactly ``limits.gpus`` H100 that fits and that ``launcher``
    runs (``why_not`` on each), by enumeration: every shape of the searched space (tp, cp
    powers of two up to CP_MAX: the complete enumeration trimmed to the search's grid), every
    distinct recomputation mask, dp pinned by the GPU count."""
    acc = catalog.accelerator("h100")
    gpus, gb = limits.gpus, job.global_batch
    assert gpus is not None and gb
    s = enumerate_shapes(job, [acc], limits.fixed, complete=True, max_replica=gpus,
                         masks=search_masks(job, limits.fixed, complete=True))
    replica = s.tp * s.pp * s.cp
    grid = ((s.tp & (s.tp - 1)) == 0) & ((s.cp & (s.cp - 1)) == 0) & (s.cp <= CP_MAX)
    keep = np.flatnonzero(grid & (gpus % replica == 0))
    dp = gpus // replica[keep]
    nmb = gb // (dp * s.mb[keep])
    x = LayoutArrays(accel=s.accel[keep], tp=s.tp[keep], pp=s.pp[keep], dp=dp, cp=s.cp[keep],
                     ep=s.ep[keep], vp=s.vp[keep], mb=s.mb[keep], nmb=nmb, zero=s.zero[keep],
                     recompute=s.recompute[keep], schedule=s.schedule[keep],
                     split=s.split[keep])
    r = evaluate_arrays(job, x, HardwareTable.build([acc], job.precision))
    ok = (r.fits_memory & r.placeable & schedule_rules(x, nmb) & (gb % (dp * x.mb) == 0)
          & ((dp * x.cp) % x.ep == 0))
    candidates = np.flatnonzero(ok)
    for i in candidates[np.argsort(r.training_s[candidates], kind="stable")]:
        layout = Layout(accelerator=acc.name, tp=int(x.tp[i]), pp=int(x.pp[i]),
                        dp=int(x.dp[i]), cp=int(x.cp[i]), ep=int(x.ep[i]), vp=int(x.vp[i]),
                        micro_batch=int(x.mb[i]), zero_stage=int(x.zero[i]),
                        recompute=recompute_name(int(x.recompute[i])),
                        schedule=SCHEDULES[int(x.schedule[i])],
                        pipeline_split=PIPELINE_SPLITS[int(x.split[i])])
        if launcher is None or why_not(launcher, job, layout) is None:
            return float(r.training_s[i]), layout  # the fastest runnable one
    return np.inf, None


#: Questions whose unrestricted optimum each launcher refuses: Llama 3 8B on 64 H100 at pp 4,
#: and Mixtral on 32 H100 at pp 2 (interleaving and module recomputation win there);
#: torchtitan trains no Mixtral (test_torchtitan_trains_only_the_models_of_its_flavors).
RUNNABLE_CASES = [
    *[(DENSE, Limits(accelerators=("h100",), gpus=64, fixed={"micro_batch": 1, "pp": 4}), la)
      for la in LAUNCHERS],
    (MOE, Limits(accelerators=("h100",), gpus=32, fixed={"micro_batch": 1, "pp": 2}),
     "deepspeed"),
]


@pytest.mark.parametrize(("job", "limits", "launcher"), RUNNABLE_CASES,
                         ids=[f"{j.model.name}-{la}" for j, _, la in RUNNABLE_CASES])
def test_solve_returns_the_best_runnable_layout(job: TrainingJob, limits: Limits,
                                                launcher: str) -> None:
    free_best, free_layout = runnable_optimum(job, limits, None)
    best, _ = runnable_optimum(job, limits, launcher)
    plan = solve(job, dataclasses.replace(limits, launcher=launcher), time_limit_s=60)
    assert plan.status == "optimal" and plan.estimate is not None
    assert why_not(launcher, job, plan.estimate.layout) is None
    assert plan.estimate.training_days * 86400 == pytest.approx(best, rel=1e-9)
    # Not vacuous: the unrestricted optimum is a layout this launcher cannot start.
    assert free_layout is not None and why_not(launcher, job, free_layout) is not None
    assert best > free_best
    unrestricted = solve(job, limits, time_limit_s=60)
    assert unrestricted.estimate is not None
    assert unrestricted.estimate.training_days * 86400 == pytest.approx(free_best, rel=1e-9)


def test_torchtitan_trains_only_the_models_of_its_flavors() -> None:
    # torchtitan at the followed commit registers train specs for llama3 and deepseek_v3
    # only, and takes their facts from the flavor, never from the job config.
    limits = Limits(accelerators=("h100",), max_gpus=64, launcher="torchtitan")
    with pytest.raises(SpecError, match=r"^model: torchtitan at 6404b932421f ships no train "
                                        r"spec for mixtral-8x7b"):
        solve(MOE, limits)
    # DeepSeek-V3's config.json: rms_norm_eps 1e-6 and one MTP module; the 671B flavor holds
    # norm_eps 1e-5 and no MTP: planning it would describe another model
    v3 = TrainingJob(model="deepseek-v3", tokens=1e12, global_batch=1024)
    reason = why_not("torchtitan", v3, lay(dp=64, zero_stage=3))
    assert reason is not None and reason.startswith("model: torchtitan's deepseek_v3 671B")
    assert "norm_eps 1e-06 (flavor: 1e-05)" in reason and "mtp_layers 1 (flavor: 0)" in reason
    assert why_not("torchtitan", DENSE, lay(dp=64, zero_stage=3)) is None
    assert why_not("megatron", v3, lay(dp=64, zero_stage=3)) is None


def test_torchtitan_zero0_beside_tp_only_at_dp1() -> None:
    # With ZeRO-0 fixed and a tp of 2, torchtitan's DDP leaves dp 1 only.
    limits = Limits(accelerators=("h100",), max_gpus=64, fixed={"zero_stage": 0, "tp": 2},
                    launcher="torchtitan")
    plan = solve(DENSE, limits, time_limit_s=60)
    assert plan.estimate is not None
    x = plan.estimate.layout
    assert x.dp == 1 and why_not("torchtitan", DENSE, x) is None


def test_pareto_points_are_runnable() -> None:
    limits = Limits(accelerators=("h100",), max_gpus=128, launcher="torchtitan")
    front = pareto(DENSE, limits, axes=("time", "cost"), points=4, time_limit_s=60)
    assert front.points
    for plan in front.points:
        assert plan.estimate is not None
        assert why_not("torchtitan", DENSE, plan.estimate.layout) is None
    assert any("launcher torchtitan" in n for n in front.notes)


# -------------------------------------------------------------------------------- the CLI

SOLVE = ["solve", "--model", "llama3-8b", "--tokens", "1e11", "--gpu", "h100",
         "--max-gpus", "64"]


def test_cli_fixed_field_the_launcher_cannot_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert run([*SOLVE, "--launcher", "deepspeed", "--vp", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("gpuplan: error: --vp: deepspeed")


def test_cli_export_implies_its_launcher(capsys: pytest.CaptureFixture[str]) -> None:
    assert run([*SOLVE, "--export", "deepspeed", "--vp", "2"]) == 2
    assert "--vp: deepspeed" in capsys.readouterr().err
    assert run([*SOLVE, "--launcher", "megatron", "--export", "torchtitan"]) == 2
    assert "--export:" in capsys.readouterr().err


def test_cli_launcher_json(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert run([*SOLVE, "--launcher", "torchtitan", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    fields = {f.name for f in dataclasses.fields(Layout)}
    layout = Layout(**{k: v for k, v in data["layout"].items() if k in fields})
    assert why_not("torchtitan", DENSE, layout) is None
    assert any("launcher torchtitan" in n for n in data["notes"])
