"""Run each launcher's own argument and config validation on gpuplan's exports.

For the presets llama3-70b, mixtral-8x7b and deepseek-v3, fixed plans (a ZeRO-1 and a ZeRO-3
plan each, the MoE ones with expert parallelism; DeepSeek-V3 also at ZeRO-2 with TP2, which
torchtitan runs in rowwise float8, and at ZeRO-1 with an even split, which DeepSpeed runs) are
exported with
``solver.export`` for Megatron-LM, torchtitan and DeepSpeed, and each export is handed to the
launcher's own code from a source checkout, in a subprocess with that checkout first on
``PYTHONPATH`` (``export_children.py``, the launchers' side):

- Megatron-LM: the bash snippet is sourced by bash (its ``MEGATRON_ARGS`` array and its
  ``CUDA_DEVICE_MAX_CONNECTIONS`` line), then ``megatron.training.arguments.parse_args`` and
  ``validate_args`` run on it with ``RANK=0``, ``WORLD_SIZE=<the plan's GPUs>``, and
  ``core_transformer_config_from_args`` builds the ``TransformerConfig`` (or
  ``MLATransformerConfig``), whose ``__post_init__`` checks the MoE router, MLA and RoPE
  settings.
- torchtitan: ``ConfigManager.parse_args(["--job.config_file", FILE])``, ``ParallelDims`` with
  the plan's world size, the train spec and flavor, ``model_args.update_from_config``, the
  model built on the meta device, the batch checks of ``Trainer.__init__`` (restated: the
  trainer itself needs process groups), ``build_model_converters(...).convert(model)`` (float8,
  needs torchao), ``pipeline_llama`` up to the pipeline split (with PP) and the model's
  ``parallelize_fn`` up to its first use of the device mesh.
- DeepSpeed: ``DeepSpeedConfig(config, mpu=...)`` (config classes, pydantic models, batch
  assertion), with an ``mpu`` reporting the plan's data-parallel size as Megatron-DeepSpeed's
  does; for an MoE plan, ``DeepSpeedEngine._validate_zero3_moe_compatibility`` on a stand-in
  engine holding a native ``deepspeed.moe.layer.MoE``, to show that DeepSpeed refuses the
  ZeRO-3 plans the exporter refuses.

What is stood in for on a machine without GPUs (nothing else is patched):

- Megatron-LM: ``torch.cuda.get_device_capability`` returns (9, 0) (``validate_args`` asks
  it for ``--moe-grouped-gemm``) and ``arguments.get_device_arch_version`` returns 9 (Hopper:
  the CUDA_DEVICE_MAX_CONNECTIONS rule); ``megatron.core.utils.get_te_version`` returns
  2.8.0 and ``rope_utils.fused_apply_rotary_pos_emb`` is a placeholder where Transformer
  Engine is not installed (``TransformerConfig`` compares TE versions for FP8 MoE and needs
  TE's fused RoPE for the default ``apply_rope_fusion``).
- torchtitan: ``has_cuda_capability`` returns True in the model args and the float8 converter
  (H100/H800 are SM90); the device mesh is an object whose first indexing stops the
  parallelize function (every check before it has run); ``pipeline_module_split`` stops the
  pipeline function and hands back its stage module names, which must all exist in the model.
- DeepSpeed: ``deepspeed.comm.get_rank`` returns 0 (no process group); the MoE layer of the
  stand-in engine is made without its ``__init__`` (which needs expert process groups).

The launchers' requirements must be importable by the Python that runs this script (torch,
numpy, pydantic, packaging, pyyaml, six, regex, tyro, tomli, torchao, hjson, psutil,
py-cpuinfo, msgpack, einops) along with gpuplan. See benchmarks/README.md for a set-up.

    python benchmarks/check_exports.py --megatron DIR --torchtitan DIR --deepspeed DIR

Prints a table (preset, launcher, plan, validation, parsed facts vs the model's); exits 1 if
any validation fails or any parsed fact differs from the model's, 0 otherwise. A plan that
the exporter refuses (``solver.launchers.why_not``, or the exporter's own rules) is listed as
refused, for an MoE model at ZeRO-3 with DeepSpeed together with DeepSpeed's own verdict on
it, and is not a failure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Fixed plans: preset -> (tokens, global batch, precision, [(label, layout fields)]).
PLANS: dict[str, tuple[float, int, str, list[tuple[str, dict[str, Any]]]]] = {
    "llama3-70b": (15e12, 1024, "bf16", [
        ("z1", dict(accelerator="h100-sxm5-80gb", tp=8, pp=4, dp=32, zero_stage=1)),
        ("z3", dict(accelerator="h100-sxm5-80gb", tp=8, pp=1, dp=64, zero_stage=3)),
        # torchtitan's per-op selective checkpointing (Megatron-LM and DeepSpeed refuse it).
        ("z3-op", dict(accelerator="h100-sxm5-80gb", tp=8, pp=1, dp=64, zero_stage=3,
                       recompute="alternate_matmuls")),
    ]),
    "mixtral-8x7b": (1e12, 512, "bf16", [
        ("z1", dict(accelerator="h100-sxm5-80gb", tp=2, pp=4, dp=32, ep=8, zero_stage=1)),
        ("z3", dict(accelerator="h100-sxm5-80gb", tp=2, pp=1, dp=64, ep=8, zero_stage=3)),
    ]),
    "deepseek-v3": (14.8e12, 4096, "fp8", [
        ("z1", dict(accelerator="h800", tp=1, pp=16, dp=128, ep=64, zero_stage=1,
                    pipeline_split="both")),
        ("z3", dict(accelerator="h800", tp=1, pp=16, dp=128, ep=64, zero_stage=3,
                    pipeline_split="both")),
        ("z2-tp2", dict(accelerator="h800", tp=2, pp=16, dp=64, ep=64, zero_stage=2,
                        pipeline_split="both")),
        # An even pipeline split (61 layers + 1 MTP over 2 stages), which DeepSpeed runs.
        ("z1-even", dict(accelerator="h800", tp=1, pp=2, dp=1024, ep=64, zero_stage=1)),
    ]),
}
LAUNCHERS = ("megatron", "torchtitan", "deepspeed")
#: The limits of the solved plan of each preset: (accelerator, most accelerators).
SOLVE_LIMITS = {"llama3-70b": ("h100-sxm5-80gb", 1024), "mixtral-8x7b": ("h100-sxm5-80gb", 256),
                "deepseek-v3": ("h800", 2048)}


def _expected(launcher: str, job: Any, layout: Any) -> dict[str, Any]:
    """The model's facts and the plan's ZeRO stage, as each launcher's parsed values hold
    them (None: not comparable there)."""
    m = job.model
    moe = m.is_moe
    if launcher == "megatron":
        exp: dict[str, Any] = {
            "rotary base": (m.rope_theta, "rotary_base"),
            "norm eps": (m.norm_eps, "norm_epsilon"),
            "dropout": (job.dropout, "hidden_dropout"),
            "attn dropout": (job.dropout, "attention_dropout"),
            "qk norm": (m.qk_norm, "qk_layernorm"),
            "rope": ({"none": "rope", "yarn": "yarn"}.get(m.rope_scaling, m.rope_scaling)
                     if m.uses_mla else "rope", "rope_type"),
            "ZeRO": ({0: (False, False, "no_shard"), 1: (True, False, "no_shard"),
                      2: (True, True, "optim_grads"), 3: (True, True, "optim_grads_params")}
                     [layout.zero_stage], ("use_distributed_optimizer", "use_megatron_fsdp",
                                           "data_parallel_sharding_strategy")),
            # Megatron-LM's data_parallel_size is world / (tp * pp * cp): the plan's dp
            "layout": ((layout.tp, layout.pp, layout.dp, layout.cp, layout.ep if moe else 1),
                       ("tensor_model_parallel_size", "pipeline_model_parallel_size",
                        "data_parallel_size", "context_parallel_size",
                        "expert_model_parallel_size")),
        }
        if m.uses_mla and m.rope_scaling == "yarn":
            exp["yarn factor"] = (m.rope_scaling_factor, "rotary_scaling_factor")
        if moe:
            exp.update({
                "router": (m.router_score, "moe_router_score_function"),
                "expert bias": (m.router_expert_bias, "moe_router_enable_expert_bias"),
                "router scale": (None if m.router_scaling == 1.0 else m.router_scaling,
                                 "moe_router_topk_scaling_factor"),
                "groups": ((m.expert_groups or None, m.expert_group_topk or None)
                           if m.expert_group_topk else (None, None),
                           ("moe_router_num_groups", "moe_router_group_topk")),
                "balance": ((m.router_balance, m.router_aux_loss_coeff),
                            ("moe_router_load_balancing_type", "moe_aux_loss_coeff")),
                "MTP": (m.mtp_layers or None, "mtp_num_layers"),
            })
        return exp
    if launcher == "torchtitan":
        exp = {
            "rotary base": (m.rope_theta, "rope_theta"),
            "norm eps": (m.norm_eps, "norm_eps"),
            "ZeRO": ({0: (1, "default"), 1: (layout.dp, "never"), 2: (layout.dp, "never"),
                      3: (layout.dp, "always" if layout.pp > 1 else "default")}
                     [layout.zero_stage], ("dp_shard", "reshard")),
            "layout": ((layout.tp, layout.pp, layout.ep if moe else 1), ("tp", "pp", "ep")),
        }
        if moe:
            exp.update({
                "router": (m.router_score, "score_func"),
                "router scale": (m.router_scaling, "route_scale"),
                "expert bias": (m.router_expert_bias, "load_balance_coeff"),
                # Held by the model args, never read by its router (moe.py).
                "groups (unread)": ((m.expert_groups, m.expert_group_topk),
                                    ("n_expert_groups", "n_limited_groups")),
            })
        return exp
    return {"ZeRO": (layout.zero_stage, "zero_stage"),
            "micro batch/bf16": ((layout.micro_batch, True), ("micro", "bf16"))}


def _same(want: Any, got: Any) -> bool:
    if isinstance(want, bool) or want is None or isinstance(want, str):
        if isinstance(want, bool) and not isinstance(got, bool):
            return want == (got is not None and got != 0)
        return bool(want == got)
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        return abs(want - got) <= 1e-9 * max(1.0, abs(want))
    return bool(want == got)


def compare(launcher: str, job: Any, layout: Any, parsed: dict[str, Any]) -> list[str]:
    """``name=value ok|MISMATCH(model value)`` for each fact the launcher's parsed values hold."""
    out = []
    for name, (want, key) in _expected(launcher, job, layout).items():
        keys = key if isinstance(key, tuple) else (key,)
        wants = want if isinstance(key, tuple) else (want,)
        gots = tuple(parsed.get(k) for k in keys)
        if launcher == "torchtitan" and name == "expert bias":
            gots = (parsed.get("load_balance_coeff") is not None,)
        good = all(_same(w, g) for w, g in zip(wants, gots, strict=True))
        shown = "/".join(_text(g) for g in gots)
        out.append(f"{name}={shown} " + ("ok" if good else
                                          f"MISMATCH(model {'/'.join(_text(w) for w in wants)})"))
    return out


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass
class Checks:
    """The rows of the report and the count of failing checks, for the given checkouts."""

    checkouts: dict[str, str]
    timeout: int
    rows: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    failures: int = 0

    def export_and_validate(self, tmp: str, preset: str, label: str, launcher: str, job: Any,
                            est: Any) -> None:
        """Export ``est`` for ``launcher`` and run the launcher's own checks on it."""
        from solver.errors import SpecError
        from solver.export import export

        checkout = self.checkouts[launcher]
        x = est.layout
        plan = f"TP{x.tp} PP{x.pp} DP{x.dp} EP{x.ep} Z{x.zero_stage}"
        if label == "solve":
            plan = f"solve: {plan}"
        try:
            text = export(est, launcher, job=job)
        except SpecError as refusal:
            verdict = f"refused by the exporter: {refusal}"
            if launcher == "deepspeed" and job.model.is_moe and x.zero_stage == 3:
                result = _run_child(checkout, "deepspeed", "/dev/null", x, job.model.is_moe,
                                    self.timeout, probe=True)
                verdict += f" | DeepSpeed: {result}"
            self.rows.append((preset, launcher, plan, "refused", verdict))
            return
        suffix = {"megatron": ".sh", "torchtitan": ".toml", "deepspeed": ".json"}
        path = Path(tmp) / f"{preset}-{label}-{launcher}{suffix[launcher]}"
        path.write_text(text)
        result = _run_child(checkout, launcher, str(path), x, job.model.is_moe, self.timeout)
        if not isinstance(result, dict) or not result.get("ok"):
            self.failures += 1
            error = result.get("error") if isinstance(result, dict) else result
            self.rows.append((preset, launcher, plan, "FAILED", str(error)))
            return
        facts = compare(launcher, job, x, result["parsed"])
        bad = [f for f in facts if "MISMATCH" in f]
        self.failures += bool(bad)
        extra = result["parsed"].get("float8") if launcher == "torchtitan" else None
        if extra and extra != "none":
            facts.append(f"float8={extra}")
        if launcher == "megatron":
            facts.append(f"config={result['parsed']['config_class']}")
        self.rows.append((preset, launcher, plan, "ok" if not bad else "ok, facts differ",
                          "; ".join(facts)))

    def solve_and_validate(self, tmp: str, preset: str, launcher: str, job: Any) -> None:
        """The plan ``gpuplan solve --export <launcher>`` gives: the search restricted to what
        the launcher starts (``SOLVE_LIMITS``), then exported and validated."""
        import solver
        from solver.errors import SpecError

        accelerator, max_gpus = SOLVE_LIMITS[preset]
        limits = solver.Limits(accelerators=(accelerator,), max_gpus=max_gpus,
                               launcher=launcher)
        try:
            found = solver.solve(job, limits, time_limit_s=120, workers=1)
        except SpecError as refusal:
            self.rows.append((preset, launcher, "solve", "refused",
                              f"before searching: {refusal}"))
            return
        if found.estimate is None:
            self.rows.append((preset, launcher, "solve", "no plan",
                              f"{found.status}: {'; '.join(found.explanation)}"))
            return
        self.export_and_validate(tmp, preset, "solve", launcher, job, found.estimate)

    def report(self) -> str:
        lines = ["", f"{'preset':<13} {'launcher':<10} {'plan':<31} {'validation':<16} "
                 "parsed vs model", "-" * 100]
        lines += [f"{preset:<13} {launcher:<10} {plan:<31} {status:<16} {detail}"
                  for preset, launcher, plan, status, detail in self.rows]
        lines += ["", f"{self.failures} failing check(s)" if self.failures
                  else "all checks passed"]
        return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in LAUNCHERS:
        parser.add_argument(f"--{name}", metavar="DIR", help=f"{name} source checkout")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per check")
    options = parser.parse_args()
    import solver
    from solver.export import FOLLOWS

    checkouts = {n: getattr(options, n) for n in LAUNCHERS if getattr(options, n)}
    if not checkouts:
        parser.error("give at least one of --megatron, --torchtitan, --deepspeed")
    for name, checkout in checkouts.items():
        print(f"{name}: {checkout} (exports follow {FOLLOWS[name]})")
    checks = Checks(checkouts, options.timeout)
    with tempfile.TemporaryDirectory() as tmp:
        for preset, (tokens, gb, precision, plans) in PLANS.items():
            for launcher in checkouts:
                # ZeRO-3 is DeepSpeed's own with DeepSpeed, an FSDP elsewhere.
                job = solver.TrainingJob(
                    model=solver.model(preset), tokens=tokens, global_batch=gb,
                    precision=precision,
                    zero3_impl="deepspeed" if launcher == "deepspeed" else "fsdp")
                for label, fields in plans:
                    checks.export_and_validate(tmp, preset, label, launcher, job,
                                               solver.evaluate(job, solver.Layout(**fields)))
                checks.solve_and_validate(tmp, preset, launcher, job)
    print(checks.report())
    return 1 if checks.failures else 0


#: The launchers' side, run in each checkout's environment.
CHILDREN = Path(__file__).resolve().with_name("export_children.py")


def _run_child(checkout: str, launcher: str, path: str, layout: Any, moe: bool, timeout: int,
               probe: bool = False) -> Any:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [checkout, env.get("PYTHONPATH")]))
    argv = [sys.executable, str(CHILDREN)] + (["--probe"] if probe else [
        launcher, path, str(layout.gpus), str(layout.dp), "1" if moe else "0"])
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                              cwd=tempfile.gettempdir())
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout} s"
    for line in done.stdout.splitlines():
        if line.startswith("@@PROBE "):
            return line.removeprefix("@@PROBE ")
        if line.startswith("@@RESULT "):
            return json.loads(line.removeprefix("@@RESULT "))
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return {"ok": False, "error": f"exit {done.returncode}: {tail[:160]}"}


if __name__ == "__main__":
    sys.exit(main())
