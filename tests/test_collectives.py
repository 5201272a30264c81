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


def torus_gpu(gpu: solver.Accelerator) -> solver.Accelerator:
    """A TPU v5p-like fabric: 3D torus, 4 chips along an axis, 100 GB/s over all 6 links."""
    return dataclasses.replace(gpu, scaleup_topology="torus", torus_dims=3, torus_axis=4,
                               scaleup_domain=4096)


@pytest.mark.parametrize(("stride", "size", "share"), [
    (1, 4, 1 / 3),     # one axis: 2 of 6 links
    (1, 16, 2 / 3),    # two axes (4 x 4)
    (1, 64, 1.0),      # the whole cube
    (1, 128, 1.0),     # beyond it: still three axes
    (4, 16, 2 / 3),    # 16 ranks 4 apart span 64 chips: the two axes the stride does not step
    (2, 2, 1 / 3),     # 2 ranks 2 apart, inside one axis
])
def test_a_torus_gives_a_group_the_links_of_the_axes_it_spans(
        test_gpu: solver.Accelerator, stride: int, size: int, share: float) -> None:
    p = path_of(torus_gpu(test_gpu), [stride], [size])
    assert p.bw.tolist() == pytest.approx([1e11 * share], rel=1e-12)
    # A neighbour transfer rides one of the 6 links.
    assert p.p2p_bw.tolist() == pytest.approx([1e11 / 6], rel=1e-12)


@pytest.mark.parametrize(("size", "share"), [(2, 1 / 7), (4, 3 / 7), (8, 1.0)])
def test_a_full_mesh_gives_a_group_one_link_per_peer(
        test_gpu: solver.Accelerator, size: int, share: float) -> None:
    # 8 accelerators, one link to each of the 7 peers (MI300X, Gaudi): a group of n rings
    # over its n - 1 links to the others.
    mesh = dataclasses.replace(test_gpu, scaleup_topology="mesh")
    p = path_of(mesh, [1], [size])
    assert p.bw.tolist() == pytest.approx([1e11 * share], rel=1e-12)
    assert p.p2p_bw.tolist() == pytest.approx([1e11 / 7], rel=1e-12)


def test_a_torus_needs_its_shape() -> None:
    with pytest.raises(solver.SpecError, match="torus_dims"):
        solver.Accelerator(name="t", vendor="T", peak_tflops={"bf16": 1.0}, memory_gib=1.0,
                           memory_bw_gb_s=1.0, scaleup_bw_gb_s=1.0, scaleup_domain=4,
                           scaleup_topology="torus")
