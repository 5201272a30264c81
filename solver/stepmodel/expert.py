"""Expert parallelism: the dispatch and combine all-to-alls of one MoE layer per micro-batch.

Forward: a dispatch (each token to the ranks of its routed experts) and a combine (the expert
outputs back); backward: their twins, the same bytes in the opposite direction (Lepikhin et
al. 2020, GShard; DeepSeek-V3 arXiv:2412.19437 sec. 3.2.2). The dispatch and the combine's
backward may travel in FP8 (``TrainingJob.fp8_dispatch``, DeepSeek-V3 sec. 3.3.3: "the
activation before MoE up-projections" and "the activation gradient before MoE
down-projections"), the combine and the dispatch's backward stay BF16. Recomputing the MoE layer
(full, or the ``moe`` module) repeats the forward pair.

Placement: the expert-parallel group spans ``tp*cp*ep`` consecutive ranks (Megatron-LM's order
tp-cp-ep-dp-pp), ``G`` scale-up domains ("nodes"). Inside one node everything moves over the
scale-up fabric. Across nodes:
- ``alltoall`` (Megatron-LM's all-to-all dispatcher): one copy per routed expert; the
  ``(G-1)/G`` of copies bound for other nodes cross the scale-out network, the rest the
  scale-up fabric, both at once;
- ``deepep`` (DeepEP; DeepSeek-V3 sec. 3.2.2): one copy per destination node crosses the
  scale-out network, to the GPU of the same in-node index, which forwards it over NVLink to the
  experts' GPUs. A token's ``top_k`` experts fall on ``D = N(1 - (1 - 1/N)^top_k)`` distinct
  nodes on average when routed uniformly over the ``N`` nodes it may reach (group-limited
  routing caps ``N``: ``expert_group_topk`` groups of ``G/expert_groups`` nodes; DeepSeek-V3: 4
  of 8), of which ``D(G-1)/G`` are remote.
The busiest rank receives ``load`` times the mean (``JobShape.routed``).
"""

from __future__ import annotations

import numpy as np

from solver.layout_options import ALTERNATE_BIT, MODULE_BIT
from solver.stepmodel import calibration as C
from solver.stepmodel.arrays import FloatArray, HardwareTable, LayoutArrays
from solver.stepmodel.calibration import Calibration
from solver.stepmodel.collectives import fabric_share
from solver.stepmodel.compute import tokens_per_rank
from solver.stepmodel.shape import JobShape
from solver.stepmodel.tensor import LayerComm


def remote_nodes_per_token(js: JobShape, nodes: FloatArray) -> FloatArray:
    """Expected distinct remote nodes a token's experts sit on (uniform routing)."""
    reach = nodes
    if js.expert_groups and js.expert_group_topk:
        per_group = np.maximum(1.0, nodes / js.expert_groups)
        reach = np.minimum(nodes, js.expert_group_topk * per_group)
    distinct = reach * (1.0 - (1.0 - 1.0 / reach) ** js.top_k)
    return distinct * (nodes - 1.0) / nodes


def all_to_all_time(js: JobShape, x: LayoutArrays, hw: HardwareTable, cal: Calibration,
                    element_bytes: float) -> FloatArray:
    """One dispatch (or combine) of one MoE layer and micro-batch, ``element_bytes`` per
    element."""
    a = x.accel
    tokens = tokens_per_rank(js, x) / x.tp  # sequence-parallel shards
    load = js.routed / max(js.top_k, 1)
    copies = tokens * js.routed * js.hidden * element_bytes
    # On a mesh or a torus the exchange rides the links among the group's ranks only.
    up_bw = hw.scaleup_bw[a] * cal.scaleup_bus_efficiency * fabric_share(
        hw, a, x.tp * x.cp, np.minimum(x.ep, np.maximum(hw.scaleup_domain[a] // (x.tp * x.cp),
                                                         1)))
    out_bw = hw.scaleout_bw[a] * cal.scaleout_bus_efficiency
    span = x.tp * x.cp * x.ep
    domain = hw.scaleup_domain[a]
    nodes = np.maximum(1.0, np.ceil(span / domain))
    inside = span <= domain
    ep = x.ep.astype(float)
    local = copies * (ep - 1) / ep / up_bw + (ep - 1) * cal.latency_scaleup_s
    if js.deepep:
        remote_bytes = tokens * load * remote_nodes_per_token(js, nodes) * js.hidden \
            * element_bytes
        nvlink_bytes = copies
    else:
        remote_bytes = copies * (nodes - 1) / nodes
        nvlink_bytes = copies * (np.maximum(1.0, ep / nodes) - 1) / ep
    across = np.maximum(remote_bytes / out_bw, nvlink_bytes / up_bw) \
        + (ep - 1) * cal.latency_scaleout_s
    return np.where(x.ep > 1, np.where(inside, local, across), 0.0)


def expert_comm(js: JobShape, x: LayoutArrays, hw: HardwareTable, cal: Calibration
                ) -> LayerComm:
    """All-to-all time of one MoE layer per micro-batch; all of it can hide under another
    micro-batch's computation when the software overlaps it (``timing.py``)."""
    pair = (all_to_all_time(js, x, hw, cal, js.dispatch_bytes)
            + all_to_all_time(js, x, hw, cal, float(C.ACT_BYTES)))
    again = x.full | ((x.recompute & (MODULE_BIT["moe"] | ALTERNATE_BIT)) != 0)
    zero = np.zeros_like(pair)
    return LayerComm(forward=pair, backward=pair, hideable=zero,
                     recompute=np.where(again, pair, 0.0))


__all__ = ["all_to_all_time", "expert_comm", "remote_nodes_per_token"]
