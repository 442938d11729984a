"""Where the Jinja2 templates live: inside the installed package, or in the repo."""
from __future__ import annotations

from pathlib import Path

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
