"""The exact check: one row per node kind agrees with integer arithmetic done apart from
derive; identities are decided modulo P, non-rational lines are refused."""
import dataclasses

import numpy as np
import pytest
import sympy

from derive import exact
from derive import expr as E
from derive.api import derive
from derive.check import check
from derive.exact import P, NotRational, Sizes, value

n = sympy.Symbol("n")
SIZES = Sizes({n: 3}, set(), shrink=True)


def sym(name, rows=n, cols=n, props=()):
    return E.Symbol(name, (rows, cols), props=frozenset(props))


A, B, x = sym("A"), sym("B"), sym("x", n, sympy.Integer(1))
rng = np.random.default_rng(4)
INTS = {"A": rng.integers(-5, 6, size=(3, 3)), "B": rng.integers(-5, 6, size=(3, 3)),
        "x": rng.integers(-5, 6, size=(3, 1))}
ENV = {k: np.array([[int(v) % P for v in row] for row in a], dtype=object) for k, a in INTS.items()}


def modp(array):
    return np.array([[int(round(v)) % P for v in row] for row in np.atleast_2d(array)], dtype=object)


CASES = {   # node → the same value in plain NumPy (integer entries: floats are exact here)
    "sum": (E.Add((A, B)), lambda v: v["A"] + v["B"]),
    "product": (E.Mul((A, B, x)), lambda v: v["A"] @ v["B"] @ v["x"]),
    "scalar product": (E.Mul((E.Transpose(x), x, A)), lambda v: (v["x"].T @ v["x"]) * v["A"]),
    "transpose": (E.Transpose(A), lambda v: v["A"].T),
    "hadamard": (E.Hadamard(A, B), lambda v: v["A"] * v["B"]),
    "frobenius": (E.Frobenius(A, B), lambda v: np.sum(v["A"] * v["B"])),
    "trace": (E.Trace(A), lambda v: np.trace(v["A"])),
    "det": (E.Det(A), lambda v: np.linalg.det(v["A"])),
    "power": (E.Power(A, 3), lambda v: v["A"] @ v["A"] @ v["A"]),
    "diag": (E.Diag(x), lambda v: np.diagflat(v["x"])),
    "diag part": (E.DiagPart(A), lambda v: np.diag(v["A"]).reshape(-1, 1)),
    "vec": (E.Vec(A), lambda v: v["A"].reshape(-1, 1, order="F")),
    "kron": (E.Kron(A, x), lambda v: np.kron(v["A"], v["x"])),
    "element power": (E.ElementPower(A, 2), lambda v: v["A"] ** 2),
    "number": (E.Mul((E.Number(sympy.Integer(7)), A)), lambda v: 7 * v["A"]),
}


@pytest.mark.parametrize("case", CASES)
def test_each_row_agrees_with_integer_arithmetic(case):
    node, plain = CASES[case]
    assert np.array_equal(value(node, ENV, {}, SIZES), modp(plain(INTS)))


def test_inverse_and_division_modulo_p():
    inverse = value(E.Inverse(A), ENV, {}, SIZES)
    assert np.array_equal(ENV["A"].dot(inverse) % P, np.eye(3, dtype=int).astype(object))
    half = value(E.Mul((E.Number(sympy.Rational(1, 2)), x)), ENV, {}, SIZES)
    assert np.array_equal((2 * half) % P, ENV["x"])
    quotient = value(E.HadamardDivide(A, B), ENV, {}, SIZES)
    if np.all(INTS["B"] != 0):
        assert np.array_equal(quotient * ENV["B"] % P, ENV["A"])


@pytest.mark.parametrize("node", [E.Apply("exp", A), E.LogDet(A), E.Norm(A),
                                  E.Power(E.Trace(A), sympy.Rational(1, 3)),
                                  E.Unspecified("f", x, 0)])
def test_non_rational_nodes_are_refused(node):
    with pytest.raises(NotRational):
        value(node, ENV, {}, SIZES)
    assert not exact.rational(node)


def test_every_node_kind_has_a_row_or_is_a_leaf():
    kinds = {c for c in vars(E).values() if isinstance(c, type) and issubclass(c, E.Expr)
             and c not in (E.Expr, E.Unary)}
    leaves = {E.Symbol, E.Differential, E.Adjoint, E.Number, E.Zero, E.Identity, E.Ones,
              E.Commutation, E.Unvec}
    assert kinds - leaves - set(exact.ROWS) == set()


def test_identity_lines_of_the_seed_are_exact_and_a_wrong_one_is_not():
    derivation = derive("W : 5x4\nx : 4\ny : 5\nv = W x\ns = sigma(v)\nS = Diag(s)\n"
                        "E = 1/2 (s - y):(s - y)\nwrt W\n")
    found = exact.identity_lines(derivation, 0, derivation.check.sizes)
    assert found == {("substitution", i): True for i in range(4)}
    assert [v.exact for v in derivation.check.verdicts if v.block == "substitution"] == [True] * 4
    subs = list(derivation.substitutions)
    wrong = subs[2].expr
    # (S − S²)(s − y) : dW x with the coefficient scaled by 1 + 10⁻¹²: the floats cannot tell
    scaled = E.Frobenius(E.Mul((E.Number(1 + sympy.Rational(1, 10 ** 12)), wrong.left)),
                         wrong.right)
    subs[2] = dataclasses.replace(subs[2], expr=scaled)
    broken = dataclasses.replace(derivation, substitutions=tuple(subs))
    assert exact.identity_lines(broken, 0, derivation.check.sizes)[("substitution", 2)] is False
    verdict = check(broken).verdicts[6]
    assert not verdict.exact and "exact check modulo a prime disagrees" in verdict.note


def test_large_literal_sizes_are_checked_small():
    derivation = derive("W : 2000x2000\nx : 2000\ny : 2000\nv = W x\ns = sigma(v)\nS = Diag(s)\n"
                        "E = 1/2 (s - y):(s - y)\nwrt W\n", check=False)
    found = exact.identity_lines(derivation, 0, {})
    assert found and all(found.values())


def test_identities_that_underflow_are_verified_exactly():
    """σ(x − 800·1) = 0: the floats compare 0 with 0 (not checked); exactly, the lines hold."""
    result = derive("x : 4\ny : 4\ns = sigma(x - 800 * 1)\nE = 1/2 (s - y):(s - y)\nwrt x\n").check
    steps = [v for v in result.verdicts if v.block in ("substitution", "step")]
    assert steps and all(v.exact and v.verified for v in steps)


def test_the_verdict_says_which_lines_were_exact():
    derivation = derive("W : 5x4\nx : 4\ny : 5\nv = W x\ns = sigma(v)\nE = 1/2 (s - y):(s - y)\n"
                        "wrt W\n")
    assert "also exactly (in exact arithmetic at a random point modulo the prime " \
        f"{P})" in derivation.to_markdown()
    import json
    data = json.loads(derivation.to_json())["check"]
    assert data["exact_prime"] == P and data["exact_lines"] == 4
    assert [v["exact"] for v in data["verdicts"]] == [False] * 3 + [True] * 4 + [False]
