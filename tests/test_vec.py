"""Each row of vec.py's table, checked numerically against its closed form in plain NumPy.

Every test builds a linear form ``ℓ(dX)``, reads ``J`` with ``vec(ℓ) = J vec dX``, evaluates J
and compares it with the textbook matrix built here (``np.kron``, column-major vec, the
commutation matrix constructed below), and checks ``J vec dX = vec ℓ(dX)`` for a random dX
computed by NumPy directly.
"""
import numpy as np
import pytest
import sympy

from derive import vec
from derive.errors import DeriveError
from derive.evaluate import evaluate
from derive.expr import (
    ONE, Add, Commutation, Diag, DiagPart, Differential, Frobenius, Hadamard, HadamardDivide,
    Inverse, Kron, Mul, Number, Symbol, Trace, Transpose, Unvec, Vec, Zero, neg,
)
from derive.printer import text

rng = np.random.default_rng(7)
M, N, P, Q = 3, 4, 2, 5


def vec_of(a):
    return np.reshape(a, (-1, 1), order="F")


def commutation(m, n):
    """K with K vec(A) = vec(Aᵀ), built by permuting the identity's columns."""
    k = np.zeros((m * n, m * n))
    for index in range(m * n):
        unit = np.zeros(m * n)
        unit[index] = 1.0
        k[:, index] = vec_of(np.reshape(unit, (m, n), order="F").T)[:, 0]
    return k


def sym(name, rows, cols=1):
    return Symbol(name, (sympy.Integer(rows), sympy.Integer(cols)))


def read(linear, x, values):
    j, rules = vec.coefficient(linear, x)
    return evaluate(j, values), rules, j


def agrees(linear, x, values, expected, apply):
    """J equals ``expected``, and J vec dX is vec ℓ(dX) computed by ``apply(dX)``."""
    got, rules, j = read(linear, x, values)
    np.testing.assert_allclose(got, expected, atol=1e-12)
    dx = rng.standard_normal(tuple(int(s) for s in x.shape))
    np.testing.assert_allclose(got @ vec_of(dx), vec_of(apply(dx)), atol=1e-12)
    return rules, j


def test_commutation_node_is_the_commutation_matrix():
    a = rng.standard_normal((M, N))
    k = evaluate(Commutation(sympy.Integer(M), sympy.Integer(N)), {})
    np.testing.assert_array_equal(k, commutation(M, N))
    np.testing.assert_allclose(k @ vec_of(a), vec_of(a.T))


def test_product_is_kronecker():
    A, X, B = sym("A", P, M), sym("X", M, N), sym("B", N, Q)
    a, b = rng.standard_normal((P, M)), rng.standard_normal((N, Q))
    rules, j = agrees(Mul((A, Differential(X), B)), X, {"A": a, "B": b},
                      np.kron(b.T, a), lambda dx: a @ dx @ b)
    assert rules == (vec.PRODUCT,) and text(j) == "Bᵀ ⊗ A"


def test_matrix_times_vector_reads_x_transpose_kron_identity():
    W, x = sym("W", M, N), sym("x", N)
    xv = rng.standard_normal((N, 1))
    rules, j = agrees(Mul((Differential(W), x)), W, {"x": xv}, np.kron(xv.T, np.eye(M)),
                      lambda dw: dw @ xv)
    assert text(j) == "xᵀ ⊗ I"


def test_vector_needs_no_vec():
    A, x = sym("A", M, N), sym("x", N)
    a = rng.standard_normal((M, N))
    rules, j = agrees(Mul((A, Differential(x))), x, {"A": a}, a, lambda dx: a @ dx)
    assert rules == (vec.LEFT,) and text(j) == "A"


def test_scalar_factor():
    A, X, alpha = sym("A", P, M), sym("X", M, N), sym("alpha", 1)
    a = rng.standard_normal((P, M))
    agrees(Mul((Number(3), alpha, A, Differential(X))), X, {"A": a, "alpha": 0.5},
           1.5 * np.kron(np.eye(N), a), lambda dx: 1.5 * a @ dx)


def test_scalar_form_times_a_matrix():
    C, a, x = sym("C", M, N), sym("a", Q), sym("x", Q)
    c, av = rng.standard_normal((M, N)), rng.standard_normal((Q, 1))
    rules, _ = agrees(Mul((C, Mul((Transpose(a), Differential(x))))), x, {"C": c, "a": av},
                      vec_of(c) @ av.T, lambda dx: c * (av.T @ dx).item())
    assert vec.SCALAR_FORM in rules


def test_transpose_is_the_commutation_matrix():
    X = sym("X", M, N)
    rules, j = agrees(Transpose(Differential(X)), X, {}, commutation(M, N), lambda dx: dx.T)
    assert rules == (vec.TRANSPOSE,)


def test_transpose_of_a_vector_is_the_vector():
    x = sym("x", N)
    rules, _ = agrees(Transpose(Differential(x)), x, {}, np.eye(N), lambda dx: dx.T)
    assert rules == (vec.VECTOR_T,)


def test_hadamard_is_diag_of_vec():
    C, X = sym("C", M, N), sym("X", M, N)
    c = rng.standard_normal((M, N))
    rules, _ = agrees(Hadamard(C, Differential(X)), X, {"C": c}, np.diag(vec_of(c)[:, 0]),
                      lambda dx: c * dx)
    assert rules == (vec.HADAMARD,)


def test_quotient():
    C, X = sym("C", M, N), sym("X", M, N)
    c = rng.uniform(1, 2, (M, N))
    agrees(HadamardDivide(Differential(X), C), X, {"C": c}, np.diag(1 / vec_of(c)[:, 0]),
           lambda dx: dx / c)


def test_frobenius_is_a_row():
    C, X = sym("C", M, N), sym("X", M, N)
    c = rng.standard_normal((M, N))
    agrees(Frobenius(C, Differential(X)), X, {"C": c}, vec_of(c).T, lambda dx: np.sum(c * dx))


def test_trace_is_vec_identity():
    X = sym("X", M, M)
    agrees(Trace(Differential(X)), X, {}, vec_of(np.eye(M)).T, lambda dx: np.trace(dx))


def test_diag():
    x = sym("x", M)
    expected = np.zeros((M * M, M))
    for i in range(M):
        expected[i + i * M, i] = 1.0
    agrees(Diag(Differential(x)), x, {}, expected, lambda dx: np.diag(dx[:, 0]))


def test_diag_part():
    X = sym("X", M, M)
    expected = np.zeros((M, M * M))
    for i in range(M):
        expected[i, i + i * M] = 1.0
    agrees(DiagPart(Differential(X)), X, {}, expected, lambda dx: np.diag(dx).reshape(-1, 1))


def test_vec_and_unvec_are_the_identity():
    X, x = sym("X", M, N), sym("x", M * N)
    agrees(Vec(Differential(X)), X, {}, np.eye(M * N), vec_of)
    agrees(Unvec(Differential(x), sympy.Integer(M), sympy.Integer(N)), x, {}, np.eye(M * N),
           lambda dx: np.reshape(dx, (M, N), order="F"))


@pytest.mark.parametrize("side", ["left", "right"])
def test_kron(side):
    A, X = sym("A", P, Q), sym("X", M, N)
    a = rng.standard_normal((P, Q))
    if side == "right":
        linear, apply = Kron(A, Differential(X)), (lambda dx: np.kron(a, dx))
    else:
        linear, apply = Kron(Differential(X), A), (lambda dx: np.kron(dx, a))
    x_size = M * N
    expected = np.column_stack([vec_of(apply(np.reshape(np.eye(x_size)[:, i], (M, N), order="F")))[:, 0]
                                for i in range(x_size)])
    agrees(linear, X, {"A": a}, expected, apply)


def test_sum_and_the_gram_matrix():
    X = sym("X", M, N)
    xv = rng.standard_normal((M, N))
    dx = Differential(X)
    linear = Add((Mul((Transpose(dx), X)), Mul((Transpose(X), dx))))
    expected = np.kron(np.eye(N), xv.T) + np.kron(xv.T, np.eye(N)) @ commutation(M, N)
    rules, _ = agrees(linear, X, {"X": xv}, expected, lambda d: d.T @ xv + xv.T @ d)
    assert vec.SUM in rules and vec.TRANSPOSE in rules


def test_inverse_differential():
    X, Y = sym("X", M, M), sym("Y", M, M)
    y = np.linalg.inv(rng.standard_normal((M, M)) + 3 * np.eye(M))
    _, j = agrees(neg(Mul((Y, Differential(X), Y))), X, {"Y": y}, -np.kron(y.T, y),
                  lambda dx: -y @ dx @ y)
    assert text(j) == "−(Yᵀ ⊗ Y)"


def test_other_differentials_are_held_fixed():
    A, X, Z = sym("A", M, M), sym("X", M, N), sym("Z", M, N)
    a = rng.standard_normal((M, M))
    linear = Add((Mul((A, Differential(X))), Differential(Z)))
    agrees(linear, X, {"A": a}, np.kron(np.eye(N), a), lambda dx: a @ dx)
    j, _ = vec.coefficient(Differential(Z), X)
    assert isinstance(j, Zero) and j.shape == (M * N, M * N)


@pytest.mark.parametrize("build", [
    lambda dx: Hadamard(dx, dx),
    lambda dx: Mul((Transpose(dx), dx)),
    lambda dx: Inverse(dx),
    lambda dx: HadamardDivide(Symbol("C", dx.shape), dx),
], ids=["hadamard", "product", "inverse", "denominator"])
def test_not_linear_is_refused(build):
    X = sym("X", M, M)
    with pytest.raises(DeriveError, match="not linear"):
        vec.coefficient(build(Differential(X)), X)


def test_every_row_has_a_test():
    """One row per node kind, and each named in this file."""
    source = open(__file__, encoding="utf-8").read()
    for node in vec.ROWS:
        assert node.__name__ + "(" in source, node.__name__
    assert ONE == 1
