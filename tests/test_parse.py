"""The parser: the input language of DESIGN.md, shapes by unification, located errors."""
import random

import pytest
import sympy

from derive.errors import DeriveError
from derive.limits import Limits, applied
from derive.expr import (Add, Apply, Det, Diag, DiagPart, ElementPower, Frobenius, Hadamard, HadamardDivide,
                         Identity, Inverse, LogDet, LogSumExp, Mul, Norm, Number, Ones, Power,
                         Softmax, SoftmaxRows, Symbol, Trace, Transpose, Vec, Kron)
from derive.parse import RESERVED, parse_chain

m, n = sympy.symbols("m n")

BACKPROP = """\
# title: One logistic layer, squared error
W : 5x4
x : 4
y : 5
v = W x
s = sigma(v)
S = Diag(s)
E = 1/2 (s - y):(s - y)
wrt W
"""


def rhs(text, name=None, **kwargs):
    """The right-hand side of the objective (or of ``name``) in ``text``."""
    chain = parse_chain(text, **kwargs)
    if name is None:
        return chain.objective.expr
    return next(d.expr for d in chain.definitions if d.symbol.name == name)


def sym(name, rows=1, cols=1):
    return Symbol(name, (sympy.sympify(rows), sympy.sympify(cols)))


def neg(x):
    return Mul((Number(-1), x))


def error_of(text, **kwargs) -> DeriveError:
    with pytest.raises(DeriveError) as info:
        parse_chain(text, **kwargs)
    return info.value


# ---------------------------------------------------------------- the reference chain


def test_reference_chain():
    chain = parse_chain(BACKPROP, "examples/backprop.chain")
    s, y = sym("s", 5), sym("y", 5)
    diff = Add((s, neg(y)))
    assert chain.objective.expr == Frobenius(Mul((Number(sympy.Rational(1, 2)), diff)), diff)
    assert chain.title == "One logistic layer, squared error"
    assert [i.symbol.name for i in chain.inputs] == ["W", "x", "y"]
    assert all(i.declared for i in chain.inputs)
    assert chain.inputs[0].symbol.shape == (5, 4)
    assert [d.symbol.name for d in chain.definitions] == ["v", "s", "S", "E"]
    assert chain.wrt == (sym("W", 5, 4),) and chain.wrt_line == 9
    assert chain.source.name == "examples/backprop.chain" and chain.source.text == BACKPROP


def test_reference_chain_nodes_and_positions():
    chain = parse_chain(BACKPROP)
    v, s, S, E = chain.definitions
    assert v.expr == Mul((sym("W", 5, 4), sym("x", 4)))
    assert s.expr == Apply("sigma", sym("v", 5))
    assert S.expr == Diag(sym("s", 5))
    assert S.symbol.props == {"diagonal", "symmetric"} and S.symbol.shape == (5, 5)
    assert E.symbol.shape == (1, 1)
    assert (v.line, v.column, v.expr_column) == (5, 1, 5)
    assert (E.line, E.column, E.expr_column) == (8, 1, 5)


# ---------------------------------------------------------------- precedence and nodes

a, b, c, d = (sym(name, 3) for name in "abcd")
A, B, C, X = (sym(name, 3, 3) for name in "ABCX")
VECTORS = "a : 3; b : 3; c : 3; d : 3; A : 3x3; B : 3x3; C : 3x3; X : 3x3; "


def value(expr_text):
    """A chain whose only definition is ``Z = expr_text`` over 3-vectors and 3×3 matrices."""
    return rhs(VECTORS + f"Z = {expr_text}; E = Z:Z; wrt a", "Z")


@pytest.mark.parametrize("text, expected", [
    ("-a∘b", neg(Hadamard(a, b))),
    ("A B ∘ C", Mul((A, Hadamard(B, C)))),
    ("a:b + c:d", Add((Frobenius(a, b), Frobenius(c, d)))),
    ("X^{-T}", Transpose(Inverse(X))),
    ("X⁻ᵀ", Transpose(Inverse(X))),
    ("a'", Transpose(a)),
    ("aᵀ", Transpose(a)),
    ("a^T", Transpose(a)),
    ("X^2", Power(X, 2)),
    ("X²", Power(X, 2)),
    ("X^{3}", Power(X, 3)),
    ("X^{-1}", Inverse(X)),
    ("inv(X)", Inverse(X)),
    ("a - b", Add((a, neg(b)))),
    ("a − b", Add((a, neg(b)))),
    ("a - b + (c + d)", Add((a, neg(b), c, d))),
    ("A B C", Mul((A, B, C))),
    ("A * (B C)", Mul((A, B, C))),
    ("a/2", Mul((a, Number(sympy.Rational(1, 2))))),
    ("½ a", Mul((Number(sympy.Rational(1, 2)), a))),
    ("-2 a", Mul((Number(-2), a))),
    ("a .* b", Hadamard(a, b)),
    ("a ./ b", HadamardDivide(a, b)),
    ("a ∘ b ∘ c", Hadamard(Hadamard(a, b), c)),
    ("a'b a", Mul((Transpose(a), b, a))),
    ("A (a'b) c", Mul((A, Mul((Transpose(a), b)), c))),
    ("tr(A)", Trace(A)),
    ("det(A)", Det(A)),
    ("logdet(A)", LogDet(A)),
    ("log(det(A))", LogDet(A)),
    ("log(a)", Apply("log", a)),
    ("exp(a)", Apply("exp", a)),
    ("σ(a) + sigmoid(a) + sigma (a)", Add((Apply("sigma", a),) * 3)),
    ("tanh(A)", Apply("tanh", A)),
    ("Diag(a)", Diag(a)),
    ("diag(A)", DiagPart(A)),
    ("sqrt(a) + softplus(a)", Add((Apply("sqrt", a), Apply("softplus", a)))),
    ("norm(A) a", Mul((Norm(A), a))),
    ("||A||_F^2 a", Mul((Power(Norm(A), 2), a))),
    ("‖A b‖_F * ‖a‖ a", Mul((Norm(Mul((A, b))), Norm(a), a))),
    ("||a + b||² a", Mul((Power(Norm(Add((a, b))), 2), a))),
    ("softmax(a) + softmax_rows(A) b", Add((Softmax(a), Mul((SoftmaxRows(A), b))))),
    ("logsumexp(A a) b", Mul((LogSumExp(Mul((A, a))), b))),
    ("vec(A)ᵀ vec(B) a", Mul((Transpose(Vec(A)), Vec(B), a))),
    ("vec(A ∘ B ⊗ C)ᵀ vec(kron(A, B))", Mul((Transpose(Vec(Kron(Hadamard(A, B), C))), Vec(Kron(A, B))))),
    ("a.^2 + a^{∘3} + a^{\\circ -1} + A.^{2} b", Add((ElementPower(a, 2), ElementPower(a, 3),
                                                     ElementPower(a, -1), Mul((ElementPower(A, 2), b))))),
])
def test_precedence_and_nodes(text, expected):
    assert value(text) == expected


def test_every_reserved_name_is_a_function_even_apart_from_its_parenthesis():
    for name in RESERVED:
        for text in (f"E = {name}(A); wrt A", f"E = {name} (A); wrt A"):
            try:
                parse_chain(text)
            except DeriveError as error:
                assert "unknown function" not in error.message
                assert error.column == 5 or "scalar" in error.message


def test_half_times_a_difference():
    half = Number(sympy.Rational(1, 2))
    assert value("1/2 (a - b)") == Mul((half, Add((a, neg(b)))))
    assert value("(a - b)/2") == Mul((Add((a, neg(b))), half))


def test_division_by_a_scalar_expression_and_scalar_inverse():
    beta = sym("β")
    assert rhs("a : 3; E = a'a / β; wrt a") == Mul((Transpose(a), a, Power(beta, -1)))
    assert rhs("E = α^{-1}; wrt α") == Power(sym("α"), -1)


# ---------------------------------------------------------------- conventions and unification


def test_undeclared_matrix_gets_its_shape_from_its_neighbours():
    chain = parse_chain("x : 4; y : 5; v = W x; s = sigma(v); E = (s - y)'(s - y); wrt W")
    W = chain.input_named("W")
    assert W.symbol.shape == (5, 4) and not W.declared
    assert chain.wrt == (W.symbol,)


@pytest.mark.parametrize("name, shape", [
    ("W", "matrix"), ("Σ", "matrix"), ("Sigma", "matrix"), ("x", "vector"), ("w2", "vector"),
    ("α", "scalar"), ("alpha", "scalar"), ("lambda", "scalar"), ("lambda_1", "scalar"),
])
def test_naming_conventions(name, shape):
    chain = parse_chain(f"Z = {name}; E = 2; wrt {name}")
    rows, cols = chain.input_named(name).symbol.shape
    kind = "scalar" if (rows, cols) == (1, 1) else "vector" if cols == 1 else "matrix"
    assert kind == shape


def test_juxtaposition_needs_a_space():
    chain = parse_chain("v = Wx y; E = v'v; wrt Wx")
    assert [i.symbol.name for i in chain.inputs] == ["Wx", "y"]


def test_windows_line_endings_and_tabs():
    chain = parse_chain("# title: T\r\nx :\t3\r\nE = x'x\r\nwrt x\r\n")
    assert chain.title == "T" and chain.objective.line == 3
    assert error_of("x : 3\r\nE = x'x +\r\nwrt x").line == 2


def test_ones_vectors_take_each_their_own_length():
    expr = rhs("R : 3x4; E = 1ᵀ(R∘R)1; wrt R")
    left, middle, right = expr.factors
    assert left == Transpose(Ones(sympy.Integer(3))) and right == Ones(sympy.Integer(4))
    assert middle == Hadamard(sym("R", 3, 4), sym("R", 3, 4))


def test_one_in_scalar_context_and_one_over():
    x = sym("x", 3)
    assert rhs("x : 3; E = 1 - x'x; wrt x") == Add((Number(1), Mul((Number(-1), Transpose(x), x))))
    assert rhs("x : 3; E = 1/3 x'x; wrt x") == Mul((Number(sympy.Rational(1, 3)), Transpose(x), x))


def test_identity_size_is_inferred():
    assert rhs("A : 3x3; E = tr(A + I); wrt A") == Trace(Add((A, Identity(sympy.Integer(3)))))
    expr = rhs("x : n; E = x'(I + 2 I)x; wrt x")
    assert expr.factors[1].terms[0] == Identity(n)


def test_unknown_sizes_get_fresh_names_that_do_not_clash():
    chain = parse_chain("x : n_1; E = x'x + y'y; wrt x")
    assert chain.input_named("x").symbol.shape == (sympy.Symbol("n_1"), 1)
    assert chain.input_named("y").symbol.shape == (sympy.Symbol("n_2"), 1)


def test_symbolic_sizes():
    chain = parse_chain("W : m x n\nV : mxn\nx : n\ny : m\nE = y'(W + V)x\nwrt W")
    assert chain.input_named("W").symbol.shape == (m, n)
    assert chain.input_named("V").symbol.shape == (m, n)
    assert chain.size_symbols == [m, n]


def test_rigid_sizes_do_not_bind():
    error = error_of("W : m x n\nx : m\nE = x'W x\nwrt W")
    assert (error.line, error.column) == (3, 9)
    assert "x'W x: x'W is 1×n but x has m rows" in error.message
    error = error_of("W : m x n\nx : 4\nE = 1'W x\nwrt W")
    assert "has 4 rows" in error.message


# ---------------------------------------------------------------- properties


def test_properties_and_their_implications():
    chain = parse_chain("Sigma : n x n spd\nlam : scalar positive\nX : n x n symmetric invertible\n"
                        "E = lam tr(Sigma X)\nwrt X")
    assert chain.input_named("Sigma").symbol.props == {"spd", "symmetric", "invertible"}
    assert chain.input_named("lam").symbol.props == {"positive"}
    assert chain.input_named("lam").symbol.shape == (1, 1)
    assert chain.input_named("X").symbol.props == {"symmetric", "invertible"}


def test_defined_variables_inherit_structure():
    chain = parse_chain("s : 3; S = Diag(s); T = S S; U = S + S'; E = tr(T U); wrt s")
    props = {d.symbol.name: d.symbol.props for d in chain.definitions}
    assert props["S"] == props["T"] == {"diagonal", "symmetric"}
    assert "symmetric" in props["U"]


# ---------------------------------------------------------------- inline text, wrt override


def test_inline_form_locations():
    chain = parse_chain("v = W x; s = sigma(v); E = s's; wrt W")
    assert [(d.line, d.column, d.expr_column) for d in chain.definitions] == \
        [(1, 1, 5), (1, 10, 14), (1, 24, 28)]
    error = error_of("x : 4; v = W x; E = v'v + x; wrt W")
    assert str(error).startswith("<-e>:1:25: v'v + x: ")


def test_wrt_override():
    chain = parse_chain("E = x'A x; wrt x", wrt=["A"])
    assert [s.name for s in chain.wrt] == ["A"] and chain.wrt_line == 0
    chain = parse_chain("E = x'A x", wrt=["A,x"])
    assert [s.name for s in chain.wrt] == ["A", "x"]
    chain = parse_chain("E = x'A x\nwrt A x, A")
    assert [s.name for s in chain.wrt] == ["A", "x"] and chain.wrt_line == 2
    error = error_of("E = x'A x", wrt=["B"])
    assert "--wrt B" in error.message and error.source is not None


def test_comments_and_blank_lines():
    chain = parse_chain("\n# a comment\nx : 3   # a vector\n\n\nE = x'x # the objective\nwrt x\n\n")
    assert chain.title is None
    assert chain.objective.line == 6 and chain.wrt_line == 7


# ---------------------------------------------------------------- bad inputs


BAD = [
    # syntax
    ("E = a +\nwrt a", 1, 8, "expected an expression after '+'"),
    ("E = (a + b\nwrt a", 1, 11, "missing ')'"),
    ("E = a'a)\nwrt a", 1, 8, "unexpected ')'"),
    ("W 5x4", 1, 3, "expected ':' (a declaration) or '=' (a definition) after 'W'"),
    ("E = a $ b", 1, 7, "unexpected character '$'"),
    ("W : \nE = 1", 1, 5, "expected a size"),
    ("x : 3\n5 = x", 2, 1, "unexpected '5'"),
    ("E = x^a; wrt x", 1, 6, "after '^' write T, -1, -T or a number"),
    # shapes
    ("W : 5x4\nx : 5\nv = W x\nE = v'v\nwrt W", 3, 7, "W x: W is 5×4 but x has 5 rows"),
    ("A : 3x4\nb : 3\nE = 1'(A + b)1\nwrt A", 3, 10, "A + b: A is 3×4 but b is a vector of length 3"),
    ("a : 3\nb : 4\nE = 1'(a ∘ b)\nwrt a", 3, 10,
     "a ∘ b: a is a vector of length 3 but b is a vector of length 4"),
    ("A : 3x4\nB : 4x3\nE = A:B\nwrt A", 3, 6, "A:B: A is 3×4 but B is 4×3"),
    ("x : 3\nE = 2 + x\nwrt x", 2, 7, "2 + x: 2 is a scalar but x is a vector of length 3"),
    ("x : 3\nE = x'x / x\nwrt x", 2, 9, "cannot divide by x, which is a vector of length 3"),
    ("A : 3x4\nE = tr(A)\nwrt A", 2, 5, "tr needs a square matrix, but A is 3×4"),
    ("A : 3x4\nE = 1'A^{-1}1\nwrt A", 2, 8, "the inverse needs a square matrix"),
    ("x : 0", 1, 5, "a size must be a positive whole number"),
    ("W : n x 3\nE = n'n\nwrt W", 2, 5, "n is a size (on line 1), not a variable"),
    ("x : n\nn : 3", 2, 1, "n names a size"),
    # names and functions
    ("E = foo(x)\nwrt x", 1, 5, "unknown function foo"),
    ("M : 3x4\nE = 1'softmax(M)1\nwrt M", 2, 7, "softmax needs a column vector, but M is 3×4"),
    ("x : 3\nE = 1'x.^T\nwrt x", 2, 8, "an elementwise power takes a number"),
    ("A : 3x4\nE = ||A||\nwrt A", 2, 5, "A is 3×4: write ||…||_F for its Frobenius norm"),
    ("a : 3\nb : 3\nE = ||a ||b|| a||\nwrt a", 3, 9,
     "these norm bars read two ways: norm(a) b norm(a), or norm(a norm(b) a)"),
    ("A : 3x3\nE = ||A||_2\nwrt A", 2, 5, "||…||_2 of a matrix is its spectral norm"),
    ("x : 3\nE = x ||_F\nwrt x", 2, 7, "'||_F' closes a norm, but no norm is open here"),
    ("x : 3\nE = ||x\nwrt x", 2, 8, "missing '||' to close the norm"),
    ("E = 1'vec(X)\nwrt X", 1, 7, "vec needs the shape of X, which is ?×?: declare its sizes"),
    ("E = tr(A ⊗ B)\nwrt A", 1, 10, "the Kronecker product needs the shape of A, which is ?×?"),
    ("A : 2x3\nE = 1'kron(A)1\nwrt A", 2, 7, "kron takes two arguments, got 1"),
    ("E = sigma'x\nwrt x", 1, 5, "sigma is a function: write sigma(…)"),
    ("x : 3\nv = x\nv = x'x\nwrt x", 3, 1, "v is already defined on line 2"),
    ("x : 3\nx = 2\nwrt x", 2, 1, "x is already declared on line 1"),
    ("x : 3\nv = s\ns = x\nE = v'v\nwrt x", 2, 5, "s is defined on line 3, after its use here"),
    ("x : 3\nv = v + x\nE = v'v\nwrt x", 2, 5, "v is used in its own definition"),
    ("W : 5x4\nx : 4\nE = W x\nwrt W", 3, 1, "the objective E must be a scalar, but it is a vector of length 5"),
    ("x : 4\nE = x'x\nwrt Q", 3, 5, "wrt Q: Q is not an input"),
    ("x : 4\nv = 2 x\nE = v'v\nwrt v", 4, 5, "wrt v: v is defined on line 2"),
    ("x : 4\nE = x'x", 2, 1, "nothing to differentiate with respect to"),
    ("", 1, 1, "the chain is empty"),
    ("# just a comment\n\n", 1, 1, "the chain is empty"),
    ("x : 4\nwrt x", 2, 1, "no definitions"),
    # properties
    ("A : 3x4 spd", 1, 9, "spd needs a square matrix, but A is 3×4"),
    ("x : 3 symmetric", 1, 7, "symmetric needs a square matrix, but x is a vector of length 3"),
    ("A : 3x3 sym", 1, 9, "unknown property sym"),
    # limits
    ("E = X^1000; wrt X", 1, 6, "exponent too large"),
    ("E = x'x / 0; wrt x", 1, 9, "division by zero"),
]


@pytest.mark.parametrize("text, line, column, fragment", BAD)
def test_bad_input(text, line, column, fragment):
    error = error_of(text)
    assert fragment in error.message
    assert (error.line, error.column) == (line, column)
    assert error.source.text == text
    assert error.exit_code == 2


def test_error_format_points_at_the_column():
    error = error_of("W : 5x4\nx : 5\nv = W x\nE = v'v\nwrt W", source_name="bad.chain")
    assert str(error).splitlines() == ["bad.chain:3:7: W x: W is 5×4 but x has 5 rows",
                                       "  v = W x", "        ^"]


# ---------------------------------------------------------------- robustness


def test_a_20000_term_sum():
    text = "x : 3\nE = " + " + ".join(["x'x"] * 20000) + "\nwrt x"
    with applied(Limits(max_bytes=0, max_nodes=0)):
        assert len(parse_chain(text).objective.expr.terms) == 20000
    assert "longer than 100000 bytes" in error_of(text).message


@pytest.mark.parametrize("text", [
    "E = " + "(" * 3000 + "x'x" + ")" * 3000 + "\nwrt x",
    "E = " + "- " * 3000 + "x'x\nwrt x",
    "E = tr(X" + "'" * 3000 + ")\nwrt X",
    "E = 1'(" + " ∘ ".join(["x"] * 3000) + ")\nwrt x",
    "E = " + "tr(" * 3000 + "X" + ")" * 3000 + "\nwrt X",
], ids=["parentheses", "minus signs", "transposes", "hadamard chain", "function calls"])
def test_deep_nesting_is_an_error_not_a_crash(text):
    error = error_of(text)
    assert "nested too deeply" in error.message and error.line == 1


def test_unbalanced_parentheses_at_depth():
    assert "expected an expression" in error_of("E = " + "(" * 50000).message


PIECES = ["W", "x", "y", "E", "I", "1", "2", "½", "α", "σ", "Σ", "n", " ", " ", "\n", ";", ":",
          "=", "+", "-", "−", "*", "/", "∘", ".*", "./", "⊗", "'", "ᵀ", "^T", "^{-1}", "^{-T}",
          "^2", "^", "²", "(", ")", ",", "tr(", "log(", "det(", "Diag(", "diag(", "inv(", "sigma(",
          "vec(", "foo(", "5x4", "m x n", "scalar", "spd", "wrt ", "# title: t\n", "#", "3", "1.5",
          "{", "}", "$", "\t", "\r\n", "Wx", "E = ", "\nwrt W\n", "v = ", " : "]


def test_random_text_gives_located_errors_only():
    rng = random.Random(0)
    for _ in range(500):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 20)))
        if rng.random() < 0.5:
            text = "W : 5x4\nx : 4\nE = " + text + "\nwrt W"
        try:
            parse_chain(text)
        except DeriveError as error:
            assert error.line >= 1 and error.column >= 1 and error.message
