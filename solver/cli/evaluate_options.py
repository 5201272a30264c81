"""The options of ``gpuplan evaluate`` that no other command shares, one alias each (the
shared ones are in ``common.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from solver.cli.common import RECOMPUTE_HELP

Model = Annotated[str | None, typer.Option(
    "--model", help="Preset name or model file (TOML/JSON, or a Hugging Face "
    "config.json); required unless --plan.", show_default=False)]
Tokens = Annotated[str | None, typer.Option(
    "--tokens", help="Training tokens: 300e9, 300B, 15T; required unless --plan.",
    show_default=False)]
Gpu = Annotated[str | None, typer.Option("--gpu", help="Accelerator name or alias.",
                                        show_default=False)]
Tp = Annotated[int | None, typer.Option("--tp", help="Tensor-parallel degree.",
                                       show_default=False)]
Pp = Annotated[int | None, typer.Option("--pp", help="Pipeline-parallel degree.",
                                       show_default=False)]
Dp = Annotated[int | None, typer.Option("--dp", help="Data-parallel degree.",
                                       show_default=False)]
Plan = Annotated[Path | None, typer.Option(
    "--plan", help="A plan saved by solve --json: re-evaluate its job and layout and say "
    "whether the saved estimate is reproduced (exit 0) or not (exit 1).",
    show_default=False, metavar="PLAN.json")]
Cp = Annotated[int, typer.Option("--cp", help="Context-parallel degree.")]
Ep = Annotated[int, typer.Option("--ep", help="Expert-parallel degree.")]
Vp = Annotated[int, typer.Option("--vp", help="Interleaved virtual stages per rank.")]
MicroBatch = Annotated[int, typer.Option("--micro-batch", help="Sequences per "
                                         "micro-batch.")]
Zero = Annotated[int, typer.Option("--zero", help="ZeRO stage 0-3.")]
Recompute = Annotated[str, typer.Option("--recompute", help=RECOMPUTE_HELP)]
