"""The capability table: what each training launcher, at the upstream commit it follows, can
start (docs/launchers.md). Data only, with the file and line each entry was read from; the
rules that read it are ``solver.launchers`` and ``solver.launcher_shapes``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from solver.errors import SpecError
from solver.layout_options import PIPELINE_SPLITS

LAUNCHERS = ("megatron", "torchtitan", "deepspeed")

#: The upstream commits read (the exporters' ``solver.export.common`` commits; a test checks
#: they agree). DeepSpeed: master of 2026-08-22 (ac2f3a347d5c, followed before, is in no
#: branch or tag of deepspeedai/DeepSpeed).
MEGATRON_LM_COMMIT = "000c4ac24f61159c138b0975def722c65245983c"
TORCHTITAN_COMMIT = "6404b932421f5ce382e7dac5ad381b2c17b1373c"
DEEPSPEED_COMMIT = "edaa7221267243c7be7fb49c5d5f5c4fb97b4641"

#: Recomputation kinds a launcher may offer: ``none``, ``full`` (whole layers), ``modules``
#: (any set of Megatron-LM recompute modules, ``selective`` included) and
#: ``alternate_matmuls`` (torchtitan's per-op selective checkpointing).
RECOMPUTE_KINDS = ("none", "full", "modules", "alternate_matmuls")


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
    ``ep_comm_overlap``: whether it has them; ``fused_expert_bias``: whether experts with
    biases can run on a fused path (else only as ``TrainingJob.unfused_expert_bias`` says).
    ``rules``: the conditional rules, in words (``shape_refusals`` applies them).
    ``sources``: the file and line each entry was read from.
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
    fused_expert_bias: bool
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


CAPABILITIES: dict[str, Capability] = {
    "megatron": Capability(
        launcher="megatron", follows=_MEG, vendors=("NVIDIA",),
        zero_stages=(0, 1, 2, 3), schedules=("1f1b",), interleaving=True,
        context_parallel=True, pipeline_splits=PIPELINE_SPLITS,
        recompute=("none", "full", "modules"), precisions=("bf16", "fp8"), fp8_params=True,
        activation_offload=True, moe_dispatchers=("alltoall", "deepep"), fp8_dispatch=False,
        ep_comm_overlap=True, zero3_impl="fsdp", grad_dtypes=("fp32", "bf16"),
        moments_dtypes=("fp32", "bf16"), fused_expert_bias=False,
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
            # TEGroupedMLP adds expert biases apart; Transformer Engine's op fuser came in
            # 6815c0fefe (2026-05-15), after this commit.
            "fused_expert_bias": "megatron/core/transformer/moe/experts.py:823,960",
        }),
    "torchtitan": Capability(
        launcher="torchtitan", follows=_TT, vendors=("NVIDIA", "AMD"),
        zero_stages=(0, 2, 3), schedules=("1f1b",), interleaving=True,
        context_parallel=True, pipeline_splits=PIPELINE_SPLITS,
        recompute=("none", "full", "alternate_matmuls"), precisions=("bf16", "fp8"),
        fp8_params=False,
        activation_offload=False, moe_dispatchers=("alltoall",), fp8_dispatch=False,
        ep_comm_overlap=False, zero3_impl="fsdp", grad_dtypes=("fp32",),
        moments_dtypes=("fp32",), fused_expert_bias=False, models=TORCHTITAN_MODELS,
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
            "recompute": "torchtitan/config/job_config.py:502-510; per-op policy "
                         "torchtitan/models/llama3/infra/parallelize.py:233-305",
            "grad_dtypes": "torchtitan/config/job_config.py:207",
            "moments_dtypes": "torchtitan/config/job_config.py:100-125",
            "fp8_params": "torchtitan/config/job_config.py [float8]",
            "activation_offload": "torchtitan/config/job_config.py:194",
            "moe_dispatchers": "torchtitan/ (no DeepEP)",
            "fused_expert_bias": "torchtitan/models/deepseek_v3/model/moe.py:51 "
                                 "(GroupedExperts: weights, no biases)",
        }),
    "deepspeed": Capability(
        launcher="deepspeed", follows=_DS, vendors=("NVIDIA", "AMD", "Intel"),
        zero_stages=(0, 1, 2, 3), schedules=("1f1b",), interleaving=False,
        context_parallel=False, pipeline_splits=("even",),
        recompute=("none", "full"), precisions=("bf16", "fp8"), fp8_params=False,
        activation_offload=False, moe_dispatchers=("alltoall",), fp8_dispatch=False,
        ep_comm_overlap=False, zero3_impl="deepspeed", grad_dtypes=("fp32", "bf16"),
        moments_dtypes=("fp32",), fused_expert_bias=False,
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
            "fused_expert_bias": "deepspeed/moe/experts.py:28-38 (local experts one by one)",
        }),
}


def capability(launcher: str, field_name: str = "launcher") -> Capability:
    """The table entry of ``launcher`` (``SpecError`` naming ``field_name`` otherwise)."""
    if launcher not in CAPABILITIES:
        raise SpecError(f"{field_name}: expected one of {'|'.join(LAUNCHERS)}, "
                        f"got {launcher!r}")
    return CAPABILITIES[launcher]


__all__ = ["CAPABILITIES", "FLAVOR_FACTS", "LAUNCHERS", "TORCHTITAN_MODELS", "Capability",
           "capability"]
