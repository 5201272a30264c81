"""Every hook a gpuplan plugin may implement (pluggy). All return lists; any may be left out.

A plugin is a module whose functions carry the ``solver.hookimpl`` marker, registered under the
entry-point group ``gpuplan`` in its distribution's ``pyproject.toml``::

    [project.entry-points.gpuplan]
    acme = "gpuplan_acme.plugin"        # the plugin's name = the entry point's name

The built-in accelerators, models and cost models are plugins of exactly this kind
(``solver.builtin_plugins``). Each hook is called once per process, the first time its catalog
is read, with no arguments. What it returns is validated in one place (``solver.plugins``):
a hook that raises, or returns anything but a list of the named type, is reported on stderr
with the plugin's name and left out; a name that two plugins both provide is an error naming
both. Full guide: ``docs/plugins.md``.
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

    Called once, the first time the accelerator catalog is read (``gpuplan hardware list``,
    ``evaluate``, ``solve``). Return a list of ``solver.Accelerator``; each name (a lower-case
    slug) must be unique across all plugins. Units are in the field names; bandwidths are GB/s
    per accelerator in one direction; ``peak_tflops`` are dense (no sparsity). Leave
    ``scaleout_bw_gb_s``, ``tdp_w`` or ``price_usd_per_hour`` as None when unpublished: groups
    then stay inside the scale-up domain, and energy or cost is not reported. Likewise
    ``host_bw_gb_s`` and ``host_memory_gib`` (the link to the host, GB/s one direction, and
    each accelerator's share of host memory): without them activation offload does not fit.

    Example::

        @solver.hookimpl
        def gpuplan_accelerators():
            return [solver.Accelerator(
                name="acme-x1", vendor="Acme", peak_tflops={"bf16": 500.0, "fp8": 1000.0},
                memory_gib=96, memory_bw_gb_s=3000, scaleup_bw_gb_s=400, scaleup_domain=8,
                scaleout_bw_gb_s=50, tdp_w=700, price_usd_per_hour=3.0,
                sources=["acme.com/x1 datasheet, 2026"])]
    """
    raise AssertionError("hookspec")  # pragma: no cover


@hookspec
def gpuplan_cost_models() -> list[CostModel]:
    """Cost models this plugin adds, selected by name with ``--cost-model NAME`` (or
    ``solve(..., cost_model=NAME)``), their parameters with ``--cost-param KEY=VALUE``.

    Called once, the first time a cost model is looked up (every ``evaluate`` and ``solve``:
    the default is ``cloud``). Return a list of ``solver.CostModel``. The contract, which the
    search's exact pruning and CP-SAT ranking rely on: a plan of ``n`` accelerators of type
    ``a`` for ``h`` hours costs ``rate_usd_per_hour(a, params) * n * h + fixed_usd(a, params)``,
    both finite and >= 0 and independent of the layout. ``rate_usd_per_hour`` returns None (or
    raises ``solver.SpecError`` saying what is missing) when it cannot price ``a``. ``params``
    holds the declared ``CostParam`` s with their defaults, and the shared ``pue``,
    ``utilisation``, ``grid_g_per_kwh`` and ``region``.

    Example (a discount on the on-demand list price)::

        def _rate(acc, params):
            if acc.price_usd_per_hour is None:
                return None
            return acc.price_usd_per_hour * (1.0 - params["discount"])

        @solver.hookimpl
        def gpuplan_cost_models():
            return [solver.CostModel(
                name="reserved", description="3-year commitment", rate_usd_per_hour=_rate,
                params=(solver.CostParam("discount", 0.5, "fraction off the list price",
                                         maximum=1.0),))]
    """
    raise AssertionError("hookspec")  # pragma: no cover


@hookspec
def gpuplan_models() -> list[ModelSpec]:
    """Model presets this plugin adds (``--model NAME``).

    Called once, the first time the model catalog is read (``gpuplan models list``, any
    ``--model``). Return a list of ``solver.ModelSpec``; names must be unique across plugins.

    Example::

        @solver.hookimpl
        def gpuplan_models():
            return [solver.ModelSpec(name="tiny", layers=2, hidden=256, heads=4,
                                     sources=("made up",))]
    """
    raise AssertionError("hookspec")  # pragma: no cover
