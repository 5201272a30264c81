"""The search space: per-replica shapes (numpy), then rows = shape x dp with the micro-batch
count derived.

A *shape* fixes everything but the data-parallel degree and the micro-batches per step:
accelerator, tp, pp, vp, cp, ep, micro-batch, ZeRO stage, recomputation. Its values:
- tp: powers of two dividing the heads (and the kv heads or a multiple of them), up to
  ``max(8, scale-up domain)`` capped at 64; beyond the scale-up domain it pays scale-out speed.
- pp: divisors of the layer count and powers of two up to it (the most loaded stage holds
  ``ceil(L/pp)`` layers); vp in 1, 2, 4 where ``pp*vp`` divides the layers.
- cp: 1, 2, 4, 8, 16, 32 where ``2*cp`` divides the sequence; ep: powers of two dividing the
  experts; micro-batch 1, 2, 4, 8, 16.
- ZeRO 0-3 and recomputation none/full (plus selective without flash attention). Values are
  left out only where another value is never worse in the step model (exact dominance):
  ZeRO-0 when the gradient reduction is not overlapped (``grad_reduce_overlap`` False: then
  ZeRO-1 moves the same bytes, exposed alike, and holds less; overlapped, ZeRO-0's all-reduce
  hides under the whole backward while ZeRO-1's weight gather hides only under the next
  forward) and, with flash attention, selective recomputation (the same memory as none, more
  FLOPs, and no kernel time hides two transfers). A fixed value brings them back.
The data-parallel degree takes every integer up to 64 and, above, the integers with at most
``DP_SIGNIFICANT_BITS`` significant bits (64, 72, 80, 88, 96, 104, 112, 120, 128, 144, ...;
spacing at most 12.5%), unless the GPU count or the global batch pins it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from solver.specs import RECOMPUTE_MODES, Accelerator, TrainingJob
from solver.stepmodel.arrays import RECOMPUTE_CODE

DP_SIGNIFICANT_BITS = 4
MICRO_BATCHES = (1, 2, 4, 8, 16)
CP_VALUES = (1, 2, 4, 8, 16, 32)
VP_VALUES = (1, 2, 4)


@dataclass(frozen=True)
class Shapes:
    """Per-replica shapes as columns (``accel`` indexes the accelerator list)."""

    accel: np.ndarray
    tp: np.ndarray
    pp: np.ndarray
    vp: np.ndarray
    cp: np.ndarray
    ep: np.ndarray
    mb: np.ndarray
    zero: np.ndarray
    recompute: np.ndarray

    def __len__(self) -> int:
        return int(self.tp.shape[0])


def powers_of_two(limit: int) -> list[int]:
    return [1 << k for k in range(limit.bit_length()) if (1 << k) <= limit]


def pp_values(layers: int) -> list[int]:
    divisors = {d for d in range(1, layers + 1) if layers % d == 0}
    return sorted(divisors | set(powers_of_two(layers)))


def dp_values(dp_max: int) -> np.ndarray:
    """Every dp up to 64, then those with at most ``DP_SIGNIFICANT_BITS`` significant bits."""
    if dp_max < 1:
        return np.zeros(0, dtype=np.int64)
    values = np.arange(1, dp_max + 1, dtype=np.int64)
    if dp_max <= 64:
        return values
    shift = np.maximum(0, np.floor(np.log2(values)).astype(np.int64) + 1 - DP_SIGNIFICANT_BITS)
    keep = (values <= 64) | ((values >> shift) << shift == values)
    return values[keep]


def _choices(fixed: Mapping[str, Any], key: str, values: Sequence[Any]) -> list[Any]:
    return [fixed[key]] if key in fixed else list(values)


def enumerate_shapes(job: TrainingJob, accelerators: Sequence[Accelerator],
                     fixed: Mapping[str, Any], *, honour_fixed: bool = True,
                     complete: bool = False) -> Shapes:
    """Every shape satisfying the model's divisibility rules.

    With ``honour_fixed`` False the fixed fields are ignored (to explain conflicts); with
    ``complete`` the dominated values are kept too (the brute-force oracle checks the claim).
    """
    m = job.model
    use = fixed if honour_fixed else {}
    # ZeRO-0 is dominated by ZeRO-1 only when the gradient traffic is not overlapped: with
    # bucketed reduction its all-reduce hides under the whole backward, where ZeRO-1's weight
    # gather after the optimizer can hide only under the next forward.
    zero_default = (0, 1, 2, 3) if complete or job.grad_reduce_overlap else (1, 2, 3)
    recompute_default = ("none", "full") if job.flash_attention and not complete \
        else RECOMPUTE_MODES
    parts: list[np.ndarray] = []
    for a, acc in enumerate(accelerators):
        tp_cap = min(64, max(8, acc.scaleup_domain))
        tps = [t for t in _choices(use, "tp", powers_of_two(tp_cap))
               if m.heads % t == 0 and (m.kv_heads % t == 0 or t % m.kv_heads == 0
                                        or m.uses_mla)
               and m.ffn_hidden % t == 0 and (not m.is_moe or m.moe_ffn_hidden % t == 0)]
        pps = [p for p in _choices(use, "pp", pp_values(m.layers)) if p <= m.layers]
        cps = [c for c in _choices(use, "cp", CP_VALUES) if c == 1 or job.seq_len % (2 * c) == 0]
        eps = [e for e in _choices(use, "ep", powers_of_two(m.experts)) if m.experts % e == 0]
        mbs = _choices(use, "micro_batch", MICRO_BATCHES)
        zeros = _choices(use, "zero_stage", zero_default)
        recs = [RECOMPUTE_CODE[r] for r in _choices(use, "recompute", recompute_default)]
        vps = _choices(use, "vp", VP_VALUES)
        grids = np.meshgrid(tps, pps, vps, cps, eps, mbs, zeros, recs, indexing="ij")
        t, p, v, c, e, b, z, r = (g.ravel().astype(np.int64) for g in grids)
        ok = (p * v <= m.layers) & ((v == 1) | ((p > 1) & (m.layers % np.maximum(p * v, 1) == 0)))
        parts.append(np.stack([np.full(t.size, a), t, p, v, c, e, b, z, r], axis=1)[ok])
    table = np.concatenate(parts) if parts else np.zeros((0, 9), np.int64)
    return Shapes(*(table[:, i].copy() for i in range(9)))
