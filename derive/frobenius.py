"""Frobenius rearrangement: move everything but the differential to the left of ``:``.

``G : ℓ`` with ``ℓ`` linear in one differential becomes ``G′ : ℓ′`` by one table entry
per form ``ℓ`` can take, until ``ℓ′`` is a bare ``dY``; ``A:B = tr(AᵀB)``.
"""
from __future__ import annotations

from .expr import (
    Add, Diag, DiagPart, Differential, Expr, Frobenius, Hadamard, HadamardDivide,
    Identity, Kron, KronBlockFrobenius, KronBlockSum, Mul, Trace, Transpose, Unvec, Vec,
    contains_differential, scalar_groups,
)
from .rule import Rule
from .simplify import simplify

#                           the rule, Unicode            and in LaTeX (--explain)
SUM =                 Rule("A:(B+C) = A:B + A:C",        r"A:(B+C) = A:B + A:C")
LEFT_FACTOR =         Rule("A:BC = BᵀA:C",               r"A:BC = B^TA:C")
RIGHT_FACTOR =        Rule("A:BC = ACᵀ:B",               r"A:BC = AC^T:B")
SCALAR_FACTOR =       Rule("A:αB = αA:B",                r"A:\alpha B = \alpha A:B")
SCALAR_DIFFERENTIAL = Rule("A:M dα = (A:M) dα",          r"A:M\,d\alpha = (A:M)\,d\alpha")
TRANSPOSE =           Rule("A:Bᵀ = Aᵀ:B",                r"A:B^T = A^T:B")
HADAMARD =            Rule("A:(B∘C) = (A∘B):C",          r"A:(B\circ C) = (A\circ B):C")
HADAMARD_DIVIDE =     Rule("A:(B⊘C) = (A⊘C):B",          r"A:(B\oslash C) = (A\oslash C):B")
NESTED =              Rule("α:(A:B) = αA:B",             r"\alpha:(A:B) = \alpha A:B")
SYMMETRY =            Rule("A:B = B:A",                  r"A:B = B:A")
TRACE =               Rule("α:tr(A) = αI:A",             r"\alpha:\mathrm{tr}(A) = \alpha I:A")
DIAG =                Rule("A:Diag(b) = diag(A):b",      r"A:\mathrm{Diag}(b) = \mathrm{diag}(A):b")
VEC =                 Rule("a:vec(B) = unvec(a):B",      r"a:\mathrm{vec}(B) = \mathrm{unvec}(a):B")
KRON_LEFT =           Rule("G:(dA⊗B) = [Gᵢⱼ:B]ᵢⱼ:dA",   r"G:(dA\otimes B) = [G_{ij}:B]_{ij}:dA")
KRON_RIGHT =          Rule("G:(A⊗dB) = (Σᵢⱼ aᵢⱼGᵢⱼ):dB", r"G:(A\otimes dB) = \textstyle\sum_{ij} a_{ij}G_{ij}:dB")
DIAG_PART =           Rule("a:diag(B) = Diag(a):B",      r"a:\mathrm{diag}(B) = \mathrm{Diag}(a):B")
UNVEC =               Rule("A:unvec(b) = vec(A):b",      r"A:\mathrm{unvec}(b) = \mathrm{vec}(A):b")
BLOCKS_OF =           Rule("G:Σᵢⱼ aᵢⱼBᵢⱼ = (a⊗G):B = [G:Bᵢⱼ]ᵢⱼ:a",
                           r"G:\textstyle\sum_{ij} a_{ij}B_{ij} = (a\otimes G):B = [G:B_{ij}]_{ij}:a")
BLOCKS_AGAINST =      Rule("H:[Gᵢⱼ:B]ᵢⱼ = (H⊗B):G = (Σᵢⱼ hᵢⱼGᵢⱼ):B",
                           r"H:[G_{ij}:B]_{ij} = (H\otimes B):G = \textstyle\sum_{ij} h_{ij}G_{ij}:B")


def _sum(g, e):
    return [(g, t, (SUM,)) for t in e.terms if contains_differential(t)]


def _product(g, e):
    groups = scalar_groups(e.factors)
    k = next(i for i, f in enumerate(groups) if contains_differential(f))
    inner, others = groups[k], groups[:k] + groups[k + 1:]
    if inner.is_scalar:                                  # G : M dα = (G:M) dα
        return [(Frobenius(g, _product_of(others)), inner, (SCALAR_DIFFERENTIAL,))]
    scalars = [f for f in others if f.is_scalar]
    before = [f for f in groups[:k] if not f.is_scalar]
    after = [f for f in groups[k + 1:] if not f.is_scalar]
    rules = ((LEFT_FACTOR,) if before else ()) + ((RIGHT_FACTOR,) if after else ()) \
        + ((SCALAR_FACTOR,) if scalars else ())
    left = [Transpose(_product_of(before))] if before else []
    right = [Transpose(_product_of(after))] if after else []
    return [(Mul((*scalars, *left, g, *right)), inner, rules)]


def _product_of(factors):
    return factors[0] if len(factors) == 1 else Mul(tuple(factors))


def _frobenius(g, e):
    if contains_differential(e.right):
        return [(Mul((g, e.left)), e.right, (NESTED,))]
    return [(Mul((g, e.right)), e.left, (SYMMETRY, NESTED))]


def _hadamard(g, e):
    if contains_differential(e.right):
        return [(Hadamard(g, e.left), e.right, (HADAMARD,))]
    return [(Hadamard(g, e.right), e.left, (HADAMARD,))]


def _vec(g, e):
    rows, cols = e.arg.shape
    g = simplify(g)
    left = g.arg if isinstance(g, Vec) and g.arg.shape == e.arg.shape else Unvec(g, rows, cols)
    return [(left, e.arg, (VEC,))]


def _kron(g, e):
    """Gᵢⱼ is the (i, j) block of G, shaped like the right factor."""
    moves = []
    if contains_differential(e.left):
        moves.append((KronBlockFrobenius(g, e.right), e.left, (KRON_LEFT,)))
    if contains_differential(e.right):
        moves.append((KronBlockSum(g, e.left), e.right, (KRON_RIGHT,)))
    return moves


def _hadamard_divide(g, e):
    if contains_differential(e.right):
        raise ValueError("a differential in a denominator is not a linear form")
    return [(HadamardDivide(g, e.right), e.left, (HADAMARD_DIVIDE,))]


def _block_sum(g, e):
    """``G : Σᵢⱼ aᵢⱼBᵢⱼ``: ``(a⊗G) : B`` for dB, ``[G : Bᵢⱼ]ᵢⱼ : a`` for da."""
    moves = []
    if contains_differential(e.g):
        moves.append((Kron(e.a, g), e.g, (BLOCKS_OF,)))
    if contains_differential(e.a):
        moves.append((KronBlockFrobenius(e.g, g), e.a, (BLOCKS_OF,)))
    return moves


def _block_frobenius(g, e):
    """``H : [Gᵢⱼ : B]ᵢⱼ``: ``(H⊗B) : G`` for dG, ``(Σᵢⱼ hᵢⱼGᵢⱼ) : B`` for dB."""
    moves = []
    if contains_differential(e.g):
        moves.append((Kron(g, e.b), e.g, (BLOCKS_AGAINST,)))
    if contains_differential(e.b):
        moves.append((KronBlockSum(e.g, g), e.b, (BLOCKS_AGAINST,)))
    return moves


MOVES = {
    Add:            _sum,
    Mul:            _product,
    Transpose:      lambda g, e: [(Transpose(g), e.arg, (TRANSPOSE,))],
    Hadamard:       _hadamard,
    HadamardDivide: _hadamard_divide,
    Frobenius:      _frobenius,
    Trace:          lambda g, e: [(Mul((g, Identity(e.arg.shape[0]))), e.arg, (TRACE,))],
    Diag:           lambda g, e: [(DiagPart(g), e.arg, (DIAG,))],
    DiagPart:       lambda g, e: [(Diag(g), e.arg, (DIAG_PART,))],
    Vec:            _vec,
    Kron:           _kron,
    Unvec:          lambda g, e: [(Vec(g), e.arg, (UNVEC,))],
    KronBlockSum:   _block_sum,
    KronBlockFrobenius: _block_frobenius,
}


def move_left(g: Expr, linear: Expr):
    """``g : linear`` as a list of ``(G, Y, rules)`` with ``g : linear = Σ G : dY``."""
    done = []
    work = [(g, simplify(linear), ())]
    while work:
        g, e, rules = work.pop()
        if isinstance(e, Differential):
            done.append((simplify(g), e.of, rules))
            continue
        if not contains_differential(e):
            continue
        moved = MOVES[type(e)](g, e)
        for g2, e2, used in reversed(moved):
            work.append((g2, e2, rules + tuple(r for r in used if r not in rules)))
    return done
