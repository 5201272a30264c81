"""Element-wise arithmetic over the array fields of the step model's small dataclasses
(``compute.Kernels``, ``tensor.LayerComm``): one place for what each of them needs."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any, TypeVar, cast

import numpy as np

T = TypeVar("T")


def _map(a: T, value: Any) -> T:
    obj: Any = a
    return cast(T, replace(obj, **{f.name: value(f.name) for f in fields(obj)}))


def scaled(a: T, k: Any) -> T:
    """Every field times ``k``."""
    return _map(a, lambda name: getattr(a, name) * k)


def added(a: T, b: T) -> T:
    """Field by field sum."""
    return _map(a, lambda name: getattr(a, name) + getattr(b, name))


def paired(a: T, b: T, where: np.ndarray) -> T:
    """Where ``where`` holds, the mean of ``a`` and ``b`` field by field; elsewhere ``a``."""
    return _map(a, lambda name: np.where(where, 0.5 * (getattr(a, name) + getattr(b, name)),
                                         getattr(a, name)))
