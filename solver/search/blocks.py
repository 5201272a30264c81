"""The step model over many layouts, in blocks that stay in the processor's cache.

The step model is element-wise: each layout's numbers depend on that layout alone, so
evaluating N layouts in blocks gives the same numbers as one call. Blocks of a few thousand
layouts keep every intermediate array in cache and run about 1.5 times as fast per layout as
one call over hundreds of thousands (``benchmarks/evaluate_speed.py`` shows the same trend).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from typing import TypeVar

import numpy as np

from solver.search.table import Question, join_results
from solver.stepmodel.arrays import LayoutArrays
from solver.stepmodel.evaluate import StepResult, evaluate_arrays, memory_fits
from solver.stepmodel.memory import MemoryArrays, memory
from solver.stepmodel.timing import slowest_rank

#: Layouts per block.
BLOCK_ROWS = 8192

T = TypeVar("T")


def _blockwise(fn: Callable[[LayoutArrays, slice], T], x: LayoutArrays) -> list[T]:
    """``fn(block of x, its slice)`` for each block of ``x`` (one call when ``x`` is small)."""
    n = len(x)
    if n <= BLOCK_ROWS:
        return [fn(x, slice(0, n))]
    out = []
    for start in range(0, n, BLOCK_ROWS):
        part = slice(start, min(n, start + BLOCK_ROWS))
        out.append(fn(LayoutArrays(*(getattr(x, f.name)[part] for f in fields(x))), part))
    return out


def evaluate(q: Question, x: LayoutArrays, mem: Memory | None = None) -> StepResult:
    """``evaluate_arrays`` of the layouts ``x`` for the question's job, block by block
    (``mem``: their memory, when ``memory_check`` has it already)."""
    def one(part: LayoutArrays, at: slice) -> StepResult:
        known = None if mem is None else mem.take(at).arrays
        return evaluate_arrays(q.job, part, q.hw, q.calibration, q.js, mem=known)

    return join_results(_blockwise(one, x))


@dataclass(frozen=True)
class Memory:
    """The memory of N layouts (``stepmodel.memory``) and whether each fits
    (``StepResult.fits_memory``: the device memory and any offloaded activations within the
    host memory)."""

    arrays: MemoryArrays
    fits: np.ndarray

    @property
    def total(self) -> np.ndarray:
        return self.arrays.total

    def take(self, index: np.ndarray | slice) -> Memory:
        return Memory(replace(self.arrays, **{f.name: getattr(self.arrays, f.name)[index]
                                              for f in fields(self.arrays)}), self.fits[index])

    def put(self, rows: np.ndarray, other: Memory, index: np.ndarray | slice = slice(None)
            ) -> None:
        """Write ``other[index]`` over rows ``rows`` of this one, in place."""
        for f in fields(self.arrays):
            getattr(self.arrays, f.name)[rows] = getattr(other.arrays, f.name)[index]
        self.fits[rows] = other.fits[index]


def memory_total(q: Question, x: LayoutArrays, nmb: np.ndarray | None = None, *,
                 any_accelerator: bool = False) -> np.ndarray:
    """Bytes per accelerator of each layout of ``x`` (``stepmodel.memory``'s total), with
    ``nmb`` micro-batches per step in place of ``x.nmb`` where given; with
    ``any_accelerator``, on the accelerator whose software needs the most (``memory``
    without the hardware table)."""
    hw = None if any_accelerator else q.hw

    def one(part: LayoutArrays, at: slice) -> np.ndarray:
        return memory(q.js, part, None if nmb is None else nmb[at], hw).total

    parts = _blockwise(one, x)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def memory_check(q: Question, x: LayoutArrays, nmb: np.ndarray | None = None) -> Memory:
    """The ``Memory`` of the layouts ``x``, with ``nmb`` micro-batches per step in place of
    ``x.nmb`` where given."""
    hw = q.hw

    def one(part: LayoutArrays, at: slice) -> Memory:
        mem = memory(q.js, part, None if nmb is None else nmb[at], hw)
        fits = memory_fits(mem, hw.memory_bytes[part.accel], hw.host_memory_bytes[part.accel])
        return Memory(mem, fits)

    parts = _blockwise(one, x)
    if len(parts) == 1:
        return parts[0]
    joined = {f.name: np.concatenate([getattr(p.arrays, f.name) for p in parts])
              for f in fields(MemoryArrays)}
    return Memory(MemoryArrays(**joined), np.concatenate([p.fits for p in parts]))


def per_microbatch(q: Question, x: LayoutArrays, names: Sequence[str]) -> np.ndarray:
    """The sum of the parts ``names`` of ``stepmodel.timing.slowest_rank`` (the seconds of one
    micro-batch on the rank the pipeline moves at; ``step_time`` reports ``nmb`` times them)
    for the layouts ``x``, block by block."""
    def one(part: LayoutArrays, _: slice) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            rank = slowest_rank(q.js, part, q.hw, q.calibration)
        return np.asarray(sum(getattr(rank, name) for name in names))

    parts = _blockwise(one, x)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)
