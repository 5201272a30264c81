"""Memory of the most loaded accelerator, by component, for N layouts at once.

Sources:
- Model states: mixed-precision Adam, BF16 weights + FP32 gradients + FP32 master weights and
  moments (``calibration.WEIGHT_BYTES`` etc.; BF16 moments with ``TrainingJob.moments_dtype``);
  ZeRO stages 1/2/3 shard the optimizer states / + gradients / + weights over the data-parallel
  group (Rajbhandari et al. 2020, arXiv:1910.02054, sec. 5). Megatron-LM's distributed
  optimizer shards over dp x cp, so the group here is ``dp * cp`` (``dp * cp / ep`` for expert
  weights). DualPipe ranks hold two stages' parameters (``pipeline.py``); their optimizer
  states are sharded over both copies' data-parallel groups, so only weights and gradients
  double.
- Activations per layer and micro-batch: the parts of ``activations.py`` that the recompute
  mask keeps, times the tokens on the rank over ``tp`` (sequence parallelism; Korthikanti et
  al. 2022, arXiv:2205.05198, Table 2); full recomputation keeps only each layer's input
  (``2*s*b*h/t``) plus one layer's working set while it is recomputed. Context parallelism
  splits ``s`` by ``cp``. Micro-batches in flight: ``pipeline.inflight``. The rank holding
  the LM head also keeps the FP32 logits ``4*s*b*V/t`` (Korthikanti sec. 4.3), once per MTP
  module more; BF16 (``2*s*b*V/t``) under XLA, which fuses the loss's upcast
  (``calibration.PLANNED_ALLOCATION_FAMILIES``).
- Buffers: NCCL buffers, the tensor-parallel all-gather of the full sequence, pipeline send
  and receive tensors, and with ZeRO-3 the gathered weights of the current and the prefetched
  layer. Reserve: CUDA context plus allocator fragmentation (``calibration.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solver.stepmodel import calibration as C
from solver.stepmodel.arrays import FloatArray, HardwareTable, IntArray, LayoutArrays
from solver.stepmodel.compute import sequence_replicas, tokens_per_rank
from solver.stepmodel.pipeline import RankWeights, Stage, inflight, rank_weights, stages
from solver.stepmodel.shape import JobShape

GIB = 2.0**30


@dataclass(frozen=True)
class StageParams:
    """Parameters one accelerator of a stage holds: replicated (sharded over dp*cp by ZeRO)
    and routed-expert (sharded over dp*cp/ep)."""

    replicated: FloatArray
    experts: FloatArray
    vocab: FloatArray  # the embedding and LM head among ``replicated`` (kept in BF16)


def stage_params(js: JobShape, x: LayoutArrays, s: Stage) -> StageParams:
    mtp_replicated = js.mtp_params - (js.experts * js.expert_params if js.is_moe else 0)
    body = (s.dense * js.dense_layer_params + s.moe * js.moe_nonexpert_params
            + s.mtp * mtp_replicated)
    # The first stage holds the embedding; the last the LM head (its own copy when the
    # embeddings are tied and the stages differ; one matrix when a single stage holds both).
    head = np.where(s.head & ~(s.embedding & np.bool_(js.tied)), js.head_params, 0)
    vocab = (np.where(s.embedding, js.embedding_params, 0) + head) / x.tp
    replicated = body / x.tp + vocab
    moe = s.moe + (s.mtp if js.is_moe else 0)
    experts = moe * js.experts * js.expert_params / (x.tp * x.ep)
    return StageParams(replicated.astype(float), experts.astype(float), vocab.astype(float))


def zero_divisors(x: LayoutArrays, stage: int) -> tuple[FloatArray, FloatArray]:
    """Shard counts of replicated and expert states whose ZeRO stage is at least ``stage``."""
    dense_group = (x.dp * x.cp).astype(float)
    expert_group = dense_group / x.ep
    on = x.zero >= stage
    return np.where(on, dense_group, 1.0), np.where(on, expert_group, 1.0)


def model_state_bytes(params: FloatArray, experts: FloatArray, x: LayoutArrays,
                      grad_bytes: int = C.GRAD_BYTES, optimizer_bytes: int = C.OPTIMIZER_BYTES,
                      weight_bytes: int = C.WEIGHT_BYTES
                      ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Weights (``weight_bytes`` each), gradients (``grad_bytes``) and optimizer states in
    bytes after ZeRO sharding."""
    out = []
    for stage, nbytes in ((3, weight_bytes), (2, grad_bytes), (1, optimizer_bytes)):
        dense_div, expert_div = zero_divisors(x, stage)
        out.append(nbytes * (params / dense_div + experts / expert_div))
    return out[0], out[1], out[2]


def stored_per_token(js: JobShape, x: LayoutArrays) -> tuple[FloatArray, FloatArray]:
    """Bytes per token a dense and an MoE layer keep under the layout's recomputation (before
    the division by ``tp``)."""
    rep = sequence_replicas(js, x)
    return (js.dense_act.stored(x.recompute, x.cp, rep),
            js.moe_act.stored(x.recompute, x.cp, rep))


def stage_activation_bytes(js: JobShape, x: LayoutArrays, s: Stage,
                           per_token: tuple[FloatArray, FloatArray] | None = None
                           ) -> FloatArray:
    """What a stage stores for one micro-batch under the layout's recomputation
    (``per_token``: what a dense and an MoE layer store per token, when already known)."""
    tokens = tokens_per_rank(js, x)
    dense, moe = per_token if per_token is not None else stored_per_token(js, x)
    mtp = moe if js.is_moe else dense
    per_token = s.dense * dense + s.moe * moe + s.mtp * mtp
    layers = s.dense + s.moe + s.mtp
    checkpoint = np.where(x.full, C.ACT_BYTES * js.hidden * layers, 0.0)
    return tokens * (per_token + checkpoint) / x.tp


def working_set(js: JobShape, x: LayoutArrays, s: Stage) -> FloatArray:
    """While full recomputation rebuilds a layer, it holds everything the layer stores."""
    tokens = tokens_per_rank(js, x)
    none = np.zeros(1, np.int64)
    rep = sequence_replicas(js, x)
    dense = np.where(s.dense > 0, js.dense_act.stored(none, x.cp, rep), 0.0)
    moe = np.where((s.moe + s.mtp) > 0, js.moe_act.stored(none, x.cp, rep), 0.0)
    return np.where(x.full, tokens * np.maximum(dense, moe) / x.tp, 0.0)


@dataclass(frozen=True)
class MemoryArrays:
    """Bytes per accelerator of the most loaded rank, by component."""

    weights: FloatArray
    gradients: FloatArray
    optimizer: FloatArray
    activations: FloatArray
    buffers: FloatArray
    reserve: FloatArray
    host: FloatArray  # activations offloaded to host memory (not in ``total``)

    @property
    def total(self) -> FloatArray:
        return (self.weights + self.gradients + self.optimizer + self.activations
                + self.buffers + self.reserve)

    def breakdown_gib(self, i: int) -> dict[str, float]:
        return {name: float(getattr(self, name)[i]) / GIB for name in
                ("weights", "gradients", "optimizer", "activations", "buffers", "reserve")}


@dataclass(frozen=True)
class StageMemory:
    """What one stage needs per accelerator: its parameters, its activations per micro-batch,
    its recomputation working set."""

    stage: Stage
    params: StageParams
    activations: FloatArray
    working: FloatArray


@dataclass(frozen=True)
class Runtime:
    """What the accelerator's software adds per layout: the transposed FP8 weight copy (bytes
    per weight), the allocator's fragmentation reserve and the bytes of each logit the loss
    keeps (``HardwareTable``)."""

    fp8_transpose_bytes: FloatArray | float
    fragmentation: FloatArray | float
    logits_bytes: FloatArray | float

    @classmethod
    def of(cls, x: LayoutArrays, hw: HardwareTable | None) -> Runtime:
        """The figures of each layout's accelerator; without ``hw``, a caching allocator on a
        TN-only FP8 accelerator (Hopper) with FP32 logits, the most any accelerator needs."""
        if hw is None:
            return cls(1.0, C.FRAGMENTATION, float(C.FP32_LOGIT_BYTES))
        return cls(hw.fp8_transpose_bytes[x.accel], hw.fragmentation[x.accel],
                   hw.logits_bytes[x.accel])


def _rank_memory(js: JobShape, x: LayoutArrays, w: RankWeights, stage_mem: list[StageMemory],
                 in_flight: FloatArray, rt: Runtime) -> MemoryArrays:
    params = [s.params for s in stage_mem]
    parts = [s.stage for s in stage_mem]
    replicated = sum(k * p.replicated for k, p in zip(w.params, params, strict=True))
    experts = sum(k * p.experts for k, p in zip(w.params, params, strict=True))
    assert isinstance(replicated, np.ndarray) and isinstance(experts, np.ndarray)
    vocab = sum(k * p.vocab for k, p in zip(w.params, params, strict=True))
    weights, grads, optim = model_state_bytes(replicated, experts, x, js.grad_bytes,
                                              js.optimizer_bytes, js.param_bytes)
    # FP8 weights are the linear layers'; the embedding and LM head stay BF16.
    weights = weights + (C.WEIGHT_BYTES - js.param_bytes) * vocab / zero_divisors(x, 3)[0]
    # A second stage (DualPipe) doubles weights and gradients, not the sharded optimizer.
    copies = np.maximum(1.0, sum(w.params))
    optim = optim / np.where(x.zero >= 1, copies, 1.0)
    if js.fp8:
        # Transformer Engine keeps an FP8 copy of each linear layer's weight (none with FP8
        # weights) and, on TN-only accelerators, of its transpose between micro-batches; with
        # ZeRO-3 weights are gathered per layer and no copy persists.
        cache = js.fp8_copy_bytes + rt.fp8_transpose_bytes
        weights = weights + np.where(x.zero >= 3, 0.0, cache) * (replicated - vocab + experts)
    act = sum(k * s.activations for k, s in zip(w.time, stage_mem, strict=True))
    stored = in_flight * act
    host = np.zeros(len(x))
    if js.activation_offload:
        # The layer being computed and the one in transfer stay; the rest waits on the host.
        layers = sum(k * (s.stage.dense + s.stage.moe + s.stage.mtp)
                     for k, s in zip(w.time, stage_mem, strict=True))
        held = np.minimum(stored, 2.0 * act / np.maximum(layers, 1))
        host, stored = stored - held, held
    work = np.maximum.reduce([np.where(k > 0, s.working, 0.0)
                              for k, s in zip(w.time, stage_mem, strict=True)])
    tokens = tokens_per_rank(js, x)
    holds_head = sum(np.where(k > 0, s.head, False) for k, s in
                     zip(w.params, parts, strict=True)) > 0
    logits = np.where(holds_head, rt.logits_bytes * tokens * js.vocab / x.tp
                      * (1 + js.mtp_layers), 0.0)
    activations = stored + work + logits
    layer_weights = np.where(
        js.is_moe, js.moe_nonexpert_params + js.experts * js.expert_params / x.ep,
        js.dense_layer_params) / x.tp
    # FSDP: the layer in use and the next one, prefetched; DeepSpeed: its live-parameter cap,
    # or the largest single module when that exceeds it.
    live = 2 * layer_weights if js.zero3_impl == "fsdp" else np.minimum(
        2 * layer_weights, max(C.DEEPSPEED_MAX_LIVE_PARAMS, js.largest_module_params) / x.tp)
    zero3_gather = np.where(x.zero >= 3, js.param_bytes * live, 0.0)
    tp_gather = np.where(x.tp > 1, C.ACT_BYTES * tokens * js.hidden, 0.0)
    p2p = np.where(x.pp > 1, 2 * C.ACT_BYTES * tokens * js.hidden / x.tp, 0.0)
    buffers = C.NCCL_BUFFERS_GIB * GIB + zero3_gather + tp_gather + p2p
    allocated = weights + grads + optim + activations + buffers
    reserve = C.CONTEXT_GIB * GIB + rt.fragmentation * allocated
    return MemoryArrays(weights, grads, optim, activations, buffers, reserve, host)


def memory(js: JobShape, x: LayoutArrays, nmb: IntArray | None = None,
           hw: HardwareTable | None = None) -> MemoryArrays:
    """Per-accelerator memory of the most loaded of the first, a middle and the last rank, on
    the accelerators of ``hw`` (without it: the most any accelerator's software needs,
    ``Runtime.of``)."""
    nmb = x.nmb if nmb is None else nmb
    st = stages(js, x)
    per_token = stored_per_token(js, x)
    stage_mem = [StageMemory(s, stage_params(js, x, s), stage_activation_bytes(js, x, s,
                                                                             per_token),
                             working_set(js, x, s)) for s in (st.first, st.middle, st.last)]
    flight = inflight(x, nmb)
    rt = Runtime.of(x, hw)
    ranks = [_rank_memory(js, x, w, stage_mem, f, rt)
             for w, f in zip(rank_weights(x), flight, strict=True)]
    exists = [np.ones(len(x), bool), x.pp >= 3, np.ones(len(x), bool)]
    totals = [np.where(e, r.total, -np.inf) for r, e in zip(ranks, exists, strict=True)]
    pick = np.argmax(np.stack(totals), axis=0)

    def choose(name: str) -> FloatArray:
        return np.choose(pick, [getattr(r, name) for r in ranks])

    return MemoryArrays(*(choose(n) for n in ("weights", "gradients", "optimizer",
                                              "activations", "buffers", "reserve",
                                              "host")))


__all__ = ["GIB", "MemoryArrays", "memory", "model_state_bytes", "stage_activation_bytes",
           "stage_params", "zero_divisors"]
