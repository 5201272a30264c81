"""One point of a sweep: its question built, answered (``solve``, ``evaluate`` or
``pareto``) and turned into one row of the table.

Answers are cached in each process by the question's canonical form (``solver.question``'s
JSON of the job, limits, objective, cost model and options): points that ask the same
question -- the draws of an efficiency-only sweep, say -- share one solve. Each solve is
deterministic (one CP-SAT worker unless the base asks for more, a fixed seed), so a cached
answer is the answer a fresh solve would give.

The efficiency draw (``efficiency = "band"``): the step model's error band
``training_days_range`` is meant to hold the true time about 80% of the time and is
symmetric in log space (``[exp(-w), exp(w)]`` times the prediction, ``solver/uncertainty.py``),
so it is read as the P10 and P90 of a lognormal factor on time: ``ln factor ~ N(0, s)`` with
``s = w / z90``, ``w = ln(high / low) / 2`` and ``z90 = 1.2816``, the standard
normal's 90th percentile (Abramowitz and Stegun 1964, table 26.5). The plan is chosen at the
predicted efficiency; the factor says how long that plan may take: the time-based figures
(``table.TIME_COLUMNS``) are multiplied by it, the cost's per-plan fixed part apart, and
tokens per second and MFU divided by it.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from collections import OrderedDict
from typing import Any

from solver.errors import PluginError, SpecError
from solver.estimate import Estimate, json_number
from solver.scenario import Scenario, build
from solver.sweep.points import point, values_of
from solver.sweep.spec import SweepSpec
from solver.sweep.table import TIME_COLUMNS

#: The standard normal's 90th percentile, 1.2816 (Abramowitz and Stegun 1964, table 26.5).
Z90 = statistics.NormalDist().inv_cdf(0.9)
#: Answers kept per process.
CACHE_SIZE = 256

_cache: OrderedDict[str, Any] = OrderedDict()


def run_point(spec: SweepSpec, index: int) -> dict[str, Any]:
    """Point ``index``'s row: its inputs, status, message, layout and estimate."""
    p = point(spec, index)
    row: dict[str, Any] = dict(p.inputs)
    try:
        scenario = build(values_of(spec, p))
        answer = _answer(spec, scenario)
    except (SpecError, PluginError) as err:
        row.update(status="error", message=" ".join(str(err).split()))
        return row
    except Exception as err:  # a bug: the row says so, the other points go on
        if os.environ.get("GPUPLAN_DEBUG", "") not in ("", "0"):
            raise
        row.update(status="error", message=f"internal error ({type(err).__name__}: "
                   f"{' '.join(str(err).split())[:200]})")
        return row
    row.update(_outputs(spec, scenario, answer, p.efficiency_z))
    return row


def _key(spec: SweepSpec, s: Scenario) -> str:
    from solver.question import question_dict

    options = {"time_limit_s": s.time_limit_s, "top": s.top, "workers": s.workers,
               "seed": s.seed}
    data = question_dict(s.job, s.limits, objective=s.objective, cost_model=s.cost_model,
                         cost_params=s.cost_params, options=options)
    extra = [spec.mode, list(spec.pareto_axes), spec.pareto_points]
    return json.dumps([extra, data], sort_keys=True, default=repr)


def _answer(spec: SweepSpec, s: Scenario) -> Any:
    key = _key(spec, s)
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    if spec.mode == "solve":
        answer: Any = s.solve()
    elif spec.mode == "evaluate":
        answer = _evaluate(s)
    else:
        from solver.pareto import pareto

        answer = pareto(s.job, s.limits, axes=spec.pareto_axes, points=spec.pareto_points,
                        time_limit_s=s.time_limit_s, workers=s.workers, seed=s.seed,
                        cost_model=s.cost_model, cost_params=s.cost_params)
    _cache[key] = answer
    if len(_cache) > CACHE_SIZE:
        _cache.popitem(last=False)
    return answer


def _evaluate(s: Scenario) -> Estimate:
    from solver.evaluation import evaluate
    from solver.specs import Layout

    if len(s.limits.accelerators) != 1:
        raise SpecError(f"limits.accelerators: expected one accelerator to evaluate, got "
                        f"{len(s.limits.accelerators)}")
    layout = Layout(accelerator=s.limits.accelerators[0], **dict(s.limits.fixed))
    return evaluate(s.job, layout, cost_model=s.cost_model, cost_params=s.cost_params)


def _outputs(spec: SweepSpec, s: Scenario, answer: Any, z: float | None) -> dict[str, Any]:
    """Status, message and figures of an answer (a Plan, an Estimate or a ParetoFront)."""
    if spec.mode == "evaluate":
        est: Estimate | None = answer
        status = "fits" if answer.fits else "no-fit"
        message = answer.violations[0] if answer.violations else ""
    elif spec.mode == "solve":
        est, status = answer.estimate, answer.status
        message = "" if est is not None else (answer.explanation[0] if answer.explanation
                                              else "")
    else:
        est = answer.points[0].estimate if answer.points else None
        status = answer.status
        message = "" if answer.points else (answer.explanation[0] if answer.explanation
                                            else "")
    out: dict[str, Any] = {"status": status, "message": message}
    if est is None:
        return out
    factor = _factor(est, z)
    fixed = _fixed_usd(s, est) if factor is not None else 0.0
    out.update(est.layout_dict())
    out.update(_figures(est, factor, fixed))
    if factor is not None:
        out["efficiency_factor"] = factor
    if spec.mode == "pareto":
        out.update(_front(answer, spec.pareto_axes[1], factor, fixed))
    return out


def _factor(est: Estimate, z: float | None) -> float | None:
    """The drawn factor on time, or None (no draw, or no error band to draw from)."""
    if z is None:
        return None
    low, high = est.training_days_range
    if not (math.isfinite(low) and math.isfinite(high) and low > 0 and high > low):
        return None
    sigma = math.log(high / low) / 2 / Z90
    return float(f"{math.exp(sigma * z):.6g}")


def _fixed_usd(s: Scenario, est: Estimate) -> float:
    """The plan's per-plan fixed cost, which does not scale with time."""
    from solver import catalog, costs

    price = costs.resolve(s.cost_model, s.cost_params).price(
        catalog.accelerator(est.layout.accelerator))
    return price.fixed_usd or 0.0


def _scaled(name: str, value: float, factor: float | None, fixed: float) -> float:
    if factor is None or not math.isfinite(value):
        return value
    if name == "cost_usd":
        return (value - fixed) * factor + fixed
    if name in TIME_COLUMNS:
        return value * factor
    if name in ("tokens_per_s", "mfu"):
        return value / factor
    return value


def _figures(est: Estimate, factor: float | None, fixed: float) -> dict[str, Any]:
    low, high = est.training_days_range
    raw = {"step_time_s": est.step_time_s, "tokens_per_s": est.tokens_per_s, "mfu": est.mfu,
           "training_days": est.training_days, "training_days_low": low,
           "training_days_high": high, "wall_clock_days": est.wall_clock_days,
           "goodput": est.goodput, "expected_interruptions": est.expected_interruptions,
           "gpu_hours": est.gpu_hours, "memory_gib_per_gpu": est.memory_gib_per_gpu,
           "cost_usd": est.cost_usd, "energy_mwh": est.energy_mwh,
           "co2_tonnes": est.co2_tonnes}
    out: dict[str, Any] = {k: json_number(_scaled(k, v, factor, fixed), 4 if k in (
        "mfu", "goodput") else 6) for k, v in raw.items()}
    out["calibrated"] = est.calibrated
    return out


def _front(front: Any, second: str, factor: float | None, fixed: float) -> dict[str, Any]:
    from solver.pareto import axis_value

    days, values = [], []
    for plan in front.points:
        e = plan.estimate
        days.append(json_number(_scaled("wall_clock_days", e.wall_clock_days, factor, fixed)))
        v = axis_value(e, second)
        if second == "cost":
            v = _scaled("cost_usd", v, factor, fixed)
        elif second == "energy":
            v = _scaled("energy_mwh", v, factor, fixed)
        values.append(json_number(v))
    return {"front_points": len(front.points),
            "front_wall_clock_days": ";".join(f"{d:.6g}" for d in days if d is not None),
            "front_second": ";".join(f"{v:.6g}" for v in values if v is not None)}


__all__ = ["Z90", "run_point"]
