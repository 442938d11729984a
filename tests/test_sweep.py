"""The reverse sweep and the display policy, on the seed and on chains like it."""
from pathlib import Path

from derive.api import derive
from derive.printer import latex, text

SEED = (Path(__file__).resolve().parent.parent / "examples" / "backprop.chain").read_text()


def definition_texts(d):
    return [f"d{line.differential_of.name} = {text(line.differential)}" for line in d.definitions]


def substitution_texts(d):
    return [text(line.expr) for line in d.substitutions]


def test_seed_definition_lines():
    d = derive(SEED, check=False)
    assert [latex(line.differential) for line in d.definitions] == [
        r"dW\,x",
        r"(s - s\circ s)\circ dv",
        r"(S - S^2)\,dv",
        r"(s - y):ds",
    ]
    assert [line.differential_of.name for line in d.definitions] == ["v", "s", "s", "E"]
    assert d.definitions[2].is_alias


def test_seed_substitution_lines_and_gradient():
    d = derive(SEED, check=False)
    assert [latex(line.expr) for line in d.substitutions] == [
        "(s - y):ds",
        r"(s - y):(S - S^2)\,dv",
        r"(S - S^2)(s - y):dW\,x",
        "(S - S^2)(s - y)x^T:dW",
    ]
    assert latex(d.gradients[0].expr) == "(S - S^2)(s - y)x^T"
    assert latex(d.gradients[0].expanded) == "(S - S^2)(sx^T - yx^T)"


def test_without_the_alias_the_hadamard_form_stays():
    d = derive(SEED.replace("S = Diag(s)\n", ""), check=False)
    assert substitution_texts(d)[1] == "(s − y) : (s − s ∘ s) ∘ dv"
    assert text(d.gradients[0].expr) == "((s − y) ∘ (s − s ∘ s))xᵀ"


def test_tanh_alias_gives_identity_minus_square():
    """Nothing about the seed is special-cased: the same rules give dt = (I − T²)da."""
    d = derive("A : 3x2\nz : 2\na = A z\nt = tanh(a)\nT = Diag(t)\nE = 1ᵀ t\nwrt A", check=False)
    assert definition_texts(d)[1] == "dt = (1 − t ∘ t) ∘ da"
    assert latex(d.definitions[2].differential) == r"(I - T^2)\,da"


def test_variable_used_twice_adds_its_contributions():
    d = derive("x : 3\nA : 3x3\nq = A x\nE = x:q\nwrt x", check=False)
    assert text(d.gradients[0].expr) == "q + Aᵀq̄"         # q̄ = x, named: x feeds q and E
    assert [text(step.adjoint) for step in d.steps] == ["1", "x"]


def test_several_wrt_share_one_sweep_with_named_adjoints():
    chain = """\
W1 : 4x3
W2 : 2x4
x : 3
y : 2
h = tanh(W1 x)
o = W2 h
E = 1/2 (o - y):(o - y)
wrt W1, W2
"""
    d = derive(chain, check=False)
    assert d.substitutions == ()
    assert [g.wrt.name for g in d.gradients] == ["W1", "W2"]
    assert [text(step.variable) for step in d.steps] == ["E", "o", "h"]
    assert [text(step.adjoint) for step in d.steps] == ["1", "o − y", "W2ᵀō"]
    assert text(d.steps[1].moved) == "ōhᵀ : dW2 + W2ᵀō : dh"
    assert text(d.gradients[1].expr) == "ōhᵀ"
    assert text(d.gradients[0].expr) == "(h̄ ∘ (1 − h ∘ h))xᵀ"
    assert latex(d.gradients[0].expr) == r"(\bar{h}\circ (\mathbf{1} - h\circ h))x^T"


def test_wrt_without_path_gets_zero_and_a_warning():
    d = derive("x : 3\nb : 3\nE = x:x\nwrt x, b", check=False)
    assert text(d.gradients[1].expr) == "0"
    assert any("b has no path" in w for w in d.warnings)


def test_symmetric_transpose_is_dropped_and_inverse_transpose_printed():
    d = derive("X : 3x3\nE = log(det(X))\nwrt X", check=False)
    assert latex(d.gradients[0].expr) == "X^{-T}"
    d = derive("X : 3x3 spd\nE = logdet(X)\nwrt X", check=False)
    assert latex(d.gradients[0].expr) == "X^{-1}"


def test_trace_of_a_power_collects_like_terms():
    d = derive("X : 3x3\nE = tr(X^3)\nwrt X", check=False)
    assert latex(d.gradients[0].expr) == "3(X^2)^T"


def test_scalar_subproducts_are_bracketed_and_come_first():
    d = derive("x : 4\na : 4\nE = (a'x)^2\nwrt x", check=False)
    assert latex(d.gradients[0].expr) == "2(a^Tx)a"


def test_transpose_of_a_matrix_sum_is_distributed():
    d = derive("x : 3\nA : 3x3\nB : 3x3\nE = x' (A + B') x\nwrt x", check=False)
    assert text(d.gradients[0].expr) == "(A + Bᵀ + Aᵀ + B) x"


def test_ones_matrix_hadamard_vanishes():
    d = derive("R : 3x4\nE = 1'(R∘R)1\nwrt R", check=False)
    assert latex(d.gradients[0].expr) == "2R"


def test_gradients_in_the_order_asked():
    d = derive("A : 2x3\nB : 3x2\nE = tr(A B)\nwrt B, A", check=False)
    assert [(g.wrt.name, text(g.expr)) for g in d.gradients] == [("B", "Aᵀ"), ("A", "Bᵀ")]
