"""Where the Jinja2 templates live (inside the installed package, or in the repo), and
the environment every built-in template is rendered in."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

import jinja2

from .cache import open_private_file, private_cache_fd

_PACKAGE = Path(__file__).resolve().parent


def template_dir() -> Path:
    """``derive/templates`` of an installed wheel, else the repo's top-level ``templates/``.

    The wheel maps the top-level folder into the package (see pyproject.toml); a source
    checkout or an editable install has only the top-level folder.
    """
    installed = _PACKAGE / "templates"
    if installed.is_dir():
        return installed
    return _PACKAGE.parent / "templates"


def environment() -> jinja2.Environment:
    """Strict, whitespace-trimmed, with compiled templates cached on disk between runs
    (compiling them costs a cold ``derive`` run more than the derivation itself)."""
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_dir())),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              trim_blocks=True, lstrip_blocks=True, autoescape=False,
                              bytecode_cache=_bytecode_cache())


def _bytecode_cache():
    found = private_cache_fd("templates")
    return PrivateBytecodeCache(found[1]) if found is not None else None


class PrivateBytecodeCache(jinja2.BytecodeCache):
    """Jinja's compiled templates (code, run when loaded) read and written only through a
    descriptor of the private cache folder: a file is loaded only if ``fstat`` on the open
    file says it is this user's and no one else's to write, links are not followed, and a
    new one is renamed into place whole (``FileSystemBytecodeCache`` opens by path)."""

    def __init__(self, folder_fd: int):
        self.folder_fd = folder_fd

    @staticmethod
    def _name(bucket) -> str:
        return f"__jinja2_{bucket.key}.cache"

    def load_bytecode(self, bucket) -> None:
        fd = open_private_file(self.folder_fd, self._name(bucket))
        if fd is not None:
            with os.fdopen(fd, "rb") as stream:
                bucket.load_bytecode(stream)

    def dump_bytecode(self, bucket) -> None:
        temporary = f".{self._name(bucket)}.{secrets.token_hex(8)}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        try:
            fd = os.open(temporary, flags | getattr(os, "O_NOFOLLOW", 0), 0o600,
                         dir_fd=self.folder_fd)
            with os.fdopen(fd, "wb") as stream:
                bucket.write_bytecode(stream)
            os.replace(temporary, self._name(bucket), src_dir_fd=self.folder_fd,
                       dst_dir_fd=self.folder_fd)
        except OSError:       # a full disk costs the cache, not the run
            try:
                os.unlink(temporary, dir_fd=self.folder_fd)
            except OSError:
                pass
