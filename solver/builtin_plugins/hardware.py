"""Built-in plugin: the accelerators of ``hardware_specs/*.toml`` (shipped inside the wheel) and
of every folder named by ``GPUPLAN_HARDWARE_PATH``.

A malformed user file is named and left out, like a faulty plugin.
"""

from __future__ import annotations

import importlib.resources
import os
from importlib.resources.abc import Traversable
from pathlib import Path

from solver import plugins
from solver.errors import SpecError
from solver.hookspecs import hookimpl
from solver.specs import Accelerator


def shipped_specs() -> list[Accelerator]:
    """The accelerators of ``hardware_specs/``.

    In a wheel they are the data package ``solver.hardware_specs`` (read with
    ``importlib.resources``); in a source checkout, the folder beside ``solver/``.
    """
    try:
        folder: Traversable = importlib.resources.files("solver.hardware_specs")
    except ModuleNotFoundError:
        folder = Path(__file__).resolve().parents[2] / "hardware_specs"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".toml")),
                   key=lambda f: f.name)
    return [Accelerator.from_toml_bytes(f.read_bytes(), where=f"hardware_specs/{f.name}")
            for f in files]


def user_spec_files() -> list[Path]:
    files: list[Path] = []
    for folder in os.environ.get("GPUPLAN_HARDWARE_PATH", "").split(os.pathsep):
        if folder.strip() and Path(folder).is_dir():
            files.extend(sorted(Path(folder).glob("*.toml")))
    return files


@hookimpl
def gpuplan_accelerators() -> list[Accelerator]:
    found = shipped_specs()
    names = {a.name: "hardware_specs" for a in found}
    for path in user_spec_files():
        try:
            acc = Accelerator.from_toml(path)
        except SpecError as err:
            plugins.report(f"GPUPLAN_HARDWARE_PATH: {err} (left out)")
            continue
        if acc.name in names:
            plugins.report(f"GPUPLAN_HARDWARE_PATH: {path}: accelerator {acc.name!r} is "
                           f"already defined by {names[acc.name]}; rename it (left out)")
            continue
        names[acc.name] = str(path)
        found.append(acc)
    return found
