"""The plugin machinery (``solver/plugins.py``), GPUPLAN_HARDWARE_PATH, ``gpuplan plugins list``,
and the reference plugin installed with pip into a virtual environment and used end to end.

In-process plugins are plain modules registered on a fresh manager (``plugins.reset()``) through
``plugins.register_module``, or found through faked entry points.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import time
import types
import venv
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

import solver
from solver import hookspecs, plugins
from solver.cli import run

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_PLUGIN = ROOT / "plugins" / "gpuplan-example"
ENV_VARS = ("GPUPLAN_BLOCK_PLUGINS", "GPUPLAN_DISABLE_PLUGIN_AUTOLOAD", "GPUPLAN_HARDWARE_PATH",
            "GPUPLAN_DEBUG")

#: A small question that solves in well under a second.
SMALL_SOLVE = ["solve", "--model", "llama3-8b", "--tokens", "1e9", "--max-gpus", "16",
               "--deadline-days", "365", "--time-limit", "20", "--workers", "1"]


@pytest.fixture(autouse=True)
def fresh_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fresh plugin manager per test, with no plugin environment variable set."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    plugins.reset()
    yield
    plugins.reset()


def plugin_module(name: str, **hooks: Callable[[], Any]) -> types.ModuleType:
    """A module with the given hook functions, each marked with ``solver.hookimpl``."""
    module = types.ModuleType(name)
    for hook, fn in hooks.items():
        fn.__name__ = hook
        setattr(module, hook, solver.hookimpl(fn))
    return module


def acme(name: str = "acme-x1", price: float | None = 2.0) -> solver.Accelerator:
    return solver.Accelerator(
        name=name, vendor="Acme (test)", peak_tflops={"bf16": 400.0}, memory_gib=80.0,
        memory_bw_gb_s=2000.0, scaleup_bw_gb_s=300.0, scaleup_domain=8,
        scaleout_bw_gb_s=25.0, tdp_w=500.0, price_usd_per_hour=price,
        sources=("made up for the tests",))


def names(infos: list[plugins.PluginInfo]) -> list[str]:
    return [i.name for i in infos]


# --------------------------------------------------------------------------- the machinery


def test_hookspecs_are_documented_with_contract_and_example() -> None:
    assert plugins.HOOKS == ("gpuplan_accelerators", "gpuplan_cost_models", "gpuplan_models")
    for hook in plugins.HOOKS:
        doc = getattr(hookspecs, hook).__doc__ or ""
        assert "Called" in doc and "Return" in doc and "Example" in doc, hook
    assert solver.hookimpl is hookspecs.hookimpl


def test_the_manager_is_built_lazily_never_at_import() -> None:
    code = ("import solver, solver.cli, solver.plugins as p; "
            "print(p.plugin_manager.cache_info().currsize)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=_clean_env())
    assert out.stdout.strip() == "0"
    assert plugins.plugin_manager.cache_info().currsize == 0  # after reset()
    solver.accelerators()
    assert plugins.plugin_manager.cache_info().currsize == 1


def test_builtins_are_plugins_registered_through_register() -> None:
    infos = plugins.plugin_infos()
    assert names(infos)[:3] == ["hardware", "models", "costs"]
    for info in infos[:3]:
        assert info.builtin and info.distribution == "gpuplan" and info.status == "active"
    assert {i.name: i.hooks for i in infos[:3]} == {
        "hardware": ("gpuplan_accelerators",), "models": ("gpuplan_models",),
        "costs": ("gpuplan_cost_models",)}
    # registered on the pluggy manager under those names, like any third-party plugin
    pm = plugins.plugin_manager()
    assert all(pm.has_plugin(n) for n in ("hardware", "models", "costs"))


@pytest.mark.parametrize("blocked, gone", [
    ("hardware", "accelerators"), ("models", "models"), ("costs", "cost_models")])
def test_any_builtin_can_be_blocked(monkeypatch: pytest.MonkeyPatch, blocked: str,
                                    gone: str) -> None:
    monkeypatch.setenv("GPUPLAN_BLOCK_PLUGINS", f" {blocked} ,nothing-else")
    assert getattr(solver, gone)() == {}
    status = {i.name: i.status for i in plugins.plugin_infos()}
    assert status[blocked] == "blocked"
    assert all(s == "active" for n, s in status.items() if n != blocked)


def test_in_process_plugin_adds_an_accelerator_and_a_model() -> None:
    tiny = solver.ModelSpec(name="tiny-test", layers=2, hidden=256, heads=4)
    plugins.register_module(plugin_module(
        "acme_plugin", gpuplan_accelerators=lambda: [acme()], gpuplan_models=lambda: [tiny]),
        "acme")
    assert solver.accelerator("acme-x1").vendor == "Acme (test)"
    assert solver.model("tiny-test") == tiny
    assert "a100-sxm4-80gb" in solver.accelerators()  # the built-ins are still there
    info = {i.name: i for i in plugins.plugin_infos()}["acme"]
    assert info.hooks == ("gpuplan_accelerators", "gpuplan_models") and not info.builtin
    assert plugins.problems() == []


def test_in_process_plugin_can_be_blocked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUPLAN_BLOCK_PLUGINS", "acme")
    plugins.register_module(plugin_module("acme_plugin", gpuplan_accelerators=lambda: [acme()]),
                            "acme")
    assert "acme-x1" not in solver.accelerators()


def test_a_name_given_by_two_plugins_is_an_error_naming_both() -> None:
    clash = acme(name="h100-sxm5-80gb")
    plugins.register_module(plugin_module("dup", gpuplan_accelerators=lambda: [clash]), "dup",
                            distribution="gpuplan-dup", version="1.2")
    with pytest.raises(solver.PluginError) as err:
        solver.accelerators()
    message = str(err.value)
    assert "'h100-sxm5-80gb'" in message and "'hardware'" in message
    assert "'dup' (gpuplan-dup 1.2)" in message


def test_cli_names_both_providers_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    clash = acme(name="a100-sxm4-80gb")
    plugins.register_module(plugin_module("dup", gpuplan_accelerators=lambda: [clash]), "dup")
    assert run(["hardware", "list"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'hardware'" in err and "'dup'" in err
    assert "Traceback" not in err


def _boom() -> list[solver.Accelerator]:
    raise RuntimeError("boom: the vendor's server is down")


@pytest.mark.parametrize("result, says", [
    ({"name": "x"}, "must return a list of solver.Accelerator, got dict"),
    ([acme(), "acme-x2"], "got a str in it"),
    ([acme(), acme()], "gives Accelerator 'acme-x1' twice"),
])
def test_malformed_answers_are_named_and_left_out(result: Any, says: str) -> None:
    plugins.register_module(plugin_module("bad", gpuplan_accelerators=lambda: result), "bad")
    accs = solver.accelerators()
    assert "acme-x1" not in accs and "h100-sxm5-80gb" in accs
    assert any("'bad'" in p and says in p for p in plugins.problems()), plugins.problems()


def test_a_hook_that_returns_none_provides_nothing_and_is_fine() -> None:
    plugins.register_module(plugin_module("quiet", gpuplan_accelerators=lambda: None), "quiet")
    assert "h100-sxm5-80gb" in solver.accelerators()
    assert plugins.problems() == []


def test_a_raising_plugin_is_named_on_stderr_and_the_rest_works(
        capsys: pytest.CaptureFixture[str]) -> None:
    plugins.register_module(plugin_module("boom", gpuplan_accelerators=_boom,
                                          gpuplan_cost_models=_boom), "boom",
                            distribution="gpuplan-boom", version="0.0.1")
    plugins.register_module(plugin_module("acme_plugin", gpuplan_accelerators=lambda: [acme()]),
                            "acme")
    assert run([*SMALL_SOLVE, "--gpu", "acme-x1", "--objective", "cost", "--json"]) == 0
    captured = capsys.readouterr()
    plan = json.loads(captured.out)
    assert plan["layout"]["accelerator"] == "acme-x1"
    warnings = [line for line in captured.err.splitlines() if "'boom'" in line]
    assert len(warnings) == 2  # one per hook
    assert all(w.startswith("gpuplan: warning: plugin 'boom' (gpuplan-boom 0.0.1): gpuplan_")
               and "RuntimeError: boom" in w for w in warnings)
    status = {i.name: i.status for i in plugins.plugin_infos()}
    assert status["boom"] == "error" and status["acme"] == "active"


def test_unmarked_and_unknown_hooks_are_reported() -> None:
    module = types.ModuleType("sloppy")

    def gpuplan_accelerators() -> list[solver.Accelerator]:  # forgot @solver.hookimpl
        return [acme()]

    def gpuplan_accelerator() -> list[solver.Accelerator]:  # a typo in the hook's name
        return [acme()]

    module.gpuplan_accelerators = gpuplan_accelerators  # type: ignore[attr-defined]
    module.gpuplan_accelerator = solver.hookimpl(gpuplan_accelerator)  # type: ignore[attr-defined]
    plugins.register_module(module, "sloppy")
    assert "acme-x1" not in solver.accelerators()
    problems = "\n".join(plugins.problems())
    assert "gpuplan_accelerators() is not marked with @solver.hookimpl" in problems
    assert "gpuplan_accelerator is not a gpuplan hook" in problems


def test_a_hook_with_arguments_is_refused_by_name() -> None:
    module = types.ModuleType("wrong_args")

    @solver.hookimpl
    def gpuplan_accelerators(vendor: str) -> list[solver.Accelerator]:
        return [acme()]

    module.gpuplan_accelerators = gpuplan_accelerators  # type: ignore[attr-defined]
    plugins.register_module(module, "wrong-args")
    assert "acme-x1" not in solver.accelerators()
    assert {i.name: i.status for i in plugins.plugin_infos()}["wrong-args"] == "failed"
    assert any("'wrong-args'" in p and "could not be registered" in p
               for p in plugins.problems())


def test_a_plugin_name_already_taken_is_left_out() -> None:
    plugins.register_module(plugin_module("other", gpuplan_accelerators=lambda: [acme()]),
                            "hardware", distribution="gpuplan-other", version="9")
    assert "acme-x1" not in solver.accelerators()
    assert any("name 'hardware' is already taken by gpuplan" in p for p in plugins.problems())


# ------------------------------------------------------------------------- entry points


def _fake_entry_points(monkeypatch: pytest.MonkeyPatch,
                       points: list[metadata.EntryPoint]) -> None:
    real = metadata.entry_points

    def fake(**params: Any) -> Any:
        if params.get("group") == plugins.ENTRY_POINT_GROUP:
            return metadata.EntryPoints(points)
        return real(**params)

    monkeypatch.setattr(plugins.metadata, "entry_points", fake)


def test_entry_points_are_discovered_in_name_order_after_the_builtins(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ep_acme", plugin_module(
        "ep_acme", gpuplan_accelerators=lambda: [acme()]))
    monkeypatch.setitem(sys.modules, "ep_zeta", plugin_module(
        "ep_zeta", gpuplan_accelerators=lambda: [acme("zeta-z1")]))
    group = plugins.ENTRY_POINT_GROUP
    _fake_entry_points(monkeypatch, [
        metadata.EntryPoint("zeta", "ep_zeta", group),
        metadata.EntryPoint("acme", "ep_acme", group),
        metadata.EntryPoint("acme", "ep_acme", group),  # the same one seen twice on sys.path
        metadata.EntryPoint("broken", "no_such_module_for_gpuplan_tests", group),
    ])
    infos = plugins.plugin_infos()
    assert names(infos) == ["hardware", "models", "costs", "acme", "broken", "zeta"]
    assert {"acme-x1", "zeta-z1"} <= set(solver.accelerators())
    status = {i.name: i.status for i in infos}
    assert status["broken"] == "failed"
    assert any(p.startswith("plugin 'broken'") and "failed to load: ModuleNotFoundError" in p
               for p in plugins.problems())


def test_autoload_can_be_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ep_acme", plugin_module(
        "ep_acme", gpuplan_accelerators=lambda: [acme()]))
    _fake_entry_points(monkeypatch, [metadata.EntryPoint("acme", "ep_acme",
                                                         plugins.ENTRY_POINT_GROUP)])
    monkeypatch.setenv("GPUPLAN_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert "acme-x1" not in solver.accelerators()
    assert names(plugins.plugin_infos()) == ["hardware", "models", "costs"]
    plugins.reset()
    monkeypatch.setenv("GPUPLAN_DISABLE_PLUGIN_AUTOLOAD", "0")
    assert "acme-x1" in solver.accelerators()


def test_a_blocked_entry_point_is_never_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_entry_points(monkeypatch, [metadata.EntryPoint(
        "ghost", "no_such_module_for_gpuplan_tests", plugins.ENTRY_POINT_GROUP)])
    monkeypatch.setenv("GPUPLAN_BLOCK_PLUGINS", "ghost")
    assert {i.name: i.status for i in plugins.plugin_infos()}["ghost"] == "blocked"
    assert plugins.problems() == []


# ------------------------------------------------------------------ GPUPLAN_HARDWARE_PATH

USER_TOML = """
name = "lab-gpu"
vendor = "Our lab"
memory_gib = 80.0
memory_bw_gb_s = 2000.0
scaleup_bw_gb_s = 300.0
scaleup_domain = 8
scaleout_bw_gb_s = 25.0
tdp_w = 400.0
price_usd_per_hour = 1.5
sources = ["our own measurements"]

[peak_tflops]
bf16 = 312.0
"""


def test_a_toml_on_the_hardware_path_is_an_accelerator_solve_uses(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "lab-gpu.toml").write_text(USER_TOML)
    (tmp_path / "readme.txt").write_text("not a TOML, not read")
    monkeypatch.setenv("GPUPLAN_HARDWARE_PATH", os.pathsep.join(["/no/such/dir", str(tmp_path)]))
    assert solver.accelerator("lab-gpu").price_usd_per_hour == 1.5
    assert run([*SMALL_SOLVE, "--gpu", "lab-gpu", "--objective", "cost", "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    plan = json.loads(captured.out)
    assert plan["layout"]["accelerator"] == "lab-gpu"
    assert plan["estimate"]["cost_usd"] == pytest.approx(plan["estimate"]["gpu_hours"] * 1.5,
                                                         rel=1e-5)


def test_a_malformed_toml_is_named_and_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "good.toml").write_text(USER_TOML)
    (tmp_path / "broken.toml").write_text("name = [unclosed")
    (tmp_path / "typo.toml").write_text(USER_TOML.replace("tdp_w", "tdp_watts")
                                        .replace("lab-gpu", "typo-gpu"))
    (tmp_path / "zz-dup.toml").write_text(USER_TOML.replace("lab-gpu", "h100-sxm5-80gb"))
    monkeypatch.setenv("GPUPLAN_HARDWARE_PATH", str(tmp_path))
    assert run(["hardware", "list", "--json"]) == 0
    captured = capsys.readouterr()
    listed = {a["name"] for a in json.loads(captured.out)["accelerators"]}
    assert "lab-gpu" in listed and "typo-gpu" not in listed
    err = captured.err.splitlines()
    assert any("broken.toml" in line and "not valid TOML" in line for line in err)
    assert any("typo.toml" in line and "unknown field 'tdp_watts'" in line for line in err)
    assert any("zz-dup.toml" in line and "already defined by hardware_specs" in line
               for line in err)
    assert all(line.startswith("gpuplan: warning: GPUPLAN_HARDWARE_PATH: ") for line in err)


# ------------------------------------------------------------------- gpuplan plugins list


def test_plugins_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    plugins.register_module(plugin_module("acme_plugin", gpuplan_accelerators=lambda: [acme()]),
                            "acme", distribution="gpuplan-acme", version="2.0")
    assert run(["plugins", "list", "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    data = json.loads(captured.out)
    assert data["schema_version"] == 1
    by_name = {p["name"]: p for p in data["plugins"]}
    assert list(by_name)[:3] == ["hardware", "models", "costs"]
    assert by_name["acme"] == {
        "name": "acme", "distribution": "gpuplan-acme", "version": "2.0",
        "hooks": ["gpuplan_accelerators"], "builtin": False, "status": "active",
        "provides": {"accelerators": ["acme-x1"]}}
    assert by_name["costs"]["provides"] == {"cost_models": ["cloud", "owned"]}
    assert by_name["hardware"]["version"] == solver.__version__


def test_plugins_list_table_and_blocked_status(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GPUPLAN_BLOCK_PLUGINS", "models")
    assert run(["plugins", "list"]) == 0
    out = capsys.readouterr().out
    assert "hardware" in out and "blocked" in out and "cloud, owned" in out


# --------------------------------------------- the reference plugin, installed with pip


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ENV_VARS and k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env.update(extra)
    return env


def make_venv(where: Path) -> Path:
    """A virtual environment that sees this interpreter's packages (gpuplan, numpy, ortools,
    pytest, setuptools) through a ``.pth`` file, so nothing is downloaded or reinstalled."""
    venv.create(where, with_pip=False, symlinks=os.name != "nt")
    python = where / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = subprocess.run([str(python), "-c",
                              "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    parents = [p for p in [*site.getsitepackages(), sysconfig.get_paths()["purelib"]]
               if Path(p).is_dir()]
    if site.ENABLE_USER_SITE and Path(site.getusersitepackages()).is_dir():
        parents.append(site.getusersitepackages())
    source = str(Path(solver.__file__).resolve().parents[1])  # this gpuplan, first
    lines = [source] + [f"import site; site.addsitedir({p!r})" for p in dict.fromkeys(parents)]
    (Path(purelib) / "_gpuplan_parent_env.pth").write_text("\n".join(lines) + "\n")
    return python


def test_the_reference_plugin_installs_with_pip_and_works_end_to_end(tmp_path: Path) -> None:
    started = time.perf_counter()
    python = make_venv(tmp_path / "venv")
    source = tmp_path / "gpuplan-example"  # a copy: building must not litter the repository
    shutil.copytree(REFERENCE_PLUGIN, source,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    env = _clean_env(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")

    def call(*args: str, extra: dict[str, str] | None = None,
             expect: int = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([str(python), *args], capture_output=True, text=True,
                              env={**env, **(extra or {})}, cwd=tmp_path, timeout=120)
        assert done.returncode == expect, f"{args}\n{done.stdout}\n{done.stderr}"
        return done

    call("-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         str(source))
    # gpuplan in the venv finds the plugin through its entry point
    listed = json.loads(call("-m", "solver.cli", "plugins", "list", "--json").stdout)
    example = {p["name"]: p for p in listed["plugins"]}["example"]
    assert (example["distribution"], example["version"]) == ("gpuplan-example", "0.1.0")
    assert example["hooks"] == ["gpuplan_accelerators", "gpuplan_cost_models"]
    assert example["provides"] == {"accelerators": ["example-x1"], "cost_models": ["spot"]}
    hardware = call("-m", "solver.cli", "hardware", "list", "--json")
    assert hardware.stderr == ""
    assert "example-x1" in {a["name"] for a in json.loads(hardware.stdout)["accelerators"]}
    solved = call("-m", "solver.cli", *SMALL_SOLVE, "--gpu", "example-x1", "--objective",
                  "cost", "--cost-model", "spot", "--cost-param", "discount=0.5", "--json")
    plan = json.loads(solved.stdout)
    assert plan["status"] == "optimal" and plan["layout"]["accelerator"] == "example-x1"
    rate = 4.0 * (1 - 0.5) * (1 + 0.1)  # the plugin's price, discount and preemption overhead
    assert plan["estimate"]["cost_usd"] == pytest.approx(plan["estimate"]["gpu_hours"] * rate,
                                                         rel=1e-5)
    # blocked by name, and not loaded at all without autoload
    for extra in ({"GPUPLAN_BLOCK_PLUGINS": "example"}, {"GPUPLAN_DISABLE_PLUGIN_AUTOLOAD": "1"}):
        out = call("-m", "solver.cli", "hardware", "list", "--json", extra=extra).stdout
        assert "example-x1" not in out
    # the plugin's own tests, where it is installed
    tests = call("-m", "pytest", "-q", "-p", "no:cacheprovider", str(source / "tests"))
    assert " passed" in tests.stdout and "failed" not in tests.stdout
    assert time.perf_counter() - started < 90
