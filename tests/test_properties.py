"""Property-based tests (hypothesis, bounded so that CI stays fast; benchmarks/fuzz_loaders.py
runs the loader properties far longer):

- every plan ``solve`` returns satisfies every limit when re-evaluated independently;
- a fixed layout that ``check_question`` refuses is one the search finds infeasible;
- ``evaluate`` never raises on valid specs and its JSON is valid;
- random bytes and random TOML/JSON documents never crash the loaders (model files, Hugging Face
  ``config.json``, accelerator TOML, scenario files): they load or raise ``SpecError``.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import solver
from solver import scenario
from solver.errors import SpecError
from solver.model_files import SUPPORTED_HF_MODEL_TYPES, load_model_file, model_from_hf_config
from solver.specs import Accelerator, Layout, Limits, ModelSpec, TrainingJob

CATALOG = sorted(solver.accelerators())
PRICED = [n for n in CATALOG if solver.accelerator(n).price_usd_per_hour is not None]
POWERED = [n for n in CATALOG if solver.accelerator(n).tdp_w is not None]


def bounded(examples: int) -> settings:
    """CI's budget for one property (benchmarks/fuzz_loaders.py runs far more)."""
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------------------ strategies


@st.composite
def models(draw: st.DrawFn, max_layers: int = 24) -> ModelSpec:
    """A valid decoder-only model: dense or MoE, MHA or GQA."""
    heads = draw(st.sampled_from([4, 8, 12, 16, 32]))
    head_dim = draw(st.sampled_from([32, 64, 128]))
    kv_heads = draw(st.sampled_from([h for h in (1, 2, 4, heads) if heads % h == 0]))
    hidden = heads * head_dim
    layers = draw(st.integers(2, max_layers))
    moe = draw(st.integers(0, 3)) == 0
    fields: dict[str, Any] = {}
    if moe:
        experts = draw(st.sampled_from([4, 8, 16]))
        fields = {"experts": experts, "top_k": draw(st.integers(1, 2)),
                  "moe_ffn_hidden": hidden * draw(st.sampled_from([1, 2])),
                  "shared_experts": draw(st.integers(0, 1)),
                  "dense_layers": draw(st.integers(0, min(1, layers - 1)))}
    return ModelSpec(
        name="random", layers=layers, hidden=hidden, heads=heads, kv_heads=kv_heads,
        ffn_hidden=hidden * draw(st.sampled_from([2, 4])), vocab=draw(st.integers(1000, 64000)),
        seq_len=draw(st.sampled_from([512, 1024, 2048, 4096])),
        gated_mlp=draw(st.booleans()), tied_embeddings=draw(st.booleans()), **fields)


def powers_dividing(n: int, cap: int = 64) -> list[int]:
    return [p for p in (1, 2, 4, 8, 16, 32, 64) if p <= cap and n % p == 0]


@st.composite
def questions(draw: st.DrawFn) -> tuple[TrainingJob, Limits, str, int]:
    model = draw(models(max_layers=16))
    seq = model.seq_len
    job = TrainingJob(model=model, tokens=10.0 ** draw(st.floats(8.0, 11.0)),
                      global_batch=draw(st.sampled_from([0, 0, 16, 64, 96, 256])),
                      seq_len=seq, precision=draw(st.sampled_from(["bf16", "bf16", "fp8"])),
                      flash_attention=draw(st.booleans()))
    objective = draw(st.sampled_from(["time", "cost", "gpus", "energy"]))
    budget = 10.0 ** draw(st.floats(2.0, 7.0)) if draw(st.integers(0, 3)) == 0 else None
    # Only accelerators with the figures the question needs (a price for a cost objective or
    # a budget, a power figure for energy): a question without any is refused (SpecError).
    pool = [n for n in CATALOG
            if (n in PRICED or (objective != "cost" and budget is None))
            and (n in POWERED or objective != "energy")]
    accelerators = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))
    count = draw(st.sampled_from([1, 8, 24, 64, 256, 1000, 4096]))
    exact = draw(st.integers(0, 4)) == 0
    fixed: dict[str, Any] = {}
    if draw(st.integers(0, 2)) == 0:
        key = draw(st.sampled_from(["tp", "pp", "cp", "micro_batch", "zero_stage", "recompute"]))
        fixed[key] = draw({
            "tp": st.sampled_from(powers_dividing(math.gcd(model.heads, model.kv_heads))),
            "pp": st.integers(1, model.layers),
            "cp": st.sampled_from([c for c in (1, 2, 4) if seq % (2 * c) == 0]),
            "micro_batch": st.sampled_from([1, 2, 4]),
            "zero_stage": st.integers(0, 3),
            "recompute": st.sampled_from(["none", "selective", "full"]),
        }[key])
    limits = Limits(
        accelerators=tuple(accelerators), gpus=count if exact else None,
        max_gpus=None if exact else count,
        deadline_days=10.0 ** draw(st.floats(-1.0, 3.0)) if draw(st.booleans()) else None,
        budget_usd=budget, fixed=fixed,
        tokens_per_step=draw(st.sampled_from([(1e6, 16e6), (seq * 8.0, seq * 512.0)])))
    return job, limits, objective, draw(st.sampled_from([1, 1, 2]))


def check_against_limits(est: solver.Estimate, job: TrainingJob, limits: Limits) -> None:
    """Re-evaluate one returned layout from its JSON alone and check every limit."""
    layout = est.layout_dict()
    x = Layout(accelerator=layout["accelerator"], tp=layout["tp"], pp=layout["pp"],
               dp=layout["dp"], cp=layout["cp"], ep=layout["ep"], vp=layout["vp"],
               micro_batch=layout["micro_batch"], zero_stage=layout["zero_stage"],
               recompute=layout["recompute"], schedule=layout["schedule"],
               pipeline_split=layout["pipeline_split"])
    batch = layout["global_batch"]
    again = solver.evaluate(TrainingJob(
        model=job.model, tokens=job.tokens, global_batch=batch, seq_len=job.seq_len,
        precision=job.precision, flash_attention=job.flash_attention), x)
    assert again.fits, again.violations
    assert again.memory_gib_per_gpu <= solver.accelerator(x.accelerator).memory_gib
    assert math.isclose(again.training_days, est.training_days, rel_tol=1e-9)
    assert x.gpus == layout["gpus"] == x.tp * x.pp * x.cp * x.dp
    assert batch == x.dp * x.micro_batch * layout["num_microbatches"]
    if limits.accelerators:
        assert x.accelerator in limits.accelerators
    if job.global_batch:
        assert batch == job.global_batch
    else:
        low, high = limits.tokens_per_step
        assert batch * job.seq_len <= high
    if limits.gpus is not None:
        assert x.gpus == limits.gpus
    if limits.max_gpus is not None:
        assert x.gpus <= limits.max_gpus
    if limits.deadline_days is not None:  # judged on wall-clock days
        assert again.training_days <= again.wall_clock_days <= limits.deadline_days
    if limits.budget_usd is not None:
        assert again.cost_usd <= limits.budget_usd
    for key, value in limits.fixed.items():
        assert getattr(x, key) == value, key


# ------------------------------------------------------------------------------ solve


@bounded(20)
@given(q=questions())
def test_every_plan_satisfies_every_limit(q: tuple[TrainingJob, Limits, str, int]) -> None:
    job, limits, objective, top = q
    plan = solver.solve(job, limits, objective=objective, time_limit_s=30, workers=1, top=top)
    assert plan.status in ("optimal", "feasible", "infeasible", "unknown")
    json.dumps(plan.to_dict(), allow_nan=False)
    if plan.estimate is None:
        assert plan.status != "optimal" and plan.explanation
        return
    for est in (plan.estimate, *plan.alternatives):
        check_against_limits(est, job, limits)


@st.composite
def fixed_questions(draw: st.DrawFn) -> tuple[TrainingJob, Limits]:
    """Questions with arbitrary (often impossible) fixed fields and counts."""
    model = draw(models(max_layers=8))
    job = TrainingJob(model=model, tokens=1e9, seq_len=model.seq_len,
                      global_batch=draw(st.sampled_from([0, 24, 64])))
    keys = draw(st.lists(st.sampled_from(["tp", "pp", "dp", "cp", "ep", "vp", "micro_batch"]),
                         min_size=1, max_size=3, unique=True))
    fixed = {k: draw(st.integers(1, 12)) for k in keys}
    exact = draw(st.booleans())
    count = draw(st.integers(1, 96))
    limits = Limits(accelerators=("h100-sxm5-80gb",), gpus=count if exact else None,
                    max_gpus=None if exact else count, fixed=fixed)
    return job, limits


@bounded(25)
@given(q=fixed_questions())
def test_a_refused_fixed_layout_is_one_the_search_cannot_place(
        q: tuple[TrainingJob, Limits]) -> None:
    job, limits = q
    try:
        scenario.check_question(job, limits)
    except SpecError:
        plan = solver.solve(job, limits, time_limit_s=30, workers=1)
        assert plan.status == "infeasible", (limits.fixed, plan.to_dict()["layout"])


# ------------------------------------------------------------------------------ evaluate


@st.composite
def layouts(draw: st.DrawFn) -> tuple[TrainingJob, Layout]:
    """A valid model, job and layout (Megatron-LM's divisibility rules hold)."""
    model = draw(models())
    seq = draw(st.sampled_from([model.seq_len, 256, 8192]))
    width = math.gcd(model.heads, model.ffn_hidden, model.moe_ffn_hidden or model.ffn_hidden)
    tp = draw(st.sampled_from([t for t in powers_dividing(width)
                               if model.kv_heads % t == 0 or t % model.kv_heads == 0]))
    # Megatron-LM's stage rule: (layers + split slots) % (pp * vp) == 0, a layer on every chunk.
    options = []
    for split in ("even", "embedding", "loss", "both"):
        emb, loss = int(split in ("embedding", "both")), int(split in ("loss", "both"))
        slots = model.layers + emb + loss
        options += [(split, p, v) for p in range(1, slots + 1) for v in (1, 2, 3)
                    if slots % (p * v) == 0 and slots // (p * v) - max(emb, loss) >= 1
                    and (p > 1 or (split == "even" and v == 1))]
    split, pp, vp = draw(st.sampled_from(options))
    schedules = ["1f1b"] + (["zero-bubble"] if vp == 1 and pp > 1 else []) + (
        ["dualpipe"] if vp == 1 and pp % 2 == 0 else [])
    schedule = draw(st.sampled_from(schedules))
    cp = draw(st.sampled_from([c for c in (1, 2, 4, 8) if c == 1 or seq % (2 * c) == 0]))
    dp = draw(st.integers(1, 64))
    ep = draw(st.sampled_from([e for e in powers_dividing(model.experts)
                               if (dp * cp) % e == 0]))
    mb = draw(st.sampled_from([1, 2, 4]))
    nmb = draw(st.integers(1, 16))
    if vp > 1 or schedule == "zero-bubble":
        nmb *= pp  # interleaving: a multiple of pp; zero-bubble: at least pp
    if schedule == "dualpipe":
        nmb = 2 * pp * nmb  # an even count of at least 2 pp
    job = TrainingJob(model=model, tokens=10.0 ** draw(st.floats(6.0, 13.0)),
                      global_batch=dp * mb * nmb, seq_len=seq,
                      precision=draw(st.sampled_from(["bf16", "fp8"])),
                      flash_attention=draw(st.booleans()),
                      tp_comm_overlap=draw(st.booleans()),
                      grad_reduce_overlap=draw(st.booleans()),
                      ep_comm_overlap=draw(st.booleans()),
                      moe_dispatcher=draw(st.sampled_from(["alltoall", "deepep"])),
                      fp8_dispatch=draw(st.booleans()),
                      moments_dtype=draw(st.sampled_from(["fp32", "bf16"])))
    layout = Layout(accelerator=draw(st.sampled_from(CATALOG)), tp=tp, pp=pp, dp=dp, cp=cp,
                    ep=ep, vp=vp, micro_batch=mb, zero_stage=draw(st.integers(0, 3)),
                    recompute=draw(st.sampled_from(["none", "selective", "full", "layernorm",
                                                    "layernorm+moe_act", "mlp+moe",
                                                    "shared_experts"])),
                    schedule=schedule, pipeline_split=split)
    return job, layout


@bounded(80)
@given(q=layouts())
def test_evaluate_never_raises_on_valid_specs(q: tuple[TrainingJob, Layout]) -> None:
    job, layout = q
    est = solver.evaluate(job, layout)
    assert est.fits == (not est.violations)
    assert est.memory_gib_per_gpu > 0 and math.isfinite(est.memory_gib_per_gpu)
    if not any(v.startswith("interconnect") for v in est.violations):
        # A group that leaves the scale-up domain of an accelerator without a published
        # scale-out bandwidth has no time (NaN, null in the JSON); every other layout has one.
        assert est.step_time_s > 0 and math.isfinite(est.step_time_s)
        assert est.training_days > 0 and math.isfinite(est.training_days)
        assert 0 < est.mfu <= est.hfu + 1e-12 <= 1.0  # no faster than the peak
    json.dumps(est.to_dict(), allow_nan=False)


# ------------------------------------------------------------------------------ loaders

#: Keys the loaders know (so that random documents reach past the first check).
MODEL_KEYS = [f for f in ModelSpec.__dataclass_fields__]
ACCELERATOR_KEYS = [f for f in Accelerator.__dataclass_fields__]
HF_KEYS = ["model_type", "architectures", "num_hidden_layers", "hidden_size",
           "num_attention_heads", "num_key_value_heads", "intermediate_size", "vocab_size",
           "max_position_embeddings", "head_dim", "tie_word_embeddings", "attention_bias",
           "mlp_bias", "num_local_experts", "num_experts_per_tok", "num_experts",
           "moe_intermediate_size", "shared_expert_intermediate_size", "decoder_sparse_step",
           "mlp_only_layers", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim",
           "q_lora_rank", "kv_lora_rank", "n_routed_experts", "n_shared_experts",
           "first_k_dense_replace", "moe_layer_freq", "n_embd", "n_layer", "n_head", "n_inner",
           "n_positions", "n_ctx", "ffn_dim", "word_embed_proj_dim", "enable_bias",
           "_name_or_path", "name"]
SCENARIO_KEYS = ["description", "model", "job", "limits", "fixed", "solve", "preset", "path",
                 *(k for keys in scenario.SECTIONS.values() for k in keys)]

scalars = (st.integers(-3, 200) | st.integers() | st.sampled_from([0, 1, 2, 8, 10**30])
           | st.floats(allow_nan=True, allow_infinity=True) | st.booleans()
           | st.text(max_size=12) | st.sampled_from(["llama", "mixtral", "deepseek_v3", "gpt2",
                                                    "opt", "qwen2_moe", "h100", "llama3-8b",
                                                    "bf16", "full", "cost", "15T"]))


def documents(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Tables whose keys are mostly known ones and whose values are anything TOML holds."""
    key = st.sampled_from(keys) | st.text(min_size=1, max_size=8)
    values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(key, inner, max_size=4), max_leaves=12)
    return st.dictionaries(key, values, max_size=12)


def toml_text(data: dict[str, Any]) -> str:
    """A TOML document for ``data`` (inline tables and arrays; no writer needed)."""
    return "".join(f"{json.dumps(k)} = {toml_value(v)}\n" for k, v in data.items())


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if value != value else ("inf" if value > 0 else "-inf") \
            if math.isinf(value) else repr(value)
    if isinstance(value, (int, str)):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def only_spec_errors(load: Callable[[], Any]) -> None:
    try:
        load()
    except SpecError as err:
        message = str(err)
        assert message and "\n" not in message.strip(), message
        assert "Traceback" not in message


def load_bytes(raw: bytes, name: str) -> Callable[[], Any]:
    """A loader of ``raw`` as the file ``name``, for ``only_spec_errors``."""

    def load() -> Any:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / name
            path.write_bytes(raw)
            if name.endswith("scenario.toml"):
                return scenario.build(scenario.read_values(path))
            if name.startswith("accelerator"):
                return Accelerator.from_toml(path)
            return load_model_file(path)

    return load


FILE_NAMES = ["m.toml", "m.json", "config.json", "accelerator.toml", "scenario.toml"]


@bounded(120)
@given(raw=st.binary(max_size=2048), name=st.sampled_from(FILE_NAMES))
def test_random_bytes_never_crash_a_loader(raw: bytes, name: str) -> None:
    only_spec_errors(load_bytes(raw, name))


@bounded(120)
@given(data=documents(MODEL_KEYS), as_json=st.booleans())
def test_random_model_files_never_crash(data: dict[str, Any], as_json: bool) -> None:
    text = json.dumps(data) if as_json else toml_text(data)
    only_spec_errors(load_bytes(text.encode(), "m.json" if as_json else "m.toml"))


@bounded(150)
@given(data=documents(HF_KEYS), model_type=st.sampled_from(SUPPORTED_HF_MODEL_TYPES))
def test_random_hf_configs_never_crash(data: dict[str, Any], model_type: str) -> None:
    data = {"model_type": model_type, **data}
    only_spec_errors(lambda: model_from_hf_config(data, where="config.json", name="x"))
    only_spec_errors(load_bytes(json.dumps(data).encode(), "config.json"))


@bounded(100)
@given(data=documents(ACCELERATOR_KEYS))
def test_random_accelerator_files_never_crash(data: dict[str, Any]) -> None:
    only_spec_errors(load_bytes(toml_text(data).encode(), "accelerator.toml"))


@bounded(100)
@given(data=documents(SCENARIO_KEYS))
def test_random_scenarios_never_crash(data: dict[str, Any]) -> None:
    only_spec_errors(load_bytes(toml_text(data).encode(), "scenario.toml"))


PRESET = (Path(solver.__file__).parent / "presets" / "llama3-70b.toml").read_bytes()


@bounded(100)
@given(cut=st.integers(0, len(PRESET)), flips=st.lists(
    st.tuples(st.integers(0, len(PRESET) - 1), st.integers(0, 255)), max_size=4))
def test_a_damaged_real_file_never_crashes(cut: int, flips: list[tuple[int, int]]) -> None:
    raw = bytearray(PRESET)
    for at, byte in flips:
        raw[at] = byte
    only_spec_errors(load_bytes(bytes(raw[:cut]), "m.toml"))


@pytest.mark.parametrize("name", FILE_NAMES)
def test_the_loaders_accept_what_they_should(name: str) -> None:
    """The fuzzed loaders still read good files (the properties above are not vacuous)."""
    good = {
        "m.toml": PRESET,
        "m.json": json.dumps({"layers": 2, "hidden": 64, "heads": 4}).encode(),
        "config.json": json.dumps({"model_type": "llama", "num_hidden_layers": 2,
                                   "hidden_size": 64, "num_attention_heads": 4,
                                   "intermediate_size": 128, "vocab_size": 100,
                                   "max_position_embeddings": 128}).encode(),
        "accelerator.toml": (Path(solver.__file__).parents[1] / "hardware_specs"
                             / "h100-sxm5-80gb.toml").read_bytes(),
        "scenario.toml": b'[model]\npreset = "llama3-8b"\n[job]\ntokens = "1T"\n',
    }[name]
    assert load_bytes(good, name)() is not None
