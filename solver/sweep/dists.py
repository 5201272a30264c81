"""Random draws of a sweep's ``[draw]`` table: the distributions and their parameters.

| dist | parameters | a draw |
|---|---|---|
| ``uniform`` | ``low``, ``high`` | uniform on [low, high) |
| ``loguniform`` | ``low``, ``high`` (> 0) | ``exp`` of a uniform on [ln low, ln high) |
| ``normal`` | ``mean``, ``sd`` | Gaussian |
| ``lognormal`` | ``median``, ``sigma`` | ``median * exp(sigma * N(0, 1))`` |
| ``triangular`` | ``low``, ``mode``, ``high`` | triangular |
| ``choice`` | ``values``, optional ``weights`` | one of the values |

Each drawn number is rounded to six significant digits (the table shows the value that was
used) and then checked as a file value would be (``check_value``): a normal draw of a
failure rate that comes out negative is an error naming the key and the draw, so a
distribution that can leave the key's range needs bounds of its own (``lognormal`` for
positive quantities). NumPy's ``Generator`` methods are the samplers
(https://numpy.org/doc/stable/reference/random/generator.html).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from solver.errors import SpecError
from solver.validate import as_choice, fail, unknown_name

#: Each distribution's parameters, in the order the sampler takes them.
DISTS: dict[str, tuple[str, ...]] = {
    "uniform": ("low", "high"),
    "loguniform": ("low", "high"),
    "normal": ("mean", "sd"),
    "lognormal": ("median", "sigma"),
    "triangular": ("low", "mode", "high"),
    "choice": ("values", "weights"),
}


def number(label: str, value: Any) -> float:
    """A finite number (int or float, not bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
            value):
        raise fail(label, "a finite number", value)
    return float(value)


@dataclass(frozen=True)
class DrawAxis:
    """One drawn input: the scenario key, its distribution and parameters (``choice``: the
    checked values and their weights, and the values as written for the table)."""

    key: str
    dist: str
    params: tuple[Any, ...]
    choices: tuple[Any, ...] = ()
    shown: tuple[Any, ...] = ()

    def sample(self, rng: np.random.Generator) -> tuple[Any, Any]:
        """One raw draw: (the value, what the table shows). Numbers are rounded to six
        significant digits; ``choice`` gives a checked value."""
        if self.dist == "choice":
            weights = self.params[1]
            i = int(rng.choice(len(self.choices), p=weights)) if weights else int(
                rng.integers(len(self.choices)))
            return self.choices[i], self.shown[i]
        a, b, *rest = self.params
        if self.dist == "uniform":
            x = rng.uniform(a, b)
        elif self.dist == "loguniform":
            x = math.exp(rng.uniform(math.log(a), math.log(b)))
        elif self.dist == "normal":
            x = rng.normal(a, b)
        elif self.dist == "lognormal":
            x = a * math.exp(b * rng.standard_normal())
        else:
            x = rng.triangular(a, b, rest[0])
        value = float(f"{float(x):.6g}")
        return value, value


def read_draw(key: str, table: Any, label: str, check: Callable[[Any, str], Any]) -> DrawAxis:
    """A ``[draw]`` entry: ``{dist = NAME, parameters...}``; ``check`` checks ``choice``
    values now (drawn numbers are checked when drawn)."""
    if not isinstance(table, dict):
        raise fail(label, "a table {dist = NAME, ...} (docs/sweeps.md)", table)
    dist = as_choice(f"{label}.dist", table.get("dist"), DISTS)
    names = DISTS[dist]
    for k in table:
        if k != "dist" and k not in names:
            raise unknown_name(f"{label}:", k, names)
    if dist == "choice":
        return _choice(key, table, label, check)
    missing = [n for n in names if n not in table]
    if missing:
        raise SpecError(f"{label}: missing {missing[0]}; expected dist = {dist!r} with "
                        f"{', '.join(names)}")
    a, b, *rest = (number(f"{label}.{n}", table[n]) for n in names)
    if dist in ("uniform", "loguniform", "triangular") and not a < (rest[0] if rest else b):
        raise fail(f"{label}.high", f"a number above low={a:g}", table["high"])
    if dist == "loguniform" and a <= 0:
        raise fail(f"{label}.low", "a number > 0", table["low"])
    if dist == "triangular" and not a <= b <= rest[0]:
        raise fail(f"{label}.mode", "a number in [low, high]", table["mode"])
    if dist in ("normal", "lognormal") and b <= 0:
        raise fail(f"{label}.{names[1]}", "a number > 0", table[names[1]])
    if dist == "lognormal" and a <= 0:
        raise fail(f"{label}.median", "a number > 0", table["median"])
    return DrawAxis(key=key, dist=dist, params=(a, b, *rest))


def _choice(key: str, table: dict[str, Any], label: str,
            check: Callable[[Any, str], Any]) -> DrawAxis:
    values = table.get("values")
    if not isinstance(values, list) or not values:
        raise fail(f"{label}.values", "a non-empty list", values)
    checked = tuple(check(v, f"{label}.values[{i}]") for i, v in enumerate(values))
    shown = tuple("+".join(c) if isinstance(c, tuple) else c if isinstance(
        c, (int, float, str)) else v for v, c in zip(values, checked, strict=True))
    weights = table.get("weights")
    probs: tuple[float, ...] = ()
    if weights is not None:
        if not isinstance(weights, list) or len(weights) != len(values):
            raise fail(f"{label}.weights", f"a list of {len(values)} numbers", weights)
        w = [number(f"{label}.weights[{i}]", x) for i, x in enumerate(weights)]
        if min(w) < 0 or sum(w) <= 0:
            raise fail(f"{label}.weights", "numbers >= 0, not all 0", weights)
        probs = tuple(x / sum(w) for x in w)
    return DrawAxis(key=key, dist="choice", params=(tuple(map(str, shown)), probs),
                    choices=checked, shown=shown)


__all__ = ["DISTS", "DrawAxis", "number", "read_draw"]
