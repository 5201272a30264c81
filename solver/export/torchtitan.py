"""torchtitan: a TOML job config (``torchtitan/config/job_config.py``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from solver.errors import SpecError
from solver.estimate import Estimate
from solver.export.common import (
    TORCHTITAN_COMMIT,
    comment_lines,
    header,
    refuse_unrunnable,
    stage_layers,
    tokens_text,
    train_steps,
)
from solver.launchers import TORCHTITAN_MODELS, flavor_differences
from solver.layout_options import ALTERNATE
from solver.specs import TrainingJob

#: The model-args field a fact is held in, for the note that asks for a registered flavor.
_TITAN_FIELDS = {"rope_theta": "rope_theta", "norm_eps": "norm_eps", "dropout": "(none)",
                 "rope_scaling": "(the flavor's RoPE code)", "router_score": "score_func",
                 "router_scaling": "route_scale", "router_expert_bias": "load_balance_coeff",
                 "router_norm_topk": "(none: sigmoid scores only)",
                 "router_balance": "(none: no balancing loss)",
                 "expert_group_topk": "(none: n_limited_groups is not read)",
                 "mtp_layers": "(none: no multi-token prediction module)"}


def torchtitan(est: Estimate, job: TrainingJob) -> str:
    """A torchtitan TOML job config (``--job.config_file``)."""
    refuse_unrunnable("torchtitan", est, job)  # also a model it has no flavor of (launchers)
    m, x = job.model, est.layout
    notes: list[str] = []
    name, flavor = TORCHTITAN_MODELS[m.name]
    _titan_refusals(est, job)
    notes += _titan_model_notes(job, name, flavor)
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

    parallel = _titan_parallelism(est, job, notes)

    # none, full or alternate matmuls (torchtitan's per-op selective checkpointing):
    # solver.launchers refuses module-wise recomputation for torchtitan.
    ac: dict[str, Any] = {"mode": x.recompute}
    if x.recompute == ALTERNATE:
        ac = {"mode": "selective", "selective_ac_option": "op"}

    sections: list[tuple[str, dict[str, Any]]] = [
        ("job", {"description": f"gpuplan: {m.name}, {tokens_text(job.tokens)} tokens, "
                 f"{x.gpus:,} x {x.accelerator}", "dump_folder": "./outputs"}),
        ("model", model),
        ("training", training),
        ("parallelism", parallel),
        ("activation_checkpoint", ac),
    ]
    if job.precision == "fp8":
        sections.append(("float8", _titan_float8(est, name, notes)))
    if not job.flash_attention:
        notes.append("the plan assumes attention that stores the score matrix")
    if job.dropout:
        notes.append(f"dropout {job.dropout:g}: torchtitan's models and job config have no "
                     "dropout; they train without, and hold less activation memory than "
                     "planned")
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
    if x.zero_stage == 0:
        # DDP: torchtitan replicates over data_parallel_replicate_degree without FSDP.
        parallel["data_parallel_replicate_degree"] = x.dp
        parallel["data_parallel_shard_degree"] = 1
    else:
        parallel["data_parallel_replicate_degree"] = 1
        parallel["data_parallel_shard_degree"] = x.dp
    if x.zero_stage == 0:
        parallel["fsdp_reshard_after_forward"] = "default"  # no FSDP: not read
    elif x.zero_stage == 3:
        # torchtitan's "default" keeps the weights gathered when pipeline parallelism is on
        # (the ZeRO-2 footprint); the plan's ZeRO-3 frees them after each forward.
        parallel["fsdp_reshard_after_forward"] = "always" if x.pp > 1 else "default"
    else:
        # ZeRO-2 (solver.launchers refuses ZeRO-1): the weights stay gathered from the
        # forward to the backward, gradients and optimizer states sharded.
        parallel["fsdp_reshard_after_forward"] = "never"
    parallel["tensor_parallel_degree"] = x.tp
    parallel["pipeline_parallel_degree"] = x.pp
    if x.pp > 1:
        parallel["pipeline_parallel_schedule"] = "Interleaved1F1B" if x.vp > 1 else "1F1B"
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
                     "(dp2ep: the experts shard over EP of the DP x CP ranks)")
    return parallel


def _titan_refusals(est: Estimate, job: TrainingJob) -> None:
    """Plans torchtitan refuses at start-up: ``ParallelDims._validate`` (EP divides
    ``dp_shard x cp`` and is a multiple of CP)."""
    x = est.layout
    if x.ep > 1 and (x.ep % x.cp or (x.dp * x.cp) % x.ep):
        raise SpecError(f"export: torchtitan's ParallelDims needs EP to be a multiple of CP and "
                        f"to divide DP x CP; got EP{x.ep} with DP{x.dp} CP{x.cp}")


def _titan_float8(est: Estimate, name: str, notes: list[str]) -> dict[str, Any]:
    """The ``[float8]`` section torchtitan accepts for the plan.

    ``Float8Converter`` (``components/quantization/float8.py``) refuses a ``recipe_name``
    together with ``enable_fsdp_float8_all_gather``: tensorwise scaling with FP8 weight
    gathers is the converter's default when ``recipe_name`` is unset. ``deepseek_v3``'s
    ``parallelize_deepseekv3`` refuses float8 other than rowwise under TP ("float8 tensorwise
    TP is not tested"), so a DeepSeek-V3 plan with TP > 1 gets ``recipe_name = "rowwise"``
    and gathers its weights in BF16.
    """
    x = est.layout
    if name == "deepseek_v3" and x.tp > 1:
        notes.append("FP8 with TP: torchtitan's deepseek_v3 runs float8 under TP with the "
                     "rowwise recipe only, which gathers weights in BF16 (no FP8 all-gather)")
        return {"recipe_name": "rowwise", "filter_fqns": ["output"]}
    gather = x.dp > 1
    return {"enable_fsdp_float8_all_gather": gather,
            "precompute_float8_dynamic_scale_for_fsdp": gather,
            "filter_fqns": ["output"]}


def _titan_model_notes(job: TrainingJob, name: str, flavor: str) -> list[str]:
    """Where the flavor's model args differ from the model's facts (``solver.launchers``
    refuses such a plan, so this stays empty for every plan the search returns; a plan built
    by hand still says it)."""
    differ = [f"{key} {_fact_text(value)} (flavor: {_fact_text(held)}, field "
              f"{_TITAN_FIELDS[key]})" for key, value, held in flavor_differences(job, name)]
    if not differ:
        return []
    return [f"torchtitan's {name} {flavor} flavor at {TORCHTITAN_COMMIT[:12]} differs from "
            f"the model in: {'; '.join(differ)}. The job config cannot set these: register a "
            "flavor with the model's values where a field exists; the rest is how torchtitan "
            "trains this model"]


def _fact_text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


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
