"""The Python API: chain text in, a (checked) Derivation out. Never prints; errors are DeriveError."""
from __future__ import annotations

import dataclasses
import os
from contextlib import contextmanager

from .check import check as numeric_check
from .check import check_alternatives, check_claims
from .derivation import Derivation
from .errors import DeriveError
from .latex_input import read_chain
from .limits import Limits, applied, read_bounded
from .sweep import build


def derive(text: str, *, wrt=None, source_name: str = "<-e>", check: bool = True,
           seed: int = 0, expand: bool = False, limits: Limits | None = None,
           symmetric_gradient: bool = False, language: str | None = None) -> Derivation:
    """Parse ``text``, derive the gradient(s) and, unless ``check=False``, verify every line.

    ``language`` is ``"chain"``, ``"latex"`` or None: LaTeX when the text has a ``$`` or a
    backslash. What the LaTeX reader skipped is in ``derivation.chain.warnings``.

    A failed numeric check is not an exception: it is recorded in ``derivation.check``
    (``.ok`` is False, ``.failures`` names the lines), so callers can still show it.
    ``limits`` bounds sizes and time (default: ``Limits`` with ``DERIVE_MAX_…`` variables).
    """
    with applied(limits), _resources():
        chain = read_chain(text, source_name, list(wrt) if wrt else None, language)
        derivation = build(chain, expand=expand, symmetric=symmetric_gradient)
        if check:
            derivation = dataclasses.replace(derivation, check=numeric_check(derivation, seed=seed))
        if check and (chain.alternatives or chain.claims):
            found = check_alternatives(chain, seed) + check_claims(derivation, seed)
            derivation = dataclasses.replace(derivation, warnings=derivation.warnings + tuple(found))
    return derivation


def derive_file(path, *, wrt=None, source_name: str | None = None, check: bool = True,
                seed: int = 0, expand: bool = False, limits: Limits | None = None,
                symmetric_gradient: bool = False, language: str | None = None) -> Derivation:
    """``derive`` on the UTF-8 text of ``path``; errors cite the path as given. A ``.tex``
    file is LaTeX."""
    if language is None and str(path).lower().endswith(".tex"):
        language = "latex"
    with applied(limits):
        return derive(read_text(path), wrt=wrt, source_name=source_name or display_name(path),
                      check=check, seed=seed, expand=expand, symmetric_gradient=symmetric_gradient,
                      language=language)


@contextmanager
def _resources():
    """The last line of defence behind limits.py: exhaustion is an input error, not a crash."""
    try:
        yield
    except RecursionError:
        raise DeriveError("the derivation nests too deeply for Python's stack "
                          "(keep DERIVE_MAX_DEPTH at its default, 100)") from None
    except MemoryError:
        raise DeriveError("out of memory: the chain or its sizes are too large for this "
                          "machine") from None


def display_name(path) -> str:
    """``path`` as messages, headings and outputs show it: bytes of a file name that are not
    UTF-8 become U+FFFD, which every output can encode (a lone surrogate cannot)."""
    try:
        return os.fsencode(path).decode("utf-8", "replace")
    except UnicodeError:
        return str(path).encode("utf-8", "replace").decode("utf-8")


def read_text(path) -> str:
    """A chain file's text, with unreadable files reported as input errors."""
    try:
        with open(path, "rb") as stream:
            data = read_bounded(stream, str(path))
        return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except FileNotFoundError:
        raise DeriveError(f"cannot read {path}: no such file") from None
    except UnicodeDecodeError:
        raise DeriveError(f"cannot read {path}: not UTF-8 text") from None
    except OSError as exc:
        raise DeriveError(f"cannot read {path}: {exc.strerror or exc}") from None
