"""The plugin manager and the one place that collects and validates what plugins return.

The manager is built lazily, on first use, by ``plugin_manager()`` (never at import time).
Discovery order: the built-in plugins (``solver.builtin_plugins.BUILTIN``), then every entry
point of the group ``gpuplan`` unless ``GPUPLAN_DISABLE_PLUGIN_AUTOLOAD=1``. Any plugin,
built-in or not, can be blocked by name with ``GPUPLAN_BLOCK_PLUGINS=name1,name2``.

A plugin whose hook raises, or returns something that is not a list of the right objects, is
reported (``problems()``, shown on stderr by the CLI) and left out; the others keep working.
Two plugins that provide the same name are an error naming both.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from typing import Any, TypeVar

import pluggy

from solver import hookspecs
from solver.errors import PluginError, SpecError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "gpuplan"
BUILTIN = ("solver.builtin_plugins.hardware", "solver.builtin_plugins.models")

T = TypeVar("T")


@dataclass(frozen=True)
class PluginInfo:
    """What ``gpuplan plugins list`` shows about one registered plugin."""

    name: str
    distribution: str
    version: str
    hooks: tuple[str, ...]
    builtin: bool


_problems: list[str] = []
_infos: dict[str, PluginInfo] = {}


def _blocked() -> set[str]:
    raw = os.environ.get("GPUPLAN_BLOCK_PLUGINS", "")
    return {name.strip() for name in raw.split(",") if name.strip()}


def _hooks_of(module: object) -> tuple[str, ...]:
    return tuple(sorted(n for n in dir(module) if n.startswith("gpuplan_")))


def register(pm: pluggy.PluginManager, module: object, name: str, *, distribution: str,
             version: str, builtin: bool) -> None:
    """Register one plugin module: the single path for built-in and third-party plugins."""
    if name in _blocked():
        pm.set_blocked(name)
        log.info("plugin %s blocked by GPUPLAN_BLOCK_PLUGINS", name)
        return
    pm.register(module, name=name)
    _infos[name] = PluginInfo(name, distribution, version, _hooks_of(module), builtin)


@cache
def plugin_manager() -> pluggy.PluginManager:
    """Build the manager once: built-ins, then the ``gpuplan`` entry points."""
    from solver import __version__

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for module_name in BUILTIN:
        register(pm, importlib.import_module(module_name), module_name.rsplit(".", 1)[-1],
                 distribution="gpuplan", version=__version__, builtin=True)
    if os.environ.get("GPUPLAN_DISABLE_PLUGIN_AUTOLOAD", "") in ("", "0"):
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist else "?"
            version = ep.dist.version if ep.dist else "?"
            if ep.name in _blocked():
                register(pm, object(), ep.name, distribution=dist, version=version,
                         builtin=False)
                continue
            try:
                module = ep.load()
                register(pm, module, ep.name, distribution=dist, version=version, builtin=False)
            except Exception as err:  # a broken plugin must not take the others down
                _problems.append(f"plugin {ep.name!r} ({dist}) failed to load: {err}")
    return pm


def reset() -> None:
    """Forget the manager and what it collected (tests and long-lived processes)."""
    plugin_manager.cache_clear()
    _collected.clear()
    _problems.clear()
    _infos.clear()


def report(problem: str) -> None:
    """Record a left-out plugin or file (shown once on stderr by the CLI)."""
    if problem not in _problems:
        _problems.append(problem)


def problems() -> list[str]:
    """Plugins reported and left out so far, one line each."""
    return list(_problems)


def plugin_infos() -> list[PluginInfo]:
    plugin_manager()
    return [_infos[n] for n in sorted(_infos)]


def _call_each(hook_name: str) -> Iterator[tuple[str, Any]]:
    pm = plugin_manager()
    caller = getattr(pm.hook, hook_name)
    for impl in caller.get_hookimpls():
        name = pm.get_name(impl.plugin) or "?"
        try:
            yield name, impl.function()
        except Exception as err:  # reported by name and left out
            _problems.append(f"plugin {name!r}: {hook_name}() raised {type(err).__name__}: {err}")


_collected: dict[str, dict[str, tuple[Any, str]]] = {}


def collect(hook_name: str, kind: type[T], key: Callable[[T], str]) -> dict[str, tuple[T, str]]:
    """Call ``hook_name`` on every plugin once; validate; return ``{name: (object, plugin)}``."""
    if hook_name not in _collected:
        _collected[hook_name] = _collect(hook_name, kind, key)
    return _collected[hook_name]


def _collect(hook_name: str, kind: type[Any], key: Callable[[Any], str]
             ) -> dict[str, tuple[Any, str]]:
    found: dict[str, tuple[Any, str]] = {}
    for plugin, result in _call_each(hook_name):
        if result is None:
            continue
        if not isinstance(result, (list, tuple)) or not all(isinstance(r, kind) for r in result):
            _problems.append(f"plugin {plugin!r}: {hook_name}() must return a list of "
                             f"{kind.__name__}, got {type(result).__name__}")
            continue
        for item in result:
            name = key(item)
            if name in found:
                raise PluginError(f"{kind.__name__} {name!r} is provided by both plugin "
                                  f"{found[name][1]!r} and plugin {plugin!r}")
            found[name] = (item, plugin)
    return found


__all__ = ["PluginError", "SpecError", "collect", "plugin_infos", "plugin_manager", "problems",
           "register", "reset"]
