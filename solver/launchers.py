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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from solver.errors import SpecError
from solver.layout_options import (
    FULL_BIT,
    PIPELINE_SPLITS,
    SCHEDULE_CODE,
    SCHEDULES,
    SPLIT_CODE,
    recompute_code,
)

if TYPE_CHECKING:  # specs imports this module (Limits.launcher)
    from solver.specs import Accelerator, Layout, TrainingJob

LAUNCHERS = ("megatron", "torchtitan", "deepspeed")

#: The upstream commits read (the exporters' ``solver.export.common`` commits; a test checks
#: they agree). DeepSpeed: master of 2026-08-22 (ac2f3a347d5c, followed before, is in no
#: branch or tag of deepspeedai/DeepSpeed).
MEGATRON_LM_COMMIT = "000c4ac24f61159c138b0975def722c65245983c"
TORCHTITAN_COMMIT = "6404b932421f5ce382e7dac5ad381b2c17b1373c"
DEEPSPEED_COMMIT = "edaa7221267243c7be7fb49c5d5f5c4fb97b4641"

#: Recomputation kinds a launcher offers: ``none``, ``full`` (whole layers) and ``modules``
#: (any set of Megatron-LM recompute modules, ``selective`` included).
RECOMPUTE_KINDS = ("none", "full", "modules")
#: Any dp (no cap).
NO_DP_LIMIT = np.iinfo(np.int64).max


@dataclass(frozen=True)
class Capability:
    """What one launcher at one version can start (docs/launchers.md).

    ``vendors``: the accelerator vendors (``Accelerator.vendor``) it runs on; FP8 needs an
    accelerator with an FP8 peak on every launcher (Transformer Engine, torchao float8).
    ``zero_stages``, ``schedules``, ``pipeline_splits``, ``precisions``, ``moe_dispatchers``,
    ``grad_dtypes`` and ``moments_dtypes`` are the values it runs; ``interleaving``: vp > 1;
    ``context_parallel``: cp > 1 (Megatron-style ring attention, what the step model times);
    ``recompute``: among ``RECOMPUTE_KINDS``; ``zero3_impl``: the ``TrainingJob.zero3_impl``
    its ZeRO-3 is; ``fp8_params``, ``activation_offload``, ``fp8_dispatch``,
    ``ep_comm_overlap``: whether it has them. ``rules``: the conditional rules, in words
    (``shape_refusals`` applies them). ``sources``: the file and line each entry was read
    from.
    """

    launcher: str
    follows: str
    vendors: tuple[str, ...]
    zero_stages: tuple[int, ...]
    schedules: tuple[str, ...]
    interleaving: bool
    context_parallel: bool
    pipeline_splits: tuple[str, ...]
    recompute: tuple[str, ...]
    precisions: tuple[str, ...]
    fp8_params: bool
    activation_offload: bool
    moe_dispatchers: tuple[str, ...]
    fp8_dispatch: bool
    ep_comm_overlap: bool
    zero3_impl: str
    grad_dtypes: tuple[str, ...]
    moments_dtypes: tuple[str, ...]
    rules: tuple[str, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict)
    #: The models it can train, as gpuplan's model name -> (its model name, flavor), with
    #: the model facts each flavor holds (``FLAVOR_FACTS``); None: any model (Megatron-LM
    #: and DeepSpeed take the architecture from arguments or the model code).
    models: Mapping[str, tuple[str, str]] | None = None


_MEG = f"NVIDIA/Megatron-LM @ {MEGATRON_LM_COMMIT[:12]}"
_TT = f"pytorch/torchtitan @ {TORCHTITAN_COMMIT[:12]}"
_DS = f"deepspeedai/DeepSpeed @ {DEEPSPEED_COMMIT[:12]}"

#: torchtitan ``[model]`` name and flavor of gpuplan's presets that torchtitan ships a train
#: spec for at the followed commit (``torchtitan/models/__init__.py``).
TORCHTITAN_MODELS = {
    "llama3-8b": ("llama3", "8B"),
    "llama3-70b": ("llama3", "70B"),
    "llama3.1-405b": ("llama3", "405B"),
    "deepseek-v3": ("deepseek_v3", "671B"),
}
#: The model facts each of those flavors holds at the followed commit (torchtitan takes them
#: from the flavor's Python model args, ``torchtitan/models/<name>/__init__.py`` and
#: ``model/args.py``; the job config cannot set them): ``llama3`` flavors rope_theta 500000,
#: ``TransformerModelArgs.norm_eps`` default 1e-5 and no RoPE scaling; ``deepseek_v3`` 671B
#: ``DeepSeekV3ModelArgs``: rope_theta 10000, norm_eps 1e-5 (its default), score_func
#: sigmoid, route_scale 2.5, load_balance_coeff 1e-3 (the expert-bias update of aux-loss-free
#: balancing; no balancing loss), top-k renormalised for sigmoid only (``moe.py``), YaRN
#: factor 40 over 4096 applied only beyond 4096 tokens, and ``n_expert_groups``/
#: ``n_limited_groups`` that its router (``moe.py``) never reads; no multi-token prediction.
FLAVOR_FACTS: dict[str, dict[str, Any]] = {
    "llama3": {"rope_theta": 500000.0, "norm_eps": 1e-5, "dropout": 0.0,
               "rope_scaling": "none", "mtp_layers": 0},
    "deepseek_v3": {"rope_theta": 10000.0, "norm_eps": 1e-5, "dropout": 0.0,
                    "rope_scaling": "yarn", "router_score": "sigmoid", "router_scaling": 2.5,
                    "router_expert_bias": True, "router_norm_topk": True,
                    "router_balance": "none", "expert_group_topk": 0, "mtp_layers": 0},
}


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
    model), or None."""
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


CAPABILITIES: dict[str, Capability] = {
    "megatron": Capability(
        launcher="megatron", follows=_MEG, vendors=("NVIDIA",),
        zero_stages=(0, 1, 2, 3), schedules=("1f1b",), interleaving=True,
        context_parallel=True, pipeline_splits=PIPELINE_SPLITS,
        recompute=RECOMPUTE_KINDS, precisions=("bf16", "fp8"), fp8_params=True,
        activation_offload=True, moe_dispatchers=("alltoall", "deepep"), fp8_dispatch=False,
        ep_comm_overlap=True, zero3_impl="fsdp", grad_dtypes=("fp32", "bf16"),
        moments_dtypes=("fp32", "bf16"),
        rules=("fp8_params needs ZeRO >= 1 (--fp8-param-gather needs the distributed "
               "optimizer or Megatron-FSDP)",
               "activation_offload needs pp 1 and no recomputation",
               "ep_comm_overlap (MoE, ep > 1) needs vp > 1 with pp > 1 and at most one MTP "
               "layer; with it no full recomputation (any ep: the masks are chosen per job)"),
        sources={
            # ZeRO-1: --use-distributed-optimizer; ZeRO-2/3: --use-megatron-fsdp with
            # --data-parallel-sharding-strategy optim_grads / optim_grads_params.
            # CUDA and Transformer Engine; AMD GPUs run the ROCm/Megatron-LM fork instead.
            "vendors": "README.md:185",
            "zero_stages": "megatron/training/arguments.py:2714,2730-2735",
            # get_forward_backward_func: 1F1B with or without interleaving, nothing else.
            "schedules": "megatron/core/pipeline_parallel/schedules.py:124-132",
            "fp8_params": "megatron/training/arguments.py:683-685",
            "activation_offload": "megatron/core/transformer/transformer_config.py:918-926",
            "moe_dispatchers": "megatron/training/arguments.py:3205",
            "recompute": "megatron/training/arguments.py:2091",
            "ep_comm_overlap": "megatron/core/transformer/transformer_config.py:1465-1504",
        }),
    "torchtitan": Capability(
        launcher="torchtitan", follows=_TT, vendors=("NVIDIA", "AMD"),
        zero_stages=(0, 2, 3), schedules=("1f1b",), interleaving=True,
        context_parallel=True, pipeline_splits=PIPELINE_SPLITS,
        recompute=("none", "full"), precisions=("bf16", "fp8"), fp8_params=False,
        activation_offload=False, moe_dispatchers=("alltoall",), fp8_dispatch=False,
        ep_comm_overlap=False, zero3_impl="fsdp", grad_dtypes=("fp32",),
        moments_dtypes=("fp32",), models=TORCHTITAN_MODELS,
        rules=("ZeRO-0 is DDP, which refuses any other parallelism: with tp, pp or ep > 1 "
               "only at dp 1, never with cp > 1 (cp > 1 always shards with FSDP)",
               "ep > 1 needs ep a multiple of cp",
               "seq_len a multiple of tp * 2 * cp",
               "an MoE model with tp_comm_overlap and tp > 1: refused (async TP)"),
        sources={
            # FSDP2 (ZeRO-3; fsdp_reshard_after_forward "never", job_config.py:262, keeps
            # the weights gathered from forward to backward: ZeRO-2) or DDP (ZeRO-0).
            "vendors": "README.md:108 (CUDA or ROCm PyTorch)",
            "fp8": "torchtitan/components/quantization/float8.py:33-40 (SM89 or later)",
            "zero_stages": "torchtitan/models/llama3/infra/parallelize.py:99-135",
            "ddp": "torchtitan/models/llama3/infra/parallelize.py:126-128, "
                   "torchtitan/distributed/parallel_dims.py:206-208",
            # Multi-stage schedules need >= 2 stages per rank; only ZBV is V-shaped.
            "schedules": "torchtitan/models/llama3/infra/pipeline.py:99-104, "
                         "torchtitan/distributed/pipeline.py:338",
            "ep": "torchtitan/distributed/parallel_dims.py:56-58",
            "seq_len": "torchtitan/distributed/parallel_dims.py:226-233",
            "tp_comm_overlap": "torchtitan/models/deepseek_v3/infra/parallelize.py:49-55",
            "recompute": "torchtitan/config/job_config.py:502-506",
            "grad_dtypes": "torchtitan/config/job_config.py:207",
            "moments_dtypes": "torchtitan/config/job_config.py:100-125",
            "fp8_params": "torchtitan/config/job_config.py [float8]",
            "activation_offload": "torchtitan/config/job_config.py:194",
            "moe_dispatchers": "torchtitan/ (no DeepEP)",
        }),
    "deepspeed": Capability(
        launcher="deepspeed", follows=_DS, vendors=("NVIDIA", "AMD", "Intel"),
        zero_stages=(0, 1, 2, 3), schedules=("1f1b",), interleaving=False,
        context_parallel=False, pipeline_splits=("even",),
        recompute=("none", "full"), precisions=("bf16", "fp8"), fp8_params=False,
        activation_offload=False, moe_dispatchers=("alltoall",), fp8_dispatch=False,
        ep_comm_overlap=False, zero3_impl="deepspeed", grad_dtypes=("fp32", "bf16"),
        moments_dtypes=("fp32",),
        rules=("ZeRO-2 and ZeRO-3 only without pipeline parallelism (pp 1)",
               "an MoE model only at ZeRO 0-2 (native DeepSpeed MoE refuses ZeRO-3)"),
        sources={
            "vendors": "accelerator/cuda_accelerator.py (CUDA, ROCm), hpu_accelerator.py "
                       "(Gaudi); no XLA (TPU) or Neuron (Trainium) accelerator",
            "pipeline_zero": "deepspeed/runtime/pipe/engine.py:76-77",
            "moe_zero3": "deepspeed/runtime/engine.py:1872-1893",
            "schedules": "deepspeed/runtime/pipe/schedule.py:189",
            # sequence_parallel_size is DeepSpeed-Ulysses: all-to-all over heads.
            "context_parallel": "deepspeed/sequence/layer.py",
            "pipeline_splits": "deepspeed/runtime/pipe/module.py:406-418",
            "recompute": "deepspeed/runtime/pipe/module.py (activation_checkpoint_interval)",
            "fp8_params": "deepspeed/runtime/zero/, bf16_optimizer.py (no FP8 weights)",
            "activation_offload": "deepspeed/runtime/activation_checkpointing",
            "moe_dispatchers": "deepspeed/moe/sharded_moe.py (all-to-all)",
            # bf16_optimizer_states requires bf16_master_weights_and_grads: BF16 moments
            # only beside BF16 master weights, not the FP32 ones the plan keeps.
            "moments_dtypes": "deepspeed/runtime/config.py:1041-1049",
        }),
}


def capability(launcher: str, field_name: str = "launcher") -> Capability:
    """The table entry of ``launcher`` (``SpecError`` naming ``field_name`` otherwise)."""
    if launcher not in CAPABILITIES:
        raise SpecError(f"{field_name}: expected one of {'|'.join(LAUNCHERS)}, "
                        f"got {launcher!r}")
    return CAPABILITIES[launcher]


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
    return None


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


def mask_refusal(launcher: str, job: TrainingJob, mask: int) -> str | None:
    """Why ``launcher`` cannot recompute with ``mask`` (``solver.layout_options``), or None."""
    cap = capability(launcher)
    kind = "none" if mask == 0 else "full" if mask & FULL_BIT else "modules"
    if kind not in cap.recompute:
        return (f"recompute: {launcher} recomputes {'|'.join(cap.recompute)} only, not "
                f"Megatron-LM modules ({cap.sources['recompute']})")
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
    "recompute": ("none", "full", "selective"),
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
