"""Cost models: what a plan costs, in the one form the search can use exactly.

A cost model (``solver.CostModel``, provided by plugins through ``gpuplan_cost_models``) prices
a plan on accelerator type ``a`` with ``n`` accelerators running for ``h`` hours as

    cost = rate_usd_per_hour(a, params) * n * h + fixed_usd(a, params)

``rate_usd_per_hour`` is USD per accelerator-hour, ``fixed_usd`` USD once per plan; both depend
only on the accelerator type and the model's parameters, never on the layout, and both are
finite and >= 0. The search relies on this: for one accelerator type, cost then grows with the
GPU count and with the training time, so a layout that is no better on both can be dropped
before CP-SAT runs without losing the cheapest plan (``docs/solver.md``, "Pruning"), and cost is
a fixed linear function of GPU-hours per accelerator type, which CP-SAT ranks exactly. Anything
a cost model needs beyond that (discounts, amortisation, energy prices) goes into the rate.

Parameters: each model declares its ``CostParam`` s (name, default, description); every model
also takes the shared energy and carbon keys of ``solver.footprint`` (``pue``, ``utilisation``,
``grid_g_per_kwh``, ``region``). They come as a mapping, ``{"life_years": 4}`` in the library
and ``--cost-param life_years=4`` on the command line, so a scenario file can give them as a
table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from solver import footprint
from solver.errors import PluginError, SpecError
from solver.footprint import Footprint
from solver.specs import Accelerator
from solver.validate import as_name, fail

#: The cost model used when none is named: on-demand cloud prices.
DEFAULT_COST_MODEL = "cloud"

Params = Mapping[str, Any]
RateFn = Callable[[Accelerator, Params], "float | None"]
FixedFn = Callable[[Accelerator, Params], float]


def no_fixed_cost(accelerator: Accelerator, params: Params) -> float:
    """The default ``fixed_usd``: nothing per plan."""
    return 0.0


@dataclass(frozen=True)
class CostParam:
    """One parameter of a cost model.

    ``default`` None means "no default": the model decides what its absence means (for example
    falling back to a field of the accelerator). ``text`` parameters keep their string value;
    the others are numbers in ``[minimum, maximum]``.
    """

    name: str
    default: float | str | None
    description: str
    minimum: float = 0.0
    maximum: float = 1e15
    text: bool = False

    def __post_init__(self) -> None:
        name = as_name("name", self.name)
        if not name.isidentifier() or name != name.lower():
            raise fail("name", "a lower-case identifier such as life_years", name)
        if not isinstance(self.description, str):
            raise fail("description", "a string", self.description)
        if self.default is not None and not self.text:
            object.__setattr__(self, "default", self.convert(self.default))

    def convert(self, value: Any) -> float | str:
        """The checked value of this parameter (strings from the command line are parsed)."""
        if self.text:
            if not isinstance(value, str) or not value.strip():
                raise SpecError(f"cost_params: {self.name}: expected a non-empty text, "
                                f"got {value!r}")
            return value.strip()
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise SpecError(f"cost_params: {self.name}: expected a number, "
                                f"got {value[:60]!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value) or not self.minimum <= value <= self.maximum:
            raise SpecError(f"cost_params: {self.name}: expected a number in "
                            f"[{self.minimum:g}, {self.maximum:g}], got {value!r}")
        return float(value)


@dataclass(frozen=True)
class CostModel:
    """How a plan is priced: a rate per accelerator-hour plus a fixed cost per plan.

    ``rate_usd_per_hour(accelerator, params)`` returns USD per accelerator-hour (finite,
    >= 0), or None when this accelerator cannot be priced (it is then left out wherever a cost
    is needed; raising ``solver.SpecError`` does the same and its message says why).
    ``fixed_usd(accelerator, params)`` returns USD once per plan (finite, >= 0).
    ``params`` holds the model's own parameters (with their defaults filled in) and the shared
    ``pue``, ``utilisation``, ``grid_g_per_kwh`` and ``region``. See the module docstring for
    why the contract is exactly this.
    """

    name: str
    description: str
    rate_usd_per_hour: RateFn
    fixed_usd: FixedFn = no_fixed_cost
    params: tuple[CostParam, ...] = ()
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        name = as_name("name", self.name)
        if name != name.lower() or any(c.isspace() for c in name):
            raise fail("name", "a lower-case slug such as cloud", name)
        if not isinstance(self.description, str):
            raise fail("description", "a string", self.description)
        for fn_name in ("rate_usd_per_hour", "fixed_usd"):
            if not callable(getattr(self, fn_name)):
                raise fail(fn_name, "a function (accelerator, params) -> USD",
                           getattr(self, fn_name))
        params = tuple(self.params)
        if not all(isinstance(p, CostParam) for p in params):
            raise fail("params", "a list of solver.CostParam", params)
        names = [p.name for p in params]
        clash = sorted(set(names) & set(footprint.PARAMS))
        if clash:
            raise fail("params", "names other than the shared " + ", ".join(footprint.PARAMS),
                       clash[0])
        if len(set(names)) != len(names):
            raise fail("params", "distinct names", names)
        object.__setattr__(self, "params", params)
        if isinstance(self.sources, str) or not all(isinstance(s, str) for s in self.sources):
            raise fail("sources", "a list of citation strings", self.sources)
        object.__setattr__(self, "sources", tuple(self.sources))

    def param_names(self) -> tuple[str, ...]:
        return (*(p.name for p in self.params), *footprint.PARAMS)

    def resolve_params(self, given: Params) -> dict[str, Any]:
        """This model's parameters from ``given`` (defaults filled in); unknown keys raise."""
        known = {p.name: p for p in self.params}
        for key in given:
            if not isinstance(key, str) or (key not in known and key not in footprint.PARAMS):
                raise SpecError(f"cost_params: unknown key {key!r} for cost model {self.name!r}"
                                f" (known: {', '.join(self.param_names())})")
        return {name: (p.convert(given[name]) if name in given else p.default)
                for name, p in known.items()}


@dataclass(frozen=True)
class Price:
    """What a cost basis says about one accelerator type."""

    rate_usd_per_hour: float | None
    fixed_usd: float | None
    why_not: str = ""  # when the rate is None: what is missing


@dataclass(frozen=True)
class CostBasis:
    """A cost model with its parameters resolved, and the energy and carbon footprint: all
    that the step model needs to put cost, energy and CO2 on a plan."""

    model: CostModel | None
    provider: str
    params: Mapping[str, Any]
    footprint: Footprint
    named: bool = False  # the model was named (rather than the default)
    custom: bool = False  # the model was named or parameters were given
    _prices: dict[str, Price] = field(default_factory=dict, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.model.name if self.model else "none"

    def price(self, acc: Accelerator) -> Price:
        """The rate and fixed cost of ``acc``, validated against the contract."""
        cached = self._prices.get(acc.name)
        if cached is None:
            cached = self._price(acc)
            self._prices[acc.name] = cached
        return cached

    def _price(self, acc: Accelerator) -> Price:
        if self.model is None:
            return Price(None, None, "no cost model is registered (is the costs plugin "
                                     "blocked?)")
        model, params = self.model, self.params
        try:
            rate = model.rate_usd_per_hour(acc, params)
            fixed = model.fixed_usd(acc, params) if rate is not None else None
        except SpecError as err:
            return Price(None, None, str(err))
        except Exception as err:  # a faulty plugin: named, never a traceback
            raise PluginError(f"cost model {model.name!r} (plugin {self.provider!r}) raised "
                              f"{type(err).__name__} for {acc.name}: {err}") from None
        if rate is None:
            return Price(None, None, f"cost model {model.name!r} has no price for {acc.name}")
        for what, value in (("rate_usd_per_hour", rate), ("fixed_usd", fixed)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value < 0:
                raise PluginError(f"cost model {model.name!r} (plugin {self.provider!r}): "
                                  f"{what}({acc.name}) returned {value!r}; expected a finite "
                                  f"number >= 0")
        return Price(float(rate), float(fixed or 0.0))

    def summary(self) -> str:
        """One line: the cost model, its parameters and the footprint's basis."""
        own = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in self.params.items()
                        if k not in footprint.PARAMS and v is not None)
        fp = self.footprint
        return (f"cost model {self.name}" + (f" ({own})" if own else "")
                + f"; energy at PUE {fp.pue:g}, utilisation {fp.utilisation:g} of TDP; CO2 at "
                f"{fp.grid_g_per_kwh:g} gCO2/kWh ({fp.basis})")


def no_power(acc: Accelerator) -> str:
    """Why ``acc`` has no energy figure, and what to do about it (one clause)."""
    return (f"{acc.name} has no published power figure (tdp_w, docs/prices.md), which energy "
            "needs; give one in an accelerator file of your own (GPUPLAN_HARDWARE_PATH, "
            "docs/plugins.md)")


def require_figures(accs: Sequence[Accelerator], basis: CostBasis, *, price: bool,
                    power: bool) -> None:
    """Refuse a question that needs a price (``price``: objective cost, a budget) or a power
    figure (``power``: objective energy) that none of the candidates ``accs`` has.

    A ``SpecError`` (exit 2 on the command line) naming each accelerator and what it lacks,
    rather than a search over no candidates that would be reported "infeasible", as though
    proven impossible. When one candidate has the figures the question is searched, and the
    others are left out with a note (``solver.search.solve.select_accelerators``).
    """
    reasons: dict[str, str] = {}  # accelerator -> why it cannot answer
    key = "accelerators"  # the input the message names
    for acc in sorted(accs, key=lambda a: a.name):
        if price:
            found = basis.price(acc)
            if found.rate_usd_per_hour is None:
                reasons[acc.name] = found.why_not
                if basis.named:  # the named cost model is what cannot price it
                    key = "cost_model"
                continue
        if power and acc.tdp_w is None:
            reasons[acc.name] = no_power(acc)
            continue
        return
    if not reasons:
        return
    names = list(reasons)
    rests = {why.removeprefix(f"{name} has ") for name, why in reasons.items()}
    if len(names) > 1 and len(rests) == 1 and all(
            why.startswith(f"{name} has ") for name, why in reasons.items()):
        text = f"{', '.join(names[:-1])} and {names[-1]} have {rests.pop()}"
    else:
        text = "; ".join(reasons.values())
    raise SpecError(f"{key}: {text}")


def resolve(cost_model: str | CostModel | CostBasis | None = None,
            cost_params: Params | None = None) -> CostBasis:
    """The cost basis for ``cost_model`` (a name, a ``CostModel``, or None for the default,
    ``cloud``) and ``cost_params``. Unknown names, keys and bad values raise ``SpecError``."""
    from solver import catalog  # the catalog reads plugins: only when a basis is built

    if isinstance(cost_model, CostBasis):
        if cost_params:
            raise SpecError("cost_params: already resolved in the given cost basis")
        return cost_model
    if cost_params is not None and not isinstance(cost_params, Mapping):
        raise fail("cost_params", "a table of KEY = VALUE", cost_params)
    given = dict(cost_params or {})
    if cost_model is None:
        found = catalog.cost_model_entries().get(DEFAULT_COST_MODEL)
        model, provider = found if found else (None, "")
    elif isinstance(cost_model, CostModel):
        model, provider = cost_model, "(given)"
    elif isinstance(cost_model, str):
        model = catalog.cost_model(cost_model, field="cost_model")
        provider = catalog.cost_model_entries()[model.name][1]
    else:
        raise fail("cost_model", "a cost model name", cost_model)
    if model is not None:
        params = model.resolve_params(given)
    else:
        unknown = sorted(set(given) - set(footprint.PARAMS))
        if unknown:
            raise SpecError(f"cost_params: unknown key {unknown[0]!r} (no cost model is "
                            f"registered; known: {', '.join(footprint.PARAMS)})")
        params = {}
    fp = footprint.from_params(given)
    return CostBasis(model, provider, {**params, **fp.as_params()}, fp,
                     named=cost_model is not None, custom=cost_model is not None or bool(given))


__all__ = ["DEFAULT_COST_MODEL", "CostBasis", "CostModel", "CostParam", "Price", "no_power",
           "require_figures", "resolve"]
