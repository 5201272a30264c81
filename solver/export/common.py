"""What the three exporters share: the upstream versions followed, the header every export
starts with, the number of steps, and how the layers split over pipeline chunks."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence

from solver.errors import SpecError
from solver.estimate import Estimate
from solver.launchers import why_not
from solver.specs import TrainingJob

FORMATS = ("megatron", "torchtitan", "deepspeed")

#: The upstream file and commit whose names each exporter uses.
MEGATRON_LM_COMMIT = "000c4ac24f61159c138b0975def722c65245983c"
TORCHTITAN_COMMIT = "6404b932421f5ce382e7dac5ad381b2c17b1373c"
#: DeepSpeed master of 2026-08-22 (after v0.19.5; the commit solver/launchers.py reads the
#: capabilities at). The commit followed before, ac2f3a347d5c, is in no branch or tag of
#: deepspeedai/DeepSpeed, so its config classes could not be run.
DEEPSPEED_COMMIT = "edaa7221267243c7be7fb49c5d5f5c4fb97b4641"
FOLLOWS = {
    "megatron": f"NVIDIA/Megatron-LM megatron/training/arguments.py @ {MEGATRON_LM_COMMIT[:12]}",
    "torchtitan": f"pytorch/torchtitan torchtitan/config/job_config.py @ {TORCHTITAN_COMMIT[:12]}",
    "deepspeed": f"deepspeedai/DeepSpeed deepspeed/runtime/config.py @ {DEEPSPEED_COMMIT[:12]}",
}


def refuse_unrunnable(launcher: str, est: Estimate, job: TrainingJob) -> None:
    """``SpecError`` when ``launcher`` cannot start the plan (``solver.launchers.why_not``,
    the capability table of the versions followed): such a plan is not exported."""
    reason = why_not(launcher, job, est.layout)
    if reason is not None:
        raise SpecError(f"{reason} (so no {launcher} export)")


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


def header(est: Estimate, job: TrainingJob, launcher: str, fmt: str) -> list[str]:
    return [
        f"{launcher} configuration written by gpuplan for {job.model.name}, "
        f"{tokens_text(job.tokens)} tokens at sequence length {job.seq_len}, {job.precision}.",
        f"Plan: {layout_summary(est)}.",
        f"Estimate: {est.training_days:,.1f} training days, {est.step_time_s:.3g} s per step, "
        f"MFU {est.mfu:.1%}, {est.memory_gib_per_gpu:.1f} of {est.memory_capacity_gib:.0f} "
        "GiB per GPU.",
        f"Names checked against {FOLLOWS[fmt]}.",
    ]


def stage_layers(layers: int, pp: int, vp: int, embedding: int = 0, loss: int = 0,
                 mtp: int = 0) -> list[int]:
    """Transformer layers of each of the ``pp * vp`` model chunks, in chunk order.

    The step model's split (``stepmodel.pipeline``, Megatron-LM's rule): the layers, the MTP
    modules and the accounted ``embedding`` and ``loss`` slots divide evenly over the chunks;
    the first chunk gives a layer to the embedding, the last to the loss and to each MTP
    module. Chunk ``c`` runs on pipeline rank ``c % pp`` (the interleaved schedule of
    Megatron-LM and torchtitan's looped schedules).
    """
    per = (layers + mtp + embedding + loss) // (pp * vp)
    chunks = [per] * (pp * vp)
    chunks[0] -= embedding
    chunks[-1] -= loss + mtp
    return chunks


def number_text(value: float) -> str:
    """``500000.0`` -> ``500000``, ``1e-06`` -> ``1e-06``, ``2.5`` -> ``2.5``."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:g}"


def _middle(n: int, k: int) -> list[int]:
    """``k`` of the indices ``0..n-1``, from the middle outwards."""
    order = sorted(range(n), key=lambda i: (abs(2 * i - (n - 1)), i))
    return order[:k]
