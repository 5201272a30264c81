"""Writing a file whole or not at all: the text goes to a temporary file in the target's folder
that is then renamed over it (``os.replace``, atomic on POSIX), so an interrupted or failed
write leaves the target as it was and no temporary file behind. ``gpuplan ... --output``,
``fleet --export-dir`` and the sweep's table use it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from solver.errors import SpecError


def write_atomic(path: Path, text: str, option: str = "--output") -> None:
    """Write ``text`` to ``path`` whole or not at all.

    A symbolic link is followed (the file it points to is replaced, the link kept). A target
    that exists and is no regular file (``/dev/stdout``, a named pipe) cannot be replaced: it is
    written to directly.
    """
    try:
        target = path.resolve() if path.is_symlink() else path
        special = target.exists() and not target.is_file()
    except (OSError, ValueError) as err:
        raise SpecError(f"{option}: cannot write {str(path)!r:.80} "
                        f"({getattr(err, 'strerror', None) or err})") from None
    tmp = None
    try:
        if special:
            with target.open("w", encoding="utf-8", newline="") as out:
                out.write(text)
            return
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it 0600; a new file gets the usual mode
        os.replace(tmp, target)
        tmp = None
    except OSError as err:
        raise SpecError(f"{option}: cannot write {str(path)!r:.80} "
                        f"({err.strerror or err})") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


__all__ = ["write_atomic"]
