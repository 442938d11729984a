"""Tests written for the mutants of the mutation run (tests/mutation.py) that the rest of
the suite let live: each fails when derive is broken in the way its docstring names."""
import dataclasses

import numpy as np
import sympy

from derive import api
from derive import expr as E
from derive.check import check
from derive.evaluate import evaluate, forward


def _with_gradient(derivation, index, expr):
    gradients = list(derivation.gradients)
    gradients[index] = dataclasses.replace(gradients[index], expr=expr)
    return dataclasses.replace(derivation, gradients=tuple(gradients), check=None)


def test_a_transposed_gradient_of_an_spd_input_fails_the_check():
    """∂(aᵀΣb)/∂Σ = abᵀ is not symmetric: its transpose must fail, which it does only if the
    check's directions are not symmetric for a symmetric input (symmetric directions D give
    G:D = Gᵀ:D and hide it)."""
    derivation = api.derive("Σ : 3x3 spd\na : 3\nb : 3\nE = a'Σ b\nwrt Σ")
    assert derivation.check.ok
    transposed = _with_gradient(derivation, 0, E.Transpose(derivation.gradients[0].expr))
    assert not check(transposed).ok


def test_a_gradient_wrong_by_two_parts_in_a_hundred_thousand_fails_the_check():
    """A small margin: a gradient off by a relative 2e-5 is caught, so a tolerance loosened
    50× (to 5e-5) cannot pass unnoticed."""
    derivation = api.derive_file("examples/backprop.chain")
    assert derivation.check.ok
    g = derivation.gradients[0].expr
    slightly = _with_gradient(derivation, 0, E.Mul((E.Number(1 + sympy.Rational(1, 50000)), g)))
    assert not check(slightly).ok


def test_a_product_of_two_symmetric_matrices_is_not_symmetric():
    """C = AB with A, B symmetric: ∂(aᵀCb)/∂b = Cᵀa = BAa, not Ca = ABa (what treating C
    as symmetric would print), against the closed form at a symmetric point."""
    derivation = api.derive("A : 3x3 symmetric\nB : 3x3 symmetric\na : 3\nb : 3\nC = A B\n"
                            "E = a'C b\nwrt b")
    assert derivation.check.ok
    assert "symmetric" not in derivation.chain.definitions[0].symbol.props
    rng = np.random.default_rng(5)
    A, B = (rng.normal(size=(3, 3)) for _ in range(2))
    A, B = A + A.T, B + B.T
    a, b = rng.normal(size=(3, 1)), rng.normal(size=(3, 1))
    values = forward(derivation.chain, {"A": A, "B": B, "a": a, "b": b})
    got = evaluate(derivation.gradients[0].expr, values)
    np.testing.assert_allclose(got, B @ A @ a, rtol=1e-10)


def _gradient_at(derivation, point):
    values = forward(derivation.chain, point)
    return {g.wrt.name: evaluate(g.expr, values) for g in derivation.gradients}


def test_the_gradient_through_diag_of_a_matrix():
    """a:diag(X) = Diag(a):X, so ∂/∂X = Diag(a) (a factor 2 in that move lived)."""
    derivation = api.derive("X : 3x3\na : 3\nE = a:diag(X) + tr(X'X)\nwrt X")
    assert derivation.check.ok
    rng = np.random.default_rng(2)
    X, a = rng.normal(size=(3, 3)), rng.normal(size=(3, 1))
    got = _gradient_at(derivation, {"X": X, "a": a})["X"]
    np.testing.assert_allclose(got, np.diag(a[:, 0]) + 2 * X, rtol=1e-10)


def test_the_gradients_through_both_factors_of_a_kronecker_product():
    """G:(A ⊗ B): ∂/∂A = [Gᵢⱼ : B]ᵢⱼ and ∂/∂B = Σᵢⱼ aᵢⱼ Gᵢⱼ, Gᵢⱼ the blocks of G shaped
    like B, written here with loops (a factor 2 in either move lived)."""
    derivation = api.derive("A : 2x3\nB : 2x2\nG : 4x6\nE = G:kron(A, B)\nwrt A, B")
    assert derivation.check.ok
    rng = np.random.default_rng(3)
    A, B, G = rng.normal(size=(2, 3)), rng.normal(size=(2, 2)), rng.normal(size=(4, 6))
    block = lambda i, j: G[2 * i:2 * i + 2, 2 * j:2 * j + 2]   # noqa: E731
    want_A = np.array([[np.sum(block(i, j) * B) for j in range(3)] for i in range(2)])
    want_B = sum(A[i, j] * block(i, j) for i in range(2) for j in range(3))
    got = _gradient_at(derivation, {"A": A, "B": B, "G": G})
    np.testing.assert_allclose(got["A"], want_A, rtol=1e-10)
    np.testing.assert_allclose(got["B"], want_B, rtol=1e-10)
