"""A cache folder only this user can write, for what makes a cold start fast.

lark's parse tables are a pickle and Jinja's compiled templates are code: whoever can
write or swap such a file runs code as the user who loads it.  So they live in
``~/.cache/derive`` (or ``$XDG_CACHE_HOME/derive``, mode 0700, owned by this user), or are
not cached at all, and a check by path is never trusted on its own:

- the folder is reached by directory descriptors, each component opened with
  ``O_NOFOLLOW`` and checked with ``fstat`` on the open descriptor, so what is checked is
  what is used;
- every folder on the way from ``/`` must be out of other users' reach (owned by this
  user or root, and not writable by others unless sticky with the next folder owned by
  this user or root), so no one else can swap a component later and the path stays
  valid for code that opens it by name (lark);
- a cached file is opened through the folder's descriptor with ``O_NOFOLLOW`` and used
  only if ``fstat`` says it is a regular file of this user's that no one else may write.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

_FOLDER = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_FILE = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def private_cache_fd(name: str = "") -> tuple | None:
    """``(path, descriptor)`` of the private cache folder (the caller closes the
    descriptor); None when some folder on the way could be written by another user."""
    try:
        return _open_private(name)
    except (OSError, RuntimeError, KeyError, ValueError):
        return None


def private_cache_file(filename: str, name: str = "") -> str | None:
    """The path of ``filename`` in the private cache folder, for code that opens it by
    name (lark): None unless the folder is ours alone and the file is absent or a regular
    file of ours that no one else may write (a link there, even to our own file, is
    refused)."""
    found = private_cache_fd(name)
    if found is None:
        return None
    folder, fd = found
    try:
        if _exists(fd, filename):
            checked = open_private_file(fd, filename)
            if checked is None:
                return None
            os.close(checked)
        return str(folder / filename)
    finally:
        os.close(fd)


def _exists(folder_fd: int, filename: str) -> bool:
    try:
        os.stat(filename, dir_fd=folder_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def open_private_file(folder_fd: int, name: str, flags: int = os.O_RDONLY) -> int | None:
    """A descriptor of ``name`` in the folder, if it is a regular file of this user's that
    no one else may write (checked on the descriptor); None when it is not (or absent)."""
    try:
        fd = os.open(name, flags | _FILE, 0o600, dir_fd=folder_fd)
    except OSError:
        return None
    if _ours(os.fstat(fd), regular=True):
        return fd
    os.close(fd)
    return None


def _open_private(name: str) -> tuple | None:
    """Walk from ``/`` to the cache folder by descriptors, creating the last folders."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    base.mkdir(parents=True, exist_ok=True)
    parts = Path(os.path.realpath(base)).parts[1:] + ("derive",) + ((name,) if name else ())
    mine = len(parts) - (2 if name else 1)        # from here on: created by derive, 0700
    fd = os.open("/", _FOLDER)
    path = Path("/")
    try:
        for index, part in enumerate(parts):
            info = os.fstat(fd)
            if not _shielded(info, info):     # nothing is created where others could swap it
                os.close(fd)
                return None
            if index >= mine:
                _make(part, fd)
            child = os.open(part, _FOLDER, dir_fd=fd)
            child_info = os.fstat(child)
            os.close(fd)
            fd, path = child, path / part
            if not _shielded(info, child_info) or (index >= mine and not _ours(child_info)):
                os.close(fd)
                return None
        return path, fd
    except BaseException:
        os.close(fd)
        raise


def _make(part: str, parent_fd: int) -> None:
    try:
        os.mkdir(part, 0o700, dir_fd=parent_fd)
    except FileExistsError:
        pass


def _trusted_owner(uid: int) -> bool:
    return uid in (0, _uid())


def _shielded(parent, child) -> bool:
    """Nobody but this user (and root) can rename or replace ``child`` inside ``parent``."""
    if not (_trusted_owner(parent.st_uid) and _trusted_owner(child.st_uid)):
        return False
    return not parent.st_mode & 0o022 or bool(parent.st_mode & stat.S_ISVTX)


def _ours(info, regular: bool = False) -> bool:
    """Owned by this user and writable by no one else (a regular file, if asked)."""
    kind_ok = stat.S_ISREG(info.st_mode) if regular else stat.S_ISDIR(info.st_mode)
    return kind_ok and info.st_uid == _uid() and not info.st_mode & 0o022


def _uid() -> int:
    return os.getuid() if hasattr(os, "getuid") else 0
