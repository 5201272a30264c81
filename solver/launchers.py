"""What each training launcher can start: a capability table per launcher and version, and
``why_not``, the first reason a launcher cannot run a plan.

``Limits.launcher`` (``--launcher``) makes the search propose only what that launcher can
start (``solver.search.space`` filters the shapes and the recomputation masks, ``rows`` caps
the data-parallel degree where a rule reads it, the judge checks ``why_not`` on every plan it
returns); the exporters refuse what ``why_not`` refuses. The versions are the upstream
commits the exporters follow (``solver.export.common``); every entry below names the file
and line it was read from at that commit (docs/launchers.md lists them).

Three kinds of rule:
- whole-job rules (precision, FP8 weights, activation offload, gradient and moment
  precisions): ``check_job``; a job one breaks has no runnable layout, so it is a
  ``SpecError`` before any search;
- shape rules (everything but dp and the recomputation): ``shape_refusals``, vectorised over
  the search's shape columns;
- the data-parallel degree (``dp_limit``: torchtitan's ZeRO-0 is plain DDP, one-dimensional
  meshes only) and the recomputation (``mask_refusal``).

The table itself is ``solver.launcher_table`` and the vectorised shape rules
``solver.launcher_shapes``; every public name of both is importable from here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from solver.errors import SpecError
from solver.launcher_shapes import NO_DP_LIMIT as NO_DP_LIMIT
from solver.launcher_shapes import dp_limit as dp_limit
from solver.launcher_shapes import shape_ok as shape_ok
from solver.launcher_shapes import shape_refusals as shape_refusals
from solver.launcher_table import CAPABILITIES as CAPABILITIES
from solver.launcher_table import DEEPSPEED_COMMIT as DEEPSPEED_COMMIT
from solver.launcher_table import FLAVOR_FACTS as FLAVOR_FACTS
from solver.launcher_table import LAUNCHERS as LAUNCHERS
from solver.launcher_table import MEGATRON_LM_COMMIT as MEGATRON_LM_COMMIT
from solver.launcher_table import RECOMPUTE_KINDS as RECOMPUTE_KINDS
from solver.launcher_table import TORCHTITAN_COMMIT as TORCHTITAN_COMMIT
from solver.launcher_table import TORCHTITAN_MODELS as TORCHTITAN_MODELS
from solver.launcher_table import Capability as Capability
from solver.launcher_table import capability as capability
from solver.layout_options import (
    ALTERNATE,
    ALTERNATE_BIT,
    FULL_BIT,
    PIPELINE_SPLITS,
    SCHEDULE_CODE,
    SCHEDULES,
    SPLIT_CODE,
    recompute_code,
)

if TYPE_CHECKING:  # specs imports this module (Limits.launcher)
    from solver.specs import Accelerator, Layout, TrainingJob


def flavor_differences(job: TrainingJob, name: str) -> list[tuple[str, Any, Any]]:
    """(fact, the model's value, the flavor's) for each fact torchtitan's flavor ``name``
    holds otherwise than the job's model (dropout aside: torchtitan's models have none, and
    a job with dropout is refused on its own)."""
    m = job.model
    facts: dict[str, Any] = {"rope_theta": m.rope_theta, "norm_eps": m.norm_eps,
                             "rope_scaling": m.rope_scaling, "mtp_layers": m.mtp_layers}
    if m.is_moe:
        facts.update(router_score=m.router_score, router_scaling=m.router_scaling,
                     router_expert_bias=m.router_expert_bias,
                     router_norm_topk=m.router_norm_topk, router_balance=m.router_balance,
                     expert_group_topk=m.expert_group_topk)
    held = FLAVOR_FACTS[name]
    return [(key, value, held[key]) for key, value in facts.items()
            if key in held and value != held[key]]


def model_refusal(launcher: str, job: TrainingJob) -> str | None:
    """Why ``launcher`` cannot train ``job.model`` as its config.json describes it: no model
    of that name, or a flavor whose fixed facts differ (the plan would describe another
    model), or an attention it does not have (``window_refusal``), or None."""
    window = window_refusal(launcher, job)
    if window:
        return window
    cap = capability(launcher)
    if cap.models is None:
        return None
    m = job.model
    if m.name not in cap.models:
        known = ", ".join(cap.models)
        return (f"model: {launcher} at {cap.follows.split(' @ ')[1]} ships no train spec for "
                f"{m.name} (it trains {known}); its job config cannot describe another model")
    name, flavor = cap.models[m.name]
    differ = flavor_differences(job, name)
    if differ:
        shown = "; ".join(f"{k} {v} (flavor: {h})" for k, v, h in differ)
        return (f"model: {launcher}'s {name} {flavor} flavor differs from {m.name} in {shown}, "
                "and its job config cannot set them: the run would train another model")
    if job.dropout:
        return f"dropout: {launcher}'s models have no dropout, got {job.dropout:g}"
    return None


def window_refusal(launcher: str, job: TrainingJob) -> str | None:
    """Sliding-window attention: Megatron-LM has it (``--window-size``); torchtitan's
    llama3 and deepseek_v3 flavors and Megatron-DeepSpeed's GPT model attend fully."""
    if job.model.sliding_window and launcher != "megatron":
        return (f"sliding_window: {launcher} at {capability(launcher).follows.split(' @ ')[1]}"
                f" has no sliding-window attention, got a {job.model.sliding_window}-token "
                "window")
    return None


def check_job(launcher: str, job: TrainingJob) -> None:
    """``SpecError`` naming the job field ``launcher`` cannot run with any layout (the model
    first)."""
    reason = model_refusal(launcher, job) or job_refusal(launcher, job)
    if reason is not None:
        raise SpecError(reason)


def job_refusal(launcher: str, job: TrainingJob) -> str | None:
    """The first whole-job reason ``launcher`` cannot run ``job``, or None."""
    cap = capability(launcher)
    name = launcher
    if job.precision not in cap.precisions:
        return f"precision: {name} runs {'|'.join(cap.precisions)}, got {job.precision!r}"
    if job.fp8_params and not cap.fp8_params:
        return f"fp8_params: {name} has no FP8-only weights ({cap.sources['fp8_params']})"
    if job.activation_offload and not cap.activation_offload:
        return (f"activation_offload: {name} cannot offload activations "
                f"({cap.sources['activation_offload']})")
    if job.grad_dtype not in cap.grad_dtypes:
        return (f"grad_dtype: {name} reduces gradients in {'|'.join(cap.grad_dtypes)}, got "
                f"{job.grad_dtype!r} ({cap.sources['grad_dtypes']})")
    if job.moments_dtype not in cap.moments_dtypes:
        return (f"moments_dtype: {name} keeps Adam's moments in "
                f"{'|'.join(cap.moments_dtypes)} beside FP32 master weights, got "
                f"{job.moments_dtype!r} ({cap.sources['moments_dtypes']})")
    if job.model.expert_biases and not job.unfused_expert_bias and not cap.fused_expert_bias:
        return (f"unfused_expert_bias: {name} runs expert biases only on an unfused path "
                f"({cap.sources['fused_expert_bias']}); set unfused_expert_bias "
                "(--unfused-expert-bias)")
    return None


def mask_refusal(launcher: str, job: TrainingJob, mask: int) -> str | None:
    """Why ``launcher`` cannot recompute with ``mask`` (``solver.layout_options``), or None."""
    cap = capability(launcher)
    kind = ("none" if mask == 0 else "full" if mask & FULL_BIT
            else ALTERNATE if mask & ALTERNATE_BIT else "modules")
    if kind not in cap.recompute:
        what = "Megatron-LM modules" if kind == "modules" else repr(kind)
        return (f"recompute: {launcher} recomputes {'|'.join(cap.recompute)} only, not "
                f"{what} ({cap.sources['recompute']})")
    if launcher == "megatron" and job.activation_offload and mask != 0:
        return ("recompute: megatron's activation offload refuses recomputation "
                f"({cap.sources['activation_offload']})")
    if launcher == "megatron" and job.model.is_moe and job.ep_comm_overlap and kind == "full":
        return ("recompute: megatron's --overlap-moe-expert-parallel-comm (ep_comm_overlap) "
                f"refuses full recomputation ({cap.sources['ep_comm_overlap']})")
    return None


def allowed_masks(launcher: str | None, job: TrainingJob, masks: Sequence[int]) -> list[int]:
    """The masks of ``masks`` that ``launcher`` runs (all of them without a launcher)."""
    if launcher is None:
        return list(masks)
    return [m for m in masks if mask_refusal(launcher, job, m) is None]


def accelerator_refusal(launcher: str, job: TrainingJob, acc: Accelerator) -> str | None:
    """Why ``launcher`` cannot run ``job`` on ``acc``, or None: a vendor it does not run on,
    or FP8 on an accelerator without an FP8 peak."""
    cap = capability(launcher)
    if acc.vendor not in cap.vendors:
        return (f"accelerator: {launcher} runs on {'/'.join(cap.vendors)} accelerators, not "
                f"{acc.name} ({acc.vendor}; {cap.sources['vendors']})")
    if job.precision == "fp8" and not acc.peak_tflops.get("fp8"):
        return (f"accelerator: {acc.name} has no FP8, which {launcher}'s FP8 training needs "
                "(Transformer Engine, torchao float8)")
    return None


def runnable_accelerators(launcher: str, job: TrainingJob, accelerators: Sequence[Accelerator]
                          ) -> tuple[list[Accelerator], dict[str, str]]:
    """The accelerators ``launcher`` runs ``job`` on, and why each other one (by name) is
    left out."""
    kept: list[Accelerator] = []
    left: dict[str, str] = {}
    for acc in accelerators:
        reason = accelerator_refusal(launcher, job, acc)
        if reason is None:
            kept.append(acc)
        else:
            left[acc.name] = reason
    return kept, left


def why_not(launcher: str, job: TrainingJob, layout: Layout,
            accelerator: Accelerator | None = None) -> str | None:
    """The first reason ``launcher`` cannot run ``layout`` for ``job`` (one line naming the
    field), or None when it can. ``accelerator``: the layout's (default: the catalog's entry
    of that name)."""
    if accelerator is None:
        from solver import catalog  # catalog imports specs, which imports this module

        accelerator = catalog.accelerator(layout.accelerator)
    return (accelerator_refusal(launcher, job, accelerator) or model_refusal(launcher, job)
            or layout_refusal(launcher, job, layout))


def layout_refusal(launcher: str, job: TrainingJob, layout: Layout) -> str | None:
    """``why_not`` but for the accelerator and the model: the launcher's rules on the job's
    software and the layout (what the search's space filters)."""
    reason = job_refusal(launcher, job)
    if reason is not None:
        return reason
    x = layout
    for field_name, why, refused in shape_refusals(
            launcher, job, tp=x.tp, pp=x.pp, vp=x.vp, cp=x.cp, ep=x.ep, zero=x.zero_stage,
            schedule=SCHEDULE_CODE[x.schedule], split=SPLIT_CODE[x.pipeline_split]):
        if refused[0]:
            return f"{field_name}: {why}"
    limit = dp_limit(launcher, job, tp=x.tp, pp=x.pp, cp=x.cp, ep=x.ep, zero=x.zero_stage)
    if x.dp > limit[0]:
        return (f"zero_stage: {launcher}'s ZeRO-0 is DDP, which refuses tp, pp or ep > 1 "
                f"beside dp {x.dp} ({CAPABILITIES[launcher].sources.get('ddp', '')})")
    return mask_refusal(launcher, job, recompute_code(x.recompute))


def search_note(launcher: str, job: TrainingJob, left_out: Sequence[str] = ()) -> str:
    """What a search restricted to ``launcher`` ranges over, in one line (a plan's note);
    ``left_out``: the accelerators it cannot run on."""
    cap = capability(launcher)
    zeros = [z for z in cap.zero_stages if z != 3 or job.zero3_impl == cap.zero3_impl]
    parts = [f"ZeRO {'/'.join(map(str, zeros))}",
             "1F1B" + (" (interleaved too)" if cap.interleaving else " without interleaving"),
             "recompute " + "|".join(cap.recompute)]
    if not cap.context_parallel:
        parts.append("no cp")
    if cap.pipeline_splits != PIPELINE_SPLITS:
        parts.append("pipeline split " + "|".join(cap.pipeline_splits))
    note = (f"launcher {launcher} ({cap.follows}): only layouts it can start were searched "
            f"({', '.join(parts)}; docs/launchers.md)")
    if 3 in cap.zero_stages and job.zero3_impl != cap.zero3_impl:
        note += (f"; ZeRO-3 left out: the job's zero3_impl is {job.zero3_impl!r}, "
                 f"{launcher}'s is {cap.zero3_impl!r}")
    if left_out:
        note += f"; accelerators left out: {', '.join(left_out)}"
    return note


#: Values tried for each free layout field when checking fixed fields (``check_fixed``):
#: every rule tells 1 from more than 1, or reads the named choices.
_PROBES: dict[str, tuple[Any, ...]] = {
    "tp": (1, 2), "pp": (1, 2), "vp": (1, 2), "cp": (1, 2), "ep": (1, 2), "dp": (1, 2),
    "zero_stage": (0, 1, 2, 3), "schedule": SCHEDULES, "pipeline_split": PIPELINE_SPLITS,
    "recompute": ("none", "full", "selective", "alternate_matmuls"),
}


def check_fixed(launcher: str, job: TrainingJob, fixed: Mapping[str, Any]) -> None:
    """``SpecError`` before any search when ``launcher`` cannot run the job, or no layout
    with the ``fixed`` fields: the reason for the plainest such layout (the free fields at
    their first probe value), which names a fixed field or a job field."""
    check_job(launcher, job)
    names = list(_PROBES)
    grids = np.meshgrid(*[np.arange(1 if k in fixed else len(_PROBES[k])) for k in names],
                        indexing="ij")
    picks = {k: g.ravel() for k, g in zip(names, grids, strict=True)}

    def column(key: str) -> np.ndarray:
        if key in fixed:
            return np.full(picks[key].shape, fixed[key], dtype=object)
        return np.asarray(_PROBES[key], dtype=object)[picks[key]]

    cols = {k: column(k) for k in names}
    ints = {k: cols[k].astype(np.int64) for k in ("tp", "pp", "vp", "cp", "ep", "dp",
                                                 "zero_stage")}
    ok = shape_ok(launcher, job, tp=ints["tp"], pp=ints["pp"], vp=ints["vp"], cp=ints["cp"],
                  ep=ints["ep"], zero=ints["zero_stage"],
                  schedule=np.array([SCHEDULE_CODE[s] for s in cols["schedule"]]),
                  split=np.array([SPLIT_CODE[s] for s in cols["pipeline_split"]]))
    ok &= ints["dp"] <= dp_limit(launcher, job, tp=ints["tp"], pp=ints["pp"], cp=ints["cp"],
                                 ep=ints["ep"], zero=ints["zero_stage"])
    ok &= np.array([mask_refusal(launcher, job, recompute_code(r)) is None
                    for r in cols["recompute"]])
    if ok.any():
        return
    from solver.specs import Layout  # specs imports this module

    first = {k: cols[k][0] for k in names}
    layout = Layout(accelerator="any", tp=int(first["tp"]), pp=int(first["pp"]),
                    dp=int(first["dp"]), cp=int(first["cp"]), ep=1, vp=int(first["vp"]),
                    zero_stage=int(first["zero_stage"]), recompute=str(first["recompute"]),
                    schedule=str(first["schedule"]), pipeline_split=str(first["pipeline_split"]))
    layout = _with_ep(layout, int(first["ep"]))
    reason = layout_refusal(launcher, job, layout) or f"launcher: {launcher} runs no such layout"
    raise SpecError(reason)


def _with_ep(layout: Layout, ep: int) -> Layout:
    """``layout`` with expert parallelism ``ep`` (dp grown so that ep divides dp*cp)."""
    import dataclasses

    dp = layout.dp
    while (dp * layout.cp) % ep:
        dp += 1
    return dataclasses.replace(layout, dp=dp, ep=ep)


__all__ = ["CAPABILITIES", "LAUNCHERS", "Capability", "accelerator_refusal", "allowed_masks",
           "capability", "runnable_accelerators",
           "check_fixed", "check_job", "dp_limit", "flavor_differences", "layout_refusal",
           "model_refusal", "mask_refusal", "shape_ok",
           "shape_refusals", "why_not"]
