"""Model files: gpuplan's TOML/JSON format, Hugging Face config.json files, presets, rejections."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import solver
from solver.errors import SpecError
from solver.model_files import (
    is_hf_config,
    load_model_file,
    model_from_hf_config,
    model_from_mapping,
    preset_models,
)
from solver.params import count_params


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- own format


def test_toml_model_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        'name = "my-model"\nlayers = 4\nhidden = 256\nheads = 8\nkv_heads = 2\n'
        'ffn_hidden = 512\nvocab = 1000\nseq_len = 1024\ngated_mlp = true\n'
        'norm = "rmsnorm"\nlinear_bias = false\nposition_embedding = "rope"\n'
        'sources = ["made up for a test"]\n',
        encoding="utf-8",
    )
    spec = load_model_file(path)
    assert spec.name == "my-model"
    assert (spec.layers, spec.hidden, spec.heads, spec.kv_heads) == (4, 256, 8, 2)
    assert spec.gated_mlp and spec.norm == "rmsnorm" and not spec.linear_bias
    assert spec.sources == ("made up for a test",)


def test_json_model_file_takes_its_name_from_the_stem(tmp_path: Path) -> None:
    path = write_json(tmp_path / "small-gpt.json",
                      {"layers": 2, "hidden": 64, "heads": 4, "vocab": 100, "seq_len": 128})
    spec = load_model_file(path)
    assert spec.name == "small-gpt"
    assert spec.ffn_hidden == 256  # default 4 * hidden
    assert spec.kv_heads == 4


def test_models_show_json_reads_back(tmp_path: Path) -> None:
    preset = {m.name: m for m in preset_models()}["mixtral-8x7b"]
    path = write_json(tmp_path / "copy.json", preset.to_dict())
    assert load_model_file(path) == preset


def test_derived_count_that_disagrees_is_rejected() -> None:
    data = {"name": "x", "layers": 2, "hidden": 64, "heads": 4, "params_total": 5}
    with pytest.raises(SpecError, match="params_total"):
        model_from_mapping(data, where="x.json")


def test_unknown_key_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "typo.toml"
    path.write_text('name = "t"\nlayers = 2\nhidden = 64\nheads = 4\nhiden_size = 3\n',
                    encoding="utf-8")
    with pytest.raises(SpecError) as err:
        load_model_file(path)
    message = str(err.value)
    assert str(path) in message
    assert "unknown field 'hiden_size'" in message
    assert "hidden" in message  # the known fields are listed


def test_missing_field_is_rejected() -> None:
    with pytest.raises(SpecError, match=r"m\.toml: missing field 'heads'"):
        model_from_mapping({"name": "m", "layers": 2, "hidden": 64}, where="m.toml")


def test_wrong_type_names_the_field_and_the_file() -> None:
    with pytest.raises(SpecError, match=r"^m\.toml: layers: expected an integer"):
        model_from_mapping({"name": "m", "layers": "two", "hidden": 64, "heads": 4},
                           where="m.toml")


def test_sources_must_be_a_list_of_strings() -> None:
    with pytest.raises(SpecError, match=r"m\.toml: sources"):
        model_from_mapping({"name": "m", "layers": 2, "hidden": 64, "heads": 4,
                            "sources": "one string"}, where="m.toml")


# ---------------------------------------------------------------------------- Hugging Face


def test_hf_llama(tmp_path: Path) -> None:
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "_name_or_path": "test/tiny-llama", "hidden_size": 64, "intermediate_size": 172,
        "num_hidden_layers": 3, "num_attention_heads": 8, "num_key_value_heads": 2,
        "vocab_size": 500, "max_position_embeddings": 2048, "tie_word_embeddings": False,
        "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "torch_dtype": "bfloat16",
    }
    spec = load_model_file(write_json(tmp_path / "config.json", config))
    assert spec.name == "test/tiny-llama"
    assert (spec.layers, spec.hidden, spec.heads, spec.kv_heads) == (3, 64, 8, 2)
    assert (spec.ffn_hidden, spec.vocab, spec.seq_len, spec.head_dim) == (172, 500, 2048, 8)
    assert spec.gated_mlp and not spec.tied_embeddings and not spec.linear_bias
    assert spec.norm == "rmsnorm" and spec.position_embedding == "rope"


def test_hf_llama3_8b_config_counts_like_the_preset(tmp_path: Path) -> None:
    # meta-llama/Meta-Llama-3-8B config.json (the shape keys).
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
        "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
        "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 8192,
        "tie_word_embeddings": False, "attention_bias": False,
    }
    folder = tmp_path / "Meta-Llama-3-8B"
    folder.mkdir()
    spec = load_model_file(write_json(folder / "config.json", config))
    assert spec.name == "Meta-Llama-3-8B"  # no name, no _name_or_path: the checkpoint's folder
    assert spec.seq_len == 8192
    preset = {m.name: m for m in preset_models()}["llama3-8b"]
    assert count_params(spec).total == count_params(preset).total


def test_hf_mistral_head_dim_and_null_kv_heads() -> None:
    config = {"model_type": "mistral", "hidden_size": 96, "intermediate_size": 256,
              "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": None,
              "head_dim": 32, "vocab_size": 100, "max_position_embeddings": 512}
    spec = model_from_hf_config(config, where="c.json", name="m")
    assert spec.head_dim == 32 and spec.kv_heads == 4


def test_hf_mixtral(tmp_path: Path) -> None:
    config = {
        "architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "hidden_size": 64,
        "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "vocab_size": 300, "max_position_embeddings": 4096,
        "num_local_experts": 8, "num_experts_per_tok": 2, "tie_word_embeddings": False,
    }
    spec = load_model_file(write_json(tmp_path / "mixtral.json", config))
    assert spec.name == "mixtral"
    assert (spec.experts, spec.top_k, spec.moe_ffn_hidden, spec.shared_experts) == (8, 2, 128, 0)
    assert spec.moe_layers == 2


def deepseek_v3_config(**changes: Any) -> dict[str, Any]:
    config = {
        "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3",
        "hidden_size": 64, "intermediate_size": 160, "moe_intermediate_size": 32,
        "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 4,
        "n_routed_experts": 16, "n_shared_experts": 1, "num_experts_per_tok": 4,
        "first_k_dense_replace": 1, "moe_layer_freq": 1, "q_lora_rank": 24,
        "kv_lora_rank": 16, "qk_nope_head_dim": 16, "qk_rope_head_dim": 8, "v_head_dim": 16,
        "vocab_size": 256, "max_position_embeddings": 1024, "tie_word_embeddings": False,
        "num_nextn_predict_layers": 1, "attention_bias": False,
    }
    config.update(changes)
    return config


def test_hf_deepseek_v3(tmp_path: Path) -> None:
    spec = load_model_file(write_json(tmp_path / "ds.json", deepseek_v3_config()))
    assert spec.uses_mla
    assert (spec.head_dim, spec.qk_rope_head_dim, spec.v_head_dim) == (16, 8, 16)
    assert (spec.q_lora_rank, spec.kv_lora_rank) == (24, 16)
    assert (spec.experts, spec.top_k, spec.shared_experts) == (16, 4, 1)
    assert (spec.ffn_hidden, spec.moe_ffn_hidden, spec.dense_layers) == (160, 32, 1)
    assert spec.moe_layers == 3


def test_hf_deepseek_v3_groups_and_mtp() -> None:
    spec = model_from_hf_config(deepseek_v3_config(n_group=4, topk_group=2,
                                                   topk_method="noaux_tc"),
                                where="c", name="ds")
    assert (spec.expert_groups, spec.expert_group_topk, spec.mtp_layers) == (4, 2, 1)
    greedy = model_from_hf_config(deepseek_v3_config(n_group=1, topk_group=1,
                                                     topk_method="greedy",
                                                     num_nextn_predict_layers=0),
                                  where="c", name="lite")
    assert (greedy.expert_groups, greedy.expert_group_topk, greedy.mtp_layers) == (0, 0, 0)


def test_hf_deepseek_v3_null_q_lora_rank() -> None:
    spec = model_from_hf_config(deepseek_v3_config(q_lora_rank=None), where="c", name="lite")
    assert spec.q_lora_rank == 0


def test_hf_deepseek_v3_full_config_counts_like_the_preset() -> None:
    # deepseek-ai/DeepSeek-V3 config.json (the shape keys).
    config = deepseek_v3_config(
        hidden_size=7168, intermediate_size=18432, moe_intermediate_size=2048,
        num_hidden_layers=61, num_attention_heads=128, num_key_value_heads=128,
        n_routed_experts=256, n_shared_experts=1, num_experts_per_tok=8,
        first_k_dense_replace=3, q_lora_rank=1536, kv_lora_rank=512, qk_nope_head_dim=128,
        qk_rope_head_dim=64, v_head_dim=128, vocab_size=129280,
        max_position_embeddings=163840)
    spec = model_from_hf_config(config, where="c", name="deepseek-v3")
    preset = {m.name: m for m in preset_models()}["deepseek-v3"]
    assert count_params(spec) == count_params(preset)


def test_hf_gpt2(tmp_path: Path) -> None:
    config = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_layer": 2,
              "n_embd": 32, "n_head": 4, "n_inner": None, "vocab_size": 50257,
              "n_positions": 1024, "n_ctx": 1024}
    spec = load_model_file(write_json(tmp_path / "gpt2.json", config))
    assert spec.ffn_hidden == 128  # n_inner null: 4 * n_embd
    assert spec.seq_len == 1024 and spec.vocab == 50257
    assert spec.tied_embeddings and spec.linear_bias
    assert spec.norm == "layernorm" and spec.position_embedding == "learned"
    assert not spec.gated_mlp


def test_hf_gpt2_small_counts_124m() -> None:
    # GPT-2 small (openai-community/gpt2): 124,439,808 parameters, the count of its
    # transformer weights (wte 50257*768 + wpe 1024*768 + 12 blocks of 7,087,872 + ln_f 1536).
    # Per block: attn c_attn 768*2304 + 2304, c_proj 768*768 + 768 -> 2,362,368;
    # mlp c_fc 768*3072 + 3072, c_proj 3072*768 + 768 -> 4,722,432; ln_1 + ln_2 3,072.
    # 38,597,376 + 786,432 + 85,054,464 + 1,536 = 124,439,808.
    config = {"model_type": "gpt2", "n_layer": 12, "n_embd": 768, "n_head": 12,
              "vocab_size": 50257, "n_positions": 1024}
    spec = model_from_hf_config(config, where="c", name="gpt2")
    assert count_params(spec).total == 124_439_808


def test_hf_opt(tmp_path: Path) -> None:
    config = {"architectures": ["OPTForCausalLM"], "model_type": "opt",
              "num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4,
              "ffn_dim": 256, "vocab_size": 1000, "max_position_embeddings": 2048,
              "word_embed_proj_dim": 64, "enable_bias": True, "do_layer_norm_before": True,
              "_name_or_path": "facebook/opt-tiny"}
    spec = load_model_file(write_json(tmp_path / "config.json", config))
    assert spec.name == "facebook/opt-tiny"
    assert (spec.layers, spec.hidden, spec.heads, spec.ffn_hidden) == (2, 64, 4, 256)
    assert spec.position_embedding == "learned" and spec.tied_embeddings
    assert spec.linear_bias and spec.norm == "layernorm"


def test_hf_opt_projected_embeddings_are_rejected() -> None:
    # OPT-350m: 512-wide embeddings projected into a 1024-wide stack.
    config = {"model_type": "opt", "num_hidden_layers": 24, "hidden_size": 1024,
              "num_attention_heads": 16, "ffn_dim": 4096, "vocab_size": 50272,
              "max_position_embeddings": 2048, "word_embed_proj_dim": 512}
    with pytest.raises(SpecError, match=r"^opt\.json: word_embed_proj_dim"):
        model_from_hf_config(config, where="opt.json", name="opt-350m")


def test_hf_qwen2_moe_shared_expert_width() -> None:
    config = {"model_type": "qwen2_moe", "hidden_size": 64, "intermediate_size": 128,
              "moe_intermediate_size": 16, "shared_expert_intermediate_size": 64,
              "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4,
              "num_experts": 8, "num_experts_per_tok": 2, "vocab_size": 100,
              "max_position_embeddings": 512, "decoder_sparse_step": 1, "mlp_only_layers": []}
    spec = model_from_hf_config(config, where="c", name="qm")
    assert (spec.experts, spec.top_k, spec.moe_ffn_hidden, spec.shared_experts) == (8, 2, 16, 4)


# ------------------------------------------------------------------- launcher facts, length


#: meta-llama/Llama-3.1-8B config.json as published on Hugging Face (typed from it).
LLAMA31_8B = {
    "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
    "bos_token_id": 128000, "eos_token_id": 128001, "hidden_act": "silu", "hidden_size": 4096,
    "initializer_range": 0.02, "intermediate_size": 14336, "max_position_embeddings": 131072,
    "mlp_bias": False, "model_type": "llama", "num_attention_heads": 32,
    "num_hidden_layers": 32, "num_key_value_heads": 8, "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "rope_theta": 500000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "transformers_version": "4.43.0.dev0", "use_cache": True, "vocab_size": 128256,
}


def test_hf_llama31_8b_plans_its_pretraining_length(tmp_path: Path) -> None:
    # Llama 3.1 was pre-trained at 8K and extended to 128K (arXiv:2407.21783 sec. 3.4.1-3.4.2);
    # the config's rope_scaling keeps the 8K as original_max_position_embeddings.
    folder = tmp_path / "Llama-3.1-8B"
    folder.mkdir()
    path = write_json(folder / "config.json", LLAMA31_8B)
    spec = load_model_file(path)
    assert spec.name == "Llama-3.1-8B"
    assert spec.seq_len == 8192
    assert (spec.rope_theta, spec.norm_eps, spec.dropout) == (500000.0, 1e-05, 0.0)
    assert (spec.rope_scaling, spec.rope_scaling_factor, spec.rope_original_seq_len) == (
        "llama3", 8.0, 8192)
    assert "131072" in spec.description and "--seq-len" in spec.description
    # The job plans 8192 unless told otherwise.
    assert solver.TrainingJob(model=solver.model(str(path)), tokens=1e12).seq_len == 8192
    job = solver.TrainingJob(model=solver.model(str(path)), tokens=1e12, seq_len=131072)
    assert job.seq_len == 131072


def test_hf_longest_context_is_capped_without_a_scaling(tmp_path: Path) -> None:
    # No rope_scaling: max_position_embeddings 32768 is capped at 8192 (Llama 3's pre-training
    # length); 4096 stays.
    config = {**LLAMA31_8B, "rope_scaling": None, "max_position_embeddings": 32768}
    spec = load_model_file(write_json(tmp_path / "long.json", config))
    assert spec.name == "long" and spec.seq_len == 8192
    assert "32768" in spec.description and "capped" in spec.description
    config["max_position_embeddings"] = 4096
    assert load_model_file(write_json(tmp_path / "short.json", config)).seq_len == 4096


def test_hf_name_rules(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    named = {**LLAMA31_8B, "_name_or_path": "meta-llama/Llama-3.1-8B"}
    assert load_model_file(write_json(folder / "config.json", named)).name == \
        "meta-llama/Llama-3.1-8B"
    local = {**LLAMA31_8B, "name_or_path": "/data/models/my-llama/"}
    assert load_model_file(write_json(folder / "config.json", local)).name == "my-llama"
    assert load_model_file(write_json(folder / "llama31.json", LLAMA31_8B)).name == "llama31"


def test_hf_rope_parameters_layout() -> None:
    # Newer transformers releases write rope_theta and the scaling under rope_parameters.
    config = {key: value for key, value in LLAMA31_8B.items()
              if key not in ("rope_theta", "rope_scaling")}
    config["rope_parameters"] = {"rope_theta": 500000.0, **LLAMA31_8B["rope_scaling"]}  # type: ignore[dict-item]
    spec = model_from_hf_config(config, where="c", name="l")
    assert (spec.rope_theta, spec.rope_scaling, spec.seq_len) == (500000.0, "llama3", 8192)


#: deepseek-ai/DeepSeek-V3 config.json as published on Hugging Face (every key gpuplan reads).
DEEPSEEK_V3 = {
    "architectures": ["DeepseekV3ForCausalLM"], "attention_bias": False,
    "attention_dropout": 0.0, "aux_loss_alpha": 0.001, "first_k_dense_replace": 3,
    "hidden_size": 7168, "intermediate_size": 18432, "kv_lora_rank": 512,
    "max_position_embeddings": 163840, "model_type": "deepseek_v3",
    "moe_intermediate_size": 2048, "moe_layer_freq": 1, "n_group": 8, "n_routed_experts": 256,
    "n_shared_experts": 1, "norm_topk_prob": True, "num_attention_heads": 128,
    "num_experts_per_tok": 8, "num_hidden_layers": 61, "num_key_value_heads": 128,
    "num_nextn_predict_layers": 1, "q_lora_rank": 1536, "qk_nope_head_dim": 128,
    "qk_rope_head_dim": 64, "rms_norm_eps": 1e-06,
    "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 1.0,
                     "mscale_all_dim": 1.0, "original_max_position_embeddings": 4096,
                     "type": "yarn"},
    "rope_theta": 10000, "routed_scaling_factor": 2.5, "scoring_func": "sigmoid",
    "seq_aux": True, "tie_word_embeddings": False, "topk_group": 4, "topk_method": "noaux_tc",
    "v_head_dim": 128, "vocab_size": 129280,
}


def test_hf_deepseek_v3_router_and_facts(tmp_path: Path) -> None:
    folder = tmp_path / "DeepSeek-V3"
    folder.mkdir()
    spec = load_model_file(write_json(folder / "config.json", DEEPSEEK_V3))
    assert spec.name == "DeepSeek-V3"
    assert (spec.router_score, spec.router_expert_bias, spec.router_scaling) == (
        "sigmoid", True, 2.5)
    assert (spec.router_norm_topk, spec.router_balance, spec.router_aux_loss_coeff) == (
        True, "seq_aux_loss", 0.001)
    assert (spec.expert_groups, spec.expert_group_topk, spec.mtp_layers) == (8, 4, 1)
    assert (spec.norm_eps, spec.rope_theta, spec.dropout, spec.qk_norm) == (
        1e-06, 10000.0, 0.0, True)
    assert (spec.rope_scaling, spec.rope_scaling_factor, spec.rope_original_seq_len) == (
        "yarn", 40.0, 4096)
    assert spec.seq_len == 4096  # pre-training length, arXiv:2412.19437 sec. 4.2
    preset = {m.name: m for m in preset_models()}["deepseek-v3"]
    assert count_params(spec) == count_params(preset)


def test_hf_deepseek_v2_router_defaults() -> None:
    # DeepSeek-V2-style config without scoring_func/seq_aux/topk_method: softmax scores, no
    # expert bias, DeepSeek's config-class default seq_aux = true.
    spec = model_from_hf_config(deepseek_v3_config(), where="c", name="v2")
    assert (spec.router_score, spec.router_expert_bias, spec.router_balance) == (
        "softmax", False, "seq_aux_loss")
    assert (spec.router_scaling, spec.router_aux_loss_coeff) == (1.0, 0.0)
    plain = model_from_hf_config(deepseek_v3_config(seq_aux=False), where="c", name="v2")
    assert plain.router_balance == "aux_loss"


#: mistralai/Mixtral-8x7B-v0.1 config.json as published on Hugging Face.
MIXTRAL_8X7B = {
    "architectures": ["MixtralForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1,
    "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
    "intermediate_size": 14336, "max_position_embeddings": 32768, "model_type": "mixtral",
    "num_attention_heads": 32, "num_experts_per_tok": 2, "num_hidden_layers": 32,
    "num_key_value_heads": 8, "num_local_experts": 8, "output_router_logits": False,
    "rms_norm_eps": 1e-05, "rope_theta": 1e6, "router_aux_loss_coef": 0.02,
    "sliding_window": None, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "transformers_version": "4.36.0.dev0", "use_cache": True, "vocab_size": 32000,
}


def test_hf_mixtral_router_and_facts() -> None:
    spec = model_from_hf_config(MIXTRAL_8X7B, where="c", name="mixtral")
    assert (spec.router_score, spec.router_aux_loss_coeff, spec.rope_theta) == (
        "softmax", 0.02, 1e6)
    assert (spec.router_norm_topk, spec.router_balance, spec.router_expert_bias) == (
        True, "aux_loss", False)
    assert (spec.norm_eps, spec.dropout) == (1e-05, 0.0)
    # No rope_scaling: the 32768-token context is capped at 8192 (the paper trained at 32K:
    # --seq-len 32768 plans that).
    assert spec.seq_len == 8192
    preset = {m.name: m for m in preset_models()}["mixtral-8x7b"]
    assert count_params(spec) == count_params(preset)
    assert (preset.router_score, preset.router_norm_topk, preset.router_aux_loss_coeff) == (
        spec.router_score, spec.router_norm_topk, spec.router_aux_loss_coeff)


def test_hf_gpt2_and_opt_dropout_and_eps() -> None:
    # openai-community/gpt2 config.json: layer_norm_epsilon 1e-05, resid_pdrop 0.1,
    # attn_pdrop 0.1. facebook/opt-125m: dropout 0.1, attention_dropout 0.0, no epsilon key
    # (nn.LayerNorm's 1e-5).
    gpt2 = model_from_hf_config({"model_type": "gpt2", "n_layer": 2, "n_embd": 32, "n_head": 4,
                                 "vocab_size": 50257, "n_positions": 1024,
                                 "layer_norm_epsilon": 1e-05, "resid_pdrop": 0.1,
                                 "attn_pdrop": 0.1, "embd_pdrop": 0.1}, where="c", name="g")
    assert (gpt2.norm_eps, gpt2.dropout, gpt2.seq_len, gpt2.rope_scaling) == (
        1e-05, 0.1, 1024, "none")
    opt = model_from_hf_config({"model_type": "opt", "num_hidden_layers": 2, "hidden_size": 32,
                                "num_attention_heads": 4, "ffn_dim": 128, "vocab_size": 100,
                                "max_position_embeddings": 2048, "dropout": 0.1,
                                "attention_dropout": 0.0}, where="c", name="o")
    assert (opt.norm_eps, opt.dropout, opt.seq_len) == (1e-05, 0.1, 2048)


def test_hf_qwen2_moe_router() -> None:
    config = {"model_type": "qwen2_moe", "hidden_size": 64, "intermediate_size": 128,
              "moe_intermediate_size": 32, "shared_expert_intermediate_size": 64,
              "num_hidden_layers": 2, "num_attention_heads": 4, "num_experts": 8,
              "num_experts_per_tok": 2, "vocab_size": 100, "max_position_embeddings": 512,
              "norm_topk_prob": False, "router_aux_loss_coef": 0.001}
    spec = model_from_hf_config(config, where="c", name="q")
    assert (spec.router_norm_topk, spec.router_aux_loss_coeff, spec.router_score) == (
        False, 0.001, "softmax")


@pytest.mark.parametrize("changes, key", [
    ({"scoring_func": "relu"}, "scoring_func"),
    ({"rms_norm_eps": -1e-06}, "rms_norm_eps"),
    ({"rms_norm_eps": "1e-6"}, "rms_norm_eps"),
    ({"routed_scaling_factor": 0}, "routed_scaling_factor"),
    ({"aux_loss_alpha": -0.1}, "aux_loss_alpha"),
    ({"attention_dropout": 1.5}, "attention_dropout"),
    ({"rope_theta": -10000}, "rope_theta"),
    ({"rope_scaling": "yarn"}, "rope_scaling"),
    ({"rope_scaling": {"type": "ntk-by-parts", "factor": 4}}, r"rope_scaling\.rope_type"),
    ({"rope_scaling": {"type": "yarn", "factor": 40}},
     r"rope_scaling\.original_max_position_embeddings"),
    ({"rope_scaling": {"type": "yarn", "factor": 0.5, "original_max_position_embeddings": 4}},
     r"rope_scaling\.factor"),
    ({"seq_aux": "yes"}, "seq_aux"),
    ({"norm_topk_prob": 1}, "norm_topk_prob"),
])
def test_hf_bad_fact_names_its_key(changes: dict[str, Any], key: str) -> None:
    with pytest.raises(SpecError, match=rf"^ds\.json: {key}: expected"):
        model_from_hf_config({**DEEPSEEK_V3, **changes}, where="ds.json", name="ds")


def test_hf_model_type_from_architectures_only() -> None:
    config = {"architectures": ["MistralForCausalLM"], "hidden_size": 64,
              "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
              "vocab_size": 100, "max_position_embeddings": 512}
    assert is_hf_config(config)
    assert model_from_hf_config(config, where="c", name="m").gated_mlp


def test_hf_unknown_model_type_is_rejected(tmp_path: Path) -> None:
    path = write_json(tmp_path / "config.json",
                      {"model_type": "bert", "hidden_size": 768, "num_hidden_layers": 12})
    with pytest.raises(SpecError) as err:
        load_model_file(path)
    message = str(err.value)
    assert str(path) in message
    assert "model_type" in message and "'bert'" in message
    assert "llama" in message and "deepseek_v3" in message  # the supported list


def test_hf_missing_key_is_named(tmp_path: Path) -> None:
    config = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
              "num_attention_heads": 4, "vocab_size": 100, "max_position_embeddings": 512}
    path = write_json(tmp_path / "config.json", config)
    with pytest.raises(SpecError) as err:
        load_model_file(path)
    assert str(path) in str(err.value)
    assert "'intermediate_size'" in str(err.value)


def test_hf_wrong_type_names_the_hf_key() -> None:
    config = deepseek_v3_config(n_routed_experts="many")
    with pytest.raises(SpecError, match=r"^c\.json: n_routed_experts: expected an integer"):
        model_from_hf_config(config, where="c.json", name="x")


def test_hf_inconsistent_config_names_the_file() -> None:
    config = deepseek_v3_config(num_experts_per_tok=32)
    with pytest.raises(SpecError, match=r"^c\.json: top_k: .*model_type 'deepseek_v3'"):
        model_from_hf_config(config, where="c.json", name="x")


# ---------------------------------------------------------------------------- file problems


def test_binary_garbage_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "garbage.toml"
    path.write_bytes(bytes(range(128, 256)) * 4)
    with pytest.raises(SpecError) as err:
        load_model_file(path)
    assert str(path) in str(err.value)
    assert "UTF-8" in str(err.value)
    assert "\n" not in str(err.value)


def test_truncated_json_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    path.write_text(json.dumps({"model_type": "llama", "hidden_size": 4096})[:25],
                    encoding="utf-8")
    with pytest.raises(SpecError) as err:
        load_model_file(path)
    assert str(path) in str(err.value)
    assert "not valid JSON" in str(err.value)
    assert "\n" not in str(err.value)


def test_invalid_toml_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('name = "x"\nlayers = = 2\n', encoding="utf-8")
    with pytest.raises(SpecError, match="not valid TOML") as err:
        load_model_file(path)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_file_over_one_megabyte_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    path.write_text('{"name": "' + "x" * 1_100_000 + '"}', encoding="utf-8")
    with pytest.raises(SpecError) as err:
        load_model_file(path)
    assert str(path) in str(err.value)
    assert "too large" in str(err.value)


def test_top_level_array_is_rejected(tmp_path: Path) -> None:
    path = write_json(tmp_path / "list.json", [1, 2, 3])
    with pytest.raises(SpecError, match="at the top level, got an array") as err:
        load_model_file(path)
    assert str(path) in str(err.value)


def test_missing_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(SpecError, match="cannot read") as err:
        load_model_file(path)
    assert str(path) in str(err.value)


def test_unknown_extension_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "model.yaml"
    path.write_text("layers: 2\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"\.toml or \.json") as err:
        load_model_file(path)
    assert str(path) in str(err.value)


# ---------------------------------------------------------------------------- presets


def test_presets_load_with_sources_and_descriptions() -> None:
    presets = {m.name: m for m in preset_models()}
    assert {"gpt3-175b", "llama3-8b", "llama3-70b", "llama3.1-405b", "mixtral-8x7b",
            "deepseek-v3", "gpt4-estimate"} <= set(presets)
    for spec in presets.values():
        assert spec.description
        assert spec.sources
    assert "UNOFFICIAL" in presets["gpt4-estimate"].description
    assert any("arXiv:2005.14165" in s for s in presets["gpt3-175b"].sources)


#: The config.json keys of the launcher facts, with values of every JSON kind.
_FACT_KEYS = ["rope_theta", "rope_scaling", "rope_parameters", "rms_norm_eps",
              "layer_norm_epsilon", "attention_dropout", "hidden_dropout", "resid_pdrop",
              "dropout", "scoring_func", "topk_method", "routed_scaling_factor",
              "norm_topk_prob", "seq_aux", "aux_loss_alpha", "router_aux_loss_coef",
              "original_max_position_embeddings", "_name_or_path", "name_or_path"]
_SCALARS = (st.none() | st.booleans() | st.integers(-10**6, 10**6)
            | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8))
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(["rope_type", "type", "factor", "original_max_position_embeddings",
                     "rope_theta"]) | st.text(max_size=4), inner, max_size=4), max_leaves=8)


@settings(max_examples=150, deadline=None)
@given(changes=st.dictionaries(st.sampled_from(_FACT_KEYS), _VALUES, max_size=6),
       base=st.sampled_from(["llama", "mixtral", "deepseek"]))
def test_random_fact_values_load_or_raise_spec_error(changes: dict[str, Any], base: str) -> None:
    config = {"llama": LLAMA31_8B, "mixtral": MIXTRAL_8X7B, "deepseek": DEEPSEEK_V3}[base]
    try:
        spec = model_from_hf_config({**config, **changes}, where="c", name="x")
    except SpecError as err:
        assert str(err).startswith("c: ") and "\n" not in str(err)
    else:
        assert 1 <= spec.seq_len <= 131072 and spec.norm_eps > 0
