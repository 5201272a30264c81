"""The few physical constants of the step model that no datasheet gives.

Each is a property of real training software on real fabrics, not of one run. The defaults
are physically plausible values set by hand (nccl-tests bus efficiencies, kernel-launch costs of
a few microseconds per kernel); they were not tuned to any run. Fitting them over all published
runs together, with the leave-one-out error, is the fidelity work that follows (see
``docs/model.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Bytes per parameter of the model states, mixed-precision Adam as Megatron-LM keeps them:
#: BF16 weights (2), FP32 main gradients (4), FP32 master weights + Adam m and v (12).
#: Megatron-LM ``megatron/training/theoretical_memory_usage.py`` (18 bytes per parameter;
#: 6 + 12/dp with the distributed optimizer); ZeRO (Rajbhandari et al. 2020, arXiv:1910.02054,
#: sec. 3.1) names the same three parts (with 16-bit gradients).
WEIGHT_BYTES = 2
GRAD_BYTES = 4
OPTIMIZER_BYTES = 12
#: Bytes of HBM traffic per parameter of an Adam step on its shard: read master, m, v and the
#: FP32 gradient (16), write master, m, v and the BF16 weight (14).
OPTIMIZER_STEP_BYTES = 30
#: Bytes of one activation element (BF16).
ACT_BYTES = 2
#: Fixed memory per accelerator: CUDA context, cuBLAS/NCCL workspaces (PyTorch reports about
#: 0.5-1 GiB of context on A100/H100 before any tensor is allocated).
CONTEXT_GIB = 1.0
#: Caching-allocator fragmentation, as a fraction of everything allocated.
FRAGMENTATION = 0.05
#: NCCL communicator buffers per accelerator (NCCL_BUFFSIZE 4 MiB per channel and peer).
NCCL_BUFFERS_GIB = 0.5


@dataclass(frozen=True)
class Calibration:
    """Fitted software and fabric efficiencies (all rows together, never one run).

    - ``matmul_scale``: achieved training-GEMM throughput over the accelerator's best-shape
      matmul efficiency (MAMF); below 1 because training GEMMs are not the best shape and
      share the device with other kernels.
    - ``layer_overhead_s``: fixed time per transformer layer and pass (kernel launches,
      small kernels, synchronisation): what makes small models and small slices less efficient.
    - ``elementwise_traffic``: HBM bytes moved by the non-matmul kernels of a layer (norms,
      activations, dropout, residuals, softmax) per byte of the activations it stores.
    - ``scaleup_bus_efficiency`` / ``scaleout_bus_efficiency``: achieved bus bandwidth of ring
      collectives over the link rate (nccl-tests report about 0.7-0.8 on NVLink and IB).
    - ``dp_overlap``: fraction of the gradient reduction hidden behind the last backward pass.
    - ``latency_scaleup_s`` / ``latency_scaleout_s``: per-hop latency of a ring step.
    """

    matmul_scale: float = 0.75
    layer_overhead_s: float = 60e-6
    elementwise_traffic: float = 3.0
    scaleup_bus_efficiency: float = 0.75
    scaleout_bus_efficiency: float = 0.8
    dp_overlap: float = 0.5
    latency_scaleup_s: float = 5e-6
    latency_scaleout_s: float = 10e-6


DEFAULT_CALIBRATION = Calibration()
