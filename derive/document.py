"""Derivations become whole documents: a standalone LaTeX article, lecture notes (a section
per chain, one notation) and self-contained HTML pages whose math KaTeX renders.

Every document prints its math with ``printer.DocumentPrinter``, whose notation macros
(``\\frob``, ``\\tr``, ``\\Diag``) are defined once in ``templates/notation.j2`` and read by
both the LaTeX preamble and the KaTeX options, so a PDF and a page read the same.
"""
from __future__ import annotations

import base64
import os
import re
from functools import cache
from pathlib import Path

import sympy

from . import printer, render
from .derivation import Derivation
from .errors import DeriveError

KATEX_VERSION = "0.19.1"
KATEX_CDN = f"https://cdn.jsdelivr.net/npm/katex@{KATEX_VERSION}/dist"
# Subresource integrity of the CDN files (the hashes KaTeX's README publishes).
KATEX_INTEGRITY = {
    "katex.min.css": "sha384-WwGtaC6ywCHxA5cstpj/3+xIZvTez8dq2IcBQaXRkenHZ7FVVq1ZROtURwfbtTlG",
    "katex.min.js": "sha384-a1WQdjRj162i159OYq041X6I4K8NenkrI09LlPmiHg0YOb7CR+wJOraXwK9abpnE",
}
NOTES_TITLE = "Derivations by differentials"
# KaTeX 0.19.1 as the npm package ships it (MIT licence beside it), shipped in the wheel:
# the default page carries it inline, so it renders from file:// with no network at all.
KATEX_FILES = Path(__file__).resolve().parent / "assets" / "katex"
_FONT_FACE_SOURCE = re.compile(r"src:url\(fonts/([A-Za-z0-9_-]+)\.woff2\) format\(\"woff2\"\)[^;}]*")


def standalone(derivation: Derivation, explain: bool = False) -> str:
    """A complete LaTeX article (amsmath only) for one derivation."""
    return _template("standalone.tex.j2").render(
        section=section(derivation, explain=explain, fit=True))


def notes(derivations, headings=None, title: str | None = None, explain: bool = False) -> str:
    """One LaTeX article with a table of contents and a section per derivation."""
    return _template("notes.tex.j2").render(title=title or NOTES_TITLE,
                                           sections=_sections(derivations, headings, explain,
                                                              fit=True))


def html(derivations, headings=None, title: str | None = None, katex_url: str | None = None,
         notes: bool = False, explain: bool = False, page_dir=None) -> str:
    """One self-contained HTML page: a derivation, or notes (contents, a section each).

    KaTeX is inline unless ``katex_url`` names another copy (see ``katex_assets``)."""
    sections = _sections(derivations, headings, explain)
    return _template("page.html.j2").render(
        title=title or (NOTES_TITLE if notes else sections[0]["heading"]),
        notes=notes, sections=sections, katex=katex_assets(katex_url, page_dir))


def section(derivation: Derivation, heading: str | None = None, explain: bool = False,
            fit: bool = False) -> dict:
    """``render.page`` in the documents' notation, plus a heading and the symbol table;
    ``fit``: a formula wider than a PDF's line is shrunk to it (a page scrolls instead)."""
    print_ = printer.DocumentPrinter(printer.differential_prefix(derivation.chain)).doprint
    data = render.page(derivation, print_, explain=explain)
    data["heading"] = heading or _heading(derivation)
    data["symbols"] = symbols(derivation, print_)
    data["fit"] = fit
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


def katex_assets(url: str | None = None, page_dir=None) -> dict:
    """Where the page gets KaTeX: inline (the default: the copy in the wheel, fonts as data
    URIs, about 0.6 MB, so the page works offline and when copied alone); ``"cdn"``, the
    pinned CDN with integrity hashes; an http(s) URL; or a local copy of the npm package's
    ``dist/`` folder, which must hold KaTeX and is linked relative to ``page_dir``."""
    if url is None:
        return {"inline": True, "js": {"text": _inline_js()}, "css": {"text": _inline_css()}}
    if url == "cdn":
        return _linked(KATEX_CDN, pinned=True)
    if re.match(r"[a-z][a-z0-9+.-]*://", url):
        return _linked(url.rstrip("/"), pinned=False)
    return _linked(_local_katex(url, page_dir), pinned=False)


def _linked(base: str, pinned: bool) -> dict:
    files = {name.split(".")[-1]: {"href": f"{base}/{name}",
                                   "integrity": KATEX_INTEGRITY[name] if pinned else None}
             for name in KATEX_INTEGRITY}
    return {"inline": False, **files}


def _local_katex(folder: str, page_dir) -> str:
    """A folder holding katex.min.js and katex.min.css, as a URL relative to the page."""
    path = Path(folder).expanduser()
    missing = [name for name in KATEX_INTEGRITY if not (path / name).is_file()]
    if missing:
        raise DeriveError(f"--katex-url {folder}: no {' or '.join(missing)} there; give KaTeX's "
                          "dist/ folder (npm install katex), an http(s) URL, or cdn")
    if page_dir is None:
        return path.resolve().as_uri()
    relative = os.path.relpath(path.resolve(), Path(page_dir).resolve())
    return "/".join(Path(relative).parts)


@cache
def _inline_js() -> str:
    return (KATEX_FILES / "katex.min.js").read_text(encoding="utf-8")


@cache
def _inline_css() -> str:
    """KaTeX's stylesheet with each font as a woff2 data URI (every current browser reads
    woff2, so the woff and ttf fallbacks are dropped)."""
    def embed(match):
        data = (KATEX_FILES / "fonts" / f"{match.group(1)}.woff2").read_bytes()
        return f'src:url(data:font/woff2;base64,{base64.b64encode(data).decode()}) format("woff2")'
    return _FONT_FACE_SOURCE.sub(embed, (KATEX_FILES / "katex.min.css").read_text(encoding="utf-8"))


# ---------------------------------------------------------------- helpers


def _template(name: str):
    return render._environment().get_template(name)


def _sections(derivations, headings, explain: bool, fit: bool = False) -> list:
    headings = list(headings) if headings else [None] * len(derivations)
    return [section(d, h, explain, fit) for d, h in zip(derivations, headings)]


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
