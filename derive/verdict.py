"""The check's verdict in plain text — what ``derive check`` prints — and the plain-text
lines, labels and sentences every output shares.

Kept free of Jinja2 and of the LaTeX printer: ``derive check`` needs nothing else to
speak, so its start-up does not pay for a template engine (issue #11's cold start).
``render`` builds the documents' data from these same functions.
"""
from __future__ import annotations

from . import printer
from .derivation import Derivation, jacobian_rows
from .expr import Adjoint, Differential, Frobenius, Mul, Transpose, Vec


def to_verdict(derivation: Derivation) -> str:
    """Every displayed line with its mark and relative error (failing lines ✗, lines the
    check could not confirm ?), each claim's verdict, then one summary line."""
    title = derivation.chain.title
    lines = [title] if title else []
    lines += [_verdict_line(row) for row in verdict_rows(derivation)]
    lines += [_claim_line(c) for c in derivation.claims]
    lines.append(_summary(derivation.check))
    return "".join(line + "\n" for line in lines)


def _verdict_line(row: dict) -> str:
    mark = "✗" if not row["ok"] else "✓" if row["checked"] else "?" if row["unchecked"] else " "
    line = f"{mark} {row['where']:<9} {row['text']}"
    if row["checked"] or not row["ok"]:
        line += f"    (relative error {row['error']:.1e}{'; exact' if row['exact'] else ''})"
    elif row["unchecked"]:
        line += "    (NOT checked)"
    return line + (f"  {row['note']}" if row["note"] else "")


def _claim_line(verdict) -> str:
    """``✓ claim line 9   ∂E/∂W = …: holds at 4 random points …`` or why it does not."""
    mark = "✓" if verdict.holds else "✗" if verdict.holds is False else " "
    where = f"line {verdict.line}" if verdict.line else "--claim"
    line = f"{mark} claim {where:<9} {verdict.label} = {printer.text(verdict.claimed)}: "
    if verdict.holds:
        line += (f"holds at {verdict.points} random points (worst relative difference "
                 f"{verdict.error:.1e})" + (" and exactly" if verdict.exact else ""))
    elif verdict.holds is None:
        line += "not checked"
    else:
        line += "does not hold" + (f": {verdict.diagnosis}" if verdict.diagnosis else "")
        line += f"; derive's gradient is {printer.text(verdict.gradient)}"
        if verdict.direction:
            line += (f"; along U = {verdict.direction[0]}: C:U = {_number(verdict.claimed_value)}"
                     f", G:U = {_number(verdict.gradient_value)}")
            if verdict.difference_value is not None:
                line += f", central difference {_number(verdict.difference_value)}"
    return line + (f" ({verdict.note})" if verdict.note else "")


def _number(value) -> str:
    return "None" if value is None else f"{value:.6g}"


def _summary(result) -> str:
    """The last line: ok (with the tolerances, exact lines, worst error, seed, sizes),
    NOT CHECKED (naming the lines), FAILED, or not checked at all."""
    if result is None:
        return "not checked numerically (--no-check)"
    data = _check_fields(result)
    sizes = "".join(f", {k}={v}" for k, v in data["sizes"].items())
    exact = ""
    if data["exact_lines"]:
        prime = f" (mod {data['exact_prime']})" if data["exact_prime"] else ""
        exact = f", {data['exact_lines']} also exactly{prime}"
    tolerance, identity = f"{data['tolerance']:g}", f"{data['identity_tolerance']:g}"
    worst = f"worst relative error {data['worst_relative_error']:.1e}"
    if result.ok and result.complete:
        return (f"ok: every line within its error bound, at least tolerance {tolerance} (exact "
                f"identities {identity}){exact}; {worst}; seed {result.seed}, "
                f"{result.directions} directions{sizes}")
    if result.ok:
        return (f"NOT CHECKED: {', '.join(data['unchecked'])} (both sides vanish, underflow or "
                f"are dominated by rounding at every point tried); no line failed; the others "
                f"within their error bounds (at least {tolerance}){exact}; {worst}; seed "
                f"{result.seed}, {result.points} point(s), {result.directions} directions{sizes}")
    return (f"FAILED: {len(result.failures)} line(s) outside tolerance {tolerance} (exact "
            f"identities {identity}); seed {result.seed}, {result.directions} directions{sizes}")


# ---------------------------------------------------------------- sentences and rows


def failure_sentences(derivation: Derivation) -> list:
    """One ``file:line: …`` sentence per failing line of the numeric check."""
    result = derivation.check
    if result is None:
        return []
    name = derivation.chain.source.name if derivation.chain.source else "<-e>"
    rows = {(row["block"], row["index"]): row for row in verdict_rows(derivation)}
    out = []
    for verdict in result.failures:
        row = rows.get((verdict.block, verdict.index), {"text": verdict.block})
        where = f"{name}:{verdict.line}" if verdict.line else f"{name}"
        step = "" if verdict.line else f" ({verdict.block} step {verdict.index + 1})"
        note = f"; {verdict.note}" if verdict.note else ""
        out.append(f"{where}: numeric check failed{step}: {row['text']} — relative error "
                   f"{verdict.relative_error:.1e} > tolerance {tolerance_of(result, verdict):g}{note}")
    return out


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


def status(result) -> str:
    """``verified``, ``partly checked`` (some lines could not be checked), ``check failed``
    or ``not checked`` (``--no-check``): never left implicit."""
    if result is None:
        return "not checked"
    if not result.ok:
        return "check failed"
    return "verified" if result.complete else "partly checked"


def check_data(result) -> dict | None:
    """The check's figures for JSON and the templates (None: not checked)."""
    return None if result is None else _check_fields(result)


def _check_fields(result) -> dict:
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


def tolerance_of(result, verdict) -> float:
    if verdict.tolerance is not None:
        return verdict.tolerance
    return result.identity_tolerance if verdict.block == "substitution" else result.tolerance


def verdict_rows(derivation: Derivation) -> list:
    """Every displayed line in plain text, each with its verdict (if checked)."""
    verdicts = {(v.block, v.index): v for v in derivation.check.verdicts} \
        if derivation.check else {}
    rows, show = [], printer.text_printer(derivation.chain)
    for i, d in enumerate(derivation.definitions):
        text = (f"{show(d.symbol)} = {show(d.expr)}  ⟹  "
                f"{equation(show, d.differential_of, d.differential)}")
        rows.append(_row("definition", i, f"line {d.line}", text, verdicts))
    objective = show(Differential(derivation.objective))
    for i, s in enumerate(derivation.substitutions):
        lhs = objective if i == 0 else " " * len(objective)
        rows.append(_row("substitution", i, f"step {i + 1}", f"{lhs} = {show(s.expr)}",
                         verdicts))
    for i, step in enumerate(derivation.steps):
        rows.append(_row("step", i, f"step {i + 1}", _step_text(step, i, show), verdicts))
    for i, g in enumerate(derivation.gradients):
        shown = show(gradient_shown(derivation, g))
        text = f"{gradient_label(show, derivation, g)} = {shown}"
        rows.append(_row("gradient", i, "gradient", text, verdicts))
    for h in derivation.hessians:
        for i, line in enumerate(h.lines):
            label = hessian_label(show, derivation, h, i, latex=False) or "  "
            text = f"{label} = {show(hessian_shown(line))}"
            row = _row("hessian", i, "hessian", text, verdicts)
            rows.append({**row, "note": "(the gradient, checked above)"}
                        if line.kind == "gradient" and verdicts else row)
        rows.append(_row("hessian", len(h.lines), "hessian",
                         "symmetry: uᵀHv = vᵀHu at random u, v", verdicts))
    for index, block, k in jacobian_rows(derivation):
        rows.append(_row("jacobian", index, "jacobian", _jacobian_text(block, k, show), verdicts))
    for key, verdict in verdicts.items():
        if not any((r["block"], r["index"]) == key for r in rows):
            rows.append(_row(*key, verdict.block, verdict.note or verdict.block, verdicts))
    return rows


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


def _step_text(step, index: int, text) -> str:
    """One backprop step on one line: ``z̄ = G;  z̄ : dz = z̄ : ℓ_z = Σ Gᵢ : dYᵢ``."""
    if index == 0:
        return f"{text(Differential(step.variable))} = {text(step.substituted)} = {text(step.moved)}"
    bar = Adjoint(step.variable)
    return (f"{text(bar)} = {text(step.adjoint)};  {text(Frobenius(bar, Differential(step.variable)))}"
            f" = {text(step.substituted)} = {text(step.moved)}")


def _jacobian_text(block, k: int, show) -> str:
    """One Jacobian line in plain text, for the verdict."""
    if k < len(block.lines):
        lhs = show(Differential(block.of)) if k == 0 else " "
        return f"{lhs} = {show(block.lines[k].expr)}"
    shown = product_shown(show, block) if block.kind == "product" \
        else show(block.matrix)
    return f"{jacobian_label(show, block)} = {shown}"


def gradient_label(print_, derivation: Derivation, gradient, latex: bool = False) -> str:
    top, bottom = print_(derivation.objective), print_(gradient.wrt)
    if latex:
        return rf"\frac{{\partial {top}}}{{\partial {bottom}}}"
    return f"∂{top}/∂{bottom}"


def gradient_shown(derivation: Derivation, gradient):
    """The gradient as asked: expanded with ``--expand`` (when the sweep gave one)."""
    if derivation.options.get("expand") and gradient.expanded is not None:
        return gradient.expanded
    return gradient.expr


def equation(print_, symbol, expr) -> str:
    return f"{print_(Differential(symbol))} = {print_(expr)}"


def hessian_label(print_, derivation: Derivation, h, index: int, d: str = "d",
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


def hessian_shown(line):
    """What a Hessian line shows: a block's matrix when it has one, else its expression."""
    return line.matrix if line.kind == "block" and line.matrix is not None else line.expr


def jacobian_label(print_, block, latex: bool = False) -> str:
    """``∂s/∂v``, ``∂x₁/∂vec(W₁)``, ``∂vec(Y)/∂vec(X)``: vec only where a matrix needs it."""
    top = print_(Vec(block.of) if block.vec_of else block.of)
    bottom = print_(Vec(block.wrt) if block.vec_wrt else block.wrt)
    if latex:
        return rf"\frac{{\partial {top}}}{{\partial {bottom}}}"
    return f"∂{top}/∂{bottom}"


def product_shown(print_, block) -> str:
    """The product of local Jacobians, a sum over paths, then ``vec(∂E/∂W)ᵀ``."""
    paths = [print_(Mul(tuple(path)) if len(path) > 1 else path[0]) for path in block.factors]
    gradient = block.gradient if not block.vec_wrt else Vec(block.gradient)
    return " + ".join(paths) + " = " + print_(Transpose(gradient))
