"""The Python API: chain text in, a (checked) Derivation out. Never prints; errors are DeriveError."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from .check import check as numeric_check
from .derivation import Derivation
from .errors import DeriveError
from .parse import parse_chain
from .sweep import build


def derive(text: str, *, wrt=None, source_name: str = "<-e>", check: bool = True,
           seed: int = 0, expand: bool = False) -> Derivation:
    """Parse ``text``, derive the gradient(s) and, unless ``check=False``, verify every line.

    A failed numeric check is not an exception: it is recorded in ``derivation.check``
    (``.ok`` is False, ``.failures`` names the lines), so callers can still show it.
    """
    chain = parse_chain(text, source_name=source_name, wrt=list(wrt) if wrt else None)
    derivation = build(chain, expand=expand)
    if check:
        derivation = dataclasses.replace(derivation, check=numeric_check(derivation, seed=seed))
    return derivation


def derive_file(path, *, wrt=None, source_name: str | None = None, check: bool = True,
                seed: int = 0, expand: bool = False) -> Derivation:
    """``derive`` on the UTF-8 text of ``path``; errors cite the path as given."""
    return derive(read_text(path), wrt=wrt, source_name=source_name or str(path),
                  check=check, seed=seed, expand=expand)


def read_text(path) -> str:
    """A chain file's text, with unreadable files reported as input errors."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DeriveError(f"cannot read {path}: no such file") from None
    except UnicodeDecodeError:
        raise DeriveError(f"cannot read {path}: not UTF-8 text") from None
    except OSError as exc:
        raise DeriveError(f"cannot read {path}: {exc.strerror or exc}") from None
