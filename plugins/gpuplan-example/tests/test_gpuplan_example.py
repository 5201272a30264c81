"""Tests of the reference plugin, run where it is installed (``pip install .[test]``)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from importlib import metadata

import pytest
from gpuplan_example import plugin

import solver
from solver import plugins
from solver.cli import run


@pytest.fixture(autouse=True)
def fresh_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("GPUPLAN_BLOCK_PLUGINS", "GPUPLAN_DISABLE_PLUGIN_AUTOLOAD",
                 "GPUPLAN_HARDWARE_PATH"):
        monkeypatch.delenv(name, raising=False)
    plugins.reset()
    yield
    plugins.reset()


def test_hooks_return_gpuplan_objects() -> None:
    accs = plugin.gpuplan_accelerators()
    models = plugin.gpuplan_cost_models()
    assert [a.name for a in accs] == ["example-x1"]
    assert all(isinstance(a, solver.Accelerator) for a in accs)
    assert [m.name for m in models] == ["spot"]
    assert "FICTIONAL" in accs[0].sources[0]


def test_the_entry_point_is_installed() -> None:
    eps = metadata.entry_points(group="gpuplan")
    assert any(ep.name == "example" and ep.value == "gpuplan_example.plugin" for ep in eps)


def test_gpuplan_finds_the_accelerator_and_the_cost_model() -> None:
    assert solver.accelerator("example-x1") == plugin.EXAMPLE_X1
    assert solver.accelerator("x1").name == "example-x1"
    assert "spot" in solver.cost_models()
    assert plugins.problems() == []


def test_spot_is_the_discounted_on_demand_price() -> None:
    job = solver.TrainingJob(model=solver.model("llama3-8b"), tokens=1e9, global_batch=64,
                             seq_len=2048)
    layout = solver.Layout(accelerator="example-x1", tp=1, pp=1, dp=8, micro_batch=1)
    est = solver.evaluate(job, layout, cost_model="spot",
                          cost_params={"discount": 0.5, "interruption_overhead": 0.0})
    assert math.isclose(est.cost_usd, est.gpu_hours * 4.0 * 0.5, rel_tol=1e-9)


def test_solve_on_spot(capsys: pytest.CaptureFixture[str]) -> None:
    code = run(["solve", "--model", "llama3-8b", "--tokens", "1e9", "--gpu", "example-x1",
                "--max-gpus", "16", "--deadline-days", "30", "--objective", "cost", "--cost-model", "spot", "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    plan = json.loads(out.out)
    assert plan["layout"]["accelerator"] == "example-x1"
    rate = 4.0 * (1 - 0.6) * (1 + 0.1)
    assert math.isclose(plan["estimate"]["cost_usd"], plan["estimate"]["gpu_hours"] * rate,
                        rel_tol=1e-5)
