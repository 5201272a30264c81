"""Data parallelism with ZeRO: gradient and weight traffic over ``dp*cp`` ranks (expert
weights over ``dp*cp/ep``), what of it hides under the passes, and the optimizer step.

Per micro-batch: ZeRO-2 reduce-scatters the gradients during the backward; ZeRO-3 also gathers
the weights before the forward and again before the backward (Rajbhandari et al. 2020,
arXiv:1910.02054, sec. 5 and 7; PyTorch FSDP, Zhao et al. 2023, arXiv:2304.11277, sec. 3).
ZeRO-3 prefetches the next layer's weights while the current one computes, so each pass's
traffic runs under that pass's kernels: only what exceeds ``dp_overlap`` of their time is
exposed; what hides still takes ``dp_contention`` of the compute units while it runs
(NCCL's channels are thread blocks that hold whole SMs), so the passes it hides under grow by
that share of the hidden time. Once per step: ZeRO-0 all-reduces the gradients, ZeRO-1
reduce-scatters them, under what the last micro-batch's backward has left after its own
traffic; ZeRO-1/2 all-gather the updated weights after the optimizer, under the next step's
first forward (Megatron-LM ``--overlap-param-gather``). Both overlaps need the software to
bucket the traffic (``grad_reduce_overlap``). No kernel time hides two transfers.

DeepSpeed's ZeRO-3, as the published 2021 runs measured it, gathers parameter by parameter: its
collectives reach ``zero3_bandwidth_deepspeed`` of a ring's bus bandwidth, and at least
``zero3_exposed_deepspeed`` of each pass's traffic stays exposed however long the pass.

The Adam step is memory-bound on each rank's shard: ``OPTIMIZER_STEP_BYTES`` per parameter,
with the gradient read at its own precision and BF16 moments read and written at half size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solver.stepmodel import calibration as C
from solver.stepmodel.arrays import FloatArray, HardwareTable, LayoutArrays
from solver.stepmodel.calibration import Calibration
from solver.stepmodel.collectives import all_reduce, gather_or_scatter, link
from solver.stepmodel.shape import JobShape


@dataclass(frozen=True)
class DataParallelTime:
    """Exposed data-parallel seconds of one rank: per micro-batch, once per step, and its
    optimizer step."""

    per_microbatch: FloatArray
    end_of_step: FloatArray
    optimizer: FloatArray


def data_parallel(js: JobShape, x: LayoutArrays, hw: HardwareTable, cal: Calibration,
                  dense_params: FloatArray, expert_params: FloatArray, forward: FloatArray,
                  backward: FloatArray) -> DataParallelTime:
    """``dense_params`` / ``expert_params``: what one rank holds (per tensor-parallel shard);
    ``forward`` / ``backward``: its kernel seconds per micro-batch."""
    group = x.dp * x.cp
    expert_group = group // x.ep
    # The data-parallel group (with the context ranks: Megatron's distributed optimizer
    # shards over both) is tp apart; the expert-data-parallel group tp * ep apart.
    path = link(hw, x.accel, x.tp, group, cal)
    expert_path = link(hw, x.accel, x.tp * x.ep, expert_group, cal)
    grads = js.grad_bytes * dense_params
    expert_grads = js.grad_bytes * expert_params
    scatter = (gather_or_scatter(grads, group, path)
               + gather_or_scatter(expert_grads, expert_group, expert_path))
    gather = (gather_or_scatter(js.param_bytes * dense_params, group, path)
              + gather_or_scatter(js.param_bytes * expert_params, expert_group, expert_path))
    grads_end = np.select(
        [x.zero == 0, x.zero == 1],
        [all_reduce(grads, group, path) + all_reduce(expert_grads, expert_group, expert_path),
         scatter], 0.0)
    weights_end = np.where((x.zero == 1) | (x.zero == 2), gather, 0.0)
    overlap = cal.dp_overlap if js.grad_reduce_overlap else 0.0
    zero2 = np.maximum(0.0, scatter - overlap * backward)
    deepspeed = js.zero3_impl == "deepspeed"
    slowdown = 1.0 / cal.zero3_bandwidth_deepspeed if deepspeed else 1.0
    floor = cal.zero3_exposed_deepspeed if deepspeed else 0.0
    gather3, scatter3 = gather * slowdown, scatter * slowdown
    zero3 = (np.maximum(floor * gather3, gather3 - cal.dp_overlap * forward)
             + np.maximum(floor * (gather3 + scatter3),
                          gather3 + scatter3 - cal.dp_overlap * backward))
    per_mb = np.select([x.zero == 2, x.zero == 3], [zero2, zero3], 0.0)
    hidden_mb = np.select([x.zero == 2, x.zero == 3],
                          [scatter - zero2, 2 * gather3 + scatter3 - zero3], 0.0)
    backward_left = np.maximum(0.0, overlap * backward - np.where(x.zero == 2, scatter, 0.0))
    end = (np.maximum(0.0, grads_end - backward_left)
           + np.maximum(0.0, weights_end - overlap * forward))
    hidden_end = grads_end + weights_end - end
    # Hidden traffic still takes the compute units its kernels run on (NCCL's channels are
    # thread blocks on the SMs): the passes it runs beside lose that share while it runs.
    contention = cal.dp_contention * hw.collectives_on_compute[x.accel]
    per_mb = per_mb + contention * hidden_mb
    end = end + contention * hidden_end
    opt_div = np.where(x.zero >= 1, group.astype(float), 1.0)
    expert_div = np.where(x.zero >= 1, expert_group.astype(float), 1.0)
    moments_saving = 2 * (C.OPTIMIZER_BYTES - js.optimizer_bytes)  # read and write m, v
    step_bytes = (C.OPTIMIZER_STEP_BYTES - C.GRAD_BYTES + js.grad_bytes - moments_saving)
    optimizer = step_bytes * (dense_params / opt_div + expert_params / expert_div) \
        / hw.memory_bw[x.accel]
    return DataParallelTime(per_mb, end, optimizer)


__all__ = ["DataParallelTime", "data_parallel"]
