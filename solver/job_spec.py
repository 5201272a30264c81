"""What is trained and with which software: ``TrainingJob`` and the choices its fields take.

Split from ``solver.specs``, which re-exports every name here (docs/interface.md, "Library").
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from solver.errors import SpecError
from solver.model_spec import DROPOUT_MAX, ModelSpec
from solver.validate import as_bool, as_choice, as_float, as_int, as_tokens, fail

PRECISIONS = ("bf16", "fp8")
#: ZeRO-3 implementations whose overlap of the weight gathers differs (``TrainingJob``).
ZERO3_IMPLEMENTATIONS = ("fsdp", "deepspeed")
#: Precisions of the gradient buffers and their data-parallel reduction (``TrainingJob``).
GRAD_DTYPES = ("fp32", "bf16")
#: Precisions of Adam's first and second moments (``TrainingJob.moments_dtype``).
MOMENTS_DTYPES = ("fp32", "bf16")
#: How MoE tokens reach their experts (``TrainingJob.moe_dispatcher``).
MOE_DISPATCHERS = ("alltoall", "deepep")


@dataclass(frozen=True)
class TrainingJob:
    """What is trained: the model, how many tokens, at what global batch and sequence length.

    ``model`` also takes what ``solver.model`` resolves, as the CLI's ``--model`` does (a
    preset name or a model file); ``tokens`` also takes the CLI's ``--tokens`` text (``15T``,
    ``300B``, ``1.5e12``; ``solver.validate.as_tokens``). Both are stored resolved.
    ``global_batch`` is in sequences per optimizer step; 0 lets ``solve`` choose it.
    ``seq_len`` 0 takes the model's ``seq_len``.

    The last three fields describe the training software, as facts of a run:
    ``flash_attention`` (Dao et al. 2022: the attention scores are never stored);
    ``tp_comm_overlap``, tensor-parallel collectives overlapped with the GEMMs they feed
    (Transformer Engine userbuffers, NeMo ``ub_tp_comm_overlap``); ``grad_reduce_overlap``,
    the data-parallel gradient reduction overlapped with the backward pass (bucketed DDP,
    Megatron-LM ``--overlap-grad-reduce``, FSDP); False where it runs after the backward
    (Megatron-LM's 2021 local DDP); ``zero3_impl``, the software that shards the weights at
    ZeRO stage 3: ``"fsdp"`` (PyTorch FSDP/FSDP2, Megatron-FSDP: one flat gather per layer,
    prefetched) or ``"deepspeed"`` (DeepSpeed ZeRO-3 as the published 2021 runs measured it:
    a part of its gathers never overlaps); ``grad_dtype``, the precision gradients are
    accumulated and reduced in: ``"fp32"`` (Megatron-LM forces it with BF16,
    ``--accumulate-allreduce-grads-in-fp32``; FSDP's usual ``reduce_dtype``) or ``"bf16"``
    (NeMo's H100 recipes, ``optim.grad_sync_dtype=bf16``), which halves gradient memory and
    data-parallel gradient traffic; ``ep_comm_overlap``, expert dispatch and combine
    all-to-alls run under another micro-batch's computation (DeepSeek-V3's DualPipe,
    arXiv:2412.19437 sec. 3.2.1; Megatron-LM ``--overlap-moe-expert-parallel-comm``);
    ``sequence_parallel``, with tensor parallelism the norms, dropouts and residuals run on
    ``1/tp`` of the sequence each and keep that share of their activations (Korthikanti et al.
    2022, sec. 4.2.2; Megatron-LM ``--sequence-parallel``, on in every recent recipe); False
    (Megatron-LM without the flag, Intel Gaudi's Megatron-LM examples with
    ``HL_SEQ_PARALLEL=0``) keeps them whole on every tensor-parallel rank: ``sbh(10 + 24/t)``
    bytes per layer instead of ``34 sbh/t`` (their Table 2), and their memory-bound work whole
    too. The tensor-parallel traffic is the same: all-reduces instead of all-gathers and
    reduce-scatters of the same bytes.

    Mixture-of-experts software: ``moe_dispatcher``, ``"alltoall"`` (one copy of a token per
    routed expert, Megatron-LM's all-to-all dispatcher) or ``"deepep"`` (DeepEP,
    DeepSeek-V3 sec. 3.2.2: one copy per destination node over the scale-out network,
    forwarded inside the node over the scale-up fabric); ``fp8_dispatch``, the dispatch (and
    its backward twin) sent in FP8 while the combine stays BF16 (DeepSeek-V3 sec. 3.3.3);
    ``moe_imbalance``, the most loaded expert rank's tokens over the mean under dropless
    routing (1.0: perfectly balanced, as forced-balance benchmarks run). ``moments_dtype``:
    Adam's first and second moments in FP32 or BF16 (DeepSeek-V3 sec. 3.3.3 keeps them in
    BF16; master weights stay FP32). ``dropout``: the hidden and attention dropout rate
    (Megatron-LM's default 0.1, which Korthikanti et al. 2022 count; 0 in the recipes of
    Llama 3, Mixtral, DeepSeek-V3, NeMo, torchtitan and MaxText): above 0 each sublayer's
    output keeps a 1-byte mask for the backward; None (the default) takes the model's
    ``ModelSpec.dropout``, so after construction it is always a float. ``fp8_params``: with
    FP8 precision, the weights are held and gathered in FP8 only, with no BF16 copy (Megatron-LM
    ``--fp8-param-gather``, set by the FP8 recipes of Megatron-Bridge and NeMo 2; the FP32
    master copy stays in the optimizer). ``activation_offload``: the activations a layer
    keeps for its backward are copied to host memory during the forward and back during the
    backward, overlapped with the kernels (Megatron-LM ``--cpu-offloading-num-layers``,
    Transformer Engine's ``get_cpu_offload_context``; MaxText's ``offload`` remat policies
    to TPU host memory); the accelerator needs ``host_bw_gb_s`` and ``host_memory_gib``.
    ``unfused_expert_bias``: the routed experts' biases go through Megatron-Core's unfused
    ``TEGroupedMLP`` path (``_apply_bias``: one FP32 add per local expert after the grouped
    GEMMs, the biases in their epilogues and bias-gradient reductions), as in every
    Megatron-Core release before the expert MLP could run through Transformer Engine's
    operation fuser (``use_transformer_engine_op_fuser``, NVIDIA/Megatron-LM 6815c0fefe,
    2026-05-15; Megatron-Bridge sets it for its MXFP8 gpt-oss recipes from v0.5.0) and
    wherever that flag is off. It matters only for a MoE whose experts have biases
    (``ModelSpec.linear_bias``, gpt-oss): ``Calibration.biased_expert_scale``. False (the
    default) plans the fused path.

    Failures, checkpoints and restarts (``solver/stepmodel/goodput.py``, docs/model.md):
    ``failures`` False plans as if every hour were productive (wall-clock days = training
    days); ``mtbf_hours`` (0: the sourced table, ``solver/data/reliability.json``) the mean
    hours between interruptions of ONE accelerator, so a job of N fails every
    ``mtbf_hours / N`` hours; ``checkpoint_node_gb_s`` the storage write (and read) bandwidth
    of a node of 8 accelerators, ``checkpoint_total_gb_s`` the storage's total (0: no cap);
    ``async_checkpoint`` training waits only for the copy to host memory;
    ``restart_min`` minutes to reschedule, start and warm up after an interruption (the
    checkpoint load is counted apart); ``hot_spares`` a spare node takes a failed one's place
    at once, else each hardware interruption also waits ``replace_min`` minutes.
    """

    model: ModelSpec
    tokens: float
    global_batch: int = 0
    seq_len: int = 0
    precision: str = "bf16"
    flash_attention: bool = True
    tp_comm_overlap: bool = False
    grad_reduce_overlap: bool = True
    zero3_impl: str = "fsdp"
    grad_dtype: str = "fp32"
    ep_comm_overlap: bool = False
    sequence_parallel: bool = True
    moe_dispatcher: str = "alltoall"
    fp8_dispatch: bool = False
    moe_imbalance: float = 1.0
    moments_dtype: str = "fp32"
    dropout: float | None = None
    fp8_params: bool = False
    activation_offload: bool = False
    unfused_expert_bias: bool = False
    failures: bool = True
    mtbf_hours: float = 0.0
    checkpoint_node_gb_s: float = field(
        default_factory=lambda: _reliability_default("checkpoint_node_gb_s"))
    checkpoint_total_gb_s: float = field(
        default_factory=lambda: _reliability_default("checkpoint_total_gb_s"))
    async_checkpoint: bool = False
    restart_min: float = field(default_factory=lambda: _reliability_default("restart_min"))
    hot_spares: bool = True
    replace_min: float = field(default_factory=lambda: _reliability_default("replace_min"))

    def __post_init__(self) -> None:
        object.__setattr__(self, "model", _job_model(self.model))
        object.__setattr__(self, "tokens", as_tokens("tokens", self.tokens))
        if self.global_batch:
            object.__setattr__(self, "global_batch", as_int("global_batch", self.global_batch))
        else:
            as_int("global_batch", self.global_batch, minimum=0)
        seq = self.seq_len or self.model.seq_len
        object.__setattr__(self, "seq_len", as_int("seq_len", seq))
        as_choice("precision", self.precision, PRECISIONS)
        as_choice("zero3_impl", self.zero3_impl, ZERO3_IMPLEMENTATIONS)
        as_choice("grad_dtype", self.grad_dtype, GRAD_DTYPES)
        as_choice("moments_dtype", self.moments_dtype, MOMENTS_DTYPES)
        as_choice("moe_dispatcher", self.moe_dispatcher, MOE_DISPATCHERS)
        for name in ("flash_attention", "tp_comm_overlap", "grad_reduce_overlap",
                     "ep_comm_overlap", "sequence_parallel", "fp8_dispatch", "fp8_params",
                     "activation_offload", "unfused_expert_bias", "failures", "async_checkpoint",
                     "hot_spares"):
            as_bool(name, getattr(self, name))
        object.__setattr__(self, "mtbf_hours", as_float("mtbf_hours", self.mtbf_hours,
                                                        strict=False))
        object.__setattr__(self, "checkpoint_node_gb_s",
                           as_float("checkpoint_node_gb_s", self.checkpoint_node_gb_s))
        object.__setattr__(self, "checkpoint_total_gb_s",
                           as_float("checkpoint_total_gb_s", self.checkpoint_total_gb_s,
                                    strict=False))
        for name in ("restart_min", "replace_min"):
            object.__setattr__(self, name, as_float(name, getattr(self, name), strict=False))
        if self.fp8_params and self.precision != "fp8":
            raise fail("fp8_params", "false unless precision is fp8", self.fp8_params)
        imbalance = as_float("moe_imbalance", self.moe_imbalance, minimum=1.0, strict=False)
        object.__setattr__(self, "moe_imbalance", imbalance)
        dropout = self.model.dropout if self.dropout is None else self.dropout
        object.__setattr__(self, "dropout", as_float("dropout", dropout, minimum=0.0,
                                                     strict=False, maximum=DROPOUT_MAX))


@functools.cache
def _reliability_defaults() -> dict[str, Any]:
    path = importlib.resources.files("solver") / "data" / "reliability.json"
    defaults: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))["defaults"]
    return defaults


def _reliability_default(name: str) -> float:
    """A default of the failure model, with its source, in ``solver/data/reliability.json``."""
    return float(_reliability_defaults()[name]["value"])


def _job_model(value: Any) -> ModelSpec:
    """``TrainingJob.model``: a ``ModelSpec``, or what ``solver.model`` resolves as the CLI's
    ``--model`` does (a preset name or a model file)."""
    if isinstance(value, ModelSpec):
        return value
    expected = "a ModelSpec, a preset name (solver.models()) or a model file"
    if not isinstance(value, (str, Path)):
        raise fail("model", expected, type(value).__name__)
    from solver import catalog  # catalog imports this module

    try:
        return catalog.model(str(value), field="model")
    except SpecError as err:
        if str(err).startswith("model:"):  # the name itself, not a model file's content
            raise SpecError(f"{err} (expected {expected})") from None
        raise


__all__ = ["TrainingJob"]
