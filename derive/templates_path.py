"""Where the Jinja2 templates live (inside the installed package, or in the repo), and
the environment every built-in template is rendered in."""
from __future__ import annotations

from pathlib import Path

import jinja2

from .cache import private_cache_dir

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
    folder = private_cache_dir("templates")
    return jinja2.FileSystemBytecodeCache(str(folder)) if folder is not None else None
