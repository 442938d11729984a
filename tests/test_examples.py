"""Every bundled example: derive's gradient against an independently written closed form.

The closed forms below come from the source named in each example's comment; they
share no code with derive.  The points are random, drawn here, not by derive.
"""
from pathlib import Path

import numpy as np
import pytest

from derive.api import derive_file
from derive.check import adjoint_values
from derive.evaluate import evaluate, forward

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def backprop(W, x, y):
    s = sigmoid(W @ x)
    return {"W": ((s - s * s) * (s - y)) @ x.T}


def two_layer(W1, W2, x, y):
    h = sigmoid(W1 @ x)
    o = W2 @ h
    delta2 = o - y
    delta1 = (h - h * h) * (W2.T @ delta2)
    return {"W1": delta1 @ x.T, "W2": delta2 @ h.T}


def logistic_regression(X, w, y):
    return {"w": X.T @ (sigmoid(X @ w) - y)}


CLOSED_FORMS = {
    "backprop": backprop,
    "quadratic_form": lambda x, A: {"x": (A + A.T) @ x},
    "least_squares": lambda A, x, b: {"x": 2 * A.T @ (A @ x - b)},
    "trace_axb": lambda A, X, B: {"X": A.T @ B.T},
    "log_det": lambda X: {"X": np.linalg.inv(X).T},
    "inverse_bilinear": lambda a, X, b: {"X": -np.linalg.inv(X).T @ a @ b.T @ np.linalg.inv(X).T},
    "trace_cube": lambda X: {"X": 3 * (X @ X).T},
    "tanh_layer": lambda W, x, y: {"W": ((1 - np.tanh(W @ x) ** 2) * (np.tanh(W @ x) - y)) @ x.T},
    "logistic_regression": logistic_regression,
    "ridge": lambda X, w, y, **k: {"w": 2 * X.T @ (X @ w - y) + 2 * k["lambda"] * w},
    "two_layer": two_layer,
}


def draw(chain, rng):
    """A point: square matrices near I (log det, inverses), positive where declared."""
    values = {}
    for item in chain.inputs:
        shape = tuple(int(k) for k in item.symbol.shape)
        value = rng.normal(size=shape)
        if shape[0] == shape[1] and shape[0] > 1:
            value = np.eye(shape[0]) + 0.3 * value
        if "positive" in item.symbol.props:
            value = np.abs(value) + 0.1
        values[item.symbol.name] = value
    return values


def test_every_example_has_a_closed_form():
    assert {p.stem for p in EXAMPLES.glob("*.chain")} == set(CLOSED_FORMS)
    assert len(CLOSED_FORMS) >= 10


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_example_gradient_matches_closed_form(name):
    derivation = derive_file(EXAMPLES / f"{name}.chain")
    assert derivation.check.ok, derivation.check.failures
    rng = np.random.default_rng(7)
    for _ in range(3):
        point = draw(derivation.chain, rng)
        values = forward(derivation.chain, point)
        values.update(adjoint_values(derivation, values, None))      # named adjoints z̄, if any
        want = CLOSED_FORMS[name](**point)
        for gradient in derivation.gradients:
            for shown in (gradient.expr, gradient.expanded):
                got = evaluate(shown, values)
                expected = want[gradient.wrt.name]
                assert np.allclose(got, expected, rtol=1e-9, atol=1e-12), (name, gradient.wrt.name)
