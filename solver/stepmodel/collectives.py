"""Time of collectives on the scale-up fabric and the scale-out network, placed as the
layout's rank order puts each group.

Bandwidth terms are rings (Patarasuk & Yuan 2009; the NCCL performance notes, nccl-tests
``doc/PERFORMANCE.md``): an all-reduce of ``B`` bytes over ``n`` ranks moves
``2(n-1)/n * B`` per rank, a reduce-scatter or an all-gather ``(n-1)/n * B``, an all-to-all
``(n-1)/n * B``, at the group's *bus bandwidth*.

Placement follows Megatron-LM's rank order ``tp-cp-ep-dp-pp`` (tensor-parallel ranks
adjacent): a group of ``n`` ranks ``stride`` apart spans ``stride * n`` consecutive
accelerators. When that span fits in the scale-up domain the group runs on the scale-up fabric.
Otherwise ``r = domain / stride`` of its ranks share each domain (at least 1, at most ``n``),
each with its own NIC (rail-optimised fat tree, one NIC per accelerator as DGX and HGX
systems wire them), and the group's bus bandwidth is one NIC's: the published runs (FSDP on
MPT, torchtitan) are predicted far too fast when NCCL's rings are given all ``r`` NICs of a
node, as nccl-tests measures them on an idle machine -- what those runs lose to contention
with the overlapped kernels is not modelled yet, and one NIC per rank is what they reach.

Latency: a ring of ``n`` steps pays ``r - 1`` scale-up hops and, across the ``N = n / r``
domains, the fewer of ``N - 1`` ring hops and ``2 * ceil(log2 N)`` tree hops: NCCL switches to
log-depth algorithms at scale (double binary trees for all-reduce, NCCL 2.4; PAT for
all-gather and reduce-scatter, NCCL 2.23), so latency grows with ``log N``, not ``N``.
Point-to-point transfers (pipeline stages, the context-parallel ring) run over one link: the
scale-up fabric when both ends share a domain, else one NIC.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solver.stepmodel.arrays import FloatArray, HardwareTable, IntArray
from solver.stepmodel.calibration import Calibration


@dataclass(frozen=True)
class Path:
    """How one group's collectives run: bus bandwidth (bytes/s) and the latency of one pass
    over the group (``ring_latency_s``), and for point-to-point transfers between neighbours
    one link's bandwidth and latency. NaN bandwidth: the group cannot be placed (it leaves
    the scale-up domain of an accelerator with no published scale-out bandwidth)."""

    bw: FloatArray
    ring_latency_s: FloatArray
    p2p_bw: FloatArray
    hop_latency_s: FloatArray


def fabric_share(hw: HardwareTable, accel: IntArray, stride: IntArray, size: IntArray
                 ) -> FloatArray:
    """The share of an accelerator's scale-up links a group's ring uses.

    A switch gives every group all of them. On a full mesh of ``D`` accelerators each link
    joins one pair, so a group of ``n`` inside the domain uses ``n - 1`` of its ``D - 1``
    links. On a torus of ``k`` axes (two links each, ``a`` chips along an axis) a group whose
    ranks vary along ``j`` axes -- those its span covers beyond those its stride already
    steps over, ``ceil(log_a span) - floor(log_a stride)`` -- rings over ``2j`` of the
    ``2k`` links (How to Scale Your Model, the TPU chapter, describes the ICI links per
    axis; a collective along one axis of a TPU v5p's 3D torus so uses a third of them)."""
    domain = hw.scaleup_domain[accel]
    mesh_share = np.minimum(size - 1, domain - 1) / np.maximum(domain - 1, 1)
    dims = hw.torus_dims[accel]
    axis = np.log(np.maximum(hw.torus_axis[accel], 2))
    spans = np.ceil(np.log(np.maximum(stride * size, 1)) / axis - 1e-9)
    steps = np.floor(np.log(np.maximum(stride, 1)) / axis + 1e-9)
    axes = np.clip(spans - steps, 1, np.maximum(dims, 1))
    torus_share = axes / np.maximum(dims, 1)
    return np.select([hw.mesh[accel], dims > 0], [mesh_share, torus_share], 1.0)


def link(hw: HardwareTable, accel: IntArray, stride: IntArray | int, size: IntArray,
         cal: Calibration) -> Path:
    """The path of groups of ``size`` ranks, ``stride`` accelerators apart."""
    stride = np.asarray(stride)
    size = np.asarray(size)
    domain = hw.scaleup_domain[accel]
    full_bw = hw.scaleup_bw[accel] * cal.scaleup_bus_efficiency
    up_bw = full_bw * fabric_share(hw, accel, stride, size)
    # A neighbour transfer uses one link: one of D - 1 on a mesh, one of 2k on a torus.
    one_link = np.select([hw.mesh[accel], hw.torus_dims[accel] > 0],
                         [1.0 / np.maximum(domain - 1, 1),
                          1.0 / np.maximum(2 * hw.torus_dims[accel], 1)], 1.0)
    nic_bw = hw.scaleout_bw[accel] * cal.scaleout_bus_efficiency
    inside = stride * size <= domain
    per_domain = np.clip(domain // np.maximum(stride, 1), 1, np.maximum(size, 1))
    domains = np.ceil(size / per_domain)
    tree_hops = 2 * np.ceil(np.log2(np.maximum(domains, 1)))
    outside_lat = ((per_domain - 1) * cal.latency_scaleup_s
                   + np.minimum(domains - 1, tree_hops) * cal.latency_scaleout_s)
    # Neighbour transfers move at the pace of the slowest hop: a group that leaves its domain
    # has one crossing a NIC.
    return Path(
        bw=np.where(inside, up_bw, nic_bw),
        ring_latency_s=np.where(inside, (size - 1) * cal.latency_scaleup_s, outside_lat),
        p2p_bw=np.where(inside, full_bw * one_link, nic_bw),
        hop_latency_s=np.where(inside, cal.latency_scaleup_s, cal.latency_scaleout_s),
    )


def all_reduce(nbytes: FloatArray, n: IntArray, path: Path) -> FloatArray:
    """A reduce-scatter then an all-gather: two passes."""
    return np.where(n > 1, 2 * (n - 1) / n * nbytes / path.bw + 2 * path.ring_latency_s, 0.0)


def gather_or_scatter(nbytes: FloatArray, n: IntArray, path: Path) -> FloatArray:
    """All-gather or reduce-scatter; ``nbytes`` is the full (gathered) size."""
    return np.where(n > 1, (n - 1) / n * nbytes / path.bw + path.ring_latency_s, 0.0)


def point_to_point(nbytes: FloatArray, path: Path) -> FloatArray:
    return nbytes / path.p2p_bw + path.hop_latency_s
