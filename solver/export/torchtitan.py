"""torchtitan: a TOML job config (``torchtitan/config/job_config.py``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from solver.estimate import Estimate
from solver.export.common import comment_lines, header, stage_layers, tokens_text, train_steps
from solver.specs import TrainingJob

#: torchtitan ``[model]`` name and flavor of gpuplan's presets that torchtitan ships.
TORCHTITAN_MODELS = {
    "llama3-8b": ("llama3", "8B"),
    "llama3-70b": ("llama3", "70B"),
    "llama3.1-405b": ("llama3", "405B"),
    "deepseek-v3": ("deepseek_v3", "671B"),
}


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

    parallel = _titan_parallelism(est, job, notes)

    mode = x.recompute if x.recompute in ("none", "selective", "full") else "selective"
    ac: dict[str, Any] = {"mode": mode}
    if x.recompute == "selective":
        ac["selective_ac_option"] = "op"
        notes.append("selective recomputation: torchtitan's per-op policy (\"op\") is the "
                     "nearest to the plan's (attention scores only)")
    elif mode == "selective":
        ac["selective_ac_option"] = "op"
        notes.append(f"recomputation {x.recompute}: torchtitan has no per-module choice; its "
                     "per-op policy (\"op\") is the nearest")

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
    notes += _titan_memory_notes(job)
    notes.append("set [model] tokenizer_path and [training] dataset for your data")

    lines = comment_lines([*header(est, job, "torchtitan", "torchtitan"),
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


def _titan_parallelism(est: Estimate, job: TrainingJob, notes: list[str]) -> dict[str, Any]:
    """The ``[parallelism]`` section: FSDP2 sharding, TP, the pipeline and its split, CP, EP
    (what differs from the plan goes into ``notes``)."""
    m, x = job.model, est.layout
    parallel: dict[str, Any] = {}
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
        if x.schedule != "1f1b":
            notes.append(f"schedule: the plan's {x.schedule} is written as 1F1B; its bubble "
                         "and memory are the plan's, not 1F1B's")
        parallel["pipeline_parallel_microbatch_size"] = x.micro_batch
        chunks = stage_layers(m.layers, x.pp, x.vp,
                              int(x.pipeline_split in ("embedding", "both")),
                              int(x.pipeline_split in ("loss", "both")), m.mtp_layers)
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
    return parallel


def _titan_memory_notes(job: TrainingJob) -> list[str]:
    """What the job config cannot say of dropout, FP8 weights and activation offload."""
    notes = []
    if job.dropout:
        notes.append(f"dropout {job.dropout:g}: torchtitan's models and job config have no "
                     "dropout; they train without, and hold less activation memory than "
                     "planned")
    if job.fp8_params:
        notes.append("FP8 weights: torchtitan has no FP8-only weights; "
                     "float8.enable_fsdp_float8_all_gather (written) gathers them in float8, "
                     "the nearest, but each layer's weights stay in "
                     "training.mixed_precision_param, so memory per GPU is higher than planned")
    if job.activation_offload:
        notes.append("activation offload: torchtitan's job config has no activation offload "
                     "(training.enable_cpu_offload moves FSDP's weights, gradients and "
                     "optimizer states, not activations): the activations stay on the GPU and "
                     "memory per GPU is higher than planned")
    return notes


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
