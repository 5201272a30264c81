"""Issue 16, points 7 and 8 (library): preset names and token text in ``TrainingJob`` as the
CLI takes them, and a model whose heads do not divide its hidden size refused."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

import solver
from solver.cli.common import parse_tokens
from solver.errors import SpecError
from solver.model_files import load_model_file

# ------------------------------------------------------------------ model given by name


def test_job_takes_a_preset_name_as_the_cli_does() -> None:
    job = solver.TrainingJob(model="llama3-8b", tokens=1e12)
    assert isinstance(job.model, solver.ModelSpec)
    assert job.model == solver.model("llama3-8b")
    # Llama 3 8B: 32 layers, hidden 4096, 32 heads, 8 KV heads, 8,192-token context; the
    # job's seq_len 0 takes the model's.
    assert (job.model.layers, job.model.hidden, job.model.heads, job.model.kv_heads) == (
        32, 4096, 32, 8)
    assert job.seq_len == 8192


def test_preset_name_is_matched_as_the_cli_matches_it() -> None:
    # catalog.model (the CLI's --model) strips and lower-cases the name.
    assert solver.TrainingJob(model=" Llama3-70B ", tokens=1e12).model.name == "llama3-70b"


def test_a_model_spec_still_works_and_is_kept_as_given() -> None:
    spec = solver.ModelSpec(name="tiny", layers=2, hidden=256, heads=4)
    job = solver.TrainingJob(model=spec, tokens=1e9)
    assert job.model is spec
    again = dataclasses.replace(job, global_batch=8)  # re-validates with a ModelSpec
    assert again.model is spec and again.global_batch == 8


def test_job_takes_a_model_file_as_the_cli_does(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('name = "mine"\nlayers = 2\nhidden = 256\nheads = 4\n', encoding="utf-8")
    assert solver.TrainingJob(model=str(path), tokens=1e9).model.hidden == 256


def test_unknown_model_name_names_the_field_and_the_expected_form() -> None:
    with pytest.raises(SpecError) as err:
        solver.TrainingJob(model="lama3-8b", tokens=1e12)
    text = str(err.value)
    assert text.startswith("model: unknown model 'lama3-8b'; did you mean llama3-8b")
    assert "expected a ModelSpec, a preset name (solver.models()) or a model file" in text


@pytest.mark.parametrize("value", [5, None, 1.5, ["llama3-8b"]])
def test_model_of_the_wrong_type_is_refused(value: object) -> None:
    with pytest.raises(SpecError, match=r"^model: expected a ModelSpec, a preset name"):
        solver.TrainingJob(model=value, tokens=1e12)  # type: ignore[arg-type]


# ------------------------------------------------------------------ tokens given as text


@pytest.mark.parametrize(("text", "tokens"), [
    ("15T", 15_000_000_000_000.0),
    ("1.5e12", 1_500_000_000_000.0),
    ("300B", 300_000_000_000.0),
    ("15e12", 15_000_000_000_000.0),
    ("2.5t", 2_500_000_000_000.0),
    (" 40 M ", 40_000_000.0),
    ("1", 1.0),
])
def test_job_takes_token_text_as_the_cli_does(text: str, tokens: float) -> None:
    job = solver.TrainingJob(model="llama3-8b", tokens=text)  # type: ignore[arg-type]
    assert job.tokens == tokens
    assert isinstance(job.tokens, float)
    assert parse_tokens(text) == tokens  # the CLI's --tokens: the same parser


@pytest.mark.parametrize("text", ["lots", "15X", "", "-1T", "1e5e5", "15 T B", "0x10"])
def test_bad_token_text_names_the_field(text: str) -> None:
    with pytest.raises(SpecError, match=r"^tokens: expected a token count like 300e9, 300B "
                                        r"or 15T, got "):
        solver.TrainingJob(model="llama3-8b", tokens=text)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["0", 0, 0.5, "1e18", 1e18, 2e30, float("inf")])
def test_token_counts_out_of_range_are_refused(value: object) -> None:
    # [1, 1e18): the CLI's bound, now the library's too.
    with pytest.raises(SpecError, match=r"^tokens: expected a token count in \[1, 1e\+18\)"):
        solver.TrainingJob(model="llama3-8b", tokens=value)  # type: ignore[arg-type]


def test_library_and_cli_refuse_token_text_in_one_wording() -> None:
    with pytest.raises(SpecError) as lib:
        solver.TrainingJob(model="llama3-8b", tokens="lots")  # type: ignore[arg-type]
    with pytest.raises(SpecError) as cli:
        parse_tokens("lots")
    assert str(cli.value) == "--" + str(lib.value)


@pytest.mark.parametrize("value", [True, None, [15e12]])
def test_tokens_of_the_wrong_type_are_refused(value: object) -> None:
    with pytest.raises(SpecError, match=r"^tokens: expected a token count"):
        solver.TrainingJob(model="llama3-8b", tokens=value)  # type: ignore[arg-type]


# ------------------------------------------------------------------ heads and hidden size


def test_heads_that_do_not_divide_hidden_are_refused() -> None:
    # 4000 / 48 = 83.33...: no integer head size.
    with pytest.raises(SpecError, match=r"^heads: expected a divisor of hidden=4000 \(or an "
                                        r"explicit head_dim\), got 48$"):
        solver.ModelSpec(name="odd", layers=2, hidden=4000, heads=48)


def test_heads_that_divide_hidden_give_the_head_size() -> None:
    # 4032 / 48 = 84.
    assert solver.ModelSpec(name="even", layers=2, hidden=4032, heads=48).head_dim == 84


def test_explicit_head_dim_allows_any_hidden() -> None:
    # Gemma 7B: hidden 3072, 16 heads of 256 (16 * 256 = 4096 != 3072).
    gemma = solver.ModelSpec(name="gemma-like", layers=2, hidden=3072, heads=16, head_dim=256)
    assert gemma.head_dim == 256
    odd = solver.ModelSpec(name="odd", layers=2, hidden=4000, heads=48, head_dim=80)
    assert odd.head_dim == 80 and odd.heads * odd.head_dim == 3840


def test_model_file_with_no_integer_head_size_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "odd.toml"
    path.write_text('name = "odd"\nlayers = 2\nhidden = 4000\nheads = 48\n', encoding="utf-8")
    with pytest.raises(SpecError, match=r"odd\.toml: heads: expected a divisor of hidden=4000"):
        load_model_file(path)


def test_hf_config_without_head_dim_and_odd_shape_is_refused(tmp_path: Path) -> None:
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
              "num_hidden_layers": 2, "hidden_size": 4000, "num_attention_heads": 48,
              "num_key_value_heads": 8, "intermediate_size": 11008, "vocab_size": 32000,
              "max_position_embeddings": 4096}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(SpecError, match=r"heads: expected a divisor of hidden=4000"):
        solver.model(str(path))
    config["head_dim"] = 80
    path.write_text(json.dumps(config), encoding="utf-8")
    assert solver.model(str(path)).head_dim == 80


def test_every_preset_still_constructs() -> None:
    for spec in solver.models().values():
        assert spec.head_dim * spec.heads >= 1
        assert dataclasses.replace(spec) == spec
