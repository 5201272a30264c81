"""Energy and carbon of a run, and the defaults they use.

Energy (facility) = accelerators x hours x average power x PUE. The average power is the
accelerator's TDP: training keeps accelerators near their power limit, so this is an upper
bound of the accelerator's own draw (hosts and network are not counted).
Carbon = energy x grid intensity (location-based).

Defaults, from ../shared/reference/hardware.md:
- PUE 1.10: Google fleet, Q2 2021 (CNBC 2022-04-13); hyperscaler fleets report 1.08-1.17.
- Grid 383.55 gCO2/kWh: United States 2024 average, generation-based (Ember via
  thegreenwebfoundation/co2.js ``average-intensities.json``).
"""

from __future__ import annotations

import numpy as np

from solver.stepmodel.arrays import FloatArray

DEFAULT_PUE = 1.10
DEFAULT_GRID_G_PER_KWH = 383.55


def energy_mwh(gpus: FloatArray, hours: FloatArray, tdp_w: FloatArray,
               pue: float = DEFAULT_PUE) -> FloatArray:
    return np.asarray(gpus * hours * tdp_w * pue / 1e6)


def co2_tonnes(mwh: FloatArray, grid_g_per_kwh: float = DEFAULT_GRID_G_PER_KWH) -> FloatArray:
    return np.asarray(mwh * 1000.0 * grid_g_per_kwh / 1e6)
