"""The displayed gradient in a form a person writes: each factorisation printed, and
numerically equal to the sum it came from."""
import numpy as np
import pytest
import sympy

from derive import expr as E
from derive.api import derive
from derive.evaluate import evaluate
from derive.printer import latex
from derive.simplify import factor, simplify

n = sympy.Integer(3)
A, B, X = (E.Symbol(name, (n, n)) for name in "ABX")
x, y, p = (E.Symbol(name, (n, E.ONE)) for name in "xyp")
lam = E.Symbol("lambda")
ONES = E.Ones(n)


def T(e):
    return E.Transpose(e)


def minus(e):
    return E.Mul((E.Number(-1), e))


def values(seed=0):
    rng = np.random.default_rng(seed)
    out = {s.name: rng.standard_normal((3, 3)) for s in (A, B, X)}
    out.update({s.name: rng.standard_normal((3, 1)) for s in (x, y)})
    out["p"] = rng.uniform(0.1, 0.9, (3, 1))         # a probability: p and 1 − p nonzero
    out["lambda"] = 0.7
    return out


CASES = [
    ("common right factor",
     E.Add((E.Mul((A, x)), E.Mul((T(A), x)))), "(A + A^T)x"),
    ("common left factor",
     E.Add((E.Mul((T(X), A)), E.Mul((T(X), B)))), "X^T(A + B)"),
    ("both sides",
     E.Add((E.Mul((T(X), A, x)), E.Mul((T(X), B, x)))), "X^T(A + B)x"),
    ("a scalar multiple becomes λI",
     E.Add((E.Mul((A, x)), E.Mul((lam, x)))), r"(A + \lambda I)x"),
    ("only the terms that share the factor",
     E.Add((E.Mul((A, x)), y, E.Mul((E.Number(2), B, x)))), "(A + 2B)x + y"),
    ("a common number only when shorter",
     E.Add((E.Mul((E.Number(2), X)), E.Mul((E.Number(2), A)), E.Mul((E.Number(2), B)),
            E.Mul((E.Number(2), T(A))))), "2(X + A + B + A^T)"),
    ("a common number kept when not shorter",
     E.Add((E.Mul((E.Number(2), X)), E.Mul((E.Number(2), A)))), "2X + 2A"),
    ("a common scalar and number up to sign",
     E.Add((E.Mul((E.Number(3), E.Power(lam, -1), A, x)),
            E.Mul((E.Number(-3), E.Power(lam, -2), B, x)))),
     r"\frac{3(A - \frac{B}{\lambda})x}{\lambda}"),
    ("a negated difference turns round",
     minus(E.Add((x, minus(y)))), "y - x"),
    ("the inverse of a square product spreads and cancels",
     E.Mul((T(A), T(E.Inverse(E.Mul((A, X, B)))), T(B))), "X^{-T}"),
    ("a dot product with a quotient by the same vector",
     E.Mul((A, p, T(p), E.HadamardDivide(y, p))), r"Ap\mathbf{1}^Ty"),
    ("logistic loss: the fraction cancels",
     E.Hadamard(E.Add((minus(E.HadamardDivide(y, p)),
                       E.HadamardDivide(E.Add((ONES, minus(y))), E.Add((ONES, minus(p)))))),
                E.Add((p, minus(E.Hadamard(p, p))))), "p - y"),
    ("a Hadamard factor that divides",
     E.Hadamard(E.HadamardDivide(x, p), E.Add((p, minus(E.Hadamard(p, p))))),
     r"x - x\circ p"),
]


@pytest.mark.parametrize("name, before, shown", CASES, ids=[c[0] for c in CASES])
def test_factorisation_prints_and_is_equal(name, before, shown):
    before = simplify(before)
    after = factor(before)
    assert latex(after) == shown
    v = values()
    np.testing.assert_allclose(evaluate(after, v), evaluate(before, v), rtol=1e-12, atol=1e-12)


def test_nothing_to_factor_is_left_alone():
    e = simplify(E.Add((E.Mul((A, x)), E.Mul((B, y)))))
    assert factor(e) == e
    e = simplify(E.HadamardDivide(x, E.Add((p, y))))
    assert factor(e) == e
    C = E.Symbol("C", (n, sympy.Integer(2)))
    e = simplify(E.Mul((T(C), E.Inverse(E.Mul((C, T(C)))))))     # C not square: no spreading
    assert factor(e) == e


GRADIENTS = [
    ("x : 4\nA : 4x4\nE = x' A x\nwrt x", "(A + A^T)x"),
    ("X : 6x3\nw : 3\ny : 6\np = sigma(X w)\nE = -(y:log(p) + (1 - y):log(1 - p))\nwrt w",
     "X^T(p - y)"),
    ("X : 4x3\nA : 4x4\nB : 4x4\nE = tr(X' A X) + tr(X' B X)\nwrt X", "(A + A^T + B + B^T)X"),
    ("A : 4x4\nX : 4x4\nB : 4x4\nE = det(A X B)\nwrt X", "EX^{-T}"),
    ("A : 3x4\nX : 4x4\nB : 4x3\nE = det(A X B)\nwrt X", "EA^T(AXB)^{-T}B^T"),
    ("W : 4x3\nx : 3\ny : 4\np = softmax(W x)\nE = -y:log(p)\nwrt W", None),
    ("X : 3x2\nA : 3x3\nB : 2x2\nE = vec(X)' kron(B, A) vec(X)\nwrt X", "AXB^T + A^TXB"),
    ("A : 4x3\nX : 3x2\nB : 2x5\nc : 20\nr = kron(B', A) vec(X) - c\nE = r:r\nwrt X",
     r"2A^T\mathrm{unvec}(r)B^T"),
]


@pytest.mark.parametrize("chain, shown", GRADIENTS)
def test_gradients_are_factored_and_verified(chain, shown):
    d = derive(chain)
    assert d.check.ok
    if shown is not None:
        assert latex(d.gradients[0].expr) == shown


def test_whole_powers_of_one_scalar_merge_anywhere_in_a_product():
    """``‖x‖⁻²‖x‖⁻¹`` is ``‖x‖⁻³``, ``a·x·a⁻¹`` is ``x`` (scalars commute), and each
    simplified product keeps its value."""
    norm = E.Norm(x)
    xy = E.Mul((T(x), y))
    cases = [E.Mul((E.Power(norm, -2), E.Power(norm, -1), x)),
             E.Mul((xy, x, E.Power(xy, -1))),
             E.Mul((xy, A, xy, x))]
    wanted = [E.Mul((E.Power(norm, -3), x)), x, E.Mul((E.Power(xy, 2), A, x))]
    point = values()
    for case, want in zip(cases, wanted):
        got = simplify(case)
        assert got == want
        assert np.allclose(evaluate(got, point), evaluate(case, point))


def test_the_jacobian_of_a_normalised_vector_reads_with_the_cube_of_the_norm():
    derivation = derive("x : 4\ny = x / norm(x)\njacobian y wrt x\n")
    shown = latex(derivation.jacobians[0].matrix)
    assert r"\|x\|^3" in shown and r"\|x\|^2" not in shown
    v = np.array([[1.0], [2.0], [-2.0], [4.0]])
    r = np.linalg.norm(v)
    closed = np.eye(4) / r - v @ v.T / r ** 3
    assert np.allclose(evaluate(derivation.jacobians[0].matrix, {"x": v}), closed), shown
