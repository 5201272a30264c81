"""Energy and carbon of a run, the parameters they take, and their sourced defaults.

Energy (facility) = accelerators x hours x TDP x utilisation x PUE: the accelerators' own draw
(hosts and network are not counted) times the facility's overhead.
Carbon = energy x grid intensity (location-based: renewable purchases are not subtracted).

The parameters are shared by every cost model (``--cost-param KEY=VALUE``, ``cost_params=``):

- ``pue`` 1.10: Google fleet, Q2 2021 (CNBC 2022-04-13); hyperscaler fleets report 1.08-1.17,
  a generic colocation or enterprise site 1.5-1.6 (Uptime Institute surveys 2021-2024:
  industry average 1.56-1.58).
- ``utilisation`` 1.0: average power over TDP. NVIDIA's DGX SuperPOD data-center design guide
  (DGX H100) plans for average power equal to peak: "DGX H100 systems operate at or near peak
  utilization continuously when running AI workloads" (as cited by Epoch AI,
  github.com/epoch-research/training-cost-trends ``energy.py``, which itself uses 0.75 of
  server TDP for GPUs). TDP is thus an upper bound of the accelerator's own draw.
- ``grid_g_per_kwh`` 383.55: United States 2024 average, generation-based (Ember via
  thegreenwebfoundation/co2.js ``average-intensities.json``), or the figure of ``region``.
- ``region``: a Google Cloud region (location-based grid intensity 2024,
  GoogleCloudPlatform/region-carbon-info ``data/yearly/2024.csv``) or a country (Ember 2024).
  The two datasets use different methods (generation-based national averages against
  location-based regional ones): compare plans within one.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from solver.errors import SpecError

FloatArray = np.ndarray

DEFAULT_PUE = 1.10
DEFAULT_UTILISATION = 1.0
DEFAULT_REGION = "us"

#: Grid intensity (gCO2e/kWh) by region, with the dataset each figure comes from.
_GCP = "Google Cloud region, location-based 2024 (GoogleCloudPlatform/region-carbon-info)"
_EMBER = "country, generation-based 2024 (Ember via thegreenwebfoundation/co2.js)"
GRID_G_PER_KWH: dict[str, tuple[float, str]] = {
    # Ember 2024, national
    "world": (472.94, _EMBER), "us": (383.55, _EMBER), "china": (557.5, _EMBER),
    "india": (708.96, _EMBER), "eu-27": (213.02, _EMBER), "germany": (342.06, _EMBER),
    "france": (44.18, _EMBER), "uk": (215.79, _EMBER), "netherlands": (252.7, _EMBER),
    "ireland": (279.79, _EMBER), "poland": (614.98, _EMBER), "sweden": (35.89, _EMBER),
    "norway": (30.75, _EMBER), "japan": (483.73, _EMBER), "south-korea": (415.65, _EMBER),
    "taiwan": (635.15, _EMBER), "singapore": (498.74, _EMBER), "australia": (553.76, _EMBER),
    "canada": (184.99, _EMBER), "brazil": (106.06, _EMBER),
    # Google Cloud regions 2024
    "us-central1": (412.72, _GCP), "us-central2": (372.23, _GCP), "us-east1": (575.77, _GCP),
    "us-east4": (323.05, _GCP), "us-east5": (323.05, _GCP), "us-south1": (302.95, _GCP),
    "us-west1": (79.23, _GCP), "northamerica-northeast1": (5.48, _GCP),
    "europe-west4": (208.81, _GCP), "europe-west1": (103.37, _GCP),
    "europe-west3": (275.82, _GCP), "europe-west9": (16.3, _GCP),
    "europe-north1": (39.32, _GCP), "europe-central2": (642.88, _GCP),
    "asia-east1": (439.29, _GCP), "asia-northeast1": (452.85, _GCP),
    "asia-south1": (678.76, _GCP), "asia-southeast1": (366.85, _GCP),
}
DEFAULT_GRID_G_PER_KWH = GRID_G_PER_KWH[DEFAULT_REGION][0]

#: The parameter names every cost model shares.
PARAMS = ("pue", "utilisation", "grid_g_per_kwh", "region")


@dataclass(frozen=True)
class Footprint:
    """How energy and carbon are computed for a plan (``basis`` says where the grid figure
    comes from)."""

    pue: float = DEFAULT_PUE
    utilisation: float = DEFAULT_UTILISATION
    grid_g_per_kwh: float = DEFAULT_GRID_G_PER_KWH
    basis: str = f"{DEFAULT_REGION}: {GRID_G_PER_KWH[DEFAULT_REGION][1]}"

    def facility_w(self, tdp_w: float | None) -> float | None:
        """Average facility power per accelerator: TDP x utilisation x PUE."""
        return None if tdp_w is None else tdp_w * self.utilisation * self.pue

    def as_params(self) -> dict[str, Any]:
        return {"pue": self.pue, "utilisation": self.utilisation,
                "grid_g_per_kwh": self.grid_g_per_kwh, "region": self.basis.split(":")[0]}


def _number(key: str, value: Any, low: float, high: float, what: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            value = value.strip()
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or not low <= value <= high:
        shown = repr(value if not isinstance(value, str) else value[:60])
        raise SpecError(f"cost_params: {key}: expected {what}, got {shown}")
    return float(value)


def from_params(params: Mapping[str, Any]) -> Footprint:
    """The footprint given by the shared keys of ``params`` (others are ignored)."""
    pue = _number("pue", params.get("pue", DEFAULT_PUE), 1.0, 5.0,
                  "a power usage effectiveness in [1, 5]")
    utilisation = _number("utilisation", params.get("utilisation", DEFAULT_UTILISATION),
                          0.0, 1.0, "a fraction of TDP in [0, 1]")
    if "grid_g_per_kwh" in params and "region" in params:
        raise SpecError("cost_params: give region or grid_g_per_kwh, not both")
    if "grid_g_per_kwh" in params:
        grid = _number("grid_g_per_kwh", params["grid_g_per_kwh"], 0.0, 5000.0,
                       "a grid intensity in gCO2/kWh in [0, 5000]")
        return Footprint(pue, utilisation, grid, "custom: grid_g_per_kwh given")
    region = str(params.get("region", DEFAULT_REGION)).strip().lower()
    if region not in GRID_G_PER_KWH:
        close = difflib.get_close_matches(region, list(GRID_G_PER_KWH), n=3, cutoff=0.6)
        hint = (f"did you mean {', '.join(close)}?" if close
                else f"known: {', '.join(GRID_G_PER_KWH)}; or give grid_g_per_kwh")
        raise SpecError(f"cost_params: region: unknown region {region[:60]!r}; {hint}")
    grid, source = GRID_G_PER_KWH[region]
    return Footprint(pue, utilisation, grid, f"{region}: {source}")


def energy_mwh(gpus: FloatArray, hours: FloatArray, facility_w: FloatArray) -> FloatArray:
    """Facility energy of ``gpus`` accelerators drawing ``facility_w`` each for ``hours``."""
    return np.asarray(gpus * hours * facility_w / 1e6)


def co2_tonnes(mwh: FloatArray, grid_g_per_kwh: FloatArray | float = DEFAULT_GRID_G_PER_KWH
               ) -> FloatArray:
    return np.asarray(mwh * 1000.0 * grid_g_per_kwh / 1e6)
