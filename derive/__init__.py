"""derive: a declared chain of matrix definitions becomes a verified derivation by differentials.

``derive.derive(text)`` and ``derive.derive_file(path)`` are loaded on first use, so
importing one stage (``derive.expr``) does not pull in the whole pipeline.
"""
from .errors import DeriveError

__all__ = ["derive", "derive_file", "Derivation", "DeriveError"]


def __getattr__(name):
    if name in ("derive", "derive_file"):
        from . import api
        return getattr(api, name)
    if name == "Derivation":
        from .derivation import Derivation
        return Derivation
    raise AttributeError(f"module 'derive' has no attribute {name!r}")
