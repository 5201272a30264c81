"""The error band on training time: how far the step model's answer may be from the truth.

The band rests on ``solver/data/loo_residuals.json``: for every published run gpuplan is
calibrated on, its leave-one-out (LOO) error ``e = predicted / published - 1`` of throughput
(the run predicted by a calibration fitted without it) and its descriptors: accelerator
family, precision, dense or MoE, GPU count, sequence length. ``python benchmarks/fidelity.py
--write-residuals`` writes it. Time scales inversely with throughput, so a run's true training
time is the predicted time times ``1 + e``; the band is a range of that factor.

The rule (``Rule``; docs/model.md, "Error band"):

1. Distance from the question to each run: ``family_w`` if the family differs (large: runs of
   the same family come first), ``precision_w`` if the precision differs, ``moe_w`` if one is
   MoE and the other dense, plus ``gpus_w * |log2(gpus / run gpus)|`` and
   ``seq_w * |log2(seq_len / run seq_len)|``.
2. The ``k`` nearest runs (ties by table order). Their log errors ``l = ln(1 + e)``; the
   half-width ``w`` is the ``ceil(quantile * k)``-th smallest ``|l|`` (an empirical quantile that
   takes no interpolation), at least ``floor``.
3. Widening outside the calibrated envelope, factors multiplied into ``w``:
   ``family_widen`` when no published run is on the family (efficiencies inherited), ``moe_widen``
   for MoE on a family with no MoE run, and ``1 + range_widen * log2(beyond)`` when the GPU count
   or the sequence length lies ``beyond`` times outside the family's runs' range.
4. Band on training time: ``[exp(-w), exp(w)]`` times the predicted time.

``calibrated`` is False when the answer is an extrapolation: no published run of the family,
MoE on a family with no MoE run, or a GPU count or sequence length more than ``envelope`` times
beyond the family's runs.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from solver.specs import Accelerator, Layout, TrainingJob

#: Where the efficiencies of a family without a run of its own come from (``Calibration``'s
#: defaults are the NVIDIA Hopper fit, the lower of Ampere's and Hopper's).
INHERITED = "the NVIDIA Hopper fit (Calibration defaults)"


@dataclass(frozen=True)
class Query:
    """What the band depends on: the question's descriptors."""

    family: str
    precision: str
    is_moe: bool
    gpus: int
    seq_len: int


@dataclass(frozen=True)
class Residual:
    """One published run's leave-one-out error and its descriptors."""

    id: str
    family: str
    precision: str
    is_moe: bool
    gpus: int
    seq_len: int
    loo_error: float  # predicted / published - 1 of throughput

    def query(self) -> Query:
        return Query(self.family, self.precision, self.is_moe, self.gpus, self.seq_len)

    @property
    def log_error(self) -> float:
        """``ln(1 + e)``: the log of true time over predicted time."""
        return math.log1p(self.loo_error)


class Band(NamedTuple):
    """Training time lies within ``[low, high]`` times the predicted time."""

    low: float
    high: float
    calibrated: bool
    note: str


@dataclass(frozen=True)
class Rule:
    """The band rule's parameters (the only things tuned, over all runs together)."""

    k: int = 12
    coverage: float = 0.8
    floor: float = 0.03
    family_w: float = 100.0
    precision_w: float = 1.0
    moe_w: float = 1.0
    gpus_w: float = 0.25
    seq_w: float = 0.5
    family_widen: float = 2.0
    moe_widen: float = 1.5
    range_widen: float = 0.75
    envelope: float = 2.0


RULE = Rule()

RULE_SUMMARY = (f"k={RULE.k} nearest runs, the ceil({RULE.coverage:g} (k + 1))-th smallest of "
                f"their |log error| (at least {RULE.floor:.0%}); x{RULE.family_widen} with no "
                f"run on the family, x{RULE.moe_widen} for MoE without a MoE run on it, x(1 + "
                f"{RULE.range_widen} log2 beyond) outside its GPU or sequence range")


def distance(q: Query, r: Residual, rule: Rule = RULE) -> float:
    """How far run ``r`` is from question ``q`` (rule step 1)."""
    return (rule.family_w * (q.family != r.family)
            + rule.precision_w * (q.precision != r.precision)
            + rule.moe_w * (q.is_moe != r.is_moe)
            + rule.gpus_w * abs(math.log2(q.gpus / r.gpus))
            + rule.seq_w * abs(math.log2(q.seq_len / r.seq_len)))


def spread(log_errors: Sequence[float], coverage: float) -> float:
    """The ``ceil(coverage * (n + 1))``-th smallest ``|l|`` of ``n`` log errors, at most the
    largest (rule step 2): for exchangeable errors, a new one falls within the ``r``-th
    smallest of ``n`` with probability ``r / (n + 1)`` (the split-conformal quantile)."""
    ordered = sorted(abs(v) for v in log_errors)
    rank = min(len(ordered), max(1, math.ceil(coverage * (len(ordered) + 1) - 1e-9)))
    return ordered[rank - 1]


def beyond(value: float, low: float, high: float) -> float:
    """How many times ``value`` lies outside ``[low, high]`` (1 inside)."""
    return max(value / high, low / value, 1.0)


def _gpus(n: float) -> str:
    return f"{n:,.0f}"


def widening(q: Query, table: Sequence[Residual], rule: Rule,
             inherited: str) -> tuple[float, bool, list[str]]:
    """Rule step 3: the factor on the half-width, whether the question lies inside the
    calibrated envelope, and the reasons (phrases for the note)."""
    own = [r for r in table if r.family == q.family]
    factor, calibrated, why = 1.0, True, []
    if not own:
        factor *= rule.family_widen
        calibrated = False
        why.append(f"no published run on {q.family}: efficiencies inherited from {inherited}")
    elif q.is_moe and not any(r.is_moe for r in own):
        factor *= rule.moe_widen
        calibrated = False
        why.append(f"MoE with no published MoE run on {q.family}")
    ranged = own or list(table)
    where = f"the {q.family} runs'" if own else "all runs'"
    for name, value, values, show in (
            ("GPUs", q.gpus, [r.gpus for r in ranged], _gpus),
            ("sequence length", q.seq_len, [r.seq_len for r in ranged], _gpus)):
        lo, hi = min(values), max(values)
        out = beyond(value, lo, hi)
        if out > 1.0:
            factor *= 1.0 + rule.range_widen * math.log2(out)
            if out > rule.envelope:
                calibrated = False
            why.append(f"{name} {show(value)} outside {where} {show(lo)}-{show(hi)}")
    return factor, calibrated, why


def band_from(table: Sequence[Residual], q: Query, rule: Rule = RULE,
              inherited: str = INHERITED) -> Band:
    """The band for question ``q`` from the residuals ``table`` (the module's rule)."""
    if not table:
        return Band(math.nan, math.nan, False, "no published run to build a band from")
    order = sorted(range(len(table)), key=lambda i: distance(q, table[i], rule))
    near = [table[i] for i in order[:rule.k]]
    w = max(spread([r.log_error for r in near], rule.coverage), rule.floor)
    factor, calibrated, why = widening(q, table, rule, inherited)
    w *= factor
    counts: dict[str, int] = {}
    for r in near:
        counts[r.family] = counts.get(r.family, 0) + 1
    rests = ", ".join(f"{n} {family}" for family, n in counts.items())
    note = (f"band for {rule.coverage:.0%} coverage from the leave-one-out errors of the "
            f"{len(near)} nearest published runs ({rests})")
    if factor > 1.0:
        note += f", widened x{factor:.2f}"
    if why:
        note = ("uncalibrated: " if not calibrated else "") + "; ".join(why) + "; " + note
    return Band(math.exp(-w), math.exp(w), calibrated, note)


@functools.lru_cache(maxsize=1)
def shipped() -> tuple[Residual, ...]:
    """The residual table shipped in ``solver/data/loo_residuals.json``."""
    path = importlib.resources.files("solver") / "data" / "loo_residuals.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    return tuple(Residual(id=r["id"], family=r["family"], precision=r["precision"],
                          is_moe=bool(r["is_moe"]), gpus=int(r["gpus"]),
                          seq_len=int(r["seq_len"]), loo_error=float(r["loo_error"]))
                 for r in doc["runs"])


def query(job: TrainingJob, layout: Layout, accelerator: Accelerator) -> Query:
    return Query(family=accelerator.family, precision=job.precision,
                 is_moe=bool(job.model.is_moe), gpus=int(layout.gpus),
                 seq_len=int(job.seq_len))


def band(job: TrainingJob, layout: Layout, accelerator: Accelerator) -> Band:
    """The band on training time of ``job`` laid out as ``layout`` on ``accelerator``:
    ``(low_factor, high_factor, calibrated, note)``."""
    inherited = INHERITED
    if accelerator.matmul_scale is not None:
        inherited = f"its spec (matmul_scale {accelerator.matmul_scale:g}, not fitted)"
    return band_from(shipped(), query(job, layout, accelerator), inherited=inherited)


@functools.lru_cache(maxsize=65_536)
def _high(q: Query) -> float:
    return band_from(shipped(), q).high


def high_factors(job: TrainingJob, families: Sequence[str], accel: np.ndarray,
                 gpus: np.ndarray) -> np.ndarray:
    """The high end of the band over the predicted time, for each layout (its accelerator's
    family ``families[accel[i]]`` and its ``gpus[i]``): what ``Limits.risk = "high"`` judges
    a deadline against. Computed once per distinct (family, GPU count)."""
    accel, gpus = np.asarray(accel, np.int64), np.asarray(gpus, np.int64)
    out = np.empty(accel.shape)
    if accel.size == 0:
        return out
    pairs, inverse = np.unique(np.stack([accel.ravel(), gpus.ravel()]), axis=1,
                               return_inverse=True)
    values = np.array([_high(Query(families[int(a)], job.precision, bool(job.model.is_moe),
                                   int(g), int(job.seq_len))) for a, g in pairs.T])
    return values[np.asarray(inverse).ravel()].reshape(accel.shape)


#: No band is narrower than its floor: ``exp(floor)`` bounds every high factor from below.
HIGH_FACTOR_FLOOR = math.exp(RULE.floor)

__all__ = ["HIGH_FACTOR_FLOOR", "RULE", "Band", "Query", "Residual", "Rule", "band",
           "band_from", "distance", "high_factors", "shipped", "spread"]
