"""The Python API: chain text in, a (checked) Derivation out. Never prints; errors are DeriveError."""
from __future__ import annotations

import dataclasses
import os
import stat
from contextlib import contextmanager

from .check import assign_sizes, check as numeric_check
from .check import check_alternatives, check_claims
from .cost import refuse_costly
from .derivation import Derivation
from .errors import DeriveError
from .latex_input import read_chain
from .limits import Limits, applied, read_bounded
from .sweep import build


def derive(text: str, *, wrt=None, source_name: str = "<-e>", check: bool = True,
           seed: int = 0, expand: bool = False, limits: Limits | None = None,
           symmetric_gradient: bool = False, strict: bool = False,
           language: str | None = None) -> Derivation:
    """Parse ``text``, derive the gradient(s) and, unless ``check=False``, verify every line.

    ``language`` is ``"chain"``, ``"latex"`` or None: LaTeX when the text has a ``$`` or a
    backslash. Warnings (``derivation.warnings`` of kind ``"warning"``: an undeclared name
    beside declared ones, an unused input, a wrt with no path, a formula the LaTeX reader
    skipped) are data; ``strict`` makes the first of them a DeriveError instead.

    A failed numeric check is not an exception: it is recorded in ``derivation.check``
    (``.ok`` is False, ``.failures`` names the lines), so callers can still show it.
    ``limits`` bounds sizes and time (default: ``Limits`` with ``DERIVE_MAX_…`` variables).
    """
    try:
        return _derive(text, wrt, source_name, check, seed, expand, limits, symmetric_gradient,
                       strict, language)
    except DeriveError as error:     # the caller's line and the message, not derive's frames
        raise error.with_traceback(None) from None


def _derive(text, wrt, source_name, check, seed, expand, limits, symmetric_gradient,
            strict, language) -> Derivation:
    with applied(limits), _resources():
        chain = read_chain(text, source_name, list(wrt) if wrt else None, language)
        derivation = build(chain, expand=expand, symmetric=symmetric_gradient)
        if strict:
            _refuse_warnings(derivation)
        if check:
            refuse_costly(derivation, assign_sizes(derivation.chain))   # before any array
            derivation = dataclasses.replace(derivation, check=numeric_check(derivation, seed=seed))
        if check and (chain.alternatives or chain.claims):
            found = check_alternatives(chain, seed) + check_claims(derivation, seed)
            derivation = dataclasses.replace(derivation, warnings=derivation.warnings + tuple(found))
    return derivation


def derive_file(path, *, wrt=None, source_name: str | None = None, check: bool = True,
                seed: int = 0, expand: bool = False, limits: Limits | None = None,
                symmetric_gradient: bool = False, strict: bool = False,
                language: str | None = None) -> Derivation:
    """``derive`` on the UTF-8 text of ``path``; errors cite the path as given. A ``.tex``
    file is LaTeX."""
    if language is None and str(path).lower().endswith(".tex"):
        language = "latex"
    with applied(limits):
        return derive(read_text(path), wrt=wrt, source_name=source_name or display_name(path),
                      check=check, seed=seed, expand=expand, symmetric_gradient=symmetric_gradient,
                      strict=strict, language=language)


def warnings_of(derivation: Derivation) -> list:
    """The warnings proper (not the notes on conventions that the outputs state)."""
    return [w for w in derivation.warnings if getattr(w, "kind", "warning") == "warning"]


def _refuse_warnings(derivation: Derivation) -> None:
    found = warnings_of(derivation)
    if found:
        first, more = found[0], len(found) - 1
        extra = f" (and {more} more warning{'s' * (more > 1)})" if more else ""
        raise DeriveError(f"{first}{extra}; --strict makes warnings errors",
                          derivation.chain.source, first.line or None, first.column or None)


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
        with _open_chain(path) as stream:
            data = read_bounded(stream, str(path))
        return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except FileNotFoundError:
        raise DeriveError(f"cannot read {path}: no such file") from None
    except UnicodeDecodeError:
        raise DeriveError(f"cannot read {path}: not UTF-8 text") from None
    except OSError as exc:
        raise DeriveError(f"cannot read {path}: {exc.strerror or exc}") from None


def _open_chain(path):
    """A regular file, or a pipe (``<(…)``), opened without blocking: a FIFO nobody writes
    to reads as empty instead of waiting forever, and a device (``/dev/tty``) is refused
    before it is opened."""
    if not _readable_kind(os.stat(path).st_mode):
        raise DeriveError(f"cannot read {path}: not a regular file (give - to read "
                          "standard input)")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not _readable_kind(os.fstat(fd).st_mode):        # swapped since the stat
            raise DeriveError(f"cannot read {path}: not a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)     # a pipe's writer is waited for; none: end of file
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def _readable_kind(mode: int) -> bool:
    return stat.S_ISREG(mode) or stat.S_ISFIFO(mode)
