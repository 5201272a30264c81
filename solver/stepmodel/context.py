"""Context parallelism: ring attention (Liu et al. 2023, arXiv:2310.01889; Megatron-LM's
``cp_comm_type p2p``). The local K and V chunk circulates ``cp-1`` times per layer in the
forward and twice as much data in the backward (K, V and their gradients), each step hidden
behind that step's attention-score computation as far as it lasts. Recomputing the attention
(full, or the ``core_attn`` module) repeats the forward exchange.
"""

from __future__ import annotations

import numpy as np

from solver.layout_options import MODULE_BIT
from solver.stepmodel import calibration as C
from solver.stepmodel.arrays import HardwareTable, LayoutArrays
from solver.stepmodel.calibration import Calibration
from solver.stepmodel.collectives import link, point_to_point
from solver.stepmodel.compute import Rates, score_seconds, tokens_per_rank
from solver.stepmodel.shape import JobShape
from solver.stepmodel.tensor import LayerComm


def context_comm(js: JobShape, x: LayoutArrays, hw: HardwareTable, cal: Calibration,
                 r: Rates) -> LayerComm:
    """Exposed ring-exchange time of one layer per micro-batch (nothing left to hide)."""
    path = link(hw, x.accel, x.tp, x.cp, cal)
    tokens = tokens_per_rank(js, x)
    scores, scores_backward = score_seconds(js, x, r)
    kv = C.ACT_BYTES * tokens * js.kv_width / x.tp
    ring = np.where(x.cp > 1, (x.cp - 1) * point_to_point(kv, path), 0.0)
    forward = np.maximum(0.0, ring - scores)
    again = x.full | ((x.recompute & MODULE_BIT["core_attn"]) != 0)
    zero = np.zeros_like(forward)
    return LayerComm(forward=forward, backward=np.maximum(0.0, 2 * ring - scores_backward),
                     hideable=zero, recompute=np.where(again, forward, 0.0))


__all__ = ["context_comm"]
