"""Tensor (+ sequence) parallel collectives of one layer for one micro-batch.

Megatron-LM issues, per transformer layer with sequence parallelism (Korthikanti et al. 2022,
arXiv:2205.05198, sec. 4.2.2; Megatron-LM ``core/tensor_parallel/layers.py`` and Transformer
Engine's ``linear.py`` / ``layernorm_linear.py`` at d98e8a6):
- forward: an all-gather of the sequence-sharded input before the QKV and the first MLP GEMM,
  a reduce-scatter after the attention projection and the second MLP GEMM: 2 + 2, exposed;
- backward: the row-parallel layers all-gather their output gradient (2, exposed); the
  column-parallel layers re-gather their saved input for the weight gradient, overlapped with
  the input-gradient GEMM, and reduce-scatter the input gradient, overlapped with the
  weight-gradient GEMM (2 + 2, hidden under those GEMMs as far as they last);
- full recomputation repeats the forward's 2 + 2.
Each moves ``s*b*h`` (the gathered size); Transformer Engine gathers FP8 inputs and FP8 output
gradients in FP8 (1 byte), reduce-scatters in BF16. With ``TrainingJob.tp_comm_overlap``
(Transformer Engine userbuffers; Wang et al. 2023, arXiv:2105.05720) every collective is
split into chunks that run under the GEMMs they feed (``timing.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solver.stepmodel import calibration as C
from solver.stepmodel import fieldwise
from solver.stepmodel.arrays import FloatArray, HardwareTable, LayoutArrays
from solver.stepmodel.calibration import Calibration
from solver.stepmodel.collectives import gather_or_scatter, link
from solver.stepmodel.compute import tokens_per_rank
from solver.stepmodel.shape import JobShape


@dataclass(frozen=True)
class LayerComm:
    """Seconds of one layer's collectives per micro-batch: exposed in forward and in backward,
    overlappable in backward (``hideable``), and repeated by recomputation."""

    forward: FloatArray
    backward: FloatArray
    hideable: FloatArray
    recompute: FloatArray

    @property
    def total(self) -> FloatArray:
        return self.forward + self.backward + self.hideable + self.recompute

    def scaled(self, k: FloatArray | float) -> LayerComm:
        return fieldwise.scaled(self, k)

    def __add__(self, other: LayerComm) -> LayerComm:
        return fieldwise.added(self, other)


def tensor_comm(js: JobShape, x: LayoutArrays, hw: HardwareTable, cal: Calibration
                ) -> LayerComm:
    path = link(hw, x.accel, 1, x.tp, cal)
    elements = tokens_per_rank(js, x) * js.hidden
    low = 1.0 if js.fp8 else float(C.ACT_BYTES)  # FP8 gathers of inputs and output gradients
    gather = gather_or_scatter(low * elements, x.tp, path)
    scatter = gather_or_scatter(C.ACT_BYTES * elements, x.tp, path)
    forward = 2 * gather + 2 * scatter
    full = x.full
    return LayerComm(forward=forward, backward=2 * gather, hideable=2 * gather + 2 * scatter,
                     recompute=np.where(full, forward, 0.0))


__all__ = ["LayerComm", "tensor_comm"]
