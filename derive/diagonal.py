"""Rewrite Hadamard products with ``Diag`` when the chain names ``S = Diag(s)``.

The seed's line ``S = Diag(s)  ⟹  ds = (S − S²) dv`` is ``ds = (s − s∘s)∘dv`` read
through these table rules, then ``Diag(s)`` folded into ``S``.
"""
from __future__ import annotations

from typing import Any, Callable

from .expr import Add, Diag, Expr, Hadamard, Identity, Mul, Number, Ones, contains_differential
from .printer import latex, text
from .rule import Rule
from .simplify import simplify

#                        the rule, Unicode                    and in LaTeX (--explain)
HADAMARD_AS_DIAG = Rule("a∘b = Diag(a) b",                    r"a\circ b = \mathrm{Diag}(a)\,b")
DIAG_OF_SUM =      Rule("Diag(a ± b) = Diag(a) ± Diag(b)",    r"\mathrm{Diag}(a\pm b) = \mathrm{Diag}(a)\pm\mathrm{Diag}(b)")
DIAG_OF_MULTIPLE = Rule("Diag(αa) = α Diag(a)",               r"\mathrm{Diag}(\alpha a) = \alpha\,\mathrm{Diag}(a)")
DIAG_OF_HADAMARD = Rule("Diag(a∘b) = Diag(a) Diag(b)",        r"\mathrm{Diag}(a\circ b) = \mathrm{Diag}(a)\,\mathrm{Diag}(b)")
DIAG_OF_ONES =     Rule("Diag(1) = I",                        r"\mathrm{Diag}(\mathbf{1}) = I")


def _hadamard_as_diag(e: Hadamard):
    """``a∘db = Diag(a) db`` for a vector coefficient ``a``."""
    vector = e.shape[1] == 1 and not e.is_scalar
    if vector and contains_differential(e.right) and not contains_differential(e.left):
        return Mul((Diag(e.left), e.right)), HADAMARD_AS_DIAG
    if vector and contains_differential(e.left) and not contains_differential(e.right):
        return Mul((Diag(e.right), e.left)), HADAMARD_AS_DIAG
    return e, None


def _distribute_diag(e: Diag):
    a = e.arg
    if isinstance(a, Add):
        return Add(tuple(Diag(t) for t in a.terms)), DIAG_OF_SUM
    if isinstance(a, Mul) and isinstance(a.factors[0], Number) and len(a.factors) == 2:
        return Mul((a.factors[0], Diag(a.factors[1]))), DIAG_OF_MULTIPLE
    if isinstance(a, Hadamard):
        return Mul((Diag(a.left), Diag(a.right))), DIAG_OF_HADAMARD
    if isinstance(a, Ones):
        return Identity(a.rows), DIAG_OF_ONES
    return e, None


# each rewrite takes a node of its key's class and gives (the node rewritten, the rule or None)
REWRITES: dict[type[Expr], Callable[[Any], tuple]] = {Hadamard: _hadamard_as_diag, Diag: _distribute_diag}


def rewrite_with_aliases(linear: Expr, aliases: dict):
    """``(ℓ rewritten, rules used)``; ``aliases`` maps ``Diag(s)`` to the symbol ``S``."""
    used = []

    def visit(e: Expr) -> Expr:
        step = REWRITES.get(type(e))
        if step:
            e, rule = step(e)
            if rule:
                used.append(rule)
                return visit(e)
        children = [visit(c) for c in e.children]
        e = e.rebuild(children) if children != list(e.children) else e
        if e in aliases:       # Diag(s), or Diag(f′(x)) of an expression (sweep.aliased_vector)
            used.append(Rule(f"{text(e)} = {aliases[e].name}", f"{latex(e)} = {latex(aliases[e])}"))
            return aliases[e]
        return e

    rewritten = visit(linear)
    return simplify(rewritten), tuple(dict.fromkeys(used))
