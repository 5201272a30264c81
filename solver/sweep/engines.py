"""Where a sweep's points run: this process, local worker processes, or a Ray cluster.

Points go out in chunks of consecutive indices (so the draws of one grid point tend to meet
one process's answer cache) and come back as rows in whatever order they finish; the table
sorts them. Every engine computes a point from the spec and its index alone
(``points.point``), so the rows do not depend on the engine.

- Local processes (``workers`` > 1): ``concurrent.futures.ProcessPoolExecutor`` with the
  ``spawn`` start method (fresh interpreters: no thread of this one is forked), the spec sent
  once to each worker by its initializer.
- Ray (``ray`` = ``"auto"``, ``"local"`` or a cluster address, the ``gpuplan[ray]`` extra): a
  Ray task per chunk, the spec put once in the object store
  (https://docs.ray.io/en/latest/ray-core/walkthrough.html). A Ray already initialised by the
  caller is used as it is and left running; one started here is shut down at the end.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
from collections.abc import Callable, Iterator
from typing import Any

from solver.errors import SpecError
from solver.sweep.run import run_point
from solver.sweep.spec import SweepSpec

Rows = list[dict[str, Any]]
#: The most points in one chunk.
MAX_CHUNK = 64

_spec: SweepSpec | None = None


def chunks(spec: SweepSpec, todo: list[int], workers: int) -> list[list[int]]:
    """``todo`` in runs of consecutive points: a grid point's draws together, at most
    ``MAX_CHUNK``, and small enough that every worker gets a few."""
    if not todo:
        return []
    size = max(1, min(spec.draws, MAX_CHUNK, -(-len(todo) // (4 * max(1, workers)))))
    out: list[list[int]] = []
    for i in todo:
        if out and len(out[-1]) < size and out[-1][-1] + 1 == i and \
                out[-1][0] // spec.draws == i // spec.draws:
            out[-1].append(i)
        else:
            out.append([i])
    return out


def run_chunk(spec: SweepSpec, indices: list[int]) -> Rows:
    return [run_point(spec, i) for i in indices]


def _init(spec: SweepSpec) -> None:
    global _spec
    _spec = spec


def _chunk_here(indices: list[int]) -> Rows:
    assert _spec is not None
    return run_chunk(_spec, indices)


def run(spec: SweepSpec, todo: list[int], *, workers: int = 1, ray: str | None = None,
        on_rows: Callable[[Rows], None]) -> None:
    """Run the points ``todo``; ``on_rows`` gets each chunk's rows as they finish (in this
    process, each point's row: a killed sweep keeps every point it finished)."""
    parts = chunks(spec, todo, workers)
    if ray is not None:
        with ray_session(ray):
            for rows in _on_ray(spec, parts):
                on_rows(rows)
    elif workers <= 1 or len(parts) <= 1:
        for i in todo:
            on_rows(run_chunk(spec, [i]))
    else:
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(
                min(workers, len(parts)), mp_context=context, initializer=_init,
                initargs=(spec,)) as pool:
            futures = [pool.submit(_chunk_here, part) for part in parts]
            try:
                for future in concurrent.futures.as_completed(futures):
                    on_rows(future.result())
            except BaseException:
                for f in futures:
                    f.cancel()
                raise


def import_ray(label: str = "--ray") -> Any:
    """The ``ray`` module, or ``SpecError`` with the install command."""
    try:
        import ray
    except ImportError:
        raise SpecError(f'{label}: needs the ray extra: pip install "gpuplan[ray]"') from None
    return ray


@contextlib.contextmanager
def ray_session(address: str) -> Iterator[None]:
    """Ray, connected for the block: a Ray the caller initialised is used as it is; else
    ``ray.init`` (``local``: a new instance on this machine) and ``ray.shutdown`` at the end."""
    ray = import_ray()
    if ray.is_initialized():
        yield
        return
    try:
        if address == "local":
            ray.init(address="local", include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    except (ConnectionError, ValueError, RuntimeError) as err:
        raise SpecError(f"--ray: cannot reach Ray at {address!r} "
                        f"({' '.join(str(err).split())[:200]})") from None
    try:
        yield
    finally:
        ray.shutdown()


def _on_ray(spec: SweepSpec, parts: list[list[int]]) -> Iterator[Rows]:
    """Each chunk a Ray task (inside ``ray_session``), rows as tasks finish."""
    ray = import_ray()
    task = ray.remote(run_chunk)
    ref = ray.put(spec)
    pending = [task.remote(ref, part) for part in parts]
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        yield ray.get(done[0])


__all__ = ["chunks", "import_ray", "ray_session", "run", "run_chunk"]
