"""Loss as a function of parameters and training tokens: the Chinchilla parametric law.

``L(N, D) = E + A / N**alpha + B / D**beta`` (Hoffmann et al. 2022, "Training Compute-Optimal
Large Language Models", arXiv:2203.15556, sec. 3.3, Approach 3: the form is their eq. (2)).
``N`` counts every parameter, embeddings included (Hoffmann et al. fit total parameters;
Pearce & Song 2024, "Reconciling Kaplan and Chinchilla Scaling Laws", arXiv:2406.12907, trace
most of the gap to Kaplan et al. 2020 to Kaplan's counting non-embedding parameters only);
gpuplan's count is ``ModelSpec.params_total`` (``solver.params``). ``D`` counts training
tokens; ``L`` is in nats per token on Chinchilla's data (MassiveText) and tokenizer, so only
where the minimum lies carries over to other data, not the loss itself.

Minimising ``L`` under a compute budget ``C = 6 N D`` (the 6 FLOPs per parameter and token of
Kaplan et al. 2020, arXiv:2001.08361, sec. 2.1) gives the frontier of Hoffmann et al. eq. (4):
``N_opt = G * (C/6)**a``, ``D_opt = (C/6) / N_opt``, ``G = (alpha*A / (beta*B))**(1/(alpha+beta))``,
``a = beta / (alpha + beta)`` (set ``dL/dN = 0`` along ``D = C/(6N)``:
``alpha*A / N**alpha = beta*B / D**beta``).

Two published constant sets (``LAWS``); docs/design.md works both through:

- ``hoffmann2022``: the constants Hoffmann et al. report for their fit, E = 1.69,
  A = 406.4, B = 410.7, alpha = 0.34, beta = 0.28. They imply 98 tokens per parameter at
  1e24 FLOPs and 122 at 1e25, far from the about 20 of the same paper's Approaches 1 and 2
  (sec. 3.1, 3.2) and of Chinchilla itself (70B parameters, 1.4T tokens).
- ``besiroglu2024`` (the default): Besiroglu, Erdil, Barnett and You 2024, "Chinchilla
  Scaling: A replication attempt", arXiv:2404.10102: the same form refitted on Chinchilla's
  own data (the points of Hoffmann et al.'s Figure 4, reconstructed), E = 1.8172,
  A = 482.01, B = 2085.43, alpha = 0.3478, beta = 0.3658. It implies 18 tokens per parameter
  at 1e24 FLOPs and 17 at 1e25, in line with Approaches 1 and 2. The replication (abstract)
  finds the published estimates inconsistent with Approaches 1 and 2 and a poor fit to the
  points, and traces this to an optimiser stopped before convergence and to the rounding of
  the constants printed in the paper's body.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from solver.errors import SpecError

#: The constants a law takes, in the order the formula reads.
KEYS = ("E", "A", "B", "alpha", "beta")
#: FLOPs per parameter and training token (forward 2, backward 4; Kaplan et al. 2020 sec. 2.1).
FLOPS_PER_PARAM_TOKEN = 6.0


@dataclass(frozen=True)
class ScalingLaw:
    """``L(N, D) = E + A / N**alpha + B / D**beta``: nats per token, ``N`` every parameter,
    ``D`` training tokens. ``name`` and ``source`` say where the constants come from."""

    name: str
    E: float
    A: float
    B: float
    alpha: float
    beta: float
    source: str = ""

    def __post_init__(self) -> None:
        for key in KEYS:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    not math.isfinite(value) or value <= 0:
                raise SpecError(f"law.{key}: expected a finite number > 0, got {value!r:.60}")
            object.__setattr__(self, key, float(value))

    def loss(self, params: float, tokens: float) -> float:
        """Predicted loss (nats per token) of ``params`` parameters trained on ``tokens``."""
        return self.E + self.A / params ** self.alpha + self.B / tokens ** self.beta

    @property
    def frontier_coefficient(self) -> float:
        """``G = (alpha*A / (beta*B))**(1/(alpha+beta))`` of Hoffmann et al. eq. (4)."""
        return (self.alpha * self.A / (self.beta * self.B)) ** (1.0 / (self.alpha + self.beta))

    def compute_optimal(self, flops: float) -> tuple[float, float]:
        """The ``(N, D)`` minimising ``loss`` with ``6 N D = flops`` (eq. (4))."""
        half = flops / FLOPS_PER_PARAM_TOKEN
        params = self.frontier_coefficient * half ** (self.beta / (self.alpha + self.beta))
        return params, half / params

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **{k: getattr(self, k) for k in KEYS},
                "source": self.source}


LAWS = {
    "besiroglu2024": ScalingLaw(
        "besiroglu2024", E=1.8172, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658,
        source="Besiroglu, Erdil, Barnett, You 2024, 'Chinchilla Scaling: A replication "
               "attempt', arXiv:2404.10102: Hoffmann et al.'s eq. (2) refitted on "
               "Chinchilla's data; about 20 tokens per parameter at the optimum"),
    "hoffmann2022": ScalingLaw(
        "hoffmann2022", E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28,
        source="Hoffmann et al. 2022, 'Training Compute-Optimal Large Language Models', "
               "arXiv:2203.15556, sec. 3.3 (Approach 3), the constants as published; about "
               "100 tokens per parameter at the optimum near 1e24-1e25 FLOPs"),
}
DEFAULT_LAW = "besiroglu2024"


def resolve(law: str | ScalingLaw = DEFAULT_LAW, params: Mapping[str, Any] | None = None, *,
            field: str = "law", params_field: str = "law_params") -> ScalingLaw:
    """A law by name (``LAWS``) or as given, with ``params`` (``{"E": 1.8}``; numbers or
    their text) over its constants; a changed law is named ``custom (BASE: E=1.8)``."""
    if isinstance(law, ScalingLaw):
        base = law
    elif isinstance(law, str) and law.strip().lower() in LAWS:
        base = LAWS[law.strip().lower()]
    else:
        raise SpecError(f"{field}: expected one of {', '.join(LAWS)}, got {law!r:.60}")
    if not params:
        return base
    changed: dict[str, float] = {}
    for key, value in params.items():
        if key not in KEYS:
            raise SpecError(f"{params_field}: expected a key among {', '.join(KEYS)}, got "
                            f"{str(key)[:40]!r}")
        changed[key] = _positive(value, f"{params_field}: {key}")
    shown = ", ".join(f"{k}={v:g}" for k, v in changed.items())
    return replace(base, name=f"custom ({base.name}: {shown})",
                   source=f"{base.source}; changed: {shown}", **changed)


def _positive(value: Any, label: str) -> float:
    """A finite number > 0, from a number or its text."""
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number <= 0:
        raise SpecError(f"{label}: expected a finite number > 0, got {str(value)[:40]!r}")
    return number


__all__ = ["DEFAULT_LAW", "FLOPS_PER_PARAM_TOKEN", "KEYS", "LAWS", "ScalingLaw", "resolve"]
