"""Memory of modern training recipes, against values worked out by hand: dropout masks or none,
FP8 weights and their transposed copies per accelerator family, the allocator's reserve,
DeepSpeed's live-parameter cap under ZeRO-3, and activations offloaded to host memory.

The models are those of ``test_memory.py`` (their parameters counted there); every expected
number is written out below from the shapes and the rules each docstring cites.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import solver
from solver.stepmodel.arrays import HardwareTable
from solver.stepmodel.memory import memory, stage_activation_bytes
from solver.stepmodel.offload import offload_exposed
from solver.stepmodel.pipeline import Stage
from tests.test_memory import LayoutFactory, shape_of, tiny_dense


def one_dense_layer() -> Stage:
    one, none, no = np.array([1]), np.array([0]), np.array([False])
    return Stage(dense=one, moe=none, mtp=none, embedding=no, head=no)


@pytest.mark.parametrize(("flash", "dropout", "expected"), [
    # Per token (h = 64, 4 heads, s = 128, ffn 256): the 34h = 2,176 bytes of Korthikanti et
    # al. 2022 include two 1-byte dropout masks (2h = 128); without dropout 32h = 2,048.
    # A micro-batch of 128 tokens: 278,528 and 262,144.
    (True, 0.1, 278_528), (True, 0.0, 262_144),
    # Without flash attention the scores add 5as = 5 * 4 * 128 = 2,560 bytes per token
    # (softmax output 2, dropout mask 1, dropout output 2); without dropout only the softmax
    # output, 2as = 1,024: (2,176 + 2,560) * 128 = 606,208 and (2,048 + 1,024) * 128 = 393,216.
    (False, 0.1, 606_208), (False, 0.0, 393_216),
])
def test_dropout_masks_are_stored_only_with_dropout(
        layouts: LayoutFactory, flash: bool, dropout: float, expected: int) -> None:
    js = shape_of(tiny_dense(), flash=flash, dropout=dropout)
    assert stage_activation_bytes(js, layouts(), one_dense_layer()).tolist() == [expected]


def family_gpu(gpu: solver.Accelerator, family: str) -> solver.Accelerator:
    return dataclasses.replace(gpu, name=f"{family}-gpu", family=family)


def test_fp8_weight_copies_follow_the_accelerator_and_the_recipe(
        test_gpu: solver.Accelerator, layouts: LayoutFactory) -> None:
    """Transformer Engine keeps an FP8 copy of each linear layer's weight between
    micro-batches, and a transposed one where FP8 GEMMs take only the TN layout (Hopper;
    ``is_non_tn_fp8_gemm_supported`` is True from Blackwell on). With FP8 weights
    (``fp8_params``, Megatron-LM ``--fp8-param-gather``) there is no BF16 copy of the layers;
    the embedding and LM head stay BF16 either way.

    tiny_dense: 4 layers of 49,280 = 197,120 parameters, embedding + LM head 128,000.
      Hopper, BF16 weights:    2 * 325,120 + (1 + 1) * 197,120 = 1,044,480
      Blackwell / Gaudi:       2 * 325,120 + 1 * 197,120       =   847,360
      Hopper, FP8 weights:     2 * 128,000 + (1 + 1) * 197,120 =   650,240
      Blackwell, FP8 weights:  2 * 128,000 + 1 * 197,120       =   453,120
    """
    gpus = [family_gpu(test_gpu, f) for f in ("nvidia-hopper", "nvidia-blackwell",
                                              "intel-gaudi")]
    hw = HardwareTable.build(gpus, "fp8")
    x = layouts(accel=[0, 1, 2])
    bf16_weights = shape_of(tiny_dense(), precision="fp8")
    fp8_weights = shape_of(tiny_dense(), precision="fp8", fp8_params=True)
    assert memory(bf16_weights, x, hw=hw).weights.tolist() == [1_044_480, 847_360, 847_360]
    assert memory(fp8_weights, x, hw=hw).weights.tolist() == [650_240, 453_120, 453_120]


def test_fp8_params_need_fp8_precision() -> None:
    with pytest.raises(solver.SpecError, match="fp8_params"):
        solver.TrainingJob(model=tiny_dense(), tokens=1e9, fp8_params=True)


def test_compiler_planned_runtimes_reserve_no_fragmentation(
        test_gpu: solver.Accelerator, layouts: LayoutFactory) -> None:
    """A caching allocator (PyTorch on GPUs) loses a share of what it allocates to
    fragmentation (5%); XLA on TPUs assigns every buffer at compile time: only the fixed
    1 GiB runtime reserve remains."""
    hw = HardwareTable.build([test_gpu, family_gpu(test_gpu, "google-tpu")], "bf16")
    mem = memory(shape_of(tiny_dense()), layouts(accel=[0, 1]), hw=hw)
    allocated = mem.weights + mem.gradients + mem.optimizer + mem.activations + mem.buffers
    assert mem.reserve[0] == pytest.approx(2**30 + 0.05 * allocated[0], rel=1e-12)
    assert mem.reserve[1] == 2**30


def test_deepspeed_zero3_holds_its_live_parameter_cap_not_two_layers(
        layouts: LayoutFactory) -> None:
    """FSDP gathers a whole layer and prefetches the next; DeepSpeed ZeRO-3 gathers module by
    module and keeps at most ``stage3_max_live_parameters`` (1e9) resident, or the largest
    module when that alone is bigger.

    h = 20480, ffn 4h, 128 heads, RMSNorm, no biases: a layer holds 12 h^2 + 2h =
    5,033,164,800 + 40,960 = 5,033,205,760 parameters; its largest module is the MLP's first
    projection, h * 4h = 1,677,721,600 > 1e9.
      FSDP:      2 bytes * 2 layers * 5,033,205,760 = 20,132,823,040 + NCCL 536,870,912
                 = 20,669,693,952
      DeepSpeed: 2 bytes * 1,677,721,600 = 3,355,443,200 + 536,870,912 = 3,892,314,112
    """
    big = solver.ModelSpec(name="gpt-530b-like", layers=2, hidden=20480, heads=128,
                           vocab=1000, seq_len=128, norm="rmsnorm", linear_bias=False,
                           position_embedding="rope")
    x = layouts(dp=2, zero=3)
    fsdp = memory(shape_of(big, zero3_impl="fsdp"), x)
    deepspeed = memory(shape_of(big, zero3_impl="deepspeed"), x)
    assert fsdp.buffers.tolist() == [20_669_693_952]
    assert deepspeed.buffers.tolist() == [3_892_314_112]


def test_offloaded_activations_leave_two_layers_on_the_device(
        layouts: LayoutFactory) -> None:
    """tiny_dense without dropout stores 262,144 bytes per layer and micro-batch (above); one
    stage of 4 layers, one micro-batch in flight: 1,048,576 bytes. Offloaded, the device keeps
    the layer in use and the one in transfer, 2 * 262,144 = 524,288, and the host the other
    524,288; the FP32 logits (4 * 128 * 1000 = 512,000) stay: activations 1,036,288."""
    js = shape_of(tiny_dense(), dropout=0.0, activation_offload=True)
    mem = memory(js, layouts())
    assert mem.activations.tolist() == [1_036_288]
    assert mem.host.tolist() == [524_288]
    kept = memory(shape_of(tiny_dense(), dropout=0.0), layouts())
    assert kept.activations.tolist() == [1_048_576 + 512_000]
    assert kept.host.tolist() == [0]


def test_offload_copies_hide_under_their_pass(test_gpu: solver.Accelerator,
                                              layouts: LayoutFactory) -> None:
    """1,048,576 bytes over a 1 GB/s host link take 1.048576e-3 s each way: a 0.5 ms forward
    waits 0.548576 ms for its copies out, a 2 ms backward hides its copies back."""
    gpu = dataclasses.replace(test_gpu, host_bw_gb_s=1.0, host_memory_gib=1.0)
    hw = HardwareTable.build([gpu], "bf16")
    js = shape_of(tiny_dense(), dropout=0.0, activation_offload=True)
    fwd, bwd = offload_exposed(js, layouts(), hw, np.array([1_048_576.0]), np.array([5e-4]),
                               np.array([2e-3]))
    assert fwd.tolist() == pytest.approx([5.48576e-4], rel=1e-12)
    assert bwd.tolist() == [0.0]


def test_offload_needs_host_memory(test_gpu: solver.Accelerator) -> None:
    job = solver.TrainingJob(model=tiny_dense(), tokens=1e9, global_batch=1,
                             activation_offload=True)
    layout = solver.Layout(accelerator="test-gpu", tp=1, pp=1, dp=1)
    unknown = solver.evaluate(job, layout, accelerator=test_gpu)
    assert not unknown.fits
    assert any(v.startswith("host memory:") and "no published host memory" in v
               for v in unknown.violations)
    roomy = dataclasses.replace(test_gpu, host_bw_gb_s=50.0, host_memory_gib=64.0)
    assert solver.evaluate(job, layout, accelerator=roomy).fits
