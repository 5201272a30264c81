"""The candidate models of ``solver.design``: one dense decoder shape per target size.

Every candidate is built like Llama 3 (Llama Team, Meta 2024, "The Llama 3 Herd of Models",
arXiv:2407.21783, Table 3, and the presets ``llama3-8b``, ``llama3-70b``, ``llama3.1-405b``):
a gated SwiGLU MLP, RMSNorm, RoPE (theta 500000), no biases, untied embeddings, the
128,256-token vocabulary, grouped-query attention with 8 key/value heads of 128 dimensions,
sequence length 8,192. Two numbers remain, the width ``h`` and the depth ``l``:

- **Aspect.** Llama 3 8B is 32 layers of 4096 (h/l = 128), 405B 126 layers of 16384 (130),
  70B 80 layers of 8192 (102). The rule takes the width, in multiples of 1024 (so that
  ``h / 128`` heads split into 8 key/value groups), whose model at depth ``h / 128`` comes
  nearest the target size (nearest in ratio). Loss depends
  little on the aspect ratio over a wide range (Kaplan et al. 2020, arXiv:2001.08361, sec. 3.1
  and Figure 5: width over depth from about 20 to 200 within a few per cent), so the rule
  trades no accuracy of the law for shapes that look like published ones.
- **Depth.** Then the layers, a multiple of 4 (at least 4), that bring the total nearest the
  target. A layer holds ``2 h**2`` (query, output) + ``2 * 1024 h`` (key, value) +
  ``3 * 3.5 h**2`` (MLP, width ``3.5 h`` as Llama 3 8B and 70B: 14336 and 28672) + ``2 h``
  (norms) parameters; the embedding and LM head ``2 * 128256 h``.

For 8.03B the rule gives Llama 3 8B exactly (32 x 4096, ffn 14336); for 70.6B, 64 x 9216; for
406B, 120 x 16384 (ffn 57344; Llama 3.1 405B has 126 x 16384 with ffn 53248).
"""

from __future__ import annotations

import dataclasses
import math

from solver.specs import ModelSpec

VOCAB = 128_256
HEAD_DIM = 128
KV_HEADS = 8
SEQ_LEN = 8192
#: Width over depth (Llama 3 8B: 4096 / 32).
ASPECT = 128
#: Width step: a multiple of HEAD_DIM * KV_HEADS, so heads split evenly into KV groups.
WIDTH_STEP = HEAD_DIM * KV_HEADS
LAYER_STEP = 4
#: MLP width over hidden, as Llama 3 8B and 70B (3.5; 405B: 3.25).
FFN_RATIO = 3.5
SOURCES = (
    "gpuplan design shape rule (solver/design_shapes.py): Llama 3 architecture (arXiv:2407.21783 "
    "Table 3: SwiGLU, RMSNorm, RoPE theta 500000, GQA with 8 KV heads, head dim 128, "
    "vocabulary 128256), hidden = 128 x layers in multiples of 1024, FFN 3.5 x hidden",
)


def layer_params(hidden: int) -> int:
    """Parameters of one layer of the family: attention, SwiGLU MLP and two RMSNorms."""
    kv_width = KV_HEADS * HEAD_DIM
    return 2 * hidden * hidden + 2 * hidden * kv_width + 3 * hidden * ffn(hidden) + 2 * hidden


def ffn(hidden: int) -> int:
    return int(FFN_RATIO * hidden)


def shape_for(target_params: float) -> tuple[int, int]:
    """``(layers, hidden)`` of the family's model nearest ``target_params`` parameters."""
    def at_aspect(h: int) -> float:  # parameters of width h at depth h / ASPECT
        return h / ASPECT * layer_params(h) + 2 * VOCAB * h + h

    top = WIDTH_STEP * (2 + int((ASPECT * target_params / 12.5) ** (1 / 3)) // WIDTH_STEP)
    hidden = min(range(WIDTH_STEP, top + 1, WIDTH_STEP),
                 key=lambda h: abs(math.log(at_aspect(h) / target_params)))
    body = target_params - 2 * VOCAB * hidden - hidden
    layers = max(LAYER_STEP, LAYER_STEP * round(body / layer_params(hidden) / LAYER_STEP))
    return layers, hidden


def build(layers: int, hidden: int, *, seq_len: int = SEQ_LEN) -> ModelSpec:
    """The family's model of ``layers`` x ``hidden``, named ``dense-<params>-<l>x<h>``."""
    spec = ModelSpec(
        name="design", layers=layers, hidden=hidden, heads=hidden // HEAD_DIM,
        kv_heads=KV_HEADS, head_dim=HEAD_DIM, ffn_hidden=ffn(hidden), vocab=VOCAB,
        seq_len=seq_len, gated_mlp=True, tied_embeddings=False, norm="rmsnorm",
        linear_bias=False, position_embedding="rope", rope_theta=500000.0)
    total = spec.params_total
    return dataclasses.replace(
        spec, name=f"dense-{size_text(total)}-{layers}x{hidden}",
        description=f"gpuplan design candidate: {layers} layers of {hidden}, "
        f"{hidden // HEAD_DIM} heads ({KV_HEADS} KV), FFN {ffn(hidden)}, {total:,} parameters",
        sources=SOURCES)


def size_text(params: float) -> str:
    """``8.0b``, ``411b``, ``1.4t``: a size for names (lower case: ``ModelSpec`` names)."""
    for unit, scale in (("t", 1e12), ("b", 1e9), ("m", 1e6)):
        if params >= scale:
            value = params / scale
            return f"{value:.2g}{unit}" if value < 10 else f"{value:.0f}{unit}"
    return f"{params:.0f}"


def family(min_params: float, max_params: float, per_decade: float) -> list[tuple[int, int]]:
    """Distinct ``(layers, hidden)`` for targets log-spaced ``per_decade`` to a decade from
    ``min_params`` to ``max_params`` (both ends included), smallest first."""
    steps = max(1, math.ceil(per_decade * math.log10(max_params / min_params)))
    shapes = {shape_for(min_params * (max_params / min_params) ** (i / steps))
              for i in range(steps + 1)}
    return sorted(shapes, key=lambda s: s[0] * layer_params(s[1]) + 2 * VOCAB * s[1])


__all__ = ["build", "family", "layer_params", "shape_for", "size_text"]
