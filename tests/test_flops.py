"""FLOPs per step against the published closed forms, and small models counted by hand."""

from __future__ import annotations

import numpy as np
import pytest

import solver
from solver.stepmodel.arrays import HardwareTable, LayoutArrays
from solver.stepmodel.evaluate import StepResult, evaluate_arrays
from solver.stepmodel.flops import step_flops

# GPT-3 175B as Narayanan et al. 2021 (arXiv:2104.04473) count it: l=96, h=12288, V=51200
# (padded GPT-2 vocabulary), tied embeddings, s=2048, global batch B=1536.
L, H, V, S, B = 96, 12288, 51200, 2048, 1536


def narayanan_eq3() -> float:
    """Narayanan et al. 2021 eq. (3): FLOPs per iteration with full activation recomputation.

    ``96*B*s*l*h^2*(1 + s/(6h) + V/(16*l*h))`` (a hardware count: the recomputed forward pass
    is included, the LM head is not recomputed).
    """
    return 96 * B * S * L * H**2 * (1 + S / (6 * H) + V / (16 * L * H))


def korthikanti_model_flops() -> float:
    """Korthikanti et al. 2022 (arXiv:2205.05198) App. A: model FLOPs per iteration.

    ``72*B*L*s*h^2*(1 + s/(6h) + V/(12*h*L))`` (no recomputation counted).
    """
    return 72 * B * L * S * H**2 * (1 + S / (6 * H) + V / (12 * H * L))


def gpt3_result(a100: solver.Accelerator) -> StepResult:
    """Megatron-LM's GPT-3 layout (TP8 PP8 DP16, micro-batch 1, 96 micro-batches) under the
    three recomputation modes."""
    job = solver.TrainingJob(model=solver.model("gpt3-175b"), tokens=300e9, global_batch=B,
                             seq_len=S)
    layouts = [solver.Layout(accelerator=a100.name, tp=8, pp=8, dp=16, recompute=mode)
               for mode in ("none", "selective", "full")]
    x = LayoutArrays.from_layouts(layouts, [96] * 3, {a100.name: 0})
    return evaluate_arrays(job, x, HardwareTable.build([a100], "bf16"))


def test_closed_forms_evaluated_by_hand() -> None:
    # Korthikanti: 72*B*L*s*h^2 + 12*B*L*s^2*h + 6*B*s*h*V (the three terms of the bracket)
    #   = 3,386,196,746,387,324,928 ~ 3.386e18 FLOPs per iteration
    # Narayanan eq. (3): 96*B*s*l*h^2 + 16*B*l*s^2*h + 6*B*s*h*V ~ 4.511e18
    assert korthikanti_model_flops() == pytest.approx(3.386196746387325e18, rel=1e-12)
    assert narayanan_eq3() == pytest.approx(4.510970753323106e18, rel=1e-12)


def test_gpt3_model_and_hardware_flops_match_the_papers() -> None:
    result = gpt3_result(solver.accelerator("a100-sxm4-80gb"))
    model = result.model_flops_per_step
    hardware = result.hardware_flops_per_step
    # Model FLOPs do not depend on the recomputation mode.
    assert np.all(model == model[0])
    assert model[0] == pytest.approx(korthikanti_model_flops(), rel=5e-3)
    assert hardware[2] == pytest.approx(narayanan_eq3(), rel=5e-3)  # full recomputation
    # The residual is zero to rounding: both formulas count the matmuls only (QKV, projection,
    # MLP, QK^T and scores x V, LM head) and drop biases, norms, softmax and residual adds;
    # the step model counts exactly the same set (solver/stepmodel/flops.py). A change of
    # that convention must update this line and docs/model.md.
    assert model[0] == pytest.approx(korthikanti_model_flops(), rel=1e-12)
    assert hardware[2] == pytest.approx(narayanan_eq3(), rel=1e-12)


def test_hardware_flops_by_recompute_mode() -> None:
    result = gpt3_result(solver.accelerator("a100-sxm4-80gb"))
    none, selective, full = result.hardware_flops_per_step
    model = result.model_flops_per_step[0]
    assert none == model  # nothing repeated
    assert model < selective < full  # selective repeats the attention scores only
    # Full recomputation repeats every layer's forward: hardware / model = 4/3 for the layers.
    # With the LM head (not repeated) the ratio is just under 4/3:
    #   (96 + 16 s/h + 6V/(L h)) / (72 + 12 s/h + 6V/(L h)) = 1.3322
    assert full / model == pytest.approx(1.3322, abs=1e-4)


def test_step_flops_agree_with_the_result() -> None:
    per_token = step_flops(solver.model("gpt3-175b"), S)
    assert per_token.model_per_token * B * S == pytest.approx(korthikanti_model_flops(),
                                                             rel=1e-12)
    assert per_token.hardware_per_token_full * B * S == pytest.approx(narayanan_eq3(), rel=1e-12)


def test_palm_6n_approximation() -> None:
    # PaLM (Chowdhery et al. 2022, arXiv:2204.02311) App. B: 6N + 12*L*H*Q*T per token, with
    # N = 174,615,846,912 (solver.params, = Narayanan eq. (2) + final LayerNorm). N also holds
    # biases, norms and the learned positions (40M of 174.6B), which do no matmul FLOPs: the
    # two counts differ by 0.02%.
    n = 174_615_846_912
    palm = 6 * n + 12 * L * H * S  # H*Q = hidden
    assert step_flops(solver.model("gpt3-175b"), S).model_per_token == pytest.approx(palm,
                                                                                      rel=5e-3)


def test_tiny_dense_flops_by_hand() -> None:
    # 4 layers, h=64, 4 heads of 16, ffn 256, V=1000, s=128, no biases.
    # Per token and layer, forward: projections 2 * 4*64*64 = 32,768; MLP 2 * 2*64*256 = 65,536
    #   -> matmuls 98,304; scores QK^T and x V: 2 * s * heads * (16 + 16) = 2*128*128 = 32,768
    #   -> 131,072 per layer; 4 layers 524,288; LM head 2 * 64 * 1000 = 128,000
    #   forward 652,288; model (x3) 1,956,864
    #   full recomputation repeats the layers' forward: 1,956,864 + 524,288 = 2,481,152
    spec = solver.ModelSpec(name="tiny-dense", layers=4, hidden=64, heads=4, vocab=1000,
                            seq_len=128, norm="rmsnorm", linear_bias=False,
                            position_embedding="rope")
    flops = step_flops(spec, 128)
    assert flops.model_per_token == 1_956_864
    assert flops.hardware_per_token_none == 1_956_864
    assert flops.hardware_per_token_full == 2_481_152


def test_tiny_moe_counts_top_k_experts_by_hand() -> None:
    # 2 MoE layers, h=64, 4 heads of 16, 8 SwiGLU experts of ffn 128, top-2, V=1000, s=128.
    # Per token and layer, forward: projections 2 * 16,384 = 32,768; router 2 * 64*8 = 1,024;
    #   two experts 2 * 2 * (3*64*128) = 98,304 -> 132,096; scores 32,768 -> 164,864
    #   2 layers 329,728; LM head 128,000; forward 457,728; model (x3) 1,373,184
    spec = solver.ModelSpec(name="tiny-moe", layers=2, hidden=64, heads=4, vocab=1000,
                            seq_len=128, experts=8, top_k=2, moe_ffn_hidden=128,
                            gated_mlp=True, norm="rmsnorm", linear_bias=False,
                            position_embedding="rope")
    assert step_flops(spec, 128).model_per_token == 1_373_184
