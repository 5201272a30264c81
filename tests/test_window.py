"""Sliding-window attention (``ModelSpec.sliding_window``): the attention work counted and done,
the step time, the config.json import, the Megatron-LM flags and the launchers that refuse it.

Hand arithmetic on ``tests/test_timing.py``'s model ``calc`` (4 layers, h = 1024, 8 heads of
128: the scores multiply a width of 8 * 2 * 128 = 2048 per key; s = 1024) and accelerator
(``test-gpu``; flash attention and matmuls at 8e13 FLOP/s under ``PLAIN``), with a 256-token
window on 2 of the 4 layers:

- keys per query as FLOP counts count them: full layers s = 1024, windowed min(w, s) = 256;
  averaged (2 * 1024 + 2 * 256) / 4 = 640;
- keys a causal kernel visits: full layers s / 2 = 512; windowed w - w^2 / (2s)
  = 256 - 65,536 / 2,048 = 224; averaged (2 * 512 + 2 * 224) / 4 = 368.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from test_timing import HEAD_3_PASSES, PLAIN, calc

import solver
from solver.export import MEGATRON_FLAGS
from solver.stepmodel.flops import attention_keys, layer_flops


def windowed(window: int = 256, layers: int = 2) -> solver.ModelSpec:
    return dataclasses.replace(calc(), sliding_window=window, sliding_window_layers=layers)


def test_keys_counted_and_visited_by_hand() -> None:
    assert attention_keys(windowed(), 1024) == pytest.approx((640.0, 368.0), rel=1e-12)
    # No window: s counted, s / 2 visited (the causal half).
    assert attention_keys(calc(), 1024) == pytest.approx((1024.0, 512.0), rel=1e-12)
    # A window at least as long as the sequence changes nothing.
    assert attention_keys(windowed(4096), 1024) == pytest.approx((1024.0, 512.0), rel=1e-12)
    # The FLOP count per token and layer: 2 * 640 keys * 2048 = 2,621,440.
    assert layer_flops(windowed(), 1024).attention_scores == pytest.approx(2_621_440.0)


def test_window_on_every_layer_when_no_count_is_given() -> None:
    assert dataclasses.replace(calc(), sliding_window=256).sliding_window_layers == 4


def test_step_time_with_a_window_by_hand(test_gpu: solver.Accelerator) -> None:
    # Per layer and micro-batch of 1024 tokens: matmuls M = 3.2212254720e-4 s per pass
    # (test_timing), scores S = 1024 * 2 * 368 * 2048 / 8e13 = 1.92937984e-5 s forward and
    # 2.5 S backward (FlashAttention-2's backward): 3M + 3.5S = 9.6636764160e-4
    # + 6.75282944e-5 = 1.03389593600e-3 s; four layers and the LM head's three passes
    # (7.86432e-5 s): 4.21422694400e-3 s.
    job = solver.TrainingJob(model=windowed(), tokens=1e9, global_batch=1)
    estimate = solver.evaluate(job, solver.Layout(accelerator="test-gpu", tp=1, pp=1, dp=1),
                               accelerator=test_gpu, calibration=PLAIN)
    assert estimate.time_breakdown_s["compute"] == pytest.approx(
        4 * 1.03389593600e-3 + HEAD_3_PASSES, rel=1e-12)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("sliding_window_layers", 5, "at most layers=4"),
    ("sliding_window", -1, "sliding_window"),
])
def test_bad_window_names_the_field(field: str, value: int, message: str) -> None:
    with pytest.raises(solver.SpecError, match=message):
        dataclasses.replace(windowed(), **{field: value})
    with pytest.raises(solver.SpecError, match="0 without a sliding_window"):
        dataclasses.replace(calc(), sliding_window_layers=2)


def _config(tmp_path: Path, **keys: object) -> Path:
    # Mistral 7B v0.1's shape (its config.json: sliding_window 4096).
    data = {"model_type": "mistral", "hidden_size": 4096, "intermediate_size": 14336,
            "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
            "vocab_size": 32000, "max_position_embeddings": 32768, "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": False, **keys}
    path = tmp_path / "mistral-7b" / "config.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_config_json_windows(tmp_path: Path) -> None:
    mistral = solver.model(str(_config(tmp_path, sliding_window=4096)))
    assert (mistral.sliding_window, mistral.sliding_window_layers) == (4096, 32)
    assert solver.model(str(_config(tmp_path, sliding_window=None))).sliding_window == 0
    # Qwen2-style: the window only with use_sliding_window, from max_window_layers on.
    off = solver.model(str(_config(tmp_path, model_type="qwen2", sliding_window=4096,
                                   use_sliding_window=False)))
    assert off.sliding_window == 0
    on = solver.model(str(_config(tmp_path, model_type="qwen2", sliding_window=4096,
                                  use_sliding_window=True, max_window_layers=28)))
    assert (on.sliding_window, on.sliding_window_layers) == (4096, 4)
    # layer_types (gpt-oss alternates sliding and full attention): 16 of 32 here.
    kinds = ["sliding_attention", "full_attention"] * 16
    alternating = solver.model(str(_config(tmp_path, sliding_window=128, layer_types=kinds)))
    assert (alternating.sliding_window, alternating.sliding_window_layers) == (128, 16)


def test_megatron_flags_and_launchers_without_windows() -> None:
    model = dataclasses.replace(solver.model("llama3-8b"), name="swa-8b",
                                sliding_window=4096, sliding_window_layers=24)
    job = solver.TrainingJob(model=model, tokens=1e12, global_batch=256)
    plan = solver.solve(job, solver.Limits(accelerators=("h100",), gpus=64,
                                           launcher="megatron"), time_limit_s=30)
    text = str(solver.export(plan, "megatron", job=job))
    # 24 windowed of 32: one full layer after every three windowed, 32 / 8 = 4.
    assert "--window-size 4096,0" in text
    assert "--window-attn-skip-freq 4" in text
    named = set(re.findall(r"(?<![\w-])--[a-z0-9][a-z0-9-]*", text))
    assert named <= set(MEGATRON_FLAGS), named - set(MEGATRON_FLAGS)
    for launcher in ("torchtitan", "deepspeed"):
        with pytest.raises(solver.SpecError, match="sliding_window"):
            solver.solve(job, solver.Limits(accelerators=("h100",), gpus=64,
                                            launcher=launcher), time_limit_s=30)
