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
