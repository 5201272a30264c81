"""``solver.evaluate``: the step model's estimate for one given layout."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from solver import catalog, costs
from solver.costs import CostBasis, CostModel
from solver.errors import SpecError
from solver.estimate import Estimate, estimate_at
from solver.specs import Accelerator, Layout, TrainingJob
from solver.stepmodel.arrays import HardwareTable, LayoutArrays
from solver.stepmodel.calibration import DEFAULT_CALIBRATION, Calibration
from solver.stepmodel.evaluate import Divisibility, divisibility, evaluate_arrays, layer_slots
from solver.validate import fail


def check_divisibility(job: TrainingJob, layout: Layout) -> None:
    """Raise ``SpecError`` for the first Megatron-LM shape rule the layout breaks."""
    x = LayoutArrays.from_layouts([layout], [1], {layout.accelerator: 0})
    rules = divisibility(job, x, np.array([job.global_batch]))
    m = job.model
    for name, template in Divisibility.MESSAGES.items():
        if not bool(getattr(rules, name)[0]):
            field = {"heads_by_tp": "tp", "kv_heads_by_tp": "tp", "ffn_by_tp": "tp",
                     "experts_by_ep": "ep", "seq_by_cp": "cp", "layers_by_stages": "pp",
                     "batch_by_dp": "dp", "split_needs_stages": "pipeline_split",
                     "schedule": "schedule"}[name]
            slots = int(layer_slots(job, x)[0])
            text = template.format(heads=m.heads, kv_heads=m.kv_heads, ffn=m.ffn_hidden,
                                   experts=m.experts, seq=job.seq_len, slots=slots,
                                   gb=job.global_batch,
                                   nmb=job.global_batch // (layout.dp * layout.micro_batch))
            raise SpecError(f"{field}: {text}; got tp={layout.tp} pp={layout.pp} "
                            f"vp={layout.vp} cp={layout.cp} ep={layout.ep} dp={layout.dp} "
                            f"micro_batch={layout.micro_batch} schedule={layout.schedule} "
                            f"pipeline_split={layout.pipeline_split}")


def evaluate(job: TrainingJob, layout: Layout, *, accelerator: Accelerator | None = None,
             calibration: Calibration = DEFAULT_CALIBRATION,
             cost_model: str | CostModel | CostBasis | None = None,
             cost_params: Mapping[str, Any] | None = None) -> Estimate:
    """Time, memory, FLOPs, cost, energy and CO2 of ``job`` laid out as ``layout``.

    ``job.global_batch`` must be given. A layout that breaks a shape rule raises ``SpecError``;
    one that does not fit in memory is returned with ``fits`` False and the reason.
    ``cost_model`` names the cost model (default ``cloud``), ``cost_params`` its parameters and
    the shared energy ones (``pue``, ``utilisation``, ``grid_g_per_kwh``, ``region``). A named
    cost model that cannot price the accelerator raises ``SpecError`` saying what is missing.
    """
    if not isinstance(job, TrainingJob):
        raise fail("job", "a solver.TrainingJob", job)
    if not isinstance(layout, Layout):
        raise fail("layout", "a solver.Layout", layout)
    if not job.global_batch:
        raise SpecError("global_batch: expected a positive number of sequences per step to "
                        "evaluate a layout, got 0")
    acc = accelerator or catalog.accelerator(layout.accelerator)
    if acc.name != layout.accelerator:
        layout = Layout(**{**layout.__dict__, "accelerator": acc.name})
    check_divisibility(job, layout)
    nmb = job.global_batch // (layout.dp * layout.micro_batch)
    x = LayoutArrays.from_layouts([layout], [nmb], {acc.name: 0})
    basis = costs.resolve(cost_model, cost_params)
    if basis.named and not isinstance(cost_model, CostBasis):
        price = basis.price(acc)
        if price.rate_usd_per_hour is None:
            raise SpecError(f"cost_model: {price.why_not}")
    hw = HardwareTable.build([acc], job.precision, basis)
    result = evaluate_arrays(job, x, hw, calibration)
    return estimate_at(result, 0, hw.names, job=job, accelerator=acc)
