"""Deep and DAG-shaped chains: every weight at once, named adjoints, contributions that add.

Each gradient is compared with backpropagation written out by hand in NumPy.
"""
from pathlib import Path

import numpy as np
import pytest

from derive.api import derive
from derive.check import adjoint_values
from derive.evaluate import evaluate, forward
from derive.printer import text

THREE_LAYERS = """\
W1 : 5x3
b1 : 5
W2 : 4x5
b2 : 4
W3 : 2x4
x : 3
y : 2
a1 = W1 x + b1
h1 = tanh(a1)
a2 = W2 h1 + b2
h2 = sigma(a2)
o = W3 h2
E = 1/2 (o - y):(o - y)
wrt *
"""


def three_layer_backprop(W1, b1, W2, b2, W3, x, y):
    h1 = np.tanh(W1 @ x + b1)
    h2 = 1 / (1 + np.exp(-(W2 @ h1 + b2)))
    o = W3 @ h2
    d_o = o - y
    d_a2 = (W3.T @ d_o) * h2 * (1 - h2)
    d_a1 = (W2.T @ d_a2) * (1 - h1 ** 2)
    return {"W1": d_a1 @ x.T, "b1": d_a1, "W2": d_a2 @ h1.T, "b2": d_a2, "W3": d_o @ h2.T,
            "x": W1.T @ d_a1, "y": -d_o}


def gradients_at(derivation, point):
    values = forward(derivation.chain, point)
    values.update(adjoint_values(derivation, values, None))
    return {g.wrt.name: evaluate(g.expr, values) for g in derivation.gradients}


def random_point(chain, rng):
    return {i.symbol.name: rng.normal(size=tuple(int(k) for k in i.symbol.shape)) for i in chain.inputs}


def test_three_layers_every_input_by_backprop():
    d = derive(THREE_LAYERS)
    assert d.check.ok, d.check.failures
    assert [g.wrt.name for g in d.gradients] == ["W1", "b1", "W2", "b2", "W3", "x", "y"]
    assert [text(s.variable) for s in d.steps] == ["E", "o", "h2", "a2", "h1", "a1"]
    assert text(d.steps[3].adjoint) == "h̄2 ∘ (h2 − h2 ∘ h2)"       # ā2, one line, named
    rng = np.random.default_rng(5)
    point = random_point(d.chain, rng)
    got, want = gradients_at(d, point), three_layer_backprop(**point)
    for name in want:
        assert np.allclose(got[name], want[name], rtol=1e-10, atol=1e-12), name


def test_tied_weight_used_twice_adds_both_uses():
    d = derive("W : 3x3\nx : 3\nh = tanh(W x)\no = W h\nE = o:o\nwrt W")
    assert d.check.ok and d.steps
    W, x = np.random.default_rng(1).normal(size=(3, 3)), np.random.default_rng(2).normal(size=(3, 1))
    h = np.tanh(W @ x)
    o = W @ h
    want = 2 * o @ h.T + ((W.T @ (2 * o)) * (1 - h ** 2)) @ x.T
    assert np.allclose(gradients_at(d, {"W": W, "x": x})["W"], want)


def test_residual_connection():
    d = derive("W : 4x4\nx : 4\nh = tanh(W x)\nr = h + x\nE = r:r\nwrt W, x")
    assert d.check.ok
    W, x = np.random.default_rng(3).normal(size=(4, 4)), np.random.default_rng(4).normal(size=(4, 1))
    h = np.tanh(W @ x)
    d_r = 2 * (h + x)
    d_a = d_r * (1 - h ** 2)
    got = gradients_at(d, {"W": W, "x": x})
    assert np.allclose(got["W"], d_a @ x.T)
    assert np.allclose(got["x"], d_r + W.T @ d_a)


def test_a_residual_used_in_loss_and_regulariser():
    d = derive("A : 3x2\nw : 2\nb : 3\nr = A w - b\nE = r:r + 1/10 r:(A A' r)\nwrt w")
    assert d.check.ok
    A, w, b = (np.random.default_rng(k).normal(size=s) for k, s in enumerate([(3, 2), (2, 1), (3, 1)]))
    r = A @ w - b
    want = A.T @ (2 * r + 0.2 * A @ A.T @ r)
    assert np.allclose(gradients_at(d, {"A": A, "w": w, "b": b})["w"], want)


@pytest.mark.parametrize("layers", [1, 4, 16])
def test_deep_chains_keep_every_line_short(layers):
    """Named adjoints: the longest displayed line does not grow with the depth."""
    import importlib.util
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "deep_chain.py"
    spec = importlib.util.spec_from_file_location("deep_chain", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    deep_chain = module.deep_chain
    d = derive(deep_chain(layers, width=3), check=layers <= 4)
    if d.check is not None:
        assert d.check.ok
    longest = max(len(text(s.moved)) for s in d.steps)
    assert longest < 80
    assert len(d.gradients) == 2 * layers
