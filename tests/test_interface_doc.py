"""docs/interface.md lists every key the ``--json`` outputs print.

Each command is run on a small question and its JSON flattened into dotted paths (a list of
objects becomes ``name[]``); every path must appear in the page as a backticked name, either
whole or without its leading ``list[].`` (the page documents ``layouts[]`` of ``compare`` and
``points[]`` of ``pareto`` as "each exactly as ``evaluate``/``solve`` prints it"). A key added to
the output without a line in the page fails here, naming the key.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from solver.cli import run

DOC = Path(__file__).resolve().parent.parent / "docs" / "interface.md"

QUESTION = ["--model", "llama3-8b", "--tokens", "1e12"]
COMMANDS = {
    "evaluate": ["evaluate", *QUESTION, "--global-batch", "512", "--gpu", "h100-sxm5-80gb",
                 "--tp", "1", "--pp", "1", "--dp", "8", "--zero", "2"],
    "solve": ["solve", *QUESTION, "--gpu", "h100-sxm5-80gb", "--gpus", "8", "--top", "2",
              "--time-limit", "30"],
    "solve --export": ["solve", *QUESTION, "--gpu", "h100-sxm5-80gb", "--gpus", "8",
                       "--export", "megatron", "--time-limit", "30"],
    "compare": ["compare", *QUESTION, "--global-batch", "512",
                "h100-sxm5-80gb tp=1 pp=1 dp=8 zero=2", "h100-sxm5-80gb tp=2 pp=1 dp=4 zero=1"],
    "pareto": ["pareto", *QUESTION, "--gpu", "h100-sxm5-80gb", "--max-gpus", "64",
               "--points", "3", "--time-limit", "30"],
    "fleet": ["fleet", str(Path(__file__).resolve().parent.parent / "examples"
                           / "fleets" / "three-runs.toml"), "--time-limit-s", "30"],
    "hardware list": ["hardware", "list"],
    "hardware show": ["hardware", "show", "h100"],
    "models list": ["models", "list"],
    "models show": ["models", "show", "deepseek-v3"],
    "plugins list": ["plugins", "list"],
}
#: Objects whose keys are names (of plugins' accelerators, models, cost models), not fields.
FREE_FORM = {"plugins[].provides"}
#: Objects that print a library dataclass's fields (a plan's ``question``): each key must be
#: documented, as that field, in the Library tables (longest prefix first).
FIELD_OBJECTS = ("question.job.model.", "question.limits.", "question.job.",
                 "question.solve.", "question.cost_params.")


def documented_as(path: str, names: set[str]) -> bool:
    """The key is listed whole, without a leading ``list[].``, or as a dataclass field."""
    inner = re.sub(r"^[a-z_]+\[\]\.", "", path)
    if path in names or inner in names:
        return True
    for prefix in FIELD_OBJECTS:
        if inner.startswith(prefix):
            return inner[len(prefix):].split(".")[0] in names
    return False


def documented() -> set[str]:
    return set(re.findall(r"`([A-Za-z_][A-Za-z0-9_.\[\]]*)`", DOC.read_text(encoding="utf-8")))


def paths(value: Any, prefix: str = "") -> list[str]:
    if prefix in FREE_FORM:
        return [prefix]
    if isinstance(value, dict):
        found = [prefix] if prefix and not prefix.endswith("[]") else []
        for key, item in value.items():
            found += paths(item, f"{prefix}.{key}" if prefix else key)
        return found
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        found = [prefix]
        for item in value:
            found += paths(item, f"{prefix}[]")
        return found
    return [prefix]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_json_key_is_in_interface_md(command: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code = run([*COMMANDS[command], "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads(captured.out)
    names = documented()
    missing = sorted(p for p in set(paths(data)) if not documented_as(p, names))
    assert not missing, f"gpuplan {command} --json prints keys docs/interface.md does not list: " \
                        f"{missing}"


def test_interface_md_is_self_contained() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert "../shared" not in text and "INTERFACE.md" not in text
