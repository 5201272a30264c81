"""ModelSpec's launcher facts (rope, norm epsilon, qk norm, dropout, router): validation and
the job's dropout taken from the model."""

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
