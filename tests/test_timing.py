"""Time of one step (``solver/stepmodel/timing.py``) against figures worked out by hand.

The accelerator is conftest's made-up ``test-gpu`` (BF16 100 TFLOP/s, FP8 200, matmul
efficiency 0.80 at both, HBM 1000 GB/s, scale-up 100 GB/s in domains of 8, one 10 GB/s NIC per
accelerator) and the calibration ``PLAIN`` below (matmul_scale 1, no per-layer overhead, no
elementwise traffic, collectives at the link rate, no latency), so that every number is plain
arithmetic. The rates: BF16 matmuls 100e12 * 0.8 = 8e13 FLOP/s, FP8 matmuls 1.6e14; flash
attention as fast as the matmuls (attention_scale 1).

The model (``calc``): 4 layers, h = 1024, 8 heads of 128, ffn 4096, V = 1000, s = 1024, RMSNorm,
no biases, RoPE, untied. Per token, forward:
  layer matmuls 2 * (4h^2 + 2hf) = 2 * (4,194,304 + 8,388,608) = 25,165,824 FLOPs
  attention scores 2 * s * heads * 2 * 128 = 4,194,304 FLOPs (causal: flash attention does half)
  LM head 2 * 1024 * 1000 = 2,048,000 FLOPs
One micro-batch of 1024 tokens on one accelerator, one forward pass:
  layer matmuls 1024 * 25,165,824 / 8e13 = 3.2212254720e-4 s (weights read: 25,169,920 bytes
    / 1e12 = 2.5e-5 s, so compute-bound)
  scores 1024 * 4,194,304 * 0.5 / 8e13 = 2.68435456e-5 s
  one layer: forward F = matmuls + scores, input-gradient B = matmuls + 2.5 * scores
    (FlashAttention's backward recomputes QK^T and runs four gradient products, five matmuls
    against the forward's two: Dao 2023, arXiv:2307.08691, Algorithm 2), weight-gradient
    W = matmuls (Qi et al. 2024, arXiv:2401.10241, Table 1; ``compute.py``):
    F + B + W = 3 * 3.2212254720e-4 + 3.5 * 2.68435456e-5 = 9.6636764160e-4 + 9.395240960e-5
    = 1.06032005120e-3 s; of it forward 3.4896609280e-4, B + W 7.1135395840e-4
  LM head 1024 * 2,048,000 / 8e13 = 2.62144e-5 s, 3 passes 7.86432e-5 s; its FP32 logits read
    and written: 3 passes * 4 bytes * 1024 * 1000 * 2 / 1e12 = 2.4576e-5 s
Parameters: a layer 4,194,304 + 8,388,608 + 2 * 1024 = 12,584,960; embedding and LM head
1,024,000 each; one replica (pp = 1) 4 * 12,584,960 + 2,048,000 = 52,387,840.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import solver
from solver.stepmodel.arrays import LayoutArrays
from solver.stepmodel.calibration import Calibration
from solver.stepmodel.compute import head_width_factor
from solver.stepmodel.memory import memory, stage_activation_bytes
from solver.stepmodel.pipeline import Stage
from solver.stepmodel.shape import job_shape

PLAIN = Calibration(matmul_scale=1.0, attention_scale=1.0, layer_overhead_s=0.0,
                    step_overhead_s=0.0, elementwise_traffic=0.0, scaleup_bus_efficiency=1.0,
                    scaleout_bus_efficiency=1.0, dp_overlap=0.5, dp_contention=0.0,
                    zero3_exposed_deepspeed=0.0,
                    zero3_bandwidth_deepspeed=1.0,
                    latency_scaleup_s=0.0, latency_scaleout_s=0.0)

def single_nodes(gpu: solver.Accelerator) -> solver.Accelerator:
    """``gpu`` with a scale-up domain of one: every data-parallel ring runs over one NIC per
    rank (the test accelerator's 10 GB/s), whatever the group."""
    return dataclasses.replace(gpu, scaleup_domain=1)


LAYER_3_PASSES = 1.06032005120e-3
HEAD_3_PASSES = 7.86432e-5
LOGITS = 2.4576e-5
REPLICA_PARAMS = 52_387_840


def calc(seq_len: int = 1024) -> solver.ModelSpec:
    return solver.ModelSpec(name="calc", layers=4, hidden=1024, heads=8, ffn_hidden=4096,
                            vocab=1000, seq_len=seq_len, norm="rmsnorm", linear_bias=False,
                            position_embedding="rope")


def run(gpu: solver.Accelerator, *, global_batch: int = 1, seq_len: int = 1024,
        precision: str = "bf16", cal: Calibration = PLAIN, job_fields: dict[str, object]
        | None = None, **layout: object) -> solver.Estimate:
    job = solver.TrainingJob(model=calc(seq_len), tokens=1e9, global_batch=global_batch,
                             precision=precision, **(job_fields or {}))  # type: ignore[arg-type]
    return solver.evaluate(job, solver.Layout(accelerator="test-gpu", **layout),  # type: ignore
                           accelerator=gpu, calibration=cal)


def test_one_accelerator_is_layers_plus_lm_head(test_gpu: solver.Accelerator) -> None:
    # 4 layers * 1.06032005120e-3 + LM head 7.86432e-5 = 4.31992340480e-3 s of matmuls,
    # plus the logits' memory traffic 2.4576e-5 s.
    t = run(test_gpu, tp=1, pp=1, dp=1).time_breakdown_s
    assert t["compute"] == pytest.approx(4 * LAYER_3_PASSES + HEAD_3_PASSES, rel=1e-12)
    assert t["memory_bound"] == pytest.approx(LOGITS, rel=1e-12)


def test_optimizer_step_is_its_bytes_plus_a_fixed_cost(test_gpu: solver.Accelerator) -> None:
    # One replica, ZeRO-0: the Adam step reads and writes 30 bytes per parameter
    # (OPTIMIZER_STEP_BYTES, the FP32 gradient read at 4): 30 * 52,387,840 / 1e12 =
    # 1.5716352e-3 s at 1000 GB/s. The fixed cost of a step (step_overhead_s; 0.1 s here)
    # adds to it whatever the model's size or the number of micro-batches.
    plain = run(test_gpu, tp=1, pp=1, dp=1).time_breakdown_s
    fixed = dataclasses.replace(PLAIN, step_overhead_s=0.1)
    one = run(test_gpu, cal=fixed, tp=1, pp=1, dp=1).time_breakdown_s
    eight = run(test_gpu, cal=fixed, global_batch=8, tp=1, pp=1, dp=1).time_breakdown_s
    assert plain["optimizer"] == pytest.approx(1.5716352e-3, rel=1e-12)
    assert one["optimizer"] == pytest.approx(0.1 + 1.5716352e-3, rel=1e-12)
    assert eight["optimizer"] == pytest.approx(0.1 + 1.5716352e-3, rel=1e-12)


def test_interleaved_bubble_and_uneven_last_stage(test_gpu: solver.Accelerator) -> None:
    # pp = 2, 8 micro-batches. Each stage runs 2 layers; the last also runs the LM head, so it
    # is the slower one and sets the pace (uneven first/last stages):
    #   2 * 1.06032005120e-3 + 7.86432e-5 = 2.19928330240e-3 s matmuls, + 2.4576e-5 logits
    #   = 2.22385930240e-3 s per micro-batch
    # Pipeline sends: 2 bytes * 1024 * 1024 = 2,097,152 bytes over NVLink (span 2 <= 8):
    #   2,097,152 / 1e11 = 2.097152e-5 s, one each way per chunk: 2 * v of them.
    # 1F1B (v = 1): one micro-batch 2.22385930240e-3 + 4.194304e-5 = 2.26580234240e-3 s;
    #   bubble (p-1)/v = 1 of them (Narayanan et al. 2021 sec. 2.2).
    # Interleaved, v = 2 (one layer per chunk): sends double, 8.388608e-5 s;
    #   one micro-batch 2.22385930240e-3 + 8.388608e-5 = 2.30774538240e-3 s, bubble 1/2 of
    #   it = 1.15387269120e-3 s.
    plain = run(test_gpu, global_batch=8, tp=1, pp=2, dp=1).time_breakdown_s
    interleaved = run(test_gpu, global_batch=8, tp=1, pp=2, dp=1, vp=2).time_breakdown_s
    assert plain["compute"] == pytest.approx(8 * 2.19928330240e-3, rel=1e-12)
    assert plain["pp_comm"] == pytest.approx(8 * 4.194304e-5, rel=1e-12)
    assert plain["bubble"] == pytest.approx(2.26580234240e-3, rel=1e-12)
    assert interleaved["pp_comm"] == pytest.approx(8 * 8.388608e-5, rel=1e-12)
    assert interleaved["bubble"] == pytest.approx(1.15387269120e-3, rel=1e-12)
    # Interleaving needs a multiple of p micro-batches per step (Narayanan et al. sec. 2.2.2;
    # Megatron-LM ``schedules.py``): one micro-batch with pp = 2, vp = 2 is refused.
    with pytest.raises(solver.SpecError, match="schedule"):
        run(test_gpu, global_batch=1, tp=1, pp=2, dp=1, vp=2)


def test_context_parallel_ring_exchange_and_its_overlap(test_gpu: solver.Accelerator) -> None:
    # cp = 2: each rank holds 512 tokens and passes its K and V (2 * 8 * 128 = 2048 wide) once
    # around the ring: 2 bytes * 512 * 2048 = 2,097,152 bytes / 1e11 = 2.097152e-5 s per
    # layer forward, twice that in backward (Liu et al. 2023, ring attention). It runs under
    # the local attention scores, 512 * 4,194,304 * 0.5 / 8e13 = 1.34217728e-5 s forward and
    # 2.5 times that, 3.3554432e-5 s, backward (flash attention's recomputation):
    #   forward exposed 2.097152e-5 - 1.34217728e-5 = 7.5497472e-6 s,
    #   backward exposed 2 * 2.097152e-5 - 3.3554432e-5 = 8.388608e-6 s,
    #   1.59383552e-5 s per layer, * 4 layers = 6.37534208e-5 s.
    # At s = 4096 the scores (2048 tokens * 2*4096*8*256 * 0.5 / 8e13 = 2.147e-4 s forward,
    # 5.369e-4 s backward) outlast the exchange (8.389e-5 s, 1.678e-4 s): nothing is exposed.
    short = run(test_gpu, tp=1, pp=1, dp=1, cp=2).time_breakdown_s
    long = run(test_gpu, seq_len=4096, tp=1, pp=1, dp=1, cp=2).time_breakdown_s
    assert short["cp_comm"] == pytest.approx(6.37534208e-5, rel=1e-12)
    assert long["cp_comm"] == 0.0


def test_zero3_gathers_hide_under_each_pass(test_gpu: solver.Accelerator) -> None:
    # dp = 16 on nodes of one accelerator (``single_nodes``: each rank's traffic leaves through
    # its own 10 GB/s NIC), ZeRO-3, one micro-batch.
    # Per micro-batch (Rajbhandari et al. 2020; FSDP): gather the BF16 weights before the
    # forward and again before the backward, reduce-scatter the FP32 gradients after it:
    #   gather 15/16 * 2 * 52,387,840 / 1e10 = 9.82272e-3 s
    #   scatter 15/16 * 4 * 52,387,840 / 1e10 = 1.964544e-2 s
    # Kernel time, the LM head's passes with their logits (2.62144e-5 + 8.192e-6 = 3.44064e-5
    # s each):
    #   forward 4 * 3.4896609280e-4 + 3.44064e-5 = 1.43027077120e-3 s
    #   backward 4 * 7.1135395840e-4 + 2 * 3.44064e-5 = 2.84541583360e-3 + 6.88128e-5
    #   = 2.91422863360e-3 s
    # With dp_overlap 0.5:
    #   forward exposed 9.82272e-3 - 0.5 * 1.43027077120e-3 = 9.10758461440e-3
    #   backward exposed 2.946816e-2 - 0.5 * 2.91422863360e-3 = 2.80110456832e-2
    #   dp_comm 3.71186302976e-2 s
    t = run(single_nodes(test_gpu), global_batch=16, tp=1, pp=1, dp=16,
            zero_stage=3).time_breakdown_s
    assert t["dp_comm"] == pytest.approx(3.71186302976e-2, rel=1e-12)


def test_deepspeed_zero3_is_slower_and_leaves_a_fraction_of_its_traffic_exposed(
        test_gpu: solver.Accelerator) -> None:
    # The ZeRO-3 case above with dp_overlap 1:
    #   FSDP (the default): forward 9.82272e-3 - 1.43027077120e-3 = 8.39244922880e-3,
    #     backward 2.946816e-2 - 2.91422863360e-3 = 2.65539313664e-2; 3.49463805952e-2 s
    #   DeepSpeed with zero3_exposed_deepspeed 0.95 (bandwidth 1): at least 0.95 of each
    #     pass's traffic stays exposed:
    #     max(0.95 * 9.82272e-3, 8.39244922880e-3) = 9.331584e-3,
    #     max(0.95 * 2.946816e-2, 2.65539313664e-2) = 2.7994752e-2; 3.7326336e-2 s
    #   DeepSpeed with zero3_bandwidth_deepspeed 0.5 (no floor): the traffic takes twice as
    #     long: 1.964544e-2 - 1.43027077120e-3 = 1.821516922880e-2,
    #     5.893632e-2 - 2.91422863360e-3 = 5.602209136640e-2; 7.423726059520e-2 s
    cal = dataclasses.replace(PLAIN, dp_overlap=1.0, zero3_exposed_deepspeed=0.95)
    slow = dataclasses.replace(PLAIN, dp_overlap=1.0, zero3_bandwidth_deepspeed=0.5)
    layout = {"global_batch": 16, "tp": 1, "pp": 1, "dp": 16, "zero_stage": 3}
    deepspeed = {"zero3_impl": "deepspeed"}
    fsdp = run(single_nodes(test_gpu), cal=cal, **layout).time_breakdown_s  # type: ignore[arg-type]
    floored = run(single_nodes(test_gpu), cal=cal, job_fields=deepspeed,
                  **layout).time_breakdown_s  # type: ignore[arg-type]
    slower = run(single_nodes(test_gpu), cal=slow, job_fields=deepspeed,
                 **layout).time_breakdown_s  # type: ignore[arg-type]
    assert fsdp["dp_comm"] == pytest.approx(3.49463805952e-2, rel=1e-12)
    assert floored["dp_comm"] == pytest.approx(3.7326336e-2, rel=1e-12)
    assert slower["dp_comm"] == pytest.approx(7.423726059520e-2, rel=1e-12)
    fsdp_slow = run(single_nodes(test_gpu), cal=slow, **layout).time_breakdown_s  # type: ignore[arg-type]
    assert fsdp_slow["dp_comm"] == pytest.approx(3.49463805952e-2, rel=1e-12)


def test_flash_attention_runs_at_its_own_efficiency(test_gpu: solver.Accelerator) -> None:
    # attention_scale 0.5: flash attention at 100e12 * 0.8 * 0.5 = 4e13 FLOP/s, the causal
    # half of the scores: 1024 * 4,194,304 * 0.5 / 4e13 = 5.36870912e-5 s per forward, 2.5
    # times that backward (it recomputes QK^T: five matmuls against the forward's two):
    #   per layer 3 * 3.2212254720e-4 + 3.5 * 5.36870912e-5 = 9.6636764160e-4
    #   + 1.879048192e-4 = 1.15427246080e-3 s
    #   compute 4 * 1.15427246080e-3 + 7.86432e-5 = 4.69573304320e-3 s.
    # Without flash attention the scores are batched GEMMs at the matmul rate, causal mask or
    # not: 1024 * 4,194,304 / 8e13 = 5.36870912e-5 s forward, the same as flash attention's by
    # another road, but the stored scores spare the recomputation: backward twice the forward,
    #   per layer 3 * (3.2212254720e-4 + 5.36870912e-5) = 1.12742891520e-3 s
    #   compute 4 * 1.12742891520e-3 + 7.86432e-5 = 4.58835886080e-3 s,
    # 4 * 0.5 * 5.36870912e-5 = 1.073741824e-4 s less than with flash attention.
    cal = dataclasses.replace(PLAIN, attention_scale=0.5)
    flash = run(test_gpu, tp=1, pp=1, dp=1, cal=cal).time_breakdown_s
    unfused = run(test_gpu, tp=1, pp=1, dp=1, cal=cal,
                  job_fields={"flash_attention": False}).time_breakdown_s
    assert flash["compute"] == pytest.approx(4.69573304320e-3, rel=1e-12)
    assert unfused["compute"] == pytest.approx(4.58835886080e-3, rel=1e-12)


def test_gradient_reduction_overlap_is_a_fact_of_the_run(test_gpu: solver.Accelerator) -> None:
    # ZeRO-1, dp = 16: at the end of the step reduce-scatter the FP32 gradients,
    # 15/16 * 4 * 52,387,840 / 1e10 = 1.964544e-2 s, and after the optimizer all-gather the
    # BF16 weights, 15/16 * 2 * 52,387,840 / 1e10 = 9.82272e-3 s. Bucketed
    # (grad_reduce_overlap, the default) the reduce-scatter hides under half the last
    # backward and the gather under half the next step's first forward:
    #   (1.964544e-2 - 0.5 * 2.91422863360e-3) + (9.82272e-3 - 0.5 * 1.43027077120e-3)
    #   = 1.818832568320e-2 + 9.10758461440e-3 = 2.729591029760e-2 s;
    # after the backward (Megatron-LM 2021's local DDP) all of it is exposed, 2.946816e-2 s.
    overlapped = run(single_nodes(test_gpu), global_batch=16, tp=1, pp=1, dp=16, zero_stage=1)
    serial = run(single_nodes(test_gpu), global_batch=16, tp=1, pp=1, dp=16, zero_stage=1,
                 job_fields={"grad_reduce_overlap": False})
    assert overlapped.time_breakdown_s["dp_comm"] == pytest.approx(2.729591029760e-2, rel=1e-12)
    assert serial.time_breakdown_s["dp_comm"] == pytest.approx(2.946816e-2, rel=1e-12)


def test_one_backward_never_hides_two_transfers(test_gpu: solver.Accelerator) -> None:
    # ZeRO-2, dp = 16, one micro-batch, dp_overlap 1: the per-micro-batch reduce-scatter
    # (1.964544e-2 s) already exceeds the backward (2.91422863360e-3 s), so nothing of the
    # backward is left for anything else; the weight gather after the optimizer (9.82272e-3)
    # hides under the next forward (1.43027077120e-3):
    #   (1.964544e-2 - 2.91422863360e-3) + (9.82272e-3 - 1.43027077120e-3)
    #   = 1.673121136640e-2 + 8.39244922880e-3 = 2.512366059520e-2 s.
    cal = dataclasses.replace(PLAIN, dp_overlap=1.0)
    t = run(single_nodes(test_gpu), global_batch=16, tp=1, pp=1, dp=16, zero_stage=2,
            cal=cal).time_breakdown_s
    assert t["dp_comm"] == pytest.approx(2.512366059520e-2, rel=1e-12)


def test_bf16_gradients_halve_memory_and_gradient_traffic(test_gpu: solver.Accelerator) -> None:
    # grad_dtype "bf16" (NeMo's grad_sync_dtype=bf16): 2 bytes per gradient.
    # ZeRO-1, dp = 16, reduced after the backward: reduce-scatter 2-byte gradients and gather
    # 2-byte weights: 15/16 * (2 + 2) * 52,387,840 / 1e10 = 1.964544e-2 s (FP32: 2.946816e-2).
    # Gradients held (ZeRO-1 leaves them whole): 2 * 52,387,840 = 104,775,680 bytes
    # = 0.09758... GiB (FP32: 209,551,360).
    fields = {"grad_reduce_overlap": False, "grad_dtype": "bf16"}
    bf16 = run(single_nodes(test_gpu), global_batch=16, tp=1, pp=1, dp=16, zero_stage=1,
               job_fields=fields)
    assert bf16.time_breakdown_s["dp_comm"] == pytest.approx(1.964544e-2, rel=1e-12)
    assert bf16.memory_breakdown_gib["gradients"] == pytest.approx(104_775_680 / 2**30,
                                                                   rel=1e-12)
    fp32 = run(single_nodes(test_gpu), global_batch=16, tp=1, pp=1, dp=16, zero_stage=1,
               job_fields={"grad_reduce_overlap": False})
    assert fp32.memory_breakdown_gib["gradients"] == pytest.approx(209_551_360 / 2**30,
                                                                   rel=1e-12)


def test_tensor_parallel_overlap_hides_collectives_under_gemms(
        test_gpu: solver.Accelerator) -> None:
    # tp = 2 with sequence parallelism (Korthikanti et al. 2022 sec. 4.2.2; ``tensor.py``).
    # Each collective moves the full 2 * 1024 * 1024 = 2,097,152 bytes, 1/2 of it crossing
    # NVLink: 1,048,576 / 1e11 = 1.048576e-5 s. Per layer and micro-batch:
    #   forward: 2 all-gathers + 2 reduce-scatters, exposed: 4
    #   backward: 2 all-gathers of the output gradients, exposed: 2
    #   backward: 2 all-gathers + 2 reduce-scatters under the backward GEMMs: 4 hidden (the
    #     layer's B + W matmuls, 2 * 1024 * 25,165,824 / 2 / 8e13 = 3.2212254720e-4 s, last
    #     far longer than 4 * 1.048576e-5 = 4.194304e-5 s)
    #   exposed 6 * 1.048576e-5 = 6.291456e-5 s per layer, * 4 layers = 2.5165824e-4 s.
    # Overlapped (Transformer Engine userbuffers) every collective hides under the layers'
    # GEMMs (about 2.1e-3 s here): nothing exposed.
    serial = run(test_gpu, tp=2, pp=1, dp=1).time_breakdown_s
    overlapped = run(test_gpu, tp=2, pp=1, dp=1, job_fields={"tp_comm_overlap": True})
    assert serial["tp_comm"] == pytest.approx(2.5165824e-4, rel=1e-12)
    assert overlapped.time_breakdown_s["tp_comm"] == 0.0


def test_fp8_runs_linear_layers_at_the_fp8_rate(test_gpu: solver.Accelerator) -> None:
    # FP8 linear layers at 200e12 * 0.8 = 1.6e14: 1024 * 25,165,824 / 1.6e14 = 1.6106127360e-4
    # s; the attention scores and the LM head stay BF16 (2.68435456e-5, 2.62144e-5 s).
    #   per layer 3 * 1.6106127360e-4 + 3.5 * 2.68435456e-5 = 4.8318382080e-4 + 9.395240960e-5
    #   = 5.7713623040e-4 s
    #   compute 4 * 5.7713623040e-4 + 7.86432e-5 = 2.38718812160e-3 s
    # MFU is against the FP8 peak.
    est = run(test_gpu, precision="fp8", tp=1, pp=1, dp=1)
    assert est.time_breakdown_s["compute"] == pytest.approx(2.38718812160e-3, rel=1e-12)
    flops = est.model_tflops_per_gpu * 1e12
    assert est.mfu == pytest.approx(flops / 200e12, rel=1e-12)


def test_fp8_memory_saves_linear_inputs_and_caches_fp8_weights() -> None:
    # Korthikanti's 34 bytes per token over h, FP8: QKV input, projection input, MLP input in
    # 1 byte instead of 2, the down-projection input f/h = 4 in 1 byte instead of 2:
    #   34 - 1 - 1 - 1 - 4 = 27; a layer of 1024 tokens: 27 * 1024 * 1024 = 28,311,552 bytes
    #   (BF16: 34 * 1024 * 1024 = 35,651,584).
    # Weights: BF16 2 bytes each (104,775,680), and for the linear layers' 52,387,840
    #   - 2 * 1000 * 1024 = 50,339,840 (the embedding and LM head are not FP8) an FP8 copy and
    #   its transpose (Hopper's TN-only FP8 GEMMs, the default without a hardware table):
    #   104,775,680 + 2 * 50,339,840 = 205,455,360.
    x = LayoutArrays.from_columns(accel=[0], tp=1, pp=1, dp=1, cp=1, ep=1, vp=1, mb=1, nmb=1,
                                  zero=0, recompute=0, schedule=0, split=0)
    shapes = {p: job_shape(solver.TrainingJob(model=calc(), tokens=1e9, precision=p,
                                              dropout=0.1))  # Korthikanti's masks
              for p in ("bf16", "fp8")}
    one = np.array([1])
    none = np.array([0])
    yes = np.array([True])
    layer = Stage(dense=one, moe=none, mtp=none, embedding=yes, head=yes)
    assert stage_activation_bytes(shapes["bf16"], x, layer).tolist() == [35_651_584]
    assert stage_activation_bytes(shapes["fp8"], x, layer).tolist() == [28_311_552]
    assert memory(shapes["bf16"], x).weights.tolist() == [2 * REPLICA_PARAMS]
    assert memory(shapes["fp8"], x).weights.tolist() == [205_455_360]
    # ZeRO-3 gathers weights layer by layer: no FP8 copy persists.
    z3 = dataclasses.replace(x, dp=x.dp * 2, zero=x.zero + 3)
    assert memory(shapes["fp8"], z3).weights.tolist() == [REPLICA_PARAMS]


def test_hidden_data_parallel_traffic_takes_compute_units(test_gpu: solver.Accelerator) -> None:
    # The ZeRO-3 case of test_zero3_gathers_hide_under_each_pass with dp_contention 0.25:
    # what hides, 0.5 * 1.43027077120e-3 (forward) + 0.5 * 2.91422863360e-3 (backward)
    #   = 2.17224970240e-3 s, runs beside the kernels and takes a quarter of the compute units:
    #   + 0.25 * 2.17224970240e-3 = 5.4306242560e-4 s
    #   dp_comm 3.71186302976e-2 + 5.4306242560e-4 = 3.76616927232e-2 s
    layout = {"global_batch": 16, "tp": 1, "pp": 1, "dp": 16, "zero_stage": 3}
    cal = dataclasses.replace(PLAIN, dp_contention=0.25)
    t = run(single_nodes(test_gpu), cal=cal, **layout).time_breakdown_s  # type: ignore[arg-type]
    assert t["dp_comm"] == pytest.approx(3.76616927232e-2, rel=1e-12)
    # On a family whose collectives run on their own engines (Gaudi's on-chip RoCE) nothing
    # is added.
    gaudi_like = dataclasses.replace(single_nodes(test_gpu), family="intel-gaudi")
    t = run(gaudi_like, cal=cal, **layout).time_breakdown_s  # type: ignore[arg-type]
    assert t["dp_comm"] == pytest.approx(3.71186302976e-2, rel=1e-12)


def test_attention_rate_follows_the_head_width() -> None:
    """A fused attention kernel spends one exponential per score beside its ``2 (d_qk + d_v)``
    matmul FLOPs; an exponential costs 989 / 3.9 = 253.59 matmul FLOPs on the H100
    (FlashAttention-3 sec. 3.1: 989 TFLOP/s of matmul, 3.9 of special functions)."""
    # Useful share per score: head 64: 256 / (256 + 253.59) = 0.50236;
    #   head 128: 512 / 765.59 = 0.66877; head 256: 1024 / 1277.59 = 0.80151.
    # Over head 128: 0.75118 and 1.19849.
    assert head_width_factor(2 * (64 + 64)) == pytest.approx(0.75118, rel=1e-4)
    assert head_width_factor(2 * (128 + 128)) == 1.0
    assert head_width_factor(2 * (256 + 256)) == pytest.approx(1.19849, rel=1e-4)
    # FlashAttention-3's published forward speeds on the H100 at sequence 16K (its Figure 5):
    # 497, 648 and 756 TFLOP/s at heads 64, 128, 256: 0.767 and 1.167 of head 128, within 4%.
    assert head_width_factor(256) == pytest.approx(497 / 648, rel=0.04)
    assert head_width_factor(1024) == pytest.approx(756 / 648, rel=0.04)
    # DeepSeek-V3's MLA scores: d_qk = 128 + 64 (RoPE), d_v = 128: 640 FLOPs,
    #   640 / 893.59 = 0.71621 over 0.66877 = 1.07095.
    assert head_width_factor(2 * (192 + 128)) == pytest.approx(1.07095, rel=1e-4)
