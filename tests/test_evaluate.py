"""The evaluator against direct NumPy, node by node, plus domains and deep trees."""
import numpy as np
import pytest
import sympy

from derive import expr as E
from derive.evaluate import DomainError, concrete_shape, evaluate, forward
from derive.chain import Chain, Definition, Input

m, n = sympy.symbols("m n")
ONE = sympy.Integer(1)
rng = np.random.default_rng(1)

A = E.Symbol("A", (m, n))
B = E.Symbol("B", (m, n))
X = E.Symbol("X", (n, n))
x = E.Symbol("x", (n, ONE))
a = E.Symbol("a", (m, ONE))
al = E.Symbol("alpha", E.SCALAR)
SIZES = {m: 3, n: 4}
V = {
    "A": rng.normal(size=(3, 4)),
    "B": rng.normal(size=(3, 4)),
    "X": np.eye(4) + 0.3 * rng.normal(size=(4, 4)),
    "x": rng.normal(size=(4, 1)),
    "a": rng.normal(size=(3, 1)),
    "alpha": np.array([[0.7]]),
}
Xv, Av, Bv, xv, av = V["X"], V["A"], V["B"], V["x"], V["a"]


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


CASES = [
    (A, Av),
    (E.Number(sympy.Rational(1, 2)), np.array([[0.5]])),
    (E.Zero((m, n)), np.zeros((3, 4))),
    (E.Identity(n), np.eye(4)),
    (E.Ones(m), np.ones((3, 1))),
    (E.Ones(m, n), np.ones((3, 4))),
    (E.Add((A, B, A)), 2 * Av + Bv),
    (E.Mul((A, X, x)), Av @ Xv @ xv),
    (E.Mul((al, A, E.Number(2), x)), 1.4 * Av @ xv),
    (E.Mul((E.Transpose(x), x)), xv.T @ xv),
    (E.Mul((E.Mul((E.Transpose(a), A, x)), a)), (av.T @ Av @ xv) * av),
    (E.Mul((E.Transpose(x), x, A)), (xv.T @ xv) * Av),
    (E.Mul((E.Transpose(a), A, x, E.Transpose(x))), (av.T @ Av @ xv) * xv.T),
    (E.Mul((A, x, E.Transpose(x), x)), Av @ xv @ xv.T @ xv),
    (E.Mul((E.Number(-1), al, E.Transpose(x), x, E.Number(3))), -2.1 * xv.T @ xv),
    (E.Transpose(A), Av.T),
    (E.Inverse(X), np.linalg.inv(Xv)),
    (E.Power(X, 3), Xv @ Xv @ Xv),
    (E.Power(X, 0), np.eye(4)),
    (E.Power(al, -2), np.array([[0.7 ** -2]])),
    (E.Hadamard(A, B), Av * Bv),
    (E.HadamardDivide(A, B), Av / Bv),
    (E.Frobenius(A, B), np.array([[np.trace(Av.T @ Bv)]])),
    (E.Trace(X), np.array([[np.trace(Xv)]])),
    (E.Det(X), np.array([[np.linalg.det(Xv)]])),
    (E.LogDet(E.Mul((X, E.Transpose(X)))), np.array([[np.log(np.linalg.det(Xv @ Xv.T))]])),
    (E.Apply("exp", A), np.exp(Av)),
    (E.Apply("sigma", A), sigmoid(Av)),
    (E.Apply("tanh", A), np.tanh(Av)),
    (E.Apply("log", E.Hadamard(A, A)), np.log(Av * Av)),
    (E.Diag(x), np.diagflat(xv)),
    (E.DiagPart(X), np.diag(Xv).reshape(-1, 1)),
]


@pytest.mark.parametrize("node,expected", CASES, ids=lambda c: type(c).__name__)
def test_node_against_numpy(node, expected):
    got = evaluate(node, V, sizes=SIZES)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


DIAG_CASES = [
    # diagonal matrices are kept as vectors inside; results must match dense algebra
    E.Mul((E.Add((E.Diag(x), E.Mul((E.Number(-1), E.Power(E.Diag(x), 2))))), X, x)),
    E.Mul((X, E.Diag(x), E.Diag(x), x)),
    E.Mul((E.Transpose(x), E.Diag(x))),
    E.Add((E.Diag(x), X, E.Identity(n))),
    E.Inverse(E.Add((E.Diag(x), E.Identity(n)))),
    E.Hadamard(E.Diag(x), X),
    E.Frobenius(E.Diag(x), X),
    E.Trace(E.Diag(x)),
    E.Det(E.Diag(x)),
    E.LogDet(E.Power(E.Diag(x), 2)),
    E.DiagPart(E.Mul((E.Diag(x), E.Identity(n)))),
    E.Apply("exp", E.Diag(x)),
]


def _dense_reference(node):
    """The same tree with every Diag/Identity spelled out as a dense input."""
    values = dict(V)
    values["Dx"] = np.diagflat(xv)
    values["I4"] = np.eye(4)
    dx, eye = E.Symbol("Dx", (n, n)), E.Symbol("I4", (n, n))

    def swap(e):
        if isinstance(e, E.Diag):
            return dx
        if isinstance(e, E.Identity):
            return eye
        return e.rebuild([swap(c) for c in e.children]) if e.children else e

    return evaluate(swap(node), values)


@pytest.mark.parametrize("node", DIAG_CASES, ids=lambda c: type(c).__name__)
def test_diagonal_shortcuts_match_dense(node):
    np.testing.assert_allclose(evaluate(node, V, sizes=SIZES), _dense_reference(node),
                               rtol=1e-10, atol=1e-12)


def test_differentials_default_to_zero():
    line = E.Add((E.Mul((E.Differential(A), x)), E.Mul((A, E.Differential(x)))))
    dA = rng.normal(size=(3, 4))
    np.testing.assert_allclose(evaluate(line, V, {"A": dA}), dA @ xv)
    dx = rng.normal(size=(4, 1))
    np.testing.assert_allclose(evaluate(line, V, {"A": dA, "x": dx}), dA @ xv + Av @ dx)


def test_sizes_inferred_from_arrays_when_not_given():
    got = evaluate(E.Add((x, E.Ones(n))), V)
    np.testing.assert_allclose(got, xv + 1)


def test_vectors_and_scalars_accepted_in_any_layout():
    values = {"x": xv[:, 0], "alpha": 0.7}
    got = evaluate(E.Mul((al, x)), values)
    assert got.shape == (4, 1)
    np.testing.assert_allclose(got, 0.7 * xv)


def test_concrete_shape():
    assert concrete_shape((m, n + 1), {m: 2, "n": 3}) == (2, 4)
    with pytest.raises(ValueError):
        concrete_shape((m, n), {m: 2})


@pytest.mark.parametrize("node,values,function", [
    (E.Apply("log", x), {"x": np.array([[1.0], [-1.0]])}, "log"),
    (E.LogDet(X), {"X": -np.eye(3)}, "log det"),
    (E.Inverse(X), {"X": np.ones((3, 3))}, "inverse"),
    (E.Inverse(X), {"X": np.diag([1.0, 1e-14])}, "inverse"),
    (E.HadamardDivide(x, x), {"x": np.array([[1.0], [0.0]])}, "elementwise division"),
    (E.Power(al, -1), {"alpha": 0.0}, "power"),
    (E.Apply("exp", x), {"x": np.array([[1e4]])}, "exp"),
])
def test_domain_errors(node, values, function):
    with pytest.raises(DomainError) as info:
        evaluate(node, values)
    assert info.value.function == function


def test_domain_error_names_the_argument():
    with pytest.raises(DomainError) as info:
        evaluate(E.Apply("log", x), {"x": -np.ones((2, 1))})
    assert info.value.arg == x
    assert "positive" in str(info.value)


def test_twenty_thousand_term_sum_without_recursion():
    terms = tuple(E.Mul((E.Number(k), x)) for k in range(20000))
    got = evaluate(E.Add(terms), V)
    np.testing.assert_allclose(got, sum(range(20000)) * xv)


def test_deep_tree_without_recursion():
    deep = x
    for _ in range(5000):
        deep = E.Transpose(deep)
    assert evaluate(deep, V).shape == (4, 1)


def test_forward_computes_every_definition_in_order():
    W = E.Symbol("W", (m, n))
    v, s, e = E.Symbol("v", (m, ONE)), E.Symbol("s", (m, ONE)), E.Symbol("E")
    chain = Chain(
        inputs=(Input(W, True, 1), Input(x, True, 2)),
        definitions=(Definition(v, E.Mul((W, x)), 3),
                     Definition(s, E.Apply("sigma", v), 4),
                     Definition(e, E.Frobenius(s, s), 5)),
        wrt=(W,),
    )
    out = forward(chain, {"W": Av, "x": xv[:, 0]}, SIZES)
    sv = sigmoid(Av @ xv)
    np.testing.assert_allclose(out["s"], sv)
    np.testing.assert_allclose(out["E"], sv.T @ sv)


def test_forward_error_carries_the_definition():
    y = E.Symbol("y", (n, ONE))
    bad = Definition(y, E.Apply("log", x), 7)
    chain = Chain(inputs=(Input(x, True, 1),), definitions=(bad,), wrt=(x,))
    with pytest.raises(DomainError) as info:
        forward(chain, {"x": -np.ones(3)})
    assert info.value.definition is bad
