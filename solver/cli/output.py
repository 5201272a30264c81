"""``--output FILE``: a command's result written whole or not at all.

What the command would print on stdout (its JSON, or its table without colours) is collected and
written to a temporary file in FILE's folder, then renamed over FILE (``os.replace``, atomic on
POSIX and Windows). A command that fails (invalid input, a bug, Ctrl-C) leaves FILE as it was
and no temporary file behind. The folder is checked before any work, so that a long solve never
ends in "cannot write".
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from solver.cli import render
from solver.errors import SpecError
from solver.file_output import write_atomic as write_atomic

OutputOpt = Annotated[Path | None, typer.Option(
    "--output", "-o", help="Write the result to this file instead of stdout, whole or not at "
    "all (JSON with --json or a .json name, else the table).", show_default=False,
    metavar="FILE")]


def wants_json(path: Path | None, json_out: bool) -> bool:
    """``--json``, or an output file named ``*.json``."""
    return json_out or (path is not None and path.suffix.lower() == ".json")


def check_target(path: Path, option: str = "--output") -> None:
    """Refuse a target that cannot be written: a folder, a missing or read-only folder."""
    text = str(path)
    try:
        is_dir = path.is_dir()
        folder = path.parent
        folder_ok = folder.is_dir()
        writable = os.access(folder, os.W_OK | os.X_OK) if folder_ok else False
        read_only = path.exists() and not os.access(path, os.W_OK)
    except (OSError, ValueError) as err:  # a name too long, a NUL byte
        raise SpecError(f"{option}: cannot write {text!r:.80} "
                        f"({getattr(err, 'strerror', None) or err})") from None
    if is_dir:
        raise SpecError(f"{option}: expected a file name, got the folder {text!r:.80}")
    if not folder_ok:
        raise SpecError(f"{option}: no such folder {str(folder)!r:.80}")
    if not writable:
        raise SpecError(f"{option}: cannot write in the folder {str(folder)!r:.80}")
    if read_only:
        raise SpecError(f"{option}: {text!r:.80} is read-only")


@contextlib.contextmanager
def stdout_to(path: Path | None) -> Iterator[None]:
    """Collect stdout inside the block and write it to ``path`` when the block ends with a
    result (normally, or with ``typer.Exit``: an infeasible plan is a result too). Without a
    path, stdout is left alone."""
    if path is None:
        yield
        return
    check_target(path)
    buffer = io.StringIO()
    terminal = render.console
    # The tables go to the file as plain text, whatever the terminal supports.
    render.console = render.WideWhenPiped(file=buffer, highlight=False, color_system=None)
    try:
        with contextlib.redirect_stdout(buffer):
            yield
    except typer.Exit:
        write_atomic(path, buffer.getvalue())
        raise
    finally:
        render.console = terminal
    write_atomic(path, buffer.getvalue())


class Progress:
    """Progress on stderr, only on a terminal and only once a run goes past ``delay_s``
    (one line, rewritten in place; cleared when done)."""

    def __init__(self, delay_s: float = 1.0) -> None:
        self.started = time.perf_counter()
        self.delay_s = delay_s
        self.enabled = sys.stderr.isatty()

    def _due(self) -> bool:
        return self.enabled and time.perf_counter() - self.started >= self.delay_s

    def __call__(self, message: str) -> None:
        if self._due():
            sys.stderr.write(f"\r\x1b[2K{message}")
            sys.stderr.flush()

    def done(self) -> None:
        if self._due():
            sys.stderr.write("\r\x1b[2K")


def check_plot_option(plot: str) -> None:
    """``--plot FILE`` before any search: the file name and its folder first, then the
    optional matplotlib extra (``SpecError`` naming ``--plot``)."""
    from solver.cli.common import as_option_error
    from solver.pareto import check_plot_path, require_matplotlib

    try:
        check_plot_path(plot)
    except SpecError as err:
        raise as_option_error(err) from None
    check_target(Path(plot), "--plot")
    try:
        require_matplotlib()
    except SpecError as err:
        raise as_option_error(err) from None
