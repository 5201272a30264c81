"""ModelSpec's launcher facts (rope, norm epsilon, qk norm, dropout, router): validation, the
job's dropout taken from the model, and the presets' values against their published configs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

import solver
from solver.errors import SpecError
from solver.model_files import load_model_file

TINY = dict(name="tiny", layers=2, hidden=64, heads=4, position_embedding="rope")
TINY_MOE = dict(TINY, experts=8, top_k=2)


def spec(**changes: Any) -> solver.ModelSpec:
    return solver.ModelSpec(**{**TINY_MOE, **changes})


# ------------------------------------------------------------------------------ validation


@pytest.mark.parametrize("changes, field", [
    ({"router_score": "relu"}, "router_score"),
    ({"router_balance": "z_loss"}, "router_balance"),
    ({"norm_eps": -1e-5}, "norm_eps"),
    ({"norm_eps": 0.0}, "norm_eps"),
    ({"norm_eps": 2.0}, "norm_eps"),
    ({"rope_theta": 0}, "rope_theta"),
    ({"rope_theta": float("inf")}, "rope_theta"),
    ({"rope_scaling": "ntk-by-parts"}, "rope_scaling"),
    ({"rope_scaling_factor": 8.0}, "rope_scaling_factor"),       # with rope_scaling "none"
    ({"rope_original_seq_len": 8192}, "rope_original_seq_len"),  # with rope_scaling "none"
    ({"rope_scaling": "yarn", "rope_scaling_factor": 40.0}, "rope_original_seq_len"),
    ({"rope_scaling": "linear", "rope_scaling_factor": 0.5}, "rope_scaling_factor"),
    ({"rope_scaling": "linear", "rope_scaling_factor": 2.0, "position_embedding": "learned"},
     "rope_scaling"),
    ({"dropout": 1.0}, "dropout"),
    ({"dropout": -0.1}, "dropout"),
    ({"qk_norm": "yes"}, "qk_norm"),
    ({"router_expert_bias": 1}, "router_expert_bias"),
    ({"router_norm_topk": None}, "router_norm_topk"),
    ({"router_scaling": 0.0}, "router_scaling"),
    ({"router_aux_loss_coeff": -0.01}, "router_aux_loss_coeff"),
    ({"router_balance": "none", "router_aux_loss_coeff": 0.01}, "router_aux_loss_coeff"),
])
def test_bad_fact_names_its_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError, match=rf"^{field}: expected "):
        spec(**changes)


def test_facts_are_stored_and_printed() -> None:
    model = spec(rope_theta=500_000, rope_scaling="llama3", rope_scaling_factor=8,
                 rope_original_seq_len=8192, norm_eps=1e-6, qk_norm=True, dropout=0.1,
                 router_score="sigmoid", router_expert_bias=True, router_scaling=2.5,
                 router_norm_topk=True, router_balance="seq_aux_loss",
                 router_aux_loss_coeff=1e-4)
    # Integers are stored as floats where the field is a float.
    assert isinstance(model.rope_theta, float) and model.rope_theta == 500_000.0
    assert isinstance(model.rope_scaling_factor, float) and model.rope_scaling_factor == 8.0
    data = model.to_dict()
    assert (data["rope_scaling"], data["rope_original_seq_len"], data["norm_eps"]) == (
        "llama3", 8192, 1e-6)
    assert (data["router_score"], data["router_expert_bias"], data["router_balance"]) == (
        "sigmoid", True, "seq_aux_loss")
    assert json.loads(json.dumps(data))["router_aux_loss_coeff"] == 1e-4


def test_model_file_with_facts_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text('name = "m"\nlayers = 2\nhidden = 64\nheads = 4\nexperts = 4\ntop_k = 2\n'
                    'position_embedding = "rope"\nrope_theta = 1e6\nnorm_eps = 1e-6\n'
                    'router_score = "sigmoid"\nrouter_scaling = 2.5\n', encoding="utf-8")
    model = load_model_file(path)
    assert (model.rope_theta, model.norm_eps, model.router_score, model.router_scaling) == (
        1e6, 1e-6, "sigmoid", 2.5)
    path.write_text(path.read_text(encoding="utf-8") + 'router_balance = "balanced"\n',
                    encoding="utf-8")
    with pytest.raises(SpecError, match=r"m\.toml: router_balance: expected one of"):
        load_model_file(path)


# ------------------------------------------------------------------------------ job dropout


def test_job_dropout_defaults_to_the_models() -> None:
    with_dropout = spec(dropout=0.1)
    assert solver.TrainingJob(model=with_dropout, tokens=1e9).dropout == 0.1
    assert solver.TrainingJob(model=spec(), tokens=1e9).dropout == 0.0


def test_job_dropout_given_overrides_the_models() -> None:
    with_dropout = spec(dropout=0.1)
    job = solver.TrainingJob(model=with_dropout, tokens=1e9, dropout=0.0)
    assert job.dropout == 0.0 and isinstance(job.dropout, float)
    assert solver.TrainingJob(model=spec(), tokens=1e9, dropout=0.2).dropout == 0.2
    with pytest.raises(SpecError, match="^dropout: expected"):
        solver.TrainingJob(model=spec(), tokens=1e9, dropout=1.5)


def test_job_dropout_from_the_model_reaches_the_activations() -> None:
    # A model whose recipe has dropout keeps two 1-byte masks of s*h per layer (after
    # attention and after the MLP, Korthikanti et al. 2022 sec. 4.1) that the same model
    # without dropout does not: 2 * 1024 * 64 bytes per layer per sequence, here 2 layers.
    dense = dict(TINY, vocab=1000, seq_len=1024)
    layout = solver.Layout(accelerator="h100-sxm5-80gb", tp=1, pp=1, dp=1)

    def activations(**model: Any) -> float:
        job = solver.TrainingJob(model=solver.ModelSpec(**{**dense, **model}),
                                 tokens=1e9, global_batch=1)
        estimate = solver.evaluate(job, layout).to_dict()["estimate"]
        return float(estimate["memory_breakdown_gib"]["activations"])

    assert activations(dropout=0.1) - activations() == pytest.approx(
        2 * 2 * 1024 * 64 / 2**30, rel=1e-3)  # the JSON rounds GiB to 8 decimals


# ------------------------------------------------------------------------------ presets


def preset(name: str) -> solver.ModelSpec:
    return solver.models()[name]


def test_llama3_presets_carry_their_config_json() -> None:
    # meta-llama/Meta-Llama-3-8B and -70B config.json: rope_theta 500000.0, rms_norm_eps 1e-05,
    # rope_scaling null, attention_dropout 0.0.
    for name in ("llama3-8b", "llama3-70b"):
        model = preset(name)
        assert (model.rope_theta, model.norm_eps, model.dropout) == (500000.0, 1e-05, 0.0)
        assert (model.rope_scaling, model.rope_scaling_factor) == ("none", 1.0)
        assert not model.qk_norm


def test_llama31_405b_carries_its_long_context_scaling() -> None:
    # meta-llama/Llama-3.1-405B config.json: rope_theta 500000.0, rms_norm_eps 1e-05,
    # rope_scaling {rope_type "llama3", factor 8.0, original_max_position_embeddings 8192};
    # planned at the pre-training length 8192 (arXiv:2407.21783 sec. 3.4), not 131072.
    model = preset("llama3.1-405b")
    assert (model.rope_theta, model.norm_eps, model.dropout) == (500000.0, 1e-05, 0.0)
    assert (model.rope_scaling, model.rope_scaling_factor, model.rope_original_seq_len) == (
        "llama3", 8.0, 8192)
    assert model.seq_len == 8192


def test_mixtral_preset_carries_its_config_json() -> None:
    # mistralai/Mixtral-8x7B-v0.1 config.json: rope_theta 1000000.0, rms_norm_eps 1e-05,
    # router_aux_loss_coef 0.02, attention_dropout 0.0; Softmax(TopK(.)) gating
    # (arXiv:2401.04088 eq. 1): softmax scores, top-2 renormalised, no bias, no scaling.
    model = preset("mixtral-8x7b")
    assert (model.rope_theta, model.norm_eps, model.dropout) == (1000000.0, 1e-05, 0.0)
    assert (model.router_score, model.router_norm_topk, model.router_expert_bias) == (
        "softmax", True, False)
    assert (model.router_balance, model.router_aux_loss_coeff, model.router_scaling) == (
        "aux_loss", 0.02, 1.0)


def test_deepseek_v3_preset_carries_its_config_json_and_paper() -> None:
    # deepseek-ai/DeepSeek-V3 config.json: rope_theta 10000, rms_norm_eps 1e-06, rope_scaling
    # {type "yarn", factor 40, original_max_position_embeddings 4096}, scoring_func "sigmoid",
    # topk_method "noaux_tc", routed_scaling_factor 2.5, norm_topk_prob true, seq_aux true,
    # n_group 8, topk_group 4, num_nextn_predict_layers 1, attention_dropout 0.0.
    # arXiv:2412.19437 sec. 4.2: sequence-wise balance factor alpha = 0.0001.
    # Megatron-LM's DeepSeek-V3 example: --qk-layernorm.
    model = preset("deepseek-v3")
    assert (model.rope_theta, model.norm_eps, model.dropout) == (10000.0, 1e-06, 0.0)
    assert (model.rope_scaling, model.rope_scaling_factor, model.rope_original_seq_len) == (
        "yarn", 40.0, 4096)
    assert (model.router_score, model.router_expert_bias, model.router_scaling) == (
        "sigmoid", True, 2.5)
    assert (model.router_norm_topk, model.router_balance, model.router_aux_loss_coeff) == (
        True, "seq_aux_loss", 0.0001)
    assert (model.expert_groups, model.expert_group_topk, model.mtp_layers) == (8, 4, 1)
    assert model.qk_norm and model.seq_len == 4096


def test_gpt3_preset_follows_gpt2_and_megatron() -> None:
    # GPT-2 config.json layer_norm_epsilon 1e-05, resid_pdrop/attn_pdrop 0.1; Megatron-LM's
    # TransformerConfig defaults (hidden_dropout 0.1, attention_dropout 0.1, layernorm_epsilon
    # 1e-5), which its GPT-3 175B example keeps.
    model = preset("gpt3-175b")
    assert (model.norm_eps, model.dropout, model.position_embedding) == (1e-05, 0.1, "learned")
    assert model.rope_scaling == "none"
    job = solver.TrainingJob(model=model, tokens=300e9)
    assert job.dropout == 0.1
    assert solver.TrainingJob(model=model, tokens=300e9, dropout=0.0).dropout == 0.0


def test_gpt4_estimate_says_its_facts_are_assumed() -> None:
    model = preset("gpt4-estimate")
    assert (model.norm_eps, model.dropout, model.router_score) == (1e-05, 0.0, "softmax")
    text = Path(solver.__file__).parent.joinpath("presets", "gpt4-estimate.toml").read_text(
        encoding="utf-8")
    assert "Launcher facts, all ASSUMED" in text


def test_every_preset_reads_back_through_a_model_file(tmp_path: Path) -> None:
    for name, model in solver.models().items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(model.to_dict()), encoding="utf-8")
        assert load_model_file(path) == model
        assert dataclasses.replace(model) == model
