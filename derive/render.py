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
from .expr import Adjoint, Commutation, Differential, Frobenius, Hadamard, Mul, Symbol, Transpose, Vec, walk
from .formats import FLAVORS, SNIPPETS as FORMATS  # noqa: F401  (the one list: formats.py)
from .display import IDENTIFICATION, substitute
from .rule import Rule
from .templates_path import environment
from .tex_text import latex_of, tex_escape


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


def to_verdict(derivation: Derivation) -> str:
    """Every displayed line with its relative error; failing lines marked ✗."""
    return _environment().get_template("verdict.txt.j2").render(page(derivation))


def failure_sentences(derivation: Derivation) -> list:
    """One ``file:line: …`` sentence per failing line of the numeric check."""
    result = derivation.check
    if result is None:
        return []
    name = derivation.chain.source.name if derivation.chain.source else "<-e>"
    rows = {(row["block"], row["index"]): row for row in _rows(derivation)}
    out = []
    for verdict in result.failures:
        row = rows.get((verdict.block, verdict.index), {"text": verdict.block})
        where = f"{name}:{verdict.line}" if verdict.line else f"{name}"
        step = "" if verdict.line else f" ({verdict.block} step {verdict.index + 1})"
        note = f"; {verdict.note}" if verdict.note else ""
        out.append(f"{where}: numeric check failed{step}: {row['text']} — relative error "
                   f"{verdict.relative_error:.1e} > tolerance {_tolerance(result, verdict):g}{note}")
    return out


def to_json(derivation: Derivation) -> str:
    """Steps, rules used, gradients and verdicts as JSON (one dict, built here)."""
    chain = derivation.chain
    tex = latex_printer(derivation)
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
             "text": f"{printer.text(d.symbol)} = {printer.text(d.expr)}",
             "differential": {"of": d.differential_of.name,
                              "latex": _equation(tex, d.differential_of, d.differential),
                              "text": _equation(printer.text, d.differential_of, d.differential)},
             "rules": [str(r) for r in d.rules]}
            for d in derivation.definitions],
        "substitutions": [
            {"latex": tex(s.expr), "text": printer.text(s.expr),
             "eliminated": s.eliminated.name if s.eliminated is not None else None,
             "rules": [str(r) for r in s.rules]}
            for s in derivation.substitutions],
        "steps": [
            {"variable": st.variable.name,
             "adjoint": {"latex": tex(st.adjoint), "text": printer.text(st.adjoint)},
             "substituted": {"latex": tex(st.substituted), "text": printer.text(st.substituted)},
             "moved": {"latex": tex(st.moved), "text": printer.text(st.moved)},
             "rules": [str(r) for r in st.rules]}
            for st in derivation.steps],
        "gradients": [
            {"wrt": g.wrt.name, "latex": tex(_shown(derivation, g)),
             "text": printer.text(_shown(derivation, g)),
             "factored": {"latex": tex(g.expr), "text": printer.text(g.expr)},
             "expanded": None if g.expanded is None else
             {"latex": tex(g.expanded), "text": printer.text(g.expanded)}}
            for g in derivation.gradients],
        "hessians": [_hessian_json(derivation, h, tex) for h in derivation.hessians],
        "claims": [_claim_data(c, tex) for c in derivation.claims],
        "jacobians": [_jacobian_data(derivation, block, tex) for block in derivation.jacobians],
        "status": _status(derivation.check),
        "check": _check_data(derivation.check),
        "warnings": [str(w) for w in derivation.warnings],
        "options": derivation.options,
        "numpy": _numpy_parameters(derivation),
    }
    return json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"


def _hessian_json(derivation: Derivation, h, tex) -> dict:
    """A Hessian as JSON: its lines in order, and its blocks keyed ``"W,b"``, each with its
    matrix on column-major vec (numerator layout) or None when it has no Kronecker form."""
    def both(e):
        return {"latex": tex(e), "text": printer.text(e)}
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
    gradients = [{"label": _label(tex, derivation, g, latex=True),
                  "latex": tex(_shown(derivation, g)),
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
        "check": _check_data(result),
        "failures": failure_sentences(derivation),
        "rows": _rows(derivation),
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
        rows = [{"lhs": _hessian_label(tex, derivation, h, i, d), "latex": tex(_hessian_shown(line)),
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


def _hessian_shown(line):
    """What a Hessian line shows: a block's matrix when it has one, else its expression."""
    return line.matrix if line.kind == "block" and line.matrix is not None else line.expr


def _hessian_label(print_, derivation: Derivation, h, index: int, d: str = "d",
                   latex: bool = True) -> str:
    """The left side of a Hessian line: ``∇_W E``, ``d(∇_W E)`` (first line only), ``d²E``,
    ``∂²E/∂W²`` or ``∂²E/∂W∂b`` (with ``[db]`` when the block is a linear map)."""
    line, objective = h.lines[index], print_(derivation.objective)
    of = print_(line.of)
    nabla = rf"\nabla_{{{of}}} {objective}" if latex else f"∇_{of} {objective}"
    if line.kind == "gradient":
        return nabla
    if line.kind == "differential":
        first = index == 0 or h.lines[index - 1].of != line.of or h.lines[index - 1].kind != line.kind
        return "" if not first else (rf"{d}\left({nabla}\right)" if latex else f"d({nabla})")
    if line.kind == "second":
        return f"{d}^2 {objective}" if latex else f"d²{objective}"
    by = print_(line.by)
    if latex:
        below = rf"\partial {of}^2" if line.by == line.of else rf"\partial {of}\,\partial {by}"
        label = rf"\frac{{\partial^2 {objective}}}{{{below}}}"
        return label if line.matrix is not None else rf"{label}\,[{d}{by}]"
    below = f"∂{of}²" if line.by == line.of else f"∂{of}∂{by}"
    return f"∂²{objective}/{below}" + ("" if line.matrix is not None else f" [d{by}]")


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


def claim_sentences(derivation: Derivation) -> list:
    """One ``file:line:col: claim …`` line per claim that does not hold (for stderr)."""
    name = derivation.chain.source.name if derivation.chain.source else "<-e>"
    out = []
    for verdict in derivation.claims:
        if verdict.holds is not False:
            continue
        where = f"{name}:{verdict.line}:{verdict.column}" if verdict.line else "derive"
        why = f": {verdict.diagnosis}" if verdict.diagnosis else ""
        out.append(f"{where}: claim {verdict.label} = {printer.text(verdict.claimed)} does not "
                   f"hold{why}; derive's gradient is {printer.text(verdict.gradient)}")
    return out



# ---------------------------------------------------------------- Jacobian blocks

READ_OFF = Rule("vec dF = J vec dX ⟺ ∂vec F/∂vec X = J",
                r"\mathrm{vec}\,dF = J\,\mathrm{vec}\,dX \iff \frac{\partial\,\mathrm{vec}\,F}"
                r"{\partial\,\mathrm{vec}\,X} = J")


def jacobian_label(print_, block, latex: bool = False) -> str:
    """``∂s/∂v``, ``∂x₁/∂vec(W₁)``, ``∂vec(Y)/∂vec(X)``: vec only where a matrix needs it."""
    top = print_(Vec(block.of) if block.vec_of else block.of)
    bottom = print_(Vec(block.wrt) if block.vec_wrt else block.wrt)
    if latex:
        return rf"\frac{{\partial {top}}}{{\partial {bottom}}}"
    return f"∂{top}/∂{bottom}"


def _product_shown(print_, block) -> str:
    """The product of local Jacobians, a sum over paths, then ``vec(∂E/∂W)ᵀ``."""
    paths = [print_(Mul(tuple(path)) if len(path) > 1 else path[0]) for path in block.factors]
    gradient = block.gradient if not block.vec_wrt else Vec(block.gradient)
    return " + ".join(paths) + " = " + print_(Transpose(gradient))


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
        shown = _product_shown(tex, block) if block.kind == "product" else tex(block.matrix)
        if block.kind == "product":
            shown = " = ".join([tex(block.matrix), shown.split(" = ")[-1]]) \
                if len(block.factors) > 1 else shown
        rows.append({"lhs": jacobian_label(tex, block, latex=True), "latex": shown, "failed": bad,
                     "gap": bool(block.lines), **_rules((*block.rules, READ_OFF))})
    return out


def _jacobian_text(block, k: int) -> str:
    """One Jacobian line in plain text, for the verdict."""
    if k < len(block.lines):
        lhs = printer.text(Differential(block.of)) if k == 0 else " "
        return f"{lhs} = {printer.text(block.lines[k].expr)}"
    shown = _product_shown(printer.text, block) if block.kind == "product" \
        else printer.text(block.matrix)
    return f"{jacobian_label(printer.text, block)} = {shown}"


def _jacobian_data(derivation: Derivation, block, tex) -> dict:
    """A Jacobian block in JSON: its lines, J, the layout and the rules."""
    rows, cols = block.matrix.shape
    return {"of": block.of.name, "wrt": block.wrt.name, "kind": block.kind, "line": block.line,
            "key": f"{block.of.name}/{block.wrt.name}",
            "layout": "numerator layout: rows vec F, columns vec X (vec stacks columns)",
            "shape": [str(rows), str(cols)],
            "lines": [{"latex": tex(line.expr), "text": printer.text(line.expr),
                       "eliminated": line.eliminated.name if line.eliminated is not None else None,
                       "rules": [str(r) for r in line.rules]} for line in block.lines],
            "jacobian": {"label": jacobian_label(printer.text, block),
                         "latex": tex(block.matrix), "text": printer.text(block.matrix)},
            "factors": [[printer.text(f) for f in path] for path in block.factors],
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


def _rows(derivation: Derivation) -> list:
    """Every displayed line in plain text, each with its verdict (if checked)."""
    verdicts = {(v.block, v.index): v for v in derivation.check.verdicts} \
        if derivation.check else {}
    rows = []
    for i, d in enumerate(derivation.definitions):
        text = (f"{printer.text(d.symbol)} = {printer.text(d.expr)}  ⟹  "
                f"{_equation(printer.text, d.differential_of, d.differential)}")
        rows.append(_row("definition", i, f"line {d.line}", text, verdicts))
    objective = printer.text(Differential(derivation.objective))
    for i, s in enumerate(derivation.substitutions):
        lhs = objective if i == 0 else " " * len(objective)
        rows.append(_row("substitution", i, f"step {i + 1}", f"{lhs} = {printer.text(s.expr)}",
                         verdicts))
    for i, step in enumerate(derivation.steps):
        rows.append(_row("step", i, f"step {i + 1}", _step_text(step, i), verdicts))
    for i, g in enumerate(derivation.gradients):
        text = f"{_label(printer.text, derivation, g)} = {printer.text(_shown(derivation, g))}"
        rows.append(_row("gradient", i, "gradient", text, verdicts))
    for h in derivation.hessians:
        for i, line in enumerate(h.lines):
            label = _hessian_label(printer.text, derivation, h, i, latex=False) or "  "
            text = f"{label} = {printer.text(_hessian_shown(line))}"
            row = _row("hessian", i, "hessian", text, verdicts)
            rows.append({**row, "note": "(the gradient, checked above)"}
                        if line.kind == "gradient" and verdicts else row)
        rows.append(_row("hessian", len(h.lines), "hessian",
                         "symmetry: uᵀHv = vᵀHu at random u, v", verdicts))
    for index, block, k in jacobian_rows(derivation):
        rows.append(_row("jacobian", index, "jacobian", _jacobian_text(block, k), verdicts))
    for key, verdict in verdicts.items():
        if not any((r["block"], r["index"]) == key for r in rows):
            rows.append(_row(*key, verdict.block, verdict.note or verdict.block, verdicts))
    return rows


def _step_text(step, index: int) -> str:
    """One backprop step on one line: ``z̄ = G;  z̄ : dz = z̄ : ℓ_z = Σ Gᵢ : dYᵢ``."""
    text = printer.text
    if index == 0:
        return f"{text(Differential(step.variable))} = {text(step.substituted)} = {text(step.moved)}"
    bar = Adjoint(step.variable)
    return (f"{text(bar)} = {text(step.adjoint)};  {text(Frobenius(bar, Differential(step.variable)))}"
            f" = {text(step.substituted)} = {text(step.moved)}")


def _row(block, index, where, text, verdicts) -> dict:
    """``checked``: a verdict confirmed the line; ``unchecked``: the check could not."""
    verdict = verdicts.get((block, index))
    return {"block": block, "index": index, "where": where, "text": text,
            "checked": verdict is not None and verdict.verified,
            "unchecked": verdict is not None and verdict.ok and not verdict.verified,
            "exact": verdict is not None and verdict.exact,
            "ok": verdict.ok if verdict else True,
            "error": verdict.relative_error if verdict else None,
            "note": verdict.note if verdict else ""}


def _status(result) -> str:
    """``verified``, ``partly checked`` (some lines could not be checked), ``check failed``
    or ``not checked`` (``--no-check``): never left implicit."""
    if result is None:
        return "not checked"
    if not result.ok:
        return "check failed"
    return "verified" if result.complete else "partly checked"


def _check_data(result) -> dict | None:
    if result is None:
        return None
    rows = {("definition", v.index): v.line for v in result.verdicts if v.block == "definition"}
    return {"ok": result.ok, "complete": result.complete, "seed": result.seed,
            "tolerance": result.tolerance,
            "identity_tolerance": result.identity_tolerance, "directions": result.directions,
            "sizes": {str(k): v for k, v in result.sizes.items()},
            "worst_relative_error": result.worst, "points": result.points,
            "exact_prime": result.exact_prime,
            "exact_lines": len(result.exact), "unchecked_lines": len(result.unchecked),
            "unchecked": [_where(v, rows) for v in result.unchecked],
            "verdicts": [{"block": v.block, "index": v.index, "line": v.line,
                          "relative_error": v.relative_error, "ok": v.ok, "note": v.note,
                          "checked": v.checked, "exact": v.exact, "tolerance": v.tolerance}
                         for v in result.verdicts]}


def _where(verdict, rows) -> str:
    """``line 6``, ``step 2`` or ``the gradient``: how the check sentence names a line."""
    if verdict.block == "gradient":
        return "the gradient" if verdict.index == 0 else f"gradient {verdict.index + 1}"
    if verdict.line:
        return f"line {verdict.line}"
    return f"{verdict.block} step {verdict.index + 1}"


def _tolerance(result, verdict) -> float:
    if verdict.tolerance is not None:
        return verdict.tolerance
    return result.identity_tolerance if verdict.block == "substitution" else result.tolerance


def _shown(derivation: Derivation, gradient):
    """The gradient as asked: expanded with ``--expand`` (when the sweep gave one)."""
    if derivation.options.get("expand") and gradient.expanded is not None:
        return gradient.expanded
    return gradient.expr


def latex_printer(derivation: Derivation):
    """``printer.latex`` with ``\\mathrm{d}`` for differentials when ``d`` + name is ambiguous."""
    return partial(printer.latex, differential=printer.differential_prefix(derivation.chain))


def _label(print_, derivation: Derivation, gradient, latex: bool = False) -> str:
    top, bottom = print_(derivation.objective), print_(gradient.wrt)
    if latex:
        return rf"\frac{{\partial {top}}}{{\partial {bottom}}}"
    return f"∂{top}/∂{bottom}"


def _equation(print_, symbol, expr) -> str:
    return f"{print_(Differential(symbol))} = {print_(expr)}"


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
