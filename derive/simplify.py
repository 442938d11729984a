"""Simplification that keeps an expression as a person writes it.

Zeros vanish, like terms collect (``½X + ½X = X``), numbers move to the front,
transposes of symmetric factors drop, ``(AB)ᵀ = BᵀAᵀ``, ``AA = A²``, and the
differential of a Frobenius product goes to the right of ``:``.  Terms are never
re-sorted: they stay in the order they arose.
"""
from __future__ import annotations

import sympy

from .expr import (
    Add, Diag, DiagPart, Expr, Frobenius, Hadamard,
    HadamardDivide, Identity, Inverse, Mul, Number, Ones, Power, Trace, Transpose, Zero, contains_differential, is_symmetric, scalar_groups,
)


def simplify(expr: Expr) -> Expr:
    """Bottom-up: simplify the children, then the node itself."""
    children = [simplify(c) for c in expr.children]
    if children != list(expr.children):
        expr = expr.rebuild(children)
    step = SIMPLIFIERS.get(type(expr))
    return step(expr) if step else expr


# ---------------------------------------------------------------- coefficients


def split_coefficient(e: Expr):
    """``2AB`` → ``(2, AB)``; ``3`` → ``(3, None)``; ``A`` → ``(1, A)``."""
    if isinstance(e, Number):
        return e.value, None
    if isinstance(e, Mul):
        coefficient = sympy.Integer(1)
        rest = []
        for f in e.factors:
            if isinstance(f, Number):
                coefficient *= f.value
            else:
                rest.append(f)
        return coefficient, (rest[0] if len(rest) == 1 else Mul(tuple(rest)) if rest else None)
    return sympy.Integer(1), e


def with_coefficient(coefficient, rest: Expr | None, shape) -> Expr:
    if coefficient == 0:
        return Zero(shape)
    if rest is None:
        return Number(coefficient)
    if coefficient == 1:
        return rest
    factors = rest.factors if isinstance(rest, Mul) else (rest,)
    return Mul((Number(coefficient), *factors))


# ---------------------------------------------------------------- per node


def _add(e: Add) -> Expr:
    """Flatten, drop zeros, collect like terms in order of first appearance."""
    collected: dict = {}
    for term in _flat_terms(e.terms):
        if isinstance(term, Zero):
            continue
        coefficient, rest = split_coefficient(term)
        collected[rest] = collected.get(rest, 0) + coefficient
    terms = [with_coefficient(c, r, e.shape) for r, c in collected.items() if c != 0]
    if not terms:
        return Zero(e.shape)
    return terms[0] if len(terms) == 1 else Add(tuple(terms))


def _flat_terms(terms):
    for term in terms:
        if isinstance(term, Add):
            yield from _flat_terms(term.terms)
        else:
            yield term


def _mul(e: Mul) -> Expr:
    """Numbers to the front, identities out, ``AA`` → ``A²``; any zero factor → 0."""
    coefficient = sympy.Integer(1)
    factors = []
    for f in _flat_factors(e.factors):
        if isinstance(f, Zero):
            return Zero(e.shape)
        if isinstance(f, Number):
            coefficient *= f.value
        elif not isinstance(f, Identity):
            _push_factor(factors, f)
    if not factors:
        return with_coefficient(coefficient, Identity(e.shape[0]) if not e.is_scalar else None, e.shape)
    factors = _ones_outer_products(scalar_groups(factors))
    factors = _scalars_first(factors) if not e.is_scalar else factors
    if tuple(Mul(tuple(factors)).shape if len(factors) > 1 else factors[0].shape) != tuple(e.shape):
        factors.append(Identity(e.shape[0]))    # α I: the identity kept a scalar a matrix
    rest = factors[0] if len(factors) == 1 else Mul(tuple(factors))
    return with_coefficient(coefficient, rest, e.shape)


def _scalars_first(factors: list) -> list:
    """``A x α`` → ``α A x``: scalar factors commute, and read best in front."""
    scalars = [f for f in factors if f.is_scalar and not contains_differential(f)]
    return scalars + [f for f in factors if not (f.is_scalar and not contains_differential(f))]


def _ones_outer_products(factors: list) -> list:
    """``1 1ᵀ`` is the matrix of ones."""
    out = []
    for f in factors:
        if out and isinstance(out[-1], Ones) and out[-1].cols == 1 \
                and isinstance(f, Transpose) and isinstance(f.arg, Ones) and f.arg.cols == 1:
            out[-1] = Ones(out[-1].rows, f.arg.rows)
        else:
            out.append(f)
    return out


def _flat_factors(factors):
    """Nested products spliced in, except a 1×1 chain such as ``xᵀy``: that one acts
    as a scalar, and only its numbers come out."""
    for f in factors:
        if not isinstance(f, Mul):
            yield f
        elif f.is_scalar and any(not g.is_scalar for g in f.factors):
            numbers = [g for g in f.factors if isinstance(g, Number)]
            rest = [g for g in f.factors if not isinstance(g, Number)]
            yield from numbers
            yield rest[0] if len(rest) == 1 else Mul(tuple(rest))
        else:
            yield from _flat_factors(f.factors)


def _push_factor(factors: list, f: Expr) -> None:
    """Append ``f``, merging ``A·A`` and ``Aʲ·Aᵏ`` into a power."""
    if factors and not f.is_scalar:
        base, k = _base_exponent(factors[-1])
        base2, k2 = _base_exponent(f)
        if base == base2 and not base.is_scalar:
            factors[-1] = simplify(Power(base, k + k2))
            return
    factors.append(f)


def _base_exponent(f: Expr):
    if isinstance(f, Power):
        return f.arg, f.exponent
    if isinstance(f, Transpose) and isinstance(f.arg, Power):
        return Transpose(f.arg.arg), f.arg.exponent
    return f, 1


def _transpose(e: Transpose) -> Expr:
    a = e.arg
    if a.is_scalar or is_symmetric(a):
        return a
    if isinstance(a, Transpose):
        return a.arg
    if isinstance(a, Zero):
        return Zero(e.shape)
    if isinstance(a, Mul):
        coefficient, _ = split_coefficient(a)
        matrices = [f for f in a.factors if not isinstance(f, Number)]
        flipped = [simplify(Transpose(f)) for f in reversed(matrices)]
        return simplify(Mul((Number(coefficient), *flipped)))
    if isinstance(a, Power) and isinstance(a.arg, Transpose):
        return Power(a.arg.arg, a.exponent)
    if isinstance(a, Add) and 1 not in a.shape:
        return simplify(Add(tuple(Transpose(t) for t in a.terms)))
    if isinstance(a, Ones):
        return Ones(a.cols, a.rows) if a.cols != 1 and a.rows != 1 else e
    return e


def _inverse(e: Inverse) -> Expr:
    a = e.arg
    if isinstance(a, Inverse):
        return a.arg
    if isinstance(a, Identity):
        return a
    if isinstance(a, Transpose):
        return Transpose(Inverse(a.arg))
    if a.is_scalar:
        return Power(a, -1)
    return e


def _power(e: Power) -> Expr:
    a, k = e.arg, e.exponent
    if k == 1:
        return a
    if k == 0:
        return Number(1) if e.is_scalar else Identity(e.shape[0])
    if isinstance(a, Power):
        return _power(Power(a.arg, a.exponent * k))
    if isinstance(a, Number):
        return Number(a.value ** k)
    if isinstance(a, Transpose) and not a.is_scalar:
        return Transpose(Power(a.arg, k))
    return e


def _hadamard(e: Hadamard) -> Expr:
    """Zeros absorb, ones vanish, numbers move out; scalars multiply plainly."""
    left, right = e.left, e.right
    if isinstance(left, Zero) or isinstance(right, Zero):
        return Zero(e.shape)
    if isinstance(left, Ones):
        return right
    if isinstance(right, Ones):
        return left
    if e.is_scalar:
        return simplify(Mul((left, right)))
    if contains_differential(left) and not contains_differential(right):
        return simplify(Hadamard(right, left))
    for ones, other in ((left, right), (right, left)):
        scalars = _scaled_ones(ones)
        if scalars is not None:
            return simplify(Mul((*scalars, other)))
    (cl, rl), (cr, rr) = split_coefficient(left), split_coefficient(right)
    if cl * cr != 1 and rl is not None and rr is not None:
        return with_coefficient(cl * cr, Hadamard(rl, rr), e.shape)
    return e


def _scaled_ones(e: Expr):
    """The scalar factors of ``α 1`` (a multiple of the ones vector or matrix), else None."""
    if isinstance(e, Mul) and isinstance(e.factors[-1], Ones) and all(f.is_scalar for f in e.factors[:-1]):
        return list(e.factors[:-1])
    return None


def _hadamard_divide(e: HadamardDivide) -> Expr:
    if isinstance(e.left, Zero):
        return Zero(e.shape)
    if e.is_scalar:
        return simplify(Mul((e.left, Power(e.right, -1))))
    coefficient, rest = split_coefficient(e.left)
    if coefficient != 1 and rest is not None:
        return with_coefficient(coefficient, HadamardDivide(rest, e.right), e.shape)
    return e


def _frobenius(e: Frobenius) -> Expr:
    """Scalars out (``αA:βB = αβ A:B``), differential to the right, scalars multiply."""
    left, right = e.left, e.right
    if isinstance(left, Zero) or isinstance(right, Zero):
        return Zero(e.shape)
    if contains_differential(left) and not contains_differential(right):
        left, right = right, left
    if left.is_scalar:
        return simplify(Mul((left, right)))
    scalars_left, left = _pull_scalars(left)
    scalars_right, right = _pull_scalars(right)
    if scalars_left or scalars_right:
        return simplify(Mul((*scalars_left, *scalars_right, Frobenius(left, right))))
    return Frobenius(left, right)


def _pull_scalars(e: Expr):
    """``2λA`` → ``([2, λ], A)``: the constant scalar factors of a matrix product."""
    if not isinstance(e, Mul):
        return [], e
    scalars = [f for f in e.factors if f.is_scalar and not contains_differential(f)]
    if not scalars:
        return [], e
    rest = [f for f in e.factors if not (f.is_scalar and not contains_differential(f))]
    return scalars, rest[0] if len(rest) == 1 else Mul(tuple(rest))


def _trace(e: Trace) -> Expr:
    if e.arg.is_scalar or isinstance(e.arg, Zero):
        return e.arg if e.arg.is_scalar else Zero(e.shape)
    coefficient, rest = split_coefficient(e.arg)
    if coefficient != 1 and rest is not None:
        return with_coefficient(coefficient, Trace(rest), e.shape)
    return e


def _diag_part(e: DiagPart) -> Expr:
    """``diag(abᵀ) = a∘b``; ``diag(Diag(a)) = a``."""
    a = e.arg
    if isinstance(a, Zero):
        return Zero(e.shape)
    if isinstance(a, Diag):
        return a.arg
    if isinstance(a, Mul) and len(a.factors) == 2 and a.factors[0].shape[1] == 1 and \
            isinstance(a.factors[1], Transpose) and a.factors[1].shape[0] == 1:
        return simplify(Hadamard(a.factors[0], a.factors[1].arg))
    return e


def _diag(e: Diag) -> Expr:
    if isinstance(e.arg, Zero):
        return Zero(e.shape)
    if isinstance(e.arg, Ones):
        return Identity(e.shape[0])
    return e


SIMPLIFIERS = {
    Add: _add,
    Mul: _mul,
    Transpose: _transpose,
    Inverse: _inverse,
    Power: _power,
    Hadamard: _hadamard,
    HadamardDivide: _hadamard_divide,
    Frobenius: _frobenius,
    Trace: _trace,
    Diag: _diag,
    DiagPart: _diag_part,
}


# ---------------------------------------------------------------- rewrites on demand


def expand(expr: Expr) -> Expr:
    """Distribute the last sum of a product over what follows it: ``(S−S²)(sxᵀ − yxᵀ)``."""
    if isinstance(expr, Add):
        return simplify(Add(tuple(expand(t) for t in expr.terms)))
    if not isinstance(expr, Mul):
        return expr
    factors = list(expr.factors)
    positions = [i for i, f in enumerate(factors) if isinstance(f, Add)]
    if not positions:
        return expr
    k = positions[-1]
    before, total, after = factors[:k], factors[k], factors[k + 1:]
    if after:
        inner = Add(tuple(Mul((t, *after)) for t in total.terms))
        return simplify(Mul((*before, inner)))
    inner = Add(tuple(Mul((*before, t)) for t in total.terms))
    return simplify(inner)
