"""The search space: per-replica shapes (numpy), then rows = shape x dp with the micro-batch
count derived.

A *shape* fixes everything but the data-parallel degree, the micro-batches per step and the
recomputation: accelerator, tp, pp, vp, cp, ep, micro-batch, ZeRO stage, pipeline schedule and
pipeline split. Its values are every value ``solver.evaluate`` accepts:
- tp: powers of two up to ``max(8, scale-up domain)`` (at most 64) dividing the heads and MLP
  widths and the kv heads (or a multiple of them); the oracle (``complete``) every divisor;
- pp, vp and the pipeline split: every combination with ``(L + mtp + slots) % (pp*vp) == 0``
  and a layer left on every chunk (Megatron-LM's rule, ``stepmodel.evaluate.stages_fit``);
- schedule: 1F1B (interleaved when vp > 1), zero-bubble (vp 1, pp > 1), DualPipe (vp 1, even
  pp);
- cp: powers of two up to ``CP_MAX`` with ``2*cp`` dividing the sequence (the oracle every
  such value); ep: every divisor of the experts;
- micro-batch: every divisor of the global batch when it is fixed; 1, 2, 4, 8, 16 when the
  solver chooses the batch (a subset: see docs/solver.md);
- ZeRO 0-3.
Recomputation is chosen per row (``rows.rows_for``): among the masks of ``search_masks``, the
fastest that fits, which is exact because at a fixed layout and GPU count every objective and
limit is monotone in the training time. The masks are every canonical set of Megatron-LM
modules, none and full, less those another mask dominates part by part (``_effects``: stored
bytes and repeated work no smaller, so time never falls and memory never shrinks; with flash
attention ``core_attn`` stores nothing, so it is such a mask).
Values are left out only where another value is never worse in the step model (exact
dominance): ZeRO-0 when the gradient reduction is not overlapped (``grad_reduce_overlap``
False: then ZeRO-1 moves the same bytes, exposed alike, and holds less). A fixed value brings
them back.
The data-parallel degree takes every value when the GPU count or the global batch pins it;
otherwise every integer up to 64 and, above, the integers with at most
``DP_SIGNIFICANT_BITS`` significant bits (64, 72, 80, 88, 96, 104, 112, 120, 128, 144, ...;
spacing at most 12.5%).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from solver.launchers import allowed_masks, shape_ok
from solver.layout_options import (
    ALTERNATE_BIT,
    FULL_BIT,
    MODULE_BIT,
    PIPELINE_SPLITS,
    SCHEDULE_CODE,
    SCHEDULES,
    SPLIT_CODE,
    STANDALONE_BITS,
    all_recompute_masks,
    recompute_code,
)
from solver.specs import Accelerator, TrainingJob
from solver.stepmodel.shape import JobShape, job_shape

DP_SIGNIFICANT_BITS = 4
MICRO_BATCHES = (1, 2, 4, 8, 16)
#: Context-parallel degrees the search tries: powers of two up to this (the oracle, with
#: ``complete``, every degree ``evaluate`` accepts).
CP_MAX = 32


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
    schedule: np.ndarray
    split: np.ndarray
    #: The shape's index among its accelerator's shapes: shapes of equal ``base`` differ in
    #: the accelerator only.
    base: np.ndarray

    def __len__(self) -> int:
        return int(self.tp.shape[0])


def powers_of_two(limit: int) -> list[int]:
    return [1 << k for k in range(limit.bit_length()) if (1 << k) <= limit]


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


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


def _effects(js: JobShape, mask: int) -> tuple[float, ...]:
    """What a recompute mask changes, part by part: stored bytes (dense, MoE; the scores
    apart, as they scale with cp, and the sequence-parallel parts, which scale with tp
    without sequence parallelism) and repeated work (per cost kind, dense and MoE)."""
    m = np.array([mask])
    one = np.array([1])
    out = []
    for act, moe in ((js.dense_act, False), (js.moe_act, True)):
        sharded = act.stored(m, one, 0) - _scores(js, mask, moe=moe)
        out += [float(sharded[0]), float((act.stored(m, one, 1) - act.stored(m, one, 0))[0])]
    out += [_scores(js, mask, moe=False), _scores(js, mask, moe=True)]
    if mask & FULL_BIT:
        return tuple(out + [np.inf] * 10)  # full recomputation: compared by its own row
    for costs in (js.dense_recompute, js.moe_recompute):
        for kind in ("matmul_flops", "expert_flops", "score_flops", "membound_bytes"):
            out.append(sum(getattr(c, kind) for bit, c in costs.items() if mask & bit))
    out.append(float(bool(mask & MODULE_BIT["core_attn"])))  # the ring again under cp
    again = mask & (MODULE_BIT["moe"] | ALTERNATE_BIT)
    out.append(float(bool(again) and js.is_moe))  # the all-to-alls again
    return tuple(out)


def _scores(js: JobShape, mask: int, *, moe: bool) -> float:
    parts = (js.moe_act if moe else js.dense_act).parts
    if mask & (STANDALONE_BITS | MODULE_BIT["core_attn"]):
        return 0.0
    return sum(p.bytes_per_token for p in parts if p.name == "scores")


def search_masks(job: TrainingJob, fixed: Mapping[str, Any], *, complete: bool = False,
                 launcher: str | None = None) -> list[int]:
    """The recomputation masks a question ranges over: the fixed one; with ``complete`` every
    canonical mask (one of each set with identical effects, ``distinct_masks``); else those
    ``recompute_masks`` keeps. With a ``launcher``, only the masks it runs
    (``launchers.mask_refusal``; the dominance is judged among those)."""
    if "recompute" in fixed:
        return allowed_masks(launcher, job, [recompute_code(fixed["recompute"])])
    js = job_shape(job)
    if complete:
        return allowed_masks(launcher, job, distinct_masks(js))
    return recompute_masks(js, allowed_masks(launcher, job, all_recompute_masks()))


def distinct_masks(js: JobShape) -> list[int]:
    """Every canonical mask, one per set of masks the model cannot tell apart: identical
    stored bytes and repeated work give identical estimates (a dense model ignores the MoE
    and MLA modules), so evaluating one of them evaluates them all."""
    seen: dict[tuple[float, ...], int] = {}
    for mask in all_recompute_masks():
        seen.setdefault(_effects(js, mask), mask)
    return sorted(seen.values())


def recompute_masks(js: JobShape, masks: Sequence[int] | None = None) -> list[int]:
    """Recomputation masks worth searching: every canonical mask (or those of ``masks``), less
    those another of them dominates part by part (``_effects``) and those identical to a
    smaller mask."""
    masks = all_recompute_masks() if masks is None else list(masks)
    effects = {mask: _effects(js, mask) for mask in masks}
    kept = []
    for mask in masks:
        mine = effects[mask]
        dominated = False
        for other in masks:
            if other == mask:
                continue
            theirs = effects[other]
            no_worse = all(t <= s for t, s in zip(theirs, mine, strict=True))
            if no_worse and (theirs != mine or other < mask):
                dominated = True
                break
        if not dominated:
            kept.append(mask)
    return kept


def enumerate_shapes(job: TrainingJob, accelerators: Sequence[Accelerator],
                     fixed: Mapping[str, Any], *, honour_fixed: bool = True,
                     complete: bool = False, max_replica: int | None = None,
                     replica_divides: int | None = None, masks: Sequence[int] = (0,),
                     launcher: str | None = None) -> Shapes:
    """Every shape satisfying the model's divisibility rules, its ``recompute`` column taking
    each of ``masks`` (the search passes one placeholder and chooses per row; the oracle
    passes every mask); with a ``launcher``, only those it runs (``shape_block``).

    With ``honour_fixed`` False the fixed fields are ignored (to explain conflicts); with
    ``complete`` the dominated values are kept too (the brute-force oracle checks the claim).
    ``max_replica`` drops shapes whose ``tp*pp*cp`` exceeds it, ``replica_divides`` those
    whose ``tp*pp*cp`` does not divide it (an exact GPU count).
    """
    block = shape_block(job, accelerators, fixed, honour_fixed=honour_fixed,
                        complete=complete, max_replica=max_replica,
                        replica_divides=replica_divides, masks=masks, launcher=launcher)
    return on_accelerators(block, len(accelerators))


def on_accelerators(block: Shapes, n: int) -> Shapes:
    """The shapes of ``block`` (one accelerator's) on each of ``n`` accelerators, accelerator
    by accelerator."""
    size = len(block)
    columns = [np.repeat(np.arange(n, dtype=np.int64), size)]
    columns += [np.tile(getattr(block, f.name), n) for f in fields(Shapes)[1:]]
    return Shapes(*columns)


def placed(block: Shapes, accel: np.ndarray, base: np.ndarray) -> Shapes:
    """The shapes ``block[base]`` on accelerators ``accel`` (equal-length index arrays)."""
    return Shapes(accel, *(getattr(block, f.name)[base] for f in fields(Shapes)[1:]))


def shape_block(job: TrainingJob, accelerators: Sequence[Accelerator],
                fixed: Mapping[str, Any], *, honour_fixed: bool = True,
                complete: bool = False, max_replica: int | None = None,
                replica_divides: int | None = None, masks: Sequence[int] = (0,),
                launcher: str | None = None) -> Shapes:
    """The shapes ``enumerate_shapes`` gives each accelerator (the same for every one: the
    tp values range up to the largest scale-up domain among ``accelerators``), with
    ``accel`` 0 and ``base`` their index. With a ``launcher``, the shapes it cannot run are
    left out (``launchers.shape_refusals``), with ``honour_fixed`` False too: relaxing a
    question frees its fixed fields, never the launcher."""
    m = job.model
    use = fixed if honour_fixed else {}
    # ZeRO-0 is dominated by ZeRO-1 only where ZeRO-1 may be run: a launcher may refuse it.
    keep_zero0 = complete or job.grad_reduce_overlap or launcher is not None
    zero_default = (0, 1, 2, 3) if keep_zero0 else (1, 2, 3)
    widths = [m.heads, m.ffn_hidden] + ([m.moe_ffn_hidden] if m.is_moe else [])
    tp_cap = max((min(64, max(8, a.scaleup_domain)) for a in accelerators), default=8)
    tps = [t for t in _choices(use, "tp", divisors(int(np.gcd.reduce(widths)))
                               if complete else powers_of_two(tp_cap))
           if int(np.gcd.reduce(widths)) % t == 0
           and (m.kv_heads % t == 0 or t % m.kv_heads == 0 or m.uses_mla)]
    cps = [c for c in _choices(use, "cp", divisors(max(job.seq_len // 2, 1))
                               if complete else powers_of_two(CP_MAX))
           if c == 1 or job.seq_len % (2 * c) == 0]
    eps = [e for e in _choices(use, "ep", divisors(m.experts)) if m.experts % e == 0]
    gb = job.global_batch
    mbs = _choices(use, "micro_batch", divisors(gb) if gb else MICRO_BATCHES)
    zeros = _choices(use, "zero_stage", zero_default)
    block = _block(_pipelines(job, use), tps, cps, eps, mbs, zeros, list(masks),
                   max_replica=max_replica, replica_divides=replica_divides, gb=gb)
    if launcher is not None:
        t, p, v, c, e, _, z, _, sched, split = block
        ok = shape_ok(launcher, job, tp=t, pp=p, vp=v, cp=c, ep=e, zero=z, schedule=sched,
                      split=split)
        block = [col[ok] for col in block]
    size = block[0].size
    return Shapes(*[np.zeros(size, np.int64), *block, np.arange(size, dtype=np.int64)])


def _block(pipes: np.ndarray, tps: Sequence[int], cps: Sequence[int], eps: Sequence[int],
           mbs: Sequence[int], zeros: Sequence[int], recs: Sequence[int], *,
           max_replica: int | None, replica_divides: int | None, gb: int
           ) -> list[np.ndarray]:
    """The shapes of one accelerator, as the columns of ``Shapes`` after ``accel`` (tp, pp,
    vp, cp, ep, mb, zero, recompute, schedule, split)."""
    if pipes.size == 0:
        return [np.zeros(0, np.int64) for _ in range(10)]
    grid = np.meshgrid(np.arange(len(pipes)), tps, cps, indexing="ij")
    bp, bt, bc = (g.ravel().astype(np.int64) for g in grid)
    replica = pipes[bp, 0] * bt * bc
    ok = np.ones(replica.size, bool)
    if max_replica is not None:
        ok &= replica <= max_replica
    if replica_divides is not None:
        ok &= replica_divides % replica == 0
    bp, bt, bc = bp[ok], bt[ok], bc[ok]
    grids = np.meshgrid(np.arange(bp.size), eps, mbs, zeros, recs, indexing="ij")
    bi, e, b, z, r = (g.ravel().astype(np.int64) for g in grids)
    pi, t, c = bp[bi], bt[bi], bc[bi]
    p, v, sched, split = (pipes[pi, k] for k in range(4))
    keep = np.ones(t.size, bool)
    if max_replica is not None:  # ep must divide dp*cp for some dp within the cap
        keep &= e <= (max_replica // (p * t * c)) * c
    if replica_divides is not None:  # the GPU count pins dp
        dp = replica_divides // (p * t * c)
        keep &= (dp * c) % e == 0
        if gb:
            keep &= gb % (dp * b) == 0
    return [col[keep] for col in (t, p, v, c, e, b, z, r, sched, split)]


def _pipelines(job: TrainingJob, use: Mapping[str, Any]) -> np.ndarray:
    """Rows (pp, vp, schedule, split) that satisfy the stage rule."""
    m = job.model
    out = []
    for split in _choices(use, "pipeline_split", PIPELINE_SPLITS):
        code = SPLIT_CODE[split]
        emb, loss = int(split in ("embedding", "both")), int(split in ("loss", "both"))
        slots = m.layers + m.mtp_layers + emb + loss
        for p in _choices(use, "pp", divisors(slots)):
            if code and p == 1:
                continue
            for v in _choices(use, "vp", divisors(slots // p) if slots % p == 0 else []):
                per_chunk, rem = divmod(slots, p * v)
                if rem or per_chunk - emb < 1 or per_chunk - loss < 1 or (v > 1 and p == 1):
                    continue
                for sched in _choices(use, "schedule", SCHEDULES):
                    if sched != "1f1b" and (v > 1 or p == 1):
                        continue
                    if sched == "dualpipe" and p % 2:
                        continue
                    out.append((p, v, SCHEDULE_CODE[sched], code))
    return np.array(out, np.int64).reshape(-1, 4)
