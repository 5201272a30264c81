"""Struct-of-arrays inputs of the vectorised step model.

``LayoutArrays`` holds N candidate layouts (one element each); ``HardwareTable`` holds the
accelerators they index into. One call of ``stepmodel.evaluate_arrays`` evaluates all N.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from solver.costs import CostBasis, resolve
from solver.layout_options import FULL_BIT, SCHEDULE_CODE, SPLIT_CODE, recompute_code
from solver.specs import Accelerator, Layout
from solver.stepmodel import calibration as C

IntArray = np.ndarray
FloatArray = np.ndarray


@dataclass(frozen=True)
class LayoutArrays:
    """N layouts: ``accel`` indexes a ``HardwareTable``; ``nmb`` is micro-batches per step;
    ``recompute`` is a bit mask, ``schedule`` and ``split`` codes (``solver.layout_options``).
    """

    accel: IntArray
    tp: IntArray
    pp: IntArray
    dp: IntArray
    cp: IntArray
    ep: IntArray
    vp: IntArray
    mb: IntArray
    nmb: IntArray
    zero: IntArray
    recompute: IntArray
    schedule: IntArray
    split: IntArray

    def __len__(self) -> int:
        return int(self.tp.shape[0])

    @classmethod
    def from_columns(cls, **columns: object) -> LayoutArrays:
        arrays = {f.name: np.asarray(columns[f.name], dtype=np.int64) for f in fields(cls)}
        size = np.broadcast_shapes(*(a.shape for a in arrays.values()))
        return cls(**{k: np.broadcast_to(v, size).copy() for k, v in arrays.items()})

    def with_recompute_none(self) -> LayoutArrays:
        """The same layouts without recomputation (for the activations a layer produces)."""
        return dataclasses.replace(self, recompute=np.zeros_like(self.recompute))

    @property
    def full(self) -> np.ndarray:
        """True where whole layers are recomputed."""
        return (self.recompute & FULL_BIT) != 0

    def take(self, index: IntArray) -> LayoutArrays:
        return LayoutArrays(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @classmethod
    def from_layouts(
        cls, layouts: Sequence[Layout], nmb: Sequence[int], accel_index: dict[str, int]
    ) -> LayoutArrays:
        return cls.from_columns(
            accel=[accel_index[x.accelerator] for x in layouts],
            tp=[x.tp for x in layouts], pp=[x.pp for x in layouts], dp=[x.dp for x in layouts],
            cp=[x.cp for x in layouts], ep=[x.ep for x in layouts], vp=[x.vp for x in layouts],
            mb=[x.micro_batch for x in layouts], nmb=list(nmb),
            zero=[x.zero_stage for x in layouts],
            recompute=[recompute_code(x.recompute) for x in layouts],
            schedule=[SCHEDULE_CODE[x.schedule] for x in layouts],
            split=[SPLIT_CODE[x.pipeline_split] for x in layouts],
        )


@dataclass(frozen=True)
class HardwareTable:
    """Per-accelerator figures as arrays (NaN where a figure is not published)."""

    names: tuple[str, ...]
    families: tuple[str, ...]
    peak_flops: FloatArray  # FLOP/s at the job's precision, dense
    bf16_peak_flops: FloatArray
    matmul_efficiency: FloatArray  # BF16 best-shape matmul throughput over the BF16 peak
    linear_efficiency: FloatArray  # the same over peak_flops, at the job's precision
    matmul_scale: FloatArray  # fitted training-GEMM efficiency over MAMF; NaN = default
    attention_scale: FloatArray  # fitted fused-attention efficiency over MAMF; NaN = default
    grouped_gemm_tile: FloatArray  # tokens: the row tile a grouped GEMM pays once more per expert
    memory_bytes: FloatArray
    memory_bw: FloatArray  # bytes/s
    scaleup_bw: FloatArray  # bytes/s, one direction
    scaleup_domain: IntArray
    mesh: np.ndarray  # bool: point-to-point links to every peer of the domain
    torus_dims: IntArray  # 0 unless the fabric is a torus
    torus_axis: IntArray  # chips along one torus axis
    scaleout_bw: FloatArray  # bytes/s, one direction; NaN = unknown
    host_bw: FloatArray  # bytes/s to the host, one direction; NaN = unknown
    host_memory_bytes: FloatArray  # the accelerator's share of host memory; NaN = unknown
    fp8_transpose_bytes: FloatArray  # per weight: 1 where FP8 GEMMs need a transposed copy
    collectives_on_compute: FloatArray  # 1 where collectives run as kernels on the compute units
    logits_bytes: FloatArray  # bytes per logit kept for the loss: FP32 (4), BF16 (2) under XLA
    fragmentation: FloatArray  # allocator reserve over what is allocated
    tdp_w: FloatArray
    # From the cost basis (``solver/costs.py``): cost = rate * gpus * hours + fixed.
    rate_usd_per_hour: FloatArray  # USD per accelerator-hour; NaN = cannot be priced
    fixed_usd: FloatArray  # USD once per plan
    facility_w: FloatArray  # average facility power per accelerator: TDP x utilisation x PUE
    grid_g_per_kwh: FloatArray  # gCO2 per kWh where the accelerators run

    @classmethod
    def build(cls, accelerators: Sequence[Accelerator], precision: str,
              basis: CostBasis | None = None) -> HardwareTable:
        """The table of ``accelerators``; cost, energy and CO2 through ``basis`` (default:
        the ``cloud`` cost model with the default footprint)."""
        def column(values: Sequence[float | None], scale: float = 1.0) -> FloatArray:
            return np.array([np.nan if v is None else float(v) * scale for v in values])

        basis = basis if basis is not None else resolve()
        prices = [basis.price(a) for a in accelerators]

        return cls(
            names=tuple(a.name for a in accelerators),
            families=tuple(a.family for a in accelerators),
            peak_flops=column([a.peak_for(precision) for a in accelerators], 1e12),
            bf16_peak_flops=column([a.peak_for("bf16") for a in accelerators], 1e12),
            matmul_efficiency=column([a.matmul_efficiency for a in accelerators]),
            linear_efficiency=column([a.linear_efficiency(precision) for a in accelerators]),
            matmul_scale=column([a.matmul_scale for a in accelerators]),
            attention_scale=column([a.attention_scale for a in accelerators]),
            grouped_gemm_tile=column([a.grouped_gemm_tile_tokens or C.GROUPED_GEMM_TILE_TOKENS
                                      for a in accelerators]),
            memory_bytes=column([a.memory_gib for a in accelerators], 2.0**30),
            memory_bw=column([a.memory_bw_gb_s for a in accelerators], 1e9),
            scaleup_bw=column([a.scaleup_bw_gb_s for a in accelerators], 1e9),
            scaleup_domain=np.array([a.scaleup_domain for a in accelerators], dtype=np.int64),
            mesh=np.array([a.scaleup_topology == "mesh" for a in accelerators]),
            torus_dims=np.array([a.torus_dims if a.scaleup_topology == "torus" else 0
                                 for a in accelerators], dtype=np.int64),
            torus_axis=np.array([max(a.torus_axis, 1) for a in accelerators], dtype=np.int64),
            scaleout_bw=column([a.scaleout_bw_gb_s for a in accelerators], 1e9),
            host_bw=column([a.host_bw_gb_s for a in accelerators], 1e9),
            host_memory_bytes=column([a.host_memory_gib for a in accelerators], 2.0**30),
            fp8_transpose_bytes=column([1.0 if a.family in C.FP8_TN_ONLY_FAMILIES else 0.0
                                        for a in accelerators]),
            collectives_on_compute=column([0.0 if a.family in C.OFFLOADED_COLLECTIVE_FAMILIES
                                           else 1.0 for a in accelerators]),
            logits_bytes=column([C.ACT_BYTES if a.family in C.PLANNED_ALLOCATION_FAMILIES
                                 else C.FP32_LOGIT_BYTES for a in accelerators]),
            fragmentation=column([0.0 if a.family in C.PLANNED_ALLOCATION_FAMILIES
                                  else C.FRAGMENTATION for a in accelerators]),
            tdp_w=column([a.tdp_w for a in accelerators]),
            rate_usd_per_hour=column([p.rate_usd_per_hour for p in prices]),
            fixed_usd=column([p.fixed_usd for p in prices]),
            facility_w=column([basis.footprint.facility_w(a.tdp_w) for a in accelerators]),
            grid_g_per_kwh=column([basis.footprint.grid_g_per_kwh for _ in accelerators]),
        )
