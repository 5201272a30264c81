"""Fuzz the loaders far longer than CI does: random bytes, random TOML/JSON documents and damaged
real files into every loader (model files, Hugging Face config.json, accelerator TOML, scenario
files). Each input must load or raise ``solver.SpecError`` with a one-line message; anything
else is a bug, saved under ``--crashes`` with its traceback.

    python benchmarks/fuzz_loaders.py                   # about 60 s
    python benchmarks/fuzz_loaders.py --seconds 600 --seed 7

The hypothesis strategies are those of ``tests/test_properties.py`` (CI runs each for a few
hundred examples); the mutation fuzzer flips, inserts, deletes and truncates bytes of every
preset, hardware spec and example scenario shipped in the repository.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import test_properties as props  # noqa: E402

from solver.errors import SpecError  # noqa: E402

#: The real files the mutation fuzzer starts from, with the loader that reads each.
SEEDS = [
    *((p, "m.toml") for p in sorted((ROOT / "solver" / "presets").glob("*.toml"))),
    *((p, "accelerator.toml") for p in sorted((ROOT / "hardware_specs").glob("*.toml"))),
    *((p, "scenario.toml") for p in sorted((ROOT / "examples").glob("*.toml"))),
]
HF_SEED = json.dumps({
    "model_type": "deepseek_v3", "num_hidden_layers": 61, "hidden_size": 7168,
    "num_attention_heads": 128, "num_key_value_heads": 128, "intermediate_size": 18432,
    "vocab_size": 129280, "max_position_embeddings": 163840, "qk_nope_head_dim": 128,
    "qk_rope_head_dim": 64, "v_head_dim": 128, "q_lora_rank": 1536, "kv_lora_rank": 512,
    "n_routed_experts": 256, "num_experts_per_tok": 8, "moe_intermediate_size": 2048,
    "n_shared_experts": 1, "first_k_dense_replace": 3, "moe_layer_freq": 1}).encode()


class Tally:
    def __init__(self, crashes: Path) -> None:
        self.counts: Counter[str] = Counter()
        self.crashes = crashes
        self.found = 0

    def run(self, kind: str, raw: bytes, name: str) -> None:
        """Load ``raw`` as the file ``name``; record loaded, refused or crashed."""
        try:
            props.load_bytes(raw, name)()
            self.counts[f"{kind}: loaded"] += 1
        except SpecError as err:
            message = str(err)
            if not message or "\n" in message.strip():
                self.crash(kind, raw, name, f"SpecError not on one line: {message!r}")
            self.counts[f"{kind}: refused"] += 1
        except Exception:  # the point of the exercise
            self.crash(kind, raw, name, traceback.format_exc())

    def crash(self, kind: str, raw: bytes, name: str, why: str) -> None:
        self.found += 1
        self.counts[f"{kind}: CRASHED"] += 1
        self.crashes.mkdir(parents=True, exist_ok=True)
        stem = self.crashes / f"crash-{self.found:03d}-{name}"
        stem.with_suffix(stem.suffix + ".input").write_bytes(raw)
        stem.with_suffix(stem.suffix + ".txt").write_text(why)
        print(f"CRASH ({kind}, {name}): {why.strip().splitlines()[-1]} -> {stem}", flush=True)


def hypothesis_round(tally: Tally, examples: int) -> None:
    """One round of every hypothesis-driven input kind."""
    quiet = settings(max_examples=examples, deadline=None, database=None,
                     suppress_health_check=list(HealthCheck))

    @quiet
    @given(raw=st.binary(max_size=4096), name=st.sampled_from(props.FILE_NAMES))
    def random_bytes(raw: bytes, name: str) -> None:
        tally.run("random bytes", raw, name)

    @quiet
    @given(data=props.documents(props.MODEL_KEYS), as_json=st.booleans())
    def model_documents(data: dict[str, Any], as_json: bool) -> None:
        text = json.dumps(data) if as_json else props.toml_text(data)
        tally.run("model documents", text.encode(), "m.json" if as_json else "m.toml")

    @quiet
    @given(data=props.documents(props.HF_KEYS),
           model_type=st.sampled_from(props.SUPPORTED_HF_MODEL_TYPES))
    def hf_documents(data: dict[str, Any], model_type: str) -> None:
        tally.run("config.json documents", json.dumps({"model_type": model_type, **data}).encode(),
                  "config.json")

    @quiet
    @given(data=props.documents(props.ACCELERATOR_KEYS))
    def accelerator_documents(data: dict[str, Any]) -> None:
        tally.run("accelerator documents", props.toml_text(data).encode(), "accelerator.toml")

    @quiet
    @given(data=props.documents(props.SCENARIO_KEYS))
    def scenario_documents(data: dict[str, Any]) -> None:
        tally.run("scenario documents", props.toml_text(data).encode(), "scenario.toml")

    for fuzz in (random_bytes, model_documents, hf_documents, accelerator_documents,
                 scenario_documents):
        fuzz()


def mutate(raw: bytes, rng: random.Random) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(5)
        at = rng.randrange(len(data) + 1)
        if op == 0 and data:
            data[min(at, len(data) - 1)] = rng.randrange(256)
        elif op == 1:
            data[at:at] = bytes(rng.choice([b"[", b"{", b"]", b"=", b'"', b"\\", b"9" * 50,
                                            b"\n", b"nan", b"inf", b"-", b".", b"\x00", b"\xff"]))
        elif op == 2 and data:
            del data[at:at + rng.randint(1, 16)]
        elif op == 3:
            data = data[:at]
        else:
            start = rng.randrange(len(data) + 1)
            data[at:at] = data[start:start + rng.randint(1, 64)]
    return bytes(data)


def mutation_round(tally: Tally, rng: random.Random, count: int) -> None:
    seeds: list[tuple[bytes, str]] = [(p.read_bytes(), name) for p, name in SEEDS]
    seeds.append((HF_SEED, "config.json"))
    for _ in range(count):
        raw, name = rng.choice(seeds)
        tally.run("mutated real files", mutate(raw, rng), name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="time budget (default 60)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the mutation fuzzer")
    parser.add_argument("--crashes", type=Path, default=Path("fuzz-crashes"),
                        help="folder for crashing inputs (default ./fuzz-crashes)")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    tally = Tally(args.crashes)
    started = time.perf_counter()
    rounds = 0
    steps: list[Callable[[], None]] = [lambda: hypothesis_round(tally, 200),
                                       lambda: mutation_round(tally, rng, 1000)]
    while time.perf_counter() - started < args.seconds:
        steps[0]()
        steps[1]()
        rounds += 1
    elapsed = time.perf_counter() - started
    total = sum(tally.counts.values())
    print(f"{total:,} inputs in {elapsed:.0f} s ({rounds} rounds); crashes: {tally.found}")
    for key in sorted(tally.counts):
        print(f"  {key:40s} {tally.counts[key]:>9,}")
    return 1 if tally.found else 0


if __name__ == "__main__":
    sys.exit(main())
