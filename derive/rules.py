"""The differential of every operation: one table, one entry per node type.

Each entry is ``(rule as a textbook writes it, rule(e, d, ans))`` where ``d`` takes the
differential of an operand and ``ans`` is the node's own value — the defined variable
when the node is a whole right-hand side, so ``d(X⁻¹)`` reads ``−Y dX Y`` for
``Y = X⁻¹`` as autograd's rules reuse their output.
"""
from __future__ import annotations

from .expr import (
    Add, Apply, Commutation, Det, Diag, DiagPart, Differential, Expr, Frobenius, Hadamard,
    ElementPower, HadamardDivide, Identity, Inverse, LogDet, LogSumExp, Mul, Norm, Number, Ones, Power,
    Kron, KronBlockFrobenius, KronBlockSum, Softmax, SoftmaxRows, Symbol, Trace, Transpose,
    Unspecified, Unvec, Vec, Zero, neg,
)
from .functions import ELEMENTWISE
from .rule import Rule


def _product(e, d, ans):
    """Leibniz: one term per factor, that factor replaced by its differential."""
    terms = []
    for k in range(len(e.factors)):
        factors = list(e.factors)
        factors[k] = d(factors[k])
        terms.append(Mul(tuple(factors)))
    return Add(tuple(terms))


def _power(e, d, ans):
    """``d(Xᵏ) = Σ Xʲ dX Xᵏ⁻¹⁻ʲ`` for matrices; ``k xᵏ⁻¹ dx`` for scalars."""
    x, k = e.arg, e.exponent
    if k == 0:
        return Zero(e.shape)
    if e.is_scalar and isinstance(x, Norm) and k == 2:   # d‖A‖² = 2A:dA, no ‖A‖/‖A‖
        return Mul((Number(2), Frobenius(x.arg, d(x.arg))))
    dx = d(x)            # once: the k terms share it, so (X¹⁰⁰)¹⁰⁰ builds 200 nodes, not 10⁴
    if e.is_scalar:
        return Mul((Number(k), Power(x, k - 1), dx))
    return Add(tuple(Mul((Power(x, j), dx, Power(x, k - 1 - j))) for j in range(k)))


def _elementwise(e, d, ans):
    return ELEMENTWISE[e.func].differential(e.arg, ans, d(e.arg))


def _unspecified(e, d, ans):
    """``d f(u) = f′(u)∘du``; for a scalar argument the plain product ``f′(u) du``."""
    derivative, du = Unspecified(e.name, e.arg, e.order + 1), d(e.arg)
    return Mul((derivative, du)) if du.is_scalar else Hadamard(derivative, du)


def _zero(e, d, ans):
    return Zero(e.shape)


def _hadamard(e, d, ans):
    return Add((Hadamard(d(e.left), e.right), Hadamard(e.left, d(e.right))))


def _quotient(e, d, ans):
    return Add((HadamardDivide(d(e.left), e.right),
                neg(HadamardDivide(Hadamard(ans, d(e.right)), e.right))))


def _frobenius(e, d, ans):
    return Add((Frobenius(d(e.left), e.right), Frobenius(e.left, d(e.right))))


def _kron(e, d, ans):
    da, db = d(e.left), d(e.right)
    terms = ((Kron(da, e.right),) if not isinstance(da, Zero) else ()) \
        + ((Kron(e.left, db),) if not isinstance(db, Zero) else ())
    return Add(terms) if terms else Zero(e.shape)


def _vec(e, d, ans):
    dx = d(e.arg)
    return Zero(e.shape) if isinstance(dx, Zero) else Vec(dx)


def _unvec(e, d, ans):
    dx = d(e.arg)
    return Zero(e.shape) if isinstance(dx, Zero) else Unvec(dx, e.rows, e.cols)


def _bilinear(e, d, ans):
    """A node linear in each of its two operands (the Kronecker blocks of an adjoint, which a
    Hessian differentiates): one term per operand that varies."""
    first, second = e.children
    d1, d2 = d(first), d(second)
    terms = ((e.rebuild((d1, second)),) if not isinstance(d1, Zero) else ()) \
        + ((e.rebuild((first, d2)),) if not isinstance(d2, Zero) else ())
    return Add(terms) if terms else Zero(e.shape)


def _element_power(e, d, ans):
    """``d(A^{∘k}) = k A^{∘(k−1)}∘dA``."""
    k = e.exponent
    if k == 0:
        return Zero(e.shape)
    base = e.arg if k == 2 else ElementPower(e.arg, k - 1)
    return Mul((Number(k), Hadamard(base, d(e.arg)))) if k != 1 else d(e.arg)


def _softmax(e, d, ans):
    """``ds = s∘dz − s sᵀdz``: the Jacobian Diag(s) − ssᵀ, written with s itself."""
    dz = d(e.arg)
    return Add((Hadamard(ans, dz), neg(Mul((ans, Transpose(ans), dz)))))


def _softmax_rows(e, d, ans):
    """Row by row the vector rule: ``dS = S∘dM − Diag((S∘dM)1) S``."""
    weighted = Hadamard(ans, d(e.arg))
    row_sums = Mul((weighted, Ones(e.shape[1])))
    return Add((weighted, neg(Mul((Diag(row_sums), ans)))))


def _inverse_transpose(x):
    return Transpose(Inverse(x))


DIFFERENTIALS = {
    #                      the rule, Unicode               and in LaTeX (--explain)
    #                how to build it
    Add:            (Rule("d(A + B) = dA + dB",            r"d(A+B) = dA + dB"),
                     lambda e, d, ans: Add(tuple(d(t) for t in e.terms))),
    Mul:            (Rule("d(AB) = dA B + A dB",           r"d(AB) = dA\,B + A\,dB"),
                     _product),
    Transpose:      (Rule("d(Aᵀ) = dAᵀ",                   r"d(A^T) = dA^T"),
                     lambda e, d, ans: Transpose(d(e.arg))),
    Inverse:        (Rule("d(X⁻¹) = −X⁻¹ dX X⁻¹",          r"d(X^{-1}) = -X^{-1}\,dX\,X^{-1}"),
                     lambda e, d, ans: neg(Mul((ans, d(e.arg), ans)))),
    Power:          (Rule("d(Xᵏ) = Σⱼ Xʲ dX Xᵏ⁻¹⁻ʲ",       r"d(X^k) = \sum_j X^j\,dX\,X^{k-1-j}"),
                     _power),
    Hadamard:       (Rule("d(A∘B) = dA∘B + A∘dB",          r"d(A\circ B) = dA\circ B + A\circ dB"),
                     _hadamard),
    HadamardDivide: (Rule("d(A⊘B) = dA⊘B − (A⊘B)∘dB⊘B",    r"d(A\oslash B) = dA\oslash B - (A\oslash B)\circ dB\oslash B"),
                     _quotient),
    Frobenius:      (Rule("d(A:B) = dA:B + A:dB",          r"d(A:B) = dA:B + A:dB"),
                     _frobenius),
    Trace:          (Rule("d tr(A) = tr(dA)",              r"d\,\mathrm{tr}(A) = \mathrm{tr}(dA)"),
                     lambda e, d, ans: Trace(d(e.arg))),
    Det:            (Rule("d det X = det X · X⁻ᵀ:dX",      r"d\det X = \det X\,X^{-T}:dX"),
                     lambda e, d, ans: Mul((ans, Frobenius(_inverse_transpose(e.arg), d(e.arg))))),
    LogDet:         (Rule("d log det X = X⁻ᵀ:dX",          r"d\log\det X = X^{-T}:dX"),
                     lambda e, d, ans: Frobenius(_inverse_transpose(e.arg), d(e.arg))),
    Apply:          (Rule("d f(A) = f′(A)∘dA (functions.py)", r"d f(A) = f'(A)\circ dA"),
                     _elementwise),
    Unspecified:    (Rule("d f(u) = f′(u)∘du, f unspecified", r"d f(u) = f'(u)\circ du"),
                     _unspecified),
    Diag:           (Rule("d Diag(a) = Diag(da)",          r"d\,\mathrm{Diag}(a) = \mathrm{Diag}(da)"),
                     lambda e, d, ans: Diag(d(e.arg))),
    DiagPart:       (Rule("d diag(A) = diag(dA)",          r"d\,\mathrm{diag}(A) = \mathrm{diag}(dA)"),
                     lambda e, d, ans: DiagPart(d(e.arg))),
    Norm:           (Rule("d‖A‖ = (A/‖A‖):dA",             r"d\|A\| = (A/\|A\|):dA"),
                     lambda e, d, ans: Frobenius(Mul((Power(ans, -1), e.arg)), d(e.arg))),
    ElementPower:   (Rule("d(A^∘k) = k A^∘(k−1)∘dA",       r"d(A^{\circ k}) = k\,A^{\circ (k-1)}\circ dA"),
                     _element_power),
    Kron:           (Rule("d(A⊗B) = dA⊗B + A⊗dB",          r"d(A\otimes B) = dA\otimes B + A\otimes dB"),
                     _kron),
    Vec:            (Rule("d vec(X) = vec(dX)",            r"d\,\mathrm{vec}(X) = \mathrm{vec}(dX)"),
                     _vec),
    Unvec:          (Rule("d unvec(a) = unvec(da)",        r"d\,\mathrm{unvec}(a) = \mathrm{unvec}(da)"),
                     _unvec),
    KronBlockSum:   (Rule("d Σᵢⱼ aᵢⱼGᵢⱼ = Σᵢⱼ daᵢⱼGᵢⱼ + Σᵢⱼ aᵢⱼdGᵢⱼ",
                          r"d\textstyle\sum_{ij} a_{ij}G_{ij} = \sum_{ij} da_{ij}G_{ij} + \sum_{ij} a_{ij}\,dG_{ij}"),
                     _bilinear),
    KronBlockFrobenius: (Rule("d[Gᵢⱼ:B]ᵢⱼ = [dGᵢⱼ:B]ᵢⱼ + [Gᵢⱼ:dB]ᵢⱼ",
                              r"d[G_{ij}:B]_{ij} = [dG_{ij}:B]_{ij} + [G_{ij}:dB]_{ij}"),
                         _bilinear),
    Softmax:        (Rule("d softmax(z) = s∘dz − s sᵀdz, s = softmax(z)",
                          r"d\,\mathrm{softmax}(z) = s\circ dz - s\,s^T dz,\ s = \mathrm{softmax}(z)"),
                     _softmax),
    SoftmaxRows:    (Rule("d softmax_rows(M) = S∘dM − Diag((S∘dM)1) S, S = softmax_rows(M)",
                          r"d\,\mathrm{softmax}_{\mathrm{rows}}(M) = S\circ dM - \mathrm{Diag}((S\circ dM)\mathbf{1})\,S"),
                     _softmax_rows),
    LogSumExp:      (Rule("d logsumexp(z) = softmax(z):dz",
                          r"d\,\mathrm{logsumexp}(z) = \mathrm{softmax}(z):dz"),
                     lambda e, d, ans: Frobenius(Softmax(e.arg), d(e.arg))),
    Number:         (Rule("dα = 0 for a constant α",       r"d\alpha = 0 \text{ for a constant } \alpha"),
                     _zero),
    Identity:       (Rule("dI = 0",                        r"dI = 0"),
                     _zero),
    Commutation:    (Rule("dK = 0",                        r"dK = 0"),
                     _zero),
    Ones:           (Rule("d1 = 0",                        r"d\mathbf{1} = 0"),
                     _zero),
    Zero:           (Rule("d0 = 0",                        r"d0 = 0"),
                     _zero),
}


def differentiate(expr: Expr, varies, name: Symbol | None = None):
    """``(dexpr, rules used)``; ``varies(symbol)`` says whether dSymbol is non-zero.

    ``name`` is the variable ``expr`` defines: rules that reuse their own value
    (``ans``) then write it, as the seed writes ``ds = (s − s∘s)∘dv``.
    """
    used = []

    def d(e: Expr) -> Expr:
        if isinstance(e, Symbol):
            return Differential(e) if varies(e) else Zero(e.shape)
        if isinstance(e, Differential):
            raise ValueError("a differential cannot be differentiated again")
        rule_text, rule = DIFFERENTIALS[type(e)]
        if isinstance(e, Apply):
            rule_text = ELEMENTWISE[e.func].rule
        if rule_text not in used and rule is not _zero:
            used.append(rule_text)
        ans = name if (e is expr and name is not None) else e
        return rule(e, d, ans)

    return d(expr), tuple(used)
