"""Free text (titles, file names, warnings) made safe for LaTeX's text mode.

pdflatex stops on Unicode it has no definition for (``σ``, ``∘``, ``ᵀ``), so Greek letters
and the symbols of the input language become their math macros; accented Latin letters
that LaTeX's default encoding knows pass through; anything else loses its accent or
becomes ``?`` rather than stopping TeX.
"""
from __future__ import annotations

import unicodedata

from .printer import LATEX_GREEK_CAPITALS, UNICODE_GREEK

SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
            "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
            "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
            "|": r"\textbar{}", "-": "-{}"}      # -{}: no -- or --- ligature

MATH = {"∘": r"\circ", "⊙": r"\odot", "⊗": r"\otimes", "⊘": r"\oslash", "⊕": r"\oplus",
        "∂": r"\partial", "∇": r"\nabla", "−": "-", "→": r"\to", "↦": r"\mapsto", "⟹": r"\implies",
        "⇒": r"\Rightarrow", "⟺": r"\iff", "≤": r"\le", "≥": r"\ge", "≠": r"\ne",
        "≈": r"\approx", "≡": r"\equiv", "∈": r"\in", "∑": r"\sum", "∏": r"\prod",
        "‖": r"\|", "⋅": r"\cdot", "∞": r"\infty", "√": r"\surd", "∀": r"\forall",
        "∃": r"\exists", "∝": r"\propto", "′": "'", "″": "''", "ᵀ": "^{T}", "⁺": "^{+}",
        "⁻": "^{-}", "ϵ": r"\epsilon", "ϑ": r"\vartheta", "ϕ": r"\phi", "ς": r"\varsigma",
        "×": r"\times", "÷": r"\div", "±": r"\pm", "·": r"\cdot", "¬": r"\neg", "µ": r"\mu",
        "°": r"^\circ", "•": r"\bullet", "†": r"\dagger", "‡": r"\ddagger",
        "«": r"\ll", "»": r"\gg"}
MATH.update({s: f"^{{{d}}}" for s, d in zip("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")})
MATH.update({s: f"_{{{d}}}" for s, d in zip("₀₁₂₃₄₅₆₇₈₉", "0123456789")})
MATH.update({c: "\\" + name for c, name in UNICODE_GREEK.items()
             if name.islower() or name in LATEX_GREEK_CAPITALS})

# Latin-1 and Latin Extended-A characters that pdflatex's default (OT1) encoding lacks
# (× ÷ and friends print as other glyphs there, hence their math macros above).
UNSUPPORTED = set("«»ÐÞðþĄąĐđĘęĦħĮįĸĿŀŉŊŋŦŧŲųſ")
PUNCTUATION = set("‘’“”–—…")
LATIN_LOOKING = dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΧ", "ABEZHIKMNOPTX"))   # Greek capitals LaTeX lacks


def tex_escape(text: str) -> str:
    """Plain text made safe for LaTeX's text mode (``σ`` → ``\\ensuremath{\\sigma}``)."""
    return "".join(_char(c) for c in text)


def _char(c: str) -> str:
    if c in SPECIALS:
        return SPECIALS[c]
    if unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp"):   # a blank line would be \par
        return " " if c.isspace() else "?"
    if c in MATH:
        return rf"\ensuremath{{{MATH[c]}}}"
    if c in LATIN_LOOKING:
        return LATIN_LOOKING[c]
    if c.isascii() or c in PUNCTUATION or ("\u00a0" <= c <= "\u017f" and c not in UNSUPPORTED):
        return c
    plain = unicodedata.normalize("NFKD", c).encode("ascii", "ignore").decode()
    return tex_escape(plain) if plain else "?"


def latex_of(rule: str) -> str:
    """The LaTeX of a rule (``rule.Rule``); a plain string (not from the tables) becomes
    upright text."""
    latex = getattr(rule, "latex", None)
    if latex is not None:
        return latex
    return rf"\text{{{tex_escape(str(rule))}}}"
