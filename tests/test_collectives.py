"""Where a group's collectives run and what one pass over the group costs in latency, against
values worked out by hand (``solver/stepmodel/collectives.py``).

The test accelerator: scale-up domain of 8 at 100 GB/s, one 10 GB/s NIC per accelerator;
bus efficiencies 1, 1 us per scale-up hop and 10 us per scale-out hop.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import solver
from solver.stepmodel.arrays import HardwareTable
from solver.stepmodel.calibration import DEFAULT_CALIBRATION
from solver.stepmodel.collectives import (
    Path,
    all_reduce,
    gather_or_scatter,
    link,
    point_to_point,
)

CAL = dataclasses.replace(DEFAULT_CALIBRATION, scaleup_bus_efficiency=1.0,
                          scaleout_bus_efficiency=1.0, latency_scaleup_s=1e-6,
                          latency_scaleout_s=1e-5)


def path_of(gpu: solver.Accelerator, stride: list[int], size: list[int]) -> Path:
    hw = HardwareTable.build([gpu], "bf16")
    return link(hw, np.zeros(len(size), np.int64), np.array(stride), np.array(size), CAL)


def test_groups_inside_the_domain_use_the_scale_up_fabric(test_gpu: solver.Accelerator) -> None:
    # 8 adjacent ranks (tensor parallelism): 100 GB/s, 7 ring steps of 1 us.
    p = path_of(test_gpu, [1], [8])
    assert p.bw.tolist() == [1e11]
    assert p.ring_latency_s.tolist() == pytest.approx([7e-6], rel=1e-12)
    assert p.p2p_bw.tolist() == [1e11]
    assert p.hop_latency_s.tolist() == [1e-6]


@pytest.mark.parametrize(("stride", "size", "latency"), [
    # 16 adjacent ranks: 8 per domain, 2 domains: 7 scale-up hops and min(2 - 1, 2 log2 2)
    # = 1 scale-out hop: 7e-6 + 1e-5 = 1.7e-5 s.
    (1, 16, 1.7e-5),
    # 16 ranks 8 apart (data parallelism beside TP8): one per domain, 16 domains: a ring
    # would take 15 scale-out hops, a tree 2 * log2(16) = 8: 8e-5 s.
    (8, 16, 8e-5),
    # 6 ranks 2 apart span 12: 4 per domain, ceil(6 / 4) = 2 domains: 3e-6 + 1e-5 = 1.3e-5.
    (2, 6, 1.3e-5),
    # 100,000 adjacent ranks: 8 per domain, 12,500 domains; ceil(log2 12,500) = 14, so 28
    # tree hops instead of 12,499 ring hops: 7e-6 + 28 * 1e-5 = 2.87e-4 s.
    (1, 100_000, 2.87e-4),
])
def test_latency_grows_with_the_log_of_the_domains_crossed(
        test_gpu: solver.Accelerator, stride: int, size: int, latency: float) -> None:
    p = path_of(test_gpu, [stride], [size])
    assert p.bw.tolist() == [1e10]  # one NIC per rank
    assert p.ring_latency_s.tolist() == pytest.approx([latency], rel=1e-12)
    assert p.p2p_bw.tolist() == [1e10]
    assert p.hop_latency_s.tolist() == [1e-5]


def test_collective_times_on_a_path(test_gpu: solver.Accelerator) -> None:
    # 16 adjacent ranks (above): all-reduce of 1 GB: 2 * 15/16 * 1e9 / 1e10 + 2 * 1.7e-5
    # = 0.1875 + 3.4e-5 s; all-gather of 1 GB: 0.09375 + 1.7e-5; a 1 MB send to the next
    # rank over one NIC: 1e6 / 1e10 + 1e-5 = 1.1e-4 s.
    p = path_of(test_gpu, [1], [16])
    n = np.array([16])
    assert all_reduce(np.array([1e9]), n, p).tolist() == pytest.approx([0.187534], rel=1e-12)
    assert gather_or_scatter(np.array([1e9]), n, p).tolist() == pytest.approx([0.093767],
                                                                              rel=1e-12)
    assert point_to_point(np.array([1e6]), p).tolist() == pytest.approx([1.1e-4], rel=1e-12)
    one = np.array([1])
    assert all_reduce(np.array([1e9]), one, p).tolist() == [0.0]


def test_unknown_scale_out_cannot_be_placed(island_gpu: solver.Accelerator) -> None:
    p = path_of(island_gpu, [1, 1], [2, 64])
    assert np.isfinite(p.bw[0]) and np.isnan(p.bw[1])
