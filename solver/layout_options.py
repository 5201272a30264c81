"""The named choices of a layout that are not plain degrees: recomputation, pipeline schedule
and pipeline split, with the integer codes the vectorised step model and the search use.

Recomputation follows Megatron-LM: ``none``; ``full`` (``--recompute-granularity full``: only
each layer's input is kept, the whole layer is recomputed); or a set of modules
(``--recompute-granularity selective --recompute-modules ...``), written joined by ``+``:
``core_attn`` (the attention scores; ``selective`` is its alias, Megatron-LM's default
module), ``layernorm`` (the norms' outputs, i.e. the inputs of the linear layers after them),
``mla_up_proj`` (MLA's up-projected queries, keys and values, recomputed from the latents),
``moe_act`` (the routed experts' activation-function output), ``mlp`` (the dense MLP),
``moe`` (the whole MoE layer, its dispatch and combine too), ``shared_experts``. The code is a
bit mask: one bit per module, ``FULL_BIT`` for full recomputation.

One more choice stands alone, as ``full`` does: ``alternate_matmuls``, torchtitan's per-op
selective checkpointing (``activation_checkpoint.mode = "selective"``,
``selective_ac_option = "op"``, its default): the outputs of the attention kernel and of every
other matmul of a layer (the 1st, 3rd, ... in execution order) are kept, the other matmuls and
every elementwise op are recomputed (pytorch/torchtitan ``torchtitan/models/llama3/infra/
parallelize.py``: ``_save_list`` and the policy "Saves output of all compute ops, except every
second mm"). ``ALTERNATE_BIT`` codes it.

Schedules (``Layout.schedule``): ``1f1b`` (PipeDream-Flush; interleaved when ``vp > 1``,
Narayanan et al. 2021 sec. 2.2), ``zero-bubble`` (ZB-H1, Qi et al. 2024, arXiv:2401.10241)
and ``dualpipe`` (DeepSeek-V3, arXiv:2412.19437 sec. 3.2.1).

Pipeline split (``Layout.pipeline_split``): Megatron-LM's
``--account-for-embedding-in-pipeline-split`` / ``--account-for-loss-in-pipeline-split``:
``embedding`` counts the input embedding as one layer of the first stage (which then holds
one transformer layer fewer), ``loss`` the LM head and loss as one layer of the last stage,
``both`` does both, ``even`` neither.
"""

from __future__ import annotations

from solver.errors import SpecError

#: Accelerators searched when no limit gives a count (``Limits.gpus`` / ``max_gpus``), and
#: when explaining a GPU-count conflict: the search space is layouts of at most this many.
DEFAULT_MAX_GPUS = 100_000

RECOMPUTE_MODULES = ("core_attn", "layernorm", "mla_up_proj", "moe_act", "mlp", "moe",
                     "shared_experts")
MODULE_BIT = {name: 1 << i for i, name in enumerate(RECOMPUTE_MODULES)}
FULL_BIT = 1 << len(RECOMPUTE_MODULES)
ALTERNATE_BIT = FULL_BIT << 1
ALTERNATE = "alternate_matmuls"
#: Masks that stand alone: no module joins them.
STANDALONE_BITS = FULL_BIT | ALTERNATE_BIT
#: What ``moe`` recomputes includes what these do.
_INSIDE_MOE = MODULE_BIT["moe_act"] | MODULE_BIT["shared_experts"]

SCHEDULES = ("1f1b", "zero-bubble", "dualpipe")
SCHEDULE_CODE = {name: code for code, name in enumerate(SCHEDULES)}
ONE_F_ONE_B, ZERO_BUBBLE, DUALPIPE = 0, 1, 2

PIPELINE_SPLITS = ("even", "embedding", "loss", "both")
SPLIT_CODE = {name: code for code, name in enumerate(PIPELINE_SPLITS)}


def canonical_mask(mask: int) -> int:
    """Full recomputation stands alone; ``moe`` makes ``moe_act`` and ``shared_experts``
    redundant."""
    if mask & FULL_BIT:
        return FULL_BIT
    if mask & ALTERNATE_BIT:
        return ALTERNATE_BIT
    if mask & MODULE_BIT["moe"]:
        mask &= ~_INSIDE_MOE
    return mask


def recompute_code(text: str, field: str = "recompute") -> int:
    """``"none"``, ``"full"``, ``"alternate_matmuls"``, ``"selective"`` or modules joined by
    ``+`` -> the bit mask."""
    if not isinstance(text, str) or not text.strip():
        raise SpecError(_recompute_expected(field, text))
    value = text.strip().lower()
    if value == "none":
        return 0
    if value == "full":
        return FULL_BIT
    if value == ALTERNATE:
        return ALTERNATE_BIT
    mask = 0
    for part in value.split("+"):
        name = "core_attn" if part.strip() == "selective" else part.strip()
        if name not in MODULE_BIT:
            raise SpecError(_recompute_expected(field, text))
        mask |= MODULE_BIT[name]
    return canonical_mask(mask)


def _recompute_expected(field: str, text: object) -> str:
    return (f"{field}: expected none, full, {ALTERNATE}, selective or modules joined by '+' "
            f"({', '.join(RECOMPUTE_MODULES)}), got {text!r}")


def recompute_name(mask: int) -> str:
    """The canonical name of a mask: ``none``, ``full``, ``alternate_matmuls``, ``selective``
    (core_attn alone) or the modules in ``RECOMPUTE_MODULES`` order joined by ``+``."""
    mask = canonical_mask(int(mask))
    if mask == 0:
        return "none"
    if mask & FULL_BIT:
        return "full"
    if mask & ALTERNATE_BIT:
        return ALTERNATE
    if mask == MODULE_BIT["core_attn"]:
        return "selective"
    return "+".join(name for name in RECOMPUTE_MODULES if mask & MODULE_BIT[name])


def all_recompute_masks() -> list[int]:
    """Every distinct canonical mask: none, each set of modules, full, alternate matmuls."""
    masks = sorted({canonical_mask(m) for m in range(FULL_BIT)})
    return masks + [FULL_BIT, ALTERNATE_BIT]


def split_accounts(code: int) -> tuple[int, int]:
    """(embedding, loss) slots a pipeline split adds to the first and the last stage."""
    name = PIPELINE_SPLITS[int(code)]
    return int(name in ("embedding", "both")), int(name in ("loss", "both"))
