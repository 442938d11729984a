"""The function vocabulary, powers, sum and unspecified functions, end to end.

Each function is derived inside a chain, checked by derive, and its gradient compared with
a closed form written here in NumPy (independent of derive's tables); the readings of the
input language (``tr (A)``, ``f_1 (x_1)``, ``f_1'(x_1)``, ``W (x + y)``) are pinned down.
"""
import dataclasses

import numpy as np
import pytest
import sympy
from test_rules import assert_differential_matches

from derive import expr as E
from derive import functions, rules
from derive.api import derive
from derive.evaluate import evaluate, forward
from derive.functions import ELEMENTWISE, stand_in
from derive.numpy_code import to_numpy
from derive.parse import _postfix_kind, parse_chain
from derive.printer import latex, text

rng = np.random.default_rng(7)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


# name -> (scale c in E = sum(name(c W x)), f′ as NumPy)
DERIVATIVES = {
    "exp": (1, np.exp), "log": (1, lambda z: 1 / z), "sigma": (1, lambda z: sigmoid(z) * (1 - sigmoid(z))),
    "tanh": (1, lambda z: 1 - np.tanh(z) ** 2), "sqrt": (1, lambda z: 0.5 / np.sqrt(z)),
    "softplus": (1, sigmoid), "sin": (1, np.cos), "cos": (1, lambda z: -np.sin(z)),
    "tan": (0.2, lambda z: 1 / np.cos(z) ** 2), "arcsin": (0.1, lambda z: 1 / np.sqrt(1 - z * z)),
    "arccos": (0.1, lambda z: -1 / np.sqrt(1 - z * z)), "arctan": (1, lambda z: 1 / (1 + z * z)),
    "sinh": (1, np.cosh), "cosh": (1, np.sinh), "log1p": (0.1, lambda z: 1 / (1 + z)),
    "abs": (1, np.sign), "relu": (1, lambda z: (z > 0).astype(float)),
    "sign": (1, lambda z: 0 * z), "step": (1, lambda z: 0 * z),
}
POSITIVE = {"log", "sqrt"}


def test_every_function_has_a_closed_form_here():
    assert set(DERIVATIVES) == set(ELEMENTWISE)


def gradient_values(derivation, point):
    values = forward(derivation.chain, point)
    return {g.wrt.name: evaluate(g.expr, values) for g in derivation.gradients}


@pytest.mark.parametrize("name", sorted(DERIVATIVES))
def test_function_gradient_against_its_closed_form(name):
    """E = sum(f(c W x)) ⟹ ∂E/∂W = c f′(c W x) xᵀ, checked by derive and against NumPy."""
    c, derivative = DERIVATIVES[name]
    declared = "W : 3x4 positive\nx : 4 positive" if name in POSITIVE else "W : 3x4\nx : 4"
    scale = "" if c == 1 else f"{c} "
    derivation = derive(f"{declared}\nE = sum({name}({scale}W x))\nwrt W")
    assert derivation.check.ok, derivation.check.failures
    W, x = rng.normal(size=(3, 4)), rng.normal(size=(4, 1))
    if name in POSITIVE:
        W, x = np.abs(W) + 0.1, np.abs(x) + 0.1
    want = c * derivative(c * W @ x) @ x.T
    got = gradient_values(derivation, {"W": W, "x": x})["W"]
    assert np.allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(n for n, f in ELEMENTWISE.items() if f.kink is not None))
def test_a_kink_is_stated(name):
    derivation = derive(f"x : 4\nE = sum({name}(x) ∘ x)\nwrt x")
    assert derivation.check.ok
    assert any(f"{name} " in w and "0.0001 (relative) away from 0" in w for w in derivation.warnings)


def test_sin_of_a_layer_in_every_output():
    derivation = derive("W : 3x4\nx : 4\nE = sum(sin(W x))\nwrt W")
    assert latex(derivation.gradients[0].expr) == r"\cos(Wx)x^T"
    assert text(derivation.gradients[0].expr) == "cos(W x)xᵀ"
    namespace = {}
    exec(compile(to_numpy(derivation), "<derive numpy>", "exec"), namespace)
    W, x = rng.normal(size=(3, 4)), rng.normal(size=(4,))
    assert np.allclose(namespace["gradient"](W=W, x=x)["W"], np.outer(np.cos(W @ x), x))


def test_scalar_arguments():
    """g(aᵀx) + h(‖Ax‖²): unspecified functions of scalars, ordinary products."""
    derivation = derive("a : 3\nA : 4x3\nx : 3\nE = g(a'x) + h((A x)'(A x))\nwrt x")
    assert derivation.check.ok
    a, A, x = rng.normal(size=(3, 1)), rng.normal(size=(4, 3)), rng.normal(size=(3, 1))
    g1, h1 = stand_in("g", 1), stand_in("h", 1)
    want = g1(a.T @ x) * a + h1((A @ x).T @ (A @ x)) * 2 * A.T @ A @ x
    assert np.allclose(gradient_values(derivation, {"a": a, "A": A, "x": x})["x"], want)


# ---------------------------------------------------------------- readings


def definition(text_, index=-1):
    return parse_chain(text_).definitions[index].expr


def test_a_function_name_before_a_bracket_is_a_call():
    assert definition("A : 3x3\nE = tr (A)\nwrt A") == definition("A : 3x3\nE = tr(A)\nwrt A")
    assert definition("A : 3x3\nE = Tr(A) + trace(A)\nwrt A") == \
        definition("A : 3x3\nE = tr(A) + tr(A)\nwrt A")


def test_a_variable_before_a_bracket_is_a_product():
    expr = definition("W : 3x3\nx : 3\ny : 3\nv = W (x + y)\nE = v'v\nwrt W", 0)
    assert isinstance(expr, E.Mul)


def test_unspecified_function_with_and_without_space():
    for written in ("f_1(x_1)", "f_1 (x_1)"):
        expr = definition(f"x_1 : 3\nx_2 = {written}\nE = x_2'x_2\nwrt x_1", 0)
        assert expr == E.Unspecified("f_1", parse_chain("x_1 : 3\nE = x_1'x_1\nwrt x_1").wrt[0])


def test_a_prime_on_a_function_is_its_derivative():
    for written in ("f_1'(x_1)", "f_1′(x_1)", "f_1' (x_1)"):
        expr = definition(f"x_1 : 3\nE = 1'{written}\nwrt x_1")
        assert E.Unspecified("f_1", expr.factors[-1].arg, 1) == expr.factors[-1]
    assert definition("x : 3\nE = 1'f''(x)\nwrt x").factors[-1].order == 2


def test_a_prime_on_a_declared_vector_is_a_transpose():
    expr = definition("f : 3\nx : 3\nE = f'(x)\nwrt x")
    assert isinstance(expr, E.Mul) and isinstance(expr.factors[0], E.Transpose)


def test_declared_function():
    chain = parse_chain("x : 3\ns_2 : 3\nF : function\nE = sum(F(x)) + s_2'x\nwrt x")
    assert any(isinstance(n, E.Unspecified) and n.name == "F" for n in E.walk(chain.objective.expr))
    assert [i.symbol.name for i in chain.inputs] == ["x", "s_2"]


def test_the_output_names_the_unspecified_function_and_its_stand_in():
    derivation = derive("x_1 : 3\nx_2 = f_1(x_1)\nE = x_2'x_2\nwrt x_1")
    assert derivation.check.ok
    assert any("f_1 is an unspecified elementwise function" in w and "f_1 was checked as u ↦ sin("
               in w for w in derivation.warnings)
    assert text(derivation.definitions[0].differential) == "f_1′(x_1) ∘ dx_1"
    assert latex(derivation.definitions[0].differential) == r"f_{1}'(x_{1})\circ dx_{1}"


def test_stand_ins_differ_per_name_and_from_their_derivative():
    u = np.linspace(-3, 3, 61)
    values = {name: stand_in(name, 0)(u) for name in ("f", "g", "h", "f_1", "f_2")}
    assert len({round(float(v[7]), 9) for v in values.values()}) == len(values)
    for name in values:
        f, f1, f2 = (stand_in(name, k) for k in range(3))
        assert not np.allclose(f(u), f1(u)) and np.ptp(f1(u)) > 1
        h = 1e-6
        assert np.allclose((f(u + h) - f(u - h)) / (2 * h), f1(u), atol=1e-8)
        assert np.allclose((f1(u + h) - f1(u - h)) / (2 * h), f2(u), atol=1e-8)


def test_confusing_f_with_its_derivative_is_caught(monkeypatch):
    """A rule writing f(u) where f′(u) belongs cannot pass the check: the stand-in's
    derivative is not the stand-in."""
    wrong = (rules.DIFFERENTIALS[E.Unspecified][0],
             lambda e, d, ans: E.Hadamard(E.Unspecified(e.name, e.arg, e.order), d(e.arg)))
    monkeypatch.setitem(rules.DIFFERENTIALS, E.Unspecified, wrong)
    derivation = derive("x_1 : 3\nx_2 = f_1(x_1)\nE = x_2'x_2\nwrt x_1")
    assert not derivation.check.ok


def test_a_corrupted_sin_is_caught(monkeypatch):
    sin = ELEMENTWISE["sin"]
    monkeypatch.setitem(functions.ELEMENTWISE, "sin", dataclasses.replace(
        sin, differential=lambda u, y, du: E.Hadamard(E.Apply("sin", u), du)))
    assert not derive("x : 3\nE = sum(sin(x))\nwrt x").check.ok


def test_numpy_module_takes_the_functions_by_keyword():
    derivation = derive("x_1 : 3\nW : 3x3\nx_2 = f_1(W x_1)\nE = sum(g(x_2))\nwrt W")
    source = to_numpy(derivation)
    assert "def objective(*, f_1, g, x_1, W)" in source
    assert "def gradient(*, f_1, f_1_prime, g, g_prime, x_1, W)" in source
    namespace = {}
    exec(compile(source, "<derive numpy>", "exec"), namespace)
    W, x = rng.normal(size=(3, 3)), rng.normal(size=(3, 1))
    fs = {"f_1": np.tanh, "g": np.sin}
    got = namespace["gradient"](**fs, f_1_prime=lambda z: 1 - np.tanh(z) ** 2, g_prime=np.cos,
                                x_1=x, W=W)["W"]
    want = (np.cos(np.tanh(W @ x)) * (1 - np.tanh(W @ x) ** 2)) @ x.T
    assert np.allclose(got, want)
    h, D = 1e-6, rng.normal(size=(3, 3))
    numeric = (namespace["objective"](**fs, x_1=x, W=W + h * D)
               - namespace["objective"](**fs, x_1=x, W=W - h * D)) / (2 * h)
    assert np.isclose(numeric, np.sum(got * D), rtol=1e-6)


def test_user_defined_diag_of_a_derivative():
    """``F = Diag(f_1′(x_1))`` is notation, as ``S = Diag(s)`` is: ``dx_2 = F dx_1``."""
    derivation = derive("x_1 : 3\nx_2 = f_1(x_1)\nF = Diag(f_1'(x_1))\nE = x_2'x_2\nwrt x_1")
    assert derivation.check.ok
    alias = derivation.definitions[1]
    assert alias.is_alias and text(alias.differential) == "F dx_1"
    assert text(derivation.gradients[0].expr) == "2F x_2"


# ---------------------------------------------------------------- sum


def test_sum_of_entries():
    assert text(definition("x : 3\nE = sum(x)\nwrt x")) == "1ᵀ x"
    assert text(definition("X : 3x4\nE = sum(X)\nwrt X")) == "1 : X"
    derivation = derive("X : 3x4\nE = sum(X ∘ X)\nwrt X")
    assert derivation.check.ok
    X = rng.normal(size=(3, 4))
    assert np.allclose(gradient_values(derivation, {"X": X})["X"], 2 * X)


# ---------------------------------------------------------------- powers


@pytest.mark.parametrize("token, kind", [
    ("^{1/2}", sympy.Rational(1, 2)), ("^{-1/3}", sympy.Rational(-1, 3)), ("^{0.5}", sympy.Rational(1, 2)),
    ("^0.5", sympy.Rational(1, 2)), (".^{1/2}", ("elementwise", sympy.Rational(1, 2))),
    (".^0.5", ("elementwise", sympy.Rational(1, 2))), ("^{∘1/2}", ("elementwise", sympy.Rational(1, 2))),
    (".^{-1}", ("elementwise", -1)), ("^{4/2}", 2), ("^2", 2), ("′", "T"), ("^{1/0}", None),
])
def test_postfix_exponents(token, kind):
    assert _postfix_kind(token) == kind
    if isinstance(kind, int):
        assert type(kind) is int


POWERS = {   # chain -> ∂E/∂x as NumPy, for x, y positive
    "E = (x'y)^{1/3}": lambda x, y: (x.T @ y) ** (-2 / 3) / 3 * y,
    "E = (x'x)^0.5": lambda x, y: x / np.sqrt(x.T @ x),
    "E = sum(x.^{1/2})": lambda x, y: 0.5 * x ** -0.5,
    "E = sum(x.^0.5 ∘ y)": lambda x, y: 0.5 * x ** -0.5 * y,
    "E = 1'x.^{-1}": lambda x, y: -x ** -2.0,
    "E = y'x^{∘1/2}": lambda x, y: 0.5 * x ** -0.5 * y,
    "E = (y'x)^{-1/3}": lambda x, y: -(y.T @ x) ** (-4 / 3) / 3 * y,
}


@pytest.mark.parametrize("line", list(POWERS))
def test_rational_powers_against_closed_forms(line):
    derivation = derive(f"x : 3 positive\ny : 3 positive\n{line}\nwrt x")
    assert derivation.check.ok
    x, y = np.abs(rng.normal(size=(3, 1))) + 0.2, np.abs(rng.normal(size=(3, 1))) + 0.2
    got = gradient_values(derivation, {"x": x, "y": y})["x"]
    assert np.allclose(got, POWERS[line](x, y), rtol=1e-10)


def test_scalar_powers_of_scalars():
    derivation = derive("a : 3\nX : 3x3\nb : 3\nα : scalar positive\n"
                        "E = (a'X b)^{-1} + α^{3/2}\nwrt X, α")
    assert derivation.check.ok
    a, b, X = rng.normal(size=(3, 1)), rng.normal(size=(3, 1)), rng.normal(size=(3, 3))
    values = gradient_values(derivation, {"a": a, "b": b, "X": X, "α": np.array([[1.7]])})
    assert np.allclose(values["X"], -(a @ b.T) / (a.T @ X @ b).item() ** 2)
    assert np.allclose(values["α"], 1.5 * 1.7 ** 0.5)
    assert latex(derivation.chain.objective.expr) == r"(a^TXb)^{-1} + \alpha^{3/2}"


def test_exponents_are_exact():
    expr = definition("x : 3\nE = (x'x)^{1/3}\nwrt x")
    assert expr.exponent == sympy.Rational(1, 3) and isinstance(expr.exponent, sympy.Rational)
    square = definition("X : 3x3\nE = tr(X^{4/2})\nwrt X")
    assert type(square.arg.exponent) is int


def test_rational_power_rules_numerically():
    p = E.Symbol("p", (sympy.Integer(3), E.ONE), frozenset({"positive"}))
    P = E.Symbol("P", (sympy.Integer(3), sympy.Integer(4)), frozenset({"positive"}))
    assert_differential_matches(E.Mul((E.Power(E.Mul((E.Transpose(p), p)), sympy.Rational(1, 3)), P)),
                                "scalar rational power")
    assert_differential_matches(E.ElementPower(P, sympy.Rational(-3, 2)), "elementwise rational power")


def test_the_exponent_limit_holds_for_fractions():
    with pytest.raises(Exception, match="exponent too large"):
        parse_chain("x : 3\nE = (x'x)^{1001/2}\nwrt x")


def test_a_point_at_a_kink_is_redrawn_like_one_outside_a_domain(monkeypatch):
    """With every point too close to the kink the check gives up, naming the function:
    the same path as the log of a negative entry."""
    from derive import evaluate as evaluate_module
    from derive.errors import DeriveError
    monkeypatch.setattr(evaluate_module, "KINK_MARGIN", 100.0)
    with pytest.raises(DeriveError, match="relu on line 2 needs entries away from its kink at 0"):
        derive("x : 3\nE = sum(relu(x))\nwrt x")


def test_a_comment_applies_no_function():
    """``# f(x) …`` in a comment does not make f a function: f stays the declared vector."""
    chain = parse_chain("# f(x) is the loss\nf : 3\nE = f'f\nwrt f")
    assert chain.input_named("f").symbol.shape == (3, 1)
