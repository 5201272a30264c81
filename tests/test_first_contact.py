"""Issue 16, "first contact": what a new user tried, each point checked from the outside.

Points with their own test files: 2 (prices and power: tests/test_price_basis.py), 3 (model
facts and exports: tests/test_model_facts.py, tests/test_export.py, tests/test_launchers.py),
8 (bad input: tests/test_specs_friction.py, tests/test_cli.py). This file holds the rest: a
question without a limit (1), the sequence length and tokens in the text output (4), a plan
that carries its question and ``evaluate --plan`` (5), progress on stderr (6), one spelling of
the time limit and distinct ``--top`` layouts (7), documented commands that still print what
the docs say (9).
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

import solver
from solver.cli import run
from solver.errors import SpecError

ROOT = Path(__file__).resolve().parent.parent


def run_out(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run(argv)
    out, err = capsys.readouterr()
    return code, out, err


# --- 1. the first question gets a serious answer, or a request for a limit ------------------


@pytest.mark.parametrize(("extra", "names"), [
    ([], ("--max-gpus", "--gpus", "--budget-usd")),
    (["--objective", "cost"], ("--deadline-days", "--gpus")),
    (["--objective", "energy"], ("--deadline-days", "--gpus")),
    (["--objective", "gpus"], ("--deadline-days", "--gpus")),
])
def test_a_question_without_a_limit_asks_for_one(extra: list[str], names: tuple[str, ...],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # The first question: llama3-70b on 15T tokens with nothing else. Minimizing time
    # with unlimited accelerators ran to the search's cap (92,160 GB200 at 9.7% MFU); cost
    # without a deadline to 160 H800 for 1,097 days. Now: exit 2, one line, naming the limits.
    code, out, err = run_out(["solve", "--model", "llama3-70b", "--tokens", "15e12", *extra],
                             capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"gpuplan: error: {names[0]}: missing")
    assert all(name in err for name in names), err


def test_the_library_scenario_refuses_an_unbounded_question_before_searching() -> None:
    from solver.scenario import Scenario

    job = solver.TrainingJob(model="llama3-70b", tokens="15T")
    with pytest.raises(SpecError, match=r"^max_gpus: missing; minimizing time needs a limit"):
        Scenario(job=job, limits=solver.Limits()).solve()
    with pytest.raises(SpecError, match=r"^deadline_days: missing; minimizing cost"):
        Scenario(job=job, limits=solver.Limits(max_gpus=4096), objective="cost").solve()


def test_the_first_question_with_a_limit_gets_a_plan_a_planner_would_take(
        capsys: pytest.CaptureFixture[str]) -> None:
    # Llama 3 70B on H100 within 4,096 GPUs: Meta trained the Llama 3 family at 38-43% MFU
    # (arXiv:2407.21783 Table 4); an answer far outside 30-60% or at the cap of the search
    # would not be taken seriously.
    code, out, _ = run_out(["solve", "--model", "llama3-70b", "--tokens", "15e12", "--gpu",
                            "h100", "--max-gpus", "4096", "--workers", "1", "--json"], capsys)
    plan = json.loads(out)
    assert code == 0 and plan["status"] == "optimal"
    assert plan["layout"]["gpus"] <= 4096
    assert 0.30 <= plan["estimate"]["mfu"] <= 0.60
    assert any(line.startswith("objective time: every other layout in the search space")
               for line in plan["explanation"])


def test_without_a_gpu_count_the_explanation_names_the_cap() -> None:
    # A budget bounds a time question, but the search then covers layouts of at most
    # DEFAULT_MAX_GPUS accelerators: the optimality claim says so.
    from solver.layout_options import DEFAULT_MAX_GPUS

    job = solver.TrainingJob(model="llama3-8b", tokens="1e9", global_batch=256)
    plan = solver.solve(job, solver.Limits(accelerators=("h100",), budget_usd=200.0),
                        workers=1)
    assert plan.status == "optimal"
    assert any(f"of at most {DEFAULT_MAX_GPUS:,} accelerators" in line
               for line in plan.explanation), plan.explanation


# --- 4. the text output says what is trained ------------------------------------------------


def test_the_text_output_prints_the_model_tokens_and_sequence_length(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_out(["solve", "--model", "llama3-8b", "--tokens", "1T", "--gpu", "h100",
                            "--max-gpus", "64", "--workers", "1"], capsys)
    assert code == 0
    # Llama 3 8B's pre-training length is 8,192 (arXiv:2407.21783 sec. 3.4)
    assert "Job: llama3-8b, 1T tokens at sequence length 8,192, bf16" in out
    code, out, _ = run_out(["evaluate", "--model", "llama3-8b", "--tokens", "300B", "--seq-len",
                            "4096", "--global-batch", "512", "--gpu", "h100", "--tp", "1",
                            "--pp", "1", "--dp", "8"], capsys)
    assert "Job: llama3-8b, 300B tokens at sequence length 4,096, bf16" in out


# --- 5. a saved plan reads alone, and evaluate --plan re-checks it ----------------------------


SMALL = ["solve", "--model", "llama3-8b", "--tokens", "1T", "--gpu", "h100", "--max-gpus", "64",
         "--workers", "1", "--time-limit-s", "30"]


def saved_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str],
               argv: list[str] = SMALL) -> tuple[Path, dict[str, Any]]:
    path = tmp_path / "plan.json"
    assert run([*argv, "--json", "-o", str(path)]) == 0
    capsys.readouterr()
    return path, json.loads(path.read_text())


def test_the_plan_json_records_its_question(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    _, plan = saved_plan(tmp_path, capsys, [*SMALL, "--cost-param", "pue=1.3"])
    question = plan["question"]
    # the preset's published shape (Llama 3 8B config.json), not only its name
    model = question["job"]["model"]
    assert (model["name"], model["layers"], model["hidden"], model["kv_heads"]) == (
        "llama3-8b", 32, 4096, 8)
    assert question["job"]["tokens"] == 1e12 and question["job"]["seq_len"] == 8192
    assert question["limits"]["max_gpus"] == 64
    assert question["limits"]["accelerators"] == ["h100-sxm5-80gb"]
    assert question["objective"] == "time"
    assert question["cost_params"] == {"pue": 1.3}
    assert question["solve"] == {"time_limit_s": 30.0, "top": 1, "workers": 1, "seed": 0}


def test_evaluate_plan_reproduces_the_saved_estimate(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path, plan = saved_plan(tmp_path, capsys)
    code, out, err = run_out(["evaluate", "--plan", str(path), "--json"], capsys)
    again = json.loads(out)
    assert code == 0 and err == ""
    assert again["reproduced"] is True and again["differences"] == []
    assert again["layout"] == plan["layout"] and again["estimate"] == plan["estimate"]
    code, out, _ = run_out(["evaluate", "--plan", str(path)], capsys)
    assert code == 0 and "reproduced: every figure of plan.json's estimate" in out


def test_evaluate_plan_names_what_changed(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path, plan = saved_plan(tmp_path, capsys)
    step = plan["estimate"]["step_time_s"]
    plan["estimate"]["step_time_s"] = step * 1.25  # as if saved by another step model
    path.write_text(json.dumps(plan))
    code, out, _ = run_out(["evaluate", "--plan", str(path), "--json"], capsys)
    again = json.loads(out)
    assert code == 1 and again["reproduced"] is False
    assert again["differences"] == [f"step_time_s: {step * 1.25} -> {step}"]


def test_a_plan_of_a_custom_model_reads_alone(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    # the model file is gone when the plan is re-checked: the plan carries the whole spec
    model = tmp_path / "tiny.toml"
    model.write_text('name = "tiny"\nlayers = 4\nhidden = 1024\nheads = 16\nseq_len = 2048\n')
    path, _ = saved_plan(tmp_path, capsys, ["solve", "--model", str(model), "--tokens", "1e9",
                                            "--gpu", "h100", "--gpus", "8", "--workers", "1"])
    model.unlink()
    code, out, _ = run_out(["evaluate", "--plan", str(path), "--json"], capsys)
    assert code == 0 and json.loads(out)["reproduced"] is True


@pytest.mark.parametrize(("argv", "message"), [
    (["--tp", "2"], "--tp: not with --plan"),
    (["--model", "llama3-8b"], "--model: not with --plan"),
])
def test_evaluate_plan_refuses_options_that_change_the_question(
        argv: list[str], message: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = saved_plan(tmp_path, capsys)
    code, _, err = run_out(["evaluate", "--plan", str(path), *argv], capsys)
    assert code == 2 and err == f"gpuplan: error: {message} (the saved plan gives the job, " \
        "the layout and the cost model); leave it out\n"


def test_evaluate_plan_of_a_file_that_is_not_a_plan(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "other.json"
    bad.write_text('{"status": "optimal"}')
    code, _, err = run_out(["evaluate", "--plan", str(bad)], capsys)
    assert code == 2 and "--plan: other.json has no 'question' object" in err
    code, _, err = run_out(["evaluate", "--gpu", "h100"], capsys)
    assert code == 2 and err.startswith("gpuplan: error: --model: missing")


# --- 6. progress on stderr for long runs on a terminal ----------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_writes_to_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from solver.cli import output

    for stream, shown in ((Terminal(), True), (io.StringIO(), False)):
        monkeypatch.setattr(output.sys, "stderr", stream)
        progress = output.Progress(delay_s=0.0)
        progress("fastest: 12.0 days")
        progress.done()
        assert ("fastest: 12.0 days" in stream.getvalue()) is shown


def test_pareto_reports_progress(monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    import importlib

    from solver.cli import output

    pareto = importlib.import_module("solver.cli.pareto")  # the package exports the function
    said: list[str] = []

    class Recorder(output.Progress):
        def __call__(self, message: str) -> None:
            said.append(message)

    monkeypatch.setattr(pareto, "Progress", Recorder)
    code, _, _ = run_out(["pareto", "--model", "llama3-8b", "--tokens", "1T", "--gpu", "h100",
                          "--max-gpus", "64", "--points", "3", "--workers", "1"], capsys)
    assert code == 0
    assert any(m.startswith("fastest:") for m in said), said


# --- 7. one spelling of the time limit; --top gives different layouts -------------------------


@pytest.mark.parametrize("key", ["time_limit_s", "time_limit"])
def test_the_time_limit_has_one_spelling_and_the_old_one_still_reads(
        key: str, tmp_path: Path) -> None:
    from solver import scenario

    path = tmp_path / "q.toml"
    path.write_text(f'[model]\npreset = "llama3-8b"\n[job]\ntokens = 1e9\n[solve]\n{key} = 7\n')
    assert scenario.load(path).time_limit_s == 7.0


@pytest.mark.parametrize("option", ["--time-limit-s", "--time-limit"])
def test_the_time_limit_option_and_its_alias(option: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*SMALL[:-2], option, "9", "--json"]
    code, out, _ = run_out(argv, capsys)
    assert code == 0 and json.loads(out)["question"]["solve"]["time_limit_s"] == 9.0
    code, _, err = run_out([*SMALL[:-2], option, "0"], capsys)
    assert code == 2 and err.startswith("gpuplan: error: --time-limit-s: expected a number")


def test_top_lists_genuinely_different_layouts(capsys: pytest.CaptureFixture[str]) -> None:
    # The issue: --top 3 returned one layout three times, one data-parallel rank apart.
    code, out, _ = run_out([*SMALL, "--top", "4", "--json"], capsys)
    plan = json.loads(out)
    entries = [plan, *plan["alternatives"]]
    assert code == 0 and len(entries) == 4
    shapes = [tuple(e["layout"][k] for k in ("accelerator", "tp", "pp", "cp", "ep"))
              for e in entries]
    assert len(set(shapes)) == 4, shapes
    days = [e["estimate"]["training_days"] for e in entries]
    assert days == sorted(days)


# --- 9. documented commands print what the docs say --------------------------------------------


def test_the_hardware_path_example_in_plugins_md_is_current(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    doc = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    section = doc[doc.index("## An accelerator without a plugin"):]
    toml = re.search(r"```toml\n(.*?)```", section, re.S)
    shown = re.search(r"```\n\$ GPUPLAN_HARDWARE_PATH=~/gpuplan-hw (gpuplan .*?)\n(status.*?)"
                      r"\n\.\.\.\n```", section, re.S)
    assert toml is not None and shown is not None
    from solver import plugins

    (tmp_path / "lab-h100.toml").write_text(toml.group(1))
    monkeypatch.setenv("GPUPLAN_HARDWARE_PATH", str(tmp_path))
    plugins.reset()  # the catalog reads the path when first built
    try:
        argv = shown.group(1).replace("\\\n", " ").split()[1:]
        code, out, err = run_out(argv, capsys)
    finally:
        monkeypatch.delenv("GPUPLAN_HARDWARE_PATH")
        plugins.reset()
    assert code == 0, err
    printed = [o.strip() for o in out.splitlines()]
    for line in shown.group(2).splitlines()[1:]:  # the status line's timing varies
        # each documented line is printed, whole or abbreviated at its end
        assert any(o.startswith(line.strip()) for o in printed), (line, printed)


def test_plugins_md_snippets_import_what_they_use() -> None:
    doc = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    for block in re.findall(r"```python\n(.*?)```", doc, re.S):
        if "solver." in block:
            assert "import solver" in block or "from solver" in block, block[:200]
