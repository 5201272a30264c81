"""DeepSpeed: a JSON config (``deepspeed/runtime/constants.py``)."""

from __future__ import annotations

import json
from typing import Any

from solver.estimate import Estimate
from solver.export.common import header, number_text, refuse_unrunnable
from solver.specs import TrainingJob


def deepspeed(est: Estimate, job: TrainingJob) -> str:
    """A DeepSpeed JSON config; ``"_comment"`` holds what DeepSpeed's config cannot say."""
    # solver.launchers refuses what DeepSpeed cannot start: an MoE model at ZeRO-3 (native
    # MoE, DeepSpeedEngine._validate_zero3_moe_compatibility), ZeRO-2/3 with a pipeline,
    # interleaving, uneven splits, CP, module-wise recomputation, FP8 weights, offload.
    refuse_unrunnable("deepspeed", est, job)
    m, x = job.model, est.layout
    notes = header(est, job, "DeepSpeed", "deepspeed")
    dp = x.dp
    notes.append(f"train_batch_size = micro-batch x accumulation x data-parallel ranks = "
                 f"{x.micro_batch} x {est.num_microbatches} x {dp} = {est.global_batch}; "
                 f"world size {x.gpus:,} = TP{x.tp} x PP{x.pp} x CP{x.cp} x DP{x.dp}")
    if x.tp > 1 or x.pp > 1:
        notes.append(f"TP{x.tp} and PP{x.pp} are set by the model code (e.g. "
                     "Megatron-DeepSpeed --tensor-model-parallel-size, DeepSpeed "
                     "PipelineModule(num_stages=...)), not by this file")
    if x.ep > 1:
        notes.append(f"EP{x.ep}: set by the model code (deepspeed.moe.layer.MoE(ep_size="
                     f"{x.ep}, num_experts={m.experts}, k={m.top_k}))")
    notes.append(_model_facts(job))
    if job.precision == "fp8":
        notes.append("FP8: DeepSpeed's config has no FP8 switch; the model code must use "
                     "Transformer Engine layers. BF16 is set for everything else")
    if job.dropout:
        notes.append(f"dropout {job.dropout:g}: set by the model code, not by this file")
    config: dict[str, Any] = {
        "_comment": notes,
        "train_batch_size": est.global_batch,
        "train_micro_batch_size_per_gpu": x.micro_batch,
        "gradient_accumulation_steps": est.num_microbatches,
        "bf16": {"enabled": True},
        "zero_optimization": {"stage": x.zero_stage, "overlap_comm": job.grad_reduce_overlap},
    }
    if job.grad_dtype == "bf16":
        # constants.py COMMUNICATION_DATA_TYPE; config.py get_communication_data_type.
        config["communication_data_type"] = "bf16"
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


def _model_facts(job: TrainingJob) -> str:
    """The model's architecture facts, which DeepSpeed's config cannot hold: the model code
    must build them."""
    m = job.model
    facts = [f"norm epsilon {m.norm_eps:g}"]
    if m.position_embedding == "rope":
        facts.insert(0, f"RoPE base {number_text(m.rope_theta)}" + (
            "" if m.rope_scaling == "none" else
            f", {m.rope_scaling} scaling x{m.rope_scaling_factor:g} from "
            f"{m.rope_original_seq_len}"))
    if m.qk_norm:
        facts.append("query/key norms")
    if m.is_moe:
        router = f"router: {m.router_score} scores"
        if m.router_norm_topk:
            router += ", top-k weights renormalised"
        if m.router_expert_bias:
            router += ", expert bias (aux-loss-free balancing)"
        if m.router_scaling != 1.0:
            router += f", weights x{m.router_scaling:g}"
        if m.expert_groups and m.expert_group_topk:
            router += f", top-{m.expert_group_topk} of {m.expert_groups} expert groups"
        if m.router_balance != "none":
            router += f", {m.router_balance}" + (
                f" x{m.router_aux_loss_coeff:g}" if m.router_aux_loss_coeff else "")
        facts.append(router)
    return ("model facts the model code must build (no DeepSpeed config key holds them): "
            + "; ".join(facts))
