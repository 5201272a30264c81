"""Options shared by several commands, defined once, and the parsing they need."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from solver import plugins
from solver.errors import SpecError
from solver.specs import ModelSpec, TrainingJob
from solver.validate import as_tokens


def parse_tokens(text: str, *, field: str = "--tokens") -> float:
    """``300e9``, ``300B``, ``15T``, ``2.5e12`` -> a number of tokens in [1, 1e18)."""
    return as_tokens(field, text)


ModelOpt = Annotated[str, typer.Option("--model", help="Preset name or model file "
                                       "(TOML/JSON, or a Hugging Face config.json).")]
TokensOpt = Annotated[str, typer.Option("--tokens", help="Training tokens: 300e9, 300B, 15T.")]
SeqLenOpt = Annotated[int | None, typer.Option(
    "--seq-len", help="Sequence length (default: the model's).", show_default=False)]
GlobalBatchOpt = Annotated[int | None, typer.Option(
    "--global-batch", help="Sequences per optimizer step (pareto: default the solver "
    "chooses; evaluate and compare need it).", show_default=False)]
PrecisionOpt = Annotated[str, typer.Option("--precision", help="bf16 or fp8.")]
FlashOpt = Annotated[bool, typer.Option("--flash-attention/--no-flash-attention",
                                        help="Attention kernels that never store the scores.")]
TpOverlapOpt = Annotated[bool, typer.Option(
    "--tp-comm-overlap/--no-tp-comm-overlap", help="Tensor-parallel collectives overlapped "
    "with their GEMMs (Transformer Engine userbuffers).")]
EpOverlapOpt = Annotated[bool, typer.Option(
    "--ep-comm-overlap/--no-ep-comm-overlap", help="Expert all-to-alls overlapped with "
    "another micro-batch's computation (DualPipe).")]
SeqParallelOpt = Annotated[bool, typer.Option(
    "--sequence-parallel/--no-sequence-parallel", help="With tensor parallelism, norms and "
    "residuals split over the tp ranks (Megatron-LM --sequence-parallel).")]
GradOverlapOpt = Annotated[bool, typer.Option(
    "--grad-reduce-overlap/--no-grad-reduce-overlap", help="Gradient reduction bucketed "
    "under the backward pass (--overlap-grad-reduce, FSDP).")]
Zero3ImplOpt = Annotated[str, typer.Option(
    "--zero3-impl", help="ZeRO-3 software: fsdp or deepspeed (hides less of its traffic).")]
GradDtypeOpt = Annotated[str, typer.Option(
    "--grad-dtype", help="Gradient accumulation and reduction precision: fp32 or bf16.")]
MoeDispatcherOpt = Annotated[str, typer.Option(
    "--moe-dispatcher", help="How MoE tokens reach their experts: alltoall or deepep (one copy "
    "per node, forwarded inside it).")]
Fp8DispatchOpt = Annotated[bool, typer.Option(
    "--fp8-dispatch/--no-fp8-dispatch", help="MoE dispatch sent in FP8 (DeepEP, DeepSeek-V3).")]
MoeImbalanceOpt = Annotated[float, typer.Option(
    "--moe-imbalance", help="Most loaded expert rank's tokens over the mean (>= 1; 1: "
    "balanced).")]
MomentsDtypeOpt = Annotated[str, typer.Option(
    "--moments-dtype", help="Precision of Adam's first and second moments: fp32 or bf16.")]
DropoutOpt = Annotated[float | None, typer.Option(
    "--dropout", show_default=False, help="Hidden and attention dropout rate in [0, 0.99] "
    "(default: the model's own, e.g. 0 for Llama 3, 0.1 for GPT-3); above 0 each sublayer "
    "keeps a 1-byte mask (Megatron-LM's default 0.1; modern recipes 0).")]
Fp8ParamsOpt = Annotated[bool, typer.Option(
    "--fp8-params/--no-fp8-params", help="Weights held and gathered in FP8 only, no BF16 copy "
    "(Megatron-LM --fp8-param-gather; needs --precision fp8).")]
ActivationOffloadOpt = Annotated[bool, typer.Option(
    "--activation-offload/--no-activation-offload", help="Stored activations copied to host "
    "memory and back (Megatron-LM CPU offloading; needs the accelerator's host figures).")]
UnfusedExpertBiasOpt = Annotated[bool, typer.Option(
    "--unfused-expert-bias/--no-unfused-expert-bias", help="Expert biases on Megatron-Core's "
    "unfused per-expert path (before the TE op fuser, 2026-05); matters for experts with "
    "biases (gpt-oss).")]
RECOMPUTE_HELP = ("none|selective|full|alternate_matmuls or modules joined by + (core_attn, "
                  "layernorm, mla_up_proj, moe_act, mlp, moe, shared_experts)")
ScheduleOpt = Annotated[str, typer.Option(
    "--schedule", help="Pipeline schedule: 1f1b, zero-bubble or dualpipe.")]
SplitOpt = Annotated[str, typer.Option(
    "--pipeline-split", help="Edge stages that count the embedding or the loss as a layer: "
    "even, embedding, loss or both.")]
CandidatesOpt = Annotated[list[str] | None, typer.Option(
    "--gpu", help="Candidate accelerator (repeatable; default: all).")]
MaxGpusOpt = Annotated[int | None, typer.Option(
    "--max-gpus", help="At most this many accelerators.")]
JsonOpt = Annotated[bool, typer.Option(
    "--json", help="Print JSON (its fields: docs/interface.md) instead of a table.")]
CostModelOpt = Annotated[str | None, typer.Option(
    "--cost-model", help="Cost model by name (default: cloud; see gpuplan plugins list).",
    show_default=False, metavar="NAME")]
CostParamOpt = Annotated[list[str] | None, typer.Option(
    "--cost-param", help="KEY=VALUE parameter of the cost model, or of energy and CO2 (pue, "
    "utilisation, grid_g_per_kwh, region); repeatable.", show_default=False,
    metavar="KEY=VALUE")]

FailuresOpt = Annotated[bool, typer.Option(
    "--failures/--no-failures", help="Count failures, checkpoints and restarts in the "
    "wall-clock days deadlines and cost are judged on (docs/model.md); --no-failures plans as "
    "if every hour were productive.")]
MtbfOpt = Annotated[float | None, typer.Option(
    "--mtbf-hours", help="Mean hours between interruptions of ONE accelerator (a job of N "
    "fails every MTBF/N hours; default: the sourced table, about 50,700 h).",
    show_default=False)]
FailureParamOpt = Annotated[list[str] | None, typer.Option(
    "--failure-param", help="KEY=VALUE of the failure model: checkpoint_node_gb_s, "
    "checkpoint_total_gb_s (0: no cap), async_checkpoint, restart_min, hot_spares, "
    "replace_min; repeatable.", show_default=False, metavar="KEY=VALUE")]

#: ``--failure-param`` keys: the ``TrainingJob`` fields of the failure model, and their kind.
FAILURE_PARAMS = {"checkpoint_node_gb_s": float, "checkpoint_total_gb_s": float,
                  "async_checkpoint": bool, "restart_min": float, "hot_spares": bool,
                  "replace_min": float}


def parse_failure_params(items: list[str] | None) -> dict[str, float | bool]:
    """``["restart_min=20", "async_checkpoint=true"]`` -> ``{"restart_min": 20.0,
    "async_checkpoint": True}``; the job checks the ranges."""
    params: dict[str, float | bool] = {}
    for key, value in parse_key_values(items, "--failure-param").items():
        if key not in FAILURE_PARAMS:
            raise SpecError(f"--failure-param: expected a key among "
                            f"{', '.join(FAILURE_PARAMS)}, got {key[:40]!r}")
        if FAILURE_PARAMS[key] is bool:
            if value.lower() not in ("true", "false"):
                raise SpecError(f"--failure-param: {key}: expected true or false, got "
                                f"{value[:40]!r}")
            params[key] = value.lower() == "true"
        else:
            try:
                params[key] = float(value)
            except ValueError:
                raise SpecError(f"--failure-param: {key}: expected a number, got "
                                f"{value[:40]!r}") from None
    return params


def failure_fields(failures: bool | None, mtbf_hours: float | None,
                   items: list[str] | None) -> dict[str, Any]:
    """The ``TrainingJob`` fields the failure options give (those not given left out)."""
    fields: dict[str, Any] = dict(parse_failure_params(items))
    if failures is not None:
        fields["failures"] = failures
    if mtbf_hours is not None:
        if not mtbf_hours > 0:
            raise SpecError(f"--mtbf-hours: expected a number > 0, got {mtbf_hours:g}")
        fields["mtbf_hours"] = mtbf_hours
    return fields


#: Layout fields that ``solve`` and ``pareto`` may fix (the rest is searched).
Fix = Annotated[int | None, typer.Option(help="Fix this layout dimension.", show_default=False)]
MicroBatchFix = Annotated[int | None, typer.Option("--micro-batch", show_default=False)]
ZeroFix = Annotated[int | None, typer.Option("--zero", show_default=False)]
RecomputeFix = Annotated[str | None, typer.Option("--recompute", help=RECOMPUTE_HELP,
                                                   show_default=False)]
ScheduleFix = Annotated[str | None, typer.Option(
    "--schedule", help="1f1b|zero-bubble|dualpipe", show_default=False)]
SplitFix = Annotated[str | None, typer.Option(
    "--pipeline-split", help="even|embedding|loss|both", show_default=False)]



def parse_key_values(items: list[str] | None, option: str) -> dict[str, str]:
    """A repeatable ``KEY=VALUE`` option: ``["pue=1.2", "region=us-central1"]`` ->
    ``{"pue": "1.2", "region": "us-central1"}``, each key once; the caller checks keys and
    values."""
    params: dict[str, str] = {}
    for item in items or ():
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not key or not value:
            raise SpecError(f"{option}: expected KEY=VALUE, got {item[:60]!r}")
        if key in params:
            raise SpecError(f"{option}: {key} is given twice")
        params[key] = value
    return params


def parse_cost_params(items: list[str] | None) -> dict[str, str]:
    """``--cost-param``; the cost model checks the keys and values."""
    return parse_key_values(items, "--cost-param")


#: What ``--seq-len`` and ``--global-batch`` count, and what leaving them out means.
COUNT_OPTIONS = {"seq_len": ("--seq-len", "tokens per sequence", "the model's"),
                 "global_batch": ("--global-batch", "sequences per step", "the solver's choice")}


def given_count(key: str, value: int | None) -> int:
    """A ``--seq-len`` or ``--global-batch`` as given: not given is 0 (the default); given, it
    must be a positive integer (0 on the command line is an error, not "the default")."""
    if value is None:
        return 0
    if value < 1:
        option, what, default = COUNT_OPTIONS[key]
        raise SpecError(f"{option}: expected an integer >= 1 ({what}; leave the option out "
                        f"for {default}), got {value}")
    return value


def build_job(model: str, tokens: str, seq_len: int | None, global_batch: int | None,
              precision: str,
              flash_attention: bool, tp_comm_overlap: bool = False,
              grad_reduce_overlap: bool = True, zero3_impl: str = "fsdp",
              grad_dtype: str = "fp32", ep_comm_overlap: bool = False,
              moe_dispatcher: str = "alltoall", fp8_dispatch: bool = False,
              moe_imbalance: float = 1.0, moments_dtype: str = "fp32", dropout: float | None = None,
              fp8_params: bool = False, activation_offload: bool = False,
              unfused_expert_bias: bool = False, failures: dict[str, Any] | None = None,
              sequence_parallel: bool = True) -> TrainingJob:
    """The job the options describe; ``failures``: its failure-model fields
    (``failure_fields``)."""
    seq_len, global_batch = given_count("seq_len", seq_len), given_count("global_batch",
                                                                         global_batch)
    from solver import catalog  # NumPy through the cost models: not for --help

    spec: ModelSpec = catalog.model(model, field="--model")
    try:
        return TrainingJob(model=spec, tokens=parse_tokens(tokens), global_batch=global_batch,
                           seq_len=seq_len, precision=precision, flash_attention=flash_attention,
                           tp_comm_overlap=tp_comm_overlap,
                           grad_reduce_overlap=grad_reduce_overlap, zero3_impl=zero3_impl,
                           grad_dtype=grad_dtype, ep_comm_overlap=ep_comm_overlap,
                           moe_dispatcher=moe_dispatcher, fp8_dispatch=fp8_dispatch,
                           moe_imbalance=moe_imbalance, moments_dtype=moments_dtype,
                           dropout=dropout, fp8_params=fp8_params,
                           activation_offload=activation_offload,
                           unfused_expert_bias=unfused_expert_bias,
                           sequence_parallel=sequence_parallel, **(failures or {}))
    except SpecError as err:
        raise as_option_error(err) from None


def as_option_error(err: SpecError) -> SpecError:
    """Rename a library field (``global_batch: ...``) to its option (``--global-batch: ...``)."""
    field, sep, rest = str(err).partition(":")
    if sep and field.isidentifier():
        option = OPTION_NAMES.get(field, field.replace("_", "-"))
        return SpecError(f"--{option}:{rest}")
    return err


#: Library fields whose option has another name.
OPTION_NAMES = {"zero_stage": "zero", "time_limit_s": "time-limit-s", "accelerator": "gpu",
                "accelerators": "gpu", "top": "top", "cost_params": "cost-param"}


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def warn_plugin_problems() -> None:
    for line in plugins.problems():
        sys.stderr.write(f"gpuplan: warning: {line}\n")
