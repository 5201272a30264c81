"""Mixture-of-experts in the step model, against figures worked out by hand.

Every expected number is a literal computed on paper from the shapes and the conventions of
``docs/model.md`` (the arithmetic is in the comments), not taken from ``solver``'s output.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import solver
from solver.layout_options import recompute_code
from solver.stepmodel.arrays import HardwareTable, LayoutArrays
from solver.stepmodel.calibration import Calibration
from solver.stepmodel.compute import layer_kernels, rates
from solver.stepmodel.expert import all_to_all_time, expert_comm, remote_nodes_per_token
from solver.stepmodel.flops import layer_flops, step_flops
from solver.stepmodel.memory import GIB, memory, stage_params
from solver.stepmodel.pipeline import stages
from solver.stepmodel.shape import JobShape, job_shape

#: Round-number calibration for hand arithmetic: collectives at the full link rate, no latency,
#: grouped expert GEMMs at the dense rate.
PLAIN = Calibration(matmul_scale=1.0, attention_scale=1.0, layer_overhead_s=0.0,
                    step_overhead_s=0.0, elementwise_traffic=0.0, scaleup_bus_efficiency=1.0,
                    scaleout_bus_efficiency=1.0, dp_overlap=0.0, dp_contention=0.0,
                    zero3_exposed_deepspeed=0.0,
                    zero3_bandwidth_deepspeed=1.0, grouped_gemm_scale=1.0,
                    latency_scaleup_s=0.0, latency_scaleout_s=0.0)


def columns(n: int = 1, **cols: object) -> LayoutArrays:
    """N layouts, defaults: one accelerator, no parallelism, one micro-batch."""
    base: dict[str, object] = dict(accel=[0] * n, tp=1, pp=1, dp=1, cp=1, ep=1, vp=1, mb=1,
                                   nmb=1, zero=0, recompute=0, schedule=0, split=0)
    return LayoutArrays.from_columns(**{**base, **cols})


def tiny_moe(*, shared: int = 0, dense_layers: int = 0, layers: int = 2,
             capacity: float = 1.0) -> solver.ModelSpec:
    """h=64, 4 heads of 16, 8 SwiGLU experts of ffn 128 (top-2), V=1000, s=128, no biases.

    Per layer by hand: attention 4*64*64 = 16,384; two RMSNorms 128; router 64*8 = 512;
    one expert 3*64*128 = 24,576; dense layers (ffn 256): 3*64*256 = 49,152.
    """
    return solver.ModelSpec(name="tiny-moe", layers=layers, hidden=64, heads=4, vocab=1000,
                            seq_len=128, experts=8, top_k=2, moe_ffn_hidden=128,
                            ffn_hidden=256, shared_experts=shared, dense_layers=dense_layers,
                            gated_mlp=True, norm="rmsnorm", linear_bias=False,
                            position_embedding="rope", capacity_factor=capacity)


# ------------------------------------------------------------------------------ parameters, FLOPs


def test_total_and_active_parameters() -> None:
    # 2 MoE layers, one shared expert:
    #   per layer without routed experts: 16,384 + 128 + 512 + 24,576 (shared) = 41,600
    #   routed: 8 * 24,576 = 196,608 (total) or 2 * 24,576 = 49,152 (active)
    #   embedding 64,000 + LM head 64,000 + final norm 64 = 128,064
    #   total  = 128,064 + 2 * (41,600 + 196,608) = 128,064 + 476,416 = 604,480
    #   active = 128,064 + 2 * (41,600 + 49,152)  = 128,064 + 181,504 = 309,568
    m = tiny_moe(shared=1)
    assert m.params_total == 604_480
    assert m.params_active == 309_568


def test_flops_count_top_k_experts_router_and_shared() -> None:
    # Forward FLOPs per token of one MoE layer: 2 x matmul weights
    #   attention 16,384 + router 512 + (top_k 2 + shared 1) * 24,576 = 90,624 -> 181,248
    # scores: 2 * s * heads * (d_qk + d_v) = 2 * 128 * 4 * 32 = 32,768
    # LM head 2 * 64 * 1000 = 128,000
    # model FLOPs per token = 3 * (2 * 181,248 + 2 * 32,768 + 128,000)
    #   = 3 * (362,496 + 65,536 + 128,000) = 3 * 556,032 = 1,668,096
    m = tiny_moe(shared=1)
    f = layer_flops(m, 128)
    assert f.moe_matmul == 181_248
    assert f.attention_scores == 32_768
    assert step_flops(m, 128).model_per_token == 1_668_096


# ------------------------------------------------------------------------------ memory


def test_dense_first_layers_and_expert_memory_per_stage() -> None:
    # 4 layers, the first dense (DeepSeek-V3's first_k_dense_replace), pp=2: 2 layers a stage,
    # dense layers first: the first stage holds 1 dense + 1 MoE, the last 2 MoE.
    # Routed experts split by tp*ep = 1*4: first 1 * 8 * 24,576 / 4 = 49,152;
    # last 2 * 8 * 24,576 / 4 = 98,304. With pp=1 all 4 layers: 1 dense + 3 MoE;
    # experts 3 * 8 * 24,576 / 4 = 147,456.
    js = job_shape(solver.TrainingJob(model=tiny_moe(layers=4, dense_layers=1), tokens=1e9))
    x = columns(2, pp=[2, 1], dp=4, ep=4, nmb=8)
    st = stages(js, x)
    assert st.first.dense.tolist() == [1, 1]
    assert st.first.moe.tolist() == [1, 3]
    assert st.last.dense.tolist() == [0, 1]
    assert st.last.moe.tolist() == [2, 3]
    assert stage_params(js, x, st.first).experts.tolist() == [49_152, 147_456]
    assert stage_params(js, x, st.last).experts.tolist() == [98_304, 147_456]


def deepseek_v3_job(**extra: object) -> solver.TrainingJob:
    return solver.TrainingJob(model=solver.model("deepseek-v3"), tokens=14.8e12,
                              global_batch=15_360, seq_len=4096, precision="fp8",
                              **extra)  # type: ignore[arg-type]


def test_deepseek_v3_memory_pp16_ep64_on_2048_h800() -> None:
    """DeepSeek-V3 on 2048 H800 (arXiv:2412.19437 sec. 3.2: 16-way pipeline, 64-way expert
    parallelism over 8 nodes, ZeRO-1 data parallelism, no tensor parallelism, FP8):
    TP1 PP16 DP128 EP64, micro-batch 1 of 4096 tokens, global batch 15,360 (m = 120), here
    with 1F1B and full recomputation. The model has 61 layers and one MTP module, so 16 stages
    need pipeline_split "both": (61 + 1 + 2) / 16 = 4 slots a stage; first stage 3 dense
    layers + embedding, middle stages 4 MoE layers, last stage 2 MoE + MTP + LM head.

    Parameters (solver/presets/deepseek-v3.toml): dense layer 583,483,392; MoE layer without
    routed experts 232,996,864; routed expert 44,040,192; embedding = LM head 926,679,040;
    MTP module 2 * 7168^2 + an MoE layer (``ModelSpec`` docstring: a layer plus a projection).
      first:  3 * 583,483,392 + 926,679,040 = 2,677,129,216 replicated, no experts
      middle: 4 * 232,996,864 = 931,987,456; experts 4 * 256/64 * 44,040,192 = 704,643,072
      last:   2 * 232,996,864 + (102,760,448 + 232,996,864) + 926,679,040 = 1,728,430,080;
              experts 3 * 4 * 44,040,192 = 528,482,304
    Model states: weights 2 bytes, and the linear layers' (not the embedding or LM head) FP8
    copy and transpose 2 more (Hopper's TN-only FP8 GEMMs), gradients FP32 4, optimizer 12
    bytes sharded over dp*cp = 128 (experts over 128/64 = 2):
      first:  weights 4 * 2,677,129,216 - 2 * 926,679,040 = 8,855,158,784; gradients
              10,708,516,864; 12 * 20,915,072 = 250,980,864 -> 19,814,656,512
      middle: 4 * 1,636,630,528 = 6,546,522,112 twice; 12 * (7,281,152 + 352,321,536)
              = 4,315,232,256 -> 17,408,276,480
      last:   weights 4 * 2,256,912,384 - 2 * 926,679,040 = 7,174,291,456; gradients
              9,027,649,536; 12 * (13,503,360 + 264,241,152) = 3,332,934,144
              -> 19,534,875,136
    Activations (full recomputation: 2 bytes * 4096 * 7168 = 58,720,256 per layer kept, plus
    one layer's working set with nothing recomputed, FP8 linear inputs, no dropout masks:
    DeepSeek-V3 trains without dropout):
      dense layer, bytes per token: attention 14,336 + 7,168 + 4,224 + 2,048 + 131,072
        + 16,384 = 175,232; MLP 14,336 + 7,168 + 73,728 + 18,432 = 113,664
        -> 288,896 * 4096 = 1,183,318,016
      MoE layer: 175,232 + 14,336 + 7,168 + 1,024 + 8 * (7,168 + 8,192 + 2,048) + 8,192
        + 2,048 = 347,264 -> * 4096 = 1,422,393,344
      first (16 in flight):  16 * 3 * 58,720,256 + 1,183,318,016 = 4,001,890,304
      middle (rank 1, 15):   15 * 4 * 58,720,256 + 1,422,393,344 = 4,945,608,704
      last (1 in flight):    3 * 58,720,256 + 1,422,393,344 + FP32 logits of the head and
        the MTP head 2 * 4 * 4096 * 129,280 = 4,236,247,040 -> 5,834,801,152
    Totals before buffers: first 23,816,546,816; middle 22,353,885,184; last 25,369,676,288:
    the last rank is reported.
    Buffers: NCCL 536,870,912 + pipeline send/receive 2 * 2 * 4096 * 7168 = 117,440,512
      = 654,311,424. Allocated 26,023,987,712; reserve 1,073,741,824 + 5% (1,301,199,385.6)
      = 2,374,941,209.6; total 28,398,928,921.6 bytes (26.4 GiB of 80).
    """
    job = deepseek_v3_job()
    layout = solver.Layout(accelerator="h800", tp=1, pp=16, dp=128, ep=64, micro_batch=1,
                           zero_stage=1, recompute="full", pipeline_split="both")
    assert layout.gpus == 2048
    x = LayoutArrays.from_layouts([layout], [120], {"h800": 0})
    mem = memory(job_shape(job), x)
    assert mem.weights.tolist() == [7_174_291_456]
    assert mem.gradients.tolist() == [9_027_649_536]
    assert mem.optimizer.tolist() == [3_332_934_144]
    assert mem.activations.tolist() == [5_834_801_152]
    assert mem.buffers.tolist() == [654_311_424]
    assert mem.total.tolist() == pytest.approx([28_398_928_921.6], rel=1e-12)
    est = solver.evaluate(job, layout)
    assert est.memory_gib_per_gpu == pytest.approx(28_398_928_921.6 / GIB, rel=1e-12)
    assert est.fits
    assert est.layout.ep == 64 and est.time_breakdown_s["ep_comm"] > 0


def test_deepseek_v3_published_layout_fits_in_the_h800() -> None:
    """DeepSeek-V3 as published (arXiv:2412.19437 sec. 3.2-3.3): 2048 H800, TP1 PP16 DP128
    EP64, ZeRO-1, FP8, DualPipe, recomputation of the norms, MLA up-projections and the
    experts' SwiGLU output (``layernorm+mla_up_proj+moe_act``, SwiGLU inputs cached in FP8),
    BF16 Adam moments, DeepEP with FP8 dispatch, global batch 15,360 of 4096 tokens.

    Stages as in the 1F1B test above. DualPipe: rank 0 holds stages 0 and 15 (Table 2:
    2x parameters), p + 1 = 17 micro-batches in flight, half through each stage.
      replicated 2,677,129,216 + 1,728,430,080 = 4,405,559,296; experts 528,482,304;
      held 4,934,041,600
      weights 4 * 4,934,041,600 - 2 * (2 * 926,679,040) = 16,029,450,240 (2 bytes, and the
        FP8 copy and transpose of all but the embedding and LM head); gradients (FP32)
        4 * 4,934,041,600 = 19,736,166,400
      optimizer: FP32 master + BF16 m and v = 8 bytes, over dp*cp = 128 (experts 2) and the
        2 copies of each stage: 8 * (34,418,432 + 264,241,152) / 2 = 1,194,638,336
      activations per token (test_memory.py: dense 155,776, MoE or MTP layer 164,992 with
        dropout; without it two 1-byte masks of 7,168 fewer: 141,440 and 150,656):
        stage 0: 3 * 141,440 = 424,320; stage 15: 3 * 150,656 = 451,968
        17 * 4096 * (424,320 + 451,968) / 2 = 30,508,843,008
        + FP32 logits of the head and the MTP head 2 * 4 * 4096 * 129,280 = 4,236,247,040
        = 34,745,090,048
      buffers 654,311,424 (as above)
      allocated 16,029,450,240 + 19,736,166,400 + 1,194,638,336 + 34,745,090,048
        + 654,311,424 = 72,359,656,448; reserve 1,073,741,824 + 3,617,982,822.4;
        total 77,051,381,094.4
    The middle rank (stage 14 twice: 2 * (931,987,456 + 704,643,072) = 3,273,261,056 held)
      allocates 4 * 3,273,261,056 * 2 + 8 * (14,562,304 + 704,643,072) / 2
      + 17 * 4 * 150,656 * 4096 + 654,311,424 = 26,186,088,448 + 2,876,821,504
      + 41,961,914,368 + 654,311,424 = 71,679,135,744 (76,336,834,355.2 with its reserve):
      less.
    77,051,381,094.4 bytes = 71.8 GiB < 80 GiB: it fits.
    """
    job = deepseek_v3_job(moments_dtype="bf16", moe_dispatcher="deepep", fp8_dispatch=True,
                          ep_comm_overlap=True)
    layout = solver.Layout(accelerator="h800", tp=1, pp=16, dp=128, ep=64, micro_batch=1,
                           zero_stage=1, recompute="layernorm+mla_up_proj+moe_act",
                           schedule="dualpipe", pipeline_split="both")
    x = LayoutArrays.from_layouts([layout], [120], {"h800": 0})
    mem = memory(job_shape(job), x)
    assert mem.weights.tolist() == [16_029_450_240]
    assert mem.gradients.tolist() == [19_736_166_400]
    assert mem.optimizer.tolist() == [1_194_638_336]
    assert mem.activations.tolist() == [34_745_090_048]
    assert mem.buffers.tolist() == [654_311_424]
    assert mem.total.tolist() == pytest.approx([77_051_381_094.4], rel=1e-12)
    est = solver.evaluate(job, layout)
    assert est.memory_gib_per_gpu == pytest.approx(77_051_381_094.4 / GIB, rel=1e-12)
    assert est.fits, est.violations
    assert est.memory_gib_per_gpu < 80


# ------------------------------------------------------------------------------ time


def moe_estimate(gpu: solver.Accelerator, *, ep: int, dp: int, tp: int = 1,
                 capacity: float = 1.0) -> solver.Estimate:
    job = solver.TrainingJob(model=tiny_moe(capacity=capacity), tokens=1e9, global_batch=dp)
    return solver.evaluate(job, solver.Layout(accelerator="test-gpu", tp=tp, pp=1, dp=dp,
                                              ep=ep), accelerator=gpu, calibration=PLAIN)


def test_dispatch_and_combine_all_to_all_on_the_right_fabric(
        test_gpu: solver.Accelerator) -> None:
    """Per MoE layer and micro-batch a dispatch and a combine all-to-all in the forward and
    their twins, the same bytes, in the backward (GShard, Lepikhin et al. 2020; DeepSeek-V3
    arXiv:2412.19437 sec. 3.2.2): 2 passes x 2 all-to-alls."""
    # Each rank sends 2 bytes * 128 tokens * top_k 2 * h 64 = 32,768 bytes of copies.
    # ep=4 (span 4 <= 8: scale-up, 100 GB/s): (ep-1)/ep = 3/4 leave the rank:
    #   3/4 * 32,768 / 1e11 = 2.4576e-7 s an all-to-all
    #   ep_comm = 2 layers * 2 passes * 2 * 2.4576e-7 = 1.96608e-6 s
    # tp=2, ep=8: the expert group spans tp*ep = 16 ranks = 2 nodes of 8; with sequence
    # parallelism each rank holds 128/2 tokens: 16,384 bytes of copies. Megatron's all-to-all:
    #   across the NIC (10 GB/s): (nodes-1)/nodes = 1/2: 8,192 / 1e10 = 8.192e-7 s
    #   over NVLink to the ep/nodes - 1 = 3 other ranks of the node: 3/8 * 16,384 / 1e11
    #     = 6.144e-8 s, at the same time -> 8.192e-7 s an all-to-all
    #   ep_comm = 2 * 2 * 2 * 8.192e-7 = 6.5536e-6 s
    inside = moe_estimate(test_gpu, ep=4, dp=4)
    outside = moe_estimate(test_gpu, ep=8, dp=8, tp=2)
    assert inside.time_breakdown_s["ep_comm"] == pytest.approx(1.96608e-6, rel=1e-12)
    assert outside.time_breakdown_s["ep_comm"] == pytest.approx(6.5536e-6, rel=1e-12)


def test_expert_all_to_all_overlapped_with_computation(test_gpu: solver.Accelerator) -> None:
    """``ep_comm_overlap`` (DualPipe, DeepSeek-V3 sec. 3.2.1): the all-to-alls hide under the
    GEMMs of another micro-batch (``timing.py``: each second of GEMMs hides at most one second
    of traffic), while the kernels lose the 20 of 132 SMs DeepEP takes (sec. 3.2.2); a
    micro-batch with no other beside it hides nothing."""
    # A slow scale-up fabric (10 GB/s) so that part of the traffic stays exposed:
    #   ep=4: 3/4 * 32,768 / 1e10 = 2.4576e-6 s an all-to-all;
    #   2 layers * 2 passes * 2 = 8 of them: 1.96608e-5 s
    # GEMM and score time per MoE layer (rate 100e12 * 0.8 = 8e13 FLOP/s, HBM 1e12 B/s):
    #   non-expert matmuls (attention 16,384 + router 512 weights): 128 * 2 * 16,896 / 8e13
    #     = 5.40672e-8 s (weights 17,024 * 2 B / 1e12 = 3.4048e-8: compute-bound)
    #   routed experts: 128 * 2 * 2 * 24,576 / 8e13 = 1.572864e-7 s at the full rate; each of
    #     the 2 local experts gets 128 tokens * 2 routed * 4 ranks / 8 experts = 128 tokens, so
    #     the grouped GEMM runs at 128 / (128 + 130) of it (calibration.GROUPED_GEMM_TILE_TOKENS):
    #     1.572864e-7 * 258 / 128 = 3.170304e-7 s (the 2 local experts' weights
    #     2 * 24,576 * 2 B / 1e12 = 9.8304e-8 s: compute-bound)
    #   scores: 128 * 32,768 * 0.5 (causal) / 8e13 = 2.62144e-8 s at head width 128; the
    #     heads of 16 run at (64 / (64 + 253.59)) / (512 / (512 + 253.59)) = 0.301328 of that
    #     rate (an exponential per score costs 989 / 3.9 = 253.59 matmul FLOPs):
    #     2.62144e-8 / 0.301328 = 8.69962e-8 s
    #   F = 5.40672e-8 + 3.170304e-7 + 8.69962e-8 = 4.580938e-7,
    #   B = 3.710976e-7 + 2.5 * 8.69962e-8 (flash attention's backward recomputes QK^T: five
    #   matmuls against the forward's two) = 5.885881e-7,
    #   W = 3.710976e-7 -> 1.4177795e-6 s a layer, 2.8355590e-6 s for two
    # LM head GEMM (BF16): 128 * 2 * 64 * 1000 / 8e13 = 2.048e-7 s (weights 1.28e-7 s), in F,
    #   B and W: 6.144e-7 s (its FP32 logits traffic is memory-bound and hides nothing)
    # Four micro-batches a step (global batch 16 over dp = 4): the first forward and the last
    # backward have no partner (Megatron-LM combined_1f1b.py), so 3 of 4 micro-batches' worth
    # of traffic can hide, and only those passes share the SMs (pipeline.unpaired_share).
    # Kernels of the paired share on 112 of 132 SMs: 1 + 3/4 * 20/112 = 1.1339286 times as long;
    # capacity per micro-batch (2.8355590e-6 + 6.144e-7) * 1.1339286 = 3.9120071e-6 s
    # Hidden per micro-batch: 3/4 * min(1.96608e-5, 3.9120071e-6) = 2.9340053e-6 s
    # Exposed: 4 * (1.96608e-5 - 2.9340053e-6) = 6.6907179e-5 s a step.
    slow = dataclasses.replace(test_gpu, scaleup_bw_gb_s=10.0)
    job = solver.TrainingJob(model=tiny_moe(), tokens=1e9, global_batch=16,
                             ep_comm_overlap=True)
    layout = solver.Layout(accelerator="test-gpu", tp=1, pp=1, dp=4, ep=4)
    est = solver.evaluate(job, layout, accelerator=slow, calibration=PLAIN)
    assert est.time_breakdown_s["ep_comm"] == pytest.approx(6.6907179e-5, rel=1e-6)
    # Without the overlap all of it is exposed: 4 * 1.96608e-5.
    plain_job = dataclasses.replace(job, ep_comm_overlap=False)
    est = solver.evaluate(plain_job, layout, accelerator=slow, calibration=PLAIN)
    assert est.time_breakdown_s["ep_comm"] == pytest.approx(4 * 1.96608e-5, rel=1e-12)
    # One micro-batch a step: nothing to pair it with, nothing hides, no SMs shared.
    single = solver.evaluate(dataclasses.replace(job, global_batch=4), layout, accelerator=slow,
                             calibration=PLAIN)
    assert single.time_breakdown_s["ep_comm"] == pytest.approx(1.96608e-5, rel=1e-12)


def test_capacity_factor_scales_dispatch_and_expert_work(test_gpu: solver.Accelerator) -> None:
    # Capacity factor 1.5: every expert buffer is 1.5x as large, so the all-to-all bytes and
    # the routed-expert matmuls grow by 1.5; model FLOPs (and so MFU's numerator) do not.
    base = moe_estimate(test_gpu, ep=4, dp=4)
    padded = moe_estimate(test_gpu, ep=4, dp=4, capacity=1.5)
    assert padded.time_breakdown_s["ep_comm"] == pytest.approx(
        1.5 * base.time_breakdown_s["ep_comm"], rel=1e-12)
    flops = base.model_tflops_per_gpu * base.step_time_s
    assert padded.model_tflops_per_gpu * padded.step_time_s == pytest.approx(flops, rel=1e-12)
    assert padded.step_time_s > base.step_time_s


@pytest.mark.parametrize(("model", "gpu", "layout", "global_batch"), [
    ("mixtral-8x7b", "h100-sxm5-80gb", dict(tp=2, pp=4, dp=8, ep=8, zero_stage=1,
                                            recompute="full"), 256),
    ("deepseek-v3", "h800", dict(tp=1, pp=16, dp=128, ep=64, zero_stage=1, recompute="full",
                                 pipeline_split="both"), 15_360),
])
def test_moe_presets_evaluate_with_expert_parallelism(
        model: str, gpu: str, layout: dict[str, object], global_batch: int) -> None:
    job = solver.TrainingJob(model=solver.model(model), tokens=1e12, global_batch=global_batch,
                             seq_len=4096)
    est = solver.evaluate(job, solver.Layout(accelerator=gpu, **layout))  # type: ignore[arg-type]
    assert est.fits, est.violations
    assert est.layout.ep > 1
    assert est.time_breakdown_s["ep_comm"] > 0
    assert 0 < est.mfu < est.hfu < 1


# ------------------------------------------------------------------------------ expert all-to-all


def table(gpu: solver.Accelerator) -> HardwareTable:
    return HardwareTable.build([gpu], "bf16")


def shape(model: solver.ModelSpec, **job: object) -> JobShape:
    """With dropout 0.1, as the per-token figures of test_memory.py count the masks."""
    return job_shape(solver.TrainingJob(model=model, tokens=1e9, dropout=0.1,
                                        **job))  # type: ignore[arg-type]


def test_remote_nodes_per_token_with_group_limited_routing() -> None:
    """Expected distinct remote nodes a token's top_k experts sit on, routed uniformly over
    the N nodes it may reach: D = N (1 - (1 - 1/N)^k) (G-1)/G (``expert.py``). DeepSeek-V3
    (config.json n_group 8, topk_group 4; arXiv:2412.19437 sec. 2.1.2, 3.2.2): EP64 over
    G = 8 nodes, one group a node, at most 4 nodes: N = 4, k = 8."""
    js = shape(solver.model("deepseek-v3"), seq_len=4096)
    nodes = np.array([1.0, 8.0, 16.0])
    d = remote_nodes_per_token(js, nodes).tolist()
    # G = 1: nothing leaves the node.
    assert d[0] == 0
    # G = 8: 4 * (1 - 0.75^8) * 7/8 = 4 * 0.89989 * 0.875 = 3.1496
    assert d[1] == pytest.approx(4 * (1 - 0.75**8) * 7 / 8, rel=1e-12)
    # G = 16: a group spans 16/8 = 2 nodes, 4 groups reach N = 8: 8 (1 - (7/8)^8) * 15/16
    assert d[2] == pytest.approx(8 * (1 - (7 / 8) ** 8) * 15 / 16, rel=1e-12)
    # Without the group limit the token may reach all G = 8 nodes: 8 (1 - (7/8)^8) * 7/8
    free = shape(dataclasses.replace(solver.model("deepseek-v3"), expert_groups=0,
                                     expert_group_topk=0), seq_len=4096)
    assert remote_nodes_per_token(free, np.array([8.0])).tolist() == pytest.approx(
        [8 * (1 - (7 / 8) ** 8) * 7 / 8], rel=1e-12)


def test_alltoall_and_deepep_bytes_across_nodes(test_gpu: solver.Accelerator) -> None:
    """Across nodes, Megatron's all-to-all sends every routed copy bound for another node over
    the NIC; DeepEP (DeepSeek-V3 sec. 3.2.2) one copy per destination node, forwarded over
    NVLink inside it. DeepSeek-V3, TP1 EP64 DP128 on 8-GPU nodes (G = 8), one micro-batch of
    4096 tokens, BF16 (2 bytes), test-gpu links: NIC 10 GB/s, NVLink 100 GB/s."""
    x = columns(dp=128, ep=64)
    hw = table(test_gpu)
    # all-to-all: copies 4096 * 8 * 7168 * 2 = 469,762,048 bytes; 7/8 cross the NIC:
    #   411,041,792 / 1e10 = 0.0411041792 s (NVLink: 7/64 of the copies to the 7 other EP
    #   ranks of the node, 5.14e-4 s, at the same time)
    alltoall = shape(solver.model("deepseek-v3"), seq_len=4096)
    t = all_to_all_time(alltoall, x, hw, PLAIN, 2.0)
    assert t.tolist() == pytest.approx([4096 * 8 * 7168 * 2 * 7 / 8 / 1e10], rel=1e-12)
    assert t.tolist() == pytest.approx([0.0411041792], rel=1e-12)
    # DeepEP: 4096 tokens * D remote nodes * 7168 * 2 bytes, D = 4 (1 - 0.75^8) 7/8 = 3.1496:
    #   1.8494e8 bytes / 1e10 = 0.018494 s; NVLink carries all the copies,
    #   469,762,048 / 1e11 = 0.0047 s, at the same time: the NIC is the bottleneck.
    deepep = shape(solver.model("deepseek-v3"), seq_len=4096, moe_dispatcher="deepep")
    d = 4 * (1 - 0.75**8) * 7 / 8
    t_ep = all_to_all_time(deepep, x, hw, PLAIN, 2.0)
    assert t_ep.tolist() == pytest.approx([4096 * d * 7168 * 2 / 1e10], rel=1e-12)
    # DeepEP's saving across nodes: k (G-1)/G copies against D: 8 / (4 (1 - 0.75^8)) = 2.22
    assert (t / t_ep).tolist() == pytest.approx([8 / (4 * (1 - 0.75**8))], rel=1e-12)
    # Inside one node (EP8 over 8 GPUs) both move (ep-1)/ep of the copies over NVLink:
    #   4096 * 8 * 7168 * 2 * 7/8 / 1e11
    inside = columns(dp=8, ep=8)
    for js in (alltoall, deepep):
        assert all_to_all_time(js, inside, hw, PLAIN, 2.0).tolist() == pytest.approx(
            [4096 * 8 * 7168 * 2 * 7 / 8 / 1e11], rel=1e-12)


def test_fp8_dispatch_and_backward_moves_the_forward_bytes(
        test_gpu: solver.Accelerator) -> None:
    """FP8 dispatch (DeepSeek-V3 sec. 3.3.3; E4M3 with one FP32 scale per 128 elements,
    sec. 3.3.2): 1 + 4/128 bytes an element; the combine stays BF16. The backward runs the
    twins of the dispatch and the combine (one FP8, one BF16): the same bytes as the forward."""
    js = shape(tiny_moe(), fp8_dispatch=True)
    assert js.dispatch_bytes == 1 + 4 / 128 == 1.03125
    assert shape(tiny_moe()).dispatch_bytes == 2
    # tiny MoE, ep=4 inside a node (100 GB/s): copies 128 * 2 * 64 = 16,384 elements,
    #   3/4 leave the rank: dispatch 12,288 * 1.03125 / 1e11 = 1.2672e-7 s;
    #   combine 12,288 * 2 / 1e11 = 2.4576e-7 s; forward = backward = 3.7248e-7 s.
    comm = expert_comm(js, columns(dp=4, ep=4), table(test_gpu), PLAIN)
    assert comm.forward.tolist() == pytest.approx([12_288 * (1.03125 + 2) / 1e11], rel=1e-12)
    assert comm.forward.tolist() == pytest.approx([3.7248e-7], rel=1e-12)
    assert comm.backward.tolist() == comm.forward.tolist()
    assert comm.hideable.tolist() == [0]
    # Recomputing the MoE layer (full, or the ``moe`` module) repeats the forward pair;
    # ``moe_act`` does not.
    x = columns(3, dp=4, ep=4, recompute=[recompute_code(m) for m in ("full", "moe",
                                                                      "moe_act")])
    again = expert_comm(js, x, table(test_gpu), PLAIN).recompute.tolist()
    assert again == pytest.approx([3.7248e-7, 3.7248e-7, 0.0], rel=1e-12)


def test_dropless_imbalance_scales_expert_work_and_traffic(test_gpu: solver.Accelerator) -> None:
    """Dropless routing (capacity_factor 0): the busiest expert rank receives moe_imbalance
    times the mean load, so its routed copies, expert GEMMs and all-to-all bytes grow by that
    factor (``JobShape.routed`` = top_k x load); with a capacity factor the buffers are padded
    to it instead and the imbalance does not apply (GShard)."""
    dropless = tiny_moe(capacity=0.0)
    even = shape(dropless)
    busy = shape(dropless, moe_imbalance=1.3)
    assert (even.routed, busy.routed) == (2.0, 2 * 1.3)
    assert shape(tiny_moe(capacity=1.0), moe_imbalance=1.3).routed == 2.0
    hw = table(test_gpu)
    x = columns(dp=4, ep=4)
    # All-to-all inside a node: 1.3 * 3/4 * 128 * 2 * 64 * 2 / 1e11 = 1.3 * 2.4576e-7 s
    assert all_to_all_time(busy, x, hw, PLAIN, 2.0).tolist() == pytest.approx(
        [1.3 * 2.4576e-7], rel=1e-12)
    # DeepEP across nodes (ep=16 over 2 nodes; no group limit in this model): the remote
    # bytes scale by the load too: 1.3 * 128 tokens * D * 64 * 2 bytes with
    # D = 2 (1 - (1/2)^2) * 1/2 = 0.75 -> 1.3 * 12,288 / 1e10 s (NVLink carries the
    # 1.3 * 32,768 bytes of copies at 1e11: less)
    deepep = shape(dropless, moe_imbalance=1.3, moe_dispatcher="deepep")
    wide = columns(dp=16, ep=16)
    assert all_to_all_time(deepep, wide, hw, PLAIN, 2.0).tolist() == pytest.approx(
        [1.3 * 128 * 0.75 * 64 * 2 / 1e10], rel=1e-12)
    # Expert GEMMs of the forward: 128 tokens * 2.6 copies * 2 * 24,576 FLOPs / 8e13 against
    # 128 * 2 * 2 * 24,576 / 8e13 = 1.572864e-7 s (compute-bound: the local experts' weights
    # take 9.8304e-8 s): the forward grows by 0.3 * 1.572864e-7 = 4.718592e-8 s.
    f_even = layer_kernels(even, x, rates(even, x, hw, PLAIN), PLAIN, moe=True).forward
    f_busy = layer_kernels(busy, x, rates(busy, x, hw, PLAIN), PLAIN, moe=True).forward
    assert (f_busy - f_even).tolist() == pytest.approx([0.3 * 1.572864e-7], rel=1e-9)
    # Stored activations per token (BF16): 1,184 + 896 per routed copy (test_memory.py):
    #   2,976 balanced, 1,184 + 896 * 2.6 = 3,513.6 on the busiest rank.
    none = np.array([0])
    assert even.moe_act.stored(none, np.array([1])).tolist() == pytest.approx([2_976])
    assert busy.moe_act.stored(none, np.array([1])).tolist() == pytest.approx([3_513.6])


def test_grouped_gemm_pays_one_tile_per_expert(test_gpu: solver.Accelerator) -> None:
    """A grouped GEMM over ``M`` tokens per expert runs at ``M / (M + tile)`` of the grouped
    rate (``compute.py``): the default tile 130 (DeepGEMM on the H800) or the accelerator's own
    (512 rows for MaxText's megablox on TPU)."""
    # tiny_moe: s=128, top-2 of 8 experts, ep=1: 128 * 2 / 8 = 32 tokens per expert.
    # Linear rate 100e12 * 0.8 = 8e13 FLOP/s (PLAIN: matmul and grouped scales 1).
    #   default tile: 8e13 * 32 / (32 + 130) = 1.580246913580247e13
    #   tile 512:     8e13 * 32 / (32 + 512) = 4.705882352941176e12
    job = solver.TrainingJob(model=tiny_moe(), tokens=1e9, global_batch=4)
    js = job_shape(job)
    x = columns()
    plain = rates(js, x, HardwareTable.build([test_gpu], "bf16"), PLAIN)
    tpu_like = dataclasses.replace(test_gpu, grouped_gemm_tile_tokens=512)
    tiled = rates(js, x, HardwareTable.build([tpu_like], "bf16"), PLAIN)
    assert plain.experts[0] == pytest.approx(1.580246913580247e13, rel=1e-12)
    assert tiled.experts[0] == pytest.approx(4.705882352941176e12, rel=1e-12)
    assert tiled.linear[0] == pytest.approx(8e13, rel=1e-12)  # dense GEMMs untouched


def test_expert_biases_on_the_unfused_path_slow_only_the_expert_gemms(
        test_gpu: solver.Accelerator) -> None:
    """A MoE whose experts have biases runs them at ``biased_expert_scale`` of the grouped
    rate on Megatron-Core's unfused TEGroupedMLP path (``unfused_expert_bias``), at the
    grouped rate on the fused path, and a MoE without biases is not touched."""
    # As above: 32 tokens per expert, grouped rate 8e13 * 32 / 162 = 1.580246913580247e13;
    # with biased_expert_scale 0.5: 7.901234567901235e12. Dense GEMMs stay at 8e13.
    cal = dataclasses.replace(PLAIN, biased_expert_scale=0.5)
    hw = HardwareTable.build([test_gpu], "bf16")
    x = columns()
    biased = dataclasses.replace(tiny_moe(), linear_bias=True)

    def expert_rate(model: solver.ModelSpec, unfused: bool) -> tuple[float, float]:
        job = solver.TrainingJob(model=model, tokens=1e9, global_batch=4,
                                 unfused_expert_bias=unfused)
        r = rates(job_shape(job), x, hw, cal)
        return float(r.experts[0]), float(r.linear[0])

    assert expert_rate(biased, True) == pytest.approx((7.901234567901235e12, 8e13), rel=1e-12)
    assert expert_rate(biased, False) == pytest.approx((1.580246913580247e13, 8e13), rel=1e-12)
    assert expert_rate(tiny_moe(), True) == pytest.approx((1.580246913580247e13, 8e13),
                                                           rel=1e-12)
    with pytest.raises(solver.SpecError, match=r"^unfused_expert_bias: expected true or false"):
        solver.TrainingJob(model=biased, tokens=1e9,
                           unfused_expert_bias="yes")  # type: ignore[arg-type]


def test_grouped_gemm_tile_is_checked_and_shipped_for_tpus() -> None:
    with pytest.raises(solver.SpecError,
                       match="^grouped_gemm_tile_tokens: expected a finite number > 0"):
        solver.Accelerator(name="x", vendor="X", peak_tflops={"bf16": 1.0}, memory_gib=1.0,
                           memory_bw_gb_s=1.0, scaleup_bw_gb_s=1.0, scaleup_domain=8,
                           grouped_gemm_tile_tokens=0)
    # MaxText's megablox tile_batch_seq (512) on every TPU; NVIDIA parts keep the default.
    for name in ("tpu-v4", "tpu-v5e", "tpu-v5p", "tpu-v6e"):
        assert solver.accelerator(name).grouped_gemm_tile_tokens == 512.0
    assert solver.accelerator("h100-sxm5-80gb").grouped_gemm_tile_tokens is None
