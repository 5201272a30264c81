"""Scenario files: one planning question in a TOML file (``gpuplan solve scenario.toml``).

A scenario holds what ``gpuplan solve`` takes as options, in sections (``docs/scenarios.md``):

    description = "..."            # optional, shown nowhere but kept
    [model]   preset = NAME | path = FILE | the ModelSpec fields inline
    [job]     tokens, seq_len, global_batch, precision, flash_attention, tp_comm_overlap,
              grad_reduce_overlap, zero3_impl, grad_dtype, ep_comm_overlap, moe_dispatcher,
              fp8_dispatch, moe_imbalance, moments_dtype, dropout, fp8_params,
              activation_offload
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
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from solver import catalog
from solver.errors import SpecError
from solver.launchers import LAUNCHERS, check_fixed
from solver.layout_options import (
    DEFAULT_MAX_GPUS,
    PIPELINE_SPLITS,
    SCHEDULES,
    SPLIT_CODE,
    recompute_code,
    recompute_name,
    split_accounts,
)
from solver.model_files import load_model_file, model_from_mapping
from solver.plan import OBJECTIVES, Plan
from solver.specs import (
    DROPOUT_MAX,
    GRAD_DTYPES,
    LAYOUT_FIELDS,
    MOE_DISPATCHERS,
    MOMENTS_DTYPES,
    PRECISIONS,
    RISKS,
    ZERO3_IMPLEMENTATIONS,
    Limits,
    ModelSpec,
    TrainingJob,
)
from solver.validate import (
    MAX_COUNT,
    MAX_SEED,
    MAX_TIME_LIMIT_S,
    MAX_TOP,
    MAX_WORKERS,
    as_bool,
    as_choice,
    as_float,
    as_int,
    as_tokens,
    close_matches,
    fail,
    parse_document,
)

#: The job's failure-model keys (``TrainingJob``; ``solver/stepmodel/goodput.py``).
FAILURE_KEYS = ("failures", "mtbf_hours", "checkpoint_node_gb_s", "checkpoint_total_gb_s",
                "async_checkpoint", "restart_min", "hot_spares", "replace_min")

#: The keys of each section (``model`` is special: ``preset``, ``path`` or ModelSpec fields).
SECTIONS: dict[str, tuple[str, ...]] = {
    "job": ("tokens", "seq_len", "global_batch", "precision", "flash_attention",
            "tp_comm_overlap", "grad_reduce_overlap", "zero3_impl", "grad_dtype",
            "ep_comm_overlap", "moe_dispatcher", "fp8_dispatch", "moe_imbalance",
            "moments_dtype", "dropout", "fp8_params", "activation_offload", *FAILURE_KEYS),
    "limits": ("accelerators", "gpus", "max_gpus", "deadline_days", "budget_usd",
               "tokens_per_step", "risk", "launcher"),
    "fixed": LAYOUT_FIELDS,
    "solve": ("objective", "time_limit_s", "top", "workers", "seed", "cost_model",
              "cost_params"),
}
#: Earlier spellings of keys, still read: ``[solve] time_limit`` is ``time_limit_s``.
KEY_ALIASES = {"time_limit": "time_limit_s"}
TOP_LEVEL = ("description", "model", *SECTIONS)
MODEL_SOURCES = ("preset", "path")

DEFAULTS: dict[str, Any] = {
    "seq_len": 0, "global_batch": 0, "precision": "bf16", "flash_attention": True,
    "tp_comm_overlap": False, "grad_reduce_overlap": True, "zero3_impl": "fsdp",
    "grad_dtype": "fp32", "ep_comm_overlap": False, "moe_dispatcher": "alltoall",
    "fp8_dispatch": False, "moe_imbalance": 1.0, "moments_dtype": "fp32", "dropout": None,
    "fp8_params": False, "activation_offload": False,
    "objective": "time", "time_limit_s": 60.0, "top": 1, "workers": 2, "seed": 0,
    "cost_model": None,
}


def check_value(key: str, value: Any, label: str) -> Any:
    """One value, checked and normalised; errors start with ``label`` (its origin)."""
    if key == "model":
        return value if isinstance(value, ModelSpec) else catalog.model(value, field=label)
    if key == "tokens":
        return as_tokens(label, value)
    if key in ("seq_len", "global_batch"):
        return as_int(label, value, minimum=0)  # 0: the model's length, the solver's choice
    if key == "precision":
        return as_choice(label, value, PRECISIONS)
    if key in ("flash_attention", "tp_comm_overlap", "grad_reduce_overlap", "ep_comm_overlap",
               "fp8_dispatch", "fp8_params", "activation_offload", "failures",
               "async_checkpoint", "hot_spares"):
        return as_bool(label, value)
    if key in ("checkpoint_total_gb_s", "restart_min", "replace_min"):
        return as_float(label, value, strict=False)
    if key in ("mtbf_hours", "checkpoint_node_gb_s"):
        return as_float(label, value)
    if key == "zero3_impl":
        return as_choice(label, value, ZERO3_IMPLEMENTATIONS)
    if key == "grad_dtype":
        return as_choice(label, value, GRAD_DTYPES)
    if key == "moe_dispatcher":
        return as_choice(label, value, MOE_DISPATCHERS)
    if key == "moe_imbalance":
        return as_float(label, value, minimum=1.0, strict=False)
    if key == "moments_dtype":
        return as_choice(label, value, MOMENTS_DTYPES)
    if key == "dropout":  # TrainingJob's range
        return as_float(label, value, minimum=0.0, strict=False, maximum=DROPOUT_MAX)
    if key == "accelerators":
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, (list, tuple)) or not names:
            raise fail(label, "a list of accelerator names", value)
        return tuple(dict.fromkeys(catalog.accelerator(n, field=label).name for n in names))
    if key in ("gpus", "max_gpus"):
        return as_int(label, value)
    if key in ("deadline_days", "budget_usd"):
        return as_float(label, value)
    if key == "risk":
        return as_choice(label, value, RISKS)
    if key == "launcher":
        return as_choice(label, value, LAUNCHERS)
    if key == "tokens_per_step":
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise fail(label, "a pair [low, high] of tokens per optimizer step", value)
        low, high = (as_tokens(label, v) for v in value)
        if low > high:
            raise fail(label, "low <= high", list(value))
        return (low, high)
    if key == "recompute":
        return recompute_name(recompute_code(value, label))
    if key == "schedule":
        return as_choice(label, value, SCHEDULES)
    if key == "pipeline_split":
        return as_choice(label, value, PIPELINE_SPLITS)
    if key == "zero_stage":
        return as_int(label, value, minimum=0, maximum=3)
    if key in LAYOUT_FIELDS:
        return as_int(label, value)
    if key == "objective":
        return as_choice(label, value, OBJECTIVES)
    if key == "time_limit_s":
        return as_float(label, value, maximum=MAX_TIME_LIMIT_S)
    if key == "top":
        return as_int(label, value, maximum=MAX_TOP)
    if key == "workers":
        return as_int(label, value, maximum=MAX_WORKERS)
    if key == "seed":
        return as_int(label, value, minimum=0, maximum=MAX_SEED)
    if key == "cost_model":
        if value is None:
            return None
        if not isinstance(value, str):
            raise fail(label, "a cost model name", value)
        return catalog.cost_model(value, field=label).name
    if key == "cost_params":
        if not isinstance(value, Mapping):
            raise fail(label, "a table of KEY = VALUE", value)
        for k, v in value.items():
            if isinstance(v, bool) or not isinstance(v, (str, int, float)):
                raise fail(f"{label}.{k}", "a number or a text", v)
        return dict(value)
    raise SpecError(f"{label}: unknown key")  # not reached: keys are checked before


# --------------------------------------------------------------------------------------------
# Reading a file.


@dataclass
class Values:
    """Scenario values by key (``tokens``, ``max_gpus``, ``tp``, ``model``, ...), each with the
    origin that errors name."""

    values: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    description: str = ""

    def set(self, key: str, value: Any, origin: str) -> None:
        self.values[key] = value
        self.origins[key] = origin


def _table(data: Any, label: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise fail(label, "a table", data)
    return data


def _unknown_key(label: str, key: str, known: tuple[str, ...], what: str = "key") -> SpecError:
    shown = repr(key) if len(key) <= 60 else repr(key[:57] + "...")
    return SpecError(f"{label} unknown {what} {shown}{close_matches(key, known)}")


def read_values(path: str | Path) -> Values:
    """The checked values of a scenario file (any key may be absent)."""
    path = Path(path)
    where = str(path)
    if path.suffix.lower() != ".toml":
        raise SpecError(f"{where}: expected a scenario file ending in .toml, got "
                        f"{path.suffix or 'no extension'!r} (a model file goes to --model)")
    try:
        with path.open("rb") as handle:
            raw = handle.read(1_000_001)
    except OSError as err:
        raise SpecError(f"{where}: cannot read the scenario file ({err.strerror or err})"
                        ) from None
    data = parse_document(raw, where=where, fmt="toml", what="a scenario file")
    for key in data:
        if key not in TOP_LEVEL:
            raise _unknown_key(f"{where}:", key, TOP_LEVEL, "section")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise fail(f"{where}: description", "a text", description)
    out = Values(description=description)
    if "model" in data:
        out.set("model", _model(_table(data["model"], f"{where}: [model]"), path),
                f"{where}: [model]")
    for section, keys in SECTIONS.items():
        if section not in data:
            continue
        table = _table(data[section], f"{where}: [{section}]")
        for written, value in table.items():
            key = KEY_ALIASES.get(written, written)
            if key not in keys:
                raise _unknown_key(f"{where}: [{section}]", key, keys)
            label = f"{where}: [{section}] {written}"
            out.set(key, check_value(key, value, label), label)
    return out


def _model(table: dict[str, Any], path: Path) -> ModelSpec:
    where = f"{path}: [model]"
    given = [k for k in MODEL_SOURCES if k in table]
    fields = [k for k in table if k not in MODEL_SOURCES]
    if len(given) > 1 or (given and fields):
        other = given[1] if len(given) > 1 else fields[0]
        raise SpecError(f"{where}: expected one of preset, path or the model's fields, got "
                        f"both {given[0]} and {other}")
    if "preset" in table:
        preset = table["preset"]
        if not isinstance(preset, str):
            raise fail(f"{where} preset", "a preset name", preset)
        models = catalog.models()
        if preset not in models:
            raise SpecError(f"{where} preset: unknown model {preset!r:.60}"
                            f"{close_matches(preset, models)}")
        return models[preset]
    if "path" in table:
        file = table["path"]
        if not isinstance(file, str) or not file.strip():
            raise fail(f"{where} path", "a model file path", file)
        resolved = Path(file) if Path(file).is_absolute() else path.parent / file
        try:
            found = resolved.is_file()
        except (OSError, ValueError):
            found = False
        if not found:
            raise SpecError(f"{where} path: no such file {str(resolved)!r:.80}")
        return load_model_file(resolved)
    if not fields:
        raise SpecError(f"{where}: expected preset = NAME, path = FILE or the model's fields, "
                        f"got an empty table")
    return model_from_mapping({"name": path.stem, **table}, where=where)


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
                          moe_dispatcher=get("moe_dispatcher"),
                          fp8_dispatch=get("fp8_dispatch"),
                          moe_imbalance=get("moe_imbalance"),
                          moments_dtype=get("moments_dtype"), dropout=get("dropout"),
                          fp8_params=get("fp8_params"),
                          activation_offload=get("activation_offload"),
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


def check_question(job: TrainingJob, limits: Limits,
                   label: Callable[[str], str] = str) -> None:
    """Refuse a question whose fixed layout fields can never hold (``SpecError``, exit 2),
    rather than searching and reporting it infeasible.

    The rules are Megatron-LM's (those ``gpuplan evaluate`` applies, and the search's stage
    rule: ``pp*vp`` divides the layers, MTP modules and the pipeline split's embedding and loss
    slots; the schedules' rules on pp and vp); each is checked on the fixed fields alone,
    so it holds whatever the search picks for the others. ``label(key)`` names a field's origin.
    """
    m, fixed = job.model, limits.fixed
    tp = fixed.get("tp")
    cp, ep, dp, mb = fixed.get("cp"), fixed.get("ep"), fixed.get("dp"), fixed.get("micro_batch")

    def refuse(key: str, rule: str, value: Any) -> SpecError:
        return SpecError(f"{label(key)}: expected {rule}, got {value}")

    name = m.name
    if tp is not None:
        if m.heads % tp:
            raise refuse("tp", f"a divisor of heads={m.heads} of {name}", tp)
        if not m.uses_mla and m.kv_heads % tp and tp % m.kv_heads:
            raise refuse("tp", f"a divisor or a multiple of kv_heads={m.kv_heads} of {name}", tp)
        for what, width in (("ffn_hidden", m.ffn_hidden), ("moe_ffn_hidden", m.moe_ffn_hidden)):
            if width and width % tp:
                raise refuse("tp", f"a divisor of {what}={width} of {name}", tp)
    if ep is not None and m.experts % ep:
        raise refuse("ep", f"a divisor of experts={m.experts} of {name}" if m.is_moe
                     else f"1 ({name} is a dense model: no experts to split)", ep)
    if cp is not None and cp > 1 and job.seq_len % (2 * cp):
        raise refuse("cp", f"a cp with 2*cp dividing seq_len={job.seq_len} (load-balanced "
                     "context parallelism)", cp)
    _check_pipeline(job, fixed, refuse)
    if ep is not None and dp is not None and cp is not None and (dp * cp) % ep:
        raise refuse("ep", f"a divisor of dp*cp={dp * cp}", ep)
    gb = job.global_batch
    if gb:
        for key, size in (("dp", dp), ("micro_batch", mb)):
            if size is not None and gb % size:
                raise refuse(key, f"a divisor of global_batch={gb}", size)
        if dp is not None and mb is not None and gb % (dp * mb):
            raise refuse("dp", f"dp*micro_batch dividing global_batch={gb}",
                         f"dp*micro_batch={dp * mb}")
    elif limits.tokens_per_step[1] < job.seq_len:
        raise refuse("tokens_per_step", f"room for one sequence of seq_len={job.seq_len} "
                     "tokens per step", limits.tokens_per_step[1])
    given = [k for k in ("tp", "pp", "cp", "dp") if k in fixed]
    product = math.prod(fixed[k] for k in given)
    shown = f"{'*'.join(given)}={product}"
    if limits.gpus is not None and limits.gpus % product:
        raise refuse("gpus", f"a multiple of {shown} (the fixed fields)", limits.gpus)
    if limits.max_gpus is not None and product > limits.max_gpus:
        raise refuse("max_gpus", f"at least {shown} (the fixed fields)", limits.max_gpus)
    if product > MAX_COUNT:
        raise refuse(given[-1], f"{'*'.join(given)} at most {MAX_COUNT:,} accelerators",
                     product)


#: A question's objective and the limits that keep its answer from running to an extreme.
BOUNDING_LIMITS = {
    "time": (("max_gpus", "gpus", "budget_usd"),
             f"without one the answer is the search's cap, {DEFAULT_MAX_GPUS:,} "
             "accelerators at a low MFU"),
    "cost": (("deadline_days", "gpus"), "without one the answer is a handful of "
             "accelerators training for years"),
    "energy": (("deadline_days", "gpus"), "without one the answer is a handful of "
               "accelerators training for years"),
    "gpus": (("deadline_days", "gpus"), "without one the answer is the fewest accelerators "
             "that hold the model, training for years"),
}
#: An example value for each bounding limit's hint.
BOUND_EXAMPLES = {"max_gpus": "4096", "gpus": "1024", "budget_usd": "5e6",
                  "deadline_days": "90"}


def check_bounded(objective: str, limits: Limits,
                  label: Callable[[str], str] = str) -> None:
    """Refuse (``SpecError``, exit 2) a question whose objective no limit bounds: minimizing
    time with no cap on accelerators or money, or cost, energy or accelerators with no
    deadline (and no fixed count). Either answer is an extreme that no planner asked for
    (issue 16: 92,160 GB200 at 9.7% MFU; 160 H800 for 1,097 days); the error names the
    limits that would make the question a real one."""
    keys, why = BOUNDING_LIMITS[objective]
    if any(getattr(limits, key) is not None for key in keys):
        return
    shown = " or ".join(f"{label(k)} {BOUND_EXAMPLES[k]}" for k in keys)
    raise SpecError(f"{label(keys[0])}: missing; minimizing {objective} needs a limit: "
                    f"{why}; give {shown}")


def _check_pipeline(job: TrainingJob, fixed: Mapping[str, Any],
                    refuse: Callable[[str, str, Any], SpecError]) -> None:
    """The stage rule (``(layers + mtp + split slots) % (pp*vp) == 0``, every chunk keeping a
    layer) and the schedules' rules, on the fixed pp, vp, schedule and pipeline split."""
    m, name = job.model, job.model.name
    pp, vp = fixed.get("pp"), fixed.get("vp")
    schedule, split = fixed.get("schedule"), fixed.get("pipeline_split")
    splits = [split] if split is not None else list(PIPELINE_SPLITS)

    def fits(s: str, p: int, v: int) -> bool:
        emb, loss = split_accounts(SPLIT_CODE[s])
        slots = m.layers + m.mtp_layers + emb + loss
        if s != "even" and p == 1:
            return False
        per_chunk, rem = divmod(slots, p * v)
        return not rem and per_chunk - emb >= 1 and per_chunk - loss >= 1

    def slots_text(s: str | None) -> str:
        text = f"layers={m.layers}"
        if m.mtp_layers:
            text += f" + mtp_layers={m.mtp_layers}"
        if s is None:
            return text + f" of {name}"
        emb, loss = split_accounts(SPLIT_CODE[s])
        if emb + loss:
            text += f" + {emb + loss} (pipeline_split={s})"
        return text + f" of {name}"

    if split is not None and split != "even" and pp == 1:
        raise refuse("pipeline_split", "even when pp=1 (the split moves layers between "
                     "pipeline stages)", split)
    if schedule is not None and schedule != "1f1b":
        if pp == 1:
            raise refuse("pp", f"at least 2 with the {schedule} schedule", pp)
        if vp is not None and vp > 1:
            raise refuse("vp", f"1 with the {schedule} schedule (interleaving is 1f1b's)", vp)
        if schedule == "dualpipe" and pp is not None and pp % 2:
            raise refuse("pp", "an even pp with the dualpipe schedule (two directions)", pp)
    if pp is not None:
        if pp > m.layers + m.mtp_layers:  # a stage holds at least one layer or MTP module
            raise refuse("pp", f"at most {slots_text(None)}", pp)
        if not any(fits(s, pp, 1) for s in splits):
            raise refuse("pp", f"a divisor of {slots_text(split or 'even')}"
                         + ("" if split is not None else ", or of it plus the embedding or "
                            "loss slots of a pipeline split"), pp)
    if vp is not None and vp > 1:
        if pp == 1:
            raise refuse("vp", "1 when pp=1 (interleaving needs pipeline stages)", vp)
        if pp and not any(fits(s, pp, vp) for s in splits):
            raise refuse("vp", f"a vp with pp*vp dividing {slots_text(split or 'even')} "
                         f"(pp={pp})", vp)
        most = m.layers + m.mtp_layers
        if not pp and not any(fits(s, p, vp) for s in splits for p in range(2, most + 1)):
            raise refuse("vp", f"a vp with pp*vp dividing {slots_text(split or 'even')} for "
                         "some pp >= 2", vp)


__all__ = ["MAX_TIME_LIMIT_S", "MAX_TOP", "MAX_WORKERS", "SECTIONS", "Scenario", "Values",
           "build", "check_bounded", "check_question", "check_value", "load", "read_values"]
