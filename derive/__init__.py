"""derive: a declared chain of matrix definitions becomes a verified derivation by differentials.

``derive.derive(text)``, ``derive.derive_file(path)``, ``derive.render(path, to=…,
output=…)`` and ``derive.notes(paths, output)`` (what the commands do) are loaded on first
use, so importing one stage (``derive.expr``) does not pull in the whole pipeline.
"""
import sys
import types

__version__ = "0.2.0"      # the one place: pyproject.toml and ``derive --version`` read it

__all__ = ["derive", "derive_file", "render", "notes", "Derivation", "DeriveError"]


def __getattr__(name):
    if name in ("derive", "derive_file", "notes"):
        from . import api
        return getattr(api, name)
    if name == "DeriveError":       # loaded on use too: ``python -m derive`` imports this
        from .errors import DeriveError   # package before the handler that answers Ctrl-C
        return DeriveError
    if name == "Derivation":
        from .derivation import Derivation
        return Derivation
    raise AttributeError(f"module 'derive' has no attribute {name!r}")


class _Package(types.ModuleType):
    """This package: ``derive.render`` is the module of the renderers and, called, the
    command ``derive.api.render``.  Whoever imports the module first, the import system
    binds it here, and here it is made callable — the top of the package knows both
    the renderers and the API, so neither imports the other in a circle."""

    @property
    def render(self):
        if "_render" not in vars(self):
            import derive.render  # noqa: F401  (binding it calls the setter below)
        return vars(self)["_render"]

    @render.setter
    def render(self, module):
        module.__class__ = _Command
        vars(self)["_render"] = module


class _Command(types.ModuleType):
    """The module ``derive.render``, callable: ``derive.render("a.chain", output="a.html")``."""

    def __call__(self, *args, **kwargs):
        from .api import render as command
        return command(*args, **kwargs)


sys.modules[__name__].__class__ = _Package
