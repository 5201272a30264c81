"""Memory of the most loaded accelerator, against values worked out by hand.

Every expected number below is a literal computed on paper from the model's shapes and the
published formulas (the arithmetic is in the comments), not taken from ``solver``'s output.

Conventions the hand computations follow (``solver/stepmodel/memory.py``,
``solver/stepmodel/calibration.py``):
- model states per parameter: BF16 weights 2 bytes, FP32 gradients 4, FP32 master weights and
  Adam moments 12 (Megatron-LM's 18 bytes per parameter); ZeRO-1 shards the 12, ZeRO-2 also
  the 4, ZeRO-3 also the 2, over the dp*cp data-parallel ranks (Rajbhandari et al. 2020,
  arXiv:1910.02054, sec. 5);
- every parameter of a layer, and the embedding and LM head, are divided by tp (Megatron shards
  the matmul weights and the vocabulary; it replicates the norm weights, which the model also
  divides by tp -- 128 of a layer's 49,280 parameters below);
- activations per layer per micro-batch (Korthikanti et al. 2022, arXiv:2205.05198, Table 2),
  sequence parallelism always on with tp;
- the final norm's parameters (64 below) are not counted in any stage.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

import solver
from solver.stepmodel.arrays import LayoutArrays
from solver.stepmodel.memory import (
    GIB,
    inflight_first,
    inflight_last,
    layer_activation_bytes,
    memory,
    stage_params,
    stored_per_layer,
)
from solver.stepmodel.shape import JobShape, job_shape

#: The ``layouts`` fixture of conftest.py: columns in, ``LayoutArrays`` out.
LayoutFactory = Callable[..., LayoutArrays]

# ------------------------------------------------------------------------------ the models


def tiny_dense(*, position: str = "rope", tied: bool = False) -> solver.ModelSpec:
    """4 layers, h=64, 4 heads, ffn 256, V=1000, s=128; RMSNorm, no biases.

    Parameters, by hand:
      attention Q, K, V, O: 4 * 64 * 64                      = 16,384
      MLP: 64*256 + 256*64                                   = 32,768
      two RMSNorms: 2 * 64                                   =    128
      one layer                                              = 49,280
      token embedding 1000 * 64 = 64,000 (+ 128 * 64 = 8,192 learned positions = 72,192)
      LM head 1000 * 64 = 64,000 (untied)
    """
    return solver.ModelSpec(name="tiny-dense", layers=4, hidden=64, heads=4, vocab=1000,
                            seq_len=128, norm="rmsnorm", linear_bias=False,
                            position_embedding=position, tied_embeddings=tied)


def tiny_moe() -> solver.ModelSpec:
    """2 MoE layers, h=64, 4 heads, 8 experts (top-2) of SwiGLU ffn 128, V=1000, s=128.

    Parameters, by hand:
      attention 4 * 64 * 64 = 16,384; two RMSNorms 128; router 64 * 8 = 512
      one MoE layer without its experts                      = 17,024
      one expert: gate, up, down 3 * 64 * 128                = 24,576
      token embedding 64,000; LM head 64,000 (untied)
    """
    return solver.ModelSpec(name="tiny-moe", layers=2, hidden=64, heads=4, vocab=1000,
                            seq_len=128, experts=8, top_k=2, moe_ffn_hidden=128,
                            gated_mlp=True, norm="rmsnorm", linear_bias=False,
                            position_embedding="rope")


def shape_of(model: solver.ModelSpec, *, flash: bool = True, seq_len: int = 0) -> JobShape:
    job = solver.TrainingJob(model=model, tokens=1e9, seq_len=seq_len, flash_attention=flash)
    return job_shape(job)


# ------------------------------------------------------------------------------ model states


def test_model_states_are_2_4_12_bytes_per_parameter(layouts: LayoutFactory) -> None:
    # One accelerator holds all 4 layers, the embedding and the LM head:
    #   4 * 49,280 + 64,000 + 64,000 = 197,120 + 128,000 = 325,120 parameters
    #   weights 2 * 325,120 = 650,240; gradients 4 * 325,120 = 1,300,480;
    #   optimizer 12 * 325,120 = 3,901,440
    mem = memory(shape_of(tiny_dense()), layouts())
    assert mem.weights.tolist() == [650_240]
    assert mem.gradients.tolist() == [1_300_480]
    assert mem.optimizer.tolist() == [3_901_440]


def test_zero_stages_shard_over_dp_times_cp(layouts: LayoutFactory) -> None:
    # 325,120 parameters; the data-parallel group is dp*cp = 4*2 = 8 (or 8*1).
    #   ZeRO-0: 650,240 / 1,300,480 / 3,901,440
    #   ZeRO-1: optimizer 3,901,440 / 8 = 487,680
    #   ZeRO-2: + gradients 1,300,480 / 8 = 162,560
    #   ZeRO-3: + weights 650,240 / 8 = 81,280
    x = layouts(dp=[4, 4, 4, 4, 8], cp=[2, 2, 2, 2, 1], zero=[0, 1, 2, 3, 3])
    mem = memory(shape_of(tiny_dense()), x)
    assert mem.weights.tolist() == [650_240, 650_240, 650_240, 81_280, 81_280]
    assert mem.gradients.tolist() == [1_300_480, 1_300_480, 162_560, 162_560, 162_560]
    assert mem.optimizer.tolist() == [3_901_440, 487_680, 487_680, 487_680, 487_680]


def test_tensor_parallelism_splits_layers_embedding_and_head(layouts: LayoutFactory) -> None:
    # tp=2: (4 * 49,280 + 64,000 + 64,000) / 2 = 325,120 / 2 = 162,560 parameters
    #   weights 325,120; gradients 650,240; optimizer 1,950,720
    mem = memory(shape_of(tiny_dense()), layouts(tp=2))
    assert mem.weights.tolist() == [325_120]
    assert mem.gradients.tolist() == [650_240]
    assert mem.optimizer.tolist() == [1_950_720]


@pytest.mark.parametrize(("tied", "first", "last"), [
    # pp = 1, 2, 3, 4: the most loaded stage holds ceil(4/p) = 4, 2, 2, 1 layers
    # (4 * 49,280 = 197,120; 2 * 49,280 = 98,560; 49,280).
    # Untied, learned positions: embedding 72,192 on the first stage, LM head 64,000 on the last.
    #   pp=1: 197,120 + 72,192 + 64,000 = 333,312 (one stage is both)
    #   pp=2, 3: first 98,560 + 72,192 = 170,752; last 98,560 + 64,000 = 162,560
    #   pp=4: first 49,280 + 72,192 = 121,472; last 49,280 + 64,000 = 113,280
    (False, [333_312, 170_752, 170_752, 121_472], [333_312, 162_560, 162_560, 113_280]),
    # Tied: with pp=1 the LM head is the embedding (197,120 + 72,192 = 269,312); with pp > 1
    # Megatron-LM keeps a copy of the word embedding on the last stage for the head.
    (True, [269_312, 170_752, 170_752, 121_472], [269_312, 162_560, 162_560, 113_280]),
])
def test_embedding_on_first_stage_and_head_on_last(
        layouts: LayoutFactory, tied: bool, first: list[int], last: list[int]) -> None:
    sp = stage_params(shape_of(tiny_dense(position="learned", tied=tied)),
                      layouts(pp=[1, 2, 3, 4]))
    assert sp.layers_on_stage.tolist() == [4, 2, 2, 1]
    assert sp.first_replicated.tolist() == first
    assert sp.last_replicated.tolist() == last


def test_most_loaded_of_first_and_last_stage_is_reported(layouts: LayoutFactory) -> None:
    # Learned positions, untied, pp=2 (2 layers per stage), micro-batch 1, no recomputation,
    # flash attention (no score term): one layer stores 34 * s * b * h = 34 * 128 * 64
    # = 278,528 bytes per micro-batch, a stage 557,056.
    # Model states (18 bytes per parameter):
    #   first 170,752 * 18 = 3,073,536; last 162,560 * 18 = 2,926,080
    # Activations:
    #   first: min(pp, m) micro-batches in flight;
    #   last: one micro-batch + FP32 logits 4 * s * b * V = 4 * 128 * 1000 = 512,000
    #     -> 557,056 + 512,000 = 1,069,056
    # m = 8: first 2 * 557,056 = 1,114,112 -> 3,073,536 + 1,114,112 = 4,187,648
    #        last 2,926,080 + 1,069,056 = 3,995,136 -> the first stage is reported
    # m = 1: first 1 * 557,056 -> 3,073,536 + 557,056 = 3,630,592 < 3,995,136
    #        -> the last stage is reported, with its own (smaller) weights
    mem = memory(shape_of(tiny_dense(position="learned")), layouts(pp=2, nmb=[8, 1]))
    assert mem.weights.tolist() == [341_504, 325_120]  # 2 * 170,752; 2 * 162,560
    assert mem.gradients.tolist() == [683_008, 650_240]  # 4 * 170,752; 4 * 162,560
    assert mem.optimizer.tolist() == [2_049_024, 1_950_720]  # 12 * 170,752; 12 * 162,560
    assert mem.activations.tolist() == [1_114_112, 1_069_056]
    # Buffers: NCCL 0.5 GiB = 536,870,912 + pipeline send and receive 2 * (2 * s * b * h)
    #   = 2 * 2 * 128 * 64 = 32,768 -> 536,903,680 (no tp all-gather with tp=1, no ZeRO-3).
    assert mem.buffers.tolist() == [536_903_680, 536_903_680]
    # Reserve: 1 GiB context + 5% of everything allocated.
    #   m=8: allocated 4,187,648 + 536,903,680 = 541,091,328
    #        reserve 1,073,741,824 + 27,054,566.4 = 1,100,796,390.4
    #        total 541,091,328 + 1,100,796,390.4 = 1,641,887,718.4
    #   m=1: allocated 3,995,136 + 536,903,680 = 540,898,816
    #        reserve 1,073,741,824 + 27,044,940.8 = 1,100,786,764.8; total 1,641,685,580.8
    assert mem.reserve.tolist() == pytest.approx([1_100_796_390.4, 1_100_786_764.8], rel=1e-12)
    assert mem.total.tolist() == pytest.approx([1_641_887_718.4, 1_641_685_580.8], rel=1e-12)


def test_evaluate_reports_the_same_breakdown_in_gib(test_gpu: solver.Accelerator) -> None:
    # The m = 8 case above through the public API: global batch 8 = dp 1 * micro-batch 1 * m 8.
    job = solver.TrainingJob(model=tiny_dense(position="learned"), tokens=1e9, global_batch=8)
    est = solver.evaluate(job, solver.Layout(accelerator="test-gpu", tp=1, pp=2, dp=1),
                          accelerator=test_gpu)
    expected_bytes = {
        "weights": 341_504, "gradients": 683_008, "optimizer": 2_049_024,
        "activations": 1_114_112, "buffers": 536_903_680, "reserve": 1_100_796_390.4,
    }
    assert est.memory_breakdown_gib == pytest.approx(
        {k: v / 2**30 for k, v in expected_bytes.items()}, rel=1e-12)
    assert est.memory_gib_per_gpu == pytest.approx(1_641_887_718.4 / 2**30, rel=1e-12)
    assert est.fits  # 1.53 GiB of 16


def test_zero3_and_tensor_parallel_buffers(layouts: LayoutFactory) -> None:
    # tp=2, dp=2, ZeRO-3: buffers = NCCL 536,870,912
    #   + ZeRO-3 gathered weights of the current and the prefetched layer:
    #     2 layers * 2 bytes * 49,280 / tp 2 = 98,560
    #   + the tensor-parallel all-gather of the full sequence: 2 * s * b * h = 2 * 128 * 64
    #     = 16,384
    #   = 536,985,856 (no pipeline buffers with pp=1)
    mem = memory(shape_of(tiny_dense()), layouts(tp=2, dp=2, zero=3))
    assert mem.buffers.tolist() == [536_985_856]
    assert GIB == 2**30


# ------------------------------------------------------------------------------ activations
# GPT-3's shape (Brown et al. 2020): s=2048, h=12288, a=96; micro-batch b=1.
S, H, A, B = 2048, 12288, 96, 1


def korthikanti_no_parallelism() -> float:
    """Table 2, "no parallelism": s*b*h*(34 + 5*a*s/h)."""
    return S * B * H * (34 + 5 * A * S / H)


def korthikanti_tp_sp(t: int) -> float:
    """Table 2, "tensor parallel + sequence parallel": s*b*h*(34/t + 5*a*s/(h*t))."""
    return S * B * H * (34 / t + 5 * A * S / (H * t))


def korthikanti_tp_sp_selective(t: int) -> float:
    """Table 2, "tensor parallel + sequence parallel + selective recompute": 34*s*b*h/t."""
    return 34 * S * B * H / t


def korthikanti_full_recompute() -> float:
    """Table 2, "full activation recompute": 2*s*b*h."""
    return 2 * S * B * H


def test_korthikanti_formulas_worked_by_hand() -> None:
    # 34 * 2048 * 12288 = 34 * 25,165,824 = 855,638,016
    # 5 * a * s^2 * b = 5 * 96 * 2048^2 = 480 * 4,194,304 = 2,013,265,920
    # no parallelism: 855,638,016 + 2,013,265,920 = 2,868,903,936
    # t = 8 with SP: 2,868,903,936 / 8 = 358,612,992; selective: 855,638,016 / 8 = 106,954,752
    # full recompute: 2 * 25,165,824 = 50,331,648
    assert korthikanti_no_parallelism() == 2_868_903_936
    assert korthikanti_tp_sp(8) == 358_612_992
    assert korthikanti_tp_sp_selective(8) == 106_954_752
    assert korthikanti_full_recompute() == 50_331_648


def test_activations_per_layer_match_korthikanti_table2(layouts: LayoutFactory) -> None:
    js = shape_of(solver.model("gpt3-175b"), flash=False, seq_len=S)
    x = layouts(tp=[1, 8, 8, 1], recompute=["none", "none", "selective", "full"], mb=B)
    full_layer = layer_activation_bytes(js, x, moe=False)
    stored = stored_per_layer(js, x, full_layer)
    assert stored.tolist() == pytest.approx([
        korthikanti_no_parallelism(),       # 2,868,903,936
        korthikanti_tp_sp(8),               #   358,612,992
        korthikanti_tp_sp_selective(8),     #   106,954,752
        korthikanti_full_recompute(),       #    50,331,648
    ], rel=1e-12)
    assert stored.tolist() == [2_868_903_936, 358_612_992, 106_954_752, 50_331_648]


def test_flash_attention_never_stores_the_scores(layouts: LayoutFactory) -> None:
    # Without recomputation but with flash attention (Dao et al. 2022) the 5*a*s^2*b term
    # goes: 34 * s * b * h / 8 = 106,954,752, the selective-recompute figure.
    js = shape_of(solver.model("gpt3-175b"), flash=True, seq_len=S)
    assert layer_activation_bytes(js, layouts(tp=8), moe=False).tolist() == [106_954_752]


def test_context_parallelism_splits_the_sequence(layouts: LayoutFactory) -> None:
    # cp=2: each rank holds s/2 = 1024 tokens: (s/2)*b*h*(34/t + 5*a*(s/2)/(h*t))
    #   = 1024 * 12288 * (34/8 + 5*96*1024/(12288*8)) = 12,582,912 * (4.25 + 5) = 116,391,936
    js = shape_of(solver.model("gpt3-175b"), flash=False, seq_len=S)
    assert layer_activation_bytes(js, layouts(tp=8, cp=2), moe=False).tolist() == [116_391_936]


def test_full_recompute_keeps_layer_inputs_plus_one_layer(layouts: LayoutFactory) -> None:
    # tiny dense, pp=1, micro-batch 2 (256 tokens), m=4, full recomputation, flash attention:
    #   checkpoints 2 bytes * 256 * 64 = 32,768 per layer; 4 layers = 131,072; min(1, 4) = 1
    #   micro-batch in flight
    #   + one layer recomputed: 34 * 256 * 64 = 557,056
    #   + FP32 logits 4 * 256 * 1000 = 1,024,000
    #   = 1,712,128
    mem = memory(shape_of(tiny_dense()), layouts(mb=2, nmb=4, recompute="full"))
    assert mem.activations.tolist() == [1_712_128]


def test_interleaved_schedule_adds_korthikanti_factor(layouts: LayoutFactory) -> None:
    # tiny dense (RoPE, untied: both end stages hold 98,560 + 64,000 = 162,560 parameters),
    # pp=2, m=8, micro-batch 1, no recomputation: 278,528 bytes per layer and micro-batch.
    # 1F1B: first stage 2 layers * 278,528 * min(2, 8) = 1,114,112
    # vp=2: chunks of 4/(2*2) = 1 layer; rank 0 holds 2(p-1) + (v-1)p + 1 = 2 + 2 + 1 = 5
    #   chunks = 1,392,640 = 1,114,112 * (1 + (p-1)/(p*v)) = 1,114,112 * 1.25;
    #   the last stage (v-1)p + 1 = 3 chunks + logits = 835,584 + 512,000 = 1,347,584 < first.
    mem = memory(shape_of(tiny_dense()), layouts(pp=2, nmb=8, vp=[1, 2]))
    assert mem.activations.tolist() == [1_114_112, 1_392_640]


def test_microbatches_in_flight(layouts: LayoutFactory) -> None:
    # 1F1B (Narayanan et al. 2021 sec. 2.2.1): rank 0 holds min(p, m) micro-batches.
    # Interleaved (Megatron-LM schedules.py): rank 0 warms up 2(p-1) + (v-1)p chunks and holds
    # one more, at most all m*v chunks:
    #   p=4, v=2: 6 + 4 + 1 = 11 (of 16);  p=8, v=3: 14 + 16 + 1 = 31 (of 192);
    #   p=4, v=2, m=4: min(8, 11) = 8.
    # The last rank holds one micro-batch, (v-1)p + 1 chunks when interleaved: 5, 17, 5.
    x = layouts(pp=[1, 4, 4, 4, 8, 4], vp=[1, 1, 1, 2, 3, 2], nmb=[8, 2, 8, 8, 64, 4])
    assert inflight_first(x, x.nmb).tolist() == [1, 2, 4, 11, 31, 8]
    assert inflight_last(x, x.nmb).tolist() == [1, 1, 1, 5, 17, 5]
    # Korthikanti sec. 4.2.3: in layers, 11 chunks of L/8 = 1.375 L = L * (1 + 3/8).
    assert 11 / (4 * 2) == 1 + (4 - 1) / (4 * 2)


# ------------------------------------------------------------------------------ mixture of experts


def test_expert_weights_are_split_by_ep(layouts: LayoutFactory) -> None:
    # Replicated on every rank (pp=1): 2 * 17,024 + 64,000 + 64,000 = 162,048 parameters.
    # Experts: 2 layers * 8 * 24,576 = 393,216, split by ep = 1, 4, 8:
    #   393,216; 98,304; 49,152
    # ZeRO-0 weights 2 * (162,048 + experts): 1,110,528; 520,704; 422,400
    x = layouts(dp=8, ep=[1, 4, 8])
    js = shape_of(tiny_moe())
    assert stage_params(js, x).experts.tolist() == [393_216, 98_304, 49_152]
    assert memory(js, x).weights.tolist() == [1_110_528, 520_704, 422_400]


def test_expert_states_are_sharded_over_dp_cp_over_ep(layouts: LayoutFactory) -> None:
    # dp=8, ep=4: dense states over 8 ranks, expert states over dp*cp/ep = 2 ranks.
    #   ZeRO-1 optimizer 12 * (162,048/8 + 98,304/2) = 12 * (20,256 + 49,152) = 832,896
    #   ZeRO-3 weights 2 * 69,408 = 138,816; gradients 4 * 69,408 = 277,632
    # (With ep=1 the experts are 393,216 over 8 ranks = 49,152 too: each expert's states end
    # up split over dp*cp ranks whatever ep is.)
    x = layouts(dp=8, ep=[4, 4, 1], zero=[1, 3, 1])
    mem = memory(shape_of(tiny_moe()), x)
    assert mem.optimizer.tolist() == [832_896, 832_896, 832_896]
    assert mem.weights.tolist()[:2] == [520_704, 138_816]  # ZeRO-1 leaves weights whole
    assert mem.gradients.tolist()[:2] == [1_041_408, 277_632]  # 4 * 260,352; 4 * 69,408
