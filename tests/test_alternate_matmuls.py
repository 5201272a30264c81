"""torchtitan's per-op selective checkpointing (``recompute = "alternate_matmuls"``): what it
keeps and repeats, against hand arithmetic from its policy (pytorch/torchtitan
``torchtitan/models/llama3/infra/parallelize.py``: the outputs of ``aten.mm`` and of the
attention kernel are saved, except every second mm of a layer).

Llama 3 8B: h = 4096, 32 query heads and 8 KV heads of 128, gated FFN 14336. Its layer runs the
matmuls Q, K, V, O, gate, up, down in that order: Q, V, gate and down are kept (1st, 3rd, 5th,
7th), K, O and up recomputed.
"""

from __future__ import annotations

import pytest

import solver
from solver.launchers import mask_refusal
from solver.layout_options import (
    ALTERNATE_BIT,
    FULL_BIT,
    MODULE_BIT,
    all_recompute_masks,
    canonical_mask,
    recompute_code,
    recompute_name,
)
from solver.stepmodel.shape import job_shape

H, Q, KV, F = 4096, 32 * 128, 8 * 128, 14336


def llama8b_job(**fields: object) -> solver.TrainingJob:
    return solver.TrainingJob(model=solver.model("llama3-8b"), tokens=1e12, seq_len=8192,
                              global_batch=512, **fields)  # type: ignore[arg-type]


def test_the_name_parses_stands_alone_and_is_searched() -> None:
    assert recompute_code("alternate_matmuls") == ALTERNATE_BIT
    assert recompute_name(ALTERNATE_BIT) == "alternate_matmuls"
    # Like full recomputation it takes no module beside it, and full wins over it.
    assert canonical_mask(ALTERNATE_BIT | MODULE_BIT["mlp"]) == ALTERNATE_BIT
    assert canonical_mask(ALTERNATE_BIT | FULL_BIT) == FULL_BIT
    assert ALTERNATE_BIT in all_recompute_masks()
    with pytest.raises(solver.SpecError, match="alternate_matmuls"):
        recompute_code("every_matmul")


def test_stored_bytes_per_token_of_a_dense_layer() -> None:
    js = job_shape(llama8b_job())
    # input 2h, Q 2*4096, V 2*1024, attention output 2*4096, gate 2*14336, down 2h
    expected = 2 * H + 2 * Q + 2 * KV + 2 * Q + 2 * F + 2 * H
    assert expected == 63_488
    assert js.dense_act.alternate_bytes == expected


def test_repeated_work_of_a_dense_layer() -> None:
    js = job_shape(llama8b_job())
    cost = js.dense_recompute[ALTERNATE_BIT]
    # K (h x 1024), O (4096 x h) and up (h x 14336) again: 2 FLOPs per weight and token.
    assert cost.matmul_flops == 2 * (H * KV + Q * H + H * F) == 159_383_552
    assert cost.expert_flops == 0.0 and cost.score_flops == 0.0


def test_an_moe_layer_recomputes_its_whole_expert_block() -> None:
    # Mixtral 8x7B: h 4096, 32 heads / 8 KV of 128, 8 experts of 14336, top-2.
    js = job_shape(solver.TrainingJob(model=solver.model("mixtral-8x7b"), tokens=1e12,
                                      seq_len=4096, global_batch=512))
    assert js.moe_act.alternate_bytes == 2 * (H + Q + KV + Q) + 4 * 8
    cost = js.moe_recompute[ALTERNATE_BIT]
    moe = js.moe_recompute[MODULE_BIT["moe"]]
    assert cost.expert_flops == moe.expert_flops > 0
    # K and O, plus the router (2 * h * 8 experts)
    assert cost.matmul_flops == 2 * (H * KV + Q * H) + 2 * H * 8


def test_memory_and_time_lie_between_none_and_full() -> None:
    job = llama8b_job()
    est = {rc: solver.evaluate(job, solver.Layout(accelerator="h100-sxm5-80gb", tp=1, pp=1,
                                                  dp=8, zero_stage=3, micro_batch=2,
                                                  recompute=rc))
           for rc in ("none", "alternate_matmuls", "full")}
    act = {rc: e.memory_breakdown_gib["activations"] for rc, e in est.items()}
    assert act["full"] < act["alternate_matmuls"] < act["none"]
    # Without recomputation a layer keeps per token (BF16, flash attention, no dropout):
    # both norms' inputs and outputs 8h, Q K V 2*(4096 + 1024 + 1024), the attention output
    # 2*4096, gate and up 4f, the activation's output 2f = 139,264 bytes. 32 layers x 16,384
    # tokens x (139,264 - 63,488) bytes = 37.0 GiB fewer.
    none_bytes = 8 * H + 2 * (Q + 2 * KV) + 2 * Q + 6 * F
    assert none_bytes == 139_264
    fewer = 32 * 16_384 * (none_bytes - 63_488) / 2**30
    assert act["none"] - act["alternate_matmuls"] == pytest.approx(fewer, rel=1e-9)
    times = [est[rc].step_time_s for rc in ("none", "alternate_matmuls", "full")]
    assert times == sorted(times)


def test_launchers() -> None:
    job = llama8b_job()
    assert mask_refusal("torchtitan", job, ALTERNATE_BIT) is None
    for launcher in ("megatron", "deepspeed"):
        why = mask_refusal(launcher, job, ALTERNATE_BIT)
        assert why is not None and "'alternate_matmuls'" in why
