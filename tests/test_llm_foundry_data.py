"""The llm-foundry MPT tables (``tests/data/llm_foundry_mpt.json``: H100 and A100 80GB) are what
MosaicML published: each row's MFU follows from its throughput by MosaicML's own formula, its
parameter count from the model's shape, and its global batch from its micro-batches. These hold
the transcription, not the step model (``benchmarks/llm_foundry_check.py`` predicts the rows)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parent / "data" / "llm_foundry_mpt.json"
#: The BF16 peaks llm-foundry's MFU divides by.
PEAK = {"h100-sxm5-80gb": 989e12, "a100-sxm4-80gb": 312e12}


def load() -> dict[str, Any]:
    return json.loads(DATA.read_text(encoding="utf-8"))


def test_every_row_gives_back_its_published_mfu() -> None:
    # llm-foundry's benchmarking README: MFU = (6 N + 12 L d s) tokens/s / (GPUs x peak),
    # attention counted without the causal half. MPT-13B at 2,048 on 8 H100: (6 *
    # 12,853,954,560 + 12 * 40 * 5120 * 2048) * 38,336 / 8 / 989e12 = 39.81% (published
    # 39.79); MPT-7B at 65,536 on 8 A100: (6 * 6,918,905,856 + 12 * 32 * 4096 * 65536) *
    # 8,108 / 8 / 312e12 = 46.97% (46.97).
    doc = load()
    assert len(doc["rows"]) == 52 + 61
    for row in doc["rows"]:
        shape = doc["shapes"][row["model"]]
        flops = 6 * row["num_params"] + 12 * shape["layers"] * shape["hidden"] * row["seq_len"]
        mfu = 100 * flops * row["tokens_per_s"] / row["gpus"] / PEAK[row["accelerator"]]
        assert mfu == pytest.approx(row["mfu_percent"], rel=2e-3), row
        assert row["tokens_per_s"] / row["gpus"] == pytest.approx(row["tokens_per_s_per_gpu"],
                                                                  abs=1.0), row


def test_shapes_give_back_the_parameter_counts() -> None:
    # 12 L d^2 (attention and a 4x MLP, no biases) + V d (tied embedding) + s d (learned
    # positions): MPT-7B at 2,048, 12 * 32 * 4096^2 + 50368 * 4096 + 2048 * 4096 =
    # 6,657,146,880 against the published 6,658,859,008 (norms make the rest).
    doc = load()
    for row in doc["rows"]:
        shape = doc["shapes"][row["model"]]
        d = shape["hidden"]
        count = 12 * shape["layers"] * d * d + 50368 * d + row["seq_len"] * d
        assert count == pytest.approx(row["num_params"], rel=1e-3), row
    heads = {name: s["hidden"] // s["heads"] for name, s in doc["shapes"].items()}
    assert heads == {"mpt-125m": 64, "mpt-350m": 64, "mpt-760m": 128, "mpt-1b": 128,
                     "mpt-3b": 128, "mpt-7b": 128, "mpt-13b": 128, "mpt-30b": 128,
                     "mpt-70b": 128}


def test_global_batch_is_micro_batches_times_ranks() -> None:
    for row in load()["rows"]:
        assert row["micro_batch"] * row["grad_accum"] * row["gpus"] == row["global_batch"]


def test_four_rows_are_the_runs_in_the_fit() -> None:
    fitted = {(r["model"], r["accelerator"], r["seq_len"], r["gpus"])
              for r in load()["rows"] if r["in_fit"]}
    assert fitted == {("mpt-70b", "h100-sxm5-80gb", 2048, 64),
                      ("mpt-30b", "h100-sxm5-80gb", 2048, 32),
                      ("mpt-7b", "h100-sxm5-80gb", 2048, 8),
                      ("mpt-70b", "a100-sxm4-80gb", 2048, 64)}
    runs = json.loads((DATA.parent / "published_runs.json").read_text(encoding="utf-8"))
    used = {r["id"] for r in runs["runs"] if r["fidelity"]["use"]}
    assert {"mpt-70b-64xh100-80gb", "mpt-30b-32xh100-80gb", "mpt-7b-8xh100-80gb",
            "mpt-70b-64xa100-80gb"} <= used
