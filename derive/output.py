"""Writing a rendered derivation to a file atomically: the old file or the new one, never half."""
from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from .errors import DeriveError


def write_atomically(path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder and ``os.replace``.

    On any failure the existing file is untouched and the temporary file is removed.
    """
    path = Path(path)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = _default_mode()
    except OSError as exc:
        raise DeriveError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp",
                                         dir=path.parent if str(path.parent) else ".")
    except OSError as exc:
        raise DeriveError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException as exc:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            raise DeriveError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise


def _default_mode() -> int:
    """0o666 less the process umask, as a plain ``open`` would give."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask
