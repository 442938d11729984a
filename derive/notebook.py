"""The ``%%derive`` cell magic: ``%load_ext derive.notebook``, then a cell of chain text.

The cell's first line may carry options as on the command line (``%%derive --wrt W
--no-check``); the derivation displays itself (Markdown for Jupyter's MathJax, LaTeX
for nbconvert), and an input error prints its ``file:line:col`` message alone.
"""
from __future__ import annotations

import shlex

from .errors import DeriveError


def load_ipython_extension(ipython) -> None:
    ipython.register_magic_function(derive_cell, magic_kind="cell", magic_name="derive")


def derive_cell(line: str, cell: str):
    """Derive the chain typed in the cell; return the Derivation so the cell displays it."""
    from . import api
    options = _options(line)
    try:
        return api.derive(cell, source_name="<cell>", **options)
    except DeriveError as error:
        print(error.format())
        return None


def _options(line: str) -> dict:
    """``--wrt A,B``, ``--no-check``, ``--seed N``, ``--expand``, ``--strict``."""
    words = shlex.split(line)
    options: dict[str, object] = {}
    flags = {"--no-check": ("check", False), "--expand": ("expand", True),
             "--strict": ("strict", True), "--symmetric-gradient": ("symmetric_gradient", True)}
    while words:
        word = words.pop(0)
        if word in flags:
            key, value = flags[word]
            options[key] = value
        elif word in ("--wrt", "--seed") and words:
            given = words.pop(0)
            options["wrt" if word == "--wrt" else "seed"] = \
                given.split(",") if word == "--wrt" else int(given)
        else:
            raise DeriveError(f"%%derive: unknown option {word!r} (known: --wrt A,B, --seed N, "
                              + ", ".join(flags) + ")")
    return options
