"""The vec form of a linear form: ``vec ℓ(dX) = J vec dX``, read by one table row per node.

Where the Frobenius moves (frobenius.py) turn ``G : ℓ(dX)`` into ``G′ : dX`` — the gradient
of a scalar —, these rows turn ``vec ℓ(dX)`` into ``J vec dX`` — the Jacobian of a vector- or
matrix-valued map, in numerator layout on column-major vec: row i of J is entry i of
vec ℓ, column j is entry j of vec dX.  A vector needs no vec (``vec x = x``), so the rows
read as a person writes them: ``d(Ax) = A dx``, ``vec(dW x) = (xᵀ⊗I) vec dW``,
``vec(A dX B) = (Bᵀ⊗A) vec dX``, ``vec(A∘dX) = Diag(vec A) vec dX``,
``vec(dXᵀ) = K vec dX`` with the commutation matrix K.

The reading walks ``vec ℓ = Σ P vec(e)`` down the tree: each row replaces one ``P vec(e)``
by ``P·M vec(e′)`` for the children e′ of e holding a differential, until e is ``dX``; the
P's reaching ``dX`` add up to J.  Differentials of other variables are held fixed (their
terms contribute nothing), which is what a block of a Jacobian or Hessian asks.

``coefficient`` raises ``DeriveError`` (without a place: the caller locates it) when the form
is not linear in ``dX`` — a differential inside an inverse, a power, a function, or two
differentials multiplied.
"""
from __future__ import annotations

from typing import Callable

from .errors import DeriveError
from .expr import (
    ONE, Add, Commutation, Diag, DiagPart, Differential, Expr, Frobenius, Hadamard,
    HadamardDivide, Identity, Inverse, Kron, Mul, Number, Ones, Symbol, Trace, Transpose, Unvec,
    Vec, Zero, contains_differential, scalar_groups,
)
from .printer import text
from .rule import Rule
from .simplify import simplify

#                    the rule, Unicode                            and in LaTeX (--explain)
SUM =          Rule("vec(A + B) = vec A + vec B",               r"\mathrm{vec}(A+B) = \mathrm{vec}\,A + \mathrm{vec}\,B")
PRODUCT =      Rule("vec(A dX B) = (Bᵀ⊗A) vec dX",              r"\mathrm{vec}(A\,dX\,B) = (B^T\otimes A)\,\mathrm{vec}\,dX")
LEFT =         Rule("d(Ax) = A dx",                             r"d(Ax) = A\,dx")
SCALAR =       Rule("vec(αA) = α vec A",                        r"\mathrm{vec}(\alpha A) = \alpha\,\mathrm{vec}\,A")
SCALAR_FORM =  Rule("vec(M dα) = vec(M) dα for a scalar dα",    r"\mathrm{vec}(M\,d\alpha) = \mathrm{vec}(M)\,d\alpha")
TRANSPOSE =    Rule("vec(dXᵀ) = K vec dX",                      r"\mathrm{vec}(dX^T) = K\,\mathrm{vec}\,dX")
VECTOR_T =     Rule("vec(dxᵀ) = dx for a vector",               r"\mathrm{vec}(dx^T) = dx")
HADAMARD =     Rule("vec(A∘dX) = Diag(vec A) vec dX",           r"\mathrm{vec}(A\circ dX) = \mathrm{Diag}(\mathrm{vec}\,A)\,\mathrm{vec}\,dX")
QUOTIENT =     Rule("vec(dX⊘A) = Diag(vec A)⁻¹ vec dX",         r"\mathrm{vec}(dX\oslash A) = \mathrm{Diag}(\mathrm{vec}\,A)^{-1}\mathrm{vec}\,dX")
FROBENIUS =    Rule("A:dX = vec(A)ᵀ vec dX",                    r"A:dX = \mathrm{vec}(A)^T\mathrm{vec}\,dX")
TRACE =        Rule("tr(dX) = vec(I)ᵀ vec dX",                  r"\mathrm{tr}(dX) = \mathrm{vec}(I)^T\mathrm{vec}\,dX")
DIAG =         Rule("vec Diag(dx) = Diag(vec I)(1⊗I) dx",       r"\mathrm{vec}\,\mathrm{Diag}(dx) = \mathrm{Diag}(\mathrm{vec}\,I)(\mathbf{1}\otimes I)\,dx")
DIAG_PART =    Rule("diag(dX) = (1ᵀ⊗I) Diag(vec I) vec dX",     r"\mathrm{diag}(dX) = (\mathbf{1}^T\otimes I)\,\mathrm{Diag}(\mathrm{vec}\,I)\,\mathrm{vec}\,dX")
VEC =          Rule("vec(vec dX) = vec dX",                     r"\mathrm{vec}(\mathrm{vec}\,dX) = \mathrm{vec}\,dX")
UNVEC =        Rule("vec(unvec dx) = dx",                       r"\mathrm{vec}(\mathrm{unvec}\,dx) = dx")
KRON_RIGHT =   Rule("vec(A⊗dB) = (I⊗K⊗I)(vec A⊗I) vec dB",      r"\mathrm{vec}(A\otimes dB) = (I\otimes K\otimes I)(\mathrm{vec}\,A\otimes I)\,\mathrm{vec}\,dB")
MIXED =        Rule("(A⊗B)(C⊗D) = AC⊗BD",                      r"(A\otimes B)(C\otimes D) = AC\otimes BD")
KRON_LEFT =    Rule("vec(dA⊗B) = (I⊗K⊗I)(I⊗vec B) vec dA",      r"\mathrm{vec}(dA\otimes B) = (I\otimes K\otimes I)(I\otimes\mathrm{vec}\,B)\,\mathrm{vec}\,dA")


def _vec(a: Expr) -> Expr:
    """``vec A``, and a vector itself (``vec x = x``)."""
    return a if a.shape[1] == ONE else Vec(a)


def _kron(a: Expr, b: Expr) -> Expr:
    """``A ⊗ B``, with a 1×1 factor acting as a scalar (``I₁ ⊗ A = A``)."""
    if a.is_scalar:
        return b if isinstance(a, Identity) or a == Number(1) else Mul((a, b))
    if b.is_scalar:
        return a if isinstance(b, Identity) or b == Number(1) else Mul((b, a))
    return Kron(a, b)


def _product_of(factors: list, size) -> Expr:
    if not factors:
        return Identity(size)
    return factors[0] if len(factors) == 1 else Mul(tuple(factors))


def _sum(e: Add):
    return [(None, t, (SUM,)) for t in e.terms if contains_differential(t)]


def _product(e: Mul):
    """``A L B`` with L the one factor holding the differential: ``(Bᵀ⊗A) vec L``."""
    groups = scalar_groups(e.factors)
    holding = [i for i, f in enumerate(groups) if contains_differential(f)]
    if len(holding) > 1:
        raise _not_linear(e, "a product of two differentials")
    k = holding[0]
    inner, others = groups[k], groups[:k] + groups[k + 1:]
    scalars = [f for f in others if f.is_scalar]
    if inner.is_scalar and not e.is_scalar:         # M dα: vec(M) dα
        matrix = _product_of([f for f in others if not f.is_scalar], e.shape[0])
        return [(Mul((*scalars, _vec(matrix))), inner, (SCALAR_FORM,))]
    before = [f for f in groups[:k] if not f.is_scalar]
    after = [f for f in groups[k + 1:] if not f.is_scalar]
    rows, cols = inner.shape
    right = Transpose(_product_of(after, cols)) if after else Identity(cols)
    outer = _kron(right, _product_of(before, rows))
    rule = LEFT if not after and cols == ONE else PRODUCT
    rules = ((rule,) if before or after else ()) + ((SCALAR,) if scalars else ())
    return [(Mul((*scalars, outer)) if scalars else outer, inner, rules)]


def _transpose(e: Transpose):
    rows, cols = e.arg.shape
    if rows == ONE or cols == ONE:
        return [(None, e.arg, (VECTOR_T,))]
    return [(Commutation(rows, cols), e.arg, (TRANSPOSE,))]


def _sides(e, what: str):
    """``(constant side, side holding the differential)`` of a product of two operands."""
    if contains_differential(e.left) and contains_differential(e.right):
        raise _not_linear(e, f"{what} of two differentials")
    return (e.left, e.right) if contains_differential(e.right) else (e.right, e.left)


def _hadamard(e: Hadamard):
    other, inner = _sides(e, "an elementwise product")
    return [(Diag(_vec(other)), inner, (HADAMARD,))]


def _quotient(e: HadamardDivide):
    if contains_differential(e.right):
        raise _not_linear(e, "a differential in a denominator")
    return [(Inverse(Diag(_vec(e.right))), e.left, (QUOTIENT,))]


def _frobenius(e: Frobenius):
    other, inner = _sides(e, "a Frobenius product")
    return [(Transpose(_vec(other)), inner, (FROBENIUS,))]


def _trace(e: Trace):
    return [(Transpose(Vec(Identity(e.arg.shape[0]))), e.arg, (TRACE,))]


def _diag(e: Diag):
    n = e.arg.shape[0]
    return [(Mul((Diag(Vec(Identity(n))), Kron(Ones(n), Identity(n)))), e.arg, (DIAG,))]


def _diag_part(e: DiagPart):
    n = e.arg.shape[0]
    return [(Mul((Kron(Transpose(Ones(n)), Identity(n)), Diag(Vec(Identity(n))))), e.arg,
             (DIAG_PART,))]


def _kron_reorder(a_shape, b_shape) -> Expr:
    """``I_q ⊗ K_{s,p} ⊗ I_r``, which turns ``vec A ⊗ vec B`` into ``vec(A ⊗ B)``."""
    (p, q), (r, s) = a_shape, b_shape
    middle = Commutation(s, p)
    return _kron(_kron(Identity(q), middle), Identity(r))


def _kron_node(e: Kron):
    moves = []
    reorder = _kron_reorder(e.left.shape, e.right.shape)
    if contains_differential(e.left):
        b = e.right
        moves.append((Mul((reorder, _kron(Identity(e.left.shape[0] * e.left.shape[1]), _vec(b)))),
                      e.left, (KRON_LEFT,)))
    if contains_differential(e.right):
        a = e.left
        moves.append((Mul((reorder, _kron(_vec(a), Identity(e.right.shape[0] * e.right.shape[1])))),
                      e.right, (KRON_RIGHT,)))
    return moves


# each row: the node → [(M or None for the identity, child e′, rules)] with vec(node) = Σ M vec e′
ROWS: dict[type[Expr], Callable] = {
    Add:            _sum,
    Mul:            _product,
    Transpose:      _transpose,
    Hadamard:       _hadamard,
    HadamardDivide: _quotient,
    Frobenius:      _frobenius,
    Trace:          _trace,
    Diag:           _diag,
    DiagPart:       _diag_part,
    Vec:            lambda e: [(None, e.arg, (VEC,))],
    Unvec:          lambda e: [(None, e.arg, (UNVEC,))],
    Kron:           _kron_node,
}


def _not_linear(e: Expr, why: str) -> DeriveError:
    return DeriveError(f"{text(e)} is not linear in the differential ({why})")


def coefficient(linear: Expr, x: Symbol) -> tuple[Expr, tuple[Rule, ...]]:
    """``(J, rules)`` with ``vec(linear) = J vec(dx)`` (numerator layout, column-major vec);
    ``J`` is ``Zero`` when no ``dx`` occurs.  Raises DeriveError when ``linear`` is not linear
    in ``dx``."""
    rows = linear.shape[0] * linear.shape[1]
    size = x.shape[0] * x.shape[1]
    found: list[Expr] = []
    used: list[Rule] = []
    work: list[tuple] = [(None, simplify(linear))]
    while work:
        p, e = work.pop()
        if isinstance(e, Differential):
            if e.of.name == x.name:
                found.append(p if p is not None else Identity(size))
            continue
        if not contains_differential(e) or isinstance(e, Zero):
            continue
        row = ROWS.get(type(e))
        if row is None:
            raise _not_linear(e, f"a differential inside {type(e).__name__}")
        for m, child, rules in reversed(row(e)):
            used.extend(r for r in rules if r not in used)
            work.append((m if p is None else (p if m is None else Mul((p, m))), child))
    if not found:
        return Zero((rows, size)), tuple(used)
    total = simplify(found[0] if len(found) == 1 else Add(tuple(found)))
    tidied = mixed_products(total)
    if tidied != total:
        used.append(MIXED)
    return tidied, tuple(used)


def mixed_products(e: Expr) -> Expr:
    """``(A⊗B)(C⊗D) = AC⊗BD`` on adjacent factors, and ``M(r⊗I) = r⊗M`` for a row r:
    ``Diag(s − s∘s)(xᵀ⊗I)`` reads ``xᵀ⊗Diag(s − s∘s)``, as the textbook writes it."""
    if isinstance(e, Add):
        return simplify(Add(tuple(mixed_products(t) for t in e.terms)))
    if not isinstance(e, Mul):
        return e
    factors = list(e.factors)
    i = 0
    while i < len(factors) - 1:
        merged = _merge(factors[i], factors[i + 1])
        if merged is None:
            i += 1
            continue
        factors[i:i + 2] = [merged]
        i = max(i - 1, 0)
    return factors[0] if len(factors) == 1 else Mul(tuple(factors))


def _merge(a: Expr, b: Expr) -> Expr | None:
    if a.is_scalar or not isinstance(b, Kron):
        return None
    if isinstance(a, Kron) and a.left.shape[1] == b.left.shape[0] \
            and a.right.shape[1] == b.right.shape[0]:
        return Kron(simplify(Mul((a.left, b.left))), simplify(Mul((a.right, b.right))))
    if isinstance(b.right, Identity) and b.left.shape[0] == ONE and a.shape[1] == b.right.size:
        return Kron(b.left, a)
    return None
