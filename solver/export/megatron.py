"""Megatron-LM: a bash array of ``megatron/training/arguments.py`` flags."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from solver.errors import SpecError
from solver.estimate import Estimate
from solver.export.common import (
    comment_lines,
    header,
    refuse_unrunnable,
    stage_layers,
    train_steps,
)
from solver.export.megatron_model import model_flags
from solver.specs import TrainingJob

#: Every Megatron-LM flag this module may write (in arguments or in comments).
MEGATRON_FLAGS = (
    "--tensor-model-parallel-size", "--pipeline-model-parallel-size",
    "--num-layers-per-virtual-pipeline-stage", "--pipeline-model-parallel-layout",
    "--context-parallel-size", "--expert-model-parallel-size", "--sequence-parallel",
    "--use-distributed-optimizer", "--overlap-grad-reduce", "--overlap-param-gather",
    "--grad-reduce-in-bf16", "--overlap-moe-expert-parallel-comm",
    "--tp-comm-overlap", "--use-megatron-fsdp", "--data-parallel-sharding-strategy",
    "--ckpt-format", "--micro-batch-size", "--global-batch-size", "--train-iters",
    "--recompute-granularity", "--recompute-method", "--recompute-num-layers",
    "--num-layers", "--hidden-size", "--num-attention-heads", "--group-query-attention",
    "--num-query-groups", "--kv-channels", "--ffn-hidden-size", "--seq-length",
    "--max-position-embeddings", "--position-embedding-type", "--normalization", "--swiglu",
    "--disable-bias-linear", "--untie-embeddings-and-output-weights",
    "--multi-latent-attention", "--q-lora-rank", "--kv-lora-rank", "--qk-head-dim",
    "--qk-pos-emb-head-dim", "--v-head-dim", "--num-experts", "--moe-router-topk",
    "--moe-ffn-hidden-size", "--moe-shared-expert-intermediate-size", "--moe-layer-freq",
    "--moe-token-dispatcher-type", "--moe-grouped-gemm", "--moe-expert-capacity-factor",
    "--mtp-num-layers", "--bf16", "--fp8-format", "--fp8-recipe", "--tokenizer-type",
    "--tokenizer-model",
    "--make-vocab-size-divisible-by", "--recompute-modules", "--moe-router-num-groups",
    "--moe-router-group-topk", "--moe-enable-deepep", "--use-precision-aware-optimizer",
    "--exp-avg-dtype", "--exp-avg-sq-dtype", "--hidden-dropout", "--attention-dropout",
    "--fp8-param-gather", "--cpu-offloading-num-layers", "--no-gradient-accumulation-fusion",
    "--rotary-base", "--use-rope-scaling", "--rope-scaling-factor",
    "--rotary-seq-len-interpolation-factor", "--norm-epsilon", "--rope-type", "--no-rope-fusion",
    "--qk-layernorm", "--moe-router-load-balancing-type", "--moe-router-score-function",
    "--moe-router-pre-softmax", "--moe-router-topk-scaling-factor",
    "--moe-router-enable-expert-bias", "--moe-aux-loss-coeff", "--rotary-scaling-factor",
    "--mscale", "--mscale-all-dim", "--window-size", "--window-attn-skip-freq",
)


def megatron(est: Estimate, job: TrainingJob) -> str:
    """A bash snippet: ``MEGATRON_ARGS=( ... )`` with one argument per line and ``#`` notes."""
    refuse_unrunnable("megatron", est, job)
    m, x = job.model, est.layout
    args: list[tuple[str, ...] | str] = []

    def arg(flag: str, *values: Any) -> None:
        args.append((flag, *(_shell_word(v) for v in values)))

    def note(text: str) -> None:
        args.append("# " + text)

    note("layout: world size = TP x PP x CP x DP "
         f"= {x.tp} x {x.pp} x {x.cp} x {x.dp} = {x.gpus:,} processes")
    arg("--tensor-model-parallel-size", x.tp)
    arg("--pipeline-model-parallel-size", x.pp)
    embedding, loss = (int(x.pipeline_split in ("embedding", "both")),
                       int(x.pipeline_split in ("loss", "both")))
    chunks = stage_layers(m.layers, x.pp, x.vp, embedding, loss, m.mtp_layers)
    if x.pp > 1 and (len(set(chunks)) > 1 or m.mtp_layers):
        note(f"pipeline split {x.pipeline_split} over {x.pp * x.vp} chunks"
             + (f", {m.mtp_layers} MTP module(s) on the last" if m.mtp_layers else "")
             + ": an explicit layout (E embedding, t layer, m MTP, L loss)")
        arg("--pipeline-model-parallel-layout", _megatron_layout(chunks, m.mtp_layers))
    elif x.vp > 1 and x.pp > 1:
        arg("--num-layers-per-virtual-pipeline-stage", chunks[0])
    if x.vp > 1 and x.pp == 1:
        note(f"VP{x.vp} without pipeline parallelism has no meaning: left out")
    if x.vp > 1 and est.num_microbatches % x.pp:
        note(f"older Megatron-LM releases need the micro-batch count ({est.num_microbatches}) "
             f"to be a multiple of PP ({x.pp}) with the interleaved schedule")
    arg("--context-parallel-size", x.cp)
    if m.is_moe:
        arg("--expert-model-parallel-size", x.ep)
    if x.tp > 1:
        if job.sequence_parallel:
            arg("--sequence-parallel")
        if job.tp_comm_overlap:
            arg("--tp-comm-overlap")
    _megatron_data_parallel(est, job, arg, note)

    note("batch")
    arg("--micro-batch-size", x.micro_batch)
    arg("--global-batch-size", est.global_batch)
    arg("--train-iters", train_steps(est, job))

    _megatron_recompute(est, job, arg, note)

    note("model shape")
    model_flags(m, job, arg, note, x.ep)
    _megatron_precision(est, job, arg, note)
    _megatron_activations(est, job, arg, note)

    lines = comment_lines([*header(est, job, "Megatron-LM", "megatron"),
                           f"Launch pretrain_gpt.py with torchrun on {x.gpus:,} processes, "
                           'passing "${MEGATRON_ARGS[@]}" plus your data, tokenizer, '
                           "optimizer and checkpoint arguments."])
    if x.zero_stage >= 2:
        lines.append("# Megatron-FSDP refuses CUDA_DEVICE_MAX_CONNECTIONS=1 (validate_args):")
        lines.append("unset CUDA_DEVICE_MAX_CONNECTIONS")
    elif x.tp > 1 or x.cp > 1:
        lines.append("# Megatron-LM requires this with TP or CP > 1 before Blackwell:")
        lines.append("export CUDA_DEVICE_MAX_CONNECTIONS=1")
    lines.append("MEGATRON_ARGS=(")
    for item in args:
        if isinstance(item, str):
            lines += comment_lines([item[2:]], prefix="    # ")
        else:
            lines.append("    " + " ".join(item))
    lines.append(")")
    return "\n".join(lines) + "\n"


def _megatron_data_parallel(est: Estimate, job: TrainingJob, arg: Any, note: Any) -> None:
    """ZeRO, gradient precision and the overlapped reductions, as Megatron-LM runs them.

    ZeRO-1 is the distributed optimizer (``--use-distributed-optimizer``). ZeRO-2 and ZeRO-3 are
    Megatron-FSDP: ``--use-megatron-fsdp`` with ``--data-parallel-sharding-strategy
    optim_grads`` (optimizer states and gradients) or ``optim_grads_params`` (and weights),
    beside ``--use-distributed-optimizer`` and ``--no-gradient-accumulation-fusion`` as
    Megatron-LM's Megatron-FSDP guide (``docs/source/api-guide/custom_fsdp.md``) and its
    functional test ``gpt3_mcore_te_tp2_zp_z3_resume_fsdp_dtensor`` pass them. ``validate_args``
    at the followed commit requires ``--ckpt-format fsdp_dtensor`` with Megatron-FSDP and
    ``CUDA_DEVICE_MAX_CONNECTIONS`` not 1 (the snippet unsets it).
    """
    x = est.layout
    if x.zero_stage >= 1:
        arg("--use-distributed-optimizer")
    if x.zero_stage >= 2:
        note(f"ZeRO-{x.zero_stage} as Megatron-FSDP: optimizer states, gradients"
             + (" and weights" if x.zero_stage == 3 else "") + " sharded over the "
             f"{x.dp * x.cp} data-parallel ranks (its checkpoints are fsdp_dtensor)")
        arg("--use-megatron-fsdp")
        arg("--data-parallel-sharding-strategy",
            "optim_grads_params" if x.zero_stage == 3 else "optim_grads")
        arg("--no-gradient-accumulation-fusion")
        arg("--ckpt-format", "fsdp_dtensor")
    if job.grad_dtype == "bf16":
        arg("--grad-reduce-in-bf16")
    if job.grad_reduce_overlap and x.dp * x.cp > 1:
        arg("--overlap-grad-reduce")
        if x.zero_stage >= 1:
            arg("--overlap-param-gather")


def _megatron_recompute(est: Estimate, job: TrainingJob, arg: Any, note: Any) -> None:
    """Recomputation, what the schedule cannot be, and Adam's moments in BF16 (the
    precision-aware optimizer)."""
    x = est.layout
    note("recomputation")
    if x.recompute == "full":
        arg("--recompute-granularity", "full")
        arg("--recompute-method", "uniform")
        arg("--recompute-num-layers", 1)
    elif x.recompute == "selective":
        arg("--recompute-granularity", "selective")
    elif x.recompute != "none":
        arg("--recompute-granularity", "selective")
        arg("--recompute-modules", *x.recompute.split("+"))
    else:
        note("none: every activation is kept")
    if job.moments_dtype == "bf16":
        arg("--use-precision-aware-optimizer")
        arg("--exp-avg-dtype", "bf16")
        arg("--exp-avg-sq-dtype", "bf16")


def _megatron_precision(est: Estimate, job: TrainingJob, arg: Any, note: Any) -> None:
    """BF16, FP8 (hybrid) and FP8 weights: ``--fp8-param-gather``, which Megatron-LM's
    ``validate_args`` allows only with the distributed optimizer or Megatron-FSDP (ZeRO-1 or
    more; ``solver.launchers`` refuses FP8 weights at ZeRO-0 before this runs)."""
    note("precision")
    arg("--bf16")
    if job.precision == "fp8":
        arg("--fp8-format", "hybrid")
        modules = set(est.layout.recompute.split("+"))
        if modules & {"moe_act", "layernorm"}:
            # TransformerConfig refuses these recomputations under delayed scaling
            # (transformer_config.py:1015-1027); per-tensor current scaling runs them
            # (Transformer Engine >= 2.6).
            note("FP8 with moe_act/layernorm recomputation: per-tensor current scaling "
                 "(Megatron-LM refuses them under delayed scaling; needs Transformer "
                 "Engine >= 2.6)")
            arg("--fp8-recipe", "tensorwise")
        if job.fp8_params:
            arg("--fp8-param-gather")
    if not job.flash_attention:
        note("the plan assumes attention that stores the score matrix (no flash attention)")


def _megatron_activations(est: Estimate, job: TrainingJob, arg: Any, note: Any) -> None:
    """Dropout, always written (Megatron-LM's default is 0.1, the plan's may be 0), and
    activation offload: Megatron-LM's layer-wise CPU offloading (Transformer Engine's
    ``get_cpu_offload_context``), whose TransformerConfig refuses PP > 1, recomputation
    (``solver.launchers`` refuses both before this runs) and ``cpu_offloading_num_layers >=
    num_layers``."""
    m = job.model
    note("dropout: the plan's rate, written since Megatron-LM's default is 0.1")
    arg("--hidden-dropout", f"{job.dropout:g}")
    arg("--attention-dropout", f"{job.dropout:g}")
    if not job.activation_offload:
        return
    offloaded = m.layers - 1
    if offloaded < 1:
        raise SpecError("activation_offload: Megatron-LM offloads fewer layers than "
                        f"--num-layers, and {m.name} has one; so no megatron export")
    note(f"activation offload: {offloaded} of {m.layers} layers send their activations to "
         "host memory (Megatron-LM takes fewer than --num-layers; the last layer's are used "
         "at once); needs Transformer Engine")
    arg("--cpu-offloading-num-layers", offloaded)


def _megatron_layout(chunks: Sequence[int], mtp: int = 0) -> str:
    """Megatron-LM's layout string: stages split by ``|``, ``t*3`` three layers, ``(x|)*5`` a
    stage repeated, ``E`` and ``L`` the embedding and the loss on the first and last stage,
    ``m`` an MTP module (on the last stage, before the loss)."""
    stages = [f"t*{n}" if n > 1 else "t" * n for n in chunks]
    first = "E" + ("," + stages[0] if stages[0] else "")
    last = (stages[-1] + "," if stages[-1] else "") + "m," * mtp + "L"
    if len(stages) == 1:
        return "E," + stages[0] + ",L" if stages[0] else "E,L"
    middle = stages[1:-1]
    parts = [first + "|"]
    i = 0
    while i < len(middle):
        j = i
        while j < len(middle) and middle[j] == middle[i]:
            j += 1
        run = j - i
        parts.append(f"({middle[i]}|)*{run}," if run >= 3 else (middle[i] + "|") * run)
        i = j
    return "".join(parts) + last


def _shell_word(value: Any) -> str:
    text = str(value)
    if text and all(c.isalnum() or c in "-_.,:/=+" for c in text):
        return text
    return "'" + text.replace("'", "'\"'\"'") + "'"
