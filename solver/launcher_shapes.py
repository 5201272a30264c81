"""The launchers' shape rules, vectorised over the search's shape columns (numpy).

``shape_refusals`` applies every rule of a launcher's capability (``solver.launcher_table``) on
all but dp and the recomputation; ``dp_limit`` caps the data-parallel degree. Split from
``solver.launchers``, which re-exports every name here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from solver.launcher_table import capability
from solver.layout_options import SCHEDULE_CODE, SCHEDULES, SPLIT_CODE

if TYPE_CHECKING:  # specs imports solver.launchers (Limits.launcher), which imports this module
    from solver.specs import TrainingJob

#: Any dp (no cap).
NO_DP_LIMIT = np.iinfo(np.int64).max


def shape_refusals(launcher: str, job: TrainingJob, *, tp: Any, pp: Any, vp: Any, cp: Any,
                   ep: Any, zero: Any, schedule: Any, split: Any
                   ) -> list[tuple[str, str, np.ndarray]]:
    """Every shape rule of ``launcher`` as (field, reason, refused): ``refused`` is True where
    the shape (columns as arrays: ``schedule`` and ``split`` as the codes of
    ``solver.layout_options``) breaks it. Rules on dp and recomputation are apart
    (``dp_limit``, ``mask_refusal``)."""
    cap = capability(launcher)
    tp, pp, vp, cp, ep, zero, schedule, split = (
        np.atleast_1d(np.asarray(a, dtype=np.int64))
        for a in (tp, pp, vp, cp, ep, zero, schedule, split))
    m = job.model
    name = launcher
    out: list[tuple[str, str, np.ndarray]] = []

    def rule(field_name: str, why: str, refused: Any) -> None:
        out.append((field_name, why, np.broadcast_to(np.asarray(refused, bool), tp.shape)))

    allowed_zero = np.isin(zero, cap.zero_stages)
    rule("zero_stage", f"{name} runs ZeRO {'/'.join(map(str, cap.zero_stages))} "
         f"({cap.sources.get('zero_stages', '')})", ~allowed_zero)
    allowed_sched = np.isin(schedule, [SCHEDULE_CODE[s] for s in cap.schedules])
    rule("schedule", f"{name} has no {'/'.join(s for s in SCHEDULES if s not in cap.schedules)}"
         f" schedule ({cap.sources['schedules']})", ~allowed_sched)
    if not cap.interleaving:
        rule("vp", f"{name} has no interleaved schedule (vp > 1) ({cap.sources['schedules']})",
             vp > 1)
    if not cap.context_parallel:
        rule("cp", f"{name} has no context parallelism (cp > 1) "
             f"({cap.sources['context_parallel']})", cp > 1)
    allowed_split = np.isin(split, [SPLIT_CODE[s] for s in cap.pipeline_splits])
    rule("pipeline_split", f"{name} splits the pipeline {'|'.join(cap.pipeline_splits)} "
         f"({cap.sources.get('pipeline_splits', '')})", ~allowed_split & (pp > 1))
    if m.is_moe:
        if job.moe_dispatcher not in cap.moe_dispatchers:
            rule("moe_dispatcher", f"{name} has no {job.moe_dispatcher} dispatcher with ep > 1 "
                 f"({cap.sources['moe_dispatchers']})", ep > 1)
        if job.fp8_dispatch and not cap.fp8_dispatch:
            rule("fp8_dispatch", f"{name} cannot send the expert dispatch in FP8 with ep > 1",
                 ep > 1)
        if job.ep_comm_overlap and not cap.ep_comm_overlap:
            rule("ep_comm_overlap", f"{name} cannot overlap the expert all-to-alls with "
                 "another micro-batch (ep > 1)", ep > 1)
    if launcher == "megatron":
        rule("zero_stage", "megatron's --fp8-param-gather (fp8_params) needs ZeRO >= 1 "
             f"({cap.sources['fp8_params']})", (zero == 0) & np.bool_(job.fp8_params))
        rule("pp", "megatron's activation offload refuses pp > 1 "
             f"({cap.sources['activation_offload']})", (pp > 1) & np.bool_(job.activation_offload))
        if m.is_moe and job.ep_comm_overlap:
            rule("vp", "megatron's --overlap-moe-expert-parallel-comm (ep_comm_overlap) needs "
                 f"interleaving (vp > 1) with pp > 1 ({cap.sources['ep_comm_overlap']})",
                 (ep > 1) & (pp > 1) & (vp == 1))
            rule("ep_comm_overlap", "megatron's --overlap-moe-expert-parallel-comm takes at "
                 f"most one MTP layer ({cap.sources['ep_comm_overlap']})",
                 (ep > 1) & np.bool_(m.mtp_layers > 1))
    elif launcher == "torchtitan":
        rule("zero_stage", "torchtitan's ZeRO-0 is DDP, and with cp > 1 it always shards "
             f"(FSDP) ({cap.sources['ddp']})", (zero == 0) & (cp > 1))
        rule("ep", f"torchtitan needs ep a multiple of cp ({cap.sources['ep']})",
             (ep > 1) & (ep % cp != 0))
        rule("tp", f"torchtitan needs seq_len={job.seq_len} a multiple of tp*2*cp "
             f"({cap.sources['seq_len']})", job.seq_len % (tp * 2 * cp) != 0)
        if m.is_moe and job.tp_comm_overlap:
            rule("tp", f"torchtitan has no async TP (tp_comm_overlap) for MoE models "
                 f"({cap.sources['tp_comm_overlap']})", tp > 1)
        if not job.sequence_parallel:
            rule("sequence_parallel", "torchtitan's tensor parallelism always splits the norms "
                 "over the sequence (SequenceParallel, torchtitan/models/llama3/infra/"
                 "parallelize.py:196-205): sequence_parallel false needs tp 1", tp > 1)
    elif launcher == "deepspeed":
        rule("zero_stage", f"deepspeed's pipeline engine refuses ZeRO-2/3 with pp > 1 "
             f"({cap.sources['pipeline_zero']})", (zero >= 2) & (pp > 1))
        if m.is_moe:
            rule("zero_stage", f"deepspeed's MoE refuses ZeRO-3 ({cap.sources['moe_zero3']})",
                 zero == 3)
    rule("zero3_impl", f"{name}'s ZeRO-3 is {cap.zero3_impl!r}, the job says "
         f"{job.zero3_impl!r} (set zero3_impl = {cap.zero3_impl!r})",
         (zero == 3) & np.bool_(job.zero3_impl != cap.zero3_impl))
    return out


def shape_ok(launcher: str, job: TrainingJob, **columns: Any) -> np.ndarray:
    """True where the shapes break none of ``shape_refusals``."""
    rules = shape_refusals(launcher, job, **columns)
    ok = np.ones(np.atleast_1d(np.asarray(columns["tp"])).shape, bool)
    for _, _, refused in rules:
        ok &= ~refused
    return ok


def dp_limit(launcher: str, job: TrainingJob, *, tp: Any, pp: Any, cp: Any, ep: Any,
             zero: Any) -> np.ndarray:
    """The largest data-parallel degree ``launcher`` runs each shape at (``NO_DP_LIMIT``:
    any). torchtitan's ZeRO-0 is DDP, which refuses any other mesh dimension
    (``parallelize.py:126-128``): with tp, pp or ep > 1 it runs only without data
    parallelism (dp 1, where nothing is replicated)."""
    tp, pp, cp, ep, zero = (np.atleast_1d(np.asarray(a, dtype=np.int64))
                            for a in (tp, pp, cp, ep, zero))
    limit = np.full(tp.shape, NO_DP_LIMIT, np.int64)
    if launcher == "torchtitan":
        other = (tp > 1) | (pp > 1) | (cp > 1) | (ep > 1)
        limit = np.where((zero == 0) & other, 1, limit)
    return limit


__all__ = ["NO_DP_LIMIT", "dp_limit", "shape_ok", "shape_refusals"]
