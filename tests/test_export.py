"""``solver.export`` and ``gpuplan solve --export``: launcher configs checked against upstream.

- Megatron-LM: every flag the exporter may write is in ``tests/data/megatron_flags.txt`` (the
  flags as declared in ``megatron/training/arguments.py`` at the commit the module names);
  every exported argument list parses with an argparse parser built from that file (types
  and choices included), and passes the checks ``validate_args`` makes on the layout (world
  size, batch, pipeline split, layout string, overlap prerequisites).
- torchtitan: the TOML parses with ``tomllib``, uses only the sections and fields (with their
  types) in ``tests/data/torchtitan_fields.txt``, and describes the plan's layout and batch.
- DeepSpeed: the JSON parses, and ``train_batch_size = micro x accumulation x dp``.
- What a launcher cannot express is said in a comment.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

import solver
from solver.cli import run
from solver.export import (
    DEEPSPEED_COMMIT,
    FOLLOWS,
    MEGATRON_FLAGS,
    MEGATRON_LM_COMMIT,
    TORCHTITAN_COMMIT,
    export,
    stage_layers,
)
from solver.launchers import why_not

DATA = Path(__file__).parent / "data"

#: DeepSpeed config keys written, from deepspeed/runtime/constants.py (TRAIN_BATCH_SIZE,
#: TRAIN_MICRO_BATCH_SIZE_PER_GPU, GRADIENT_ACCUMULATION_STEPS, BFLOAT16) and the ZeRO,
#: activation-checkpointing and Ulysses configs at DEEPSPEED_COMMIT.
DEEPSPEED_KEYS = {"_comment", "train_batch_size", "train_micro_batch_size_per_gpu",
                  "gradient_accumulation_steps", "bf16", "zero_optimization",
                  "activation_checkpointing", "sequence_parallel_size",
                  "communication_data_type"}


def _verified(path: Path) -> dict[str, str]:
    kinds: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, kind = line.split()[:2]
            kinds[name] = kind
    return kinds


MEGATRON_VERIFIED = _verified(DATA / "megatron_flags.txt")
TORCHTITAN_VERIFIED = _verified(DATA / "torchtitan_fields.txt")


def job_and_estimate(model: str, tokens: float, global_batch: int, precision: str = "bf16",
                     job_fields: dict[str, Any] | None = None,
                     **layout: Any) -> tuple[solver.TrainingJob, solver.Estimate]:
    job = solver.TrainingJob(model=solver.model(model), tokens=tokens,
                             global_batch=global_batch, precision=precision,
                             **(job_fields or {}))
    return job, solver.evaluate(job, solver.Layout(**layout))


#: Plans of the three models of the issue: GPT-3 175B (Narayanan et al. 2021's layout),
#: Llama 3.1 405B with context parallelism and interleaving (even and uneven pipeline
#: splits), DeepSeek-V3 with expert parallelism in FP8 (uneven split), and two ZeRO variants.
CASES = {
    "gpt3": ("gpt3-175b", 300e9, 1536, "bf16",
             dict(accelerator="a100-sxm4-80gb", tp=8, pp=8, dp=16, micro_batch=1,
                  recompute="full")),
    "llama405-even": ("llama3.1-405b", 15.6e12, 2016, "bf16",
                      dict(accelerator="h100-sxm5-80gb", tp=8, pp=21, dp=48, cp=2, vp=2,
                           zero_stage=1)),
    "llama405-uneven": ("llama3.1-405b", 15.6e12, 1024, "bf16",
                        dict(accelerator="h100-sxm5-80gb", tp=8, pp=8, dp=16, cp=2, vp=2,
                             zero_stage=1, recompute="full", pipeline_split="both")),
    "deepseek": ("deepseek-v3", 14.8e12, 4096, "fp8",
                 dict(accelerator="h800", tp=4, pp=32, dp=16, ep=2, zero_stage=1,
                      pipeline_split="both")),
    "deepseek-ep64": ("deepseek-v3", 14.8e12, 4096, "fp8",
                      dict(accelerator="h800", tp=1, pp=16, dp=128, ep=64, zero_stage=1,
                           recompute="selective", pipeline_split="both")),
    "zero3": ("llama3-70b", 15e12, 1024, "bf16",
              dict(accelerator="h100-sxm5-80gb", tp=8, pp=1, dp=64, zero_stage=3)),
    "zero2-gpt3": ("gpt3-175b", 300e9, 1536, "bf16",
                   dict(accelerator="a100-sxm4-80gb", tp=8, pp=8, dp=16, zero_stage=2)),
    "llama8b-offload": ("llama3-8b", 1e12, 512, "fp8",
                        dict(accelerator="h100-sxm5-80gb", tp=2, pp=1, dp=32, zero_stage=1)),
    # Plans torchtitan or DeepSpeed start (solver.launchers): ZeRO-2 with a pipeline,
    # DeepSeek-V3 at ZeRO-3 and at ZeRO-2 with TP2 (rowwise float8), Mixtral at ZeRO-2 with EP,
    # Llama 3 70B at ZeRO-3 by DeepSpeed.
    "llama70-z2": ("llama3-70b", 15e12, 1024, "bf16",
                   dict(accelerator="h100-sxm5-80gb", tp=8, pp=4, dp=32, zero_stage=2)),
    "deepseek-z3": ("deepseek-v3", 14.8e12, 4096, "fp8",
                    dict(accelerator="h800", tp=1, pp=16, dp=128, ep=64, zero_stage=3,
                         pipeline_split="both")),
    "deepseek-tp2-z2": ("deepseek-v3", 14.8e12, 4096, "fp8",
                        dict(accelerator="h800", tp=2, pp=16, dp=64, ep=64, zero_stage=2,
                             pipeline_split="both")),
    "mixtral-z2": ("mixtral-8x7b", 1e12, 512, "bf16",
                   dict(accelerator="h100-sxm5-80gb", tp=2, pp=1, dp=64, ep=8, zero_stage=2)),
    "llama70-ds-z3": ("llama3-70b", 15e12, 1024, "bf16",
                      dict(accelerator="h100-sxm5-80gb", tp=1, pp=1, dp=512, zero_stage=3)),
    # torchtitan's own default recomputation (per-op selective checkpointing); Megatron-LM
    # and DeepSpeed refuse it.
    "llama8b-alternate": ("llama3-8b", 1e12, 512, "bf16",
                          dict(accelerator="h100-sxm5-80gb", tp=1, pp=1, dp=64, zero_stage=3,
                               recompute="alternate_matmuls")),
}
#: Job fields beyond the model, tokens, batch and precision, by case: dropout, FP8 weights
#: and activation offload (Megatron-LM --hidden-dropout, --fp8-param-gather,
#: --cpu-offloading-num-layers).
JOB_FIELDS = {"llama8b-offload": dict(dropout=0.1, fp8_params=True, activation_offload=True),
              "llama70-ds-z3": dict(zero3_impl="deepspeed")}


def refused(fmt: str, job: solver.TrainingJob, est: solver.Estimate) -> bool:
    """True (after checking the refusal) when ``fmt``'s launcher cannot start the plan:
    the export then fails with solver.launchers.why_not's reason."""
    reason = why_not(fmt, job, est.layout)
    if reason is None:
        return False
    with pytest.raises(solver.SpecError) as error:
        export(est, fmt, job=job)
    assert reason in str(error.value)
    return True


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> tuple[solver.TrainingJob, solver.Estimate]:
    model, tokens, gb, precision, layout = CASES[request.param]
    return job_and_estimate(model, tokens, gb, precision, JOB_FIELDS.get(request.param),
                            **layout)


# ---------------------------------------------------------------------------- Megatron-LM


def megatron_argv(text: str) -> list[str]:
    """The words of ``MEGATRON_ARGS=( ... )`` (shell comments dropped)."""
    body = text[text.index("MEGATRON_ARGS=(") + len("MEGATRON_ARGS=("):text.rindex(")")]
    return shlex.split(body, comments=True)


def megatron_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(allow_abbrev=False, exit_on_error=False)
    for flag, kind in MEGATRON_VERIFIED.items():
        if kind == "store_true":
            parser.add_argument(flag, action="store_true")
        elif kind.startswith("choices="):
            parser.add_argument(flag, choices=kind.removeprefix("choices=").split("|"))
        elif kind.startswith("list="):
            parser.add_argument(flag, nargs="*", choices=kind.removeprefix("list=").split("|"))
        else:
            parser.add_argument(flag, type={"int": int, "float": float, "str": str}[kind])
    return parser


def parse_layout_string(layout: str) -> list[list[str]]:
    """Megatron-LM's layout grammar: ',' cosmetic; '(x)*n' and 'c*n' repeat; '|' splits."""
    text = layout.replace(",", "")
    text = re.sub(r"\(([^)]+)\)\*(\d+)", lambda m: m.group(1) * int(m.group(2)), text)
    text = re.sub(r"(.)\*(\d+)", lambda m: m.group(1) * int(m.group(2)), text)
    return [list(stage) for stage in text.split("|")]


def test_every_flag_the_exporter_knows_was_verified_upstream() -> None:
    header = (DATA / "megatron_flags.txt").read_text()
    assert MEGATRON_LM_COMMIT in header
    assert MEGATRON_LM_COMMIT[:12] in FOLLOWS["megatron"]
    missing = [f for f in MEGATRON_FLAGS if f not in MEGATRON_VERIFIED]
    assert missing == []


def test_megatron_export_parses_with_the_upstream_flags(
        case: tuple[solver.TrainingJob, solver.Estimate]) -> None:
    job, est = case
    if refused("megatron", job, est):
        return
    text = export(est, "megatron", job=job)
    # Every flag named anywhere, comments included, exists upstream.
    named = set(re.findall(r"(?<![\w-])--[a-z0-9][a-z0-9-]*", text))
    assert named <= set(MEGATRON_VERIFIED), named - set(MEGATRON_VERIFIED)
    assert named <= set(MEGATRON_FLAGS)
    args = megatron_parser().parse_args(megatron_argv(text))
    x = est.layout
    m = job.model
    # The layout, batch and shape come through.
    assert (args.tensor_model_parallel_size, args.pipeline_model_parallel_size,
            args.context_parallel_size) == (x.tp, x.pp, x.cp)
    assert (args.expert_model_parallel_size or 1) == x.ep
    assert args.micro_batch_size == x.micro_batch
    assert args.global_batch_size == est.global_batch
    assert args.train_iters == math.ceil(job.tokens / (est.global_batch * job.seq_len))
    assert (args.num_layers, args.hidden_size, args.num_attention_heads) == (
        m.layers, m.hidden, m.heads)
    assert args.seq_length == job.seq_len
    assert args.bf16
    assert (args.fp8_format == "hybrid") == (job.precision == "fp8")
    assert args.use_distributed_optimizer == (x.zero_stage >= 1)
    assert args.sequence_parallel == (x.tp > 1)
    assert args.recompute_granularity == (None if x.recompute == "none" else x.recompute)
    if m.is_moe:
        assert (args.num_experts, args.moe_router_topk) == (m.experts, m.top_k)
    # The checks of Megatron-LM's validate_args (arguments.py) that concern the layout.
    world = x.tp * x.pp * x.cp * x.dp
    assert world % (x.tp * x.pp * x.cp) == 0 and world == x.gpus
    dp = world // (x.tp * x.pp * x.cp)
    assert args.global_batch_size % (args.micro_batch_size * dp) == 0
    assert args.max_position_embeddings >= args.seq_length
    if x.cp > 1:
        assert args.seq_length % (2 * x.cp) == 0
    if args.recompute_granularity == "selective":
        assert args.recompute_method is None
    if args.tp_comm_overlap:
        assert args.sequence_parallel
    if args.overlap_param_gather:
        assert args.use_distributed_optimizer and args.overlap_grad_reduce
    if m.is_moe:
        assert m.experts % x.ep == 0
    assert sum(v is not None for v in (args.num_layers_per_virtual_pipeline_stage,
                                       args.pipeline_model_parallel_layout)) <= 1
    if args.pipeline_model_parallel_layout:
        stages = parse_layout_string(args.pipeline_model_parallel_layout)
        assert len(stages) % x.pp == 0 and len(stages) // x.pp == x.vp
        flat = [c for stage in stages for c in stage]
        assert flat[0] == "E" and flat[-1] == "L"
        assert flat.count("E") == flat.count("L") == 1
        assert flat.count("t") == m.layers
        per_rank = [sum(stages[c].count("t") for c in range(r, len(stages), x.pp))
                    for r in range(x.pp)]
        assert max(per_rank) == math.ceil(m.layers / x.pp)  # the step model's busiest stage
    elif x.vp > 1:
        assert m.layers % x.pp == 0
        assert (m.layers // x.pp) % args.num_layers_per_virtual_pipeline_stage == 0
        assert (m.layers // x.pp) // args.num_layers_per_virtual_pipeline_stage == x.vp
    else:
        assert m.layers % x.pp == 0
    if m.dense_layers:
        assert args.moe_layer_freq == f"([0]*{m.dense_layers}+[1]*{m.moe_layers})"
    # ZeRO-2/3 run as Megatron-FSDP, which validate_args refuses with
    # CUDA_DEVICE_MAX_CONNECTIONS=1 and without --ckpt-format fsdp_dtensor; TP or CP > 1
    # otherwise needs it set to 1 (before Blackwell).
    assert args.use_megatron_fsdp == (x.zero_stage >= 2)
    if x.zero_stage >= 2:
        assert args.ckpt_format == "fsdp_dtensor"
        assert "unset CUDA_DEVICE_MAX_CONNECTIONS" in text
        assert "export CUDA_DEVICE_MAX_CONNECTIONS" not in text
    elif x.tp > 1 or x.cp > 1:
        assert "export CUDA_DEVICE_MAX_CONNECTIONS=1" in text
    # Dropout always (Megatron-LM's default is 0.1); --fp8-param-gather only with the
    # distributed optimizer (validate_args); CPU offloading below --num-layers, without PP or
    # recomputation (TransformerConfig.__post_init__).
    assert args.hidden_dropout == args.attention_dropout == job.dropout
    if args.fp8_param_gather:
        assert job.fp8_params and args.use_distributed_optimizer and args.fp8_format
    if args.cpu_offloading_num_layers is not None:
        assert job.activation_offload
        assert 0 < args.cpu_offloading_num_layers < args.num_layers
        assert x.pp == 1 and args.recompute_granularity is None


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_megatron_export_is_a_bash_array_with_the_same_words(tmp_path: Path) -> None:
    job, est = job_and_estimate(*CASES["deepseek"][:4], **CASES["deepseek"][4])
    text = export(est, "megatron", job=job)
    script = tmp_path / "args.sh"
    script.write_text(text)
    out = subprocess.run(["bash", "-c", f'source "{script}"; printf "%s\\n" '
                          '"${MEGATRON_ARGS[@]}"'], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == megatron_argv(text)


def test_bf16_gradients_are_exported_or_said() -> None:
    # NeMo-style FP8 plan with BF16 gradient reduction: Megatron-LM has the flag
    # (--grad-reduce-in-bf16, verified upstream); torchtitan and DeepSpeed get a comment.
    job = solver.TrainingJob(model=solver.model("llama3-70b"), tokens=15e12, global_batch=128,
                             seq_len=8192, precision="fp8", grad_dtype="bf16")
    est = solver.evaluate(job, solver.Layout(accelerator="h100-sxm5-80gb", tp=4, pp=4, dp=2,
                                             cp=2, vp=5, zero_stage=1))
    args = megatron_parser().parse_args(megatron_argv(export(est, "megatron", job=job)))
    assert args.grad_reduce_in_bf16
    fp32 = dataclasses.replace(job, grad_dtype="fp32")
    plain = megatron_parser().parse_args(megatron_argv(export(est, "megatron", job=fp32)))
    assert not plain.grad_reduce_in_bf16
    # torchtitan reduces in float32 only; DeepSpeed has no interleaving (VP5): both refused.
    assert refused("torchtitan", job, est) and refused("deepspeed", job, est)
    # DeepSpeed's communication_data_type (constants.py COMMUNICATION_DATA_TYPE).
    est = solver.evaluate(job, solver.Layout(accelerator="h100-sxm5-80gb", tp=4, pp=1, dp=32,
                                             zero_stage=2))
    assert json.loads(export(est, "deepspeed", job=job))["communication_data_type"] == "bf16"
    assert "communication_data_type" not in json.loads(export(est, "deepspeed", job=fp32))


def test_expert_overlap_is_exported() -> None:
    # DualPipe-style overlap of the expert all-to-alls: Megatron-LM's
    # --overlap-moe-expert-parallel-comm (verified upstream, _add_moe_args); only with EP > 1.
    job = solver.TrainingJob(model=solver.model("deepseek-v3"), tokens=14.8e12,
                             global_batch=15_360, seq_len=4096, precision="fp8",
                             ep_comm_overlap=True)
    # Megatron-LM's overlap needs interleaving with PP (transformer_config.py): VP2.
    est = solver.evaluate(job, solver.Layout(accelerator="h800", tp=1, pp=16, vp=2, dp=64,
                                             ep=64, zero_stage=1, recompute="selective",
                                             pipeline_split="both"))
    args = megatron_parser().parse_args(megatron_argv(export(est, "megatron", job=job)))
    assert args.overlap_moe_expert_parallel_comm
    plain = dataclasses.replace(job, ep_comm_overlap=False)
    args = megatron_parser().parse_args(megatron_argv(export(est, "megatron", job=plain)))
    assert not args.overlap_moe_expert_parallel_comm


def test_megatron_zero_stages_as_megatron_runs_them() -> None:
    """ZeRO-1 is the distributed optimizer; ZeRO-2 and ZeRO-3 are Megatron-FSDP with the
    sharding strategies optim_grads and optim_grads_params, passed beside
    --use-distributed-optimizer and --no-gradient-accumulation-fusion as Megatron-LM's FSDP
    guide (docs/source/api-guide/custom_fsdp.md) does, with --ckpt-format fsdp_dtensor
    (validate_args: "Megatron FSDP only supports fsdp_dtensor checkpoint format")."""
    job, est = job_and_estimate(*CASES["zero3"][:4], **CASES["zero3"][4])
    text = export(est, "megatron", job=job)
    argv = megatron_argv(text)
    i = argv.index("--data-parallel-sharding-strategy")
    assert argv[i + 1] == "optim_grads_params"
    assert {"--use-megatron-fsdp", "--use-distributed-optimizer",
            "--no-gradient-accumulation-fusion"} <= set(argv)
    assert argv[argv.index("--ckpt-format") + 1] == "fsdp_dtensor"
    assert "unset CUDA_DEVICE_MAX_CONNECTIONS" in text.splitlines()
    job, est = job_and_estimate(*CASES["zero2-gpt3"][:4], **CASES["zero2-gpt3"][4])
    argv = megatron_argv(export(est, "megatron", job=job))
    assert argv[argv.index("--data-parallel-sharding-strategy") + 1] == "optim_grads"
    job, est = job_and_estimate(*CASES["llama405-even"][:4], **CASES["llama405-even"][4])
    argv = megatron_argv(export(est, "megatron", job=job))
    assert "--use-distributed-optimizer" in argv and "--use-megatron-fsdp" not in argv
    assert "--data-parallel-sharding-strategy" not in argv and "--ckpt-format" not in argv


def test_megatron_writes_dropout_fp8_weights_and_offload() -> None:
    # Llama 3 8B (32 layers) in FP8 on 64 H100s with ZeRO-1, no pipeline, no recomputation:
    # every one of the three is written; offloading takes all layers but the last (Megatron-LM
    # requires fewer than --num-layers): 31.
    job, est = job_and_estimate(*CASES["llama8b-offload"][:4], JOB_FIELDS["llama8b-offload"],
                                **CASES["llama8b-offload"][4])
    args = megatron_parser().parse_args(megatron_argv(export(est, "megatron", job=job)))
    assert (args.hidden_dropout, args.attention_dropout) == (0.1, 0.1)
    assert args.fp8_param_gather
    assert args.cpu_offloading_num_layers == 31
    # Without them: dropout 0 written (not Megatron-LM's 0.1), nothing else.
    plain = dataclasses.replace(job, dropout=0.0, fp8_params=False, activation_offload=False)
    text = export(est, "megatron", job=plain)
    assert "    --hidden-dropout 0\n    --attention-dropout 0\n" in text
    args = megatron_parser().parse_args(megatron_argv(text))
    assert (args.hidden_dropout, args.attention_dropout) == (0.0, 0.0)
    assert not args.fp8_param_gather and args.cpu_offloading_num_layers is None
    assert "offload" not in text and "FP8 weights" not in text


def test_plans_a_launcher_cannot_start_are_refused_with_its_reason() -> None:
    # FP8 weights at ZeRO-0 (validate_args: --fp8-param-gather needs the distributed
    # optimizer or an FSDP), activation offload with two pipeline stages (TransformerConfig);
    # torchtitan and DeepSpeed have no FP8-only weights.
    job, est = job_and_estimate("llama3-8b", 1e12, 512, "fp8", JOB_FIELDS["llama8b-offload"],
                                accelerator="h100-sxm5-80gb", tp=2, pp=2, dp=16)
    for fmt in ("megatron", "torchtitan", "deepspeed"):
        assert refused(fmt, job, est), fmt
    with pytest.raises(solver.SpecError, match="zero_stage: megatron's --fp8-param-gather"):
        export(est, "megatron", job=dataclasses.replace(job, activation_offload=False))
    with pytest.raises(solver.SpecError, match="pp: megatron's activation offload"):
        export(est, "megatron", job=dataclasses.replace(job, fp8_params=False))


def test_torchtitan_and_deepspeed_say_what_they_cannot_set() -> None:
    # Dropout 0.1 on a plan both start (ZeRO-2, no pipeline): torchtitan's models have none,
    # DeepSpeed leaves it to the model code.
    job, est = job_and_estimate("llama3-8b", 1e12, 512, "bf16", dict(dropout=0.1),
                                accelerator="h100-sxm5-80gb", tp=2, pp=1, dp=32, zero_stage=2)
    # torchtitan's models have no dropout: a job with dropout is another model there
    with pytest.raises(solver.SpecError, match=r"^dropout: torchtitan's models have no "
                                              r"dropout, got 0.1 \(so no torchtitan export\)"):
        export(est, "torchtitan", job=job)
    comments = " ".join(json.loads(export(est, "deepspeed", job=job))["_comment"])
    assert "dropout 0.1: set by the model code" in comments
    plain = dataclasses.replace(job, dropout=0.0)
    for fmt in ("torchtitan", "deepspeed"):
        assert "dropout" not in export(est, fmt, job=plain)


# ---------------------------------------------------------------------------- torchtitan


def test_torchtitan_fields_file_names_the_commit() -> None:
    assert TORCHTITAN_COMMIT in (DATA / "torchtitan_fields.txt").read_text()
    assert TORCHTITAN_COMMIT[:12] in FOLLOWS["torchtitan"]


def _check_type(key: str, value: Any, kind: str) -> None:
    if kind.startswith("choices="):
        assert value in kind.removeprefix("choices=").split("|"), key
    elif kind == "list[str]":
        assert isinstance(value, list) and all(isinstance(v, str) for v in value), key
    elif kind == "list[list[str]]":
        assert isinstance(value, list) and all(
            isinstance(v, list) and all(isinstance(s, str) for s in v) for v in value), key
    else:
        expected = {"int": int, "str": str, "bool": bool}[kind]
        assert isinstance(value, expected) and (kind == "bool" or not isinstance(value, bool))


def test_torchtitan_toml_parses_with_torchtitan_names(
        case: tuple[solver.TrainingJob, solver.Estimate]) -> None:
    job, est = case
    if refused("torchtitan", job, est):
        return
    if job.model.name.startswith(("gpt3", "mixtral")):
        # torchtitan ships llama3 and deepseek_v3 train specs only: no job config could start.
        with pytest.raises(solver.SpecError,
                           match="torchtitan at 6404b932421f ships no train spec"):
            export(est, "torchtitan", job=job)
        return
    config = tomllib.loads(export(est, "torchtitan", job=job))
    for section, fields in config.items():
        assert isinstance(fields, dict), section
        for key, value in fields.items():
            name = f"{section}.{key}"
            assert name in TORCHTITAN_VERIFIED, name
            _check_type(name, value, TORCHTITAN_VERIFIED[name])
    assert {"job", "model", "training", "parallelism", "activation_checkpoint"} <= set(config)
    x = est.layout
    par, train = config["parallelism"], config["training"]
    dp = par["data_parallel_shard_degree"] * par["data_parallel_replicate_degree"]
    assert dp == x.dp
    assert dp * par["tensor_parallel_degree"] * par["pipeline_parallel_degree"] * \
        par["context_parallel_degree"] == x.gpus
    assert par["expert_parallel_degree"] == x.ep
    assert train["global_batch_size"] == est.global_batch
    assert train["seq_len"] == job.seq_len
    assert train["global_batch_size"] % (train["local_batch_size"] * dp) == 0
    if x.recompute == "alternate_matmuls":
        assert config["activation_checkpoint"] == {"mode": "selective",
                                                   "selective_ac_option": "op"}
    else:
        assert config["activation_checkpoint"] == {"mode": x.recompute}
    if x.pp > 1:
        assert train["local_batch_size"] // par["pipeline_parallel_microbatch_size"] * \
            train["global_batch_size"] // (train["local_batch_size"] * dp) == \
            est.num_microbatches
        assert par["pipeline_parallel_schedule"] == ("Interleaved1F1B" if x.vp > 1 else "1F1B")
        parts = par.get("module_fqns_per_model_part")
        if parts is None:
            per = par["pipeline_parallel_layers_per_stage"]
            assert math.ceil(job.model.layers / per) == x.pp * x.vp
        else:
            assert len(parts) == x.pp * x.vp
            flat = [name for part in parts for name in part]
            assert flat == ["tok_embeddings", *[f"layers.{i}" for i in range(job.model.layers)],
                            "norm", "output"]
    else:
        assert train["global_batch_size"] // (train["local_batch_size"] * dp) == \
            est.num_microbatches
    if job.precision == "fp8":
        assert config["model"]["converters"] == ["float8"]
        assert "float8" in config
    else:
        assert "float8" not in config


def titan_v3(job: solver.TrainingJob) -> solver.TrainingJob:
    """DeepSeek-V3 as torchtitan's 671B flavor holds it (torchtitan/models/deepseek_v3):
    norm_eps 1e-5, no balancing loss, no group limit read, no MTP module."""
    model = dataclasses.replace(job.model, norm_eps=1e-5, router_balance="none",
                                router_aux_loss_coeff=0.0, expert_group_topk=0, mtp_layers=0)
    return dataclasses.replace(job, model=model)


def test_torchtitan_model_names_and_comments() -> None:
    job, est = job_and_estimate(*CASES["deepseek-z3"][:4], **CASES["deepseek-z3"][4])
    # The 671B flavor (torchtitan/models/deepseek_v3/__init__.py) keeps DeepSeekV3ModelArgs'
    # norm_eps default 1e-5; config.json's rms_norm_eps is 1e-6, which the TOML cannot set:
    # the export is refused rather than written for another model.
    with pytest.raises(solver.SpecError, match=r"norm_eps 1e-06 \(flavor: 1e-05\)"):
        export(est, "torchtitan", job=job)
    text = export(est, "torchtitan", job=titan_v3(job))
    config = tomllib.loads(text)
    assert (config["model"]["name"], config["model"]["flavor"]) == ("deepseek_v3", "671B")
    assert "differs from the model" not in text
    job, est = job_and_estimate(*CASES["zero2-gpt3"][:4], **CASES["zero2-gpt3"][4])
    with pytest.raises(solver.SpecError, match="ships no train spec for gpt3-175b"):
        export(est, "torchtitan", job=job)
    # Llama 3.1 405B's config.json scales RoPE (llama3, x8 from 8192); the 405B flavor
    # does not: refused as another model.
    job, est = job_and_estimate(*CASES["llama405-even"][:4], **CASES["llama405-even"][4])
    with pytest.raises(solver.SpecError, match=r"rope_scaling llama3 \(flavor: none\)"):
        export(est, "torchtitan", job=job)
    # ZeRO-1: torchtitan has no optimizer-only sharding (solver.launchers refuses it).
    job, est = job_and_estimate("llama3-70b", 1e12, 512, "bf16", accelerator="h100-sxm5-80gb",
                                tp=8, pp=1, dp=8, zero_stage=1)
    with pytest.raises(solver.SpecError, match="zero_stage: torchtitan runs ZeRO 0/2/3"):
        export(est, "torchtitan", job=job)
    # ZeRO-0 is DDP: torchtitan replicates over data_parallel_replicate_degree.
    job, est = job_and_estimate("llama3-8b", 1e12, 512, "bf16",
                                accelerator="h100-sxm5-80gb", tp=1, pp=1, dp=64)
    par = tomllib.loads(export(est, "torchtitan", job=job))["parallelism"]
    assert (par["data_parallel_replicate_degree"], par["data_parallel_shard_degree"]) == (64, 1)


def test_torchtitan_float8_is_a_combination_torchtitan_accepts() -> None:
    """Float8Converter refuses recipe_name beside enable_fsdp_float8_all_gather (tensorwise
    with FP8 gathers is the converter's default, recipe_name unset), and
    parallelize_deepseekv3 refuses float8 other than rowwise under TP."""
    job, est = job_and_estimate(*CASES["deepseek-tp2-z2"][:4],
                                **CASES["deepseek-tp2-z2"][4])  # TP2
    float8 = tomllib.loads(export(est, "torchtitan", job=titan_v3(job)))["float8"]
    assert float8["recipe_name"] == "rowwise"
    assert not float8.get("enable_fsdp_float8_all_gather", False)
    job, est = job_and_estimate(*CASES["deepseek-z3"][:4], **CASES["deepseek-z3"][4])  # TP1
    float8 = tomllib.loads(export(est, "torchtitan", job=titan_v3(job)))["float8"]
    assert "recipe_name" not in float8 and float8["enable_fsdp_float8_all_gather"] is True


# ---------------------------------------------------------------------------- DeepSpeed


def test_deepspeed_batch_sizes_are_consistent(
        case: tuple[solver.TrainingJob, solver.Estimate]) -> None:
    job, est = case
    if refused("deepspeed", job, est):
        return
    config = json.loads(export(est, "deepspeed", job=job))
    assert set(config) <= DEEPSPEED_KEYS
    x = est.layout
    assert config["train_batch_size"] == (config["train_micro_batch_size_per_gpu"]
                                          * config["gradient_accumulation_steps"] * x.dp)
    assert config["train_batch_size"] == est.global_batch
    assert config["zero_optimization"]["stage"] == x.zero_stage
    assert config["bf16"] == {"enabled": True}
    assert DEEPSPEED_COMMIT[:12] in " ".join(config["_comment"])
    assert ("activation_checkpointing" in config) == (x.recompute == "full")
    assert config.get("sequence_parallel_size", 1) == x.cp
    comments = " ".join(config["_comment"])
    if job.precision == "fp8":
        assert "FP8" in comments
    if x.vp > 1:
        assert f"VP{x.vp}" in comments
    if x.recompute == "selective":
        assert "recomputation selective has no DeepSpeed config key" in comments


# ---------------------------------------------------------------------------- shared parts


@pytest.mark.parametrize(("layers", "pp", "vp", "embedding", "loss", "mtp", "first", "last"), [
    (96, 8, 1, 0, 0, 0, 12, 12), (96, 8, 4, 0, 0, 0, 3, 3), (126, 8, 2, 1, 1, 0, 7, 7),
    (126, 21, 2, 0, 0, 0, 3, 3), (61, 32, 1, 1, 1, 1, 1, 0), (61, 16, 2, 1, 1, 1, 1, 0),
    (80, 5, 4, 0, 0, 0, 4, 4), (126, 1, 1, 0, 0, 0, 126, 126)])
def test_stage_layers_split_slots_evenly_over_the_chunks(
        layers: int, pp: int, vp: int, embedding: int, loss: int, mtp: int, first: int,
        last: int) -> None:
    """(layers + mtp + slots) / (pp*vp) per chunk, the first less the embedding's slot, the
    last less the loss's and the MTP modules' (Megatron-LM's account-for flags): e.g. Llama
    3.1 405B, 126 + 2 = 128 over 16 chunks of 8 -> 7 first, 7 last."""
    chunks = stage_layers(layers, pp, vp, embedding, loss, mtp)
    assert len(chunks) == pp * vp and sum(chunks) == layers
    assert (chunks[0], chunks[-1]) == (first, last)
    assert set(chunks[1:-1]) <= {(layers + mtp + embedding + loss) // (pp * vp)}


def test_export_refuses_unknown_formats_and_plans_without_layout() -> None:
    job, est = job_and_estimate(*CASES["gpt3"][:4], **CASES["gpt3"][4])
    with pytest.raises(solver.SpecError, match="export: expected one of"):
        export(est, "nemo", job=job)
    empty = solver.Plan(status="infeasible", objective="time", estimate=None,
                        explanation=("x",), solve_time_s=0.0)
    with pytest.raises(solver.SpecError, match="no layout to export"):
        solver.export(empty, "megatron", job=job)


# ---------------------------------------------------------------------------- command line

SOLVE = ["solve", "--model", "gpt3-175b", "--tokens", "300e9", "--seq-len", "2048",
         "--global-batch", "1536", "--gpu", "a100-sxm4-80gb", "--max-gpus", "1024",
         "--workers", "1"]


def test_solve_export_prints_only_the_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert run([*SOLVE, "--export", "megatron"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("# Megatron-LM configuration written by gpuplan")
    assert "MEGATRON_ARGS=(" in captured.out
    megatron_parser().parse_args(megatron_argv(captured.out))
    assert captured.err.count("\n") == 1 and "megatron config on stdout" in captured.err
    # torchtitan ships no GPT-3 model: refused with one line and exit 2.
    assert run([*SOLVE, "--export", "torchtitan"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ships no train spec for gpt3-175b" in err
    assert run([*SOLVE, "--export", "deepspeed"]) == 0
    json.loads(capsys.readouterr().out)


def test_solve_export_json_has_an_export_field(capsys: pytest.CaptureFixture[str]) -> None:
    assert run([*SOLVE, "--export", "deepspeed", "--json"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert captured.err == ""
    assert data["export"]["format"] == "deepspeed"
    assert data["export"]["follows"] == FOLLOWS["deepspeed"]
    config = json.loads(data["export"]["text"])
    assert config["train_batch_size"] == data["layout"]["global_batch"] == 1536


def test_solve_export_rejects_a_bad_format_before_solving(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert run([*SOLVE, "--export", "nemo"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--export: expected one of megatron|torchtitan|deepspeed" \
        in err


def test_solve_export_of_an_infeasible_question(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["solve", "--model", "gpt3-175b", "--tokens", "300e9", "--global-batch", "1536",
            "--gpu", "a100-sxm4-40gb", "--gpus", "8", "--workers", "1"]
    assert run([*argv, "--export", "megatron"]) == 1
    captured = capsys.readouterr()
    assert "nothing to export" in captured.err
    assert "MEGATRON_ARGS" not in captured.out
    assert run([*argv, "--export", "megatron", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["export"] is None


def test_solve_export_carries_dropout_fp8_weights_and_offload(
        capsys: pytest.CaptureFixture[str]) -> None:
    # The options reach the export through solve: Llama 3 8B on 64 H100s, no pipeline and no
    # recomputation fixed, so Megatron-LM can offload 32 - 1 = 31 layers.
    argv = ["solve", "--model", "llama3-8b", "--tokens", "1T", "--global-batch", "512",
            "--gpu", "h100", "--gpus", "64", "--pp", "1", "--recompute", "none", "--zero", "1",
            "--precision", "fp8", "--dropout", "0.05", "--fp8-params", "--activation-offload",
            "--workers", "1", "--export", "megatron"]
    assert run(argv) == 0
    args = megatron_parser().parse_args(megatron_argv(capsys.readouterr().out))
    assert (args.hidden_dropout, args.attention_dropout) == (0.05, 0.05)
    assert args.fp8_param_gather and args.cpu_offloading_num_layers == 31


def test_megatron_export_of_deepseek_v3_as_trained() -> None:
    """DeepSeek-V3's recipe (arXiv:2412.19437 sec. 3) exported: the recompute modules, group-
    limited routing (8 groups, 4 per token), DeepEP's flex dispatcher, BF16 Adam moments
    through the precision-aware optimizer, the MTP module in an explicit pipeline layout (all
    flags verified in arguments.py at the followed commit, tests/data/megatron_flags.txt)."""
    job = solver.TrainingJob(model=solver.model("deepseek-v3"), tokens=14.8e12,
                             global_batch=15360, seq_len=4096, precision="fp8",
                             moe_dispatcher="deepep", moments_dtype="bf16")
    layout = dict(accelerator="h800", tp=1, pp=16, dp=128, ep=64, zero_stage=1,
                  recompute="layernorm+mla_up_proj+moe_act", pipeline_split="both")
    # Megatron-LM has no DualPipe schedule (schedules.py): the trained schedule is refused.
    est = solver.evaluate(job, solver.Layout(**layout, schedule="dualpipe"))
    assert refused("megatron", job, est)
    est = solver.evaluate(job, solver.Layout(**layout))
    args = megatron_parser().parse_args(megatron_argv(export(est, "megatron", job=job)))
    assert args.recompute_granularity == "selective"
    assert args.recompute_modules == ["layernorm", "mla_up_proj", "moe_act"]
    assert (args.moe_router_num_groups, args.moe_router_group_topk) == (8, 4)
    assert args.moe_token_dispatcher_type == "flex" and args.moe_enable_deepep
    assert args.use_precision_aware_optimizer
    assert args.exp_avg_dtype == args.exp_avg_sq_dtype == "bf16"
    assert args.mtp_num_layers == 1
    # 61 layers + 1 MTP + embedding + loss = 64 slots, 4 per stage: 3 layers on the first
    # stage, 4 on each middle one, 2 layers and the MTP module on the last.
    stages = parse_layout_string(args.pipeline_model_parallel_layout)
    assert stages[0] == ["E", "t", "t", "t"] and stages[-1] == ["t", "t", "m", "L"]
    assert all(stage == ["t"] * 4 for stage in stages[1:-1]) and len(stages) == 16


# ------------------------------------------------------- the model's facts, as published

def _megatron_args(model: str, precision: str = "bf16", **layout: Any) -> argparse.Namespace:
    job = solver.TrainingJob(model=solver.model(model), tokens=1e12, global_batch=1024,
                             precision=precision)
    est = solver.evaluate(job, solver.Layout(**layout))
    return megatron_parser().parse_args(megatron_argv(export(est, "megatron", job=job)))


def test_megatron_llama3_70b_has_its_published_rope_base_norm_and_no_dropout() -> None:
    # config.json of meta-llama/Meta-Llama-3-70B: rope_theta 500000.0, rms_norm_eps 1e-05,
    # attention_dropout 0.0, rope_scaling null. Megatron-LM's defaults: 10000, 1e-5, 0.1.
    args = _megatron_args("llama3-70b", accelerator="h100-sxm5-80gb", tp=8, pp=4, dp=32,
                          zero_stage=1)
    assert args.rotary_base == 500000
    assert args.norm_epsilon == 1e-5
    assert args.hidden_dropout == args.attention_dropout == 0.0
    assert not args.use_rope_scaling and args.rope_type is None and not args.qk_layernorm


def test_megatron_llama31_405b_has_llama3_rope_scaling() -> None:
    # config.json of meta-llama/Llama-3.1-405B: rope_scaling {rope_type llama3, factor 8.0,
    # original_max_position_embeddings 8192} (Megatron-LM builds the 8192 in).
    args = _megatron_args("llama3.1-405b", accelerator="h100-sxm5-80gb", tp=8, pp=14, dp=8,
                          zero_stage=1)
    assert args.use_rope_scaling and args.rope_scaling_factor == 8.0
    assert args.rotary_base == 500000


def test_megatron_mixtral_has_its_published_rope_base_and_router() -> None:
    # config.json of mistralai/Mixtral-8x7B-v0.1: rope_theta 1000000.0, rms_norm_eps 1e-05,
    # router_aux_loss_coef 0.02; softmax over the top-2 logits (arXiv:2401.04088 eq. 1), which
    # is Megatron-LM's softmax after top-k, i.e. no --moe-router-pre-softmax.
    args = _megatron_args("mixtral-8x7b", accelerator="h100-sxm5-80gb", tp=2, pp=4, dp=32,
                          ep=8, zero_stage=1)
    assert args.rotary_base == 1000000
    assert args.norm_epsilon == 1e-5
    assert args.moe_router_score_function == "softmax"
    assert not args.moe_router_pre_softmax and not args.moe_router_enable_expert_bias
    assert args.moe_router_load_balancing_type == ["aux_loss"]
    assert args.moe_aux_loss_coeff == 0.02
    assert args.moe_router_topk_scaling_factor is None
    assert args.hidden_dropout == 0.0


def test_megatron_deepseek_v3_has_its_published_router_norms_and_yarn() -> None:
    # config.json of deepseek-ai/DeepSeek-V3: rope_theta 10000, rms_norm_eps 1e-06,
    # scoring_func sigmoid, topk_method noaux_tc, routed_scaling_factor 2.5, n_group 8,
    # topk_group 4, rope_scaling yarn factor 40, num_nextn_predict_layers 1, q_a_layernorm and
    # kv_a_layernorm (--qk-layernorm); arXiv:2412.19437 sec. 4.2: sequence-wise balance loss
    # with alpha 0.0001.
    args = _megatron_args("deepseek-v3", "fp8", accelerator="h800", tp=1, pp=16, dp=128,
                          ep=64, zero_stage=1, pipeline_split="both")
    assert args.rotary_base == 10000
    assert args.norm_epsilon == 1e-6
    assert args.qk_layernorm
    assert args.moe_router_score_function == "sigmoid"
    assert args.moe_router_enable_expert_bias
    assert args.moe_router_topk_scaling_factor == 2.5
    assert (args.moe_router_num_groups, args.moe_router_group_topk) == (8, 4)
    assert args.moe_router_load_balancing_type == ["seq_aux_loss"]
    assert args.moe_aux_loss_coeff == 0.0001
    assert args.rope_type == "yarn" and args.rotary_scaling_factor == 40.0
    assert args.mtp_num_layers == 1
    assert args.hidden_dropout == args.attention_dropout == 0.0


def test_megatron_zero3_of_deepseek_v3_is_megatron_fsdp() -> None:
    args = _megatron_args("deepseek-v3", "fp8", accelerator="h800", tp=1, pp=16, dp=128,
                          ep=64, zero_stage=3, pipeline_split="both")
    assert args.use_megatron_fsdp
    assert args.data_parallel_sharding_strategy == "optim_grads_params"
    assert args.ckpt_format == "fsdp_dtensor"


def test_deepspeed_refuses_moe_at_zero3_and_keeps_zero2() -> None:
    # deepspeed/runtime/engine.py _validate_zero3_moe_compatibility: "Native DeepSpeed MoE is
    # not supported with ZeRO Stage 3".
    job = solver.TrainingJob(model=solver.model("mixtral-8x7b"), tokens=1e12, global_batch=512)
    layout = dict(accelerator="h100-sxm5-80gb", tp=2, pp=1, dp=64, ep=8)
    est = solver.evaluate(job, solver.Layout(**layout, zero_stage=3))
    with pytest.raises(solver.SpecError, match="deepspeed's MoE refuses ZeRO-3"):
        export(est, "deepspeed", job=job)
    est = solver.evaluate(job, solver.Layout(**layout, zero_stage=2))
    config = json.loads(export(est, "deepspeed", job=job))
    assert config["zero_optimization"]["stage"] == 2
    comments = " ".join(config["_comment"])
    assert "RoPE base 1000000" in comments and "softmax scores" in comments


def test_megatron_fp8_with_layernorm_or_moe_act_recompute_uses_current_scaling() -> None:
    # TransformerConfig at the followed commit (transformer_config.py:1015-1021) refuses
    # moe_act and layernorm recomputation under FP8 delayed scaling, Megatron-LM's default
    # --fp8-recipe: such a plan gets per-tensor current scaling (tensorwise), the others keep
    # the default (no --fp8-recipe written).
    fields = dict(CASES["deepseek-z3"][4])
    for recompute, recipe in (("layernorm+moe_act", "tensorwise"), ("moe_act", "tensorwise"),
                              ("core_attn", None), ("none", None)):
        job, est = job_and_estimate(*CASES["deepseek-z3"][:4],
                                    **{**fields, "zero_stage": 1, "recompute": recompute})
        args = megatron_parser().parse_args(megatron_argv(export(est, "megatron", job=job)))
        assert getattr(args, "fp8_recipe", None) == recipe, recompute
