"""Pipeline schedules, stage composition, recomputation and tensor-parallel counts against
figures worked out by hand from the formulas the modules cite.

The end-to-end checks reuse ``test_timing``'s made-up ``test-gpu`` (BF16 matmuls at
100e12 * 0.8 = 8e13 FLOP/s, HBM 1e12 B/s, NVLink 1e11 B/s in domains of 8), its ``PLAIN``
calibration and its 4-layer ``calc`` model (h = 1024, s = 1024, V = 1000). Per layer and
micro-batch of 1024 tokens (``test_timing``'s docstring):
  matmuls g = 1024 * 25,165,824 / 8e13 = 3.2212254720e-4 s per pass
  scores  c = 1024 * 4,194,304 * 0.5 / 8e13 = 2.68435456e-5 s per product (causal half)
  F = g + c, B = g + 2.5c (flash attention's backward recomputes QK^T: five matmuls against
  the forward's two, Dao 2023, arXiv:2307.08691, Algorithm 2), W = g (Qi et al. 2024,
  arXiv:2401.10241, Table 1); F + B + W = 3g + 3.5c = 1.06032005120e-3 s
LM head: GEMM 1024 * 2,048,000 / 8e13 = 2.62144e-5 s and its FP32 logits written and read
2 * 4 * 1024 * 1000 / 1e12 = 8.192e-6 s, in each of F, B and W: 3.44064e-5 s a pass.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import LayoutFactory
from test_timing import HEAD_3_PASSES, LAYER_3_PASSES, LOGITS, PLAIN, REPLICA_PARAMS, calc, run

import solver
from solver.layout_options import DUALPIPE, ONE_F_ONE_B, ZERO_BUBBLE
from solver.stepmodel import compute
from solver.stepmodel.arrays import HardwareTable
from solver.stepmodel.evaluate import stages_fit
from solver.stepmodel.pipeline import (
    bubble,
    microbatch_grain,
    rank_weights,
    schedule_rules,
    stages,
    unpaired_share,
)
from solver.stepmodel.shape import job_shape
from solver.stepmodel.tensor import tensor_comm

G = 3.2212254720e-4  # a layer's matmuls, one pass
C_ = 2.68435456e-5  # a layer's attention scores, one product
HEAD_PASS = 3.44064e-5  # LM head GEMM + logits traffic, one pass
PP_SEND = 2 * 2.097152e-5  # one boundary send each way per micro-batch (test_timing)


# ------------------------------------------------------------------------------ bubbles


def test_bubble_formulas_of_each_schedule(layouts: LayoutFactory) -> None:
    # F = 3, B = 4, W = 2 (seconds, made up), p = 4, 8 micro-batches.
    #   1F1B: (p-1)(F+B+W) = 3 * 9 = 27 (Narayanan et al. 2021, sec. 2.2.1)
    #   interleaved v = 2: 27 / 2 = 13.5 (sec. 2.2.2)
    #   ZB-H1: (p-1)(F+B-W) = 3 * 5 = 15 (Qi et al. 2024, arXiv:2401.10241, Table 2)
    #   DualPipe: (p/2-1)(F&B + B' - 3W) with F&B = F+B+W = 9 and B' = B+W = 6 (the full
    #     backward): 1 * (9 + 6 - 6) = 9 (DeepSeek-V3, arXiv:2412.19437, Table 2);
    #     p = 8: 3 * 9 = 27.
    x = layouts(pp=[4, 4, 4, 4, 8], vp=[1, 2, 1, 1, 1],
                schedule=[ONE_F_ONE_B, ONE_F_ONE_B, ZERO_BUBBLE, DUALPIPE, DUALPIPE], nmb=16)
    f, b, w = np.full(5, 3.0), np.full(5, 4.0), np.full(5, 2.0)
    assert bubble(x, f, b, w).tolist() == pytest.approx([27.0, 13.5, 15.0, 9.0, 27.0],
                                                       rel=1e-12)
    # A weight-gradient pass longer than F + B leaves ZB-H1 no bubble (it cannot go negative):
    # F = 1, B = 1, W = 3: (p-1) * max(0, -1) = 0; DualPipe F+2B-W = 0 too.
    one, three = np.ones(5), np.full(5, 3.0)
    assert bubble(x, one, one, three)[2:4].tolist() == [0.0, 0.0]
    # One stage: no bubble under any schedule.
    single = layouts(pp=1, schedule=[ONE_F_ONE_B, ZERO_BUBBLE, DUALPIPE], nmb=4)
    assert bubble(single, f[:3], b[:3], w[:3]).tolist() == [0.0, 0.0, 0.0]


def test_schedules_order_their_bubbles_end_to_end(test_gpu: solver.Accelerator) -> None:
    # calc on pp = 4 (one layer a stage), 8 micro-batches, each schedule in turn.
    # 1F1B and ZB-H1: the last rank is the slowest (its layer plus the LM head):
    #   F = g + c + head = 3.8337249280e-4, B = g + 2.5c + head = 3.2212254720e-4
    #   + 6.7108864e-5 + 3.44064e-5 = 4.2363781120e-4, W = g + head = 3.5652894720e-4;
    #   F+B+W = 1.16353925120e-3 s
    #   its pipeline sends (4.194304e-5 s, exposed) spread over the passes in proportion to
    #   them: each pass * (1 + 4.194304e-5 / 1.16353925120e-3) (timing.py)
    #   1F1B: 3 * (1.16353925120e-3 + 4.194304e-5)
    #   ZB-H1: 3 * (F + B - W) * (1 + share), F + B - W = g + 3.5c + head = 3.2212254720e-4
    #   + 9.395240960e-5 + 3.44064e-5 = 4.5048135680e-4
    # DualPipe: the edge rank runs stages 0 and 3, half its micro-batches each: per
    #   micro-batch F = g + c + head/2, B = g + 2.5c + head/2, W = g + head/2, together
    #   3g + 3.5c + 1.5 head = 9.663676416e-4 + 9.39524096e-5 + 5.16096e-5 = 1.1119296512e-3 s.
    #   Its sends hide under the other direction's computation, but for the 5 of 8
    #   micro-batches DualPipe runs unpaired on it (pipeline.unpaired_share): 5/8 of the
    #   sends stay exposed and spread over the passes. Bubble (p/2-1)(F + 2B - W)
    #   = 2g + 6c + head = 6.4424509440e-4 + 1.61061273600e-4 + 3.44064e-5 = 8.3971276800e-4 s
    #   before that spread.
    def bubble_of(schedule: str) -> float:
        return run(test_gpu, global_batch=8, tp=1, pp=4, dp=1,
                   schedule=schedule).time_breakdown_s["bubble"]

    share = PP_SEND / 1.16353925120e-3
    one_f = bubble_of("1f1b")
    zb = bubble_of("zero-bubble")
    dual = bubble_of("dualpipe")
    assert one_f == pytest.approx(3 * (1.16353925120e-3 + PP_SEND), rel=1e-12)
    assert zb == pytest.approx(3 * 4.5048135680e-4 * (1 + share), rel=1e-12)
    dual_share = 5 / 8 * PP_SEND / 1.1119296512e-3
    assert dual == pytest.approx(8.3971276800e-4 * (1 + dual_share), rel=1e-12)
    assert dual < zb < one_f


def test_dualpipe_edge_rank_averages_first_and_last_stage(
        test_gpu: solver.Accelerator) -> None:
    # pp = 2, 4 micro-batches. Under DualPipe each rank holds stages 0 and 1 (DeepSeek-V3
    # sec. 3.2.1, "two copies of the model parameters") and runs half the micro-batches through
    # each: per micro-batch 1/2 (2 layers) + 1/2 (2 layers + LM head).
    #   compute 4 * (2 * 1.06032005120e-3 + 7.86432e-5 / 2) = 8.6398468096e-3 s;
    #   logits 4 * 2.4576e-5 / 2
    #   bubble (p/2 - 1) = 0; the sends hide under the computation but for the 3 of 4
    #   micro-batches DualPipe runs unpaired with p = 2 (pipeline.unpaired_share):
    #   pp_comm 4 * 3/4 * PP_SEND.
    # Weights: both stages, the whole replica, 2 * 52,387,840 bytes; under 1F1B a rank holds
    # 2 layers + the embedding (or the head): 2 * (2 * 12,584,960 + 1,024,000) bytes.
    dual = run(test_gpu, global_batch=4, tp=1, pp=2, dp=1, schedule="dualpipe")
    t = dual.time_breakdown_s
    assert t["compute"] == pytest.approx(4 * (2 * LAYER_3_PASSES + HEAD_3_PASSES / 2),
                                         rel=1e-12)
    assert t["memory_bound"] == pytest.approx(4 * LOGITS / 2, rel=1e-12)
    assert t["bubble"] == 0.0
    assert t["pp_comm"] == pytest.approx(4 * 3 / 4 * PP_SEND, rel=1e-12)
    gib = 2.0**30
    assert dual.memory_breakdown_gib["weights"] == pytest.approx(2 * REPLICA_PARAMS / gib,
                                                                 rel=1e-12)
    plain = run(test_gpu, global_batch=4, tp=1, pp=2, dp=1)
    assert plain.memory_breakdown_gib["weights"] == pytest.approx(
        2 * (2 * 12_584_960 + 1_024_000) / gib, rel=1e-12)


def test_rank_weights(layouts: LayoutFactory) -> None:
    # 1F1B: rank i holds stage i alone. DualPipe: rank i holds stages i and p-1-i, each for
    # half its micro-batches; the edge ranks hold the first and the last stage (time 1/2 each,
    # both stages' parameters), a middle rank two middle stages (parameters twice).
    x = layouts(pp=4, schedule=[ONE_F_ONE_B, DUALPIPE])
    edge, middle, last = rank_weights(x)
    assert [w.tolist() for w in edge.time] == [[1.0, 0.5], [0.0, 0.0], [0.0, 0.5]]
    assert [w.tolist() for w in edge.params] == [[1.0, 1.0], [0.0, 0.0], [0.0, 1.0]]
    assert [w.tolist() for w in middle.time] == [[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]]
    assert [w.tolist() for w in middle.params] == [[0.0, 0.0], [1.0, 2.0], [0.0, 0.0]]
    assert [w.tolist() for w in last.time] == [[0.0, 0.5], [0.0, 0.0], [1.0, 0.5]]
    assert [w.tolist() for w in last.params] == [[0.0, 1.0], [0.0, 0.0], [1.0, 1.0]]



def test_unpaired_micro_batches_walked_through_the_schedules(layouts: LayoutFactory) -> None:
    # DualPipe, p = 4 (H = 2), 8 micro-batches, walked through deepseek-ai/DualPipe
    # DualPipe.step. Rank 0 (h = 0): step 1 runs 2 forwards alone, step 2 two (F0, F1), step 3
    # one backward, a weight chunk and one forward; step 4 (8/2 - 4 + 1 = 1 round) pairs F0&B1
    # and F1&B0, step 5 runs B1 alone and pairs F1&B0; step 6 runs B1 and B0, step 7 B0:
    # forwards alone 2 + 2 + 1 = 5 (paired 3), backwards alone 1 + 1 + 2 + 1 = 5 (paired 3).
    # Rank 1 (h = 1 = H - 1, a middle rank): step 2 runs 2 rounds of F0, F1 (4 alone), step 4
    # (2 rounds) leaves its first F0 and B1 unpaired and pairs 3, step 6 runs 4 backwards
    # alone: 5 and 5 again. 3H - h - 1 (+1 for h = H - 1) gives 5 for both.
    x = layouts(pp=4, nmb=8, schedule=DUALPIPE)
    assert [float(u[0]) for u in unpaired_share(x)] == [5 / 8, 5 / 8, 5 / 8]
    # DeepSeek-V3's p = 16 (H = 8) with 120 micro-batches: the edge ranks 3*8 - 1 = 23, the
    # busiest middle rank (h = 1) 3*8 - 2 = 22.
    x = layouts(pp=16, nmb=120, schedule=DUALPIPE)
    assert [float(u[0]) for u in unpaired_share(x)] == [23 / 120, 22 / 120, 23 / 120]
    # p = 2: one rank pair, h = 0 = H - 1: steps 2 and 4 leave 3 forwards and 3 backwards.
    x = layouts(pp=2, nmb=4, schedule=DUALPIPE)
    assert float(unpaired_share(x)[0][0]) == 3 / 4
    # Megatron-LM's combined 1F1B without a pipeline: the first forward and the last backward
    # run alone (combined_1f1b.py, "Phases 0: 1st microbatch forward"): 1 of 4.
    x = layouts(pp=1, nmb=4)
    assert [float(u[0]) for u in unpaired_share(x)] == [1 / 4, 1 / 4, 1 / 4]
    # Interleaved, p = 8, v = 4, 128 micro-batches (Megatron-Bridge's DeepSeek-V3 on H100):
    # rank i warms up 2(7 - i) + 3*8 chunks and one more with the overlap (schedules.py):
    # 39, 37 and 25 chunks of 1/4 on ranks 0, 1 and 7.
    x = layouts(pp=8, vp=4, nmb=128)
    assert [float(u[0]) for u in unpaired_share(x)] == [39 / 4 / 128, 37 / 4 / 128,
                                                         25 / 4 / 128]
    # Plain 1F1B, p = 4, 8 micro-batches: p - i, i.e. 4, 3 and 1; never more than all of them.
    x = layouts(pp=4, nmb=[8, 2])
    assert [u.tolist() for u in unpaired_share(x)] == [[4 / 8, 1.0], [3 / 8, 1.0],
                                                       [1 / 8, 1 / 2]]

# ------------------------------------------------------------------------------ stages


def moe_model(**fields: object) -> solver.ModelSpec:
    spec: dict[str, object] = dict(name="moe", layers=12, hidden=256, heads=4, vocab=1000,
                                   experts=4, top_k=2, dense_layers=3, mtp_layers=1,
                                   seq_len=256)
    spec.update(fields)
    return solver.ModelSpec(**spec)  # type: ignore[arg-type]


def test_stage_composition_dense_first_split_slots_and_mtp(layouts: LayoutFactory) -> None:
    # 12 layers (3 dense first, then 9 MoE), 1 MTP module on the last stage
    # (Megatron-LM transformer_block.py; DeepSeek-V3 sec. 2.2).
    # split "both" (code 3): slots 12 + 1 + 1 (embedding) + 1 (loss) = 15.
    #   pp = 3: 5 a stage. First: 5 - 1 = 4 layers, layers 0-3: 3 dense + 1 MoE.
    #     Middle: layers 4-8, all MoE. Last: 5 - 1 (loss) - 1 (MTP) = 3 layers, 9-11, MoE.
    #   pp = 5: 3 a stage. First: 2 layers (0-1, dense). Middles: 2-4 (1 dense), 5-7, 8-10;
    #     the one with the most MoE layers holds 3 MoE. Last: 3 - 1 - 1 = 1 layer (11).
    # split "even" (code 0), no MTP, 7 dense of 12, pp = 3: 4 a stage; first 0-3 all dense;
    #   middle 4-7: 3 dense (4-6) + 1 MoE; last 8-11 all MoE.
    # pp = 1: one stage holds everything, embedding and head.
    js = job_shape(solver.TrainingJob(model=moe_model(), tokens=1e9))
    st = stages(js, layouts(pp=[3, 5], split=3))
    assert st.per_stage.tolist() == [5, 3]
    assert st.first.dense.tolist() == [3, 2] and st.first.moe.tolist() == [1, 0]
    assert st.middle.dense.tolist() == [0, 0] and st.middle.moe.tolist() == [5, 3]
    assert st.last.dense.tolist() == [0, 0] and st.last.moe.tolist() == [3, 1]
    assert st.last.mtp.tolist() == [1, 1] and st.first.mtp.tolist() == [0, 0]
    assert st.first.embedding.all() and not st.first.head.any()
    assert st.last.head.all() and not st.last.embedding.any()

    js7 = job_shape(solver.TrainingJob(model=moe_model(dense_layers=7, mtp_layers=0),
                                       tokens=1e9))
    st7 = stages(js7, layouts(pp=3))
    assert (st7.first.dense.tolist(), st7.first.moe.tolist()) == ([4], [0])
    assert (st7.middle.dense.tolist(), st7.middle.moe.tolist()) == ([3], [1])
    assert (st7.last.dense.tolist(), st7.last.moe.tolist()) == ([0], [4])

    one = stages(js, layouts(pp=1))
    assert (one.first.dense.tolist(), one.first.moe.tolist(),
            one.first.mtp.tolist()) == ([3], [9], [1])
    assert one.first.embedding.all() and one.first.head.all()


def test_layers_mtp_and_split_slots_must_divide_the_stages(layouts: LayoutFactory) -> None:
    # (L + mtp + slots) % (pp * vp) == 0, each stage keeping a layer (Megatron-LM's rule).
    # 12 + 1 MTP: 13 slots even, 14 with one split slot, 15 with both.
    job = solver.TrainingJob(model=moe_model(), tokens=1e9)
    #   even (13): pp 13 fits, pp 2 does not; embedding (14): pp 2 and pp 7 fit, pp 4 does
    #   not; pp 2 x vp 7 divides 14 but leaves the embedding's chunk 1 - 1 = 0 layers:
    #   refused; both (15): pp 3 and 5 fit; pp 15 leaves the first stage 1 - 1 = 0 layers:
    #   refused.
    x = layouts(pp=[13, 2, 2, 7, 2, 4, 3, 5, 15], vp=[1, 1, 1, 1, 7, 1, 1, 1, 1],
                split=[0, 0, 1, 1, 1, 1, 3, 3, 3])
    assert stages_fit(job, x).tolist() == [True, False, True, True, False, False, True, True,
                                           False]
    # Without MTP, 12 layers even: pp 2 x vp 3 (2 a chunk) fits, pp 4 x vp 2 (12 % 8) does not.
    plain = solver.TrainingJob(model=moe_model(mtp_layers=0), tokens=1e9)
    y = layouts(pp=[2, 4], vp=[3, 2])
    assert stages_fit(plain, y).tolist() == [True, False]


# ------------------------------------------------------------------------------ schedules


def test_schedule_rules(layouts: LayoutFactory) -> None:
    # Interleaving: a multiple of p micro-batches (Megatron-LM schedules.py); zero-bubble:
    # vp = 1 and at least p; DualPipe: vp = 1, even p, an even count of at least 2p
    # (deepseek-ai/DualPipe dualpipe.py).
    cases = [  # (schedule, pp, vp, nmb, satisfied)
        (ONE_F_ONE_B, 4, 1, 1, True), (ONE_F_ONE_B, 4, 2, 8, True),
        (ONE_F_ONE_B, 4, 2, 4, True), (ONE_F_ONE_B, 4, 2, 6, False),
        (ONE_F_ONE_B, 4, 2, 2, False),
        (ZERO_BUBBLE, 4, 1, 4, True), (ZERO_BUBBLE, 4, 1, 3, False),
        (ZERO_BUBBLE, 4, 2, 8, False), (ZERO_BUBBLE, 4, 1, 9, True),
        (DUALPIPE, 4, 1, 8, True), (DUALPIPE, 4, 1, 10, True), (DUALPIPE, 4, 1, 6, False),
        (DUALPIPE, 4, 1, 9, False), (DUALPIPE, 3, 1, 6, False), (DUALPIPE, 4, 2, 8, False),
    ]
    x = layouts(schedule=[c[0] for c in cases], pp=[c[1] for c in cases],
                vp=[c[2] for c in cases], nmb=[c[3] for c in cases])
    assert schedule_rules(x, x.nmb).tolist() == [c[4] for c in cases]


def test_microbatch_grain_matches_the_schedule_rules(layouts: LayoutFactory) -> None:
    # Brute force: for every valid (schedule, pp, vp), the counts 1..64 the rules accept are
    # exactly the multiples of ``step`` that are at least ``least``.
    combos = [(ONE_F_ONE_B, p, v) for p in (1, 2, 3, 4, 8) for v in (1, 2, 3)] \
        + [(ZERO_BUBBLE, p, 1) for p in (2, 3, 4, 8)] + [(DUALPIPE, p, 1) for p in (2, 4, 8)]
    for schedule, p, v in combos:
        m = np.arange(1, 65)
        x = layouts(schedule=schedule, pp=p, vp=v, nmb=list(m))
        step, least = microbatch_grain(x)
        grain = (m % step == 0) & (m >= least)
        assert (schedule_rules(x, x.nmb) == grain).all(), (schedule, p, v)


# ------------------------------------------------------------------------------ recomputation


def test_recompute_modules_repeat_their_own_forward_work(
        test_gpu: solver.Accelerator, layouts: LayoutFactory) -> None:
    # selective (core_attn): each layer repeats its attention scores' forward, c per layer:
    #   compute 4 * 1.06032005120e-3 + 7.86432e-5 + 4 * 2.68435456e-5 = 4.31992340480e-3
    #   + 1.073741824e-4 = 4.42729758720e-3 s (the forward's c, not the backward's 2.5c).
    # full: each layer's forward again, 4 * (g + c) more: 4.31992340480e-3 + 1.39586437120e-3
    #   = 5.71578777600e-3 s.
    base = 4 * LAYER_3_PASSES + HEAD_3_PASSES
    sel = run(test_gpu, tp=1, pp=1, dp=1, recompute="selective").time_breakdown_s
    full = run(test_gpu, tp=1, pp=1, dp=1, recompute="full").time_breakdown_s
    assert sel["compute"] == pytest.approx(base + 4 * C_, rel=1e-12)
    assert full["compute"] == pytest.approx(base + 4 * (G + C_), rel=1e-12)

    # mla_up_proj: an MLA model (q_lora 256, kv_lora 128, 8 heads, nope 128, rope 64, v 128)
    # repeats its up-projections: q 256 * 8 * (128 + 64) = 393,216 and kv
    # 128 * 8 * (128 + 128) = 262,144 weights, 2 * 655,360 = 1,310,720 FLOPs per token;
    # 1024 tokens at 8e13 FLOP/s: 1.6777216e-5 s per layer.
    mla = dataclasses.replace(calc(), q_lora_rank=256, kv_lora_rank=128, qk_rope_head_dim=64,
                              v_head_dim=128)
    js = job_shape(solver.TrainingJob(model=mla, tokens=1e9))
    hw = HardwareTable.build([test_gpu], "bf16")
    x = layouts(recompute=["none", "mla_up_proj", "selective"])
    r = compute.rates(js, x, hw, PLAIN)
    k = compute.layer_kernels(js, x, r, PLAIN, moe=False)
    # MLA scores: 2 * 1024 * 8 * (128 + 64 + 128) = 5,242,880 FLOPs per token; flash half:
    # 1024 * 5,242,880 * 0.5 / 8e13 = 3.3554432e-5 s at head width 128's rate; a score of
    # 2 * (192 + 128) = 640 FLOPs runs at (640 / 893.59) / (512 / 765.59) = 1.070947 of it
    # (an exponential worth 989 / 3.9 = 253.59 matmul FLOPs): 3.133155e-5 s.
    assert k.recompute.tolist() == pytest.approx([0.0, 1.6777216e-5, 3.133155e-5], rel=1e-6)
    # Hardware FLOPs (compute.hardware_flops_per_token): the FLOP count without the causal
    # discount: 4 layers * 1,310,720 for mla_up_proj, 4 * 5,242,880 for the scores.
    extra = compute.hardware_flops_per_token(js, x) - js.model_flops_per_token
    assert extra.tolist() == pytest.approx([0.0, 4 * 1_310_720, 4 * 5_242_880], rel=1e-12)


def test_hardware_flops_of_full_and_selective_recomputation(layouts: LayoutFactory) -> None:
    # calc per token: layer 25,165,824 + scores 4,194,304 = 29,360,128; head 2,048,000.
    #   model 3 * (4 * 29,360,128 + 2,048,000) = 358,465,536 (Narayanan et al. eq. 3)
    #   selective + 4 * 4,194,304 = 375,242,752; full + 4 * 29,360,128 = 475,906,048
    #   (full repeats every layer's forward, not the head's).
    js = job_shape(solver.TrainingJob(model=calc(), tokens=1e9))
    x = layouts(recompute=["none", "selective", "full"])
    assert compute.hardware_flops_per_token(js, x).tolist() == [358_465_536, 375_242_752,
                                                                 475_906_048]


# ------------------------------------------------------------------------------ tensor parallel


def test_tensor_parallel_collective_counts(test_gpu: solver.Accelerator,
                                          layouts: LayoutFactory) -> None:
    # tp = 2, calc: one collective moves 1/2 of 2 * 1024 * 1024 bytes (BF16) over 1e11 B/s,
    # u = 1.048576e-5 s (Megatron-LM with sequence parallelism, tensor.py):
    #   forward 2 gathers + 2 scatters exposed = 4u; backward 2 gathers exposed = 2u;
    #   2 gathers + 2 scatters under the backward GEMMs = 4u; full recompute repeats 4u.
    # FP8: the gathers move 1 byte an element, u/2; the scatters stay BF16:
    #   forward 2 * u/2 + 2u = 3u, backward u, hideable 3u.
    u = 1.048576e-5
    hw = HardwareTable.build([test_gpu], "bf16")
    x = layouts(tp=2, recompute=["none", "full"])
    bf16 = tensor_comm(job_shape(solver.TrainingJob(model=calc(), tokens=1e9)), x, hw, PLAIN)
    assert bf16.forward.tolist() == pytest.approx([4 * u, 4 * u], rel=1e-12)
    assert bf16.backward.tolist() == pytest.approx([2 * u, 2 * u], rel=1e-12)
    assert bf16.hideable.tolist() == pytest.approx([4 * u, 4 * u], rel=1e-12)
    assert bf16.recompute.tolist() == pytest.approx([0.0, 4 * u], rel=1e-12)
    fp8 = tensor_comm(job_shape(solver.TrainingJob(model=calc(), tokens=1e9, precision="fp8")),
                      x, hw, PLAIN)
    assert fp8.forward.tolist() == pytest.approx([3 * u, 3 * u], rel=1e-12)
    assert fp8.backward.tolist() == pytest.approx([u, u], rel=1e-12)
    assert fp8.hideable.tolist() == pytest.approx([3 * u, 3 * u], rel=1e-12)


def test_tensor_parallel_time_end_to_end(test_gpu: solver.Accelerator) -> None:
    # tp = 2 with full recomputation: per layer 4u + 2u + 4u (recompute) exposed, 4u hidden
    # under the backward GEMMs (2 * 1.6106127360e-4 s a layer): 10u * 4 layers
    # = 4.194304e-4 s.
    u = 1.048576e-5
    full = run(test_gpu, tp=2, pp=1, dp=1, recompute="full").time_breakdown_s
    assert full["tp_comm"] == pytest.approx(40 * u, rel=1e-12)
    # At 1/100 of the link rate (scale-up efficiency 0.01) u = 1.048576e-3 and the 4u a layer
    # outlast the GEMMs: hidden only as far as the stage's backward GEMMs last. timing.py sums
    # them over the stage, the LM head's included: 4 layers * 2 * 1024 * 25,165,824 / 2 / 8e13
    # = 1.28849018880e-3, head 2 * 1024 * 2,048,000 / 2 / 8e13 = 2.62144e-5;
    # exposed 4 * 10u - 1.31470458880e-3 = 4.062833541120e-2 s.
    slow = dataclasses.replace(PLAIN, scaleup_bus_efficiency=0.01)
    t = run(test_gpu, tp=2, pp=1, dp=1, cal=slow).time_breakdown_s
    assert t["tp_comm"] == pytest.approx(4.062833541120e-2, rel=1e-12)
