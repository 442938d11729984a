"""derive: a declared chain of matrix definitions becomes a verified derivation by differentials.

``derive.derive(text)``, ``derive.derive_file(path)``, ``derive.render(path, to=…,
output=…)`` and ``derive.notes(paths, output)`` (what the commands do) are loaded on first
use, so importing one stage (``derive.expr``) does not pull in the whole pipeline.
"""
from .errors import DeriveError

__version__ = "0.2.0"      # the one place: pyproject.toml and ``derive --version`` read it

__all__ = ["derive", "derive_file", "render", "notes", "Derivation", "DeriveError"]


def __getattr__(name):
    if name == "render":          # the module derive.render, callable as api.render
        import sys
        from .render import FORMATS  # noqa: F401  (imports the module derive.render)
        return sys.modules[f"{__name__}.render"]
    if name in ("derive", "derive_file", "notes"):
        from . import api
        return getattr(api, name)
    if name == "Derivation":
        from .derivation import Derivation
        return Derivation
    raise AttributeError(f"module 'derive' has no attribute {name!r}")
