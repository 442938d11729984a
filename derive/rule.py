"""A rule's name: the Unicode text the tables show, carrying its LaTeX form for ``--explain``.

A ``Rule`` is a ``str`` (its text), so equality, de-duplication and JSON see the plain
name; ``.latex`` is the same formula for a math renderer (amsmath, MathJax and KaTeX).
``tex_text.latex_of`` gives the LaTeX of any rule name, a plain string included.
"""
from __future__ import annotations


class Rule(str):
    """``Rule("A:BC = BᵀA:C", r"A:BC = B^TA:C")``."""

    latex: str

    def __new__(cls, text: str, latex: str):
        rule = super().__new__(cls, text)
        rule.latex = latex
        return rule

    def __getnewargs__(self):
        return str(self), self.latex
