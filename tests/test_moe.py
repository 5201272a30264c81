"""Mixture-of-experts in the step model, against figures worked out by hand.

Every expected number is a literal computed on paper from the shapes and the conventions of
``docs/model.md`` (the arithmetic is in the comments), not taken from ``solver``'s output.
"""

from __future__ import annotations

import pytest

import solver
from solver.stepmodel.arrays import LayoutArrays
from solver.stepmodel.calibration import Calibration
from solver.stepmodel.flops import layer_flops, step_flops
from solver.stepmodel.memory import GIB, memory, stage_params
from solver.stepmodel.shape import job_shape

#: Round-number calibration for hand arithmetic: collectives at the full link rate, no latency.
PLAIN = Calibration(matmul_scale=1.0, attention_scale=1.0, layer_overhead_s=0.0,
                    elementwise_traffic=0.0, scaleup_bus_efficiency=1.0,
                    scaleout_bus_efficiency=1.0, dp_overlap=0.0, zero3_exposed_deepspeed=0.0,
                    zero3_bandwidth_deepspeed=1.0,
                    latency_scaleup_s=0.0, latency_scaleout_s=0.0)


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


def test_dense_first_layers_and_expert_memory_on_the_most_loaded_stage() -> None:
    # 4 layers, the first dense (DeepSeek-V3's first_k_dense_replace), pp=2: the most loaded
    # stage holds ceil(4/2) = 2 layers, MoE layers first (they are larger): 2 MoE, 0 dense.
    # Its routed experts, split by tp*ep = 1*4: 2 layers * 8 * 24,576 / 4 = 98,304.
    # With pp=1 all 4 layers: 3 MoE + 1 dense; experts 3 * 8 * 24,576 / 4 = 147,456.
    js = job_shape(solver.TrainingJob(model=tiny_moe(layers=4, dense_layers=1), tokens=1e9))
    x = LayoutArrays.from_columns(accel=[0, 0], tp=1, pp=[2, 1], dp=4, cp=1, ep=4, vp=1, mb=1,
                                  nmb=8, zero=0, recompute=0)
    sp = stage_params(js, x)
    assert sp.layers_on_stage.tolist() == [2, 4]
    assert sp.moe_on_stage.tolist() == [2, 3]
    assert sp.experts.tolist() == [98_304, 147_456]


def test_deepseek_v3_memory_pp16_ep64_on_2048_h800() -> None:
    """DeepSeek-V3 as DeepSeek-AI trained it (arXiv:2412.19437 sec. 3.2: 2048 H800, 16-way
    pipeline, 64-way expert parallelism over 8 nodes, ZeRO-1 data parallelism, no tensor
    parallelism, FP8): TP1 PP16 DP128 (1*16*1*128 = 2048 GPUs; ep 64 divides dp*cp = 128),
    micro-batch 1 of 4096 tokens, global batch 15,360 sequences (m = 15,360/128 = 120),
    full recomputation.

    Parameters (solver/presets/deepseek-v3.toml, worked there): one MoE layer without its
    routed experts = attention 187,107,328 + norms 14,336 + router 1,835,008 + shared expert
    44,040,192 = 232,996,864; one routed expert 3*7168*2048 = 44,040,192; embedding and LM
    head 129,280*7168 = 926,679,040 each.

    The most loaded stage holds ceil(61/16) = 4 layers, all MoE:
      replicated: 4 * 232,996,864 + 926,679,040 (embedding) = 1,858,666,496
                  (the last stage's 4 layers + LM head is the same number)
      routed experts: 4 layers * 256 / ep 64 = 16 experts * 44,040,192 = 704,643,072
      held: 1,858,666,496 + 704,643,072 = 2,563,309,568 parameters
    Model states (ZeRO-1 over dp*cp = 128; expert states over 128/64 = 2):
      weights 2 bytes + FP8 copy and transpose 2 bytes: 4 * 2,563,309,568 = 10,253,238,272
      gradients 4 bytes:                               4 * 2,563,309,568 = 10,253,238,272
      optimizer 12 * (1,858,666,496/128 + 704,643,072/2)
              = 12 * (14,520,832 + 352,321,536) = 12 * 366,842,368 =  4,402,108,416
    Activations (first stage, 1F1B: min(p, m) = 16 micro-batches in flight):
      checkpoints 2 bytes * 4096 * 7168 = 58,720,256 per layer; 4 layers * 16 = 3,758,096,384
      one MoE layer recomputed, bytes per token (FP8 keeps linear inputs in 1 byte):
        attention (MLA, q = k = 128*192 = 24,576 wide, v = 128*128 = 16,384):
          QKV input 7,168 + Q 2*24,576 + K 2*24,576 + V 2*16,384 + projection input 24,576
          + dropout mask 7,168 = 169,984
        experts: 8 routed + 1 shared, each: input 7,168 + mask 7,168 + gate and up 4*2,048
          + down input 2,048 = 24,576 -> 9 * 24,576 = 221,184; FP32 router logits 4*256 = 1,024
        norms 4 * 7,168 = 28,672
        total 169,984 + 221,184 + 1,024 + 28,672 = 420,864 -> * 4096 = 1,723,858,944
      = 3,758,096,384 + 1,723,858,944 = 5,481,955,328
      (the last stage: 58,720,256 * 4 + 1,723,858,944 + FP32 logits 4*4096*129,280
       = 234,881,024 + 1,723,858,944 + 2,118,123,520 = 4,076,863,488: less; same states)
    Buffers: NCCL 536,870,912 + pipeline send/receive 2 * 2*4096*7168 = 117,440,512
      = 654,311,424
    Allocated: 10,253,238,272 * 2 + 4,402,108,416 + 5,481,955,328 + 654,311,424
      = 31,044,851,712; reserve 1,073,741,824 + 5% = 1,073,741,824 + 1,552,242,585.6
      = 2,625,984,409.6; total 33,670,836,121.6 bytes = 31.36 GiB of 80.
    """
    job = solver.TrainingJob(model=solver.model("deepseek-v3"), tokens=14.8e12,
                             global_batch=15_360, seq_len=4096, precision="fp8")
    layout = solver.Layout(accelerator="h800", tp=1, pp=16, dp=128, ep=64, micro_batch=1,
                           zero_stage=1, recompute="full")
    assert layout.gpus == 2048
    x = LayoutArrays.from_layouts([layout], [120], {"h800": 0})
    mem = memory(job_shape(job), x)
    assert mem.weights.tolist() == [10_253_238_272]
    assert mem.gradients.tolist() == [10_253_238_272]
    assert mem.optimizer.tolist() == [4_402_108_416]
    assert mem.activations.tolist() == [5_481_955_328]
    assert mem.buffers.tolist() == [654_311_424]
    assert mem.total.tolist() == pytest.approx([33_670_836_121.6], rel=1e-12)
    est = solver.evaluate(job, layout)
    assert est.memory_gib_per_gpu == pytest.approx(33_670_836_121.6 / GIB, rel=1e-12)
    assert est.fits
    assert est.layout.ep == 64 and est.time_breakdown_s["ep_comm"] > 0


# ------------------------------------------------------------------------------ time


def moe_estimate(gpu: solver.Accelerator, *, ep: int, dp: int, tp: int = 1,
                 capacity: float = 1.0) -> solver.Estimate:
    job = solver.TrainingJob(model=tiny_moe(capacity=capacity), tokens=1e9, global_batch=dp)
    return solver.evaluate(job, solver.Layout(accelerator="test-gpu", tp=tp, pp=1, dp=dp,
                                              ep=ep), accelerator=gpu, calibration=PLAIN)


def test_dispatch_and_combine_all_to_all_on_the_right_fabric(
        test_gpu: solver.Accelerator) -> None:
    # Per MoE layer and pass, a dispatch and a combine all-to-all (GShard), each rank sending
    # 2 bytes * 128 tokens * top_k 2 * h 64 = 32,768 bytes, of which (n-1)/n leave the rank.
    # Passes: forward, backward (twice the traffic) = 3. Two MoE layers, one micro-batch.
    # ep=4 (span 4 <= 8: scale-up, 100 GB/s): 3/4 * 32,768 / 1e11 = 2.4576e-7 s
    #   ep_comm = 2 layers * 3 passes * 2 * 2.4576e-7 = 2.94912e-6 s
    # tp=2, ep=8: the expert group spans tp*ep = 16 > 8 accelerators, so its bottleneck is one
    # NIC (10 GB/s); with sequence parallelism each rank holds 128/2 tokens' worth:
    #   32,768 / 2 = 16,384 bytes; 7/8 * 16,384 / 1e10 = 1.4336e-6 s
    #   ep_comm = 12 * 1.4336e-6 = 1.72032e-5 s
    inside = moe_estimate(test_gpu, ep=4, dp=4)
    outside = moe_estimate(test_gpu, ep=8, dp=8, tp=2)
    assert inside.time_breakdown_s["ep_comm"] == pytest.approx(2.94912e-6, rel=1e-12)
    assert outside.time_breakdown_s["ep_comm"] == pytest.approx(1.72032e-5, rel=1e-12)


def test_expert_all_to_all_overlapped_with_computation(test_gpu: solver.Accelerator) -> None:
    # ep_comm_overlap (DualPipe): the dispatch and combine of the ep=4 case above, 2.94912e-6 s,
    # run under the micro-batch's computation. By hand (rate 8e13 FLOP/s, HBM 1e12 B/s):
    #   non-expert matmuls (attention 16,384 + router 512 weights): 128 tokens * 2 * 16,896
    #     FLOPs / 8e13 = 5.40672e-8 s (weights 17,024 * 2 B / 1e12 = 3.4048e-8 s: compute-bound)
    #   routed experts: 128 * top-2 * 2 * 24,576 / 8e13 = 1.572864e-7 s (the 8/4 = 2 local
    #     experts' weights, 2 * 24,576 * 2 B / 1e12 = 9.8304e-8 s: compute-bound)
    #   scores: 128 * (4 * 128 * 4 * 16) * 0.5 (causal) / 8e13 = 2.62144e-8 s
    #   2 layers * 3 passes * (5.40672e-8 + 1.572864e-7 + 2.62144e-8) = 1.4254080e-6 s
    # exposed: 2.94912e-6 - 1.4254080e-6 = 1.5237120e-6 s.
    job = solver.TrainingJob(model=tiny_moe(), tokens=1e9, global_batch=4, ep_comm_overlap=True)
    est = solver.evaluate(job, solver.Layout(accelerator="test-gpu", tp=1, pp=1, dp=4, ep=4),
                          accelerator=test_gpu, calibration=PLAIN)
    assert est.time_breakdown_s["ep_comm"] == pytest.approx(1.5237120e-6, rel=1e-12)


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
    ("deepseek-v3", "h800", dict(tp=1, pp=16, dp=128, ep=64, zero_stage=1, recompute="full"),
     15_360),
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
