"""Points per second of ``solver.sweep`` with 1 worker, 2 workers and on a local Ray instance,
and the scaling from 1 to 2 workers.

Run: python benchmarks/sweep_speed.py [--draws 16] [--no-ray]
The sweep: Llama 3 70B on 1T tokens, fastest plan on at most 2,048 accelerators, on four
accelerators (H100, H200, A100, B200) x ``--draws`` draws of the failure rate (lognormal around
50,000 hours) and the price: every point is a question of its own, one solve each (no cache
hit), so the rate measures solves. Each engine writes its table; the three must be identical
(the script says so, or exits 1). Ray (``gpuplan[ray]``) runs on a local instance of 2 CPUs on
the loopback address, started and stopped here; its start-up is not counted (the two local
workers' start-up is: spawning them and importing gpuplan takes about a second).

On 2 CPUs (x86_64, Python 3.11, an otherwise idle machine), 64 points: 1 worker 4.22
points/s, 2 workers 7.67 (x1.82), Ray 6.36; the three tables identical.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import solver
from solver.sweep import run as answers

SWEEP = """
description = "benchmarks/sweep_speed.py: one solve per point"
[model]
preset = "llama3-70b"
[job]
tokens = 1e12
[limits]
max_gpus = 2048
[solve]
objective = "time"
[sweep]
draws = {draws}
[grid]
limits.accelerators = ["h100-sxm5-80gb", "h200-sxm-141gb", "a100-sxm4-80gb", "b200"]
[draw]
job.mtbf_hours = {{ dist = "lognormal", median = 50000, sigma = 0.5 }}
solve.cost_params.price_usd_per_hour = {{ dist = "uniform", low = 1.5, high = 4.0 }}
"""


def timed(spec: Path, out: Path, **engine: object) -> tuple[float, str]:
    answers._cache.clear()  # this process's answers from the warm-up run
    started = time.perf_counter()
    result = solver.sweep(spec, output=out, **engine)  # type: ignore[arg-type]
    took = time.perf_counter() - started
    return result.computed / took, out.read_text()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=16)
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray run")
    args = parser.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.2f} "
          "(other work on the machine slows the workers)")
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "speed.toml"
        spec.write_text(SWEEP.format(draws=args.draws), encoding="utf-8")
        print(f"# {4 * args.draws} points, one solve each")
        solver.sweep(spec, output=Path(tmp) / "warm.csv")  # imports, catalog: not counted
        rates: dict[str, float] = {}
        tables: dict[str, str] = {}
        rates["1 worker"], tables["1 worker"] = timed(spec, Path(tmp) / "w1.csv", workers=1)
        rates["2 workers"], tables["2 workers"] = timed(spec, Path(tmp) / "w2.csv", workers=2)
        if not args.no_ray:
            import ray

            ray.init(address="local", _node_ip_address="127.0.0.1", num_cpus=2,
                     include_dashboard=False, log_to_driver=False)
            try:
                rates["ray (2 CPUs)"], tables["ray (2 CPUs)"] = timed(
                    spec, Path(tmp) / "ray.csv", ray="auto")
            finally:
                ray.shutdown()
    print(f"{'engine':<14} {'points/s':>9}")
    for name, rate in rates.items():
        print(f"{name:<14} {rate:>9.2f}")
    print(f"scaling 1 -> 2 workers: x{rates['2 workers'] / rates['1 worker']:.2f}")
    same = len(set(tables.values())) == 1
    print(f"tables identical: {'yes' if same else 'NO'} ({', '.join(tables)})")
    if not same:
        first = next(iter(tables.values())).splitlines()
        for name, table in tables.items():
            for i, (a, b) in enumerate(zip(first, table.splitlines(), strict=False)):
                if a != b:
                    print(f"{name}, line {i + 1}:\n  {a}\n  {b}")
                    break
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
