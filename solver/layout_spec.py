"""How a job is laid out and what a plan must respect: ``Layout`` and ``Limits``.

Split from ``solver.specs``, which re-exports every name here (docs/interface.md, "Library").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from solver.layout_options import (
    PIPELINE_SPLITS,
    SCHEDULES,
    recompute_code,
    recompute_name,
)
from solver.validate import as_choice, as_float, as_int, as_name, fail

#: Which end of the error band a deadline is judged at (``Limits.risk``).
RISKS = ("expected", "high")
#: The plain recomputation modes; ``Layout.recompute`` also takes Megatron-LM's modules
#: joined by ``+`` (``solver.layout_options``).
RECOMPUTE_MODES = ("none", "selective", "full")

LAYOUT_FIELDS = ("tp", "pp", "dp", "cp", "ep", "vp", "micro_batch", "zero_stage", "recompute",
                 "schedule", "pipeline_split")


@dataclass(frozen=True)
class Layout:
    """How one job is laid out (Megatron-LM semantics): ``gpus = tp * pp * cp * dp``.

    ``recompute``: ``none``, ``selective``, ``full`` or Megatron-LM recompute modules joined
    by ``+`` (``solver.layout_options``); stored in its canonical spelling. ``schedule``: the
    pipeline schedule (``1f1b``, interleaved when ``vp > 1``; ``zero-bubble``; ``dualpipe``).
    ``pipeline_split``: which edge stages give a layer's room to the embedding or the LM head
    (``even``, ``embedding``, ``loss``, ``both``).
    """

    accelerator: str
    tp: int
    pp: int
    dp: int
    cp: int = 1
    ep: int = 1
    vp: int = 1
    micro_batch: int = 1
    zero_stage: int = 0
    recompute: str = "none"
    schedule: str = "1f1b"
    pipeline_split: str = "even"

    def __post_init__(self) -> None:
        object.__setattr__(self, "accelerator", as_name("accelerator", self.accelerator).lower())
        for name in ("tp", "pp", "dp", "cp", "ep", "vp", "micro_batch"):
            object.__setattr__(self, name, as_int(name, getattr(self, name)))
        object.__setattr__(self, "zero_stage",
                           as_int("zero_stage", self.zero_stage, minimum=0, maximum=3))
        object.__setattr__(self, "recompute", recompute_name(recompute_code(self.recompute)))
        as_choice("schedule", self.schedule, SCHEDULES)
        as_choice("pipeline_split", self.pipeline_split, PIPELINE_SPLITS)
        if (self.dp * self.cp) % self.ep:
            raise fail("ep", f"a divisor of dp*cp={self.dp * self.cp}", self.ep)

    @property
    def gpus(self) -> int:
        return self.tp * self.pp * self.cp * self.dp


@dataclass(frozen=True)
class Limits:
    """What a plan must respect (docs/interface.md). None means no limit.

    ``tokens_per_step`` bounds the global batch the solver may choose when the job leaves it
    open: (1M, 16M) tokens by default, the range published pre-training runs use (GPT-3 3.2M,
    Llama 3 405B 4M-16M, DeepSeek-V3 about 15M tokens per step). ``risk``: ``"expected"``
    judges a deadline against the predicted training days; ``"high"`` against the high end of
    their error band (``solver.uncertainty``), so the deadline holds on the pessimistic side of
    what the published runs say about predictions like this one. ``launcher``: ``megatron``,
    ``torchtitan`` or ``deepspeed``: only layouts that launcher can start are searched
    (``solver.launchers``, docs/launchers.md); None: every layout the step model knows.
    """

    accelerators: tuple[str, ...] = ()
    gpus: int | None = None
    max_gpus: int | None = None
    deadline_days: float | None = None
    budget_usd: float | None = None
    fixed: Mapping[str, Any] = field(default_factory=dict)
    tokens_per_step: tuple[float, float] = (1_000_000.0, 16_000_000.0)
    risk: str = "expected"
    launcher: str | None = None

    def __post_init__(self) -> None:
        as_choice("risk", self.risk, RISKS)
        if self.launcher is not None:
            from solver.launchers import LAUNCHERS  # numpy: not for the CLI's --help

            as_choice("launcher", self.launcher, LAUNCHERS)
        accels = self.accelerators
        if isinstance(accels, str):
            accels = (accels,)
        if not isinstance(accels, (list, tuple)) or not all(
                isinstance(a, str) and a.strip() for a in accels):
            raise fail("accelerators", "a list of accelerator names", accels)
        object.__setattr__(self, "accelerators", tuple(a.strip().lower() for a in accels))
        if self.gpus is not None:
            object.__setattr__(self, "gpus", as_int("gpus", self.gpus))
        if self.max_gpus is not None:
            object.__setattr__(self, "max_gpus", as_int("max_gpus", self.max_gpus))
        if self.gpus is not None and self.max_gpus is not None and self.gpus > self.max_gpus:
            raise fail("gpus", f"at most max_gpus={self.max_gpus}", self.gpus)
        for name in ("deadline_days", "budget_usd"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, as_float(name, value))
        if not isinstance(self.fixed, Mapping):
            raise fail("fixed", "a table of layout fields", self.fixed)
        object.__setattr__(self, "fixed", _check_fixed(self.fixed))
        low, high = _token_range(self.tokens_per_step)
        object.__setattr__(self, "tokens_per_step", (low, high))


def _token_range(value: Any) -> tuple[float, float]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise fail("tokens_per_step", "a pair (low, high)", value)
    low = as_float("tokens_per_step", value[0])
    high = as_float("tokens_per_step", value[1])
    if low > high:
        raise fail("tokens_per_step", "low <= high", value)
    return low, high


def _check_fixed(fixed: Mapping[str, Any]) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    for key, value in fixed.items():
        name = f"fixed.{key}"
        if key == "recompute":
            checked[key] = recompute_name(recompute_code(value, name))
        elif key == "schedule":
            checked[key] = as_choice(name, value, SCHEDULES)
        elif key == "pipeline_split":
            checked[key] = as_choice(name, value, PIPELINE_SPLITS)
        elif key == "zero_stage":
            checked[key] = as_int(name, value, minimum=0, maximum=3)
        elif key in ("tp", "pp", "dp", "cp", "ep", "vp", "micro_batch"):
            checked[key] = as_int(name, value)
        else:
            raise fail("fixed", "keys among " + ", ".join(LAYOUT_FIELDS), key)
    return checked


__all__ = ["LAYOUT_FIELDS", "Layout", "Limits"]
