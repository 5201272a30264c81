"""Questions that can never be answered, refused before any search (``SpecError``, exit 2).

``check_question``: fixed layout fields no layout can hold; ``check_bounded``: an objective no
limit bounds. ``solver.scenario.build`` and the CLI call them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from solver.errors import SpecError
from solver.layout_options import (
    DEFAULT_MAX_GPUS,
    PIPELINE_SPLITS,
    SPLIT_CODE,
    split_accounts,
)
from solver.specs import Limits, TrainingJob
from solver.validate import MAX_COUNT


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


__all__ = ["BOUNDING_LIMITS", "check_bounded", "check_question"]
