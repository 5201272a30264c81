"""The launchers' side of ``check_exports.py``: run in a subprocess with a launcher's source
checkout first on ``PYTHONPATH``, it hands one exported file to that launcher's own parsing
and validation and prints what the launcher made of it (``@@RESULT`` and a JSON object).

    python benchmarks/export_children.py megatron|torchtitan|deepspeed FILE WORLD DP MOE
    python benchmarks/export_children.py --probe    (DeepSpeed's ZeRO-3 verdict on MoE)

What is stood in for on a machine without GPUs is listed in ``check_exports.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


class _Stop(Exception):
    """Raised by a stand-in where the launcher's code would need GPUs or process groups."""


def _megatron_child(path: str, world: int) -> dict[str, Any]:
    words = subprocess.run(
        ["bash", "-c", 'source "$1"; printf "%s\\0" "${MEGATRON_ARGS[@]}"; printf "\\1\\0"; '
         'printf "%s" "${CUDA_DEVICE_MAX_CONNECTIONS-<unset>}"', "bash", path],
        check=True, capture_output=True, text=True).stdout.split("\0")
    cut = words.index("\1")
    argv, connections = words[:cut], words[cut + 1]
    os.environ.update(RANK="0", WORLD_SIZE=str(world), LOCAL_RANK="0")
    os.environ.pop("CUDA_DEVICE_MAX_CONNECTIONS", None)
    if connections != "<unset>":
        os.environ["CUDA_DEVICE_MAX_CONNECTIONS"] = connections
    import torch
    torch.cuda.get_device_capability = lambda *a, **k: (9, 0)  # type: ignore[assignment]
    import megatron.core.utils as core_utils
    from packaging.version import Version
    try:
        te_missing = core_utils.get_te_version() is None
    except Exception:
        te_missing = True
    if te_missing:
        core_utils.get_te_version = lambda: Version("2.8.0")  # type: ignore[assignment]
        import megatron.core.models.common.embeddings.rope_utils as rope_utils
        if rope_utils.fused_apply_rotary_pos_emb is None:
            rope_utils.fused_apply_rotary_pos_emb = lambda *a, **k: None
    import megatron.training.arguments as margs
    margs.get_device_arch_version = lambda: 9  # type: ignore[assignment]
    sys.argv = ["pretrain_gpt.py", *argv]
    args = margs.parse_args()
    margs.validate_args(args)
    config = margs.core_transformer_config_from_args(args)
    keys = ("rotary_base", "norm_epsilon", "hidden_dropout", "attention_dropout",
            "qk_layernorm", "moe_router_score_function", "moe_router_enable_expert_bias",
            "moe_router_topk_scaling_factor", "moe_router_num_groups", "moe_router_group_topk",
            "moe_router_load_balancing_type", "moe_aux_loss_coeff", "moe_router_pre_softmax",
            "use_distributed_optimizer", "use_megatron_fsdp", "data_parallel_sharding_strategy",
            "tensor_model_parallel_size", "pipeline_model_parallel_size", "data_parallel_size",
            "expert_model_parallel_size", "context_parallel_size", "mtp_num_layers",
            "num_experts")
    out = {k: getattr(args, k, None) for k in keys}
    out["rope_type"] = getattr(config, "rope_type", "rope")
    out["rotary_scaling_factor"] = getattr(config, "rotary_scaling_factor", None)
    out["config_class"] = type(config).__name__
    return out


def _titan_child(path: str, world: int) -> dict[str, Any]:
    import torch
    import torchtitan.components.quantization.float8 as tfloat8
    import torchtitan.models  # noqa: F401  (registers the train specs)
    import torchtitan.models.deepseek_v3.model.args as dsargs
    import torchtitan.models.llama3.infra.pipeline as tpipe
    import torchtitan.protocols.train_spec as specs
    from torchtitan.config import ConfigManager
    from torchtitan.distributed import ParallelDims
    from torchtitan.protocols.model_converter import build_model_converters
    for module in (tfloat8, dsargs):
        module.has_cuda_capability = lambda major, minor: (major, minor) <= (9, 0)
    job = ConfigManager().parse_args(["--job.config_file", path])
    p = job.parallelism
    dims = ParallelDims(dp_shard=p.data_parallel_shard_degree,
                        dp_replicate=p.data_parallel_replicate_degree,
                        cp=p.context_parallel_degree, tp=p.tensor_parallel_degree,
                        pp=p.pipeline_parallel_degree, ep=p.expert_parallel_degree,
                        world_size=world)
    spec = specs.get_train_spec(job.model.name)
    model_args = spec.model_args[job.model.flavor]
    model_args.update_from_config(job)
    with torch.device("meta"):
        model = spec.model_cls(model_args)
    # Trainer.__init__'s batch checks (torchtitan/train.py), restated.
    dp = dims.dp_replicate * dims.dp_shard
    gb, lb = job.training.global_batch_size, job.training.local_batch_size
    assert gb > 0 and gb % (lb * dp) == 0, f"global batch {gb} % (local {lb} * dp {dp}) != 0"
    converters = build_model_converters(job, dims)
    converters.convert(model)

    class Mesh:
        def __getitem__(self, key: Any) -> Any:
            raise _Stop(f"device mesh {key}")

    dims._world_mesh = Mesh()
    reached = []
    if dims.pp_enabled:
        names: list[list[str]] = []

        def split(model: Any, pp_mesh: Any, schedule: str, device: Any,
                  module_names_per_stage: list[list[str]]) -> Any:
            names.extend(module_names_per_stage)
            raise _Stop("pipeline_module_split")

        class PPMesh:
            def __getitem__(self, key: Any) -> Any:
                if key == "pp":
                    return None
                raise _Stop(f"device mesh {key}")

        dims._world_mesh = PPMesh()
        tpipe.pipeline_module_split = split
        try:
            spec.pipelining_fn(model, dims, job, torch.device("meta"), model_args,
                               spec.parallelize_fn, None)
        except _Stop as stop:
            reached.append(str(stop))
        have = {n for n, _ in model.named_children()} | {
            f"layers.{n}" for n, _ in model.layers.named_children()}
        missing = sorted({n for stage in names for n in stage} - have)
        assert names and not missing, f"pipeline stages name modules not in the model: {missing}"
        dims._world_mesh = Mesh()
    try:
        spec.parallelize_fn(model, dims, job)
    except _Stop as stop:
        reached.append(str(stop))
    fields = ("rope_theta", "norm_eps", "score_func", "route_scale", "load_balance_coeff",
              "n_expert_groups", "n_limited_groups", "rope_factor", "original_seq_len")
    out = {k: getattr(model_args, k, None) for k in fields}
    out.update(dp_shard=dims.dp_shard, dp_replicate=dims.dp_replicate, tp=dims.tp, pp=dims.pp,
               ep=dims.ep, reshard=p.fsdp_reshard_after_forward,
               float8=("rowwise" if job.float8.recipe_name else
                       "tensorwise" + (" +fp8 gather" if
                                       job.float8.enable_fsdp_float8_all_gather else ""))
               if "float8" in job.model.converters else "none",
               stopped_at=reached)
    return out


def _deepspeed_child(path: str, world: int, dp: int, moe: bool) -> dict[str, Any]:
    import deepspeed.comm as dscomm
    dscomm.get_rank = lambda *a, **k: 0
    from deepspeed.runtime.config import DeepSpeedConfig
    config = json.loads(Path(path).read_text())

    class MPU:
        def get_data_parallel_world_size(self) -> int:
            return dp

        def get_model_parallel_world_size(self) -> int:
            return world // dp

    ds = DeepSpeedConfig(config, mpu=MPU())
    out = {"zero_stage": int(ds.zero_optimization_stage), "train_batch_size": ds.train_batch_size,
           "micro": ds.train_micro_batch_size_per_gpu,
           "accumulation": ds.gradient_accumulation_steps, "bf16": ds.bfloat16_config.enabled,
           "world_size": ds.world_size}
    if moe:
        out["zero3_moe"] = _deepspeed_zero3_moe_verdict()
    return out


def _deepspeed_zero3_moe_verdict() -> str:
    """DeepSpeed's own ZeRO-3 check on a stand-in engine whose model holds a native MoE."""
    import torch
    from deepspeed.moe.layer import MoE
    from deepspeed.runtime.engine import DeepSpeedEngine
    layer = MoE.__new__(MoE)
    torch.nn.Module.__init__(layer)

    class Engine:
        has_moe_layers = True
        module = torch.nn.Sequential(layer)

    try:
        DeepSpeedEngine._validate_zero3_moe_compatibility(Engine())  # type: ignore[arg-type]
    except AssertionError as refusal:
        return f"refused: {refusal}"
    return "accepted"


def child_main(argv: list[str]) -> None:
    kind, path, world, dp, moe = argv[0], argv[1], int(argv[2]), int(argv[3]), argv[4] == "1"
    try:
        if kind == "megatron":
            out = _megatron_child(path, world)
        elif kind == "torchtitan":
            out = _titan_child(path, world)
        else:
            out = _deepspeed_child(path, world, dp, moe)
        result = {"ok": True, "parsed": out}
    except BaseException as error:  # noqa: BLE001 - any launcher refusal is the answer
        lines = str(error).strip().splitlines() or [""]
        result = {"ok": False, "error": f"{type(error).__name__}: {lines[0][:160]}"}
    print("@@RESULT " + json.dumps(result, default=str), flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--probe"]:
        print("@@PROBE " + _deepspeed_zero3_moe_verdict(), flush=True)
    else:
        child_main(sys.argv[1:])
