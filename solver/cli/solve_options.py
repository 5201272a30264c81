"""The options of ``gpuplan solve``, one alias each. Every one may be left out, so that a
scenario file can give it; the help names the default that applies when neither does
(``common.py`` holds the options other commands share, with their defaults in place)."""

from __future__ import annotations

from typing import Annotated

import typer

Model = Annotated[str | None, typer.Option(
    "--model", help="Preset name or model file (TOML/JSON, or a Hugging Face "
    "config.json); required unless the scenario gives \\[model].",  # "\\[": rich markup
    show_default=False)]
Tokens = Annotated[str | None, typer.Option(
    "--tokens", help="Training tokens: 300e9, 300B, 15T; required unless the scenario "
    "gives them.", show_default=False)]
Gpus = Annotated[int | None, typer.Option("--gpus", help="Exactly this many accelerators.")]
DeadlineDays = Annotated[float | None, typer.Option("--deadline-days")]
Risk = Annotated[str | None, typer.Option(
    "--risk", help="expected|high: judge the deadline at the predicted training days or "
    "at the high end of their error band (default: expected).",
    show_default=False)]
Launcher = Annotated[str | None, typer.Option(
    "--launcher", help="megatron|torchtitan|deepspeed: search only the layouts that "
    "launcher can start (default: --export's, else any).", show_default=False)]
BudgetUsd = Annotated[float | None, typer.Option("--budget-usd")]
Objective = Annotated[str | None, typer.Option(
    "--objective", help="time|cost|gpus|energy (default: time).", show_default=False)
]
GlobalBatch = Annotated[int | None, typer.Option(
    "--global-batch", help="Sequences per optimizer step (default: the solver chooses).",
    show_default=False)]
SeqLen = Annotated[int | None, typer.Option(
    "--seq-len", help="Sequence length (default: the model's).", show_default=False)
]
Precision = Annotated[str | None, typer.Option(
    "--precision", help="bf16 or fp8 (default: bf16).", show_default=False)]
FlashAttention = Annotated[bool | None, typer.Option(
    "--flash-attention/--no-flash-attention", help="Attention kernels that never store "
    "the scores (default: on).", show_default=False)]
TpCommOverlap = Annotated[bool | None, typer.Option(
    "--tp-comm-overlap/--no-tp-comm-overlap", help="Tensor-parallel collectives "
    "overlapped with their GEMMs (default: off).", show_default=False)]
GradReduceOverlap = Annotated[bool | None, typer.Option(
    "--grad-reduce-overlap/--no-grad-reduce-overlap", help="Gradient reduction bucketed "
    "under the backward pass (default: on).", show_default=False)]
Zero3Impl = Annotated[str | None, typer.Option(
    "--zero3-impl", help="ZeRO-3 software: fsdp or deepspeed (default: fsdp).",
    show_default=False)]
EpCommOverlap = Annotated[bool | None, typer.Option(
    "--ep-comm-overlap/--no-ep-comm-overlap", help="Expert all-to-alls overlapped with "
    "another micro-batch's computation, DualPipe (default: off).", show_default=False)
]
GradDtype = Annotated[str | None, typer.Option(
    "--grad-dtype", help="Gradient accumulation and reduction precision: fp32 or bf16 "
    "(default: fp32).", show_default=False)]
SequenceParallel = Annotated[bool | None, typer.Option(
    "--sequence-parallel/--no-sequence-parallel", help="With tensor parallelism, norms "
    "and residuals split over the tp ranks (default: on).", show_default=False)]
MoeDispatcher = Annotated[str | None, typer.Option(
    "--moe-dispatcher", help="How MoE tokens reach their experts: alltoall or deepep "
    "(default: alltoall).", show_default=False)]
Fp8Dispatch = Annotated[bool | None, typer.Option(
    "--fp8-dispatch/--no-fp8-dispatch", help="MoE dispatch sent in FP8 (default: off).",
    show_default=False)]
MoeImbalance = Annotated[float | None, typer.Option(
    "--moe-imbalance", help="Most loaded expert rank's tokens over the mean, >= 1 "
    "(default: 1).", show_default=False)]
MomentsDtype = Annotated[str | None, typer.Option(
    "--moments-dtype", help="Precision of Adam's moments: fp32 or bf16 (default: fp32).",
    show_default=False)]
Dropout = Annotated[float | None, typer.Option(
    "--dropout", help="Hidden and attention dropout rate in [0, 0.99] (default: the "
    "model's own).",
    show_default=False)]
Fp8Params = Annotated[bool | None, typer.Option(
    "--fp8-params/--no-fp8-params", help="Weights held and gathered in FP8 only; needs "
    "--precision fp8 (default: off).", show_default=False)]
ActivationOffload = Annotated[bool | None, typer.Option(
    "--activation-offload/--no-activation-offload", help="Stored activations copied to "
    "host memory and back (default: off).", show_default=False)]
UnfusedExpertBias = Annotated[bool | None, typer.Option(
    "--unfused-expert-bias/--no-unfused-expert-bias", help="Expert biases on Megatron-Core's "
    "unfused per-expert path; matters for experts with biases (default: off).",
    show_default=False)]
Failures = Annotated[bool | None, typer.Option(
    "--failures/--no-failures", help="Count failures, checkpoints and restarts in the "
    "wall-clock days deadlines and cost are judged on (default: on; docs/model.md).",
    show_default=False)]
TimeLimit = Annotated[float | None, typer.Option(
    "--time-limit-s", "--time-limit", help="Seconds the search may take (default: 60).",
    show_default=False)]
Top = Annotated[int | None, typer.Option(
    "--top", help="List the K best distinct layouts (default: 1).", show_default=False)
]
Workers = Annotated[int | None, typer.Option(
    "--workers", help="CP-SAT workers (default: 2).", show_default=False)]
Seed = Annotated[int | None, typer.Option(
    "--seed", help="CP-SAT random seed (default: 0).", show_default=False)]
