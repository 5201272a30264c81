"""Days and integer time steps for the fleet schedule: one place for every rounding
(durations and release days round up, deadlines and the horizon down, so the CP-SAT model
cannot accept a schedule that breaks a limit in real days), rental periods and owned windows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from solver.fleet.spec import FleetSpec, Pool

HOURS_PER_DAY = 24.0


@dataclass(frozen=True)
class Clock:
    """Conversions between days and integer steps of ``step_days``."""

    step_days: float

    def up(self, days: float) -> int:
        """Steps covering ``days`` (durations, release days): never fewer."""
        return math.ceil(days / self.step_days - 1e-9 * max(1.0, days / self.step_days))

    def down(self, days: float) -> int:
        """Steps within ``days`` (deadlines, horizon): never more."""
        return math.floor(days / self.step_days + 1e-9 * max(1.0, days / self.step_days))

    def duration(self, days: float) -> int:
        """A job's steps: its wall-clock days rounded up (at least one step)."""
        return max(1, math.ceil(days / self.step_days))

    def days(self, steps: int) -> float:
        return steps * self.step_days


def period_steps(spec: FleetSpec, clock: Clock) -> int:
    """Steps per rental period (at least one)."""
    return max(1, clock.down(spec.options.rent_period_days))


#: The last step of a pool owned to the end of the plan (no ``until_day``).
FOREVER = 10**9


def owned_window(pool: Pool, clock: Clock) -> tuple[int, int]:
    """The steps [first, last) in which the owned accelerators count."""
    last = FOREVER if pool.until_day is None else clock.down(pool.until_day)
    return clock.up(pool.from_day), last


def period_cost_usd(pool: Pool, spec: FleetSpec, clock: Clock) -> float:
    """The price of renting one accelerator of ``pool`` for one whole period."""
    return (clock.days(period_steps(spec, clock)) * HOURS_PER_DAY
            * pool.rent_usd_per_gpu_hour)
