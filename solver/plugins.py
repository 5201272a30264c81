"""The plugin manager and the one place that collects and validates what plugins return.

The manager is built lazily, on first use, by ``plugin_manager()`` (never at import time).
Discovery order: the built-in plugins (``BUILTIN``: hardware, models, costs), then every entry
point of the group ``gpuplan`` in name order, unless ``GPUPLAN_DISABLE_PLUGIN_AUTOLOAD=1``.
Any plugin, built-in or not, can be blocked by name with ``GPUPLAN_BLOCK_PLUGINS=name1,name2``
(a plugin's name is its entry-point name; the built-ins are ``hardware``, ``models`` and
``costs``). ``register_module()`` adds an in-process plugin (tests, notebooks) through the same
path.

A plugin that fails to load, whose hook raises, or whose hook returns something that is not a
list of the right objects is reported (``problems()``, shown on stderr by the CLI) and left
out; the others keep working. Two plugins that provide the same name are an error naming both.
"""

from __future__ import annotations

import dataclasses
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
BUILTIN = ("solver.builtin_plugins.hardware", "solver.builtin_plugins.models",
           "solver.builtin_plugins.costs")
#: Every hook a plugin may implement (``solver/hookspecs.py``).
HOOKS = tuple(sorted(n for n in dir(hookspecs) if n.startswith(f"{hookspecs.PROJECT}_")))

T = TypeVar("T")


@dataclass(frozen=True)
class PluginInfo:
    """What ``gpuplan plugins list`` shows about one plugin.

    ``status`` is ``active``, ``blocked`` (by ``GPUPLAN_BLOCK_PLUGINS``), ``failed`` (it could
    not be loaded or registered) or ``error`` (a hook raised or returned something malformed
    and was left out); ``problems()`` says why.
    """

    name: str
    distribution: str
    version: str
    hooks: tuple[str, ...]
    builtin: bool
    status: str = "active"


_problems: list[str] = []
_infos: dict[str, PluginInfo] = {}
_left_out: dict[str, set[str]] = {}  # plugin -> hooks whose answer was left out


def _blocked() -> set[str]:
    raw = os.environ.get("GPUPLAN_BLOCK_PLUGINS", "")
    return {name.strip() for name in raw.split(",") if name.strip()}


def autoload_disabled() -> bool:
    """True when ``GPUPLAN_DISABLE_PLUGIN_AUTOLOAD`` is set (to anything but 0/false/no)."""
    value = os.environ.get("GPUPLAN_DISABLE_PLUGIN_AUTOLOAD", "").strip().lower()
    return value not in ("", "0", "false", "no")


def _label(name: str) -> str:
    """``'name' (distribution version)`` for messages."""
    info = _infos.get(name)
    if info is None or info.builtin:
        return repr(name)
    return f"{name!r} ({info.distribution} {info.version})"


def _marked_hooks(pm: pluggy.PluginManager, module: object) -> tuple[str, ...]:
    return tuple(sorted(n for n in dir(module)
                        if n.startswith(f"{hookspecs.PROJECT}_")
                        and pm.parse_hookimpl_opts(module, n) is not None))


def register(pm: pluggy.PluginManager, module: object, name: str, *, distribution: str,
             version: str, builtin: bool) -> None:
    """Register one plugin module: the single path for built-in and third-party plugins.

    Hook functions must carry the ``solver.hookimpl`` marker; a function named like a hook but
    unmarked, or a marked function that is no gpuplan hook, is reported (it would silently do
    nothing otherwise).
    """
    if name in _blocked():
        pm.set_blocked(name)
        _infos[name] = PluginInfo(name, distribution, version, (), builtin, "blocked")
        log.info("plugin %s blocked by GPUPLAN_BLOCK_PLUGINS", name)
        return
    where = repr(name) if builtin else f"{name!r} ({distribution} {version})"
    if name in _infos or pm.has_plugin(name):
        other = _infos.get(name)
        by = f"{other.distribution} {other.version}" if other else "another plugin"
        report(f"plugin {where}: the name {name!r} is already taken by {by}; left out")
        return
    marked = _marked_hooks(pm, module)
    for hook in marked:
        if hook not in HOOKS:
            report(f"plugin {where}: {hook} is not a gpuplan hook (known: {', '.join(HOOKS)})"
                   f"; ignored")
    for hook in HOOKS:
        if hook not in marked and callable(getattr(module, hook, None)):
            report(f"plugin {where}: {hook}() is not marked with @solver.hookimpl; ignored")
    try:
        pm.register(module, name=name)
    except Exception as err:  # pluggy's validation (wrong hook arguments) and the like
        report(f"plugin {where} could not be registered: {err}")
        _infos[name] = PluginInfo(name, distribution, version, marked, builtin, "failed")
        return
    _infos[name] = PluginInfo(name, distribution, version,
                              tuple(h for h in marked if h in HOOKS), builtin)


def _entry_points() -> list[metadata.EntryPoint]:
    """The ``gpuplan`` entry points in name order, each (name, value, distribution) once."""
    seen: set[tuple[str, str, str]] = set()
    found = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist else "?"
        key = (ep.name, ep.value, dist)
        if key not in seen:
            seen.add(key)
            found.append(ep)
    return sorted(found, key=lambda ep: (ep.name, ep.value))


@cache
def plugin_manager() -> pluggy.PluginManager:
    """Build the manager once: built-ins, then the ``gpuplan`` entry points."""
    from solver import __version__

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for module_name in BUILTIN:
        register(pm, importlib.import_module(module_name), module_name.rsplit(".", 1)[-1],
                 distribution="gpuplan", version=__version__, builtin=True)
    if autoload_disabled():
        log.info("GPUPLAN_DISABLE_PLUGIN_AUTOLOAD: entry points not loaded")
        return pm
    for ep in _entry_points():
        dist = ep.dist.name if ep.dist else "?"
        version = ep.dist.version if ep.dist else "?"
        if ep.name in _blocked():
            register(pm, None, ep.name, distribution=dist, version=version, builtin=False)
            continue
        try:
            module = ep.load()
        except Exception as err:  # a broken plugin must not take the others down
            report(f"plugin {ep.name!r} ({dist} {version}) failed to load: "
                   f"{type(err).__name__}: {err}")
            _infos.setdefault(ep.name, PluginInfo(ep.name, dist, version, (), False, "failed"))
            continue
        register(pm, module, ep.name, distribution=dist, version=version, builtin=False)
    return pm


def register_module(module: object, name: str, *, distribution: str = "(in-process)",
                    version: str = "") -> None:
    """Add a plugin module in this process (tests, notebooks), through the same ``register()``
    path as entry points. What plugins provide is collected again on next use."""
    register(plugin_manager(), module, name, distribution=distribution, version=version,
             builtin=False)
    _collected.clear()


def reset() -> None:
    """Forget the manager and what it collected (tests and long-lived processes)."""
    plugin_manager.cache_clear()
    _collected.clear()
    _problems.clear()
    _infos.clear()
    _left_out.clear()


def report(problem: str) -> None:
    """Record a left-out plugin or file (shown once on stderr by the CLI)."""
    if problem not in _problems:
        _problems.append(problem)


def problems() -> list[str]:
    """Plugins reported and left out so far, one line each."""
    return list(_problems)


def plugin_infos() -> list[PluginInfo]:
    """Every plugin seen, in discovery order (built-ins first). A hook left out so far marks
    its plugin's status ``error``."""
    plugin_manager()
    return [dataclasses.replace(i, status="error") if i.status == "active" and i.name in _left_out
            else i for i in _infos.values()]


def _leave_out(plugin: str, hook_name: str, problem: str) -> None:
    _left_out.setdefault(plugin, set()).add(hook_name)
    report(problem)


def _call_each(hook_name: str) -> Iterator[tuple[str, Any]]:
    pm = plugin_manager()
    caller = getattr(pm.hook, hook_name)
    impls = sorted(caller.get_hookimpls(), key=lambda i: list(_infos).index(i.plugin_name)
                   if i.plugin_name in _infos else len(_infos))
    for impl in impls:
        name = impl.plugin_name
        try:
            yield name, impl.function()
        except Exception as err:  # reported by name and left out
            _leave_out(name, hook_name, f"plugin {_label(name)}: {hook_name}() raised "
                       f"{type(err).__name__}: {err}; left out")


_collected: dict[str, dict[str, tuple[Any, str]]] = {}


def collect(hook_name: str, kind: type[T], key: Callable[[T], str]) -> dict[str, tuple[T, str]]:
    """Call ``hook_name`` on every plugin once; validate; return ``{name: (object, plugin)}``.

    A plugin's answer must be a list (or tuple) of ``kind`` with distinct names, else the whole
    answer is reported and left out. A name given by two plugins raises ``PluginError``.
    """
    if hook_name not in _collected:
        _collected[hook_name] = _collect(hook_name, kind, key)
    return _collected[hook_name]


def _collect(hook_name: str, kind: type[Any], key: Callable[[Any], str]
             ) -> dict[str, tuple[Any, str]]:
    found: dict[str, tuple[Any, str]] = {}
    for plugin, result in _call_each(hook_name):
        if result is None:
            continue
        if not isinstance(result, (list, tuple)):
            _leave_out(plugin, hook_name, f"plugin {_label(plugin)}: {hook_name}() must return "
                       f"a list of solver.{kind.__name__}, got {type(result).__name__}; left out")
            continue
        wrong = [r for r in result if not isinstance(r, kind)]
        if wrong:
            _leave_out(plugin, hook_name, f"plugin {_label(plugin)}: {hook_name}() must return "
                       f"a list of solver.{kind.__name__}, got a {type(wrong[0]).__name__} in "
                       f"it; left out")
            continue
        names = [key(item) for item in result]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            _leave_out(plugin, hook_name, f"plugin {_label(plugin)}: {hook_name}() gives "
                       f"{kind.__name__} {twice[0]!r} twice; left out")
            continue
        for name, item in zip(names, result, strict=True):
            if name in found:
                raise PluginError(f"{kind.__name__} {name!r} is provided by both plugin "
                                  f"{_label(found[name][1])} and plugin {_label(plugin)}; "
                                  f"uninstall or block one (GPUPLAN_BLOCK_PLUGINS)")
            found[name] = (item, plugin)
    return found


__all__ = ["BUILTIN", "ENTRY_POINT_GROUP", "HOOKS", "PluginError", "PluginInfo", "SpecError",
           "autoload_disabled", "collect", "plugin_infos", "plugin_manager", "problems",
           "register", "register_module", "report", "reset"]
