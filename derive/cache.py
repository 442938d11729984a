"""A cache folder only this user can write, for what makes a cold start fast.

lark's parse tables are a pickle and Jinja's compiled templates are code: kept in the
shared temporary folder under a predictable name, whoever wrote them first would run
code as every user of derive.  So they live in ``~/.cache/derive`` (mode 0700, owned
by this user), or are not cached at all.
"""
from __future__ import annotations

import os
from pathlib import Path


def private_cache_dir(name: str = "") -> Path | None:
    """``~/.cache/derive[/name]`` (or ``$XDG_CACHE_HOME``), or None when it is not ours alone."""
    try:
        folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "derive" / name
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.stat()
    except (OSError, RuntimeError, KeyError):
        return None
    if info.st_uid != getattr(os, "getuid", lambda: info.st_uid)() or info.st_mode & 0o022:
        return None
    return folder
