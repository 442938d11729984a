"""Simplification that keeps an expression as a person writes it.

Zeros vanish, like terms collect (``½X + ½X = X``), numbers move to the front,
transposes of symmetric factors drop, ``(AB)ᵀ = BᵀAᵀ``, ``AA = A²``, and the
differential of a Frobenius product goes to the right of ``:``.  Terms are never
re-sorted: they stay in the order they arose.

``factor`` (for the displayed gradients and adjoints) pulls common factors out of sums
and cancels inverses and elementwise fractions; ``expand`` (for ``--expand``) distributes.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import sympy

from .expr import (
    Add, Diag, DiagPart, Expr, Frobenius, Hadamard, Kron,
    HadamardDivide, Identity, Inverse, Mul, Number, Ones, Power, Trace, Transpose, Zero,
    contains_differential, is_symmetric, scalar_groups, walk, Unvec, Vec,
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
    factors: list[Expr] = []
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
    out: list[Expr] = []
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
    """Append ``f``, merging ``A·A`` and ``Aʲ·Aᵏ`` into a power, and a scalar's whole
    powers anywhere in the product (scalars commute): ``‖x‖⁻²‖x‖⁻¹`` is ``‖x‖⁻³``."""
    if f.is_scalar and _merge_scalar_power(factors, f):
        return
    if factors and not f.is_scalar:
        base, k = _base_exponent(factors[-1])
        base2, k2 = _base_exponent(f)
        if base == base2 and not base.is_scalar:
            factors[-1] = simplify(Power(base, k + k2))
            return
    factors.append(f)


def _merge_scalar_power(factors: list, f: Expr) -> bool:
    """``aʲ`` folded into an earlier ``aᵏ`` of the product (whole j and k: no sign or
    branch to lose); True when folded (``a·a⁻¹`` leaves nothing)."""
    base, k = _base_exponent(f)
    if not _is_integer(k) or contains_differential(f):
        return False
    for i, g in enumerate(factors):
        other, j = _base_exponent(g)
        if g.is_scalar and other == base and _is_integer(j):
            if j + k == 0:
                del factors[i]
            else:
                factors[i] = simplify(Power(base, j + k))
            return True
    return False


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
    if isinstance(a, Power) and _is_integer(k):      # (a²)^{1/2} is |a|, not a
        return _power(Power(a.arg, _exact(a.exponent * k)))
    if isinstance(a, Number) and (_is_integer(k) or (a.value ** k).is_Rational):
        return Number(a.value ** k)
    if isinstance(a, Transpose) and not a.is_scalar:
        return Transpose(Power(a.arg, k))
    return e


def _is_integer(k) -> bool:
    return isinstance(k, int) or bool(getattr(k, "is_Integer", False))


def _exact(k):
    """An exponent as the parser writes it: an int when whole, else a SymPy Rational."""
    return int(k) if _is_integer(k) else sympy.Rational(k)


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


def _kron(e: Kron) -> Expr:
    """``0 ⊗ B = A ⊗ 0 = 0``."""
    return Zero(e.shape) if isinstance(e.left, Zero) or isinstance(e.right, Zero) else e


def _diag(e: Diag) -> Expr:
    if isinstance(e.arg, Zero):
        return Zero(e.shape)
    if isinstance(e.arg, Ones):
        return Identity(e.shape[0])
    return e


# each step takes a node of its key's class
SIMPLIFIERS: dict[type[Expr], Callable[[Any], Expr]] = {
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
    Kron: _kron,
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


# ---------------------------------------------------------------- the displayed gradient


def factor(expr: Expr) -> Expr:
    """The gradient as a person writes it: ``Ax + Aᵀx`` → ``(A + Aᵀ)x``, ``XᵀA + XᵀB`` →
    ``Xᵀ(A + B)``, ``2X + 2Y`` → ``2(X + Y)`` when that is shorter, and elementwise
    fractions cancelled (``(−y⊘p + (1 − y)⊘(1 − p))∘(p − p∘p)`` → ``p − y``).

    Bottom-up, one visit per node; every rewrite is an identity of the algebra (the
    elementwise one holds wherever the original is defined), so term order is kept and
    nothing is re-sorted except inside a cancelled fraction."""
    memo: dict = {}

    def visit(e: Expr) -> Expr:
        if e in memo:
            return memo[e]
        children = [visit(c) for c in e.children]
        out = _simplify_node(e.rebuild(children)) if children != list(e.children) else e
        if isinstance(out, Add):
            out = _factor_sum(out)
        if isinstance(out, Mul):
            out = _shorter(out, _cancel_inverses(out))
            out = _cancel_dot_quotient(out) if isinstance(out, Mul) else out
        if isinstance(out, Mul) and out.factors[0] == Number(-1) and len(out.factors) == 2 \
                and isinstance(out.factors[1], Add):
            out = _shorter(out, _negated_sum(out.factors[1]))
        if isinstance(out, Unvec):
            out = _unvec_kron(out) or out
        if _is_elementwise(out) and _has_division(out):
            out = _shorter(out, cancel_elementwise(out))
        memo[e] = out
        return out

    return visit(expr)


def _simplify_node(e: Expr) -> Expr:
    step = SIMPLIFIERS.get(type(e))
    return step(e) if step else e


def _cancel_inverses(e: Mul) -> Expr | None:
    """``Aᵀ(AXB)⁻ᵀBᵀ`` → ``X⁻ᵀ``: the inverse of a product of square matrices is the
    product of their inverses reversed (each is invertible when the product is), and
    ``M M⁻¹ = I``.  None unless something cancels."""
    spread = []
    for f in e.factors:
        transposed = isinstance(f, Transpose)
        inverse = f.arg if transposed else f
        product = inverse.arg if isinstance(inverse, Inverse) else None
        if isinstance(product, Mul) and all(_square(g) for g in product.factors):
            inverses = [simplify(Inverse(g)) for g in reversed(product.factors)]
            spread += [simplify(Transpose(g)) for g in reversed(inverses)] if transposed else inverses
        else:
            spread.append(f)
    kept: list[Expr] = []
    cancelled = False
    for f in spread:
        if kept and _square(f) and _square(kept[-1]) and simplify(simplify(Inverse(f))) == kept[-1]:
            kept.pop()
            cancelled = True
        else:
            kept.append(f)
    if not cancelled:
        return None
    if not any(not f.is_scalar for f in kept):
        kept.append(Identity(e.shape[0]))
    return simplify(Mul(tuple(kept))) if len(kept) > 1 else kept[0]


def _cancel_dot_quotient(e: Mul) -> Expr:
    """``vᵀ(b⊘v) = 1ᵀb`` for a vector v: Σ vᵢbᵢ/vᵢ = Σ bᵢ (wherever b⊘v is defined)."""
    factors = list(e.factors)
    for i in range(len(factors) - 1):
        row, quotient = factors[i], factors[i + 1]
        if isinstance(row, Transpose) and row.shape[0] == 1 and \
                isinstance(quotient, HadamardDivide) and quotient.right == row.arg:
            factors[i:i + 2] = [Transpose(Ones(row.shape[1])), quotient.left]
            return simplify(Mul(tuple(factors)))
    return e


def _unvec_kron(e: Unvec) -> Expr | None:
    """``unvec((B⊗A) vec X) = AXBᵀ`` (Matrix Cookbook (520); ``unvec(v)`` in place of X for
    any vector v), ``(B⊗A)ᵀ = Bᵀ⊗Aᵀ``, ``unvec(vec X) = X``; numbers stay in front.
    None for anything else."""
    coefficient, rest = split_coefficient(e.arg)
    if isinstance(rest, Vec):
        out = rest.arg
    elif isinstance(rest, Mul) and len(rest.factors) == 2 and rest.factors[1].shape[1] == 1:
        kron, v = rest.factors
        if isinstance(kron, Transpose) and isinstance(kron.arg, Kron):
            b, a = simplify(Transpose(kron.arg.left)), simplify(Transpose(kron.arg.right))
        elif isinstance(kron, Kron):
            b, a = kron.left, kron.right
        else:
            return None
        x = v.arg if isinstance(v, Vec) else Unvec(v, a.shape[1], b.shape[1])
        if tuple(x.shape) != (a.shape[1], b.shape[1]):
            return None
        out = simplify(Mul((a, x, Transpose(b))))
    else:
        return None
    if tuple(out.shape) != tuple(e.shape):
        return None
    return simplify(with_coefficient(coefficient, out, e.shape))


def _square(e: Expr) -> bool:
    return not e.is_scalar and e.shape[0] == e.shape[1]


def _negated_sum(e: Add) -> Expr:
    """``−(o − y)`` → ``y − o``: the negated terms, those that become positive first."""
    terms = [simplify(Mul((Number(-1), t))) for t in e.terms]
    positive = [t for t in terms if split_coefficient(t)[0] > 0]
    return Add(tuple(positive + [t for t in terms if t not in positive]))


def _shorter(old: Expr, new: Expr | None) -> Expr:
    from .printer import latex
    if new is None or new == old:
        return old
    return new if len(latex(new)) < len(latex(old)) else old


@functools.lru_cache(maxsize=4096)
def _factor_sum(e: Add) -> Expr:
    """The shortest of: a common right factor, a common left factor, a common number
    outside either; the sum itself only if no matrix factor is shared."""
    candidates = [_group_by_factor(e, side) for side in (-1, 0)]
    scaled = _common_coefficient(e)
    if scaled is not None and isinstance(scaled.factors[-1], Add):
        *outside, inner = scaled.factors
        candidates += [simplify(Mul((*outside, g))) for g in
                       (_group_by_factor(inner, side) for side in (-1, 0)) if g is not None]
    found = [c for c in candidates if c is not None]
    if not found:
        return _shorter(e, scaled)
    from .printer import latex
    return min(found, key=lambda c: len(latex(c)))


def _group_by_factor(e: Add, side: int) -> Expr | None:
    """Terms sharing their last (``side`` −1) or first (0) matrix factor, summed
    inside it at the place of the first of them: ``Ax + b + Aᵀx`` → ``(A + Aᵀ)x + b``."""
    groups: dict = {}
    for term in e.terms:
        groups.setdefault(_end_factor(term, side), []).append(term)
    if all(len(g) < 2 for k, g in groups.items() if k is not None):
        return None
    out, done = [], set()
    for term in e.terms:
        key = _end_factor(term, side)
        if key is None or len(groups[key]) < 2:
            out.append(term)
        elif key not in done:
            done.add(key)
            out.append(_pull_out(groups[key], key, side))
    return simplify(Add(tuple(out))) if len(out) > 1 else out[0]


def _end_factor(term: Expr, side: int):
    """The first or last non-scalar factor of a term (the term itself if not a product)."""
    coefficient, rest = split_coefficient(term)
    if rest is None or rest.is_scalar:
        return None
    factors = [f for f in (rest.factors if isinstance(rest, Mul) else (rest,)) if not f.is_scalar]
    return factors[side] if factors and not isinstance(factors[side], Identity) else None


def _pull_out(terms: list, common: Expr, side: int) -> Expr:
    """``Σ tᵢ`` with every ``tᵢ = rᵢ·common`` (side −1) or ``common·rᵢ`` (side 0)."""
    size = common.shape[0] if side == -1 else common.shape[1]
    rests = []
    for term in terms:
        factors = list(term.factors) if isinstance(term, Mul) else [term]
        index = max(i for i, f in enumerate(factors) if f == common) if side == -1 else \
            min(i for i, f in enumerate(factors) if f == common)
        rests.append(factors[:index] + factors[index + 1:] or [Number(1)])
    matrices = any(not f.is_scalar for rest in rests for f in rest)
    remainders = []
    for rest in rests:
        if matrices and all(f.is_scalar for f in rest):
            rest = rest + [Identity(size)]          # A x + α x → (A + α I) x
        remainders.append(simplify(Mul(tuple(rest))) if len(rest) > 1 else rest[0])
    inner = simplify(Add(tuple(remainders)))
    inner = _factor_sum(inner) if isinstance(inner, Add) else inner
    pair = (inner, common) if side == -1 else (common, inner)
    return simplify(Mul(pair))


def _common_coefficient(e: Add) -> Mul | None:
    """``2X − 2Y`` → ``2(X − Y)``, ``αA/β + B/β`` → ``(αA + B)/β``: the number (up to sign)
    and the scalar powers every term shares (a candidate; kept only if it prints shorter)."""
    split = [_scalar_powers(t) for t in e.terms]
    c = split[0][0]
    if any(abs(k) != abs(c) for k, _, _ in split):
        c = sympy.Integer(1)
    common = {}
    for base in split[0][1]:
        ks = [powers.get(base, 0) for _, powers, _ in split]
        if all(j > 0 for j in ks) or all(j < 0 for j in ks):
            common[base] = min(ks, key=abs)
    if c in (1, -1) and not common:
        return None
    remainders = []
    for k, powers, rest in split:
        scalars = [Power(b, j - common.get(b, 0)) for b, j in powers.items() if j != common.get(b, 0)]
        remainders.append(simplify(Mul((Number(k / c), *scalars, *rest))) if rest or scalars
                          else Number(k / c))
    if any(r.shape != e.shape and not r.is_scalar for r in remainders):
        return None
    inner = simplify(Add(tuple(remainders)))
    return Mul((Number(c), *(simplify(Power(b, j)) for b, j in common.items()), inner))


def _scalar_powers(term: Expr):
    """``−2(xᵀAx)(xᵀx)⁻² x`` → ``(−2, {xᵀAx: 1, xᵀx: −2}, [x])``."""
    coefficient, rest = sympy.Integer(1), []
    powers: dict[Expr, Any] = {}

    def visit(f):
        nonlocal coefficient
        if isinstance(f, Number):
            coefficient *= f.value
        elif isinstance(f, Mul) and f.is_scalar and all(g.is_scalar for g in f.factors):
            for g in f.factors:
                visit(g)
        elif f.is_scalar and not contains_differential(f):
            integer = isinstance(f, Power) and getattr(f.exponent, "is_Integer", isinstance(f.exponent, int))
            base, k = (f.arg, f.exponent) if integer else (f, 1)
            powers[base] = powers.get(base, 0) + k
        else:
            rest.append(f)

    for f in (term.factors if isinstance(term, Mul) else (term,)):
        visit(f)
    return coefficient, {b: k for b, k in powers.items() if k != 0}, rest


# ---------------------------------------------------------------- elementwise fractions


ELEMENTWISE = (Add, Hadamard, HadamardDivide)
MAX_CANCEL_NODES = 60


def _is_elementwise(e: Expr) -> bool:
    return isinstance(e, ELEMENTWISE) and not e.is_scalar


def _has_division(e: Expr) -> bool:
    return any(isinstance(n, HadamardDivide) for n in walk(e))


def cancel_elementwise(e: Expr) -> Expr | None:
    """An elementwise rational expression with common factors cancelled, read as a
    rational function of its atoms (sympy.cancel): ``(a⊘p)∘(p − p∘p)`` → ``a − a∘p``.
    Elementwise products commute, so this is the scalar identity applied per entry.
    None when the expression is too large or holds something non-elementwise."""
    if sum(1 for _ in walk(e)) > MAX_CANCEL_NODES:
        return None
    atoms: dict = {}
    try:
        rational = sympy.cancel(_to_sympy(e, e.shape, atoms))
    except _NotElementwise:
        return None
    back = {s: a for a, s in atoms.items()}
    return _from_sympy(rational, e.shape, back)


class _NotElementwise(Exception):
    pass


def _to_sympy(e: Expr, shape, atoms: dict):
    if isinstance(e, Add):
        return sympy.Add(*(_to_sympy(t, shape, atoms) for t in e.terms))
    if isinstance(e, Hadamard):
        return _to_sympy(e.left, shape, atoms) * _to_sympy(e.right, shape, atoms)
    if isinstance(e, HadamardDivide):
        return _to_sympy(e.left, shape, atoms) / _to_sympy(e.right, shape, atoms)
    if isinstance(e, Number):
        return e.value
    if isinstance(e, Ones) and tuple(e.shape) == tuple(shape):
        return sympy.Integer(1)
    if isinstance(e, Mul) and sum(1 for f in e.factors if not f.is_scalar) <= 1 and \
            any(f.is_scalar for f in e.factors):
        return sympy.Mul(*(_to_sympy(f, shape, atoms) for f in e.factors))
    if tuple(e.shape) != tuple(shape) and not e.is_scalar:
        raise _NotElementwise
    if e not in atoms:
        atoms[e] = sympy.Symbol(f"a{len(atoms)}")
    return atoms[e]


def _from_sympy(r, shape, back: dict) -> Expr | None:
    if isinstance(r, sympy.Add):
        ordered = sorted(r.as_ordered_terms(), key=lambda t: t.could_extract_minus_sign())
        terms = [_from_sympy(t, shape, back) for t in ordered]
        return None if None in terms else simplify(Add(tuple(terms)))
    coefficient, factors = r.as_coeff_mul()
    if not coefficient.is_Rational:
        return None
    scalars: list[Expr] = []
    numerator: list[Expr] = []
    denominator: list[Expr] = []
    for f in factors:
        base, k = f.as_base_exp()
        if not (k.is_Integer and 0 < abs(k) <= 3):
            return None
        atom = back.get(base)
        if atom is not None and atom.is_scalar and k > 0:
            scalars.extend([atom] * int(k))
            continue
        piece = atom if atom is not None else _from_sympy(base, shape, back)
        if piece is None or piece.is_scalar:
            return None
        (numerator if k > 0 else denominator).extend([piece] * abs(int(k)))
    if not numerator:
        if not denominator and not scalars:
            return with_coefficient(coefficient, Ones(*shape), shape)
        numerator = [Ones(*shape)]
    top = numerator[0]
    for piece in numerator[1:]:
        top = Hadamard(top, piece)
    if denominator:
        bottom = denominator[0]
        for piece in denominator[1:]:
            bottom = Hadamard(bottom, piece)
        top = HadamardDivide(top, bottom)
    body = Mul((*scalars, top)) if scalars else top
    return simplify(with_coefficient(coefficient, body, shape))
