"""Prices and power on one basis (``docs/prices.md``): every shipped ``hardware_specs/*.toml``
states the provider, region, date and division of its price and the vendor's term and source of
its power, in the form the basis asks for; an accelerator without a figure says why; a cost or
energy question that only such accelerators could answer is refused (exit 2, one line naming
them and the way to give the figure), never reported "infeasible"."""

from __future__ import annotations

import json
import math
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

import solver
from solver.cli import run

SPECS = sorted((Path(__file__).resolve().parents[1] / "hardware_specs").glob("*.toml"))

#: The price line's comment: provider (in the basis' order of preference), the instance,
#: on-demand, a US region, the date read ("undated" only with a source that says the date is
#: not shown), and the division instance price / accelerators per instance.
PRICE_COMMENT = re.compile(
    r"^(?P<provider>AWS|GCP|Azure) (?P<sku>\S.*?) on-demand, "
    r"(?P<region>us-[a-z]+-?\d+|(?:east|west|central)us\d?), "
    r"(?P<date>\d{4}-\d{2}(?:-\d{2})?|undated) "
    r"\(\$(?P<instance>\d+(?:\.\d+)?)/h / (?P<count>\d+)[;)]")
#: The vendor terms of a maximum power figure (docs/prices.md, "Power").
POWER_TERMS = ("maximum TDP", "TDP", "maximum TGP", "Typical Board Power", "maximum power")

#: A 1-trillion-token Llama 3 8B run within 30 days: the issue's example question.
QUESTION = ["solve", "--model", "llama3-8b", "--tokens", "1T", "--deadline-days", "30",
            "--workers", "1", "--time-limit", "30"]
JOB = solver.TrainingJob(model=solver.model("llama3-8b"), tokens=1e9)


def line_comment(text: str, key: str) -> str | None:
    """The comment after ``key = value`` on its line, or None when the key is not set."""
    found = re.search(rf"^{key} = [^#\n]*#\s*(.*)$", text, re.M)
    return found.group(1).strip() if found else None


def spec(path: Path) -> tuple[str, dict[str, Any]]:
    text = path.read_text()
    return text, tomllib.loads(text)


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_price_is_on_the_basis_or_absent_with_a_reason(path: Path) -> None:
    text, data = spec(path)
    price = data.get("price_usd_per_hour")
    if price is None:
        assert re.search(r"^# price_usd_per_hour: none: \S", text, re.M), \
            "an absent price says why on a '# price_usd_per_hour: none: ...' line"
        assert "No price on gpuplan's basis (docs/prices.md)" in data["notes"]
        assert "--cost-param price_usd_per_hour=" in data["notes"]
        return
    comment = line_comment(text, "price_usd_per_hour")
    assert comment is not None
    found = PRICE_COMMENT.match(comment)
    assert found, f"price comment not on the basis: {comment!r}"
    # The price is the instance's hourly price over its accelerators (rounded in the file).
    share = float(found["instance"]) / int(found["count"])
    assert math.isclose(price, share, rel_tol=1e-3), (price, share)
    # A source marked 'price:' with the same date (or saying that the snapshot is undated).
    date = found["date"]
    marked = [s for s in data["sources"] if "price:" in s]
    if date == "undated":
        assert any("date not shown" in s for s in marked), marked
    else:
        assert any(date in s for s in marked), (date, marked)


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_power_is_the_vendors_maximum_with_a_source_or_absent_with_a_reason(path: Path) -> None:
    text, data = spec(path)
    tdp = data.get("tdp_w")
    if tdp is None:
        assert re.search(r"^# tdp_w: none: \S", text, re.M), \
            "an absent power figure says why on a '# tdp_w: none: ...' line"
        return
    comment = line_comment(text, "tdp_w")
    assert comment is not None
    watts = f"{tdp:g} W"
    assert watts in comment, (watts, comment)
    assert any(term in comment for term in POWER_TERMS) or "measured maximum" in comment
    assert any("power:" in s and watts in s for s in data["sources"]), \
        f"no source marked 'power:' giving {watts}"


def test_the_h800_has_no_price_and_no_power_and_says_how_to_give_the_papers_price() -> None:
    h800 = solver.accelerator("h800")
    assert h800.price_usd_per_hour is None and h800.tdp_w is None
    # DeepSeek-V3's $2 per GPU-hour (arXiv:2412.19437) is an assumption, kept as an example.
    assert "DeepSeek-V3" in h800.notes and "--cost-param price_usd_per_hour=2" in h800.notes


def test_hardware_show_says_why_the_h800_has_no_price(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["hardware", "show", "h800", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["price_usd_per_hour"] is None
    assert data["notes"].startswith("No price on gpuplan's basis (docs/prices.md)")


@pytest.mark.parametrize("extra, named", [
    (["--gpu", "gaudi2", "--objective", "cost"], "gaudi2"),
    (["--gpu", "h800", "--budget-usd", "1e6"], "h800"),
])
def test_cli_cost_question_on_an_unpriced_accelerator_is_exit_2_naming_it(
        extra: list[str], named: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run([*QUESTION, *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"gpuplan: error: --gpu: {named} has no on-demand list price")
    assert "--cost-param price_usd_per_hour=" in err


def test_cli_energy_question_without_a_power_figure_is_exit_2_naming_it(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert run([*QUESTION, "--gpu", "tpu-v5e", "--objective", "energy"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("gpuplan: error: --gpu: tpu-v5e has no published power figure (tdp_w")


def test_library_raises_spec_error_naming_each_accelerator_and_field() -> None:
    with pytest.raises(solver.SpecError,
                       match=r"^accelerators: gaudi2 and h800 have no on-demand list price .*"
                             r"price_usd_per_hour"):
        solver.solve(JOB, solver.Limits(accelerators=("h800", "gaudi2"), max_gpus=64),
                     objective="cost", workers=1)
    with pytest.raises(solver.SpecError,
                       match=r"^accelerators: trainium2 has no published power figure \(tdp_w"):
        solver.solve(JOB, solver.Limits(accelerators=("trainium2",), max_gpus=64),
                     objective="energy", workers=1)
    # One lacks a price, the other a power figure, for a cost question under an energy objective.
    with pytest.raises(solver.SpecError, match=r"^accelerators: h800 has no on-demand list "
                                               r"price.*; tpu-v5e has no published power"):
        solver.solve(JOB, solver.Limits(accelerators=("tpu-v5e", "h800"), max_gpus=64,
                                        budget_usd=1e6), objective="energy", workers=1)


def test_the_h800_cost_question_solves_with_a_given_price() -> None:
    plan = solver.solve(JOB, solver.Limits(accelerators=("h800",), max_gpus=64),
                        objective="cost", workers=1, cost_params={"price_usd_per_hour": 2})
    assert plan.status == "optimal" and plan.estimate is not None
    est = plan.estimate
    assert est.layout.accelerator == "h800"
    assert math.isclose(est.cost_usd, est.gpu_hours * 2.0, rel_tol=1e-9)  # $2 x GPU-hours
    assert math.isnan(est.energy_mwh)  # no power figure: no energy


def test_the_h800_no_longer_wins_a_cross_accelerator_cost_question() -> None:
    plan = solver.solve(JOB, solver.Limits(accelerators=("h800", "h100-sxm5-80gb"), max_gpus=64),
                        objective="cost", workers=1)
    assert plan.estimate is not None and plan.estimate.layout.accelerator == "h100-sxm5-80gb"
    assert any(n.startswith("h800: left out, h800 has no on-demand list price on gpuplan's "
                            "price basis") for n in plan.notes)
