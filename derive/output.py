"""Writing a rendered derivation to a file atomically: the old file or the new one, never half."""
from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from .errors import DeriveError


def write_atomically(path, text: str | bytes) -> None:
    """Write ``text`` (or bytes: a PDF) to ``path`` via a temporary file in the same folder
    and ``os.replace``.

    On any failure the existing file is untouched and the temporary file is removed.
    """
    if is_stream(path):
        raise DeriveError(f"cannot write {path}: not a regular file (leave out -o for stdout)")
    path = Path(os.path.realpath(path))   # through a symlink, not over it
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
        with _open(fd, text) as handle:
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
        if isinstance(exc, UnicodeEncodeError):   # an argument with bytes that are not UTF-8
            raise DeriveError(f"cannot write {path}: the text holds {exc.object[exc.start]!r}, "
                              "which is not Unicode (an argument that is not UTF-8?)") from None
        raise


def is_stream(path) -> bool:
    """A device, terminal or standard stream (``/dev/stdout``): os.replace would swap out
    the device node or link itself, so nothing is written there."""
    absolute = os.path.abspath(path)
    if absolute.startswith(("/dev/", "/proc/")):
        return True
    return os.path.exists(absolute) and not os.path.isfile(absolute)


def _open(fd: int, text: str | bytes):
    if isinstance(text, bytes):
        return os.fdopen(fd, "wb")
    return os.fdopen(fd, "w", encoding="utf-8", newline="")


def _default_mode() -> int:
    """0o666 less the process umask, as a plain ``open`` would give."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask
