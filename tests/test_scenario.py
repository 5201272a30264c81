"""Scenario files (solver/scenario.py, docs/scenarios.md): the examples, overrides, rejections."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

import solver
from solver import scenario
from solver.cli import run
from solver.errors import SpecError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

HEAD = '[model]\npreset = "llama3-8b"\n[job]\ntokens = "1T"\n'


def solve_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code = run(["solve", *argv, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data: dict[str, Any] = json.loads(captured.out)
    return data


def error_of(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one-line error of an invalid command (exit 2, nothing on stdout)."""
    code = run(argv)
    captured = capsys.readouterr()
    assert code == 2, captured
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpuplan: error: "), captured.err
    return lines[0].removeprefix("gpuplan: error: ")


def write(tmp_path: Path, text: str, name: str = "s.toml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# ------------------------------------------------------------------------------ the examples


def test_every_example_is_documented_and_loads() -> None:
    files = sorted(p.name for p in EXAMPLES.glob("*.toml"))
    assert len(files) >= 3
    docs = (EXAMPLES.parent / "docs" / "scenarios.md").read_text(encoding="utf-8")
    for name in files:
        assert f"`{name}`" in docs, name
        question = scenario.load(EXAMPLES / name)
        assert question.description


def test_example_gpt3_as_megatron_did(capsys: pytest.CaptureFixture[str]) -> None:
    data = solve_json([str(EXAMPLES / "gpt3-175b-megatron-a100.toml")], capsys)
    layout = data["layout"]
    assert data["status"] == "optimal" and data["objective"] == "time"
    assert (layout["accelerator"], layout["gpus"], layout["tp"], layout["pp"], layout["dp"]) == (
        "a100-sxm4-80gb", 1024, 8, 8, 16)
    assert (layout["global_batch"], layout["micro_batch"], layout["recompute"]) == (1536, 1, "full")
    # Narayanan et al. 2021 report about 34 days; the step model is within its stated error.
    assert 25 < data["estimate"]["training_days"] < 40


def test_example_llama3_70b_cheapest_in_90_days(capsys: pytest.CaptureFixture[str]) -> None:
    data = solve_json([str(EXAMPLES / "llama3-70b-cheapest-in-90-days.toml")], capsys)
    assert data["status"] == "optimal" and data["objective"] == "cost"
    assert data["layout"]["accelerator"] == "h100-sxm5-80gb"
    assert data["layout"]["gpus"] <= 8192
    assert data["estimate"]["training_days"] <= 90


def test_example_gpt4_estimate_fewest_a100(capsys: pytest.CaptureFixture[str]) -> None:
    data = solve_json([str(EXAMPLES / "gpt4-estimate-fewest-a100.toml")], capsys)
    assert data["status"] == "optimal" and data["objective"] == "gpus"
    assert data["layout"]["accelerator"] == "a100-sxm4-80gb"
    assert data["estimate"]["training_days"] <= 95
    assert 15_000 < data["layout"]["gpus"] < 40_000  # the public estimate: about 25,000


def test_example_inline_model(capsys: pytest.CaptureFixture[str]) -> None:
    data = solve_json([str(EXAMPLES / "my-model-inline.toml")], capsys)
    assert data["status"] == "optimal"
    assert data["layout"]["gpus"] <= 512
    tokens = data["layout"]["global_batch"] * 4096
    assert 2e6 <= tokens <= 4e6  # [limits] tokens_per_step


# ------------------------------------------------------------------------------ overrides


def test_options_override_the_file(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(EXAMPLES / "llama3-70b-cheapest-in-90-days.toml")
    data = solve_json([path, "--objective", "time", "--max-gpus", "4096"], capsys)
    assert data["objective"] == "time"
    assert 2048 < data["layout"]["gpus"] <= 4096


def test_gpus_option_replaces_the_files_count_limits(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, HEAD + '[limits]\naccelerators = ["h100"]\nmax_gpus = 8\n')
    data = solve_json([path, "--gpus", "16", "--time-limit", "10"], capsys)
    assert data["layout"]["gpus"] == 16


def test_one_fixed_field_overridden_keeps_the_others(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, HEAD + '[limits]\naccelerators = ["h100"]\ngpus = 16\n'
                 '[fixed]\ntp = 8\nzero_stage = 1\n')
    data = solve_json([path, "--tp", "4", "--time-limit", "10"], capsys)
    assert (data["layout"]["tp"], data["layout"]["zero_stage"]) == (4, 1)


def test_model_and_tokens_may_come_from_the_command_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, '[limits]\naccelerators = ["h100"]\ngpus = 8\n')
    data = solve_json([path, "--model", "llama3-8b", "--tokens", "1T"], capsys)
    assert data["layout"]["gpus"] == 8
    assert "--tokens: missing" in error_of(["solve", path, "--model", "llama3-8b"], capsys)
    assert "--model: missing" in error_of(["solve", path, "--tokens", "1T"], capsys)


def test_cost_params_merge_key_by_key(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + "[solve]\ncost_model = \"cloud\"\n[solve.cost_params]\n"
                 "pue = 1.5\n")
    from solver.cli.solve import merged_question

    options: dict[str, Any] = dict.fromkeys(
        ("model", "tokens", "seq_len", "global_batch", "precision", "flash_attention",
         "accelerators", "gpus", "max_gpus", "deadline_days", "budget_usd", "tp", "pp", "dp",
         "cp", "ep", "vp", "micro_batch", "zero_stage", "recompute", "objective",
         "time_limit_s", "top", "workers", "seed", "cost_model"))
    question = merged_question(Path(path), options, {"region": "us-central1"})
    assert dict(question.cost_params) == {"pue": 1.5, "region": "us-central1"}
    with pytest.raises(SpecError, match=r"s\.toml: \[solve\] cost_params: unknown key 'peu'"):
        merged_question(Path(write(tmp_path, HEAD + "[solve.cost_params]\npeu = 1\n")),
                        options, {"region": "us-central1"})


# ------------------------------------------------------------------------------ the library


def test_library_load_and_solve(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + '[limits]\naccelerators = "h100"\ngpus = 8\n'
                 '[solve]\nobjective = "cost"\nworkers = 1\n')
    question = scenario.load(path)
    assert question.limits.accelerators == ("h100-sxm5-80gb",)
    assert question.objective == "cost" and question.workers == 1
    plan = question.solve(time_limit_s=20)
    assert plan.status == "optimal"
    assert plan.estimate is not None and plan.estimate.layout.gpus == 8


def test_the_training_software_is_part_of_the_job(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + 'tp_comm_overlap = true\ngrad_reduce_overlap = false\n'
                 'zero3_impl = "deepspeed"\ngrad_dtype = "bf16"\nep_comm_overlap = true\n'
                 'sequence_parallel = false\n')
    job = scenario.load(path).job
    assert (job.tp_comm_overlap, job.grad_reduce_overlap, job.zero3_impl, job.grad_dtype,
            job.ep_comm_overlap, job.sequence_parallel) == (True, False, "deepspeed", "bf16",
                                                            True, False)
    plain = scenario.load(write(tmp_path, HEAD, name="plain.toml")).job
    assert (plain.tp_comm_overlap, plain.grad_reduce_overlap, plain.zero3_impl,
            plain.grad_dtype, plain.ep_comm_overlap, plain.sequence_parallel) == (
        False, True, "fsdp", "fp32", False, True)


def test_the_moe_and_optimizer_software_is_part_of_the_job(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + 'moe_dispatcher = "deepep"\nfp8_dispatch = true\n'
                 'moe_imbalance = 1.25\nmoments_dtype = "bf16"\n')
    job = scenario.load(path).job
    assert (job.moe_dispatcher, job.fp8_dispatch, job.moe_imbalance, job.moments_dtype) == (
        "deepep", True, 1.25, "bf16")
    plain = scenario.load(write(tmp_path, HEAD, name="plain.toml")).job
    assert (plain.moe_dispatcher, plain.fp8_dispatch, plain.moe_imbalance,
            plain.moments_dtype) == ("alltoall", False, 1.0, "fp32")


def test_dropout_fp8_weights_and_offload_are_part_of_the_job(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + 'precision = "fp8"\ndropout = 0.1\nfp8_params = true\n'
                 'activation_offload = true\n')
    job = scenario.load(path).job
    assert (job.dropout, job.fp8_params, job.activation_offload) == (0.1, True, True)
    plain = scenario.load(write(tmp_path, HEAD, name="plain.toml")).job
    assert (plain.dropout, plain.fp8_params, plain.activation_offload) == (0.0, False, False)
    unfused = scenario.load(write(tmp_path, HEAD + "unfused_expert_bias = true\n",
                                  name="u.toml")).job
    assert (unfused.unfused_expert_bias, plain.unfused_expert_bias) == (True, False)


def test_every_job_key_has_a_row_in_the_docs() -> None:
    docs = (EXAMPLES.parent / "docs" / "scenarios.md").read_text(encoding="utf-8")
    for key in scenario.SECTIONS["job"]:
        assert f"| `{key}` |" in docs, key


def test_options_override_the_files_dropout_and_offload(tmp_path: Path) -> None:
    from solver.cli.solve import merged_question

    path = write(tmp_path, HEAD + 'precision = "fp8"\ndropout = 0.1\nfp8_params = true\n'
                 'activation_offload = true\n')
    options: dict[str, Any] = dict.fromkeys(
        ("model", "tokens", "gpus", "max_gpus", "moe_dispatcher", "pipeline_split"))
    options.update(dropout=0.0, fp8_params=False, activation_offload=False)
    job = merged_question(Path(path), options, {}).job
    assert (job.precision, job.dropout, job.fp8_params, job.activation_offload) == (
        "fp8", 0.0, False, False)


def test_fixed_schedule_split_and_recompute_modules(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + '[fixed]\npp = 2\nschedule = "dualpipe"\n'
                 'pipeline_split = "both"\nrecompute = "moe_act+layernorm"\n')
    fixed = scenario.load(path).limits.fixed
    assert (fixed["schedule"], fixed["pipeline_split"], fixed["recompute"]) == (
        "dualpipe", "both", "layernorm+moe_act")


def test_options_override_the_files_schedule_and_job(tmp_path: Path) -> None:
    from solver.cli.solve import merged_question

    path = write(tmp_path, HEAD + 'moments_dtype = "bf16"\n[fixed]\nschedule = "dualpipe"\n')
    options: dict[str, Any] = dict.fromkeys(
        ("model", "tokens", "gpus", "max_gpus", "moe_dispatcher", "pipeline_split"))
    options.update(moments_dtype="fp32", schedule="zero-bubble")
    question = merged_question(Path(path), options, {})
    assert question.job.moments_dtype == "fp32"
    assert question.limits.fixed["schedule"] == "zero-bubble"


def test_model_path_is_relative_to_the_scenario(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tiny.json").write_text(json.dumps(
        {"layers": 2, "hidden": 64, "heads": 4, "vocab": 100, "seq_len": 128}))
    path = write(tmp_path, '[model]\npath = "models/tiny.json"\n[job]\ntokens = 1e9\n')
    assert scenario.load(path).job.model.name == "tiny"


def test_inline_model_is_named_after_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[model]\nlayers = 2\nhidden = 64\nheads = 4\n[job]\ntokens = 1e9\n",
                 name="small.toml")
    assert scenario.load(path).job.model.name == "small"


# ------------------------------------------------------------------------------ rejections

BAD_FILES = [
    ('[limit]\nmax_gpus = 8\n', r"s\.toml: unknown section 'limit'; did you mean limits\?"),
    ('[limits]\nmax_gpu = 8\n', r"s\.toml: \[limits\] unknown key 'max_gpu'; did you mean"),
    ('[fixed]\nzero = 1\n', r"\[fixed\] unknown key 'zero'; did you mean zero_stage\?"),
    ('[solve]\ntime_limit = "fast"\n', r"\[solve\] time_limit: expected a number, got 'fast'"),
    ('[solve]\ntop = 0\n', r"\[solve\] top: expected an integer in \[1, 100\], got 0"),
    ('[solve]\nworkers = 100000\n', r"\[solve\] workers: expected an integer in \[1, 256\]"),
    ('[solve]\nobjective = "speed"\n', r"\[solve\] objective: expected one of time\|cost"),
    ('[solve]\ncost_model = "clod"\n', r"\[solve\] cost_model: unknown cost model 'clod'; "
                                       r"did you mean cloud\?"),
    ('[solve.cost_params]\npeu = 1.2\n', r"\[solve\] cost_params: unknown key 'peu'"),
    ('[limits]\ngpus = 16\nmax_gpus = 8\n', r"\[limits\] gpus: expected at most max_gpus=8, "
                                            r"got 16"),
    ('[limits]\naccelerators = ["h1000"]\n', r"\[limits\] accelerators: unknown accelerator "
                                             r"'h1000'; did you mean h100"),
    ('[limits]\ndeadline_days = -1\n', r"\[limits\] deadline_days: expected a finite number > 0"),
    ('[limits]\ntokens_per_step = [16e6, 1e6]\n', r"tokens_per_step: expected low <= high"),
    ('seq_len = -1\n', r"\[job\] seq_len: expected an integer in \[0, 10000000\]"),
    ('precision = "fp16"\n', r"\[job\] precision: expected one of bf16\|fp8"),
    ('zero3_impl = "megatron"\n', r"\[job\] zero3_impl: expected one of fsdp\|deepspeed"),
    ('tp_comm_overlap = "yes"\n', r"\[job\] tp_comm_overlap: expected true or false"),
    ('moe_dispatcher = "nccl"\n', r"\[job\] moe_dispatcher: expected one of alltoall\|deepep"),
    ('fp8_dispatch = 1\n', r"\[job\] fp8_dispatch: expected true or false"),
    ('moe_imbalance = 0.5\n', r"\[job\] moe_imbalance: expected a finite number >= 1"),
    ('moments_dtype = "fp8"\n', r"\[job\] moments_dtype: expected one of fp32\|bf16"),
    ('dropout = 1.5\n', r"\[job\] dropout: expected a number in \[0, 0\.99\], got 1\.5"),
    ('dropout = "low"\n', r"\[job\] dropout: expected a number, got 'low'"),
    ('fp8_params = "yes"\n', r"\[job\] fp8_params: expected true or false, got 'yes'"),
    ('fp8_params = true\n', r"\[job\] fp8_params: expected false unless precision is fp8, "
                            r"got True"),
    ('activation_offload = 1\n', r"\[job\] activation_offload: expected true or false, got 1"),
    ('unfused_expert_bias = "no"\n',
     r"\[job\] unfused_expert_bias: expected true or false, got 'no'"),
    ('[fixed]\nschedule = "gpipe"\n', r"\[fixed\] schedule: expected one of 1f1b\|"),
    ('[fixed]\npipeline_split = "head"\n', r"\[fixed\] pipeline_split: expected one of even"),
    ('[fixed]\nrecompute = "attn"\n',
     r"\[fixed\] recompute: expected none, full, alternate_matmuls, selective"),
    ('[fixed]\nschedule = "dualpipe"\npp = 3\n',
     r"\[fixed\] pp: expected an even pp with the dualpipe schedule"),
    ('[fixed]\ntp = 3\n', r"\[fixed\] tp: expected a divisor of heads=32 of llama3-8b, got 3"),
    ('[fixed]\nep = 2\n', r"\[fixed\] ep: expected 1 \(llama3-8b is a dense model"),
    ('description = 3\n', r"s\.toml: description: expected a text, got 3"),  # before HEAD
]


@pytest.mark.parametrize(("text", "pattern"), BAD_FILES)
def test_a_bad_value_names_file_section_and_key(tmp_path: Path, text: str, pattern: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    text = text + HEAD if text.startswith("description") else HEAD + text
    message = error_of(["solve", write(tmp_path, text)], capsys)
    assert re.search(pattern, message), message


@pytest.mark.parametrize(("text", "pattern"), [
    ('[model]\npreset = "llama3-7b"\n', r"\[model\] preset: unknown model 'llama3-7b'; "
                                        r"did you mean"),
    ('[model]\npreset = "llama3-8b"\nlayers = 3\n', r"\[model\]: expected one of preset, path "
                                                    r"or the model's fields"),
    ('[model]\npath = "missing.json"\n', r"\[model\] path: no such file"),
    ('[model]\nlayers = 0\nhidden = 8\nheads = 1\n', r"\[model\]: layers: expected an integer"),
    ('[model]\nlayerz = 2\n', r"\[model\]: unknown field 'layerz'"),
    ('[model]\n', r"\[model\]: expected preset = NAME, path = FILE"),
    ('model = "llama3-8b"\n', r"s\.toml: \[model\]: expected a table, got 'llama3-8b'"),
    ('[model\n', r"s\.toml: not valid TOML"),
])
def test_a_bad_model_section(tmp_path: Path, text: str, pattern: str,
                             capsys: pytest.CaptureFixture[str]) -> None:
    message = error_of(["solve", write(tmp_path, text + '[job]\ntokens = "1T"\n')], capsys)
    assert re.search(pattern, message), message


def test_a_scenario_must_be_a_toml_file(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert "expected a scenario file ending in .toml" in error_of(
        ["solve", write(tmp_path, HEAD, name="config.json")], capsys)
    assert "cannot read the scenario file" in error_of(
        ["solve", str(tmp_path / "missing.toml")], capsys)
    binary = tmp_path / "b.toml"
    binary.write_bytes(bytes(range(256)) * 10)
    assert "not UTF-8 text" in error_of(["solve", str(binary)], capsys)
    huge = tmp_path / "h.toml"
    huge.write_bytes(b"# " + b"x" * 2_000_000)
    assert "file too large for a scenario file" in error_of(["solve", str(huge)], capsys)


# ------------------------------------------------------------------------------ fixed layouts


@pytest.mark.parametrize(("fixed", "limits", "pattern"), [
    ({"tp": 3}, {}, r"^tp: expected a divisor of heads=32"),
    ({"tp": 6}, {}, r"^tp: expected a divisor or a multiple of kv_heads=4 of gqa"),
    ({"ep": 2}, {}, r"^ep: expected 1"),
    ({"cp": 3}, {}, r"^cp: expected a cp with 2\*cp dividing seq_len=8192"),
    ({"pp": 33}, {}, r"^pp: expected at most layers=32"),
    ({"vp": 2, "pp": 1}, {}, r"^vp: expected 1 when pp=1"),
    ({"vp": 3, "pp": 2}, {}, r"^vp: expected a vp with pp\*vp dividing layers=32"),
    ({"vp": 3}, {}, r"^vp: expected a vp with pp\*vp dividing layers=32 of llama3-8b for some"),
    ({"tp": 8}, {"gpus": 12}, r"^gpus: expected a multiple of tp=8"),
    ({"tp": 8, "pp": 4}, {"max_gpus": 16}, r"^max_gpus: expected at least tp\*pp=32"),
    ({"ep": 4, "dp": 2, "cp": 1}, {}, r"^ep: expected a divisor of dp\*cp=2"),
    ({"pp": 5}, {}, r"^pp: expected a divisor of layers=32 of llama3-8b, or of it plus"),
    ({"pp": 3, "pipeline_split": "even"}, {}, r"^pp: expected a divisor of layers=32 of "
                                                r"llama3-8b, got 3"),
    ({"pp": 4, "pipeline_split": "both"}, {}, r"^pp: expected a divisor of layers=32 \+ 2 "
                                                r"\(pipeline_split=both\)"),
    ({"pp": 1, "pipeline_split": "loss"}, {}, r"^pipeline_split: expected even when pp=1"),
    ({"pp": 1, "schedule": "zero-bubble"}, {}, r"^pp: expected at least 2 with the zero-bubble"),
    ({"vp": 2, "schedule": "dualpipe"}, {}, r"^vp: expected 1 with the dualpipe schedule"),
])
def test_fixed_fields_that_can_never_hold(fixed: dict[str, Any], limits: dict[str, Any],
                                          pattern: str) -> None:
    model = solver.model("llama3-8b")
    if "ep" in fixed and "dp" in fixed:
        model = solver.model("mixtral-8x7b")
    if fixed.get("tp") == 6:
        model = solver.ModelSpec(name="gqa", layers=4, hidden=384, heads=12, kv_heads=4)
    job = solver.TrainingJob(model=model, tokens=1e12)
    with pytest.raises(SpecError, match=pattern):
        scenario.check_question(job, solver.Limits(fixed=fixed, **limits))


def test_fixed_pipelines_that_hold_are_accepted() -> None:
    job = solver.TrainingJob(model=solver.model("llama3-8b"), tokens=1e12)
    for fixed in ({"pp": 3}, {"pp": 3, "pipeline_split": "loss"}, {"pp": 2, "vp": 8},
                  {"pp": 2, "schedule": "dualpipe", "pipeline_split": "both"}):
        scenario.check_question(job, solver.Limits(fixed=fixed))
    mtp = solver.TrainingJob(model=solver.model("deepseek-v3"), tokens=1e12)
    scenario.check_question(mtp, solver.Limits(fixed={"pp": 2, "pipeline_split": "even"}))
    with pytest.raises(SpecError, match=r"^pp: expected a divisor of layers=61 \+ "
                                        r"mtp_layers=1 of deepseek-v3, got 4"):
        scenario.check_question(mtp, solver.Limits(fixed={"pp": 4, "pipeline_split": "even"}))


def test_fixed_batch_divisibility() -> None:
    job = solver.TrainingJob(model=solver.model("llama3-8b"), tokens=1e12, global_batch=96)
    with pytest.raises(SpecError, match=r"^dp: expected a divisor of global_batch=96, got 64"):
        scenario.check_question(job, solver.Limits(fixed={"dp": 64}))
    with pytest.raises(SpecError, match=r"^dp: expected dp\*micro_batch dividing"):
        scenario.check_question(job, solver.Limits(fixed={"dp": 32, "micro_batch": 2}))
    scenario.check_question(job, solver.Limits(fixed={"dp": 48, "micro_batch": 2}))
