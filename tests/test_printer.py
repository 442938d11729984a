"""The printers: notation a person writes, in LaTeX and in plain text."""
import pytest
import sympy

from derive import expr as E
from derive.parse import parse_chain
from derive.printer import differential_prefix, latex, text


def rhs(source, name="E"):
    chain = parse_chain(source + "\nwrt x" if "wrt" not in source else source)
    return chain.definition_of(E.Symbol(name)).expr


@pytest.mark.parametrize("source, want", [
    ("x : 3\nE = 1/2 (x - 1):(x - 1)", r"\frac{1}{2}(x - \mathbf{1}):(x - \mathbf{1})"),
    ("x : 3\nA : 3x3\nE = x' A^{-T} x", "x^TA^{-T}x"),
    ("x : 3\nW1 : 3x3\nE = x' W1 x", "x^TW_{1}x"),
    ("x : 3\nlambda : scalar\nE = lambda x'x", r"\lambda x^Tx"),
    ("x : 3\nE = tr(Diag(x)^2)", r"\mathrm{tr}(\mathrm{Diag}(x)^2)"),
    ("x : 3\nE = 1' (x - x∘x)", r"\mathbf{1}^T(x - x\circ x)"),
    ("x : 3\nE = (x'x) / (1 + x'x)", r"\frac{x^Tx}{1 + x^Tx}"),
    ("x : 3\nE = -x'x + 2 x'x", r"-x^Tx + 2x^Tx"),
    ("x : 3\nX : 3x3\nE = logdet(X) - log(det(X' X)) + x'x", r"\log\det(X) - \log\det(X^TX) + x^Tx"),
])
def test_latex(source, want):
    assert latex(rhs(source)) == want


def test_greek_control_words_keep_a_space_before_letters():
    lam, w = E.Symbol("lambda"), E.Symbol("w", (sympy.Integer(3), E.ONE))
    assert latex(E.Mul((lam, w))) == r"\lambda w"
    assert latex(E.Mul((E.Symbol("σ"), w))) == r"\sigma w"


def test_text_is_unicode_and_readable():
    assert text(rhs("x : 3\nA : 3x3\nE = 1/2 (A x - x):(A x - x)")) == "1/2 (A x − x) : (A x − x)"
    assert text(rhs("x : 3\nE = (x'x)^2")) == "(xᵀ x)²"


def test_differentials_with_d_unless_a_name_makes_it_ambiguous():
    assert differential_prefix(parse_chain("x : 3\nE = x'x\nwrt x")) == "d"
    assert differential_prefix(parse_chain("x : 3\ndx : 3\nE = x'dx\nwrt x")) == r"\mathrm{d}"
    assert differential_prefix(parse_chain("d : 3\nE = d'd\nwrt d")) == r"\mathrm{d}"


def test_plain_text_writes_d_of_x_where_a_variable_is_named_dx():
    """``dxᵀ dx`` would read two ways (the variable dx, the differential of x): the plain
    text of every output writes the differential ``d(x)`` there, and ``dx`` elsewhere."""
    import json
    from derive.api import derive
    from derive.verdict import to_verdict
    clash = derive("x : 3\ndx : 3\nE = dx'x\nwrt x")
    shown = to_verdict(clash)
    assert "dE" not in shown and "d(E) = dxᵀ d(x)" in shown
    lines = json.loads(clash.to_json())["definitions"][0]["differential"]["text"]
    assert lines == "d(E) = dxᵀ d(x)"
    plain = to_verdict(derive("x : 3\ny : 3\nE = y'x\nwrt x"))
    assert "dE = yᵀ dx" in plain and "d(" not in plain
