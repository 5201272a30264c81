"""Time of ring collectives on the scale-up fabric or the scale-out network.

Ring algorithms (Patarasuk & Yuan 2009; the NCCL performance notes, "nccl-tests
doc/PERFORMANCE.md"): an all-reduce of ``B`` bytes over ``n`` ranks moves ``2(n-1)/n * B`` per
rank, a reduce-scatter or an all-gather ``(n-1)/n * B``, an all-to-all ``(n-1)/n * B``; each of
the ``n-1`` (or ``2(n-1)``) steps pays one latency.

Placement follows Megatron-LM's rank order ``tp-cp-ep-dp-pp`` (tensor-parallel ranks adjacent):
a group whose ranks span ``stride * size`` consecutive accelerators stays on the scale-up
fabric when that span fits in the scale-up domain; otherwise its bottleneck is each
accelerator's scale-out link (one NIC per accelerator, rail-optimised fat tree).
"""

from __future__ import annotations

import numpy as np

from solver.stepmodel.arrays import FloatArray, HardwareTable, IntArray
from solver.stepmodel.calibration import Calibration


def link(hw: HardwareTable, accel: IntArray, span: IntArray, cal: Calibration
         ) -> tuple[FloatArray, FloatArray]:
    """Achieved bandwidth (bytes/s) and per-step latency (s) of a group spanning ``span``.

    Unknown scale-out bandwidth gives NaN, which marks the layout as not placeable.
    """
    inside = span <= hw.scaleup_domain[accel]
    bw = np.where(inside, hw.scaleup_bw[accel] * cal.scaleup_bus_efficiency,
                  hw.scaleout_bw[accel] * cal.scaleout_bus_efficiency)
    latency = np.where(inside, cal.latency_scaleup_s, cal.latency_scaleout_s)
    return bw, latency


def all_reduce(nbytes: FloatArray, n: IntArray, bw: FloatArray, lat: FloatArray) -> FloatArray:
    return np.where(n > 1, 2 * (n - 1) / n * nbytes / bw + 2 * (n - 1) * lat, 0.0)


def gather_or_scatter(nbytes: FloatArray, n: IntArray, bw: FloatArray, lat: FloatArray
                      ) -> FloatArray:
    """All-gather or reduce-scatter; ``nbytes`` is the full (gathered) size."""
    return np.where(n > 1, (n - 1) / n * nbytes / bw + (n - 1) * lat, 0.0)


def all_to_all(nbytes: FloatArray, n: IntArray, bw: FloatArray, lat: FloatArray) -> FloatArray:
    """``nbytes`` is what one rank sends in total (to all peers together)."""
    return np.where(n > 1, (n - 1) / n * nbytes / bw + (n - 1) * lat, 0.0)


def point_to_point(nbytes: FloatArray, bw: FloatArray, lat: FloatArray) -> FloatArray:
    return nbytes / bw + lat
