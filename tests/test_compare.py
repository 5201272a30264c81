"""``solver.compare`` and ``gpuplan compare``: layouts side by side, and why one wins."""

from __future__ import annotations

import json

import pytest

import solver
from solver.cli import run
from solver.comparison import parse_layout

GPT3 = solver.TrainingJob(model=solver.model("gpt3-175b"), tokens=300e9, global_batch=1536,
                          seq_len=2048)
#: Narayanan et al. 2021's layout, an interleaved one with context parallelism, and one that
#: does not fit (no parallelism at all).
LAYOUTS = ["a100-sxm4-80gb tp=8 pp=8 dp=16 mb=1 recompute=full",
           "a100 tp=4 pp=8 dp=16 cp=2 vp=4 zero=1",
           "h100-sxm5-80gb tp=8 pp=16 dp=8 mb=1 recompute=selective zero=1"]
ARGV = ["compare", "--model", "gpt3-175b", "--tokens", "300e9", "--seq-len", "2048",
        "--global-batch", "1536"]


def test_parse_layout_reads_every_key() -> None:
    layout = parse_layout("a100 tp=4, pp=8 dp=16 cp=2 ep=1 vp=4 mb=2 zero=1 recompute=full")
    assert layout == solver.Layout(accelerator="a100-sxm4-80gb", tp=4, pp=8, dp=16, cp=2,
                                   ep=1, vp=4, micro_batch=2, zero_stage=1, recompute="full")
    assert parse_layout("gpu=h100 tp=1 pp=1 dp=8").accelerator == "h100-sxm5-80gb"
    assert parse_layout("h100 tp=1 pp=1 dp=8 micro_batch=4").micro_batch == 4


def test_parse_layout_reads_the_pipeline_schedule_and_split() -> None:
    layout = parse_layout("h100 tp=8 pp=4 dp=8 schedule=dualpipe split=both "
                          "recompute=layernorm+moe_act")
    assert (layout.schedule, layout.pipeline_split) == ("dualpipe", "both")
    assert layout.recompute == "layernorm+moe_act"
    assert parse_layout("h100 tp=8 pp=4 dp=8 pipeline_split=loss").pipeline_split == "loss"
    plain = parse_layout("h100 tp=8 pp=4 dp=8")
    assert (plain.schedule, plain.pipeline_split) == ("1f1b", "even")


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"),
    ("a100 tp=8 pp=8", "dp is missing"),
    ("tp=8 pp=8 dp=2", "the accelerator is missing"),
    ("a100 tp=8 pp=8 dp=2 foo=3", "unknown key 'foo'"),
    ("a100 tp=eight pp=8 dp=2", "tp expects an integer"),
    ("a100 tp=8 tp=4 pp=8 dp=2", "given twice"),
    ("a100 tp=8 pp=8 dp=2 zero=5", "zero_stage"),
    ("a100 tp=8 pp=8 dp=2 recompute=half", "recompute"),
    ("a100 tp=8 pp=8 dp=2 schedule=gpipe", "schedule"),
    ("a100 tp=8 pp=8 dp=2 split=middle", "pipeline_split"),
    ("a100 8 pp=8 dp=2", "expected KEY=VALUE"),
    ("a1000 tp=8 pp=8 dp=2", "a1000"),
])
def test_parse_layout_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(solver.SpecError, match=message) as info:
        parse_layout(text)
    assert str(info.value).startswith("layout")


def test_compare_evaluates_each_layout_and_names_the_winners() -> None:
    result = solver.compare(GPT3, LAYOUTS)
    assert len(result.estimates) == 3
    for text, est in zip(LAYOUTS, result.estimates, strict=True):
        assert est == solver.evaluate(GPT3, parse_layout(text))
    days = [e.training_days for e in result.estimates]
    cost = [e.cost_usd for e in result.estimates]
    assert result.fastest == days.index(min(days))
    assert result.cheapest == cost.index(min(cost))
    slower = [i for i in range(3) if i != result.fastest]
    for i in slower:
        assert any(line.startswith(f"#{result.fastest + 1} is ") and f"than #{i + 1}" in line
                   for line in result.why)
    data = result.to_dict()
    assert data["schema_version"] == 1 and len(data["layouts"]) == 3
    assert data["fastest"] == result.fastest


def test_a_layout_that_does_not_fit_is_shown_not_chosen() -> None:
    result = solver.compare(GPT3, ["a100 tp=1 pp=1 dp=1536", LAYOUTS[0]])
    assert not result.estimates[0].fits
    assert result.fastest == 1 and result.cheapest == 1
    assert any(line.startswith("#1 does not fit: memory") for line in result.why)


def test_compare_needs_a_layout_and_a_global_batch() -> None:
    with pytest.raises(solver.SpecError, match="layouts"):
        solver.compare(GPT3, [])
    job = solver.TrainingJob(model=solver.model("gpt3-175b"), tokens=300e9)
    with pytest.raises(solver.SpecError, match="global_batch"):
        solver.compare(job, LAYOUTS[:1])


def test_compare_cli_table_at_80_columns(capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # an 80-column terminal (piped output is not wrapped)
    argv = [*ARGV]
    for text in LAYOUTS:
        argv += ["--layout", text]
    assert run(argv) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    out = captured.out
    assert max(len(line) for line in out.splitlines()) <= 80
    for label in ("training days", "memory (GiB)", "activations", "time per step (s)",
                  "bubble", "fastest", "cheapest"):
        assert label in out
    assert "#1 1,024 x a100-sxm4-80gb" in out


def test_compare_cli_json_and_positional_layouts(capsys: pytest.CaptureFixture[str]) -> None:
    assert run([*ARGV, LAYOUTS[0], "--layout", LAYOUTS[1], "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [e["layout"]["tp"] for e in data["layouts"]] == [8, 4]
    assert {"layout", "estimate", "fits", "explanation"} <= set(data["layouts"][0])


@pytest.mark.parametrize(("extra", "message"), [
    ([], "--layout: expected at least one layout"),
    (["--layout", "a100 tp=8 pp=8"], "layout: dp is missing"),
    (["--layout", "a100 tp=7 pp=8 dp=16"], "layout #1: tp"),
])
def test_compare_cli_errors_are_one_line(extra: list[str], message: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert run([*ARGV, *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_compare_cli_without_global_batch_names_the_option(
        capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["compare", "--model", "gpt3-175b", "--tokens", "300e9", "--layout", LAYOUTS[0]]
    assert run(argv) == 2
    assert "--global-batch" in capsys.readouterr().err
