"""Exceptions raised by the gpuplan library.

The CLI maps each to a one-line message and an exit code (docs/interface.md): ``SpecError`` is
invalid input (exit 2). The library itself never prints.
"""

from __future__ import annotations


class SpecError(ValueError):
    """Invalid input. The message names the field, the expected form and what was given."""


class PluginError(RuntimeError):
    """A plugin conflicts with another (two providers of one name)."""
