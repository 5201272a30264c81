"""The ``gpuplan`` command through ``solver.cli.run`` (which maps errors to exit codes)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from solver.cli import run

INTERFACE_SLUGS = {
    "a100-sxm4-40gb", "a100-sxm4-80gb", "h100-sxm5-80gb", "h100-pcie", "h800", "h200-sxm-141gb",
    "b200", "gb200-nvl72", "mi300x", "tpu-v4", "tpu-v5e", "tpu-v5p", "tpu-v6e", "gaudi3",
    "trainium2",
}
PRESETS = {"gpt3-175b", "llama3-8b", "llama3-70b", "llama3.1-405b", "mixtral-8x7b",
           "deepseek-v3", "gpt4-estimate"}

#: A valid ``evaluate`` command line, GPT-3 on 1024 A100s (Narayanan et al. 2021).
EVALUATE = ["evaluate", "--model", "gpt3-175b", "--tokens", "300e9", "--seq-len", "2048",
            "--global-batch", "1536", "--gpu", "a100-sxm4-80gb", "--tp", "8", "--pp", "8",
            "--dp", "16", "--micro-batch", "1", "--recompute", "full"]


def with_option(argv: list[str], option: str, value: str | None) -> list[str]:
    """``argv`` with ``option`` set to ``value`` (or removed when ``value`` is None)."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] == option:
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out if value is None else [*out, option, value]


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code = run([*argv, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.err == ""
    data: dict[str, Any] = json.loads(captured.out)
    return data


# ------------------------------------------------------------------------------ results


def test_evaluate_json_has_the_interface_keys(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(EVALUATE, capsys)
    assert data["schema_version"] == 1
    assert {"layout", "estimate", "fits", "explanation"} <= set(data)
    assert set(data["layout"]) >= {
        "accelerator", "gpus", "tp", "pp", "dp", "cp", "ep", "vp", "micro_batch",
        "num_microbatches", "global_batch", "zero_stage", "recompute"}
    assert set(data["estimate"]) >= {
        "step_time_s", "tokens_per_s", "model_tflops_per_gpu", "hardware_tflops_per_gpu", "mfu",
        "hfu", "training_days", "gpu_hours", "memory_gib_per_gpu", "memory_breakdown_gib",
        "time_breakdown_s", "cost_usd", "energy_mwh", "co2_tonnes"}
    assert data["layout"]["gpus"] == 1024
    assert data["layout"]["num_microbatches"] == 96  # 1536 / (16 * 1)
    assert data["layout"]["recompute"] == "full"
    assert data["fits"] is True
    assert data["explanation"] == []


@pytest.mark.parametrize(("flags", "fields"), [
    (["--no-flash-attention"], {"flash_attention": False}),
    (["--no-grad-reduce-overlap"], {"grad_reduce_overlap": False}),
    (["--tp-comm-overlap"], {"tp_comm_overlap": True}),
    (["--grad-dtype", "bf16"], {"grad_dtype": "bf16"}),
    # ZeRO-3 with micro-batches long enough to hide FSDP's gathers but not DeepSpeed's floor.
    (["--zero", "3", "--micro-batch", "16", "--zero3-impl", "deepspeed"],
     {"zero3_impl": "deepspeed"}),
])
def test_software_options_reach_the_job(flags: list[str], fields: dict[str, Any],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    # Each option gives the estimate of the library's job with that field set, and it differs
    # from the default's (the option is not silently dropped).
    import solver

    zero = 3 if "--zero" in flags else 0
    micro_batch = 16 if "--micro-batch" in flags else 1
    data = run_json([*with_option(EVALUATE, "--micro-batch", None), *flags]
                    + ([] if "--micro-batch" in flags else ["--micro-batch", "1"]), capsys)
    # no --dropout: the preset's recipe rate (GPT-3 0.1), as the library's default
    job = solver.TrainingJob(model=solver.model("gpt3-175b"), tokens=300e9, seq_len=2048,
                             global_batch=1536, dropout=0.1,
                             **fields)  # type: ignore[arg-type]
    layout = solver.Layout(accelerator="a100-sxm4-80gb", tp=8, pp=8, dp=16,
                           micro_batch=micro_batch, recompute="full", zero_stage=zero)
    expected = solver.evaluate(job, layout).step_time_s
    default = solver.evaluate(dataclasses.replace(job, **{
        k: getattr(solver.TrainingJob(model=job.model, tokens=1.0), k) for k in fields}),
        layout).step_time_s
    assert data["estimate"]["step_time_s"] == pytest.approx(expected, rel=1e-5)
    assert expected != pytest.approx(default, rel=1e-5)


def test_ep_comm_overlap_reaches_the_job(capsys: pytest.CaptureFixture[str]) -> None:
    import solver

    argv = ["evaluate", "--model", "mixtral-8x7b", "--tokens", "1T", "--global-batch", "512",
            "--gpu", "h100", "--tp", "2", "--pp", "1", "--dp", "64", "--ep", "8",
            "--zero", "1", "--recompute", "full"]
    data = run_json([*argv, "--ep-comm-overlap"], capsys)
    job = solver.TrainingJob(model=solver.model("mixtral-8x7b"), tokens=1e12, global_batch=512)
    layout = solver.Layout(accelerator="h100-sxm5-80gb", tp=2, pp=1, dp=64, ep=8,
                           zero_stage=1, recompute="full")
    overlapped = solver.evaluate(dataclasses.replace(job, ep_comm_overlap=True), layout)
    assert data["estimate"]["step_time_s"] == pytest.approx(overlapped.step_time_s, rel=1e-5)
    assert overlapped.time_breakdown_s["ep_comm"] < solver.evaluate(
        job, layout).time_breakdown_s["ep_comm"]


MOE_EVALUATE = ["evaluate", "--model", "mixtral-8x7b", "--tokens", "1T", "--global-batch",
                "512", "--gpu", "h100", "--tp", "2", "--pp", "1", "--dp", "64", "--ep", "8",
                "--zero", "1", "--recompute", "full"]


@pytest.mark.parametrize(("flags", "fields"), [
    (["--moe-dispatcher", "deepep"], {"moe_dispatcher": "deepep"}),
    (["--fp8-dispatch"], {"fp8_dispatch": True}),
    (["--moe-imbalance", "1.5"], {"moe_imbalance": 1.5}),
    (["--moments-dtype", "bf16"], {"moments_dtype": "bf16"}),
    (["--no-sequence-parallel"], {"sequence_parallel": False}),
])
def test_moe_and_optimizer_options_reach_the_job(flags: list[str], fields: dict[str, Any],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import solver

    data = run_json([*MOE_EVALUATE, *flags], capsys)
    job = solver.TrainingJob(model=solver.model("mixtral-8x7b"), tokens=1e12, global_batch=512,
                             **fields)  # type: ignore[arg-type]
    layout = solver.Layout(accelerator="h100-sxm5-80gb", tp=2, pp=1, dp=64, ep=8,
                           zero_stage=1, recompute="full")
    expected = solver.evaluate(job, layout).to_dict()
    assert data["estimate"]["step_time_s"] == pytest.approx(
        expected["estimate"]["step_time_s"], rel=1e-5)
    assert data["estimate"]["memory_gib_per_gpu"] == pytest.approx(
        expected["estimate"]["memory_gib_per_gpu"], rel=1e-5)


#: Llama 3 8B on 64 H100s, data-parallel only: one micro-batch of 8192 tokens in flight per
#: GPU, so each of the 32 layers stores its activations once (hidden 4096).
LLAMA_EVALUATE = ["evaluate", "--model", "llama3-8b", "--tokens", "1T", "--global-batch", "512",
                  "--gpu", "h100", "--tp", "1", "--pp", "1", "--dp", "64"]
GIB = 2.0**30
S, H, LAYERS = 8192, 4096, 32


def _activations(argv: list[str], capsys: pytest.CaptureFixture[str]) -> float:
    return float(run_json(argv, capsys)["estimate"]["memory_breakdown_gib"]["activations"])


def test_dropout_reaches_the_job(capsys: pytest.CaptureFixture[str]) -> None:
    # With dropout each layer keeps two 1-byte masks (after attention, after the MLP) of
    # s*h bytes: 2 * 8192 * 4096 * 32 layers = 2 GiB more activations.
    plain = _activations(LLAMA_EVALUATE, capsys)
    dropout = _activations([*LLAMA_EVALUATE, "--dropout", "0.1"], capsys)
    assert dropout - plain == pytest.approx(2 * S * H * LAYERS / GIB, abs=1e-3)
    assert _activations([*LLAMA_EVALUATE, "--dropout", "0"], capsys) == plain


def test_fp8_params_reach_the_job(capsys: pytest.CaptureFixture[str]) -> None:
    # FP8 on H100 (TN-only FP8 GEMMs): each layer parameter holds BF16 2 + an FP8 copy 1 + its
    # transpose 1 = 4 bytes; with FP8 weights 1 + the transpose 1 = 2. The embedding and LM
    # head (128256 x 4096 each) and the final norm stay BF16. Per layer: Q and O 4096^2 each,
    # K and V 4096 x 1024 each, gate/up/down 3 x 4096 x 14336, two norms 2 x 4096.
    fp8 = [*LLAMA_EVALUATE, "--precision", "fp8"]
    per_layer = 2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336 + 2 * 4096
    plain = run_json(fp8, capsys)["estimate"]["memory_breakdown_gib"]["weights"]
    fp8_weights = run_json([*fp8, "--fp8-params"], capsys)["estimate"][
        "memory_breakdown_gib"]["weights"]
    assert plain - fp8_weights == pytest.approx(2 * per_layer * LAYERS / GIB, abs=1e-3)
    assert run_json([*fp8, "--no-fp8-params"], capsys)["estimate"][
        "memory_breakdown_gib"]["weights"] == plain


def test_activation_offload_reaches_the_job(capsys: pytest.CaptureFixture[str]) -> None:
    # ZeRO-3 and two sequences per micro-batch: Llama 3 8B stores 34 bytes per token over h
    # per layer (QKV input 2, Q 2, K and V 0.5 each under GQA 8/32, projection input 2, SwiGLU
    # 2 + 6 x 14336/4096 = 23, norms 4). Offloaded, the GPU keeps two layers (the one in use
    # and the one in transfer); the other 30 wait in host memory: 30 x 34 x 2 x 8192 x 4096
    # bytes = 63.75 GiB less on the GPU, within the H100's 238.4 GiB of host memory.
    argv = [*LLAMA_EVALUATE, "--zero", "3", "--micro-batch", "2"]
    plain = run_json(argv, capsys)
    offload = run_json([*argv, "--activation-offload"], capsys)
    moved = (plain["estimate"]["memory_breakdown_gib"]["activations"]
             - offload["estimate"]["memory_breakdown_gib"]["activations"])
    assert moved == pytest.approx(30 * 34 * 2 * S * H / GIB, abs=1e-3)
    assert (plain["fits"], offload["fits"]) == (False, True)
    # The A100 has no published host figures: a layout that offloads does not fit there.
    a100 = run_json([*with_option(argv, "--gpu", "a100"), "--activation-offload"], capsys)
    assert not a100["fits"]
    assert any("no published host memory" in line for line in a100["explanation"])


def test_schedule_and_split_reach_the_layout(capsys: pytest.CaptureFixture[str]) -> None:
    import solver

    data = run_json([*EVALUATE, "--schedule", "dualpipe"], capsys)
    assert (data["layout"]["schedule"], data["layout"]["pipeline_split"]) == ("dualpipe", "even")
    job = solver.TrainingJob(model=solver.model("gpt3-175b"), tokens=300e9, seq_len=2048,
                             global_batch=1536, dropout=0.1)  # the preset's, as --dropout's
    layout = solver.Layout(accelerator="a100-sxm4-80gb", tp=8, pp=8, dp=16, recompute="full",
                           schedule="dualpipe")
    assert data["estimate"]["step_time_s"] == pytest.approx(
        solver.evaluate(job, layout).step_time_s, rel=1e-5)
    two_stages = with_option(with_option(EVALUATE, "--pp", "2"), "--dp", "64")
    split = run_json([*two_stages, "--pipeline-split", "both"], capsys)
    assert (split["layout"]["schedule"], split["layout"]["pipeline_split"]) == ("1f1b", "both")
    plain = run_json(EVALUATE, capsys)
    assert (plain["layout"]["schedule"], plain["layout"]["pipeline_split"]) == ("1f1b", "even")


def test_recompute_modules_reach_the_layout(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json([*with_option(EVALUATE, "--recompute", "mlp+layernorm")], capsys)
    assert data["layout"]["recompute"] == "layernorm+mlp"


def test_the_table_names_a_schedule_and_split_that_are_not_the_defaults(
        capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*with_option(with_option(EVALUATE, "--pp", "2"), "--dp", "64"),
            "--schedule", "zero-bubble", "--pipeline-split", "both"]
    assert run(argv) == 0
    out = capsys.readouterr().out
    assert "zero-bubble" in out and "split both" in out
    assert run(EVALUATE) == 0
    out = capsys.readouterr().out
    assert "1f1b" not in out and "split" not in out


def test_solve_passes_the_new_options_on(monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from solver.errors import SpecError
    from solver.scenario import Scenario

    seen: list[Scenario] = []

    def stop(self: Scenario, **options: Any) -> None:
        seen.append(self)
        raise SpecError("stopped: the question was built")

    monkeypatch.setattr(Scenario, "solve", stop)
    code = run(["solve", "--model", "mixtral-8x7b", "--tokens", "1T", "--gpu", "h100",
                "--max-gpus", "64", "--schedule", "dualpipe", "--pipeline-split", "loss",
                "--recompute", "moe_act", "--moe-dispatcher", "deepep", "--fp8-dispatch",
                "--moe-imbalance", "1.2", "--moments-dtype", "bf16"])
    assert code == 2 and "stopped" in capsys.readouterr().err
    job, fixed = seen[0].job, seen[0].limits.fixed
    assert (job.moe_dispatcher, job.fp8_dispatch, job.moe_imbalance, job.moments_dtype) == (
        "deepep", True, 1.2, "bf16")
    assert (fixed["schedule"], fixed["pipeline_split"], fixed["recompute"]) == (
        "dualpipe", "loss", "moe_act")


def test_pareto_passes_the_new_options_on(monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    import importlib

    from solver.errors import SpecError

    pareto_lib = importlib.import_module("solver.pareto")  # the CLI calls it at run time

    seen: list[Any] = []

    def stop(job: Any, limits: Any, **options: Any) -> None:
        seen.append((job, limits))
        raise SpecError("stopped: the question was built")

    monkeypatch.setattr(pareto_lib, "pareto", stop)
    code = run(["pareto", "--model", "mixtral-8x7b", "--tokens", "1T", "--gpu", "h100",
                "--max-gpus", "64", "--schedule", "zero-bubble", "--pipeline-split", "both",
                "--moe-dispatcher", "deepep", "--no-fp8-dispatch", "--moe-imbalance", "2",
                "--moments-dtype", "bf16"])
    assert code == 2 and "stopped" in capsys.readouterr().err
    job, limits = seen[0]
    assert (job.moe_dispatcher, job.fp8_dispatch, job.moe_imbalance, job.moments_dtype) == (
        "deepep", False, 2.0, "bf16")
    assert (limits.fixed["schedule"], limits.fixed["pipeline_split"]) == ("zero-bubble", "both")


def test_solve_and_pareto_pass_dropout_fp8_weights_and_offload_on(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import importlib

    from solver.errors import SpecError
    from solver.scenario import Scenario

    seen: list[Any] = []

    def stop(*args: Any, **options: Any) -> None:
        seen.append(args[0])
        raise SpecError("stopped: the question was built")

    monkeypatch.setattr(Scenario, "solve", stop)
    monkeypatch.setattr(importlib.import_module("solver.pareto"), "pareto", stop)
    new = ["--precision", "fp8", "--dropout", "0.1", "--fp8-params", "--activation-offload"]
    for command in ("solve", "pareto"):
        code = run([command, "--model", "llama3-8b", "--tokens", "1T", "--gpu", "h100",
                    "--max-gpus", "64", *new])
        assert code == 2 and "stopped" in capsys.readouterr().err
    solved, front = seen[0].job, seen[1]
    for job in (solved, front):
        assert (job.precision, job.dropout, job.fp8_params, job.activation_offload) == (
            "fp8", 0.1, True, True)


def test_compare_passes_the_job_options_on(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["compare", "--model", "mixtral-8x7b", "--tokens", "1T", "--global-batch", "512",
            "h100 tp=2 pp=1 dp=64 ep=8 zero=1 recompute=full", "--json"]
    assert run(base) == 0
    plain = json.loads(capsys.readouterr().out)
    assert run([*base, "--moments-dtype", "bf16"]) == 0
    bf16 = json.loads(capsys.readouterr().out)
    assert (bf16["layouts"][0]["estimate"]["memory_gib_per_gpu"]
            < plain["layouts"][0]["estimate"]["memory_gib_per_gpu"])


def test_compare_passes_dropout_and_offload_on(capsys: pytest.CaptureFixture[str]) -> None:
    # As test_dropout_reaches_the_job: two 1-byte masks of s*h per layer, 2 GiB in all;
    # offloaded, 30 of the 32 layers (34 bytes per token over h each) leave the GPU.
    base = ["compare", "--model", "llama3-8b", "--tokens", "1T", "--global-batch", "512",
            "h100 tp=1 pp=1 dp=64", "--json"]

    def activations(*extra: str) -> float:
        assert run([*base, *extra]) == 0
        data = json.loads(capsys.readouterr().out)
        return float(data["layouts"][0]["estimate"]["memory_breakdown_gib"]["activations"])

    plain = activations()
    assert activations("--dropout", "0.1") - plain == pytest.approx(2 * S * H * LAYERS / GIB,
                                                                    abs=1e-3)
    assert plain - activations("--activation-offload") == pytest.approx(
        30 * 34 * S * H / GIB, abs=1e-3)


def test_evaluate_prints_a_table_without_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(EVALUATE) == 0
    captured = capsys.readouterr()
    assert "a100-sxm4-80gb" in captured.out
    assert captured.err == ""


def test_alias_resolves_to_the_default_variant(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(with_option(EVALUATE, "--gpu", "a100"), capsys)
    assert data["layout"]["accelerator"] == "a100-sxm4-80gb"


def test_hardware_list_has_every_interface_slug(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(["hardware", "list"], capsys)
    names = {a["name"] for a in data["accelerators"]}
    assert names >= INTERFACE_SLUGS


def test_hardware_lists_the_host_link_and_memory(capsys: pytest.CaptureFixture[str]) -> None:
    # DGX H100: PCIe Gen5 x16 to the host (about 63 GB/s one way), 2 TB of host memory over 8
    # GPUs = 256 GB = 238.4 GiB each; the A100 entries publish neither (None in JSON).
    data = run_json(["hardware", "list"], capsys)
    by_name = {a["name"]: a for a in data["accelerators"]}
    h100 = by_name["h100-sxm5-80gb"]
    assert (h100["host_bw_gb_s"], h100["host_memory_gib"]) == (63.0, 238.4)
    assert by_name["a100-sxm4-80gb"]["host_bw_gb_s"] is None
    assert by_name["a100-sxm4-80gb"]["host_memory_gib"] is None
    shown = run_json(["hardware", "show", "h100"], capsys)
    assert (shown["host_bw_gb_s"], shown["host_memory_gib"]) == (63.0, 238.4)
    assert run(["hardware", "list"]) == 0
    table = capsys.readouterr().out
    header = next(line for line in table.splitlines() if line.startswith("name"))
    assert header.split() == ["name", "BF16", "FP8", "GiB", "HBM", "up", "dom", "out", "host",
                              "hGiB", "TDP", "$/h"]
    h100_row = next(line for line in table.splitlines() if line.startswith("h100-sxm5"))
    assert h100_row.split()[8:10] == ["63", "238"]
    assert max(len(line) for line in table.splitlines()) <= 80


def test_hardware_show_by_alias(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(["hardware", "show", "a100"], capsys)
    assert data["name"] == "a100-sxm4-80gb"
    assert data["sources"]


def test_models_list_has_the_seven_presets(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(["models", "list"], capsys)
    assert {m["name"] for m in data["models"]} == PRESETS


def test_models_show_marks_gpt4_as_unofficial(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(["models", "show", "gpt4-estimate"], capsys)
    assert "UNOFFICIAL" in data["description"]
    assert any("SemiAnalysis" in s for s in data["sources"])
    assert {"params_total", "params_active"} <= set(data)
    # The table says so too.
    assert run(["models", "show", "gpt4-estimate"]) == 0
    assert "UNOFFICIAL" in capsys.readouterr().out


# ------------------------------------------------------------------------------ invalid input


def unknown_key_model(tmp_path: Path) -> str:
    path = tmp_path / "bad-model.toml"
    path.write_text('name = "bad-model"\nlayers = 4\nhidden = 256\nheads = 8\nwidth = 3\n',
                    encoding="utf-8")
    return str(path)


# (case id, option changed, new value or None to drop it, text the message must contain)
INVALID = [
    ("non-integer-tp", "--tp", "eight", "--tp"),
    ("missing-tp", "--tp", None, "--tp"),
    ("unknown-gpu", "--gpu", "a10O", "did you mean a100"),
    ("bad-tokens", "--tokens", "300x", "--tokens"),
    ("bad-recompute", "--recompute", "bogus", "--recompute"),
    ("zero-out-of-range", "--zero", "5", "[0, 3]"),
    ("tp-not-dividing-heads", "--tp", "7", "heads=96"),
    ("negative-dp", "--dp", "-1", "--dp"),
    ("missing-model-file", "--model", "missing.toml", "--model"),
    ("model-file-unknown-key", "--model", "<unknown-key-file>", "'width'"),
]


@pytest.mark.parametrize(("option", "value", "needle"),
                         [pytest.param(*row[1:], id=row[0]) for row in INVALID])
def test_invalid_input_is_one_line_and_exit_2(
        option: str, value: str | None, needle: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    if value == "<unknown-key-file>":
        value = unknown_key_model(tmp_path)
    code = run(with_option(EVALUATE, option, value))
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("gpuplan: error: ")
    assert needle in lines[0]
    assert "Traceback" not in captured.err


# The option the user typed must be named as typed (``--zero``, not the library field
# ``zero_stage``; ``--tp``, not ``tp``).
NAMES_THE_OPTION = [
    ("non-integer-tp", "--tp", "eight"),
    ("missing-tp", "--tp", None),
    ("unknown-gpu", "--gpu", "a10O"),
    ("bad-tokens", "--tokens", "300x"),
    ("bad-recompute", "--recompute", "bogus"),
    ("negative-dp", "--dp", "-1"),
    ("missing-model-file", "--model", "missing.toml"),
    ("zero-out-of-range", "--zero", "5"),
    ("tp-not-dividing-heads", "--tp", "7"),
    ("missing-global-batch", "--global-batch", None),
]


@pytest.mark.parametrize(("option", "value"),
                         [pytest.param(*row[1:], id=row[0]) for row in NAMES_THE_OPTION])
def test_invalid_input_names_the_option(option: str, value: str | None,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert run(with_option(EVALUATE, option, value)) == 2
    err = capsys.readouterr().err
    assert re.search(re.escape(option) + r"(?![\w-])", err), err


def test_unknown_model_file_key_names_file_and_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = unknown_key_model(tmp_path)
    assert run(with_option(EVALUATE, "--model", path)) == 2
    err = capsys.readouterr().err
    assert path in err
    assert "unknown field 'width'" in err


def test_unknown_gpu_lists_close_matches(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(with_option(EVALUATE, "--gpu", "mi300")) == 2
    err = capsys.readouterr().err
    assert err.startswith("gpuplan: error: --gpu: unknown accelerator 'mi300'; did you mean ")
    assert "mi300x" in err


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    assert run(["--version"]) == 0
    out = capsys.readouterr().out
    assert out == f"gpuplan {version('gpuplan')}\n"
    assert re.fullmatch(r"gpuplan \d+\.\d+\.\d+\S*\n", out)


ZERO_COUNT_COMMANDS = {
    "solve": ["solve", "--model", "llama3-8b", "--tokens", "1e12", "--gpu", "h100",
              "--max-gpus", "64", "--time-limit", "5"],
    "pareto": ["pareto", "--model", "llama3-8b", "--tokens", "1e12", "--gpu", "h100",
               "--max-gpus", "64"],
    "evaluate": EVALUATE,
    "compare": ["compare", "a100-sxm4-80gb:tp8,pp8,dp16", "--model", "gpt3-175b",
                "--tokens", "300e9", "--global-batch", "1536"],
}


@pytest.mark.parametrize("command", sorted(ZERO_COUNT_COMMANDS))
@pytest.mark.parametrize(("option", "value", "expected"), [
    ("--seq-len", "0", "--seq-len: expected an integer >= 1 ("),
    ("--global-batch", "0", "--global-batch: expected an integer >= 1 ("),
    ("--seq-len", "-4", "--seq-len: expected an integer >= 1 ("),
])
def test_zero_seq_len_or_global_batch_given_is_an_error(
        command: str, option: str, value: str, expected: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    argv = with_option(ZERO_COUNT_COMMANDS[command], option, value)
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"gpuplan: error: {expected}")
    assert err.rstrip().endswith(f"got {value}")


def test_seq_len_and_global_batch_not_given_still_mean_the_default(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from solver.errors import SpecError
    from solver.scenario import Scenario

    seen: list[Scenario] = []

    def stop(self: Scenario, **options: Any) -> None:
        seen.append(self)
        raise SpecError("stopped: the question was built")

    monkeypatch.setattr(Scenario, "solve", stop)
    assert run(ZERO_COUNT_COMMANDS["solve"]) == 2 and "stopped" in capsys.readouterr().err
    # llama3-8b's preset: seq_len = 8192; global_batch 0 lets the solver choose.
    assert (seen[0].job.seq_len, seen[0].job.global_batch) == (8192, 0)
    # EVALUATE gives --seq-len 2048, GPT-3's own length (Brown et al. 2020): leaving it out is
    # the same question.
    assert run_json(with_option(EVALUATE, "--seq-len", None), capsys) == run_json(EVALUATE,
                                                                                   capsys)


@pytest.mark.parametrize(("command", "words"), [
    ("solve", ["[model]."]),
    ("pareto", ["gpuplan[plot])."]),
    ("compare", ["[cp=", "split=]\""]),
])
def test_help_keeps_its_bracketed_words(command: str, words: list[str],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Help is rich markup: an unescaped "[model]" would be read as a style and vanish."""
    assert run([command, "--help"]) == 0
    out = capsys.readouterr().out
    for word in words:
        assert word in out, word


def test_no_help_text_has_a_bracket_rich_would_eat() -> None:
    import typer

    from solver.cli import app

    tag = re.compile(r"(?<!\\)\[[a-z#/@][^[]*?]")  # rich's markup tag, not escaped

    def texts(command: Any) -> list[str]:
        found = [command.help or "", *(getattr(p, "help", "") or "" for p in command.params)]
        for sub in getattr(command, "commands", {}).values():
            found += texts(sub)
        return found

    assert [t for t in texts(typer.main.get_command(app)) if tag.search(t)] == []


def test_piped_output_is_not_wrapped(monkeypatch: pytest.MonkeyPatch) -> None:
    """CliRunner's stdout is not a terminal: the Plan line comes out whole (``| grep ^Plan``)."""
    from typer.testing import CliRunner

    from solver.cli import app

    monkeypatch.delenv("COLUMNS", raising=False)
    result = CliRunner().invoke(app, [
        "solve", "--model", "llama3-8b", "--tokens", "1e12", "--gpu", "h100", "--gpus", "64",
        "--tp", "2", "--pp", "1", "--cp", "1", "--ep", "1", "--vp", "1", "--global-batch", "512",
        "--micro-batch", "1", "--zero", "1", "--recompute", "full"])
    assert result.exit_code == 0, result.output
    # 64 = TP2 x PP1 x DP32; 512 sequences / (DP32 x micro-batch 1) = 16 micro-batches.
    expected = ("Plan: 64 x h100-sxm5-80gb  TP2 PP1 DP32 CP1 EP1 VP1  micro-batch 1 x 16 "
                "(global 512)  ZeRO-1  recompute full")
    assert len(expected) > 80
    assert [line for line in result.output.splitlines() if line.startswith("Plan")] == [expected]


def test_columns_still_sets_the_width_when_piped(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    assert run(EVALUATE) == 0
    assert max(len(line) for line in capsys.readouterr().out.splitlines()) <= 60


def test_help_and_catalog_output_point_to_docs_interface_not_outside_the_project(
        capsys: pytest.CaptureFixture[str]) -> None:
    """A user of the wheel has no ../shared: the contract is docs/interface.md."""
    import typer

    import solver
    from solver.cli import app

    outside = re.compile(r"shared/|INTERFACE\.md")

    def helps(command: Any) -> list[str]:
        found = [command.help or "", *(getattr(p, "help", "") or "" for p in command.params)]
        for sub in getattr(command, "commands", {}).values():
            found += helps(sub)
        return found

    texts = helps(typer.main.get_command(app))
    assert [t for t in texts if outside.search(t)] == []
    assert any("docs/interface.md" in t for t in texts if t.startswith("Print JSON"))
    for name in solver.accelerators():
        assert run(["hardware", "show", name]) == 0
    for name in sorted(PRESETS):
        assert run(["models", "show", name]) == 0
    assert not outside.search(capsys.readouterr().out)


def test_help_does_not_import_the_search_or_numpy() -> None:
    """``gpuplan --help`` stays fast: OR-Tools, pandas and NumPy load when a command runs."""
    import subprocess
    import sys

    code = ("import sys, contextlib, io\n"
            "from solver.cli import run\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    for argv in (['--help'], ['solve', '--help'], ['pareto', '--help'],\n"
            "                 ['evaluate', '--help'], ['compare', '--help'], ['--version'],\n"
            "                 ['design', '--help'], ['sweep', '--help'], ['fleet', '--help']):\n"
            "        assert run(argv) == 0, argv\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'numpy', 'ortools', 'pandas', 'scipy'}))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"


def test_pareto_cli_default_points_is_the_librarys() -> None:
    import importlib

    from solver.pareto import DEFAULT_POINTS

    assert importlib.import_module("solver.cli.pareto").DEFAULT_POINTS == DEFAULT_POINTS


def test_shell_completion_is_on() -> None:
    import os
    import subprocess
    import sys

    # The module runs the same entry point as the installed script (prog name "gpuplan").
    gpuplan = [sys.executable, "-m", "solver.cli"]
    env = {**os.environ, "_GPUPLAN_COMPLETE": "complete_bash", "COMP_WORDS": "gpuplan sol",
           "COMP_CWORD": "1"}
    done = subprocess.run(gpuplan, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout.split() == ["solve"]
    env |= {"COMP_WORDS": "gpuplan solve --seq-l", "COMP_CWORD": "2"}
    done = subprocess.run(gpuplan, env=env, capture_output=True, text=True, check=False)
    assert done.stdout.split() == ["--seq-len"]


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    # Ctrl-C during a search: whichever way the installed click reports it (raising Abort, or
    # returning 130 as click >= 8.2 does outside standalone mode), one line and exit 130.
    import solver.search.solve as search

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(search, "solve", interrupted)
    code = run(["solve", "--model", "llama3-8b", "--tokens", "1e9", "--gpu", "h100",
                "--gpus", "8"])
    assert code == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "gpuplan: error: interrupted"
