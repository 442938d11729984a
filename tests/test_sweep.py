"""The reverse sweep and the display policy, on the seed and on chains like it."""
from pathlib import Path

import numpy as np

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


# ---------------------------------------------------------------- the loop and the display


def tanh_chain(layers: int, wrt: str = "W1") -> str:
    """``h_l = tanh(W_l h_{l−1})``, ``E = ½‖h_L − y‖²``: one wrt, nothing reused."""
    lines = ["h0 : 4", "y : 4"] + [f"W{l} : 4x4" for l in range(1, layers + 1)]
    lines += [f"h{l} = tanh(W{l} h{l - 1})" for l in range(1, layers + 1)]
    return "\n".join(lines + [f"E = 1/2 (h{layers} - y):(h{layers} - y)", f"wrt {wrt}"]) + "\n"


def test_the_sweep_visits_each_variable_once_last_defined_first():
    from derive.sweep import backward, definition_lines
    from derive.latex_input import read_chain
    chain = read_chain(tanh_chain(3))
    _, linear = definition_lines(chain, chain.varying())
    trace = backward(chain, linear)
    assert [e.variable.name for e in trace.eliminations] == ["E", "h3", "h2", "h1"]
    assert text(trace.eliminations[2].adjoint) == "W3ᵀ(h̄3 ∘ (1 − h3 ∘ h3))"   # one layer each
    assert list(trace.remaining) == ["W1"]


def test_a_short_chain_reads_as_plain_substitutions():
    d = derive(tanh_chain(3), check=False)
    assert d.steps == () and len(d.substitutions) == 5
    assert "h̄" not in "".join(substitution_texts(d))


def test_a_deep_chain_names_its_adjoints_once_they_would_grow():
    """Written out, h̄_l repeats every adjoint after it; named, each line is one layer."""
    d = derive(tanh_chain(12), check=False)
    assert d.substitutions == ()
    assert [text(step.variable) for step in d.steps][:3] == ["E", "h12", "h11"]
    assert text(d.steps[2].adjoint) == "W12ᵀ(h̄12 ∘ (1 − h12 ∘ h12))"
    assert text(d.gradients[0].expr) == "(h̄1 ∘ (1 − h1 ∘ h1))h0ᵀ"


def test_output_grows_linearly_with_depth():
    """The bytes each layer adds stay the same from depth 10 to 40: were every line to
    repeat the adjoints before it (quadratic growth), a layer at depth 20–40 would add
    twice what one at depth 10–20 adds."""
    for wrt in ("W1", "h0"):
        d = {n: derive(tanh_chain(n, wrt), check=False) for n in (10, 20, 40)}
        for size in (lambda n: len(d[n].to_markdown()), lambda n: len(d[n].to_latex())):
            early, late = (size(20) - size(10)) / 10, (size(40) - size(20)) / 20
            assert late < 1.2 * early


def _backprop(Ws, h0, y):
    """∂E/∂W1 and ∂E/∂h0 of ``E = ½‖h_L − y‖²``, ``h_l = tanh(W_l h_{l−1})``, by hand."""
    hs = [h0]
    for W in Ws:
        hs.append(np.tanh(W @ hs[-1]))
    h_bar = hs[-1] - y
    for l in range(len(Ws), 0, -1):
        a_bar = h_bar * (1 - hs[l] ** 2)
        if l == 1:
            return a_bar @ hs[0].T, Ws[0].T @ a_bar
        h_bar = Ws[l - 1].T @ a_bar


def test_a_100_layer_gradient_is_right():
    layers, rng = 100, np.random.default_rng(7)
    Ws = [np.linalg.qr(rng.normal(size=(4, 4)))[0] * 1.2 for _ in range(layers)]
    h0, y = rng.normal(size=(4, 1)), rng.normal(size=(4, 1))
    inputs = {"h0": h0, "y": y, **{f"W{l + 1}": W for l, W in enumerate(Ws)}}
    want = dict(zip(("W1", "h0"), _backprop(Ws, h0, y)))
    for wrt in ("W1", "h0"):
        d = derive(tanh_chain(layers, wrt), check=False)
        got = d.gradient(wrt).numpy(**inputs)
        assert np.linalg.norm(want[wrt]) > 1e-12
        assert np.allclose(got, want[wrt], rtol=1e-10, atol=1e-12 * np.linalg.norm(want[wrt]))


def test_an_alias_of_a_diagonal_of_an_expression_reads_a_line_again():
    """Found by the fuzz run: ``S = Diag(sigma(x))`` beside ``v = 2 + 1ᵀsigma(x)`` was a
    traceback (the alias rule's name assumed ``Diag`` of a name)."""
    import numpy as np
    from derive.api import derive
    d = derive("x : 3\nv = 2 + 1'sigma(x)\nS = Diag(sigma(x))\nE = v v\nwrt x")
    assert d.check.ok and d.check.complete
    assert any("Diag(sigma(x)) = S" in str(r) for line in d.definitions for r in line.rules)
    x = np.array([0.3, -1.2, 2.0])
    s = 1 / (1 + np.exp(-x))
    v = 2 + s.sum()
    assert np.allclose(d.gradients[0].numpy(x=x).ravel(), 2 * v * s * (1 - s))
