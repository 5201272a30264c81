"""An out-of-sample check: MosaicML's MPT throughput tables on H100 and A100, row by row.

Run:  python benchmarks/llm_foundry_check.py

``tests/data/llm_foundry_mpt.json`` holds the 113 rows of llm-foundry's "H100 80GB BF16" and
"A100 80GB" tables (MPT-125M to MPT-70B, 512 to 65,536 tokens, 8 to 64 GPUs, PyTorch FSDP over
all of them, with and without activation checkpointing) and the models' shapes, each with its
source. Only four of the rows took part in the calibration's fit (``in_fit``, also in
``published_runs.json``); the others are predicted here with the shipped calibration, as a
user's question would be. The table shows published and predicted tokens/s per GPU, the error,
the predicted step time and memory; below it the median and worst error by group, which shows
where the step model is weakest.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import solver

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "llm_foundry_mpt.json"


@dataclass(frozen=True)
class Row:
    """One published row and its prediction."""

    row: dict[str, Any]
    estimate: solver.Estimate

    @property
    def predicted(self) -> float:
        return self.estimate.tokens_per_s / self.row["gpus"]

    @property
    def error(self) -> float:
        return self.predicted / self.row["tokens_per_s_per_gpu"] - 1.0


def predict(row: dict[str, Any], shapes: dict[str, dict[str, int]]) -> solver.Estimate:
    """The row's job and layout as llm-foundry ran them: FSDP (ZeRO-3) over every GPU, BF16
    gathers, gradients reduced at the row's precision (MP mode DEFAULT: FP32; PURE: BF16),
    flash attention, full recomputation when the row checkpoints activations."""
    shape = shapes[row["model"]]
    model = solver.ModelSpec(name=row["model"], vocab=50368, seq_len=row["seq_len"],
                             tied_embeddings=True, linear_bias=False, **shape)
    job = solver.TrainingJob(model=model, tokens=1e12, seq_len=row["seq_len"],
                             global_batch=row["global_batch"], precision="bf16",
                             flash_attention=True, zero3_impl="fsdp",
                             grad_dtype=row["grad_dtype"])
    layout = solver.Layout(accelerator=row["accelerator"], tp=1, pp=1, dp=row["gpus"],
                           micro_batch=row["micro_batch"], zero_stage=3,
                           recompute="full" if row["activation_checkpointing"] else "none")
    return solver.evaluate(job, layout)


#: A test on a published row.
RowTest = Callable[[dict[str, Any]], bool]

#: The groups the summary reports, each a test on a row; the sequence-length groups once per
#: accelerator.
GROUPS: dict[str, RowTest] = {
    "all rows": lambda x: True,
    "in the fit": lambda x: x["in_fit"],
    "not in the fit": lambda x: not x["in_fit"],
    "8 GPUs (one node)": lambda x: x["gpus"] == 8,
    "16-64 GPUs (2-8 nodes)": lambda x: x["gpus"] > 8,
    "one micro-batch per step": lambda x: x["grad_accum"] == 1,
    "several micro-batches per step": lambda x: x["grad_accum"] > 1,
    "with activation checkpointing": lambda x: x["activation_checkpointing"],
    "without activation checkpointing": lambda x: not x["activation_checkpointing"],
}
SEQUENCES: dict[str, RowTest] = {
    "up to 2,048 tokens": lambda x: x["seq_len"] <= 2048,
    "4K-8K tokens": lambda x: 4096 <= x["seq_len"] <= 8192,
    "16K-64K tokens": lambda x: x["seq_len"] >= 16384,
}
ACCELERATORS = {"h100-sxm5-80gb": "H100", "a100-sxm4-80gb": "A100"}
for _acc, _short in ACCELERATORS.items():
    GROUPS[_short] = lambda x, a=_acc: x["accelerator"] == a
    for _name, _test in SEQUENCES.items():
        GROUPS[f"{_short}, {_name}"] = lambda x, a=_acc, t=_test: x["accelerator"] == a and t(x)


def groups(rows: Sequence[Row]) -> dict[str, list[float]]:
    return {name: [r.error for r in rows if test(r.row)] for name, test in GROUPS.items()}


def report(rows: Sequence[Row]) -> str:
    head = (f"{'model':<9} {'GPU':<4} {'seq':>6} {'GPUs':>4} {'mb':>3} {'ga':>3} {'AC':<3} "
            f"{'published':>9} {'predicted':>9} {'error':>7} {'step s':>7} {'GiB':>6}")
    lines = [head, "-" * len(head)]
    for r in rows:
        x = r.row
        mark = "*" if x["in_fit"] else ""
        lines.append(
            f"{x['model'] + mark:<9} {ACCELERATORS[x['accelerator']]:<4} {x['seq_len']:>6} "
            f"{x['gpus']:>4} {x['micro_batch']:>3} "
            f"{x['grad_accum']:>3} {'yes' if x['activation_checkpointing'] else 'no':<3} "
            f"{x['tokens_per_s_per_gpu']:>9,} {r.predicted:>9,.0f} {r.error:>+7.1%} "
            f"{r.estimate.step_time_s:>7.2f} {r.estimate.memory_gib_per_gpu:>6.1f}")
    lines += ["-" * len(head), "* in the fit (also a run of published_runs.json)", "",
              f"{'group':<34} {'rows':>4} {'median':>7} {'worst':>7}"]
    for name, errors in groups(rows).items():
        absolute = [abs(e) for e in errors]
        worst = max(errors, key=abs)
        lines.append(f"{name:<34} {len(errors):>4} {statistics.median(absolute):>7.1%} "
                     f"{worst:>+7.1%}")
    over = [r for r in rows if r.estimate.memory_gib_per_gpu > r.estimate.memory_capacity_gib]
    lines += ["", f"memory: {len(rows) - len(over)} of {len(rows)} rows fit in 80 GB as "
              "predicted (they ran, so they did)"]
    lines += [f"  over: {r.row['model']} at {r.row['seq_len']} on {r.row['gpus']} "
              f"{ACCELERATORS[r.row['accelerator']]}, {r.estimate.memory_gib_per_gpu:.1f} GiB"
              for r in over]
    return "\n".join(lines)


def main() -> int:
    doc = json.loads(DATA.read_text(encoding="utf-8"))
    rows = [Row(x, predict(x, doc["shapes"])) for x in doc["rows"]]
    print(report(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
