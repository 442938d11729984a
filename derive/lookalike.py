"""Names that print alike: ``A`` and Greek ``Α``, ``W1`` and ``W_1``, ``alpha`` and ``α``.

Two different variables that a reader cannot tell apart in the output would make a
derivation that reads wrong, so the parser refuses the second one (``parse.py``). Names
meet when their LaTeX is the same (``LatexPrinter.name``) or when their letters are the
same once Greek and Cyrillic letters that look Latin are read as Latin (the text output
and terminals show names as written).
"""
from __future__ import annotations

import unicodedata

from .printer import LatexPrinter

# letters that look like Latin ones in common fonts: Greek, then Cyrillic
_LATIN = str.maketrans(
    "ΑΒΕΖΗΙΚΜΝΟΡΤΥΧοιρνκχυϲ" "АВЕКМНОРСТХУЅІЈаеорсхуѕіјԁһԛԝ",
    "ABEZHIKMNOPTYXoipvkxuc" "ABEKMHOPCTXYSIJaeopcxysijdhqw")
_PRINTER = LatexPrinter()


def looks(name: str) -> tuple:
    """What a reader sees of ``name``: its LaTeX, and its letters read as Latin."""
    return (_PRINTER.name(name), name.translate(_LATIN))


def hidden(name: str) -> bool:
    """The LaTeX reader's own names (``claim″0``, ``f′1``): never printed, never refused."""
    return "\u2032" in name or "\u2033" in name


def not_a_letter(name: str) -> str | None:
    """A character of ``name`` that is neither a letter, a digit nor ``_`` (such as U+03A2,
    a code point inside the Greek block that Unicode leaves unassigned), or None."""
    for char in name:
        if not (char == "_" or unicodedata.category(char)[0] in "LN"):
            return char
    return None


def first_alike(names) -> tuple | None:
    """``(later, earlier)`` for the first pair of ``names`` (in reading order) that print
    alike, or None."""
    seen: dict = {}
    for name in names:
        for key in looks(name):
            other = seen.setdefault(key, name)
            if other != name:
                return name, other
    return None
