"""Which attention FLOP count a long-sequence table's "TFLOPS / GPU" uses, read from the table.

A "model TFLOP/s" figure is tokens/s times the publisher's FLOPs per token, and publishers count
causal attention two ways: the full ``12 s/h`` term (Megatron-LM's formula before 2025, NeMo
2.x ``flops_formulas.py``) or the halved ``6 s/h`` that a causal mask leaves (Megatron-Bridge,
MaxText after PR #1988). At 128K tokens the two differ 1.7 times, so a page that does not say
which it used cannot be compared with a prediction until that is settled.

This script settles it from the page itself, with no step model: a table of one model at
sequence lengths ``s`` gives, under each count ``c``, the time per token
``t(s) = c(s) / TFLOPS(s)``. Between two rows the growth of ``t`` is what the longer attention
cost, so the work of that attention (the causal FLOPs, ``6 L h s`` per token: forward 2 and
backward 4 matmul FLOPs over the half-masked ``s x s`` scores) over the growth of ``t`` is the
rate the attention kernels ran at. A count is kept only if that rate is one a real kernel
reaches: above FlashAttention-2's on that part for a page whose software used a faster kernel,
and below the best published forward rate (a forward-and-backward average sits under it).

Result (printed below): the H100 page's figures mean the causal count (54% of the BF16 peak;
the full count would put Transformer Engine's cuDNN kernel at 27%, below FlashAttention-2's
35%); the B200 page's mean the full count (36%; the causal count would need 72% averaged over
forward and backward, FlashAttention-3's best forward share on Hopper).

Data: NVIDIA/NeMo ``docs/source/performance/performance_long_sequence.md`` @ 19fadb67
(2025-05-08): "LLAMA2-7B (FP8) - H100" (NeMo 24.03.01, whose Transformer Engine 1.4 picks cuDNN
fused attention on sm90: ``transformer_engine/pytorch/attention.py`` @ v1.4, "Select
FusedAttention on sm90") and "LLAMA3-8B (FP8) - B200" (NeMo 25.04.rc2), the "With CP" column
at 128K and 1024K tokens, where the layouts are alike (TP4/TP8 with CP; TP2/TP4 with CP).

Run:  python benchmarks/flop_convention.py
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Table:
    """Two rows of one page's table: the model's shape, its dense FLOPs per token and the
    published TFLOP/s per GPU at 128K and 1024K tokens."""

    name: str
    layers: int
    hidden: int
    dense_flops_per_token: float  # every term but the attention scores
    tflops_128k: float
    tflops_1m: float
    bf16_peak_tflops: float  # dense BF16 peak of the part (hardware_specs/*.toml)


def dense_flops(layers: int, hidden: int, kv_ratio: float, ffn: int, vocab: int) -> float:
    """NeMo's per-token count without the attention scores: ``L h^2 (12 + 12 kv/heads +
    18 ffn/h + 6 V/(L h))`` (NVIDIA/NeMo ``nemo/utils/flops_formulas.py`` llama2/llama3)."""
    return layers * hidden**2 * (12 + 12 * kv_ratio + 18 * ffn / hidden
                                 + 6 * vocab / (layers * hidden))


TABLES = (
    Table("Llama 2 7B, H100, NeMo 24.03", 32, 4096, dense_flops(32, 4096, 1.0, 11008, 32000),
          555.0, 536.0, 989.4),
    Table("Llama 3 8B, B200, NeMo 25.04", 32, 4096, dense_flops(32, 4096, 0.25, 14336, 128256),
          1588.0, 1608.0, 2250.0),
)
SEQ_128K = 131072
SEQ_1M = 1048576


def attention_rate_tflops(table: Table, full_count: bool) -> float:
    """The rate the attention ran at if the page counted ``12 s/h`` (``full_count``) or
    ``6 s/h`` per layer: the causal attention FLOPs added between the two rows over the time
    per token they added."""
    per_seq = (12 if full_count else 6) * table.layers * table.hidden

    def seconds_per_token(seq: int, tflops: float) -> float:
        return (table.dense_flops_per_token + per_seq * seq) / (tflops * 1e12)

    added_s = seconds_per_token(SEQ_1M, table.tflops_1m) - seconds_per_token(
        SEQ_128K, table.tflops_128k)
    causal_work = 6 * table.layers * table.hidden * (SEQ_1M - SEQ_128K)
    return causal_work / added_s / 1e12


def main() -> None:
    print("attention rate implied between the 128K and 1024K rows (TFLOP/s per GPU, and as a "
          "share of the BF16 peak):")
    print(f"{'table':<32} {'full 12s/h count':>20} {'causal 6s/h count':>20}")
    for t in TABLES:
        full, causal = attention_rate_tflops(t, True), attention_rate_tflops(t, False)
        print(f"{t.name:<32} {full:>9.0f} ({full / t.bf16_peak_tflops:>4.0%})     "
              f"{causal:>9.0f} ({causal / t.bf16_peak_tflops:>4.0%})")
    print("bounds: FlashAttention-2 reaches about 35% of the H100's BF16 peak "
          "(FlashAttention-3, arXiv:2407.08608, sec. 1), FlashAttention-3 up to 75% in the "
          "forward pass alone (its abstract); no kernel's forward-and-backward average "
          "reaches its forward's best.")


if __name__ == "__main__":
    main()
