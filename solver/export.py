"""``solver.export``: a plan as a launcher's configuration (Megatron-LM, torchtitan, DeepSpeed).

Each exporter writes what the launcher can express of the plan (layout, model shape, batch,
precision, recomputation) and says in a comment what it cannot, never silently. The names
used were checked against one version of each project, named in ``FOLLOWS`` and in
``docs/export.md``; ``tests/data/megatron_flags.txt`` and ``tests/data/torchtitan_fields.txt``
hold the verified excerpts that ``tests/test_export.py`` checks every exported name against.
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Sequence
from typing import Any

from solver.errors import SpecError
from solver.estimate import Estimate
from solver.plan import Plan
from solver.specs import ModelSpec, TrainingJob

FORMATS = ("megatron", "torchtitan", "deepspeed")

#: The upstream file and commit whose names each exporter uses.
MEGATRON_LM_COMMIT = "000c4ac24f61159c138b0975def722c65245983c"
TORCHTITAN_COMMIT = "6404b932421f5ce382e7dac5ad381b2c17b1373c"
DEEPSPEED_COMMIT = "ac2f3a347d5c7467879ff60f3324718eef881dc6"
FOLLOWS = {
    "megatron": f"NVIDIA/Megatron-LM megatron/training/arguments.py @ {MEGATRON_LM_COMMIT[:12]}",
    "torchtitan": f"pytorch/torchtitan torchtitan/config/job_config.py @ {TORCHTITAN_COMMIT[:12]}",
    "deepspeed": f"deepspeedai/DeepSpeed deepspeed/runtime/constants.py @ {DEEPSPEED_COMMIT[:12]}",
}

#: Every Megatron-LM flag this module may write (in arguments or in comments).
MEGATRON_FLAGS = (
    "--tensor-model-parallel-size", "--pipeline-model-parallel-size",
    "--num-layers-per-virtual-pipeline-stage", "--pipeline-model-parallel-layout",
    "--context-parallel-size", "--expert-model-parallel-size", "--sequence-parallel",
    "--use-distributed-optimizer", "--overlap-grad-reduce", "--overlap-param-gather",
    "--grad-reduce-in-bf16",
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
    "--mtp-num-layers", "--bf16", "--fp8-format", "--tokenizer-type", "--tokenizer-model",
    "--make-vocab-size-divisible-by",
)

#: torchtitan ``[model]`` name and flavor of gpuplan's presets that torchtitan ships.
TORCHTITAN_MODELS = {
    "llama3-8b": ("llama3", "8B"),
    "llama3-70b": ("llama3", "70B"),
    "llama3.1-405b": ("llama3", "405B"),
    "deepseek-v3": ("deepseek_v3", "671B"),
}


def export(plan_or_estimate: Plan | Estimate, fmt: str, *, job: TrainingJob) -> str:
    """The plan as ``fmt``: ``megatron`` (bash array of Megatron-LM arguments), ``torchtitan``
    (TOML job config) or ``deepspeed`` (JSON config). ``job`` gives the model and the tokens.

    Raises ``SpecError`` for an unknown format or a plan without a layout (infeasible).
    """
    if fmt not in FORMATS:
        raise SpecError(f"export: expected one of {'|'.join(FORMATS)}, got {fmt!r}")
    est = plan_or_estimate.estimate if isinstance(plan_or_estimate, Plan) else plan_or_estimate
    if not isinstance(est, Estimate):
        status = getattr(plan_or_estimate, "status", "?")
        raise SpecError(f"export: the plan has no layout to export (status {status})")
    if not isinstance(job, TrainingJob):
        raise SpecError("job: expected the TrainingJob the plan was made for")
    return {"megatron": megatron, "torchtitan": torchtitan, "deepspeed": deepspeed}[fmt](
        est, job)


# ---------------------------------------------------------------------------- shared facts


def train_steps(est: Estimate, job: TrainingJob) -> int:
    """Optimizer steps that cover the job's tokens: ceil(tokens / (global batch x seq))."""
    return max(1, math.ceil(job.tokens / (est.global_batch * job.seq_len)))


def layout_summary(est: Estimate) -> str:
    x = est.layout
    return (f"{x.gpus:,} x {x.accelerator}, TP{x.tp} PP{x.pp} DP{x.dp} CP{x.cp} EP{x.ep} "
            f"VP{x.vp}, micro-batch {x.micro_batch} x {est.num_microbatches} "
            f"(global {est.global_batch}), ZeRO-{x.zero_stage}, recompute {x.recompute}")


def tokens_text(tokens: float) -> str:
    """``15.6e12`` -> ``15.6T``, ``300e9`` -> ``300B``."""
    for suffix, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6)):
        if tokens >= scale:
            return f"{tokens / scale:.4g}{suffix}"
    return f"{tokens:.4g}"


def comment_lines(texts: Sequence[str], prefix: str = "# ", width: int = 79) -> list[str]:
    """Each text as ``#`` comment lines of at most ``width`` columns (longer words unbroken)."""
    lines: list[str] = []
    for text in texts:
        lines += textwrap.wrap(text, width=width, initial_indent=prefix,
                               subsequent_indent=prefix + "  ", break_long_words=False,
                               break_on_hyphens=False)
    return lines


def _header(est: Estimate, job: TrainingJob, launcher: str, fmt: str) -> list[str]:
    return [
        f"{launcher} configuration written by gpuplan for {job.model.name}, "
        f"{tokens_text(job.tokens)} tokens at sequence length {job.seq_len}, {job.precision}.",
        f"Plan: {layout_summary(est)}.",
        f"Estimate: {est.training_days:,.1f} training days, {est.step_time_s:.3g} s per step, "
        f"MFU {est.mfu:.1%}, {est.memory_gib_per_gpu:.1f} of {est.memory_capacity_gib:.0f} "
        "GiB per GPU.",
        f"Names checked against {FOLLOWS[fmt]}.",
    ]


def stage_layers(layers: int, pp: int, vp: int) -> list[int]:
    """Transformer layers of each of the ``pp * vp`` model chunks, in layer order.

    Chunk ``c`` runs on pipeline rank ``c % pp`` (the interleaved schedule of Megatron-LM and
    torchtitan's looped schedules). Ranks hold ``floor`` or ``ceil(layers / pp)`` layers, the
    lighter ranks first and last (they also hold the embedding and the LM head), so no rank
    holds more than the step model's most loaded stage; each rank's share is split as evenly
    as possible over its ``vp`` chunks.
    """
    base, extra = divmod(layers, pp)
    heavy = set(_middle(pp, extra))
    per_rank = [base + (r in heavy) for r in range(pp)]
    chunks = [[0] * vp for _ in range(pp)]
    for r, n in enumerate(per_rank):
        b, e = divmod(n, vp)
        chunks[r] = [b + (v >= vp - e) for v in range(vp)]
    return [chunks[c % pp][c // pp] for c in range(pp * vp)]


def _middle(n: int, k: int) -> list[int]:
    """``k`` of the indices ``0..n-1``, from the middle outwards."""
    order = sorted(range(n), key=lambda i: (abs(2 * i - (n - 1)), i))
    return order[:k]


def _moe_pattern(m: ModelSpec) -> str:
    """Megatron-LM ``--moe-layer-freq`` list expression: leading dense layers, then MoE."""
    return f"([0]*{m.dense_layers}+[1]*{m.moe_layers})"


def _shell_word(value: Any) -> str:
    text = str(value)
    if text and all(c.isalnum() or c in "-_.,:/=+" for c in text):
        return text
    return "'" + text.replace("'", "'\"'\"'") + "'"


# ---------------------------------------------------------------------------- Megatron-LM


def megatron(est: Estimate, job: TrainingJob) -> str:
    """A bash snippet: ``MEGATRON_ARGS=( ... )`` with one argument per line and ``#`` notes."""
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
    chunks = stage_layers(m.layers, x.pp, x.vp)
    if x.pp > 1 and len(set(chunks)) > 1:
        note(f"{m.layers} layers do not split evenly over {x.pp * x.vp} pipeline chunks: "
             "an explicit layout (E embedding, t layer, L loss)")
        arg("--pipeline-model-parallel-layout", _megatron_layout(chunks))
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
        arg("--sequence-parallel")
        if job.tp_comm_overlap:
            arg("--tp-comm-overlap")
    if x.zero_stage >= 1:
        arg("--use-distributed-optimizer")
    if x.zero_stage >= 2:
        note(f"ZeRO-{x.zero_stage}: Megatron-LM has no flag for it; "
             "--use-distributed-optimizer shards only the optimizer states (ZeRO-1), so "
             "gradients" + (" and weights" if x.zero_stage == 3 else "") +
             " stay replicated and memory per GPU is higher than planned "
             f"({est.memory_gib_per_gpu:.1f} GiB). The nearest is Megatron-FSDP: "
             "--use-megatron-fsdp --data-parallel-sharding-strategy "
             + ("optim_grads_params" if x.zero_stage == 3 else "optim_grads")
             + " --ckpt-format fsdp_dtensor (not written: it replaces the distributed "
             "optimizer and is not exercised with every layout)")
    if job.grad_dtype == "bf16":
        arg("--grad-reduce-in-bf16")
    if job.grad_reduce_overlap and x.dp * x.cp > 1:
        arg("--overlap-grad-reduce")
        if x.zero_stage >= 1:
            arg("--overlap-param-gather")

    note("batch")
    arg("--micro-batch-size", x.micro_batch)
    arg("--global-batch-size", est.global_batch)
    arg("--train-iters", train_steps(est, job))

    note("recomputation")
    if x.recompute == "full":
        arg("--recompute-granularity", "full")
        arg("--recompute-method", "uniform")
        arg("--recompute-num-layers", 1)
    elif x.recompute == "selective":
        arg("--recompute-granularity", "selective")
    else:
        note("none: every activation is kept")

    note("model shape")
    _megatron_model(m, job, arg, note, x.ep)
    note("precision")
    arg("--bf16")
    if job.precision == "fp8":
        arg("--fp8-format", "hybrid")
    if not job.flash_attention:
        note("the plan assumes attention that stores the score matrix (no flash attention)")

    lines = comment_lines([*_header(est, job, "Megatron-LM", "megatron"),
                           f"Launch pretrain_gpt.py with torchrun on {x.gpus:,} processes, "
                           'passing "${MEGATRON_ARGS[@]}" plus your data, tokenizer, '
                           "optimizer and checkpoint arguments."])
    if x.tp > 1 or x.cp > 1:
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


def _megatron_layout(chunks: Sequence[int]) -> str:
    """Megatron-LM's layout string: stages split by ``|``, ``t*3`` three layers, ``(x|)*5`` a
    stage repeated, ``E`` and ``L`` the embedding and the loss on the first and last stage."""
    stages = [f"t*{n}" if n > 1 else "t" * n for n in chunks]
    first = "E" + ("," + stages[0] if stages[0] else "")
    last = (stages[-1] + "," if stages[-1] else "") + "L"
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


def _megatron_model(m: ModelSpec, job: TrainingJob, arg: Any, note: Any, ep: int) -> None:
    arg("--num-layers", m.layers)
    arg("--hidden-size", m.hidden)
    arg("--num-attention-heads", m.heads)
    if m.uses_mla:
        arg("--multi-latent-attention")
        if m.q_lora_rank:
            arg("--q-lora-rank", m.q_lora_rank)
        arg("--kv-lora-rank", m.kv_lora_rank)
        arg("--qk-head-dim", m.head_dim)
        arg("--qk-pos-emb-head-dim", m.qk_rope_head_dim)
        arg("--v-head-dim", m.v_head_dim)
    else:
        if m.kv_heads != m.heads:
            arg("--group-query-attention")
            arg("--num-query-groups", m.kv_heads)
        if m.head_dim * m.heads != m.hidden:
            arg("--kv-channels", m.head_dim)
    arg("--ffn-hidden-size", m.ffn_hidden)
    if m.is_moe:
        arg("--num-experts", m.experts)
        arg("--moe-router-topk", m.top_k)
        arg("--moe-ffn-hidden-size", m.moe_ffn_hidden)
        if m.shared_experts:
            arg("--moe-shared-expert-intermediate-size", m.shared_experts * m.moe_ffn_hidden)
        if m.dense_layers:
            arg("--moe-layer-freq", _moe_pattern(m))
        arg("--moe-grouped-gemm")
        if ep > 1:
            arg("--moe-token-dispatcher-type", "alltoall")
        if m.capacity_factor != 1.0:
            arg("--moe-expert-capacity-factor", m.capacity_factor)
        else:
            note("routing: the plan assumes balanced experts (capacity factor 1); "
                 "Megatron-LM routes dropless by default")
    arg("--seq-length", job.seq_len)
    arg("--max-position-embeddings", max(job.seq_len, m.seq_len))
    arg("--position-embedding-type", "rope" if m.position_embedding == "rope"
        else "learned_absolute")
    if m.norm == "rmsnorm":
        arg("--normalization", "RMSNorm")
    if m.gated_mlp:
        arg("--swiglu")
    if not m.linear_bias:
        arg("--disable-bias-linear")
    if not m.tied_embeddings:
        arg("--untie-embeddings-and-output-weights")
    note(f"vocabulary: {m.vocab:,} tokens come from your tokenizer (--tokenizer-type, "
         "--tokenizer-model); Megatron-LM pads it to a multiple of "
         "--make-vocab-size-divisible-by x TP")
    if m.name == "deepseek-v3":
        note("DeepSeek-V3's multi-token-prediction module is not in the plan "
             "(--mtp-num-layers 1 trains it)")


# ---------------------------------------------------------------------------- torchtitan


def torchtitan(est: Estimate, job: TrainingJob) -> str:
    """A torchtitan TOML job config (``--job.config_file``)."""
    m, x = job.model, est.layout
    notes: list[str] = []
    name, flavor = TORCHTITAN_MODELS.get(m.name, (m.name, m.name))
    if m.name not in TORCHTITAN_MODELS:
        notes.append(f"torchtitan ships no {m.name} model: register a train spec named "
                     f"{name!r} with a flavor {flavor!r} of this shape (layers {m.layers}, "
                     f"hidden {m.hidden}, heads {m.heads}, ffn {m.ffn_hidden}, vocab "
                     f"{m.vocab})")
    model: dict[str, Any] = {"name": name, "flavor": flavor}
    if job.precision == "fp8":
        model["converters"] = ["float8"]

    training: dict[str, Any] = {}
    parallel: dict[str, Any] = {}
    if x.pp > 1:
        # The whole per-replica batch enters the pipeline and is cut into micro-batches.
        training["local_batch_size"] = x.micro_batch * est.num_microbatches
    else:
        # Gradient accumulation: global / (local x dp) steps.
        training["local_batch_size"] = x.micro_batch
    training["global_batch_size"] = est.global_batch
    training["seq_len"] = job.seq_len
    training["steps"] = train_steps(est, job)
    training["mixed_precision_param"] = "bfloat16"
    if job.grad_dtype == "bf16":
        notes.append("the plan reduces gradients in BF16; torchtitan's FSDP reduces them in "
                     "float32 (training.mixed_precision_reduce), with more traffic and memory "
                     "than planned")

    parallel["data_parallel_replicate_degree"] = 1
    parallel["data_parallel_shard_degree"] = x.dp
    if x.zero_stage == 3:
        parallel["fsdp_reshard_after_forward"] = "default"
    else:
        parallel["fsdp_reshard_after_forward"] = "never"
        if x.dp * x.cp > 1:
            notes.append(
                f"ZeRO-{x.zero_stage}: torchtitan has no optimizer-only sharding; FSDP2 "
                "shards weights, gradients and optimizer states (ZeRO-3). With "
                'fsdp_reshard_after_forward = "never" the weights stay gathered from the '
                "forward to the backward, the nearest to the plan: memory per GPU should "
                f"stay near the planned {est.memory_gib_per_gpu:.1f} GiB (gradients are "
                "sharded, FSDP adds gather buffers), and the weight all-gathers add "
                "communication the plan does not count")
    parallel["tensor_parallel_degree"] = x.tp
    parallel["pipeline_parallel_degree"] = x.pp
    if x.pp > 1:
        parallel["pipeline_parallel_schedule"] = "Interleaved1F1B" if x.vp > 1 else "1F1B"
        parallel["pipeline_parallel_microbatch_size"] = x.micro_batch
        chunks = stage_layers(m.layers, x.pp, x.vp)
        if len(set(chunks)) == 1:
            parallel["pipeline_parallel_layers_per_stage"] = chunks[0]
            parallel["pipeline_parallel_first_stage_less_layers"] = 0
            parallel["pipeline_parallel_last_stage_less_layers"] = 0
        else:
            parallel["module_fqns_per_model_part"] = _titan_parts(chunks)
    parallel["context_parallel_degree"] = x.cp
    parallel["expert_parallel_degree"] = x.ep
    if x.ep > 1:
        notes.append("expert parallelism is experimental in torchtitan at this version "
                     "(dp2ep: cp <= ep <= dp x cp)")
        if not x.cp <= x.ep <= x.dp * x.cp:
            notes.append(f"EP{x.ep} with CP{x.cp}: outside torchtitan's dp2ep range")

    ac: dict[str, Any] = {"mode": x.recompute}
    if x.recompute == "selective":
        ac["selective_ac_option"] = "op"
        notes.append("selective recomputation: torchtitan's per-op policy (\"op\") is the "
                     "nearest to the plan's (attention scores only)")

    sections: list[tuple[str, dict[str, Any]]] = [
        ("job", {"description": f"gpuplan: {m.name}, {tokens_text(job.tokens)} tokens, "
                 f"{x.gpus:,} x {x.accelerator}", "dump_folder": "./outputs"}),
        ("model", model),
        ("training", training),
        ("parallelism", parallel),
        ("activation_checkpoint", ac),
    ]
    if job.precision == "fp8":
        sections.append(("float8", {"recipe_name": "tensorwise",
                                    "enable_fsdp_float8_all_gather": True,
                                    "precompute_float8_dynamic_scale_for_fsdp": True,
                                    "filter_fqns": ["output"]}))
    if not job.flash_attention:
        notes.append("the plan assumes attention that stores the score matrix")
    notes.append("set [model] tokenizer_path and [training] dataset for your data")

    lines = comment_lines([*_header(est, job, "torchtitan", "torchtitan"),
                           f"Launch: torchrun on {x.gpus:,} processes, -m torchtitan.train "
                           "--job.config_file THIS_FILE", *notes])
    for title, values in sections:
        lines.append("")
        lines.append(f"[{title}]")
        for key, value in values.items():
            if isinstance(value, list) and value and isinstance(value[0], list):
                lines.append(f"{key} = [")
                lines += [f"    {_toml_value(v)}," for v in value]
                lines.append("]")
            else:
                lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _titan_parts(chunks: Sequence[int]) -> list[list[str]]:
    parts: list[list[str]] = []
    first = 0
    for n in chunks:
        parts.append([f"layers.{i}" for i in range(first, first + n)])
        first += n
    parts[0].insert(0, "tok_embeddings")
    parts[-1] += ["norm", "output"]
    return parts


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")


# ---------------------------------------------------------------------------- DeepSpeed


def deepspeed(est: Estimate, job: TrainingJob) -> str:
    """A DeepSpeed JSON config; ``"_comment"`` holds what DeepSpeed's config cannot say."""
    m, x = job.model, est.layout
    notes = _header(est, job, "DeepSpeed", "deepspeed")
    dp = x.dp
    notes.append(f"train_batch_size = micro-batch x accumulation x data-parallel ranks = "
                 f"{x.micro_batch} x {est.num_microbatches} x {dp} = {est.global_batch}; "
                 f"world size {x.gpus:,} = TP{x.tp} x PP{x.pp} x CP{x.cp} x DP{x.dp}")
    if x.tp > 1 or x.pp > 1:
        notes.append(f"TP{x.tp} and PP{x.pp} are set by the model code (e.g. "
                     "Megatron-DeepSpeed --tensor-model-parallel-size, DeepSpeed "
                     "PipelineModule(num_stages=...)), not by this file")
    if x.vp > 1:
        notes.append(f"VP{x.vp}: DeepSpeed's pipeline engine has no interleaved schedule; "
                     "without it the bubble is larger than planned")
    if x.ep > 1:
        notes.append(f"EP{x.ep}: set by the model code (deepspeed.moe.layer.MoE(ep_size="
                     f"{x.ep}, num_experts={m.experts}, k={m.top_k}))")
    if job.precision == "fp8":
        notes.append("FP8: DeepSpeed's config has no FP8 switch; the model code must use "
                     "Transformer Engine layers. BF16 is set for everything else")
    if job.grad_dtype == "bf16":
        notes.append("BF16 gradients as planned: set DeepSpeed's communication_data_type to "
                     "\"bf16\" if your version has it (not checked here)")
    if x.recompute == "selective":
        notes.append("selective recomputation has no DeepSpeed config key: the model code "
                     "must checkpoint the attention core itself")
    config: dict[str, Any] = {
        "_comment": notes,
        "train_batch_size": est.global_batch,
        "train_micro_batch_size_per_gpu": x.micro_batch,
        "gradient_accumulation_steps": est.num_microbatches,
        "bf16": {"enabled": True},
        "zero_optimization": {"stage": x.zero_stage, "overlap_comm": job.grad_reduce_overlap},
    }
    if x.cp > 1:
        config["sequence_parallel_size"] = x.cp
        notes.append(f"CP{x.cp} as DeepSpeed-Ulysses sequence parallelism (all-to-all over "
                     "heads); the plan times Megatron-style ring attention")
    if x.recompute == "full":
        config["activation_checkpointing"] = {
            "partition_activations": x.tp > 1,
            "contiguous_memory_optimization": False,
            "cpu_checkpointing": False,
            "number_checkpoints": m.layers,
        }
        notes.append("activation_checkpointing configures deepspeed.checkpointing; the model "
                     "code must wrap each layer with deepspeed.checkpointing.checkpoint")
    return json.dumps(config, indent=2) + "\n"


__all__ = ["FOLLOWS", "FORMATS", "export"]
