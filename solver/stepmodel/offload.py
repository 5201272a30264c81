"""Activation offloading to host memory: the copies, and what of them the kernels do not hide.

With offloading (``TrainingJob.activation_offload``) each layer's stored activations are
copied to host memory as the forward pass produces them and copied back as the backward pass
needs them (Megatron-LM ``--cpu-offloading-num-layers`` through Transformer Engine's
``get_cpu_offload_context``; MaxText's remat policies that offload named tensors to TPU host
memory). The copies run on their own DMA engines beside the kernels, one direction per pass
(device to host in the forward, host to device in the backward), so per micro-batch a rank
waits only for what its pass's kernels do not cover:

    exposed = max(0, bytes / host_bw - forward) + max(0, bytes / host_bw - backward)

where ``bytes`` is what the rank stores for one micro-batch (``memory.stage_activation_bytes``)
and ``host_bw`` the accelerator's share of its host link in one direction
(``Accelerator.host_bw_gb_s``). An accelerator with no published host figures cannot offload:
its host memory is unknown, so ``StepResult.fits_memory`` is False there.
"""

from __future__ import annotations

import numpy as np

from solver.stepmodel.arrays import FloatArray, HardwareTable, LayoutArrays
from solver.stepmodel.shape import JobShape


def offload_exposed(js: JobShape, x: LayoutArrays, hw: HardwareTable, stored_bytes: FloatArray,
                    forward: FloatArray, backward: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Seconds per micro-batch the forward and the backward pass wait for their copies
    (zero without offloading; an unknown host link counts as not limiting, the missing host
    memory figure already refuses the layout)."""
    if not js.activation_offload:
        zero = np.zeros(len(x))
        return zero, zero
    bw = np.nan_to_num(hw.host_bw[x.accel], nan=np.inf)
    copy = stored_bytes / bw
    return np.maximum(0.0, copy - forward), np.maximum(0.0, copy - backward)


__all__ = ["offload_exposed"]
