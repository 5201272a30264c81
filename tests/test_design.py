"""``gpuplan design`` / ``solver.design``: the loss law's arithmetic worked by hand, the shape
rule against Llama 3's published counts, the search's bookkeeping, the CLI."""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path

import pytest

from solver import design_shapes, scaling_law
from solver.cli import run
from solver.design import MAX_PARAMS, MIN_PARAMS, design, round_down
from solver.errors import SpecError
from solver.scaling_law import LAWS, ScalingLaw, resolve

#: The module (``solver.cli.design`` as an attribute is the command's function).
design_cli = importlib.import_module("solver.cli.design")

HOFFMANN = LAWS["hoffmann2022"]
BESIROGLU = LAWS["besiroglu2024"]


def test_loss_of_chinchilla_by_hand() -> None:
    # Chinchilla: N = 70e9 parameters, D = 1.4e12 tokens. ln N = ln 7 + 10 ln 10 = 24.971761,
    # ln D = ln 1.4 + 12 ln 10 = 27.967493.
    # hoffmann2022: N^0.34 = exp(0.34 * 24.971761) = exp(8.490399) = 4867.81, 406.4 / 4867.81
    #   = 0.083487; D^0.28 = exp(7.830898) = 2517.19, 410.7 / 2517.19 = 0.163158;
    #   L = 1.69 + 0.083487 + 0.163158 = 1.936645.
    assert HOFFMANN.loss(70e9, 1.4e12) == pytest.approx(1.936645, abs=2e-6)
    # besiroglu2024: N^0.3478 = exp(8.685178) = 5914.60, 482.01 / 5914.60 = 0.081495;
    #   D^0.3658 = exp(10.230499) = 27736.6, 2085.43 / 27736.6 = 0.075187;
    #   L = 1.8172 + 0.081495 + 0.075187 = 1.973882.
    assert BESIROGLU.loss(70e9, 1.4e12) == pytest.approx(1.973882, abs=2e-6)


def test_frontier_by_hand() -> None:
    # besiroglu2024: alpha*A = 0.3478 * 482.01 = 167.6431, beta*B = 0.3658 * 2085.43 = 762.8503;
    # G = (167.6431 / 762.8503)^(1 / 0.7136) = 0.219759^1.401345 = exp(1.401345 * -1.515224)
    #   = 0.119630; a = 0.3658 / 0.7136 = 0.512612.
    assert BESIROGLU.frontier_coefficient == pytest.approx(0.119630, rel=1e-5)
    # C = 1e24: C/6 = 1.666667e23, ln = 53.470283; N = 0.119630 * exp(0.512612 * 53.470283)
    #   = 0.119630 * exp(27.409513) = 9.5861e10; D = 1.666667e23 / 9.5861e10 = 1.73863e12:
    #   18.1 tokens per parameter.
    n, d = BESIROGLU.compute_optimal(1e24)
    assert n == pytest.approx(9.5861e10, rel=1e-4)
    assert d == pytest.approx(1.73863e12, rel=1e-4)
    # hoffmann2022: G = (0.34*406.4 / (0.28*410.7))^(1/0.62) = (138.176 / 114.996)^1.612903
    #   = 1.201572^1.612903 = 1.344711; a = 0.28 / 0.62 = 0.451613; at C = 1e24
    #   N = 1.344711 * exp(0.451613 * 53.470283) = 4.1297e10, D = 4.0358e12: 97.7 per
    #   parameter, the inconsistency docs/design.md explains.
    n, d = HOFFMANN.compute_optimal(1e24)
    assert n == pytest.approx(4.1297e10, rel=1e-4)
    assert d / n == pytest.approx(97.73, rel=1e-3)


@pytest.mark.parametrize("law", sorted(LAWS))
@pytest.mark.parametrize("flops", [1e21, 1e24, 1e26])
def test_closed_form_is_the_brute_force_minimum(law: str, flops: float) -> None:
    fit = LAWS[law]
    grid = [10 ** (6 + i / 2000) for i in range(7 * 2000)]  # 1e6 to 1e13 parameters
    best = min(grid, key=lambda n: fit.loss(n, flops / 6 / n))
    n, d = fit.compute_optimal(flops)
    assert best == pytest.approx(n, rel=2e-3)  # the grid's step is 0.115%
    assert 6 * n * d == pytest.approx(flops)


def test_default_law_gives_chinchillas_rule_of_thumb() -> None:
    assert scaling_law.DEFAULT_LAW == "besiroglu2024"
    n, d = LAWS[scaling_law.DEFAULT_LAW].compute_optimal(1e25)
    assert 10 <= d / n <= 40  # hand value above: 17.1
    n, d = HOFFMANN.compute_optimal(1e25)
    assert d / n > 60  # 122: why it is not the default


def test_law_params_replace_constants_and_are_checked() -> None:
    custom = resolve("hoffmann2022", {"E": "1.5", "beta": 0.3})
    assert (custom.E, custom.A, custom.beta) == (1.5, 406.4, 0.3)
    assert custom.name == "custom (hoffmann2022: E=1.5, beta=0.3)"
    assert resolve(custom) is custom
    with pytest.raises(SpecError, match=r"^law_params: expected a key among E, A, B, alpha, "):
        resolve("hoffmann2022", {"gamma": 1})
    with pytest.raises(SpecError, match=r"^law_params: A: expected a finite number > 0, "
                                        r"got '-3'"):
        resolve("hoffmann2022", {"A": "-3"})
    with pytest.raises(SpecError, match=r"^law: expected one of besiroglu2024, hoffmann2022"):
        resolve("kaplan2020")
    with pytest.raises(SpecError, match=r"^law.alpha: expected a finite number > 0"):
        ScalingLaw("x", E=1, A=1, B=1, alpha=float("nan"), beta=1)


def test_shape_rule_reproduces_llama3_8b() -> None:
    # The preset's hand count (solver/presets/llama3-8b.toml): 8,030,261,248 parameters,
    # 32 layers of 4096, FFN 14336.
    assert design_shapes.shape_for(8.03e9) == (32, 4096)
    model = design_shapes.build(32, 4096)
    assert model.params_total == 8_030_261_248
    assert (model.heads, model.kv_heads, model.ffn_hidden) == (32, 8, 14336)
    # One layer at 8192 wide: 2*8192^2 + 2*8192*1024 + 3*8192*28672 + 2*8192 = 134,217,728
    # + 16,777,216 + 704,643,072 + 16,384 = 855,654,400 (Llama 3 70B's layer, its preset).
    assert design_shapes.layer_params(8192) == 855_654_400


def test_shape_family_is_valid_and_spans_the_range() -> None:
    shapes = design_shapes.family(MIN_PARAMS, MAX_PARAMS, 4)
    assert len(shapes) >= 12
    sizes = [design_shapes.build(*s).params_total for s in shapes]
    assert sizes == sorted(sizes)
    assert sizes[0] < 1e9 and sizes[-1] > 1.5e12
    for layers, hidden in shapes:
        assert layers % 4 == 0 and hidden % 1024 == 0
        m = design_shapes.build(layers, hidden)
        assert m.heads % m.kv_heads == 0 and m.heads * m.head_dim == hidden


def test_round_down() -> None:
    assert round_down(5.71893e12) == pytest.approx(5.718e12)
    assert round_down(999.99, 3) == pytest.approx(999.0)
    assert round_down(2.0e15) == pytest.approx(2.0e15)
    for value in (1.23456e7, 9.99999e11, 3.0000001e9, 5.71e12):
        assert round_down(value) <= value


@pytest.fixture(scope="module")
def small() -> object:
    """64 H100 for 20 days, sizes 1B to 20B: a few seconds."""
    return design("h100", gpus=64, days=20, min_params=1e9, max_params=2e10,
                  time_limit_s=20)


def test_small_design_bookkeeping(small: object) -> None:
    from solver.design import Design

    assert isinstance(small, Design)
    assert small.status in ("optimal", "feasible")
    tried = [c for c in small.candidates if c.skipped is None]
    assert len(tried) >= 5
    for c in tried:
        # Loss as the law's formula, written out; tokens use the deadline to within the
        # rounding to four significant figures.
        by_hand = 1.8172 + 482.01 / c.params ** 0.3478 + 2085.43 / c.tokens ** 0.3658
        assert c.loss == pytest.approx(by_hand, rel=1e-12)
        assert 20 * 0.999 <= c.wall_clock_days <= 20
    assert small.loss == min(c.loss for c in tried)
    plan = small.plan
    assert plan is not None and plan.estimate is not None and small.job is not None
    assert small.job.tokens == small.tokens and small.job.model == small.model
    assert plan.estimate.wall_clock_days <= 20
    assert plan.estimate.layout.gpus == 64


def test_cli_json_keys_are_documented(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    from test_interface_doc import documented, documented_as, paths

    out = tmp_path / "design.json"
    code = run(["design", "--gpu", "h100", "--gpus", "64", "--days", "20", "--min-params",
                "1B", "--max-params", "4B", "--output", str(out)])
    assert code == 0, capsys.readouterr().err
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["limits"] == {"accelerator": "h100-sxm5-80gb", "gpus": 64, "max_gpus": None,
                              "days": 20.0, "budget_usd": None}
    assert data["tokens_per_param"] == pytest.approx(data["tokens"] / data["params"], rel=1e-5)
    names = documented()
    missing = []
    for path in set(paths(data)):
        inner = path.removeprefix("plan.")
        if path.startswith("model."):
            ok = path.split(".")[1] in names
        else:
            ok = documented_as(path, names) or (path != inner and documented_as(inner, names))
        if not ok:
            missing.append(path)
    assert not missing, f"docs/interface.md does not list: {sorted(missing)}"


@pytest.mark.parametrize(("args", "message"), [
    (["--gpus", "64"], "--days: missing; a design needs a deadline or a budget"),
    (["--days", "9"], "--gpus: missing; a design needs the accelerator count"),
    (["--gpus", "64", "--days", "9", "--law", "kaplan"], "--law: expected one of"),
    (["--gpus", "64", "--days", "9", "--law-param", "E=-1"],
     "--law-param: E: expected a finite number > 0, got '-1'"),
    (["--gpus", "64", "--days", "9", "--law-param", "E"], "--law-param: expected KEY=VALUE"),
    (["--gpus", "64", "--days", "-9"], "--days: expected a finite number > 0"),
    (["--gpus", "64", "--days", "9", "--min-params", "3T", "--max-params", "1T"],
     "--max-params: expected at least min_params"),
    (["--gpus", "64", "--days", "9", "--seq-len", "0"], "--seq-len: expected an integer"),
])
def test_cli_bad_input_is_exit_2(args: list[str], message: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    code = run(["design", "--gpu", "h100", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"gpuplan: error: {message}"), err
    assert len(err.strip().splitlines()) == 1


def test_cli_unknown_accelerator(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["design", "--gpu", "h1000", "--gpus", "8", "--days", "9"]) == 2
    assert capsys.readouterr().err.startswith("gpuplan: error: --gpu:")


def test_cli_constants_agree_with_the_library() -> None:
    assert design_cli.LAW_NAMES[0] == scaling_law.DEFAULT_LAW
    assert set(design_cli.LAW_NAMES) == set(LAWS)
    assert float(design_cli.DEFAULT_MIN_PARAMS.rstrip("M")) * 1e6 == MIN_PARAMS
    assert float(design_cli.DEFAULT_MAX_PARAMS.rstrip("T")) * 1e12 == MAX_PARAMS


def test_issue_question_gives_chinchillas_rule_of_thumb() -> None:
    """The issue's done-when question (a few seconds): 4,096 H100 for 90 days."""
    answer = design("h100-sxm5-80gb", gpus=4096, days=90)
    assert answer.status in ("optimal", "feasible")
    assert 10 <= answer.tokens_per_param <= 40
    assert answer.plan is not None and answer.plan.estimate is not None
    assert answer.plan.estimate.wall_clock_days <= 90
    assert not math.isnan(answer.loss)


def test_sizes_no_layout_fits_are_skipped(capsys: pytest.CaptureFixture[str]) -> None:
    # 8 H100 hold 640 GiB: a 1T model's weights alone (2 bytes each, 2 TB) cannot fit, so the
    # smallest size tried is infeasible, the larger ones are not tried, and the design is
    # infeasible (exit 1).
    code = run(["design", "--gpu", "h100", "--gpus", "8", "--days", "30", "--min-params",
                "1T", "--max-params", "2T", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1 and data["status"] == "infeasible"
    assert data["plan"] is None and data["model"] is None
    first, *rest = data["candidates"]
    assert first["skipped"].startswith("infeasible: memory")
    assert rest and all(c["skipped"].startswith(f"not tried: larger than {first['name']}")
                        for c in rest)
    assert data["notes"][0].endswith(f"; {len(rest)} larger not tried")


@pytest.mark.parametrize("days", [None, 10.0])
def test_budget_form_keeps_every_candidate_and_the_plan_within_budget(days: float | None
                                                                     ) -> None:
    budget = 2e5  # 64 H100 at the cloud list price: about 6 days' rental
    answer = design("h100", gpus=64, budget_usd=budget, days=days, min_params=1e9,
                    max_params=1e10, time_limit_s=20)
    tried = [c for c in answer.candidates if c.skipped is None]
    assert tried
    for c in tried:
        # what the budget buys, to within the rounding of tokens to four figures (or less,
        # when the deadline binds first)
        assert c.cost_usd <= budget
        if days is None:
            assert c.cost_usd >= 0.999 * budget
        else:
            assert c.wall_clock_days <= days
    plan = answer.plan
    assert plan is not None and plan.estimate is not None and plan.objective == "cost"
    assert plan.estimate.cost_usd <= budget
    if days is not None:
        assert plan.estimate.wall_clock_days <= days


def test_budget_needs_a_price_before_any_solve(capsys: pytest.CaptureFixture[str]) -> None:
    # The H800 has no list price on gpuplan's basis (docs/prices.md): a budget cannot be
    # turned into tokens, and the question is refused at once rather than after the search.
    assert run(["design", "--gpu", "h800", "--gpus", "64", "--budget-usd", "1e6"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gpuplan: error: --gpu: h800 has no on-demand list price")
    assert "--cost-param price_usd_per_hour=USD" in err


def test_pick_breaks_ties_by_the_laws_own_optimum() -> None:
    # A: Llama 3 8B's shape (8.03e9 parameters) on 20 tokens per parameter: C = 6 N D =
    # 7.74e21, where the default law's optimum is 0.1196 * (C/6)^0.5126 = 7.9e9 parameters
    # (log distance 0.01). B: 13.5e9 parameters on 5 per parameter: C = 5.47e21, optimum
    # 6.6e9 (log distance 0.71). Losses 5e-5 apart are one answer (TIE_LOSS 1e-4): A, nearer
    # its optimum, although B's loss is lower; 2e-4 apart they are not: B.
    from solver.design import Candidate, pick

    law = scaling_law.resolve("besiroglu2024", {})
    small, large = design_shapes.build(32, 4096), design_shapes.build(36, 5120)
    n_small, n_large = small.params_total, large.params_total
    for gap, chosen in ((5e-5, small), (2e-4, large)):
        a = Candidate(small, tokens=20.0 * n_small, loss=2.0)
        b = Candidate(large, tokens=5.0 * n_large, loss=2.0 - gap)
        best = pick([a, b], law)
        assert best is not None and best.model is chosen
    assert pick([Candidate(small, skipped="no layout fits")], law) is None
