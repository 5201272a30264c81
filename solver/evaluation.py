"""``solver.evaluate``: the step model's estimate for one given layout."""

from __future__ import annotations

import numpy as np

from solver import catalog
from solver.errors import SpecError
from solver.estimate import Estimate, estimate_at
from solver.specs import Accelerator, Layout, TrainingJob
from solver.stepmodel.arrays import HardwareTable, LayoutArrays
from solver.stepmodel.calibration import DEFAULT_CALIBRATION, Calibration
from solver.stepmodel.evaluate import Divisibility, divisibility, evaluate_arrays


def check_divisibility(job: TrainingJob, layout: Layout) -> None:
    """Raise ``SpecError`` for the first Megatron-LM shape rule the layout breaks."""
    x = LayoutArrays.from_layouts([layout], [1], {layout.accelerator: 0})
    rules = divisibility(job, x, np.array([job.global_batch]))
    m = job.model
    for name, template in Divisibility.MESSAGES.items():
        if not bool(getattr(rules, name)[0]):
            field = {"heads_by_tp": "tp", "kv_heads_by_tp": "tp", "ffn_by_tp": "tp",
                     "experts_by_ep": "ep", "seq_by_cp": "cp", "layers_by_stages": "pp",
                     "batch_by_dp": "dp"}[name]
            text = template.format(heads=m.heads, kv_heads=m.kv_heads, ffn=m.ffn_hidden,
                                   experts=m.experts, seq=job.seq_len, layers=m.layers,
                                   gb=job.global_batch)
            raise SpecError(f"{field}: {text}; got tp={layout.tp} pp={layout.pp} "
                            f"vp={layout.vp} cp={layout.cp} ep={layout.ep} dp={layout.dp} "
                            f"micro_batch={layout.micro_batch}")


def evaluate(job: TrainingJob, layout: Layout, *, accelerator: Accelerator | None = None,
             calibration: Calibration = DEFAULT_CALIBRATION) -> Estimate:
    """Time, memory, FLOPs, cost and energy of ``job`` laid out as ``layout``.

    ``job.global_batch`` must be given. A layout that breaks a shape rule raises ``SpecError``;
    one that does not fit in memory is returned with ``fits`` False and the reason.
    """
    if not job.global_batch:
        raise SpecError("global_batch: expected a positive number of sequences per step to "
                        "evaluate a layout, got 0")
    acc = accelerator or catalog.accelerator(layout.accelerator)
    if acc.name != layout.accelerator:
        layout = Layout(**{**layout.__dict__, "accelerator": acc.name})
    check_divisibility(job, layout)
    nmb = job.global_batch // (layout.dp * layout.micro_batch)
    x = LayoutArrays.from_layouts([layout], [nmb], {acc.name: 0})
    hw = HardwareTable.build([acc], job.precision)
    result = evaluate_arrays(job, x, hw, calibration)
    return estimate_at(result, 0, hw.names)
