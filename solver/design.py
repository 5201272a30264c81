"""``solver.design``: the model size and token count that minimise loss within a deadline or
a budget on given accelerators, with the plan that trains it (docs/design.md).

For each candidate size (a Llama-3-style dense decoder, ``solver.design_shapes``) the search
(``solver.solve``) finds its best layout on the accelerators; at a fixed layout wall-clock days
and cost grow in proportion to the tokens (``solver/stepmodel/goodput.py``: the wall-clock
factor of failures, checkpoints and restarts depends on the layout alone; cost is a rate times
that time), so one solve at a reference token count gives the tokens ``D(N)`` the deadline
(``days``) or the budget (``budget_usd``) allows. The loss law (``solver.scaling_law``) scores
``L(N, D(N))``; the sizes are searched coarse to fine (4 to a decade, then 16 to a decade
between the best one's neighbours), and the best is solved again with its tokens and the
deadline and budget as limits, so the plan returned meets them.

The layout a candidate is scored at: the fastest (objective ``time``) when a deadline is
given, with the tokens the budget buys at that layout as a second cap when a budget is given
too; the cheapest (objective ``cost``) when only a budget is given. With both, a slower and
cheaper layout might buy more tokens within the deadline than the fastest: ``D(N)`` is then a
lower bound, and the final solve (objective ``cost`` under both limits) may pick such a layout
for the same tokens.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from solver import catalog, costs, design_shapes, scaling_law
from solver.costs import CostModel
from solver.errors import SpecError
from solver.estimate import SCHEMA_VERSION, Estimate, json_number
from solver.plan import EXIT_CODES, Plan
from solver.scaling_law import FLOPS_PER_PARAM_TOKEN, ScalingLaw
from solver.search.solve import solve
from solver.specs import Limits, ModelSpec, TrainingJob
from solver.validate import MAX_TOKENS, as_float, as_int

#: Sizes searched by default: from about Llama 3.2 1B's half to about five Llama 3.1 405B.
MIN_PARAMS, MAX_PARAMS = 5e8, 2e12
COARSE_PER_DECADE, FINE_PER_DECADE = 4, 16
#: Tokens per parameter of the reference solve (any count gives the same layout ranking).
REFERENCE_TOKENS_PER_PARAM = 20.0
#: Tokens are rounded down to this many significant figures (at most 0.1% fewer: the loss
#: moves by about 1e-5 nats, far below the differences between sizes that decide).
TOKEN_DIGITS = 4
#: Losses within this many nats of the best are reported as a near-optimal range of sizes:
#: the law's own uncertainty is far larger (Besiroglu et al. 2024: E = 1.8172, standard
#: error 0.03), so the sizes in it are equally good answers.
NEAR_LOSS = 0.001
#: Losses closer than this are one answer: the law's constants are published to about four
#: significant figures (E = 1.8172, Besiroglu et al. 2024), so smaller differences come from
#: the step model's steps in MFU between layouts, not from the law (4,096 H100, 90 days: 385B
#: and 438B parameters score 1.907178 and 1.907168). Among tied sizes ``pick`` takes the one
#: nearest the law's own compute-optimal size at its compute.
TIE_LOSS = 1e-4


@dataclass(frozen=True)
class Candidate:
    """One size tried: its model, the tokens the limits allow and the loss the law gives, or
    why it was skipped (no layout fits: ``skipped`` says why, the figures are NaN)."""

    model: ModelSpec
    tokens: float = math.nan
    loss: float = math.nan
    wall_clock_days: float = math.nan
    cost_usd: float = math.nan
    estimate: Estimate | None = None
    skipped: str | None = None

    @property
    def params(self) -> int:
        return self.model.params_total

    def to_dict(self) -> dict[str, Any]:
        e = self.estimate
        return {
            "name": self.model.name, "params": self.params, "layers": self.model.layers,
            "hidden": self.model.hidden, "tokens": json_number(self.tokens),
            "tokens_per_param": json_number(self.tokens / self.params),
            "loss": json_number(self.loss), "wall_clock_days": json_number(self.wall_clock_days),
            "cost_usd": json_number(self.cost_usd), "gpus": e.layout.gpus if e else None,
            "mfu": json_number(e.mfu, 4) if e else None, "skipped": self.skipped,
        }


@dataclass(frozen=True)
class Design:
    """``solver.design``'s answer: the chosen model, its tokens, its predicted loss and the
    plan that trains it within the limits, beside every candidate tried."""

    status: str
    law: ScalingLaw
    model: ModelSpec | None
    tokens: float
    loss: float
    plan: Plan | None
    candidates: tuple[Candidate, ...]
    limits: Limits
    job: TrainingJob | None = None
    notes: tuple[str, ...] = field(default=())
    solves: int = 0
    solve_time_s: float = 0.0

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    @property
    def params(self) -> int:
        return self.model.params_total if self.model is not None else 0

    @property
    def tokens_per_param(self) -> float:
        return self.tokens / self.params if self.params else math.nan

    @property
    def compute_flops(self) -> float:
        """``6 N D``: the compute the law counts (Kaplan et al. 2020 sec. 2.1)."""
        return FLOPS_PER_PARAM_TOKEN * self.params * self.tokens

    def law_optimum(self) -> tuple[float, float]:
        """The law's own compute-optimal ``(N, D)`` at this design's ``6 N D``."""
        if self.model is None:
            return math.nan, math.nan
        return self.law.compute_optimal(self.compute_flops)

    def near_optimal(self) -> tuple[int, int] | None:
        """The smallest and largest size tried whose loss is within ``NEAR_LOSS`` of the
        best."""
        near = [c.params for c in self.candidates if c.loss <= self.loss + NEAR_LOSS]
        return (min(near), max(near)) if near else None

    def to_dict(self) -> dict[str, Any]:
        n_opt, d_opt = self.law_optimum()
        near = self.near_optimal()
        x = self.limits
        return {
            "schema_version": SCHEMA_VERSION,
            "status": self.status,
            "law": {k: (json_number(v) if isinstance(v, float) else v)
                    for k, v in self.law.to_dict().items()},
            "limits": {"accelerator": x.accelerators[0], "gpus": x.gpus,
                       "max_gpus": x.max_gpus, "days": x.deadline_days,
                       "budget_usd": x.budget_usd},
            "model": self.model.to_dict() if self.model is not None else None,
            "params": self.params or None,
            "tokens": json_number(self.tokens),
            "tokens_per_param": json_number(self.tokens_per_param),
            "loss": json_number(self.loss),
            "compute_flops": json_number(self.compute_flops),
            "law_optimum": {"params": json_number(n_opt), "tokens": json_number(d_opt),
                            "tokens_per_param": json_number(d_opt / n_opt)},
            "near_optimal": {"loss_within": NEAR_LOSS,
                             "min_params": near[0] if near else None,
                             "max_params": near[1] if near else None},
            "plan": self.plan.to_dict() if self.plan is not None else None,
            "candidates": [c.to_dict() for c in self.candidates],
            "notes": list(self.notes),
            "solves": self.solves,
            "solve_time_s": round(self.solve_time_s, 3),
        }


def round_down(value: float, digits: int = TOKEN_DIGITS) -> float:
    """``value`` cut to ``digits`` significant figures (never rounded up: a quotient just
    below a whole number of steps loses one step)."""
    if not value > 0 or not math.isfinite(value):
        return value
    step = 10.0 ** (math.floor(math.log10(value)) - digits + 1)
    return math.floor(value / step) * step


def _limits(accelerator: str, gpus: int | None, max_gpus: int | None, days: float | None,
            budget_usd: float | None) -> Limits:
    """The question's limits, checked (``SpecError`` naming the field)."""
    name = catalog.accelerator(accelerator, field="accelerator").name
    if gpus is None and max_gpus is None:
        raise SpecError("gpus: missing; a design needs the accelerator count: give gpus "
                        "(exactly) or max_gpus (at most)")
    if days is None and budget_usd is None:
        raise SpecError("days: missing; a design needs a deadline or a budget: give days or "
                        "budget_usd")
    return Limits(accelerators=(name,), gpus=None if gpus is None else as_int("gpus", gpus),
                  max_gpus=None if max_gpus is None else as_int("max_gpus", max_gpus),
                  deadline_days=None if days is None else as_float("days", days),
                  budget_usd=None if budget_usd is None else as_float("budget_usd", budget_usd))


class _Search:
    """Scores candidate sizes: one solve each at a reference token count."""

    def __init__(self, law: ScalingLaw, limits: Limits, job_fields: dict[str, Any],
                 solve_options: dict[str, Any], say: Callable[[str], None]) -> None:
        self.law, self.limits, self.job_fields = law, limits, job_fields
        self.options, self.say = solve_options, say
        self.objective = "time" if limits.deadline_days is not None else "cost"
        self.scored: dict[tuple[int, int], Candidate] = {}
        self.solves = 0

    def job(self, model: ModelSpec, tokens: float) -> TrainingJob:
        return TrainingJob(model=model, tokens=tokens, **self.job_fields)

    def score(self, shape: tuple[int, int]) -> Candidate:
        if shape in self.scored:
            return self.scored[shape]
        model = design_shapes.build(*shape, seq_len=self.job_fields["seq_len"])
        reference = REFERENCE_TOKENS_PER_PARAM * model.params_total
        plan = solve(self.job(model, reference), self.free_limits(), objective=self.objective,
                     **self.options)
        self.solves += 1
        self.scored[shape] = found = self._candidate(model, plan, reference)
        self.say(f"{len(self.scored)} sizes tried; {model.name}: "
                 + (found.skipped or f"{found.tokens:.3g} tokens, loss {found.loss:.4f}"))
        return found

    def free_limits(self) -> Limits:
        """The accelerator and its count, without the deadline and budget (they cap tokens)."""
        x = self.limits
        return Limits(accelerators=x.accelerators, gpus=x.gpus, max_gpus=x.max_gpus)

    def _candidate(self, model: ModelSpec, plan: Plan, reference: float) -> Candidate:
        e = plan.estimate
        if e is None:
            why = plan.explanation[0] if plan.explanation else "no layout fits"
            return Candidate(model, skipped=f"{plan.status}: {why}")
        caps = []
        if self.limits.deadline_days is not None:
            caps.append(self.limits.deadline_days / e.wall_clock_days * reference)
        if self.limits.budget_usd is not None and e.cost_usd > 0:
            caps.append(self.limits.budget_usd / e.cost_usd * reference)
        # 1e-9 below the limits, so that rounding never lands a hair above them
        tokens = round_down(min([*caps, MAX_TOKENS]) * (1 - 1e-9))
        if not tokens >= 1:
            return Candidate(model, estimate=e, skipped="not one token within the limits")
        scale = tokens / reference
        return Candidate(model, tokens=tokens, loss=self.law.loss(model.params_total, tokens),
                         wall_clock_days=e.wall_clock_days * scale,
                         cost_usd=e.cost_usd * scale, estimate=e)

    def too_large(self, shapes: list[tuple[int, int]], name: str) -> None:
        """Skip ``shapes`` unsolved: each is larger than ``name``, which no layout fits. Along
        the family's aspect rule parameters, width and depth grow together, and with them the
        weights, optimizer state and activations a layout holds: a larger size fits no better
        (an assumption of the search, docs/design.md)."""
        for shape in shapes:
            model = design_shapes.build(*shape, seq_len=self.job_fields["seq_len"])
            self.scored[shape] = Candidate(
                model, skipped=f"not tried: larger than {name}, which no layout fits")

    def best(self) -> Candidate | None:
        return pick(list(self.scored.values()), self.law)


def pick(candidates: list[Candidate], law: ScalingLaw) -> Candidate | None:
    """The scored candidate of least loss; among those within ``TIE_LOSS`` of it, the size
    nearest (in log) the law's compute-optimal size at that candidate's ``6 N D``."""
    ok = [c for c in candidates if c.skipped is None and not math.isnan(c.loss)]
    if not ok:
        return None
    lowest = min(c.loss for c in ok)

    def off_optimum(c: Candidate) -> float:
        n_opt, _ = law.compute_optimal(FLOPS_PER_PARAM_TOKEN * c.params * c.tokens)
        return abs(math.log(c.params / n_opt))

    return min((c for c in ok if c.loss <= lowest + TIE_LOSS), key=off_optimum)


def design(accelerator: str, *, gpus: int | None = None, max_gpus: int | None = None,
           days: float | None = None, budget_usd: float | None = None,
           law: str | ScalingLaw = scaling_law.DEFAULT_LAW,
           law_params: Mapping[str, Any] | None = None, precision: str = "bf16",
           seq_len: int = design_shapes.SEQ_LEN, min_params: float = MIN_PARAMS,
           max_params: float = MAX_PARAMS, time_limit_s: float = 10.0, workers: int = 2,
           seed: int = 0, cost_model: str | CostModel | None = None,
           cost_params: Mapping[str, Any] | None = None,
           progress: Callable[[str], None] | None = None) -> Design:
    """The Llama-3-style dense model and token count of least predicted loss trainable on
    ``gpus`` (exactly) or ``max_gpus`` (at most) ``accelerator`` within ``days`` of wall-clock
    time and/or ``budget_usd``, and its plan (docs/design.md).

    ``law``: a name in ``solver.scaling_law.LAWS`` (default ``besiroglu2024``) or a
    ``ScalingLaw``; ``law_params`` replaces some of its constants (``{"E": 1.8}``).
    ``min_params``/``max_params`` bound the sizes tried; ``time_limit_s`` applies to each solve.
    """
    started = time.perf_counter()
    fitted = scaling_law.resolve(law, law_params)
    limits = _limits(accelerator, gpus, max_gpus, days, budget_usd)
    low = as_float("min_params", min_params, minimum=1e6, strict=False, maximum=1e14)
    high = as_float("max_params", max_params, minimum=1e6, strict=False, maximum=1e14)
    if high < low:
        raise SpecError(f"max_params: expected at least min_params={low:g}, got {high:g}")
    job_fields: dict[str, Any] = {"seq_len": as_int("seq_len", seq_len), "precision": precision}
    TrainingJob(model=design_shapes.build(4, 1024, seq_len=seq_len), tokens=1.0, **job_fields)
    options: dict[str, Any] = {"time_limit_s": time_limit_s, "workers": workers,
                               "seed": seed, "cost_model": cost_model,
                               "cost_params": cost_params}
    if limits.budget_usd is not None:  # before any solve: the candidates' tokens need a price
        costs.require_figures([catalog.accelerator(limits.accelerators[0])],
                              costs.resolve(cost_model, cost_params), price=True, power=False)
    search = _Search(fitted, limits, job_fields, options, progress or (lambda message: None))
    _search_sizes(search, low, high)
    best = search.best()
    notes = _edge_notes(search, best, low, high)
    if best is None:
        return Design("infeasible", fitted, None, math.nan, math.nan, None,
                      _listed(search), limits, notes=tuple(notes), solves=search.solves,
                      solve_time_s=time.perf_counter() - started)
    job = search.job(best.model, best.tokens)
    final = "cost" if limits.budget_usd is not None else "time"
    plan = solve(job, limits, objective=final, **options)
    return Design(plan.status, fitted, best.model, best.tokens, best.loss, plan,
                  _listed(search), limits, job=job, notes=tuple(notes),
                  solves=search.solves + 1, solve_time_s=time.perf_counter() - started)


def _search_sizes(search: _Search, low: float, high: float) -> None:
    """Coarse to fine: every coarse size, then the fine sizes between the best one's
    neighbours."""
    coarse = design_shapes.family(low, high, COARSE_PER_DECADE)
    for k, shape in enumerate(coarse):
        found = search.score(shape)
        if found.skipped is not None and found.skipped.startswith("infeasible"):
            search.too_large(coarse[k + 1:], found.model.name)
            break
    best = search.best()
    if best is None:
        return
    i = coarse.index((best.model.layers, best.model.hidden))
    left = search.scored[coarse[max(0, i - 1)]].params
    right = search.scored[coarse[min(len(coarse) - 1, i + 1)]].params
    failed = [c for c in search.scored.values()
              if c.skipped is not None and c.skipped.startswith("infeasible")]
    for shape in design_shapes.family(max(low, left), min(high, right), FINE_PER_DECADE):
        above = [c for c in failed if design_shapes.build(*shape).params_total > c.params]
        if above and shape not in search.scored:
            search.too_large([shape], above[0].model.name)
        else:
            search.score(shape)


def _listed(search: _Search) -> tuple[Candidate, ...]:
    return tuple(sorted(search.scored.values(), key=lambda c: c.params))


def _edge_notes(search: _Search, best: Candidate | None, low: float, high: float) -> list[str]:
    """Remarks: a best size at an end of the range searched; the sizes skipped."""
    notes = []
    listed = _listed(search)
    skipped = [c for c in listed if c.skipped is not None]
    if skipped:
        solved = [c for c in skipped if not str(c.skipped).startswith("not tried")]
        untried = len(skipped) - len(solved)
        notes.append(f"{len(skipped)} of {len(listed)} sizes skipped: "
                     + "; ".join(f"{c.model.name} ({c.skipped})" for c in solved)
                     + (f"; {untried} larger not tried" if untried else ""))
    if best is not None:
        fitted = [c for c in listed if c.skipped is None]
        if best is fitted[-1] and best is not listed[-1]:
            notes.append(f"the best size is the largest that fits; sizes up to {high:.3g} "
                         "parameters were tried")
        elif best is fitted[-1]:
            notes.append(f"the best size is the largest tried: a larger model may lose "
                         f"less (max_params {high:.3g})")
        if best is listed[0]:
            notes.append(f"the best size is the smallest tried: a smaller model may lose "
                         f"less (min_params {low:.3g})")
    return notes


__all__ = ["Candidate", "Design", "design"]
