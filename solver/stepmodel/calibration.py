"""The few physical constants of the step model that no datasheet gives.

Each is a property of real training software on real fabrics, not of one run. Seven of them
and the training-GEMM and flash-attention efficiencies of the accelerator families published
runs used (``matmul_scale`` and ``attention_scale`` in ``hardware_specs/*.toml``: NVIDIA
Ampere, Hopper and Blackwell, Google TPU, Intel Gaudi) were fitted together over every published
run with enough detail (57 runs: Megatron-LM 2021 and 2022, DeepSpeed ZeRO-3, NeMo and
Megatron-Bridge, MosaicML MPT, torchtitan, MaxText, Intel's Megatron; A100, H100, H200, B200,
GB200, TPU v5p and v6e, Gaudi 2; dense and MoE; 8 to 3,072 GPUs; ``tests/data/
published_runs.json`` and ``published_runs_2024.json``) by minimising the sum of the 4th
powers of the log errors (the acceptance bounds are a median and a worst error; the 4th power
weighs both), with ``python benchmarks/fidelity.py --fit`` (2026-12). ``biased_expert_scale``,
which only the three gpt-oss runs depend on, was fitted afterwards over all 60 runs with the
others held (refitting everything moves none of them by more than 0.6%). No value belongs to
one run or one model; the leave-one-out error and the table are in the README.
The others are fixed by measurements: the scale-up bus efficiency (nccl-tests on NVLink reach
about 0.8 of the link rate) and the ring-step latencies.
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
#: Bytes of a logit as eager PyTorch keeps it for the loss: Megatron-LM's ``cross_entropy.py``
#: upcasts the vocab-parallel logits to FP32 (``.float()``; Korthikanti et al. 2022 sec. 4.3,
#: ``4sbV/t``). Compiler-planned runtimes keep the BF16 ones (``ACT_BYTES``,
#: ``PLANNED_ALLOCATION_FAMILIES``).
FP32_LOGIT_BYTES = 4
#: FP8 training (Transformer Engine): an FP8 copy of each weight is kept between
#: micro-batches (1 byte per parameter; none when the weights themselves are FP8), and on
#: accelerators whose FP8 GEMMs take only the "TN" layout a transposed copy beside it (1 more):
#: Transformer Engine ``utils.is_non_tn_fp8_gemm_supported`` is False on compute capability
#: 8.9 (Ada) and 9.0 (Hopper), True from 10.0 (Blackwell), where one copy serves both passes.
FP8_WEIGHT_COPY_BYTES = 1
FP8_TN_ONLY_FAMILIES = ("nvidia-hopper", "nvidia-ada")
#: Families whose collectives run on engines beside the compute units rather than as kernels
#: on them (NCCL/RCCL): overlapped traffic takes no compute throughput there. TPU: XLA moves
#: data between chips with DMA engines beside the MXUs (How to Scale Your Model, the TPU and
#: profiling chapters); Trainium2: 20 collective-communication cores, "a dedicated engine ...
#: allows for overlapping computation and communication" (AWS Neuron NKI architecture guide and
#: glossary). Gaudi 2: its 24 x 100 GbE RoCE ports are on the die (HLS-Gaudi2 datasheet); that
#: its collectives take no TPC time is assumed, not measured.
OFFLOADED_COLLECTIVE_FAMILIES = ("google-tpu", "intel-gaudi", "aws-trainium")
#: Tokens per expert and micro-batch at which a grouped GEMM runs at half its rate on
#: accelerators without their own ``grouped_gemm_tile_tokens``: DeepGEMM's grouped FP8 GEMMs
#: on the H800 at 256 and 4,096-8,192 tokens per expert (``compute.py``; its M block is 128
#: rows).
GROUPED_GEMM_TILE_TOKENS = 130.0
#: Compiler-planned runtimes (XLA on TPU and Trainium) assign every buffer before the step
#: runs: no caching allocator, so no fragmentation to reserve for. They also fuse the loss's
#: upcast into its reductions: the logits stay as the LM head's BF16 output (2 bytes each),
#: where eager PyTorch (Megatron-LM ``cross_entropy.py``: ``vocab_parallel_logits.float()``)
#: materialises and keeps an FP32 copy (4). MaxText computes the logits in BF16
#: (``logits_dot_in_fp32: false``) and casts them to FP32 for the loss
#: (``cast_logits_to_fp32: true``, ``configs/base.yml``), an elementwise convert XLA fuses into
#: its consumers (assumed: no published memory profile shows it).
PLANNED_ALLOCATION_FAMILIES = ("google-tpu", "aws-trainium")
#: Fixed memory per accelerator: CUDA context, cuBLAS/NCCL workspaces (PyTorch reports about
#: 0.5-1 GiB of context on A100/H100 before any tensor is allocated).
CONTEXT_GIB = 1.0
#: Caching-allocator fragmentation, as a fraction of everything allocated.
FRAGMENTATION = 0.05
#: DeepSpeed ZeRO-3 gathers the parameters of one module at a time and keeps at most
#: ``stage3_max_live_parameters`` of them resident (default 1e9; DeepSpeed configuration
#: documentation, "ZeRO optimizations for FP16 training"); FSDP gathers whole layers.
DEEPSPEED_MAX_LIVE_PARAMS = 1e9
#: NCCL communicator buffers per accelerator (NCCL_BUFFSIZE 4 MiB per channel and peer).
NCCL_BUFFERS_GIB = 0.5


@dataclass(frozen=True)
class Calibration:
    """Software and fabric efficiencies, one set for all accelerators and runs.

    - ``matmul_scale``: achieved training-GEMM throughput over the accelerator's best-shape
      matmul efficiency (MAMF), for accelerators whose family has no fitted value of its own
      (``Accelerator.matmul_scale``). Below 1 because training GEMMs are not the best shape
      and share the device with other kernels. Fitted over all published runs together
      (``benchmarks/fidelity.py``): Ampere 0.817, Hopper 0.839, Blackwell 0.787, TPU 0.913,
      Gaudi 0.562, each in its family's ``hardware_specs`` files; the default is Hopper's (for
      families with no published run).
    - ``attention_scale``: fused (flash) attention throughput over MAMF, for accelerators
      without their own ``Accelerator.attention_scale``. Fitted at head dimension 128
      (``compute.head_width_factor`` for other widths): Ampere 0.84 (at its bound: 73% of the
      A100's peak, FlashAttention-2's best), Hopper 0.888 (71% of the H100's, near
      FlashAttention-3's 75%), Blackwell 0.650; the default is Hopper's (the TPU and Gaudi
      runs are fitted with it).
    - ``layer_overhead_s``: fixed time per transformer layer and pass (kernel launches, small
      kernels, synchronisation, GEMM tails): what makes small models and micro-batches less
      efficient. Fitted.
    - ``step_overhead_s``: fixed time per optimizer step whatever the model's size: the step's
      host synchronisations (the gradient norm and the overflow check read back before the
      update: Megatron-LM's ``optimizer-unscale-and-check-inf`` timer; the loss reductions for
      logging), the launches of the optimizer's many small kernels, the next batch's fetch.
      Fitted: 0.118 s. It shows in short steps: in MosaicML's llm-foundry H100 table
      (``scripts/train/benchmarking/README.md``; ``benchmarks/llm_foundry_check.py``), not in
      the fit but for MPT-7B, eight steps of one micro-batch (0.6-1.1 s, MPT-760M to 13B) come
      out 9-22% faster than published with a calibration fitted without it, -1% to +11% with
      it.
    - ``elementwise_traffic``: HBM bytes moved by the non-matmul kernels of a layer (norms,
      activations, dropout, residuals, softmax) per byte of the activations it stores (in
      BF16). Fitted.
    - ``scaleup_bus_efficiency`` / ``scaleout_bus_efficiency``: achieved bus bandwidth of ring
      collectives over the link rate. Scale-up fixed at 0.8 (nccl-tests on NVLink); scale-out
      fitted, at its bound (1.0 of one NIC per accelerator). At the bound because the fit
      wants more than one NIC's bandwidth for the groups with several ranks per node, which
      NCCL's rings do get (one ring per NIC); granting them all of a node's NICs overshoots
      the FSDP runs instead (``collectives.py``): the truth lies between, in the contention
      of overlapped collectives with the kernels, which is not modelled yet.
    - ``dp_overlap``: fraction of a pass's kernel time under which data-parallel traffic can
      hide (ZeRO-3 gathers in every pass; bucketed gradient reduction under the last
      backward when the software overlaps it). Fitted, at its bound (1.0): the physical
      ceiling, everything hideable hides; the published runs show no sign of less.
    - ``dp_contention``: share of the compute units data-parallel collectives take from the
      kernels they hide under. NCCL runs each channel as a thread block that holds a whole SM
      and shares it with no compute kernel, and takes 16 SMs on a DGX with 8 NICs (NVIDIA/nccl
      issue #689, maintainer's answer): 16 of the H100's 132 SMs. Hidden traffic of ``t``
      seconds so costs the passes it hides under ``dp_contention * t`` more. Not on families
      whose collectives run on their own engines (``OFFLOADED_COLLECTIVE_FAMILIES``). Measured,
      not fitted: left free, the fit over the 42 runs puts it near 0 (their FSDP runs, MosaicML's
      MPT, are predicted slow already), and a fit's wish is not a reason to drop a mechanism
      whose size NCCL states.
    - ``zero3_bandwidth_deepspeed`` / ``zero3_exposed_deepspeed``: DeepSpeed's ZeRO-3 as the
      six runs of Narayanan et al. 2021, Table 2 measured it (``TrainingJob.zero3_impl``):
      its gathers and reduce-scatters reach 0.693 of a ring's bus bandwidth, and at least 0.348
      of each pass's traffic stays exposed however long the pass. Fitted. FSDP has neither.
    - ``grouped_gemm_scale``: routed experts' grouped GEMMs over a dense GEMM's rate
      (many small GEMMs, one per local expert). Starts from DeepGEMM's measurement on the
      H800 (grouped FP8 GEMMs at 4-8K tokens per expert 1214-1346 TFLOP/s against 1520 for
      its best dense shape: about 0.85, deepseek-ai/DeepGEMM README @ 2e7e580); measured, not
      fitted (the five MoE runs in the fit take it as DeepGEMM measured it).
    - ``biased_expert_scale``: the rate of the routed experts' GEMMs, over the grouped rate
      above, of a MoE whose experts have biases when its expert MLP is not fused
      (``TrainingJob.unfused_expert_bias``: Megatron-Core's ``TEGroupedMLP``, whose biases
      go through a per-expert FP32 add, ``_apply_bias``, and into the GEMMs' epilogues and
      bias-gradient reductions; NVIDIA/Megatron-LM ``moe/experts.py`` before 6815c0fefe).
      Fitted: the runs that have it are gpt-oss-120b in BF16 on H100, B200 and GB200
      (Megatron-Bridge, NeMo 26.04; -3.0%, +8.7%, -7.6%). Which kernels take the time the
      rows cannot tell apart: memory-bound and GEMM time grow alike from the H100 to the
      B200, and the three runs (one and four micro-batches of 4,096 tokens, 16 and 2 local
      experts) all ask for about half the grouped rate; it is stated as a rate of the expert
      GEMMs because that is what scales with them. Without expert biases, or on the fused
      path, 1.
    - ``latency_scaleup_s`` / ``latency_scaleout_s``: per-hop latency of a ring step.
    """

    matmul_scale: float = 0.839
    attention_scale: float = 0.888
    layer_overhead_s: float = 449e-6
    elementwise_traffic: float = 2.56
    scaleup_bus_efficiency: float = 0.80
    scaleout_bus_efficiency: float = 1.0
    dp_overlap: float = 1.0
    dp_contention: float = 16 / 132
    step_overhead_s: float = 0.118
    zero3_exposed_deepspeed: float = 0.348
    zero3_bandwidth_deepspeed: float = 0.693
    grouped_gemm_scale: float = 0.85
    biased_expert_scale: float = 0.451
    latency_scaleup_s: float = 5e-6
    latency_scaleout_s: float = 10e-6


DEFAULT_CALIBRATION = Calibration()
