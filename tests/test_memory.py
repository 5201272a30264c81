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
  sequence parallelism always on with tp; per token a layer's stored bytes are the parts of
  ``solver/stepmodel/activations.py`` its recompute modules keep;
- the final norm's parameters (64 below) are not counted in any stage.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest

import solver
from solver.layout_options import SCHEDULE_CODE, SPLIT_CODE, recompute_code
from solver.stepmodel.activations import LayerActivations
from solver.stepmodel.arrays import HardwareTable, LayoutArrays
from solver.stepmodel.memory import GIB, memory, stage_activation_bytes, stage_params
from solver.stepmodel.pipeline import Stage, inflight, stages
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


def shape_of(model: solver.ModelSpec, *, flash: bool = True, seq_len: int = 0,
             dropout: float = 0.1, **job: object) -> JobShape:
    """The job's shape; dropout 0.1 by default, as Korthikanti et al. 2022 count it (their
    34sbh and 5as include the dropout masks)."""
    return job_shape(solver.TrainingJob(model=model, tokens=1e9, seq_len=seq_len,
                                        flash_attention=flash, dropout=dropout,
                                        **job))  # type: ignore[arg-type]


def layers_stage(n: int, *, dense: int = 0, moe: int = 0, mtp: int = 0) -> Stage:
    """A stage of ``dense`` dense and ``moe`` MoE layers, for ``n`` layouts."""
    def col(v: int) -> np.ndarray:
        return np.full(n, v, np.int64)
    return Stage(col(dense), col(moe), col(mtp), np.zeros(n, bool), np.zeros(n, bool))


def per_token(act: LayerActivations, mode: str) -> float:
    """Bytes per token one layer keeps under the recompute ``mode`` (cp = 1)."""
    return float(act.stored(np.array([recompute_code(mode)]), np.array([1]))[0])


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
    # pp = 1, 2, 4 (even split) and pp = 3 with pipeline_split "both" (Megatron-LM's
    # account-for-embedding/loss flags: (4 + 2) / 3 = 2 slots a stage, so the first and the
    # last stage hold 1 layer, the middle one 2). 49,280 parameters a layer.
    # Untied, learned positions: embedding 72,192 on the first stage, LM head 64,000 on the last.
    #   pp=1: 4 * 49,280 + 72,192 + 64,000 = 333,312 (one stage is both)
    #   pp=2: first 98,560 + 72,192 = 170,752; last 98,560 + 64,000 = 162,560
    #   pp=4 and pp=3 "both": first 49,280 + 72,192 = 121,472; last 49,280 + 64,000 = 113,280
    (False, [333_312, 170_752, 121_472, 121_472], [333_312, 162_560, 113_280, 113_280]),
    # Tied: with pp=1 the LM head is the embedding (197,120 + 72,192 = 269,312); with pp > 1
    # Megatron-LM keeps a copy of the word embedding on the last stage for the head.
    (True, [269_312, 170_752, 121_472, 121_472], [269_312, 162_560, 113_280, 113_280]),
])
def test_embedding_on_first_stage_and_head_on_last(
        layouts: LayoutFactory, tied: bool, first: list[int], last: list[int]) -> None:
    js = shape_of(tiny_dense(position="learned", tied=tied))
    x = layouts(pp=[1, 2, 4, 3], split=[0, 0, 0, SPLIT_CODE["both"]])
    st = stages(js, x)
    assert st.first.dense.tolist() == [4, 2, 1, 1]
    assert st.last.dense.tolist() == [4, 2, 1, 1]
    # Middle stages: none with pp < 3; pp=4 even: 4/4 = 1 layer; pp=3 "both": 2 layers.
    assert st.middle.dense.tolist() == [0, 0, 1, 2]
    assert stage_params(js, x, st.first).replicated.tolist() == first
    assert stage_params(js, x, st.last).replicated.tolist() == last
    # The middle stage of pp=3 "both": 2 layers, no embedding or head: 98,560.
    assert stage_params(js, x, st.middle).replicated.tolist()[3] == 98_560


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
    job = solver.TrainingJob(model=tiny_dense(position="learned"), tokens=1e9, global_batch=8,
                             dropout=0.1)
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
    # One layer's stored bytes per micro-batch: a stage of one dense layer.
    js = shape_of(solver.model("gpt3-175b"), flash=False, seq_len=S)
    x = layouts(tp=[1, 8, 8, 1], recompute=["none", "none", "selective", "full"], mb=B)
    stored = stage_activation_bytes(js, x, layers_stage(4, dense=1))
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
    stored = stage_activation_bytes(js, layouts(tp=8), layers_stage(1, dense=1))
    assert stored.tolist() == [106_954_752]


def test_context_parallelism_splits_the_sequence(layouts: LayoutFactory) -> None:
    # cp=2: each rank holds s/2 = 1024 tokens: (s/2)*b*h*(34/t + 5*a*(s/2)/(h*t))
    #   = 1024 * 12288 * (34/8 + 5*96*1024/(12288*8)) = 12,582,912 * (4.25 + 5) = 116,391,936
    js = shape_of(solver.model("gpt3-175b"), flash=False, seq_len=S)
    stored = stage_activation_bytes(js, layouts(tp=8, cp=2), layers_stage(1, dense=1))
    assert stored.tolist() == [116_391_936]


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
    """1F1B (Narayanan et al. 2021 sec. 2.2.1): rank i holds min(m, p - i) micro-batches.
    Interleaved (Megatron-LM ``schedules.py``): rank i warms up 2(p-1-i) + (v-1)p chunks and
    holds one more, at most all m*v chunks; ``inflight`` counts them in stages (chunks / v)."""
    # Rank 0:  p=4, v=2: 6 + 4 + 1 = 11 chunks (of 16) = 5.5 stages;
    #          p=8, v=3: 14 + 16 + 1 = 31 (of 192) = 31/3;  p=4, v=2, m=4: min(8, 11) = 8 = 4.
    # Rank 1:  1F1B min(m, p-1): 1 (p=1: rank 0 itself), 2, 3;
    #          interleaved 2(p-2) + (v-1)p + 1: p=4, v=2: 4 + 4 + 1 = 9 -> 4.5;
    #          p=8, v=3: 12 + 16 + 1 = 29 -> 29/3;  p=4, v=2, m=4: min(8, 9) = 8 -> 4.
    # Last rank: one micro-batch, (v-1)p + 1 chunks when interleaved: 5 -> 2.5, 17 -> 17/3,
    #          5 -> 2.5.
    x = layouts(pp=[1, 4, 4, 4, 8, 4], vp=[1, 1, 1, 2, 3, 2], nmb=[8, 2, 8, 8, 64, 4])
    first, second, last = inflight(x, x.nmb)
    assert first.tolist() == pytest.approx([1, 2, 4, 11 / 2, 31 / 3, 8 / 2], rel=1e-15)
    assert second.tolist() == pytest.approx([1, 2, 3, 9 / 2, 29 / 3, 8 / 2], rel=1e-15)
    assert last.tolist() == pytest.approx([1, 1, 1, 5 / 2, 17 / 3, 5 / 2], rel=1e-15)
    # Korthikanti sec. 4.2.3: in layers, 11 chunks of L/8 = 1.375 L = L * (1 + 3/8).
    assert 11 / (4 * 2) == 1 + (4 - 1) / (4 * 2)


def test_zero_bubble_and_dualpipe_in_flight(layouts: LayoutFactory) -> None:
    """ZB-H1 (Qi et al. 2024, arXiv:2401.10241, Table 2): at most p micro-batches on every
    rank. DualPipe (DeepSeek-V3, arXiv:2412.19437, Table 2): PP + 1 on every rank."""
    zb, dual = SCHEDULE_CODE["zero-bubble"], SCHEDULE_CODE["dualpipe"]
    # zero-bubble p=4: m=8 -> 4 everywhere; m=2 -> 2. DualPipe p=8, m=16 -> 9; p=4, m=8 -> 5.
    x = layouts(pp=[4, 4, 8, 4], nmb=[8, 2, 16, 8], schedule=[zb, zb, dual, dual])
    for ranks in inflight(x, x.nmb):
        assert ranks.tolist() == [4, 2, 9, 5]


def test_zero_bubble_last_rank_holds_p_microbatches(layouts: LayoutFactory) -> None:
    """ZB-H1 (Qi et al. 2024, Table 2): the last rank keeps p micro-batches (1F1B: one)."""
    # tiny dense (RoPE, untied: both stages 162,560 parameters -> same model states), pp=2,
    # m=8, 278,528 bytes per layer and micro-batch, 557,056 a stage:
    #   first rank 2 * 557,056 = 1,114,112;
    #   last rank 2 * 557,056 + FP32 logits 4 * 128 * 1000 = 1,114,112 + 512,000 = 1,626,112
    # 1F1B: last 557,056 + 512,000 = 1,069,056 < first 1,114,112 -> first reported.
    x = layouts(pp=2, nmb=8, schedule=[SCHEDULE_CODE["1f1b"], SCHEDULE_CODE["zero-bubble"]])
    mem = memory(shape_of(tiny_dense()), x)
    assert mem.activations.tolist() == [1_114_112, 1_626_112]


def test_dualpipe_holds_two_stages_and_p_plus_1_microbatches(layouts: LayoutFactory) -> None:
    """DualPipe (DeepSeek-V3, arXiv:2412.19437, sec. 3.2.1 and Table 2): rank i holds stages i
    and p-1-i ("two copies of the model parameters": 2x weights and gradients), each shard of
    the optimizer states over both copies' data-parallel ranks, and PP + 1 micro-batches in
    flight, half of them through each of its stages."""
    # tiny dense (RoPE, untied), pp=2: rank 0 holds stage 0 (2 layers + embedding) and
    # stage 1 (2 layers + LM head): 98,560 + 64,000 + 98,560 + 64,000 = 325,120 parameters.
    #   weights 2 * 325,120 = 650,240; gradients 4 * 325,120 = 1,300,480
    #   ZeRO-0: optimizer 12 * 325,120 = 3,901,440
    #   ZeRO-1, dp=2: each stage's optimizer states over 2 copies * dp 2 = 4 ranks:
    #     12 * 325,120 / 4 = 975,360
    # Activations: m=4 (DualPipe needs an even m >= 2p), min(m, p+1) = 3 micro-batches of
    #   one stage (0.5 * 557,056 + 0.5 * 557,056) = 1,671,168, + FP32 logits 512,000 (rank 0
    #   holds the LM head) = 2,183,168.
    dual = SCHEDULE_CODE["dualpipe"]
    x = layouts(pp=2, dp=[1, 2], zero=[0, 1], nmb=4, schedule=dual)
    mem = memory(shape_of(tiny_dense()), x)
    assert mem.weights.tolist() == [650_240, 650_240]
    assert mem.gradients.tolist() == [1_300_480, 1_300_480]
    assert mem.optimizer.tolist() == [3_901_440, 975_360]
    assert mem.activations.tolist() == [2_183_168, 2_183_168]
    # Table 2's ratios against 1F1B on the same layout: parameters 2x (650,240 vs 325,120),
    # activations (p + 1)/p of the first rank's p micro-batches (3 vs 2 stage's worth).
    one_f = memory(shape_of(tiny_dense()), layouts(pp=2, nmb=4))
    assert mem.weights[0] == 2 * one_f.weights[0]
    assert mem.activations[0] - 512_000 == (2 + 1) / 2 * one_f.activations[0]


def test_pipeline_split_both_on_126_layers() -> None:
    """Megatron-LM ``--account-for-embedding-in-pipeline-split`` and
    ``--account-for-loss-in-pipeline-split`` (``transformer_block.py``): Llama 3.1 405B's
    126 layers + 2 slots over pp=16 give (126 + 2) / 16 = 8 slots a stage: the first stage
    holds 8 - 1 = 7 layers, the middle ones 8, the last 7 (7 + 14 * 8 + 7 = 126)."""
    js = shape_of(solver.model("llama3.1-405b"))
    x = LayoutArrays.from_columns(accel=[0, 0], tp=8, pp=16, dp=1, cp=1, ep=1, vp=1, mb=1,
                                  nmb=16, zero=0, recompute=0, schedule=0,
                                  split=[SPLIT_CODE["both"], SPLIT_CODE["even"]])
    st = stages(js, x)
    assert st.first.dense.tolist()[0] == 7
    assert st.middle.dense.tolist()[0] == 8
    assert st.last.dense.tolist()[0] == 7
    assert 7 + 14 * 8 + 7 == 126
    # "even" (not a legal layout here: 126 % 16 != 0) would put ceil(126/16) = 8 on each.
    assert st.first.dense.tolist()[1] == 8


# ------------------------------------------------------------------------------ mixture of experts


def test_expert_weights_are_split_by_ep(layouts: LayoutFactory) -> None:
    # Replicated on every rank (pp=1): 2 * 17,024 + 64,000 + 64,000 = 162,048 parameters.
    # Experts: 2 layers * 8 * 24,576 = 393,216, split by ep = 1, 4, 8:
    #   393,216; 98,304; 49,152
    # ZeRO-0 weights 2 * (162,048 + experts): 1,110,528; 520,704; 422,400
    x = layouts(dp=8, ep=[1, 4, 8])
    js = shape_of(tiny_moe())
    assert stage_params(js, x, stages(js, x).first).experts.tolist() == [393_216, 98_304,
                                                                         49_152]
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


def test_bf16_moments_are_8_bytes_of_optimizer_state(layouts: LayoutFactory) -> None:
    """DeepSeek-V3 (arXiv:2412.19437, sec. 3.3.3) keeps Adam's moments in BF16 and the master
    weights in FP32: 4 + 2 + 2 = 8 bytes of optimizer state per parameter (12 with FP32
    moments)."""
    # tiny dense, pp=1: 325,120 parameters -> 8 * 325,120 = 2,600,960; ZeRO-1 over dp=4:
    # 650,240. Weights and gradients unchanged: 650,240 and 1,300,480.
    js = shape_of(tiny_dense(), moments_dtype="bf16")
    mem = memory(js, layouts(dp=[1, 4], zero=[0, 1]))
    assert mem.optimizer.tolist() == [2_600_960, 650_240]
    assert mem.weights.tolist() == [650_240, 650_240]
    assert mem.gradients.tolist() == [1_300_480, 1_300_480]


# ------------------------------------------------------------------------------ recompute modules
# Per token, bytes one layer keeps (activations.py; Korthikanti et al. 2022 sec. 4.1 for the
# GPT layer, DeepSeek-V2 arXiv:2405.04434 sec. 2.1 for MLA, DeepSeek-V3 arXiv:2412.19437
# sec. 3.3.3 for the FP8 caches; Megatron-LM --recompute-modules for the module names).


def test_layernorm_module_drops_the_qkv_and_mlp_inputs() -> None:
    """Megatron-LM ``--recompute-modules layernorm``: the norms' outputs (the QKV and the first
    MLP GEMM's inputs, 2h each in BF16) are recomputed from the norms' inputs, which stay."""
    # tiny dense, h=64, BF16, flash: 34h = 2,176 bytes per token; without the two norm
    # outputs 34h - 2h - 2h = 30h = 1,920. Full recomputation keeps none of the parts (its
    # 2h checkpoint is counted per layer by the stage, below).
    js = shape_of(tiny_dense())
    assert per_token(js.dense_act, "none") == 34 * 64
    assert per_token(js.dense_act, "layernorm") == 30 * 64
    assert per_token(js.dense_act, "full") == 0


def test_full_recompute_keeps_2sbh_over_t_per_layer(layouts: LayoutFactory) -> None:
    """Korthikanti Table 2 "full activation recompute": 2*s*b*h per layer, /t with sequence
    parallelism (sec. 4.2.2)."""
    # tiny dense s=128, b=2, h=64, 4 layers: 4 * 2 * 128 * 2 * 64 / t = 131,072 / t
    js = shape_of(tiny_dense())
    x = layouts(tp=[1, 2, 4], mb=2, recompute="full")
    stored = stage_activation_bytes(js, x, layers_stage(3, dense=4))
    assert stored.tolist() == [131_072, 65_536, 32_768]


def test_mla_up_proj_drops_the_up_projected_qkv() -> None:
    """``mla_up_proj``: MLA's up-projected Q, K, V (2 bytes each at their widths) are
    recomputed from the latents. DeepSeek-V3: 128 heads, q and k 128 * (128 + 64) = 24,576
    wide, v 128 * 128 = 16,384: 2 * (24,576 + 24,576 + 16,384) = 131,072 bytes per token."""
    js = shape_of(solver.model("deepseek-v3"), seq_len=4096)
    for act in (js.dense_act, js.moe_act):
        dropped = per_token(act, "none") - per_token(act, "mla_up_proj")
        assert dropped == 2 * (128 * (128 + 64) * 2 + 128 * 128)
        assert dropped == 131_072


def test_moe_act_drops_expert_activation_and_fp8_halves_swiglu_input() -> None:
    """``moe_act``: the routed experts' activation output is recomputed; in an FP8 job
    DeepSeek-V3 also caches the SwiGLU input in FP8 (sec. 3.3.3), half its BF16 bytes."""
    # tiny MoE: h=64, 8 experts top-2 of SwiGLU f=128, no shared expert, flash.
    # BF16, per token:
    #   attention: norm input 2h 128 + QKV input 2h 128 + Q, K, V 2 * 3 * 64 = 384
    #     + projection input 128 + dropout mask 64 = 832
    #   MoE: norm input 128 + its output 128 + FP32 router logits 4 * 8 = 32
    #     + per routed copy (2): input 2h 128 + gate and up 2 * 2f = 512 + act output 2f = 256
    #       -> 2 * 896 = 1,792
    #     + dropout mask 64 = 2,144
    #   total 2,976; moe_act drops 2 * 256 = 512 -> 2,464
    bf16 = shape_of(tiny_moe())
    assert per_token(bf16.moe_act, "none") == 2_976
    assert per_token(bf16.moe_act, "moe_act") == 2_464
    # FP8 (linear inputs 1 byte): attention 128 + 64 + 384 + 64 + 64 = 704;
    #   MoE 128 + 64 + 32 + 2 * (64 + 512 + 128) + 64 = 1,696; total 2,400.
    #   moe_act drops the act output 2 * 128 = 256 and caches the SwiGLU input (2 * 2f = 512
    #   BF16 bytes per copy) in FP8: 2 * 256 = 512 saved -> 2,400 - 256 - 512 = 1,632.
    fp8 = shape_of(tiny_moe(), precision="fp8")
    assert per_token(fp8.moe_act, "none") == 2_400
    assert per_token(fp8.moe_act, "moe_act") == 1_632
    # ``moe`` recomputes the whole MoE block: everything after the norm input but the mask.
    assert per_token(fp8.moe_act, "moe") == 704 + 128 + 64


def test_deepseek_v3_recipe_per_layer() -> None:
    """DeepSeek-V3's recompute set (arXiv:2412.19437 sec. 3.3.3 / Megatron-LM's DeepSeek-V3
    recipe): ``layernorm+mla_up_proj+moe_act`` in FP8, flash attention, per token.

    Attention (h = 7,168): norm input 2h 14,336 (kept); QKV input h (layernorm drops);
    MLA latents' norm input 2 * (1,536 + 512 + 64) = 4,224 (kept); normalised latents 2,048
    (layernorm drops); Q, K, V 131,072 (mla_up_proj drops); projection input 128*128 = 16,384
    (FP8, kept); dropout mask h 7,168 -> kept 14,336 + 4,224 + 16,384 + 7,168 = 42,112.
    Dense MLP (f = 18,432): norm input 14,336; its output (dropped); gate and up 4f = 73,728;
    activation output f = 18,432 (FP8); mask 7,168 -> 113,664. Dense layer 155,776.
    MoE (8 routed, 1 shared expert of f = 2,048): norm input 14,336; its output (dropped);
    router logits 4 * 256 = 1,024; routed inputs 8 * 7,168 = 57,344; routed gate and up
    8 * 4 * 2,048 = 65,536, cached in FP8: 32,768; routed act outputs (dropped); shared gate
    and up 8,192 and act output 2,048; mask 7,168 -> 122,880. MoE layer 164,992.
    """
    js = shape_of(solver.model("deepseek-v3"), seq_len=4096, precision="fp8")
    recipe = "layernorm+mla_up_proj+moe_act"
    assert per_token(js.dense_act, recipe) == 42_112 + 113_664 == 155_776
    assert per_token(js.moe_act, recipe) == 42_112 + 122_880 == 164_992


def test_mtp_module_on_the_last_stage() -> None:
    """DeepSeek-V3's MTP module (arXiv:2412.19437 sec. 2.2; ``mtp_layers`` 1): a projection
    M (2h x h) and one transformer layer (MoE here), sharing the embedding and the LM head,
    held by the last pipeline stage; pipeline_split "both" gives (61 + 1 + 2) / 16 = 4 slots
    a stage: the first stage holds 4 - 1 = 3 layers (the 3 dense ones), the middle 4 MoE, the
    last 4 - 1 (loss) - 1 (MTP) = 2 MoE + the MTP module (3 + 14 * 4 + 2 = 61).

    Parameters (solver/presets/deepseek-v3.toml): dense layer 583,483,392; MoE layer without
    its routed experts 232,996,864; a routed expert 44,040,192; embedding and LM head
    926,679,040 each. Last stage, replicated: 2 * 232,996,864 + (2 * 7,168^2 = 102,760,448
    + 232,996,864) + 926,679,040 = 465,993,728 + 335,757,312 + 926,679,040 = 1,728,430,080;
    routed experts over ep=64: (2 + 1) layers * 256 / 64 * 44,040,192 = 528,482,304.
    First stage: 3 * 583,483,392 + 926,679,040 = 2,677,129,216, no experts.
    """
    js = shape_of(solver.model("deepseek-v3"), seq_len=4096)
    x = LayoutArrays.from_columns(accel=[0], tp=1, pp=16, dp=128, cp=1, ep=64, vp=1, mb=1,
                                  nmb=120, zero=1, recompute=0, schedule=0,
                                  split=SPLIT_CODE["both"])
    st = stages(js, x)
    assert (st.first.dense.tolist(), st.first.moe.tolist(), st.first.mtp.tolist()) == (
        [3], [0], [0])
    assert (st.middle.dense.tolist(), st.middle.moe.tolist()) == ([0], [4])
    assert (st.last.dense.tolist(), st.last.moe.tolist(), st.last.mtp.tolist()) == (
        [0], [2], [1])
    last = stage_params(js, x, st.last)
    assert last.replicated.tolist() == [2 * 232_996_864 + 2 * 7168**2 + 232_996_864
                                        + 926_679_040]
    assert last.replicated.tolist() == [1_728_430_080]
    assert last.experts.tolist() == [528_482_304]
    first = stage_params(js, x, st.first)
    assert first.replicated.tolist() == [2_677_129_216]
    assert first.experts.tolist() == [0]


def test_xla_keeps_the_logits_in_bf16(layouts: LayoutFactory,
                                      test_gpu: solver.Accelerator) -> None:
    # The case above with m = 1 (the last stage reported): its activations are one
    # micro-batch 557,056 + FP32 logits 4 * 128 * 1000 = 512,000 -> 1,069,056 on a GPU. A
    # compiler-planned runtime (XLA on TPU) fuses the loss's upcast and keeps the LM head's BF16
    # output: 2 * 128 * 1000 = 256,000 -> 813,056.
    js = shape_of(tiny_dense(position="learned"))
    x = layouts(pp=2, nmb=[1])
    gpu = HardwareTable.build([test_gpu], "bf16")
    tpu = HardwareTable.build([dataclasses.replace(test_gpu, family="google-tpu")], "bf16")
    assert memory(js, x, hw=gpu).activations.tolist() == [1_069_056]
    assert memory(js, x, hw=tpu).activations.tolist() == [813_056]
