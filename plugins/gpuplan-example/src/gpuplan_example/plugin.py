"""The hooks of the reference plugin: one accelerator and one cost model.

gpuplan imports this module through the entry point in ``pyproject.toml`` and calls each
function marked ``@solver.hookimpl`` once, with no arguments. Each returns a list of frozen
gpuplan objects (``solver.Accelerator``, ``solver.CostModel``); a hook that raises or returns
anything else is reported on stderr and left out, so a mistake here never breaks gpuplan.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import solver

#: FICTIONAL. There is no "example-x1": its figures are round, plausible numbers between an
#: H100 and a B200, made up so that this plugin has something to add. Replace it with your
#: accelerator and cite where each figure comes from.
EXAMPLE_X1 = solver.Accelerator(
    name="example-x1",
    vendor="Example Corp (fictional)",
    peak_tflops={"fp32": 60.0, "tf32": 400.0, "bf16": 800.0, "fp8": 1600.0},  # dense
    memory_gib=128.0,
    memory_bw_gb_s=4000.0,  # HBM, GB/s
    scaleup_bw_gb_s=400.0,  # GB/s per accelerator, one direction
    scaleup_domain=8,  # accelerators sharing the scale-up fabric
    scaleout_bw_gb_s=50.0,  # GB/s per accelerator, one direction (one 400 Gb/s NIC)
    tdp_w=750.0,
    price_usd_per_hour=4.0,  # on-demand USD per accelerator-hour
    purchase_usd=25_000.0,  # for the built-in "owned" cost model
    aliases=("x1",),
    sources=("FICTIONAL: made up for the gpuplan reference plugin; not a real product",),
    notes="Fictional accelerator of the gpuplan-example reference plugin.",
)


def spot_rate(acc: solver.Accelerator, params: Mapping[str, Any]) -> float | None:
    """USD per accelerator-hour: the on-demand price, discounted, plus the work that
    preemptions make you redo. Depends only on the accelerator and the parameters, as the
    ``solver.CostModel`` contract requires."""
    on_demand = params["on_demand_usd_per_hour"]
    if on_demand is None:
        on_demand = acc.price_usd_per_hour
    if on_demand is None:
        raise solver.SpecError(f"spot needs an on-demand price for {acc.name}: give the cost "
                               "parameter on_demand_usd_per_hour")
    return on_demand * (1.0 - params["discount"]) * (1.0 + params["interruption_overhead"])


#: Spot (preemptible) capacity. The defaults are ILLUSTRATIVE, not measured: spot discounts
#: vary by provider, region and hour; pass your own with --cost-param.
SPOT = solver.CostModel(
    name="spot",
    description="Spot/preemptible capacity: a discount on the on-demand price, plus the work "
                "redone after preemptions (illustrative defaults).",
    rate_usd_per_hour=spot_rate,
    params=(
        solver.CostParam("discount", 0.6, "fraction off the on-demand price (illustrative)",
                         maximum=1.0),
        solver.CostParam("interruption_overhead", 0.1, "extra accelerator-hours spent redoing "
                         "work after preemptions, as a fraction (illustrative)", maximum=10.0),
        solver.CostParam("on_demand_usd_per_hour", None, "on-demand price to discount "
                         "(default: the accelerator's price_usd_per_hour)"),
    ),
    sources=("illustrative defaults of the gpuplan-example reference plugin",),
)


@solver.hookimpl
def gpuplan_accelerators() -> list[solver.Accelerator]:
    return [EXAMPLE_X1]


@solver.hookimpl
def gpuplan_cost_models() -> list[solver.CostModel]:
    return [SPOT]
