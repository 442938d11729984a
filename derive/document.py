"""Derivations become whole documents: a standalone LaTeX article, lecture notes (a section
per chain, one notation) and self-contained HTML pages whose math KaTeX renders.

Every document prints its math with ``printer.DocumentPrinter``, whose notation macros
(``\\frob``, ``\\tr``, ``\\Diag``) are defined once in ``templates/notation.j2`` and read by
both the LaTeX preamble and the KaTeX options, so a PDF and a page read the same.
"""
from __future__ import annotations

from pathlib import Path

import sympy

from . import printer, render
from .derivation import Derivation

KATEX_VERSION = "0.19.1"
KATEX_CDN = f"https://cdn.jsdelivr.net/npm/katex@{KATEX_VERSION}/dist"
# Subresource integrity of the CDN files (the hashes KaTeX's README publishes).
KATEX_INTEGRITY = {
    "katex.min.css": "sha384-WwGtaC6ywCHxA5cstpj/3+xIZvTez8dq2IcBQaXRkenHZ7FVVq1ZROtURwfbtTlG",
    "katex.min.js": "sha384-a1WQdjRj162i159OYq041X6I4K8NenkrI09LlPmiHg0YOb7CR+wJOraXwK9abpnE",
}
NOTES_TITLE = "Derivations by differentials"


def standalone(derivation: Derivation, explain: bool = False) -> str:
    """A complete LaTeX article (amsmath only) for one derivation."""
    return _template("standalone.tex.j2").render(section=section(derivation, explain=explain))


def notes(derivations, headings=None, title: str | None = None, explain: bool = False) -> str:
    """One LaTeX article with a table of contents and a section per derivation."""
    return _template("notes.tex.j2").render(title=title or NOTES_TITLE,
                                           sections=_sections(derivations, headings, explain))


def html(derivations, headings=None, title: str | None = None, katex_url: str | None = None,
         notes: bool = False, explain: bool = False) -> str:
    """One self-contained HTML page: a derivation, or notes (contents, a section each)."""
    sections = _sections(derivations, headings, explain)
    return _template("page.html.j2").render(
        title=title or (NOTES_TITLE if notes else sections[0]["heading"]),
        notes=notes, sections=sections, katex=katex_assets(katex_url))


def section(derivation: Derivation, heading: str | None = None, explain: bool = False) -> dict:
    """``render.page`` in the documents' notation, plus a heading and the symbol table."""
    print_ = printer.DocumentPrinter(printer.differential_prefix(derivation.chain)).doprint
    data = render.page(derivation, print_, explain=explain)
    data["heading"] = heading or _heading(derivation)
    data["symbols"] = symbols(derivation, print_)
    return data


def symbols(derivation: Derivation, print_) -> list:
    """One row per input and defined variable: name, shape, kind, properties, role."""
    chain, wrt = derivation.chain, {w.name for w in derivation.chain.wrt}
    rows = []
    for item in chain.inputs:
        role = "input" + (", differentiated" if item.symbol.name in wrt else "")
        rows.append(_symbol_row(item.symbol, print_, role if item.declared
                                else role + " (shape inferred)"))
    for definition in chain.definitions:
        role = "objective" if definition is chain.objective else "defined"
        rows.append(_symbol_row(definition.symbol, print_, f"{role}, line {definition.line}"))
    return rows


def katex_assets(url: str | None = None) -> dict:
    """Where the page loads KaTeX from: the pinned CDN (with integrity hashes) or ``url``,
    a copy of the npm package's ``dist/`` (a local folder becomes a ``file://`` URL)."""
    base = KATEX_CDN if url is None else _as_url(url)
    pinned = url is None
    return {name.split(".")[-1]: {"href": f"{base}/{name}",
                                  "integrity": KATEX_INTEGRITY[name] if pinned else None}
            for name in KATEX_INTEGRITY}


# ---------------------------------------------------------------- helpers


def _template(name: str):
    return render._environment().get_template(name)


def _sections(derivations, headings, explain: bool) -> list:
    headings = list(headings) if headings else [None] * len(derivations)
    return [section(d, h, explain) for d, h in zip(derivations, headings)]


def _heading(derivation: Derivation) -> str:
    """The chain's ``# title:``, else its file name, else a plain description."""
    chain = derivation.chain
    if chain.title:
        return chain.title
    name = chain.source.name if chain.source else ""
    if name and not name.startswith("<"):
        return Path(name).name
    return f"The gradient of {derivation.objective.name}"


def _symbol_row(symbol, print_, role: str) -> dict:
    rows, cols = symbol.shape
    kind = "scalar" if (rows, cols) == (1, 1) else "vector" if cols == 1 else "matrix"
    return {"name": print_(symbol), "shape": rf"{sympy.latex(rows)}\times {sympy.latex(cols)}",
            "kind": kind, "properties": sorted(symbol.props), "role": role}


def _as_url(url: str) -> str:
    """``url`` without a trailing slash; an existing local folder as a ``file://`` URL."""
    path = Path(url).expanduser()
    if "://" not in url and path.is_dir():
        return path.resolve().as_uri()
    return url.rstrip("/")
