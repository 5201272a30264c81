"""Fleet files: the accelerators a team owns or may rent, the training jobs to run on them, the
objective and the options (``gpuplan fleet FLEET.toml``; ``docs/fleet.md``).

    description = "..."
    [fleet.<accelerator>]  owned, from_day, until_day, rent_max, rent_usd_per_gpu_hour
    [jobs.<name>]          model, tokens, the [job] and [fixed] keys of a scenario file
                           (solver/scenario.py checks them), release_day, deadline_day,
                           hard_deadline, weight, accelerators, max_gpus, launcher
    [options]              objective, horizon_days, resolution_days, rent_period_days,
                           candidates, time_limit_s, workers, seed

Every key is checked when the file is read; an unknown key is an error naming its table, with
close matches. Days are wall-clock days counted from day 0 of the plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from solver import catalog
from solver.errors import SpecError
from solver.scenario import SECTIONS, Values, build, check_value
from solver.specs import LAYOUT_FIELDS, Limits, TrainingJob
from solver.validate import (
    MAX_SEED,
    MAX_TIME_LIMIT_S,
    MAX_WORKERS,
    as_bool,
    as_choice,
    as_float,
    as_int,
    as_table,
    fail,
    read_toml_file,
    unknown_name,
)

#: Objectives, each minimised in the order given (lexicographic).
OBJECTIVES = ("tardiness", "makespan", "rental_cost", "energy")
DEFAULT_OBJECTIVE = ("tardiness", "rental_cost", "makespan")
#: The longest plan a fleet file may ask for (days): ten years.
MAX_DAYS = 3650.0
POOL_KEYS = ("owned", "from_day", "until_day", "rent_max", "rent_usd_per_gpu_hour")
JOB_KEYS = ("model", "tokens", *SECTIONS["job"], *LAYOUT_FIELDS, "release_day",
            "deadline_day", "hard_deadline", "weight", "accelerators", "max_gpus", "launcher")
OPTION_KEYS = ("objective", "horizon_days", "resolution_days", "rent_period_days",
               "candidates", "time_limit_s", "workers", "seed")
TOP_LEVEL = ("description", "fleet", "jobs", "options")


@dataclass(frozen=True)
class Pool:
    """One accelerator type of the fleet: ``owned`` of them from ``from_day`` (inclusive) to
    ``until_day`` (exclusive), and up to ``rent_max`` more rentable at any time at
    ``rent_usd_per_gpu_hour``, in whole rental periods."""

    accelerator: str
    owned: int = 0
    from_day: float = 0.0
    until_day: float | None = None  # None: to the end of the horizon
    rent_max: int = 0
    rent_usd_per_gpu_hour: float = 0.0

    @property
    def most(self) -> int:
        """The most accelerators of this type the plan can ever hold at once."""
        return self.owned + self.rent_max


@dataclass(frozen=True)
class FleetJob:
    """One training run to schedule: ``job`` and ``limits`` as ``solve`` takes them (the
    accelerators it may use, a cap, fixed layout fields), its release day, its deadline (soft:
    each day late costs ``weight``; hard: never late) and its priority ``weight``."""

    name: str
    job: TrainingJob
    limits: Limits = field(default_factory=Limits)
    release_day: float = 0.0
    deadline_day: float | None = None
    hard_deadline: bool = False
    weight: int = 1


@dataclass(frozen=True)
class Options:
    objective: tuple[str, ...] = DEFAULT_OBJECTIVE
    horizon_days: float = 365.0
    #: the schedule's time step: durations round up to it, starts fall on it
    resolution_days: float = 0.5
    rent_period_days: float = 30.0
    candidates: int = 24  # most (count, days) options per job and accelerator type
    time_limit_s: float = 60.0
    workers: int = 2
    seed: int = 0


@dataclass(frozen=True)
class FleetSpec:
    pools: tuple[Pool, ...]
    jobs: tuple[FleetJob, ...]
    options: Options = field(default_factory=Options)
    description: str = ""

    def pool(self, accelerator: str) -> Pool:
        return next(p for p in self.pools if p.accelerator == accelerator)

    def allowed(self, job: FleetJob) -> tuple[str, ...]:
        """The fleet's accelerator types ``job`` may run on."""
        names = [p.accelerator for p in self.pools]
        return tuple(n for n in names if not job.limits.accelerators
                     or n in job.limits.accelerators)

    def __post_init__(self) -> None:
        check(self)


def check(spec: FleetSpec) -> None:
    """The rules that span tables (``SpecError`` naming the field)."""
    if not spec.pools:
        raise SpecError("fleet: expected at least one [fleet.<accelerator>] table, got none")
    if not spec.jobs:
        raise SpecError("jobs: expected at least one [jobs.<name>] table, got none")
    names = [j.name for j in spec.jobs]
    if len(set(names)) != len(names):
        raise SpecError(f"jobs: expected distinct names, got {names}")
    horizon = spec.options.horizon_days
    res = spec.options.resolution_days
    if horizon / res > 100_000:
        raise SpecError(f"options.resolution_days: expected at most 100,000 steps over the "
                        f"horizon of {horizon:g} days, got {res:g}")
    for p in spec.pools:
        if p.until_day is not None and p.until_day <= p.from_day:
            raise SpecError(f"fleet.{p.accelerator}.until_day: expected more than from_day="
                            f"{p.from_day:g}, got {p.until_day:g}")
        if p.rent_max and not p.rent_usd_per_gpu_hour:
            raise SpecError(f"fleet.{p.accelerator}.rent_usd_per_gpu_hour: missing; expected "
                            f"the rental price when rent_max={p.rent_max}")
    fleet_names = {p.accelerator for p in spec.pools}
    for j in spec.jobs:
        where = f"jobs.{j.name}"
        for name in j.limits.accelerators:
            if name not in fleet_names:
                raise SpecError(f"{where}.accelerators: expected accelerators of the fleet "
                                f"({', '.join(sorted(fleet_names))}), got {name!r}")
        if j.release_day >= horizon:
            raise SpecError(f"{where}.release_day: expected before the horizon "
                            f"({horizon:g} days), got {j.release_day:g}")
        if j.deadline_day is not None and j.deadline_day <= j.release_day:
            raise SpecError(f"{where}.deadline_day: expected after release_day="
                            f"{j.release_day:g}, got {j.deadline_day:g}")
        if j.hard_deadline and j.deadline_day is None:
            raise SpecError(f"{where}.hard_deadline: expected a deadline_day with it, got none")


# --------------------------------------------------------------------------------------------
# Reading a file.


def _unknown(label: str, key: str, known: tuple[str, ...], what: str = "key") -> SpecError:
    return unknown_name(f"{label}:", key, known, what)


def load(path: str | Path) -> FleetSpec:
    """Read and check a fleet file."""
    path = Path(path)
    data = read_toml_file(path, what="a fleet file")
    return from_mapping(data, where=str(path), folder=path.parent)


def from_mapping(data: Mapping[str, Any], *, where: str = "fleet",
                 folder: Path | None = None) -> FleetSpec:
    """A ``FleetSpec`` from a parsed fleet file; errors start with ``where``; a job's model
    file is looked for relative to ``folder`` (the fleet file's) first."""
    for key in data:
        if key not in TOP_LEVEL:
            raise _unknown(where, key, TOP_LEVEL, "table")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise fail(f"{where}: description", "a text", description)
    options = _options(as_table(data.get("options", {}), f"{where}: [options]"), where)
    fleet = as_table(data.get("fleet", {}), f"{where}: [fleet]")
    pools = tuple(_pool(name, as_table(t, f"{where}: [fleet.{name}]"), where)
                  for name, t in fleet.items())
    seen: dict[str, str] = {}
    for written, pool in zip(fleet, pools, strict=True):
        if pool.accelerator in seen:
            raise SpecError(f"{where}: [fleet.{written}]: the same accelerator as "
                            f"[fleet.{seen[pool.accelerator]}]")
        seen[pool.accelerator] = written
    jobs = as_table(data.get("jobs", {}), f"{where}: [jobs]")
    fleet_jobs = tuple(_job(name, as_table(t, f"{where}: [jobs.{name}]"), where, folder)
                       for name, t in jobs.items())
    try:
        return FleetSpec(pools=pools, jobs=fleet_jobs, options=options,
                         description=description)
    except SpecError as err:
        raise SpecError(f"{where}: {err}") from None


def _options(table: dict[str, Any], where: str) -> Options:
    out: dict[str, Any] = {}
    for key, value in table.items():
        label = f"{where}: [options] {key}"
        if key not in OPTION_KEYS:
            raise _unknown(f"{where}: [options]", key, OPTION_KEYS)
        if key == "objective":
            names = [value] if isinstance(value, str) else value
            if not isinstance(names, list) or not names:
                raise fail(label, "a list of " + "|".join(OBJECTIVES), value)
            checked = tuple(as_choice(label, n, OBJECTIVES) for n in names)
            if len(set(checked)) != len(checked):
                raise fail(label, "each objective once", value)
            out[key] = checked
        elif key in ("horizon_days", "rent_period_days"):
            out[key] = as_float(label, value, maximum=MAX_DAYS)
        elif key == "resolution_days":
            out[key] = as_float(label, value, maximum=30.0)
        elif key == "candidates":
            out[key] = as_int(label, value, minimum=1, maximum=200)
        elif key == "time_limit_s":
            out[key] = as_float(label, value, maximum=MAX_TIME_LIMIT_S)
        elif key == "workers":
            out[key] = as_int(label, value, maximum=MAX_WORKERS)
        else:
            out[key] = as_int(label, value, minimum=0, maximum=MAX_SEED)
    return Options(**out)


def _pool(name: str, table: dict[str, Any], where: str) -> Pool:
    section = f"{where}: [fleet.{name}]"
    acc = catalog.accelerator(name, field=section).name
    out: dict[str, Any] = {}
    for key, value in table.items():
        label = f"{section} {key}"
        if key not in POOL_KEYS:
            raise _unknown(section, key, POOL_KEYS)
        if key in ("owned", "rent_max"):
            out[key] = as_int(label, value, minimum=0)
        elif key in ("from_day", "rent_usd_per_gpu_hour"):
            out[key] = as_float(label, value, strict=False, maximum=MAX_DAYS
                                if key == "from_day" else 1e6)
        else:
            out[key] = as_float(label, value, maximum=MAX_DAYS)
    if not out.get("owned") and not out.get("rent_max"):
        raise SpecError(f"{section}: expected owned or rent_max above 0, got neither")
    return Pool(accelerator=acc, **out)


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _job(name: str, table: dict[str, Any], where: str, folder: Path | None) -> FleetJob:
    """One job: its scenario keys go through ``solver.scenario`` (the same checks and
    messages as a scenario file), the rest are the fleet's. ``model`` is a preset or a model
    file, relative to the fleet file's folder (as a scenario file's ``[model] path``)."""
    section = f"{where}: [jobs.{name}]"
    values = Values()
    own: dict[str, Any] = {}
    for key, value in table.items():
        label = f"{section} {key}"
        if key not in JOB_KEYS:
            raise _unknown(section, key, JOB_KEYS)
        if key in ("release_day", "deadline_day"):
            own[key] = as_float(label, value, strict=key == "deadline_day", maximum=MAX_DAYS)
        elif key == "hard_deadline":
            own[key] = as_bool(label, value)
        elif key == "weight":
            own[key] = as_int(label, value, minimum=1, maximum=1000)
        elif key == "model" and isinstance(value, str) and folder is not None \
                and value not in catalog.models() and _is_file(folder / value):
            values.set(key, check_value(key, str(folder / value), label), label)
        else:
            values.set(key, check_value(key, value, label), label)
    names = {"model": f"{section} model", "tokens": f"{section} tokens"}
    scenario = build(values, names)
    return FleetJob(name=name, job=scenario.job, limits=scenario.limits, **own)


__all__ = ["DEFAULT_OBJECTIVE", "OBJECTIVES", "FleetJob", "FleetSpec", "Options", "Pool",
           "from_mapping", "load"]
