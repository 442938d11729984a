"""A Derivation becomes Markdown, LaTeX, JSON, NumPy or a plain-text verdict.

Python builds plain data (strings from the printer, numbers from the check); the
Jinja2 templates in ``templates/`` decide the layout.
"""
from __future__ import annotations

import json
from functools import lru_cache, partial
from html import escape as html_escape

import jinja2
from markupsafe import Markup

from . import printer
from .derivation import OUTPUTS, Derivation, jacobian_rows
from .expr import Adjoint, Commutation, Differential, Frobenius, Hadamard, Symbol, walk
from .formats import FLAVORS, SNIPPETS as FORMATS  # noqa: F401  (the one list: formats.py)
from .display import IDENTIFICATION, substitute
from .rule import Rule
from .templates_path import environment
from .tex_text import latex_of, tex_escape
from .verdict import (check_data, equation, failure_sentences, gradient_label, gradient_shown,
                      hessian_label, hessian_shown, jacobian_label, product_shown, status,
                      verdict_rows)


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = environment()
    env.filters["tex_escape"] = tex_escape
    env.filters["sci"] = lambda x: f"{x:.1e}"
    env.filters["tol"] = lambda x: f"{x:g}"
    env.filters["md_escape"] = md_escape
    env.filters["mark"] = mark
    return env


_ESCAPES = {"md": lambda text: md_escape(text), "tex": lambda text: tex_escape(text),
            "html": lambda text: html_escape(text)}


@jinja2.pass_context
def mark(context, text: str, kind: str):
    """``text`` in the markup of the calling template (its ``markup``: ``strong``,
    ``option``, ``quote``, ``math`` format strings and the ``escape`` for free text);
    math is LaTeX already and is not escaped."""
    markup = context["markup"]
    escape = markup["escape"]
    raw = kind == "math" and escape != "html"     # a page's math is text KaTeX reads back
    shown = markup.get(kind, "{}").format(text if raw else _ESCAPES[escape](text))
    return Markup(shown) if escape == "html" else shown


def render(derivation: Derivation, to: str = "markdown", flavor: str = "mse",
           explain: bool = False) -> str:
    """The derivation in format ``to`` (one of FORMATS); ``explain`` names each line's rules."""
    if to == "markdown":
        return to_markdown(derivation, flavor, explain)
    if to == "latex":
        return to_latex(derivation, explain)
    if to == "json":
        return to_json(derivation)
    if to == "numpy":
        return to_numpy(derivation)
    raise ValueError(f"unknown format {to!r}")


def to_markdown(derivation: Derivation, flavor: str = "mse", explain: bool = False) -> str:
    if flavor not in FLAVORS:
        raise ValueError(f"unknown Markdown flavor {flavor!r}")
    template = _environment().get_template("markdown.md.j2")
    return template.render(page(derivation, explain=explain), flavor=flavor)


def to_latex(derivation: Derivation, explain: bool = False) -> str:
    """A snippet for a document that loads amsmath (and nothing else)."""
    return _environment().get_template("latex.tex.j2").render(page(derivation, explain=explain))


def to_jupyter_latex(derivation: Derivation) -> str:
    """The two display blocks as ``$$\\begin{aligned}…$$``: what KaTeX and MathJax both render."""
    return _environment().get_template("jupyter.tex.j2").render(page(derivation))


def to_template(derivation: Derivation, path, explain: bool = False) -> str:
    """A user's Jinja2 template, sandboxed, with the context the built-in templates get."""
    from .user_template import render_user_template
    return render_user_template(path, page(derivation, explain=explain), _environment().filters)


def to_numpy(derivation: Derivation) -> str:
    from .numpy_code import to_numpy as generate
    return generate(derivation)


def _numpy_parameters(derivation: Derivation) -> dict:
    """The NumPy module's keyword arguments and identifiers, for JSON readers."""
    from .numpy_code import parameters
    return parameters(derivation)


def to_json(derivation: Derivation) -> str:
    """Steps, rules used, gradients and verdicts as JSON (one dict, built here)."""
    chain = derivation.chain
    tex, txt = latex_printer(derivation), printer.text_printer(chain)
    data = {
        "title": chain.title,
        "source": chain.source.name if chain.source else None,
        "inputs": [{"name": i.symbol.name, "shape": [str(s) for s in i.symbol.shape],
                    "properties": sorted(i.symbol.props), "declared": i.declared}
                   for i in chain.inputs],
        "wrt": [w.name for w in chain.wrt],
        "objective": derivation.objective.name,
        "definitions": [
            {"line": d.line, "symbol": d.symbol.name, "alias": d.is_alias,
             "latex": f"{tex(d.symbol)} = {tex(d.expr)}",
             "text": f"{txt(d.symbol)} = {txt(d.expr)}",
             "differential": {"of": d.differential_of.name,
                              "latex": equation(tex, d.differential_of, d.differential),
                              "text": equation(txt, d.differential_of, d.differential)},
             "rules": [str(r) for r in d.rules]}
            for d in derivation.definitions],
        "substitutions": [
            {"latex": tex(s.expr), "text": txt(s.expr),
             "eliminated": s.eliminated.name if s.eliminated is not None else None,
             "rules": [str(r) for r in s.rules]}
            for s in derivation.substitutions],
        "steps": [
            {"variable": st.variable.name,
             "adjoint": {"latex": tex(st.adjoint), "text": txt(st.adjoint)},
             "substituted": {"latex": tex(st.substituted), "text": txt(st.substituted)},
             "moved": {"latex": tex(st.moved), "text": txt(st.moved)},
             "rules": [str(r) for r in st.rules]}
            for st in derivation.steps],
        "gradients": [
            {"wrt": g.wrt.name, "latex": tex(gradient_shown(derivation, g)),
             "text": txt(gradient_shown(derivation, g)),
             "factored": {"latex": tex(g.expr), "text": txt(g.expr)},
             "expanded": None if g.expanded is None else
             {"latex": tex(g.expanded), "text": txt(g.expanded)}}
            for g in derivation.gradients],
        "hessians": [_hessian_json(derivation, h, tex, txt) for h in derivation.hessians],
        "claims": [_claim_data(c, tex) for c in derivation.claims],
        "jacobians": [_jacobian_data(derivation, block, tex, txt)
                      for block in derivation.jacobians],
        "status": status(derivation.check),
        "check": check_data(derivation.check),
        "warnings": [str(w) for w in derivation.warnings],
        "options": derivation.options,
        "numpy": _numpy_parameters(derivation),
    }
    return json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"


def _hessian_json(derivation: Derivation, h, tex, txt) -> dict:
    """A Hessian as JSON: its lines in order, and its blocks keyed ``"W,b"``, each with its
    matrix on column-major vec (numerator layout) or None when it has no Kronecker form."""
    def both(e):
        return {"latex": tex(e), "text": txt(e)}
    return {
        "wrt": [w.name for w in h.wrt], "line": h.line, "column": h.column,
        "layout": "numerator layout, column-major vec",
        "symmetric_by_construction": h.symmetric,
        "lines": [{"kind": line.kind, "of": line.of.name,
                   "by": line.by.name if line.by is not None else None,
                   "eliminated": line.eliminated.name if line.eliminated is not None else None,
                   **both(line.expr), "rules": [str(r) for r in line.rules]}
                  for line in h.lines],
        "blocks": {b.key: {
            "linear": both(b.expr), "matrix": None if b.matrix is None else both(b.matrix),
            "shape": [str(b.of.shape[0] * b.of.shape[1]), str(b.by.shape[0] * b.by.shape[1])]}
            for b in h.blocks if b.by is not None},
    }


# ---------------------------------------------------------------- plain data for templates


def page(derivation: Derivation, tex=None, explain: bool = False) -> dict:
    """Everything the templates read, as strings, numbers and lists (math printed by ``tex``).

    Every line carries its rules (``rules`` in LaTeX, ``rule_names`` in Unicode);
    ``explain`` tells the templates to show them.  Identification is shown on the
    gradient lines it produces rather than on the last substitution line.
    """
    result = derivation.check
    tex = tex or latex_printer(derivation)
    # what the reader said of the input (undeclared names, skipped formulas) goes to stderr
    # and JSON; a document shows what it says of the derivation itself
    read = {id(w) for w in derivation.chain.warnings}
    shown = [w for w in derivation.warnings if id(w) not in read]
    failed = {(v.block, v.index) for v in result.failures} if result else set()
    definitions = [
        {"lhs": tex(d.symbol), "rhs": tex(d.expr), "dlhs": tex(Differential(d.differential_of)),
         "differential": tex(d.differential),
         "failed": ("definition", i) in failed, **_rules(d.rules)}
        for i, d in enumerate(derivation.definitions)]
    objective = tex(Differential(derivation.objective))
    substitutions = [{"lhs": objective if i == 0 else "", "latex": tex(s.expr),
                      "failed": ("substitution", i) in failed,
                      **_rules(r for r in s.rules if r != IDENTIFICATION)}
                     for i, s in enumerate(derivation.substitutions)]
    substitutions += _step_rows(derivation, tex, failed)
    gradients = [{"label": gradient_label(tex, derivation, g, latex=True),
                  "latex": tex(gradient_shown(derivation, g)),
                  "failed": ("gradient", i) in failed, **_rules((IDENTIFICATION,))}
                 for i, g in enumerate(derivation.gradients)]
    return {
        "title": derivation.chain.title,
        "objective": objective,
        "named": bool(derivation.steps),
        "definitions": definitions,
        "substitutions": substitutions,
        "gradients": gradients,
        "hessians": _hessians(derivation, tex, failed),
        "uses_hadamard": _uses(derivation, Hadamard),
        "jacobians": _jacobian_blocks(derivation, tex, failed),
        "uses_commutation": any(isinstance(n, Commutation) for b in derivation.jacobians
                                for n in walk(b.matrix)),
        "check": check_data(result),
        "failures": failure_sentences(derivation),
        "rows": verdict_rows(derivation),
        "warnings": [str(w) for w in shown],
        "notices": [{"kind": "Note" if getattr(w, "kind", "") == "note" else "Warning",
                     "text": str(w)} for w in shown],
        "explain": explain,
        "claims": [_claim_data(c, tex) for c in derivation.claims],
    }


def _hessians(derivation: Derivation, tex, failed) -> list:
    """Each Hessian for the templates: its rows (as the substitution block's), its names,
    whether it is symmetric by construction and has a matrix form, and its symmetry verdict."""
    verdicts = {(v.block, v.index): v for v in derivation.check.verdicts} \
        if derivation.check else {}
    d = printer.differential_prefix(derivation.chain)
    out = []
    for h in derivation.hessians:
        rows = [{"lhs": hessian_label(tex, derivation, h, i, d), "latex": tex(hessian_shown(line)),
                 "kind": line.kind, "failed": ("hessian", i) in failed, **_rules(line.rules)}
                for i, line in enumerate(h.lines)]
        symmetry = verdicts.get(("hessian", len(h.lines)))
        out.append({"wrt": ", ".join(tex(w) for w in h.wrt), "several": len(h.wrt) > 1,
                    "matrices": any(not w.is_scalar and w.shape[1] != 1 for w in h.wrt),
                    "rows": rows, "symmetric": h.symmetric, "kronecker": h.kronecker,
                    "identity": _hessian_identity(tex, derivation, h, d),
                    "symmetry": None if symmetry is None else
                    {"ok": symmetry.ok, "error": symmetry.relative_error}})
    return out


def _hessian_identity(tex, derivation: Derivation, h, d: str) -> str:
    """``d²E = dW:d(∇_W E) = dW:H[dW]`` in the Hessian's own names (a sum for blocks)."""
    objective = tex(derivation.objective)
    terms = [(f"{d}{tex(w)}", rf"\nabla_{{{tex(w)}}} {objective}") for w in h.wrt]
    differentials = ", ".join(dw for dw, _ in terms)
    second = " + ".join(rf"{dw}:{d}\left({nabla}\right)" for dw, nabla in terms)
    many = len(terms) > 1
    quadratic = rf"({differentials}):H[{differentials}]" if many else rf"{terms[0][0]}:H[{terms[0][0]}]"
    return rf"{d}^2 {objective} = {second} = {quadratic}"


def _claim_data(verdict, tex) -> dict:
    """One claim's verdict for the templates and JSON: LaTeX and text of both sides, the
    numbers as shown (``C : U``, ``G : U``, the central difference)."""
    label = rf"\frac{{\partial {tex(Symbol(verdict.objective))}}}{{\partial {tex(Symbol(verdict.wrt))}}}"
    shown = {k: None if v is None else f"{v:.6g}" for k, v in
             (("claimed_value", verdict.claimed_value), ("gradient_value", verdict.gradient_value),
              ("difference_value", verdict.difference_value))}
    return {"where": f"line {verdict.line}" if verdict.line else "--claim", "line": verdict.line,
            "column": verdict.column, "label": label, "label_text": verdict.label,
            "claimed": tex(verdict.claimed), "claimed_text": printer.text(verdict.claimed),
            "gradient": tex(verdict.gradient), "gradient_text": printer.text(verdict.gradient),
            "holds": verdict.holds, "exact": verdict.exact, "points": verdict.points,
            "tolerance": verdict.tolerance, "error": verdict.error, "slip": verdict.slip,
            "diagnosis": verdict.diagnosis, "note": verdict.note,
            "direction": verdict.direction[1] if verdict.direction else "",
            "direction_text": verdict.direction[0] if verdict.direction else "", **shown}


# ---------------------------------------------------------------- Jacobian blocks

READ_OFF = Rule("vec dF = J vec dX ⟺ ∂vec F/∂vec X = J",
                r"\mathrm{vec}\,dF = J\,\mathrm{vec}\,dX \iff \frac{\partial\,\mathrm{vec}\,F}"
                r"{\partial\,\mathrm{vec}\,X} = J")


def _jacobian_blocks(derivation: Derivation, tex, failed) -> list:
    """The Jacobian displays: each requested block (its dF lines, then J), then with
    --jacobians one block of local Jacobians and one of their products."""
    out: list = []
    for index, block, k in jacobian_rows(derivation):
        if k == 0 and (block.kind == "request" or not out or out[-1]["kind"] != block.kind):
            out.append({"kind": block.kind, "of": tex(block.of), "wrt": tex(block.wrt),
                        "held": derivation.chain.definition_of(block.wrt) is not None,
                        "rows": []})
        rows = out[-1]["rows"]
        bad = ("jacobian", index) in failed
        if k < len(block.lines):
            line = block.lines[k]
            rows.append({"lhs": tex(Differential(block.of)) if k == 0 else "",
                         "latex": tex(line.expr), "failed": bad, "gap": False, **_rules(line.rules)})
            continue
        shown = product_shown(tex, block) if block.kind == "product" else tex(block.matrix)
        if block.kind == "product":
            shown = " = ".join([tex(block.matrix), shown.split(" = ")[-1]]) \
                if len(block.factors) > 1 else shown
        rows.append({"lhs": jacobian_label(tex, block, latex=True), "latex": shown, "failed": bad,
                     "gap": bool(block.lines), **_rules((*block.rules, READ_OFF))})
    return out


def _jacobian_data(derivation: Derivation, block, tex, txt) -> dict:
    """A Jacobian block in JSON: its lines, J, the layout and the rules."""
    rows, cols = block.matrix.shape
    return {"of": block.of.name, "wrt": block.wrt.name, "kind": block.kind, "line": block.line,
            "key": f"{block.of.name}/{block.wrt.name}",
            "layout": "numerator layout: rows vec F, columns vec X (vec stacks columns)",
            "shape": [str(rows), str(cols)],
            "lines": [{"latex": tex(line.expr), "text": txt(line.expr),
                       "eliminated": line.eliminated.name if line.eliminated is not None else None,
                       "rules": [str(r) for r in line.rules]} for line in block.lines],
            "jacobian": {"label": jacobian_label(txt, block),
                         "latex": tex(block.matrix), "text": txt(block.matrix)},
            "factors": [[txt(f) for f in path] for path in block.factors],
            "rules": [str(r) for r in block.rules]}


def _step_rows(derivation: Derivation, tex, failed) -> list:
    """Backprop steps as rows: ``z̄ = G``, then ``z̄ : dz = z̄ : ℓ_z``, then ``= Σ Gᵢ : dYᵢ``
    (for the objective: ``dE = ℓ_E``, then ``= Σ Gᵢ : dYᵢ``)."""
    rows = []
    for i, step in enumerate(derivation.steps):
        bad = ("step", i) in failed
        if i == 0:
            rows.append({"lhs": tex(Differential(step.variable)), "latex": tex(step.substituted),
                         "failed": bad, **_rules(())})
        else:
            bar = Adjoint(step.variable)
            rows.append({"lhs": tex(bar), "latex": tex(step.adjoint), "failed": False, **_rules(())})
            rows.append({"lhs": tex(Frobenius(bar, Differential(step.variable))),
                         "latex": tex(step.substituted), "failed": bad,
                         **_rules((substitute(derivation.chain, step.variable),))})
        if tex(step.moved) != tex(step.substituted):       # no line that repeats the last
            rows.append({"lhs": "", "latex": tex(step.moved), "failed": bad, **_rules(step.rules)})
    return rows


def _rules(rules) -> dict:
    """A line's rules for the templates: LaTeX (for ``--explain``) and the Unicode names."""
    rules = list(rules)
    return {"rules": [latex_of(r) for r in rules], "rule_names": [str(r) for r in rules]}


def latex_printer(derivation: Derivation):
    """``printer.latex`` with ``\\mathrm{d}`` for differentials when ``d`` + name is ambiguous."""
    return partial(printer.latex, differential=printer.differential_prefix(derivation.chain))


def _uses(derivation: Derivation, node_type) -> bool:
    exprs = [d.differential for d in derivation.definitions]
    exprs += [d.expr for d in derivation.definitions]
    return any(isinstance(n, node_type) for e in exprs for n in walk(e))


_MARKDOWN_SPECIALS = set("\\`*_[]<>$~&")


def md_escape(text: str) -> str:
    """Free text (a title, a warning) that cannot open emphasis, code, math, links or HTML."""
    return "".join("\\" + c if c in _MARKDOWN_SPECIALS else c for c in str(text))


OUTPUTS.update(markdown=to_markdown, latex=to_latex, json=to_json, numpy=to_numpy,
               jupyter=to_jupyter_latex)
