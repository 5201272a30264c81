"""Built-in plugin: the ``cloud`` and ``owned`` cost models (``--cost-model NAME``).

Both follow the ``solver.CostModel`` contract: a rate per accelerator-hour plus a fixed cost
per plan (``solver/costs.py`` says why). Their defaults and sources:

``cloud`` (the default): the accelerator's on-demand list price per accelerator-hour
(``price_usd_per_hour`` of ``hardware_specs/*.toml``, all on one basis: a hyperscaler's US
on-demand list price, AWS else GCP else Azure, each with its provider, region and date;
``docs/prices.md``), or ``price_usd_per_hour`` given as a parameter (for every candidate
accelerator). An accelerator without a price on that basis (the H800, whose only published
figure is DeepSeek-V3's assumed $2 an hour) cannot be priced unless the parameter is given.

``owned``: the purchase price amortised over the hardware's life, plus energy, plus an
overhead for everything else a facility costs, all per accelerator-hour:

    rate = (purchase_usd / (life_years * 8766 h)
            + tdp_w * utilisation * pue / 1000 * usd_per_kwh) * (1 + overhead)

- ``purchase_usd``: the server's price per accelerator (an 8-GPU server's price / 8). There is
  no default: the accelerator's ``purchase_usd`` field when its spec has one, else give it.
  For scale: SemiAnalysis (May 2023) estimated a DGX H100 (8 GPUs) at about $270,000, i.e.
  $33,750 per GPU (as used by Epoch AI, github.com/epoch-research/training-cost-trends,
  ``h100_manufacturing_cost.ipynb``).
- ``life_years`` 5: Epoch AI's AI data-center cost model assumes 5 years for IT equipment
  (epoch.ai/data-insights/ai-datacenter-cost-breakdown, 2026-05-14); Amazon shortened the
  useful life of a subset of its servers from six to five years from 2025, Meta uses 5.5.
- ``usd_per_kwh`` 0.0806: US average industrial electricity price, 2023 (EIA Electric Power
  Monthly table 5.6.a, as compiled in Epoch AI's training-cost-trends ``energy.py``).
- ``overhead`` 0.52: in Epoch AI's 1 GW AI data-center model (same page), total cost of
  ownership is $8.5B a year, of which servers $5.0B and energy $0.6B; the rest (facility
  capital annualised, network, staff, maintenance) is (8.5 - 5.0 - 0.6) / (5.0 + 0.6) = 0.52 of
  servers plus energy.
- ``pue`` and ``utilisation``: the shared energy parameters (``solver/footprint.py``).
Idle time between runs is not charged: the rate prices the hours the run uses.
"""

from __future__ import annotations

from solver.costs import CostModel, CostParam, Params
from solver.errors import SpecError
from solver.hookspecs import hookimpl
from solver.specs import Accelerator

HOURS_PER_YEAR = 8766.0  # 365.25 days

FIXED = CostParam("fixed_usd", 0.0, "USD once per plan (set-up, data transfer, ...)")


def cloud_rate(acc: Accelerator, params: Params) -> float | None:
    price = params.get("price_usd_per_hour")
    if price is None:
        price = acc.price_usd_per_hour
    if price is None:
        raise SpecError(f"{acc.name} has no on-demand list price on gpuplan's price basis "
                        "(docs/prices.md); give one with the cost parameter price_usd_per_hour: "
                        "--cost-param price_usd_per_hour=USD")
    return float(price)


def owned_rate(acc: Accelerator, params: Params) -> float | None:
    purchase = params.get("purchase_usd")
    if purchase is None:
        purchase = acc.purchase_usd
    if purchase is None:
        raise SpecError(f"cost model 'owned' needs the purchase price of {acc.name}: give the "
                        "cost parameter purchase_usd (USD per accelerator, its share of the "
                        "server)")
    if acc.tdp_w is None:
        raise SpecError(f"cost model 'owned' needs the power of {acc.name}, whose TDP is not "
                        "published")
    hardware = float(purchase) / (float(params["life_years"]) * HOURS_PER_YEAR)
    energy = acc.tdp_w * float(params["utilisation"]) * float(params["pue"]) / 1000.0 \
        * float(params["usd_per_kwh"])
    return (hardware + energy) * (1.0 + float(params["overhead"]))


def fixed(acc: Accelerator, params: Params) -> float:
    return float(params["fixed_usd"])


CLOUD = CostModel(
    name="cloud",
    description="On-demand cloud price per accelerator-hour (the accelerator's list price).",
    rate_usd_per_hour=cloud_rate,
    fixed_usd=fixed,
    params=(CostParam("price_usd_per_hour", None, "USD per accelerator-hour for every "
                      "candidate (default: each accelerator's list price)"), FIXED),
    sources=("hardware_specs/*.toml: price_usd_per_hour, each with provider, region and date, "
             "on the basis of docs/prices.md",),
)

OWNED = CostModel(
    name="owned",
    description="Bought hardware: purchase price amortised over its life, energy, and "
                "facility and operations overhead.",
    rate_usd_per_hour=owned_rate,
    fixed_usd=fixed,
    params=(
        CostParam("purchase_usd", None, "USD per accelerator, its share of the server "
                  "(default: the accelerator's purchase_usd)"),
        CostParam("life_years", 5.0, "years over which the purchase is amortised",
                  minimum=0.1, maximum=50.0),
        CostParam("usd_per_kwh", 0.0806, "electricity price, USD per kWh"),
        CostParam("overhead", 0.52, "facility, network, staff and maintenance, as a fraction "
                  "of hardware plus energy", maximum=100.0),
        FIXED,
    ),
    sources=(
        "Epoch AI, 'Servers account for 60% of the total cost of ownership of a one-gigawatt "
        "AI data center', 2026-05-14, epoch.ai/data-insights/ai-datacenter-cost-breakdown "
        "(5-year IT life; TCO $8.5B/yr, servers $5.0B, energy $0.6B)",
        "EIA Electric Power Monthly table 5.6.a, US industrial price 2023 8.06 c/kWh (via "
        "github.com/epoch-research/training-cost-trends energy.py)",
        "SemiAnalysis, 'AI server cost analysis', May 2023: DGX H100 about $270,000 (via "
        "github.com/epoch-research/training-cost-trends h100_manufacturing_cost.ipynb)",
    ),
)


@hookimpl
def gpuplan_cost_models() -> list[CostModel]:
    return [CLOUD, OWNED]


__all__ = ["CLOUD", "OWNED", "gpuplan_cost_models"]
