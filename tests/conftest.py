"""Shared fixtures: a made-up accelerator and a builder of vectorised layouts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import solver
from solver.layout_options import recompute_code
from solver.stepmodel.arrays import LayoutArrays

#: Defaults of one layout column set: one accelerator, no parallelism, one micro-batch.
#: ``accel`` is a one-element list so that N layouts are always a 1-D array (N >= 1).
LAYOUT_DEFAULTS: dict[str, Any] = {
    "accel": [0], "tp": 1, "pp": 1, "dp": 1, "cp": 1, "ep": 1, "vp": 1, "mb": 1, "nmb": 1,
    "zero": 0, "recompute": "none", "schedule": 0, "split": 0,
}

LayoutFactory = Callable[..., LayoutArrays]


@pytest.fixture
def layouts() -> LayoutFactory:
    """``layouts(tp=[1, 8], recompute=["none", "full"])``: N layouts as ``LayoutArrays``.

    Any column may be a scalar or a list (broadcast together); ``recompute`` takes the mode
    names (``solver.layout_options``), ``schedule`` and ``split`` their codes.
    """

    def build(**columns: Any) -> LayoutArrays:
        merged = {**LAYOUT_DEFAULTS, **columns}
        modes = merged["recompute"]
        if isinstance(modes, str):
            merged["recompute"] = recompute_code(modes)
        else:
            merged["recompute"] = [recompute_code(mode) for mode in modes]
        return LayoutArrays.from_columns(**merged)

    return build


@pytest.fixture
def test_gpu() -> solver.Accelerator:
    """A made-up accelerator with round numbers (not any real part)."""
    return solver.Accelerator(
        name="test-gpu",
        vendor="Test",
        peak_tflops={"bf16": 100.0, "fp8": 200.0},
        memory_gib=16.0,
        memory_bw_gb_s=1000.0,
        scaleup_bw_gb_s=100.0,
        scaleup_domain=8,
        scaleout_bw_gb_s=10.0,
        tdp_w=300.0,
        price_usd_per_hour=1.0,
        sources=("made up for the tests",),
    )


@pytest.fixture
def island_gpu() -> solver.Accelerator:
    """A made-up accelerator whose scale-out bandwidth is not published (None)."""
    return solver.Accelerator(
        name="island-gpu",
        vendor="Test",
        peak_tflops={"bf16": 100.0},
        memory_gib=80.0,
        memory_bw_gb_s=1000.0,
        scaleup_bw_gb_s=100.0,
        scaleup_domain=8,
        sources=("made up for the tests",),
    )
