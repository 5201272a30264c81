"""Scenario files: one planning question in a TOML file (``gpuplan solve scenario.toml``).

A scenario holds what ``gpuplan solve`` takes as options, in sections (``docs/scenarios.md``):

    description = "..."            # optional, shown nowhere but kept
    [model]   preset = NAME | path = FILE | the ModelSpec fields inline
    [job]     tokens, seq_len, global_batch, precision, flash_attention, tp_comm_overlap,
              grad_reduce_overlap, zero3_impl, grad_dtype, ep_comm_overlap, sequence_parallel,
              moe_dispatcher,
              fp8_dispatch, moe_imbalance, moments_dtype, dropout, fp8_params,
              activation_offload, unfused_expert_bias
    [limits]  accelerators, gpus, max_gpus, deadline_days, budget_usd, tokens_per_step, risk,
              launcher
    [fixed]   tp, pp, dp, cp, ep, vp, micro_batch, zero_stage, recompute, schedule,
              pipeline_split
    [solve]   objective, time_limit_s, top, workers, seed, cost_model, [solve.cost_params]

Every key is checked when the file is read, and an unknown key is an error naming its section
(with close matches). Values are kept with their *origin* (``file.toml: [limits] max_gpus`` or a
command-line option such as ``--max-gpus``) so that every error names where the bad value came
from. ``build()`` assembles a validated ``Scenario`` from values of any origin: the CLI merges
its options over the file's values and calls it. No I/O beyond reading the files named, no
printing.

Reading a file and checking each value live in ``solver.scenario_files``; refusing questions
that can never be answered (``check_question``, ``check_bounded``) in ``solver.question_checks``.
Their public names are importable from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from solver import catalog
from solver.errors import SpecError
from solver.launchers import check_fixed
from solver.plan import Plan
from solver.question_checks import BOUND_EXAMPLES as BOUND_EXAMPLES
from solver.question_checks import BOUNDING_LIMITS as BOUNDING_LIMITS
from solver.question_checks import check_bounded as check_bounded
from solver.question_checks import check_question as check_question
from solver.scenario_files import FAILURE_KEYS as FAILURE_KEYS
from solver.scenario_files import KEY_ALIASES as KEY_ALIASES
from solver.scenario_files import MODEL_SOURCES as MODEL_SOURCES
from solver.scenario_files import SECTIONS as SECTIONS
from solver.scenario_files import TOP_LEVEL as TOP_LEVEL
from solver.scenario_files import Values as Values
from solver.scenario_files import check_value as check_value
from solver.scenario_files import read_values as read_values
from solver.specs import LAYOUT_FIELDS, Limits, TrainingJob
from solver.validate import MAX_TIME_LIMIT_S as MAX_TIME_LIMIT_S
from solver.validate import MAX_TOP as MAX_TOP
from solver.validate import MAX_WORKERS as MAX_WORKERS

DEFAULTS: dict[str, Any] = {
    "seq_len": 0, "global_batch": 0, "precision": "bf16", "flash_attention": True,
    "tp_comm_overlap": False, "grad_reduce_overlap": True, "zero3_impl": "fsdp",
    "grad_dtype": "fp32", "ep_comm_overlap": False, "sequence_parallel": True,
    "moe_dispatcher": "alltoall",
    "fp8_dispatch": False, "moe_imbalance": 1.0, "moments_dtype": "fp32", "dropout": None,
    "fp8_params": False, "activation_offload": False, "unfused_expert_bias": False,
    "objective": "time", "time_limit_s": 60.0, "top": 1, "workers": 2, "seed": 0,
    "cost_model": None,
}


# --------------------------------------------------------------------------------------------
# The question.


@dataclass(frozen=True)
class Scenario:
    """One complete planning question: ``solve()`` answers it."""

    job: TrainingJob
    limits: Limits
    objective: str = "time"
    time_limit_s: float = 60.0
    top: int = 1
    workers: int = 2
    seed: int = 0
    cost_model: str | None = None
    cost_params: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    def solve(self, **options: Any) -> Plan:
        """``solver.solve`` with this scenario's options (``options`` override them).

        A question whose objective no limit bounds is refused (``check_bounded``)."""
        from solver.search.solve import solve

        check_bounded(options.get("objective", self.objective), self.limits)

        kwargs: dict[str, Any] = {
            "objective": self.objective, "time_limit_s": self.time_limit_s, "top": self.top,
            "workers": self.workers, "seed": self.seed, "cost_model": self.cost_model,
            "cost_params": dict(self.cost_params), **options}
        return solve(self.job, self.limits, **kwargs)


def _relabel(err: SpecError, origins: Mapping[str, str]) -> SpecError:
    """``max_gpus: expected ...`` -> ``--max-gpus: expected ...`` (the value's origin)."""
    head, sep, rest = str(err).partition(":")
    key = head.removeprefix("fixed.")
    if sep and key in origins:
        return SpecError(f"{origins[key]}:{rest}")
    return err


MISSING = {
    "model": "a model: a preset name or a model file ([model] in a scenario file)",
    "tokens": "a number of training tokens (tokens in [job] of a scenario file)",
}


def build(given: Values, names: Mapping[str, str] | None = None) -> Scenario:
    """A validated ``Scenario`` from checked values (``read_values``, or options).

    ``names`` labels the keys ``given`` has no origin for (the CLI passes its option names).
    """
    values = given.values
    origins = {**(names or {}), **given.origins}

    def label(key: str) -> str:
        return origins.get(key, key)

    def get(key: str) -> Any:
        return values.get(key, DEFAULTS.get(key))

    for key, what in MISSING.items():
        if key not in values:
            raise SpecError(f"{label(key)}: missing; expected {what}")
    model = values["model"]
    if isinstance(model, str):
        model = catalog.model(model, field=label("model"))
    gpus, max_gpus = values.get("gpus"), values.get("max_gpus")
    if gpus is not None and max_gpus is not None and gpus > max_gpus:
        other = label("max_gpus") if label("max_gpus").startswith("-") else "max_gpus"
        raise SpecError(f"{label('gpus')}: expected at most {other}={max_gpus}, got {gpus}")
    try:
        job = TrainingJob(model=model, tokens=values["tokens"], global_batch=get("global_batch"),
                          seq_len=get("seq_len"), precision=get("precision"),
                          flash_attention=get("flash_attention"),
                          tp_comm_overlap=get("tp_comm_overlap"),
                          grad_reduce_overlap=get("grad_reduce_overlap"),
                          zero3_impl=get("zero3_impl"), grad_dtype=get("grad_dtype"),
                          ep_comm_overlap=get("ep_comm_overlap"),
                          sequence_parallel=get("sequence_parallel"),
                          moe_dispatcher=get("moe_dispatcher"),
                          fp8_dispatch=get("fp8_dispatch"),
                          moe_imbalance=get("moe_imbalance"),
                          moments_dtype=get("moments_dtype"), dropout=get("dropout"),
                          fp8_params=get("fp8_params"),
                          activation_offload=get("activation_offload"),
                          unfused_expert_bias=get("unfused_expert_bias"),
                          **{k: values[k] for k in FAILURE_KEYS if k in values})
        fixed = {k: values[k] for k in LAYOUT_FIELDS if k in values}
        limits = Limits(accelerators=tuple(values.get("accelerators", ())), gpus=gpus,
                        max_gpus=max_gpus, deadline_days=values.get("deadline_days"),
                        budget_usd=values.get("budget_usd"), fixed=fixed,
                        risk=values.get("risk", "expected"),
                        launcher=values.get("launcher"),
                        **({"tokens_per_step": values["tokens_per_step"]}
                           if "tokens_per_step" in values else {}))
    except SpecError as err:
        raise _relabel(err, origins) from None
    check_question(job, limits, label)
    if limits.launcher is not None:  # what the launcher cannot run, before any search
        try:
            check_fixed(limits.launcher, job, limits.fixed)
        except SpecError as err:
            raise _relabel(err, origins) from None
    cost_params = dict(values.get("cost_params", {}))
    if get("cost_model") is not None or cost_params:
        from solver import costs

        try:
            costs.resolve(get("cost_model"), cost_params)
        except SpecError as err:
            head, sep, rest = str(err).partition(":")
            if head == "cost_params" and "cost_params" in origins:
                raise SpecError(f"{origins['cost_params']}:{rest}") from None
            raise _relabel(err, origins) from None
    return Scenario(job=job, limits=limits, objective=get("objective"),
                    time_limit_s=get("time_limit_s"), top=get("top"), workers=get("workers"),
                    seed=get("seed"), cost_model=get("cost_model"), cost_params=cost_params,
                    description=given.description)


def load(path: str | Path) -> Scenario:
    """Read a scenario file into a complete ``Scenario`` (it must give the model and tokens)."""
    return build(read_values(path))


__all__ = ["MAX_TIME_LIMIT_S", "MAX_TOP", "MAX_WORKERS", "SECTIONS", "Scenario", "Values",
           "build", "check_bounded", "check_question", "check_value", "load", "read_values"]
