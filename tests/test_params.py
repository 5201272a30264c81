"""Parameter counts: the presets against published totals, and small models counted by hand.

The hand-worked expectations below were computed on paper from each layer's weight shapes, not
taken from ``solver.params``'s output.
"""

from __future__ import annotations

import pytest

from solver.model_files import preset_models
from solver.params import count_params
from solver.specs import ModelSpec

PRESETS = {m.name: m for m in preset_models()}

# (preset, published total, published active, relative tolerance, where the figures come from)
PUBLISHED = [
    # Narayanan et al. 2021 (arXiv:2104.04473) Table 1: 174.6B, the eq. (2) count with V=51200,
    # s=2048 (GPT-3's headline is "175B", Brown et al. 2020, arXiv:2005.14165).
    ("gpt3-175b", 174.6e9, 174.6e9, 0.01),
    # Hugging Face model card meta-llama/Meta-Llama-3-8B: 8.03B.
    ("llama3-8b", 8.03e9, 8.03e9, 0.01),
    # Hugging Face model card meta-llama/Meta-Llama-3-70B: 70.55B (shown as 70.6B).
    ("llama3-70b", 70.55e9, 70.55e9, 0.01),
    # Hugging Face model card meta-llama/Llama-3.1-405B: 405.85B (shown as 406B).
    ("llama3.1-405b", 405.85e9, 405.85e9, 0.01),
    # Mistral AI, "Mixtral of experts" (2023-12-11): 46.7B total, 12.9B used per token
    # (arXiv:2401.04088 rounds them to 47B / 13B).
    ("mixtral-8x7b", 46.7e9, 12.9e9, 0.01),
    # DeepSeek-V3 Technical Report (arXiv:2412.19437): 671B total, excluding the 14B MTP
    # module. Its "37B activated" is checked separately below.
    ("deepseek-v3", 671e9, None, 0.01),
    # UNOFFICIAL: SemiAnalysis, "GPT-4 Architecture, Infrastructure, Training Dataset, Costs,
    # Vision, MoE" (July 2023), as reported publicly: ~1.8T total, ~280B active. An estimate,
    # so 3%.
    ("gpt4-estimate", 1.8e12, 280e9, 0.03),
]


def test_every_interface_preset_is_present() -> None:
    assert set(PRESETS) == {row[0] for row in PUBLISHED}


@pytest.mark.parametrize(("name", "total", "active", "tolerance"), PUBLISHED)
def test_preset_matches_published_total(
    name: str, total: float, active: float | None, tolerance: float
) -> None:
    counts = count_params(PRESETS[name])
    assert counts.total == pytest.approx(total, rel=tolerance)
    if active is not None:
        assert counts.active == pytest.approx(active, rel=tolerance)


def test_dense_presets_are_all_active() -> None:
    for name in ("gpt3-175b", "llama3-8b", "llama3-70b", "llama3.1-405b"):
        counts = count_params(PRESETS[name])
        assert counts.active == counts.total


def test_deepseek_v3_activated() -> None:
    counts = count_params(PRESETS["deepseek-v3"])
    # deepseek-ai/DeepSeek-V3 README_WEIGHTS.md: 36.6B activated in the main model, "including
    # 0.9B for the output Head" and so not the input embedding lookup (129280 x 7168).
    assert counts.active - counts.embedding == pytest.approx(36.6e9, rel=0.01)
    # arXiv:2412.19437's headline "37B activated" is a rounding; solver.params also counts the
    # input embedding as active (+0.93B), which puts it 1.5% above the headline.
    assert counts.active == pytest.approx(37e9, rel=0.02)


def test_gpt3_reproduces_narayanan_eq2_exactly() -> None:
    # Narayanan et al. 2021 eq. (2): P = 12*l*h^2 + 13*l*h + (V+s)*h, plus the final LayerNorm
    # (2h) that eq. (2) leaves out. l=96, h=12288, V=51200, s=2048:
    #   12*96*12288^2 = 173,946,175,488; 13*96*12288 = 15,335,424; 53,248*12288 = 654,311,424;
    #   2*12288 = 24,576  -> 174,615,846,912
    assert count_params(PRESETS["gpt3-175b"]).total == 174_615_846_912


def test_tiny_gpt_counted_by_hand() -> None:
    # GPT-2 style: LayerNorm, biases everywhere, learned positions, tied embeddings,
    # ffn = 4*hidden = 32.
    spec = ModelSpec(name="tiny-gpt", layers=2, hidden=8, heads=2, vocab=10, seq_len=4,
                     tied_embeddings=True)
    # token embedding 10*8 = 80; positions 4*8 = 32                          -> 112
    # attention: Q, K, V, O weights 4*8*8 = 256; biases 4*8 = 32             -> 288
    # MLP: 8*32 + 32*8 = 512; biases 32 + 8 = 40                             -> 552
    # two LayerNorms (scale + bias): 2*(8 + 8) = 32
    # per layer 288 + 552 + 32 = 872; two layers 1,744
    # final LayerNorm 16; lm_head tied: 0
    # total 112 + 1,744 + 16 = 1,872
    # (cross-check with eq. (2): 12*2*64 = 1,536; 13*2*8 = 208; (10+4)*8 = 112;
    #  1,536 + 208 + 112 = 1,856; + final LayerNorm 16 = 1,872)
    counts = count_params(spec)
    assert counts.embedding == 112
    assert counts.attention_per_layer == 288
    assert counts.dense_mlp_per_layer == 552
    assert counts.norms_per_layer == 32
    assert counts.lm_head == 0
    assert counts.final_norm == 16
    assert counts.total == 1_872
    assert counts.active == 1_872


def test_tiny_gated_gqa_counted_by_hand() -> None:
    # Llama style: SwiGLU, RMSNorm, RoPE, no biases, untied; 4 heads of 4, 2 KV heads.
    spec = ModelSpec(name="tiny-llama", layers=2, hidden=16, heads=4, kv_heads=2,
                     ffn_hidden=24, vocab=20, seq_len=8, gated_mlp=True, norm="rmsnorm",
                     linear_bias=False, position_embedding="rope")
    # token embedding 20*16 = 320 (RoPE: no position table); lm_head 20*16 = 320
    # attention: Q 16*16 = 256; K 16*(2*4) = 128; V 128; O 16*16 = 256        -> 768
    # MLP: gate, up, down 3*16*24                                              -> 1,152
    # two RMSNorms (scale only): 2*16 = 32
    # per layer 768 + 1,152 + 32 = 1,952; two layers 3,904
    # final RMSNorm 16
    # total 320 + 320 + 3,904 + 16 = 4,560
    counts = count_params(spec)
    assert counts.attention_per_layer == 768
    assert counts.dense_mlp_per_layer == 1_152
    assert counts.total == 4_560
    assert counts.active == 4_560


def test_tiny_moe_with_shared_expert_and_dense_layer_counted_by_hand() -> None:
    # 3 layers: the first dense (ffn 16), then 2 MoE layers of 4 routed experts (ffn 6),
    # top-2, plus 1 shared expert; SwiGLU, RMSNorm, RoPE, no biases, untied; GQA 2 heads of 4,
    # 1 KV head.
    spec = ModelSpec(name="tiny-moe", layers=3, hidden=8, heads=2, kv_heads=1, ffn_hidden=16,
                     vocab=10, seq_len=4, experts=4, top_k=2, moe_ffn_hidden=6,
                     shared_experts=1, dense_layers=1, gated_mlp=True, norm="rmsnorm",
                     linear_bias=False, position_embedding="rope")
    # embedding 10*8 = 80; lm_head 80; final RMSNorm 8                        -> 168
    # attention: Q 8*8 = 64; K 8*4 = 32; V 32; O 64                           -> 192
    # two RMSNorms 16
    # dense layer: 192 + 16 + 3*8*16 (384) = 592
    # one expert 3*8*6 = 144; router 8*4 = 32; shared expert 144
    # MoE layer, all experts: 192 + 16 + 32 + 144 + 4*144 (576) = 960; two of them 1,920
    # MoE layer, active:      192 + 16 + 32 + 144 + 2*144 (288) = 672; two of them 1,344
    # total  = 168 + 592 + 1,920 = 2,680
    # active = 168 + 592 + 1,344 = 2,104
    counts = count_params(spec)
    assert counts.expert_mlp == 144
    assert counts.router_per_layer == 32
    assert counts.shared_mlp_per_layer == 144
    assert counts.dense_mlp_per_layer == 384
    assert counts.total == 2_680
    assert counts.active == 2_104


def test_tiny_mla_counted_by_hand() -> None:
    # Multi-head latent attention (DeepSeek-V2 arXiv:2405.04434 sec. 2.1), as in Hugging
    # Face's DeepseekV3Attention: q_a_proj, q_a_layernorm, q_b_proj, kv_a_proj_with_mqa,
    # kv_a_layernorm, kv_b_proj, o_proj; no biases.
    spec = ModelSpec(name="tiny-mla", layers=1, hidden=8, heads=2, head_dim=4,
                     qk_rope_head_dim=2, v_head_dim=3, q_lora_rank=5, kv_lora_rank=6,
                     ffn_hidden=4, vocab=10, seq_len=4, gated_mlp=True, norm="rmsnorm",
                     linear_bias=False, position_embedding="rope")
    # q_a 8*5 = 40; q_a norm 5; q_b 5*2*(4+2) = 60                           -> 105
    # kv_a 8*(6+2) = 64; kv_a norm 6; kv_b 6*2*(4+3) = 84                    -> 154
    # o 2*3*8 = 48
    # attention 105 + 154 + 48 = 307
    # MLP 3*8*4 = 96; two RMSNorms 16; embedding 80; lm_head 80; final RMSNorm 8
    # total 307 + 96 + 16 + 80 + 80 + 8 = 587
    counts = count_params(spec)
    assert counts.attention_per_layer == 307
    assert counts.total == 587


def test_mla_without_query_compression_counted_by_hand() -> None:
    # q_lora_rank 0 (DeepSeek-V2-Lite): the query is one full-rank projection.
    spec = ModelSpec(name="tiny-mla-lite", layers=1, hidden=8, heads=2, head_dim=4,
                     qk_rope_head_dim=2, v_head_dim=3, kv_lora_rank=6, vocab=10,
                     norm="rmsnorm", linear_bias=False, position_embedding="rope")
    # q 8*2*(4+2) = 96; kv 64 + 6 + 84 = 154; o 48  -> 298
    assert count_params(spec).attention_per_layer == 298
