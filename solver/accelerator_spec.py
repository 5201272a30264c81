"""One accelerator and the fabric around it: ``Accelerator`` and its hardware-file readers.

Split from ``solver.specs``, which re-exports every name here (docs/interface.md, "Library").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from solver.errors import SpecError
from solver.validate import (
    MAX_DOCUMENT_BYTES,
    as_choice,
    as_float,
    as_int,
    as_name,
    as_optional_float,
    close_matches,
    fail,
    parse_document,
)

#: Shapes of the scale-up fabric (``Accelerator.scaleup_topology``).
SCALEUP_TOPOLOGIES = ("switch", "mesh", "torus")
PEAK_KEYS = ("fp32", "tf32", "bf16", "fp8")


def _peak_dict(value: Any) -> dict[str, float | None]:
    if not isinstance(value, Mapping):
        raise fail("peak_tflops", "a table with keys " + ", ".join(PEAK_KEYS), value)
    unknown = sorted(set(value) - set(PEAK_KEYS) - {"fp4"})
    if unknown:
        raise fail("peak_tflops", "keys among " + ", ".join(PEAK_KEYS), unknown[0])
    peaks: dict[str, float | None] = {}
    for key in PEAK_KEYS:
        peaks[key] = as_optional_float(f"peak_tflops.{key}", value.get(key))
    if peaks["bf16"] is None:
        raise fail("peak_tflops.bf16", "a dense BF16 peak in TFLOP/s", None)
    return peaks


@dataclass(frozen=True)
class Accelerator:
    """One accelerator and the fabric around it (docs/interface.md, "Plugins").

    Bandwidths are GB/s per accelerator in one direction. ``scaleout_bw_gb_s`` None means no
    published figure: groups that would leave the scale-up domain are then not allowed.
    ``tdp_w`` or ``price_usd_per_hour`` None means energy or cost cannot be computed for it.
    ``scaleup_topology``: how the scale-up fabric connects the accelerators: ``"switch"``
    (NVSwitch, NVLink Switch: every group gets the full ``scaleup_bw_gb_s``), ``"mesh"``
    (point-to-point links to every peer of the domain, AMD Infinity Fabric, Gaudi's RoCE
    ports: a group of ``n`` uses ``n - 1`` of the ``domain - 1`` links) or ``"torus"`` (TPU ICI:
    ``torus_dims`` axes with ``torus_axis`` chips along each, two links per axis; a group uses
    the links of the axes it spans). ``host_bw_gb_s`` / ``host_memory_gib``: each
    accelerator's share of the link to its host and of the host's memory, where activations
    can be offloaded (``TrainingJob.activation_offload``); None means not published, and no
    offloading.
    The efficiency fields describe how much of the peak real training kernels reach; see
    ``docs/model.md`` for their meaning and how their defaults were fitted.
    """

    name: str
    vendor: str
    peak_tflops: Mapping[str, float | None]
    memory_gib: float
    memory_bw_gb_s: float
    scaleup_bw_gb_s: float
    scaleup_domain: int
    scaleout_bw_gb_s: float | None = None
    tdp_w: float | None = None
    price_usd_per_hour: float | None = None
    sources: tuple[str, ...] = ()
    # Defaulted extras.
    aliases: tuple[str, ...] = ()
    family: str = ""
    matmul_efficiency: float = 0.80
    fp8_matmul_efficiency: float | None = None
    matmul_scale: float | None = None
    attention_scale: float | None = None
    grouped_gemm_tile_tokens: float | None = None
    purchase_usd: float | None = None
    host_bw_gb_s: float | None = None
    host_memory_gib: float | None = None
    scaleup_topology: str = "switch"
    torus_dims: int = 0
    torus_axis: int = 0
    notes: str = ""

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "name", as_name("name", self.name).lower())
        set_(self, "vendor", as_name("vendor", self.vendor))
        set_(self, "peak_tflops", _peak_dict(self.peak_tflops))
        for name in ("memory_gib", "memory_bw_gb_s", "scaleup_bw_gb_s"):
            set_(self, name, as_float(name, getattr(self, name)))
        set_(self, "scaleup_domain", as_int("scaleup_domain", self.scaleup_domain))
        for name in ("scaleout_bw_gb_s", "tdp_w", "price_usd_per_hour", "purchase_usd",
                     "host_bw_gb_s", "host_memory_gib"):
            set_(self, name, as_optional_float(name, getattr(self, name)))
        eff = as_float("matmul_efficiency", self.matmul_efficiency)
        if eff > 1.0:
            raise fail("matmul_efficiency", "a fraction in (0, 1]", eff)
        set_(self, "matmul_efficiency", eff)
        if self.fp8_matmul_efficiency is not None:
            eff8 = as_float("fp8_matmul_efficiency", self.fp8_matmul_efficiency)
            if eff8 > 1.0:
                raise fail("fp8_matmul_efficiency", "a fraction in (0, 1]", eff8)
            set_(self, "fp8_matmul_efficiency", eff8)
        set_(self, "grouped_gemm_tile_tokens", as_optional_float(
            "grouped_gemm_tile_tokens", self.grouped_gemm_tile_tokens))
        for name in ("matmul_scale", "attention_scale"):
            if getattr(self, name) is not None:
                value = as_float(name, getattr(self, name))
                if value > 1.0:
                    raise fail(name, "a fraction in (0, 1]", value)
                set_(self, name, value)
        if isinstance(self.sources, str) or not all(isinstance(s, str) for s in self.sources):
            raise fail("sources", "a list of citation strings", self.sources)
        set_(self, "sources", tuple(self.sources))
        if isinstance(self.aliases, str) or not all(isinstance(a, str) for a in self.aliases):
            raise fail("aliases", "a list of names", self.aliases)
        set_(self, "aliases", tuple(a.lower() for a in self.aliases))
        for name in ("family", "notes"):
            if not isinstance(getattr(self, name), str):
                raise fail(name, "a string", getattr(self, name))
        set_(self, "family", self.family or self.vendor.lower())
        as_choice("scaleup_topology", self.scaleup_topology, SCALEUP_TOPOLOGIES)
        if self.scaleup_topology == "torus":
            set_(self, "torus_dims", as_int("torus_dims", self.torus_dims, maximum=3))
            set_(self, "torus_axis", as_int("torus_axis", self.torus_axis, minimum=2))

    def peak_for(self, precision: str) -> float:
        """Dense peak TFLOP/s for the job's precision; FP8 falls back to BF16 where absent."""
        peak = self.peak_tflops.get(precision) if precision == "fp8" else None
        bf16 = self.peak_tflops["bf16"]
        assert bf16 is not None  # validated in __post_init__
        return float(peak) if peak else float(bf16)

    def linear_efficiency(self, precision: str) -> float:
        """Best-shape matmul throughput over ``peak_for(precision)`` (MAMF over peak).

        FP8 uses ``fp8_matmul_efficiency`` when the part has an FP8 peak and the figure is
        known, else the BF16 ``matmul_efficiency``.
        """
        if precision == "fp8" and self.peak_tflops.get("fp8") and self.fp8_matmul_efficiency:
            return float(self.fp8_matmul_efficiency)
        return float(self.matmul_efficiency)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, where: str = "accelerator") -> Accelerator:
        """Build from a mapping with the INTERFACE field names; unknown keys are an error."""
        if not isinstance(data, Mapping):
            raise SpecError(f"{where}: expected a table of accelerator fields")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(f"{where}: unknown field {str(unknown[0])[:60]!r}"
                            f"{close_matches(str(unknown[0]), known)}")
        required = [f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING]
        missing = [name for name in required if name not in data]
        if missing:
            raise SpecError(f"{where}: missing field {missing[0]!r}")
        try:
            values: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v)
                                      for k, v in data.items()}
            return cls(**values)
        except SpecError as err:
            raise SpecError(f"{where}: {err}") from None

    @classmethod
    def from_toml(cls, path: str | Path) -> Accelerator:
        """Read the format of ``hardware_specs/*.toml``: fields as top-level keys."""
        path = Path(path)
        try:
            with path.open("rb") as handle:
                raw = handle.read(MAX_DOCUMENT_BYTES + 1)  # a larger file is refused whole
        except OSError as err:
            raise SpecError(f"{path}: cannot read ({err.strerror or err})") from None
        return cls.from_toml_bytes(raw, where=str(path))

    @classmethod
    def from_toml_bytes(cls, raw: bytes, *, where: str) -> Accelerator:
        data = parse_document(raw, where=where, fmt="toml", what="an accelerator TOML file")
        return cls.from_mapping(data, where=where)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["peak_tflops"] = dict(self.peak_tflops)
        data["sources"] = list(self.sources)
        data["aliases"] = list(self.aliases)
        return data


__all__ = ["Accelerator"]
