"""Every hook a gpuplan plugin may implement (pluggy). All return lists; any may be left out.

A plugin is a module whose functions carry the ``solver.hookimpl`` marker, registered under the
entry-point group ``gpuplan`` in its distribution's ``pyproject.toml``::

    [project.entry-points.gpuplan]
    my_accelerators = "my_package.plugin"

The built-in accelerators and models are plugins of exactly this kind (``solver.builtin_plugins``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from solver.costs import CostModel
    from solver.specs import Accelerator, ModelSpec

PROJECT = "gpuplan"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def gpuplan_accelerators() -> list[Accelerator]:
    """Accelerators this plugin adds to the catalog.

    Called once, the first time the catalog is read (``gpuplan hardware list``, ``evaluate``,
    ``solve``). Return ``solver.Accelerator`` objects; names must be unique across all plugins.

    Example::

        @solver.hookimpl
        def gpuplan_accelerators():
            return [solver.Accelerator(name="acme-x1", vendor="Acme",
                                       peak_tflops={"bf16": 500.0}, memory_gib=96,
                                       memory_bw_gb_s=3000, scaleup_bw_gb_s=400,
                                       scaleup_domain=8, scaleout_bw_gb_s=50, tdp_w=700,
                                       price_usd_per_hour=3.0, sources=["acme.com/x1"])]
    """
    raise AssertionError("hookspec")  # pragma: no cover


@hookspec
def gpuplan_cost_models() -> list[CostModel]:
    """Cost models this plugin adds, selected by name with ``--cost-model``.

    Called when a cost is computed. Return ``solver.CostModel`` objects (see ``docs/plugins.md``).
    """
    raise AssertionError("hookspec")  # pragma: no cover


@hookspec
def gpuplan_models() -> list[ModelSpec]:
    """Model presets this plugin adds (``--model NAME``).

    Called once, the first time the model catalog is read. Example::

        @solver.hookimpl
        def gpuplan_models():
            return [solver.ModelSpec(name="tiny", layers=2, hidden=256, heads=4)]
    """
    raise AssertionError("hookspec")  # pragma: no cover
