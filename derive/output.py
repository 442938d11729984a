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

    On any failure the existing file is untouched and the temporary file is removed.  A
    link is followed (its target is replaced) only where the kernel would follow it for
    the shell's ``>``, and a read-only file is refused, as ``>`` refuses it.
    """
    if is_stream(path):
        raise DeriveError(f"cannot write {path}: not a regular file (leave out -o for stdout)")
    path = _target(Path(path))
    try:
        mode = _writable_mode(path)
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


MAX_LINKS = 40      # the kernel's own limit on links in one lookup


def _target(path: Path) -> Path:
    """The file ``>`` would write: ``path``, or where its chain of links ends — each link
    followed only if the kernel's ``fs.protected_symlinks`` rule allows it (no ``realpath``,
    which would follow links the kernel refuses)."""
    for _ in range(MAX_LINKS):
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return path
        except OSError as exc:
            raise DeriveError(f"cannot write {path}: {exc.strerror or exc}") from None
        if not stat.S_ISLNK(info.st_mode):
            return path
        _may_follow(path, info)
        path = path.parent / os.readlink(path)
    raise DeriveError(f"cannot write {path}: too many levels of symbolic links")


def _may_follow(link: Path, info) -> None:
    """``fs.protected_symlinks``: in a sticky folder anyone may write (``/tmp``), a link is
    followed only by its owner or when the folder's owner made it."""
    folder = os.stat(link.parent if str(link.parent) else ".")
    shared = folder.st_mode & stat.S_ISVTX and folder.st_mode & stat.S_IWOTH
    if shared and info.st_uid not in (os.geteuid(), folder.st_uid):
        raise DeriveError(f"cannot write {link}: it is another user's link in a shared "
                          "sticky folder, which the shell's > would not follow either")


def _writable_mode(path: Path) -> int:
    """The permissions the new file gets: the old file's, else those of a plain ``open``;
    an existing file that may not be written (read-only, or not ours to write) is refused."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return _default_mode()
    if not info.st_mode & 0o222 or not os.access(path, os.W_OK):
        raise DeriveError(f"cannot write {path}: it is read-only")
    return stat.S_IMODE(info.st_mode)


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
