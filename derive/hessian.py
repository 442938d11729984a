"""A derivation's gradient → its Hessian, by the second differential.

The gradient ``G = ∂E/∂W`` is an expression like any right-hand side, so the same rule
table (rules.py) gives its differential ``dG``, in the differentials of the defined
variables it mentions; their own differentials (the definition lines' ``ℓ``) are then
substituted, the last defined first, until ``dG`` is a linear form in ``dW`` alone.
Then ``d²E = dW : dG = dW : H[dW]``: the linear map ``dW ↦ dG`` is the Hessian, and
where ``vec(dG) = H vec(dW)`` has a Kronecker form (vec.py) it is shown as a matrix on
column-major vec.  With several names (``hessian W, b``) each gradient is differentiated
along all of them, and the part of ``dG_W`` in ``dY`` is the block ``∂²E/∂W∂Y``.
"""
from __future__ import annotations

import dataclasses
from collections import Counter

from .derivation import Derivation, Hessian, HessianLine
from .errors import Notice
from .expr import Add, Adjoint, Differential, Expr, Frobenius, Mul, Symbol, Transpose, Zero, walk
from .limits import bound, tick
from .rules import differentiate
from .simplify import factor, simplify
from .sweep import definition_lines, substitute, varying_names


def with_hessians(derivation: Derivation) -> Derivation:
    """``derivation`` with the Hessian its chain asks for (``hessian W, b``), if any."""
    chain = derivation.chain
    hessians, warnings = [], []
    for names, line, column in chain.hessians:
        wrt = tuple(next(w for w in chain.wrt if w.name == name) for name in names)
        hessians.append(hessian(derivation, wrt, line, column))
        warnings += _independent(derivation, wrt, line, column)
    if not hessians:
        return derivation
    return dataclasses.replace(derivation, hessians=tuple(hessians),
                               warnings=derivation.warnings + tuple(warnings))


def hessian(derivation: Derivation, wrt: tuple, line: int, column: int) -> Hessian:
    """The Hessian of the objective with respect to the inputs ``wrt`` (jointly)."""
    chain = derivation.chain
    varying = _varying(derivation, wrt)
    _, linear = definition_lines(chain, varying)
    gradients = [HessianLine("gradient", w, gradient_expression(derivation, w)) for w in wrt]
    lines, final = list(gradients), {}
    for g in gradients:
        tick(chain.source, line)
        shown = second_differential(derivation, g.of, g.expr, varying, linear, line, column)
        lines += shown
        final[g.of.name] = shown[-1].expr
    lines.append(HessianLine("second", wrt[0], _second(wrt, final)))
    blocks = [_block(w, y, final[w.name], wrt) for w in wrt for y in wrt]
    return Hessian(wrt, line, column, tuple(lines + blocks), _mirrored(blocks))


def _varying(derivation: Derivation, wrt: tuple) -> set:
    """The Hessian's names and every definition depending on one (their d is not 0)."""
    return varying_names(dataclasses.replace(derivation.chain, wrt=wrt))


def gradient_expression(derivation: Derivation, w: Symbol) -> Expr:
    """∂E/∂W over inputs and defined variables: named adjoints ``z̄`` are written out, from
    the steps that define them, so the rule table can differentiate it."""
    g = derivation.gradient(w.name).expr
    adjoints = {Adjoint(step.variable): step.adjoint for step in derivation.steps[1:]}
    while any(isinstance(n, Adjoint) for n in walk(g)):
        g = replace(g, adjoints)
    return simplify(g)


def second_differential(derivation: Derivation, w: Symbol, g: Expr, varying: set, linear: dict,
                        line: int, column: int) -> list:
    """``d(∇_W E) = ℓ``, then one line per substituted definition, the last defined first,
    until only the Hessian's own differentials are left."""
    chain = derivation.chain
    what = f"the differential of ∂{chain.objective.symbol.name}/∂{w.name}"
    ell, rules = differentiate(g, lambda s: s.name in varying)
    current = _bounded(simplify(ell), what, derivation, line, column)
    lines = [HessianLine("differential", w, current, rules=rules)]
    for definition in reversed(chain.definitions):
        z = definition.symbol
        if Differential(z) not in set(walk(current)):
            continue
        tick(chain.source, line)
        current = _bounded(simplify(replace(current, {Differential(z): linear[z.name]})),
                           what, derivation, line, column)
        lines.append(HessianLine("differential", w, current, eliminated=z,
                                 rules=(substitute(chain, z),)))
    return lines


def _second(wrt: tuple, final: dict) -> Expr:
    """``d²E = Σ dW : d(∇_W E)``, the differential on the left as the identity reads it."""
    terms = [Mul((Differential(w), final[w.name])) if w.is_scalar
             else Frobenius(Differential(w), final[w.name]) for w in wrt]
    return terms[0] if len(terms) == 1 else Add(tuple(terms))


def _block(w: Symbol, y: Symbol, dg: Expr, wrt: tuple) -> HessianLine:
    """``∂²E/∂W∂Y``: the part of ``d(∇_W E)`` in ``dY``, and its matrix on vec if it has one."""
    part = factor(simplify(replace(dg, {Differential(z): Zero(z.shape) for z in wrt if z != y})))
    return HessianLine("block", w, part, by=y, matrix=matrix_form(part, y))


def matrix_form(part: Expr, y: Symbol) -> Expr | None:
    """The matrix H with ``vec(part) = H vec(dY)`` (numerator layout, column-major vec), or
    None when the form has no Kronecker form (then the linear map is the answer)."""
    if isinstance(part, Zero):
        return Zero((_size(part), _size(y)))
    return None


def _size(e: Expr):
    return e.shape[0] * e.shape[1]


def _mirrored(blocks: list) -> bool:
    """Whether every block's matrix is its partner's transpose term by term (H = Hᵀ on
    sight, not only numerically)."""
    matrices = {(b.of.name, b.by.name): b.matrix for b in blocks if b.by is not None}
    if any(m is None for m in matrices.values()):
        return False
    return all(_same_terms(simplify(Transpose(m)), matrices[(y, w)])
               for (w, y), m in matrices.items())


def _same_terms(a: Expr, b: Expr) -> bool:
    """Equal up to the order of the terms of a sum."""
    def terms(e):
        return Counter(e.terms) if isinstance(e, Add) else Counter([e])
    return a == b or terms(a) == terms(b) or terms(factor(a)) == terms(factor(b))


def _independent(derivation: Derivation, wrt: tuple, line: int, column: int) -> list:
    """A name the objective does not depend on has a zero Hessian: a warning, as a ``wrt``
    with no path gets (derive answers 0, and says so, rather than refusing)."""
    objective = derivation.chain.objective.symbol.name
    return [Notice(f"hessian {w.name}: {objective} does not depend on {w.name}, so every "
                   f"Hessian block with {w.name} is 0", line, column)
            for w in wrt if objective not in _varying(derivation, (w,))]


def replace(e: Expr, table: dict) -> Expr:
    """``e`` with every subtree found in ``table`` replaced by its value."""
    if e in table:
        return table[e]
    children = e.children
    if not children:
        return e
    rebuilt = [replace(c, table) for c in children]
    return e.rebuild(rebuilt) if rebuilt != list(children) else e


def _bounded(e: Expr, what: str, derivation: Derivation, line: int, column: int) -> Expr:
    bound(e, what, derivation.chain.source, line, column)
    return e
