"""Kernel time of one layer for one micro-batch on one accelerator: forward (F), input-gradient
backward (B), weight-gradient backward (W) and what recomputation repeats (R).

- GEMMs at ``peak * matmul_efficiency * matmul_scale`` (roofline: never faster than reading
  the weights from HBM). Linear layers run at the job's precision (FP8 GEMMs with Transformer
  Engine); the attention scores and the LM head stay BF16, as Megatron-LM / NeMo FP8 recipes
  keep them (Micikevicius et al. 2022, arXiv:2209.05433, sec. 4). The backward runs each GEMM
  twice, once for the input gradient (B) and once for the weight gradient (W) (Qi et al. 2024,
  arXiv:2401.10241, Table 1: F, B and W each ``24sbh^2`` per layer).
- Routed experts run as grouped GEMMs at ``grouped_gemm_scale`` of a dense GEMM's rate
  (DeepGEMM's grouped FP8 GEMMs reach 61-68% of the H800's peak at 4-8K tokens per expert
  where its dense GEMMs reach up to 77%, deepseek-ai/DeepGEMM README @ 2e7e580), times
  ``M / (M + T)`` for ``M`` tokens per local expert and micro-batch: a grouped GEMM walks
  each expert's rows in tiles of ``T`` rows and pays about one tile more per expert than its
  rows fill (the tile its group shares with the next). ``T`` is the accelerator's
  ``grouped_gemm_tile_tokens``: on NVIDIA GPUs ``GROUPED_GEMM_TILE_TOKENS`` = 130, measured
  (DeepGEMM: 256 tokens per expert reach 0.69 and 0.67 of the rate at 4,096-8,192 for its two
  shapes, 932/1346 and 815/1214 TFLOP/s, which ``M / (M + T)`` gives at T of about 130;
  DeepGEMM aligns each expert's rows to its 128-row M block); on TPU MaxText's megablox
  kernel visits ``m_tiles + num_groups`` tiles of ``tile_batch_seq`` = 512 rows
  (``kernels/megablox/gmm.py`` ``make_group_metadata``; ``configs/base.yml``). The weights
  of every local expert are read once per pass. A MoE whose experts have biases, on the
  unfused expert path, runs them at ``biased_expert_scale`` of that rate
  (``calibration.py``).
- Attention scores: with flash attention the causal mask halves the work done (Dao 2023,
  FlashAttention-2, sec. 3.1) and the fused kernel runs at ``bf16 peak * matmul_efficiency *
  attention_scale``; FlashAttention-2 reaches 50-73% of the A100's peak (arXiv:2307.08691,
  sec. 4.1) but about 35% of the H100's (FlashAttention-3, arXiv:2407.08608, sec. 1). That
  rate holds at head dimension 128; other widths run at ``head_width_factor`` of it: each
  score costs ``2 (d_qk + d_v)`` matmul FLOPs and one exponential, which the fused kernel
  computes beside them at the special-function rate.
  Without it they are batched GEMMs. Forward once; the backward (in B) twice the forward
  unfused, and ``FLASH_BACKWARD_FACTOR`` = 2.5 times with flash attention, which recomputes
  the scores before its four gradient GEMMs (``score_seconds``).
- A fixed overhead per layer and pass (``calibration.layer_overhead_s``).
- Memory-bound kernels: the layer's activations (in BF16) times ``elementwise_traffic`` bytes
  at HBM bandwidth, forward once and backward twice (in B).
- Recomputation (R): full repeats F; modules repeat their own forward work
  (``activations.recompute_costs``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solver.layout_options import FULL_BIT
from solver.stepmodel import calibration as C
from solver.stepmodel import fieldwise
from solver.stepmodel.activations import RecomputeCost
from solver.stepmodel.arrays import FloatArray, HardwareTable, IntArray, LayoutArrays
from solver.stepmodel.calibration import Calibration
from solver.stepmodel.shape import JobShape


@dataclass(frozen=True)
class Rates:
    """Achieved FLOP/s of linear layers, BF16 GEMMs, grouped expert GEMMs and attention;
    HBM bytes/s and the bytes of a logit (arrays over layouts)."""

    linear: FloatArray
    bf16: FloatArray
    experts: FloatArray
    scores: FloatArray
    hbm: FloatArray
    logits_bytes: FloatArray


#: FlashAttention's backward runs five matmuls (it recomputes ``S = QK^T``, then ``dV``,
#: ``dP``, ``dQ`` and ``dK``) where the forward runs two: 2.5 times the forward's FLOPs (Dao
#: 2023, FlashAttention-2, arXiv:2307.08691, Algorithm 2; its benchmarks count the backward as
#: ``2.5 *`` the forward, Dao-AILab/flash-attention ``benchmarks/benchmark_flash_attention.py``).
#: Unfused attention stores the scores and runs two gradient GEMMs per forward GEMM: 2.
FLASH_BACKWARD_FACTOR = 2.5


def score_seconds(js: JobShape, x: LayoutArrays, r: Rates) -> tuple[FloatArray, FloatArray]:
    """Forward and backward time of one layer's attention scores (QK^T and scores x V) for one
    micro-batch: the work the kernels do (``shape.score_work``: flash attention skips the
    masked blocks, Dao 2023, sec. 3.1), at the attention rate."""
    forward = tokens_per_rank(js, x) * js.score_flops * js.score_work / x.tp / r.scores
    return forward, forward * (FLASH_BACKWARD_FACTOR if js.flash_attention else 2.0)


#: Matmul FLOPs one softmax exponential costs in a fused attention kernel: the H100's 989
#: TFLOP/s of BF16 matmul over its 3.9 TFLOP/s of special functions (Shah et al. 2024,
#: FlashAttention-3, arXiv:2407.08608, sec. 3.1).
EXP_MATMUL_FLOPS = 989.0 / 3.9


def head_width_factor(score_element_flops: float) -> float:
    """Fused-attention rate at a head width over the rate at head dimension 128 (where
    ``attention_scale`` was fitted): each score takes ``score_element_flops`` matmul FLOPs
    (``2 (d_qk + d_v)``) plus one exponential worth ``EXP_MATMUL_FLOPS``. FlashAttention-3's
    forward on the H100 at 16K (its Figure 5: 497, 648 and 756 TFLOP/s at head dimensions 64,
    128 and 256) runs at 0.77 and 1.17 of head 128's rate; this gives 0.75 and 1.20."""
    def useful(flops: float) -> float:
        return flops / (flops + EXP_MATMUL_FLOPS)
    return useful(score_element_flops) / useful(2.0 * (128 + 128))


def tokens_per_expert(js: JobShape, x: LayoutArrays) -> FloatArray:
    """Tokens one local expert computes per micro-batch: the rank's tokens, each routed to
    ``routed`` experts, gathered from the ``ep`` ranks over the ``experts``."""
    return tokens_per_rank(js, x) * js.routed * x.ep / max(js.experts, 1)


def rates(js: JobShape, x: LayoutArrays, hw: HardwareTable, cal: Calibration) -> Rates:
    a = x.accel
    scale = np.where(np.isnan(hw.matmul_scale[a]), cal.matmul_scale, hw.matmul_scale[a])
    linear = hw.peak_flops[a] * hw.linear_efficiency[a] * scale
    bf16 = hw.bf16_peak_flops[a] * hw.matmul_efficiency[a] * scale
    attention = np.where(np.isnan(hw.attention_scale[a]), cal.attention_scale,
                         hw.attention_scale[a])
    scores = hw.bf16_peak_flops[a] * hw.matmul_efficiency[a] * attention \
        * head_width_factor(js.score_element_flops) if js.flash_attention else bf16
    experts = linear * cal.grouped_gemm_scale
    if js.biased_experts_unfused:
        experts = experts * cal.biased_expert_scale
    if js.is_moe:
        m = tokens_per_expert(js, x)
        experts = experts * m / (m + hw.grouped_gemm_tile[a])
    return Rates(linear, bf16, experts, scores, hw.memory_bw[a], hw.logits_bytes[a])


@dataclass(frozen=True)
class Kernels:
    """Seconds of kernels per micro-batch: forward, input-gradient and weight-gradient
    backward, recomputation; ``gemm`` is the GEMM part of B + W (what hides the backward's
    tensor-parallel collectives)."""

    forward: FloatArray
    input_grad: FloatArray
    weight_grad: FloatArray
    recompute: FloatArray
    gemm_backward: FloatArray

    @property
    def total(self) -> FloatArray:
        return self.forward + self.input_grad + self.weight_grad + self.recompute

    def scaled(self, k: FloatArray | float) -> Kernels:
        return fieldwise.scaled(self, k)

    def __add__(self, other: Kernels) -> Kernels:
        return fieldwise.added(self, other)


def sequence_replicas(js: JobShape, x: LayoutArrays) -> IntArray | int:
    """How many tensor-parallel ranks hold each part only sequence parallelism splits (norms,
    dropouts, residual inputs): 1 with it, ``tp`` without (``TrainingJob.sequence_parallel``)."""
    return 1 if js.sequence_parallel else x.tp


def elementwise_bytes(js: JobShape, x: LayoutArrays, *, moe: bool) -> FloatArray | float:
    """A layer's activations in BF16 per token, the measure of its memory-bound traffic
    before the division by ``tp``; without sequence parallelism the parts it would split
    are whole on every tensor-parallel rank."""
    act = js.moe_act_bf16 if moe else js.dense_act_bf16
    return act.total + act.sequence_total * (sequence_replicas(js, x) - 1)


def elementwise_seconds(js: JobShape, x: LayoutArrays, r: Rates, cal: Calibration, *,
                        moe: bool) -> FloatArray:
    """One pass of a layer's memory-bound kernels for one micro-batch:
    ``elementwise_traffic`` bytes per byte of its BF16 activations, at HBM bandwidth."""
    return tokens_per_rank(js, x) * elementwise_bytes(js, x, moe=moe) / x.tp \
        * cal.elementwise_traffic / r.hbm


def tokens_per_rank(js: JobShape, x: LayoutArrays) -> FloatArray:
    """Tokens of one micro-batch on one accelerator before tensor-parallel sharding."""
    return (js.seq_len // x.cp * x.mb).astype(float)


def _matmul(tokens: FloatArray, flops: float | FloatArray, weights: float | FloatArray,
            x: LayoutArrays, rate: FloatArray, hbm: FloatArray) -> FloatArray:
    """One GEMM pass: compute or weight reads, whichever is slower (roofline)."""
    return np.maximum(tokens * flops / x.tp / rate, C.WEIGHT_BYTES * weights / x.tp / hbm)


def _recompute(costs: dict[int, RecomputeCost], mask: np.ndarray, tokens: FloatArray,
               x: LayoutArrays, r: Rates, work: float) -> FloatArray:
    out = np.zeros(np.shape(mask))
    for bit, cost in costs.items():
        seconds = tokens / x.tp * (cost.matmul_flops / r.linear + cost.expert_flops / r.experts
                                   + cost.score_flops * work / r.scores
                                   + cost.membound_bytes / r.hbm)
        out = out + np.where((mask & bit) != 0, seconds, 0.0)
    return out


def layer_kernels(js: JobShape, x: LayoutArrays, r: Rates, cal: Calibration, *, moe: bool
                  ) -> Kernels:
    """Kernels of one dense (``moe`` False) or MoE layer for one micro-batch."""
    tokens = tokens_per_rank(js, x)
    scores, scores_backward = score_seconds(js, x, r)
    if moe:
        expert_weights = js.experts * js.expert_params / x.ep
        gemm = (_matmul(tokens, js.moe_nonexpert_flops, float(js.moe_nonexpert_params), x,
                        r.linear, r.hbm)
                + _matmul(tokens, js.routed * js.routed_expert_flops, expert_weights, x,
                          r.experts, r.hbm))
        costs = js.moe_recompute
    else:
        gemm = _matmul(tokens, js.dense_layer_flops, float(js.dense_layer_params), x, r.linear,
                       r.hbm)
        costs = js.dense_recompute
    elementwise = elementwise_seconds(js, x, r, cal, moe=moe)
    overhead = cal.layer_overhead_s
    forward = gemm + scores + overhead + elementwise
    full = (x.recompute & FULL_BIT) != 0
    recompute = np.where(full, forward, _recompute(costs, x.recompute, tokens, x, r, js.score_work))
    return Kernels(forward=forward, input_grad=gemm + scores_backward + overhead + 2 * elementwise,
                   weight_grad=gemm + overhead, recompute=recompute, gemm_backward=2 * gemm)


def logits_seconds(js: JobShape, x: LayoutArrays, r: Rates) -> FloatArray:
    """One pass's memory traffic over the logits: written and read once at the width the
    loss keeps them (FP32; BF16 under XLA, ``HardwareTable.logits_bytes``)."""
    return 2 * r.logits_bytes * tokens_per_rank(js, x) * js.vocab / x.tp / r.hbm


def head_kernels(js: JobShape, x: LayoutArrays, r: Rates) -> Kernels:
    """The LM head (BF16 GEMM) and its logits, once per micro-batch on the last stage."""
    tokens = tokens_per_rank(js, x)
    gemm = _matmul(tokens, js.head_flops, float(js.head_params), x, r.bf16, r.hbm)
    logits = logits_seconds(js, x, r)
    zero = np.zeros_like(gemm)
    return Kernels(gemm + logits, gemm + logits, gemm + logits, zero, 2 * gemm)


def mtp_kernels(js: JobShape, x: LayoutArrays, r: Rates, cal: Calibration) -> Kernels:
    """One multi-token-prediction module: its projection, one layer and the shared head."""
    tokens = tokens_per_rank(js, x)
    projection = _matmul(tokens, js.mtp_projection_flops, 2.0 * js.hidden * js.hidden, x,
                         r.linear, r.hbm)
    layer = layer_kernels(js, x, r, cal, moe=js.is_moe)
    zero = np.zeros_like(projection)
    extra = Kernels(projection, projection, projection, zero, 2 * projection)
    return layer + extra + head_kernels(js, x, r)




def hardware_flops_per_token(js: JobShape, x: LayoutArrays) -> FloatArray:
    """Model FLOPs plus what recomputation repeats (full: every layer's forward; modules:
    their own work), per token; the causal discount is not applied (FLOP-count convention)."""
    full_fwd = (js.dense_layers * (js.dense_layer_flops + js.score_flops)
                + js.moe_layers * (js.moe_nonexpert_flops + js.top_k * js.routed_expert_flops
                                   + js.score_flops))
    extra = np.zeros(len(x))
    for layers, costs in ((js.dense_layers, js.dense_recompute),
                          (js.moe_layers, js.moe_recompute)):
        for bit, cost in costs.items():
            flops = cost.matmul_flops + cost.score_flops + cost.expert_flops * (
                js.top_k / max(js.routed, 1e-30) if js.routed else 0.0)
            extra = extra + np.where((x.recompute & bit) != 0, layers * flops, 0.0)
    full = (x.recompute & FULL_BIT) != 0
    return js.model_flops_per_token + np.where(full, full_fwd, extra)


__all__ = ["Kernels", "Rates", "elementwise_bytes", "elementwise_seconds",
           "hardware_flops_per_token", "head_kernels", "head_width_factor", "layer_kernels",
           "logits_seconds", "mtp_kernels", "rates", "sequence_replicas", "tokens_per_rank"]
