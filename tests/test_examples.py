"""Every bundled example: derive's gradient against an independently written closed form.

The closed forms below come from the source named in each example's comment; they
share no code with derive.  The points are random, drawn here, not by derive.
"""
import json
from pathlib import Path

import numpy as np
import pytest

from derive.api import derive_file
from derive.check import adjoint_values
from derive.evaluate import evaluate, forward
from derive.expr import Unspecified, walk
from derive.functions import stand_in_parameter
from derive.numpy_code import python_name

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


inv = np.linalg.inv


def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def three_layer(W1, W2, W3, x, y):
    """Backpropagation, tanh hidden layers, linear output, E = ½‖o − y‖²."""
    h1 = np.tanh(W1 @ x)
    h2 = np.tanh(W2 @ h1)
    o = W3 @ h2
    delta3 = o - y
    delta2 = (1 - h2 ** 2) * (W3.T @ delta3)
    delta1 = (1 - h1 ** 2) * (W2.T @ delta2)
    return {"W1": delta1 @ x.T, "W2": delta2 @ h1.T, "W3": delta3 @ h2.T,
            "x": W1.T @ delta1, "y": -delta3}


def gaussian_covariance(x, mu, Sigma):
    """Unstructured gradient of ½ log det Σ + ½ rᵀΣ⁻¹r (Cookbook (57), (61)): ½Σ⁻ᵀ − ½Σ⁻ᵀrrᵀΣ⁻ᵀ."""
    r = x - mu
    Si = inv(Sigma).T
    return {"Sigma": 0.5 * Si - 0.5 * Si @ r @ r.T @ Si}


def matrix_factorisation(X, U, V):
    R = X - U @ V.T
    return {"U": -2 * R @ V, "V": -2 * R.T @ U}


def rayleigh_quotient(A, x):
    xx = (x.T @ x).item()
    rho = (x.T @ A @ x).item() / xx
    return {"x": ((A + A.T) @ x - 2 * rho * x) / xx}


def tied_weight(W, x):
    r = W.T @ W @ x - x
    return {"W": 2 * (W @ x @ r.T + W @ r @ x.T)}


def attention_head(Q, K, V, G):
    """Backward pass of O = softmax_rows(QKᵀ)V with upstream gradient G (FlashAttention App. B.2)."""
    S = Q @ K.T
    A = np.exp(S - S.max(axis=1, keepdims=True))
    A = A / A.sum(axis=1, keepdims=True)
    dP = G @ V.T
    dS = A * (dP - (dP * A).sum(axis=1, keepdims=True))
    return {"Q": dS @ K, "K": dS.T @ Q, "V": A.T @ G}


def residual(W, x, y):
    t = np.tanh(W @ x)
    return {"W": ((1 - t * t) * (x + t - y)) @ x.T}


def unspecified_layer(W, x, y):
    """f checked as its stated stand-in u ↦ sin(cu) + u²/4, c the number the output states."""
    c = stand_in_parameter("f")
    z = W @ x
    f, f_prime = np.sin(c * z) + z * z / 4, c * np.cos(c * z) + z / 2
    return {"W": (f_prime * (f - y)) @ x.T}


def hessian_log_sum_exp(A, x, b):
    z = A @ x + b
    return {"x": A.T @ softmax(z)}


def hessian_unspecified(a, x):
    """g checked as its stated stand-in u ↦ sin(cu) + u²/4: ∇g(aᵀx) = g′(aᵀx) a."""
    c = stand_in_parameter("g")
    u = (a.T @ x).item()
    return {"x": (c * np.cos(c * u) + u / 2) * a}


CLOSED_FORMS = {
    "backprop": backprop,
    "hessian_quadratic_form": lambda x, A: {"x": (A + A.T) @ x},
    "hessian_least_squares": lambda A, x, b: {"x": A.T @ (A @ x - b)},
    "hessian_logistic_regression": logistic_regression,
    "hessian_log_sum_exp": hessian_log_sum_exp,
    "hessian_log_det": lambda X: {"X": np.linalg.inv(X).T},
    "hessian_unspecified": hessian_unspecified,
    "hessian_blocks": lambda W, x, b, y: {"W": (W @ x + b - y) @ x.T, "b": W @ x + b - y},
    "hessian_trace_xtax": lambda A, X: {"X": A @ X + A.T @ X},
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
    "linear_form": lambda a, x: {"x": a},
    "bilinear_form": lambda a, X, b: {"X": a @ b.T},
    "bilinear_transpose": lambda a, X, b: {"X": b @ a.T},
    "trace_xtax": lambda A, X: {"X": A @ X + A.T @ X},
    "trace_xbxt": lambda X, B: {"X": X @ B.T + X @ B},
    "trace_axbxtc": lambda A, X, B, C: {"X": A.T @ C.T @ X @ B.T + C @ A @ X @ B},
    "frobenius_norm": lambda X: {"X": 2 * X},
    "frobenius_axb": lambda A, X, B: {"X": 2 * A.T @ (A @ X @ B) @ B.T},
    "determinant": lambda X: {"X": np.linalg.det(X) * inv(X).T},
    "det_axb": lambda A, X, B: {"X": np.linalg.det(A @ X @ B) * inv(X).T},
    "log_det_gram": lambda X: {"X": 2 * X @ inv(X.T @ X)},
    "trace_inverse": lambda X, A: {"X": -(inv(X) @ A @ inv(X)).T},
    "exp_sum": lambda x: {"x": np.exp(x)},
    "log_sum": lambda x: {"x": 1 / x},
    "log_sum_exp": lambda x: {"x": softmax(x)},
    "softmax_cross_entropy": lambda W, x, y: {"W": (softmax(W @ x) - y) @ x.T},
    "three_layer": three_layer,
    "gaussian_mean": lambda x, mu, Sigma: {"mu": -inv(Sigma) @ (x - mu)},
    "gaussian_covariance": gaussian_covariance,
    "weighted_least_squares": lambda A, s, x, W: {"s": -2 * A.T @ W @ (x - A @ s)},
    "matrix_factorisation": matrix_factorisation,
    "rayleigh_quotient": rayleigh_quotient,
    "hadamard_form": lambda x, y, b: {"x": 2 * y * (x * y - b)},
    "diag_form": lambda a, x, b: {"x": a * b},
    "diag_weights": lambda x, d: {"d": x * x},
    "tied_weight": tied_weight,
    "residual": residual,
    "logsumexp": lambda x: {"x": softmax(x)},
    "softmax_nll": lambda W, x, y: {"W": (y.sum() * softmax(W @ x) - y) @ x.T},
    "softplus_logistic": lambda X, w, y: {"w": X.T @ (sigmoid(X @ w) - y)},
    "vector_norm": lambda x, a: {"x": (x - a) / np.linalg.norm(x - a)},
    "frobenius_norm_plain": lambda X: {"X": X / np.linalg.norm(X, "fro")},
    "sqrt_sum": lambda x: {"x": 1 / (2 * np.sqrt(x))},
    "attention_head": attention_head,
    "kron_quadratic": lambda X, A, B: {"X": A @ X @ B.T + A.T @ X @ B},
    "vec_least_squares": lambda A, X, B, c: {
        "X": 2 * A.T @ (A @ X @ B - c.reshape(A.shape[0], B.shape[1], order="F")) @ B.T},
    "hadamard_residual": lambda A, X, B: {"X": 2 * A * (A * X - B)},
    "sin_layer": lambda W, x: {"W": np.cos(W @ x) @ x.T},
    "relu_layer": lambda W, x, y: {"W": ((W @ x > 0) * (np.maximum(W @ x, 0) - y)) @ x.T},
    "cube_root": lambda x, y: {"x": (x.T @ y) ** (-2 / 3) / 3 * y + 0.5 / np.sqrt(x)},
    "unspecified_layer": unspecified_layer,
    "det_xtax": lambda X, A: {"X": np.linalg.det(X.T @ A @ X)
                              * (A @ X @ inv(X.T @ A @ X) + A.T @ X @ inv(X.T @ A.T @ X))},
}


def draw(chain, rng):
    """A point: square matrices near I (log det, inverses), positive where declared,
    symmetric or positive definite where declared."""
    values = {}
    for item in chain.inputs:
        shape = tuple(int(k) for k in item.symbol.shape)
        value = rng.normal(size=shape)
        if shape[0] == shape[1] and shape[0] > 1:
            value = np.eye(shape[0]) + 0.3 * value
            if "symmetric" in item.symbol.props or "spd" in item.symbol.props:
                value = (value + value.T) / 2
            if "spd" in item.symbol.props:
                value = value @ value.T + 0.1 * np.eye(shape[0])
        if "positive" in item.symbol.props:
            value = np.abs(value) + 0.1
        values[item.symbol.name] = value
    return values


def test_every_example_has_a_closed_form():
    """The Jacobian examples (no gradient) have theirs in test_jacobian.py."""
    from test_jacobian import JACOBIAN_FORMS
    assert {p.stem for p in EXAMPLES.glob("*.chain")} == set(CLOSED_FORMS) | set(JACOBIAN_FORMS)
    assert len(CLOSED_FORMS) >= 30


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


def _stand_ins(chain) -> dict:
    """The keyword callables of an unspecified function, written here as the output states
    them: u ↦ sin(c·u) + u²/4 and its derivatives."""
    out = {}
    for name in sorted({n.name for d in chain.definitions for n in walk(d.expr)
                        if isinstance(n, Unspecified)}):
        c = stand_in_parameter(name)
        key = python_name(name)
        out[key] = lambda u, c=c: np.sin(c * u) + u * u / 4
        out[key + "_prime"] = lambda u, c=c: c * np.cos(c * u) + u / 2
        out[key + "_prime2"] = lambda u, c=c: -c * c * np.sin(c * u) + 0.5
    return out


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_example_numpy_module_matches_closed_form(name):
    """The generated module (what a user runs) against the closed form, at fresh points;
    a wrong unvec order or a wrong recursion in the code fails here."""
    derivation = derive_file(EXAMPLES / f"{name}.chain")
    namespace = {}
    exec(compile(derivation.to_numpy(), f"<{name}.py>", "exec"), namespace)   # derive's own output
    rng = np.random.default_rng(11)
    for _ in range(2):
        point = draw(derivation.chain, rng)
        want = CLOSED_FORMS[name](**point)
        wanted = json.loads(derivation.to_json())["numpy"]["gradient"]   # its keyword arguments
        callables = {k: f for k, f in _stand_ins(derivation.chain).items() if k in wanted}
        assert set(wanted) == set(callables) | set(point)
        got = namespace["gradient"](**callables, **point)
        assert set(got) == {g.wrt.name for g in derivation.gradients}
        for key, value in got.items():
            expected = want[key]
            assert np.shape(value) == np.shape(point[key])
            assert np.allclose(value, expected, rtol=1e-9, atol=1e-12), (name, key)
