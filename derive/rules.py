"""The differential of every operation: one table, one entry per node type.

Each entry is ``(rule as a textbook writes it, rule(e, d, ans))`` where ``d`` takes the
differential of an operand and ``ans`` is the node's own value — the defined variable
when the node is a whole right-hand side, so ``d(X⁻¹)`` reads ``−Y dX Y`` for
``Y = X⁻¹`` as autograd's rules reuse their output.
"""
from __future__ import annotations

from .expr import (
    Add, Apply, Det, Diag, DiagPart, Differential, Expr, Frobenius, Hadamard,
    HadamardDivide, Identity, Inverse, LogDet, Mul, Number, Ones, Power, Symbol,
    Trace, Transpose, Zero, neg,
)
from .functions import ELEMENTWISE


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
    if e.is_scalar:
        return Mul((Number(k), Power(x, k - 1), d(x)))
    return Add(tuple(Mul((Power(x, j), d(x), Power(x, k - 1 - j))) for j in range(k)))


def _elementwise(e, d, ans):
    return ELEMENTWISE[e.func].differential(e.arg, ans, d(e.arg))


def _zero(e, d, ans):
    return Zero(e.shape)


def _hadamard(e, d, ans):
    return Add((Hadamard(d(e.left), e.right), Hadamard(e.left, d(e.right))))


def _quotient(e, d, ans):
    return Add((HadamardDivide(d(e.left), e.right),
                neg(HadamardDivide(Hadamard(ans, d(e.right)), e.right))))


def _frobenius(e, d, ans):
    return Add((Frobenius(d(e.left), e.right), Frobenius(e.left, d(e.right))))


def _inverse_transpose(x):
    return Transpose(Inverse(x))


DIFFERENTIALS = {
    #                 the rule, as a textbook writes it      how to build it
    Add:            ("d(A + B) = dA + dB",                lambda e, d, ans: Add(tuple(d(t) for t in e.terms))),
    Mul:            ("d(AB) = dA B + A dB",               _product),
    Transpose:      ("d(Aᵀ) = dAᵀ",                       lambda e, d, ans: Transpose(d(e.arg))),
    Inverse:        ("d(X⁻¹) = −X⁻¹ dX X⁻¹",              lambda e, d, ans: neg(Mul((ans, d(e.arg), ans)))),
    Power:          ("d(Xᵏ) = Σⱼ Xʲ dX Xᵏ⁻¹⁻ʲ",           _power),
    Hadamard:       ("d(A∘B) = dA∘B + A∘dB",              _hadamard),
    HadamardDivide: ("d(A⊘B) = dA⊘B − (A⊘B)∘dB⊘B",        _quotient),
    Frobenius:      ("d(A:B) = dA:B + A:dB",              _frobenius),
    Trace:          ("d tr(A) = tr(dA)",                  lambda e, d, ans: Trace(d(e.arg))),
    Det:            ("d det X = det X · X⁻ᵀ:dX",          lambda e, d, ans: Mul((ans, Frobenius(_inverse_transpose(e.arg), d(e.arg))))),
    LogDet:         ("d log det X = X⁻ᵀ:dX",              lambda e, d, ans: Frobenius(_inverse_transpose(e.arg), d(e.arg))),
    Apply:          ("d f(A) = f′(A)∘dA (functions.py)",  _elementwise),
    Diag:           ("d Diag(a) = Diag(da)",              lambda e, d, ans: Diag(d(e.arg))),
    DiagPart:       ("d diag(A) = diag(dA)",              lambda e, d, ans: DiagPart(d(e.arg))),
    Number:         ("dα = 0 for a constant α",           _zero),
    Identity:       ("dI = 0",                            _zero),
    Ones:           ("d1 = 0",                            _zero),
    Zero:           ("d0 = 0",                            _zero),
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
