"""The question a plan answers, written into its JSON and read back from it.

``solve --json`` (and ``evaluate --json``) print a ``"question"`` object: the model's whole
spec, the job's fields, the limits, the objective, the cost model and its parameters and the
solve options (docs/interface.md, "The question"). A saved plan then reads alone: nobody has
to remember which preset version, token count or price produced it, and
``gpuplan evaluate --plan plan.json`` rebuilds the job and the layout from the file and
re-evaluates them (``read_saved``, ``differences``).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from solver.errors import SpecError
from solver.specs import Layout, Limits, ModelSpec, TrainingJob
from solver.validate import MAX_DOCUMENT_BYTES

#: ``ModelSpec.to_dict`` adds these derived counts; they are not fields.
DERIVED_MODEL_KEYS = ("params_total", "params_active")
#: The layout fields of a plan's ``"layout"`` object that ``Layout`` takes.
LAYOUT_KEYS = tuple(f.name for f in dataclasses.fields(Layout))
#: Relative difference under which a re-evaluated number reproduces the saved one (JSON keeps
#: six significant digits).
REPRODUCE_REL = 1e-5


def _plain(value: Any) -> Any:
    """Tuples and mappings as JSON lists and objects."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def job_dict(job: TrainingJob) -> dict[str, Any]:
    """The job's fields, the model as its whole spec."""
    model = {k: v for k, v in job.model.to_dict().items() if k not in DERIVED_MODEL_KEYS}
    fields = {f.name: _plain(getattr(job, f.name))
              for f in dataclasses.fields(TrainingJob) if f.name != "model"}
    return {"model": _plain(model), **fields}


def question_dict(job: TrainingJob, limits: Limits | None = None, *,
                  objective: str | None = None, cost_model: Any = None,
                  cost_params: Mapping[str, Any] | None = None,
                  options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``"question"`` object of a plan's JSON."""
    data: dict[str, Any] = {"job": job_dict(job)}
    if limits is not None:
        data["limits"] = {f.name: _plain(getattr(limits, f.name))
                          for f in dataclasses.fields(Limits)}
    if objective is not None:
        data["objective"] = objective
    name = cost_model if cost_model is None or isinstance(cost_model, str) else getattr(
        cost_model, "name", type(cost_model).__name__)
    data["cost_model"] = name
    data["cost_params"] = {str(k): _number_if_numeric(v) for k, v in (cost_params or {}).items()}
    if options:
        data["solve"] = _plain(dict(options))
    return data


def _number_if_numeric(value: Any) -> Any:
    """``"1.3"`` (as ``--cost-param pue=1.3`` gives it) -> ``1.3``; other text as it is."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return number if math.isfinite(number) else value
    return _plain(value)


@dataclass(frozen=True)
class SavedPlan:
    """What ``evaluate --plan`` needs from a saved plan: the job and layout to re-evaluate,
    how to price them, and the estimate the file says they had."""

    job: TrainingJob
    layout: Layout
    cost_model: str | None
    cost_params: dict[str, Any]
    estimate: dict[str, Any]


def read_saved(path: str | Path, field: str = "--plan") -> SavedPlan:
    """Read a plan saved by ``solve --json`` (or ``evaluate --json``); ``SpecError`` naming
    ``field`` when the file is not one."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_DOCUMENT_BYTES:
            raise SpecError(f"{field}: expected a plan's JSON of at most "
                            f"{MAX_DOCUMENT_BYTES:,} bytes, got {p.stat().st_size:,}")
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as err:
        raise SpecError(f"{field}: cannot read {str(p)!r}: {err.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SpecError(f"{field}: expected a plan's JSON (gpuplan solve --json), {p.name} is "
                        f"not JSON: {err}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{field}: expected a JSON object (gpuplan solve --json), got "
                        f"{type(data).__name__}")
    for key in ("question", "layout", "estimate"):
        if not isinstance(data.get(key), dict):
            what = ("a plan saved by a gpuplan that records its question (solve --json)"
                    if key == "question" else "a plan with a layout (status optimal or "
                    "feasible)")
            raise SpecError(f"{field}: {p.name} has no {key!r} object; expected {what}")
    question = data["question"]
    try:
        job = _job(question.get("job"))
        layout = Layout(**{k: data["layout"][k] for k in LAYOUT_KEYS if k in data["layout"]})
        if data["layout"].get("global_batch"):
            job = dataclasses.replace(job, global_batch=int(data["layout"]["global_batch"]))
    except SpecError as err:
        raise SpecError(f"{field}: {p.name}: {err}") from None
    except TypeError as err:
        raise SpecError(f"{field}: {p.name}: {err}") from None
    params = question.get("cost_params") or {}
    if not isinstance(params, dict):
        raise SpecError(f"{field}: {p.name}: question.cost_params: expected an object")
    return SavedPlan(job=job, layout=layout, cost_model=question.get("cost_model"),
                     cost_params=dict(params), estimate=data["estimate"])


def _job(data: Any) -> TrainingJob:
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise SpecError("question.job: expected an object with the model's spec")
    model = {k: v for k, v in data["model"].items() if k not in DERIVED_MODEL_KEYS}
    if isinstance(model.get("sources"), list):
        model["sources"] = tuple(model["sources"])
    known = {f.name for f in dataclasses.fields(ModelSpec)}
    unknown = sorted(set(model) - known)
    if unknown:
        raise SpecError(f"question.job.model: unknown field {unknown[0]!r} (a plan from a "
                        "newer gpuplan?)")
    spec = ModelSpec(**model)
    fields = {f.name for f in dataclasses.fields(TrainingJob)} - {"model"}
    values = {k: v for k, v in data.items() if k != "model"}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise SpecError(f"question.job: unknown field {unknown[0]!r} (a plan from a newer "
                        "gpuplan?)")
    return TrainingJob(model=spec, **values)


def differences(saved: Mapping[str, Any], now: Mapping[str, Any],
                prefix: str = "") -> list[str]:
    """Each field of the saved estimate that the re-evaluation does not reproduce, as
    ``name: saved -> now``."""
    out: list[str] = []
    for key in sorted(set(saved) | set(now)):
        a, b = saved.get(key), now.get(key)
        name = f"{prefix}{key}"
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += differences(a, b, prefix=f"{name}.")
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            out += [f"{name}[{i}]: {x} -> {y}" for i, (x, y) in enumerate(zip(a, b, strict=True))
                    if not _same(x, y)]
        elif not _same(a, b):
            out.append(f"{name}: {a} -> {b}")
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=REPRODUCE_REL, abs_tol=1e-12)
    return bool(a == b)
