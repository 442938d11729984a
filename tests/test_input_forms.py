"""Input as people write it: norms after a coefficient, ⊤ .T @ · × ⟨a, b⟩.

Each form is derived and checked by derive, and its gradient is compared at a random
point with a closed form written here in NumPy, so a misreading cannot pass.
"""
import numpy as np
import pytest

import derive
from derive.evaluate import evaluate, forward
from derive.parse import parse_chain
from derive.printer import text

rng = np.random.default_rng(7)


def gradient_of(chain_text: str, wrt: str, inputs: dict) -> np.ndarray:
    """derive's displayed gradient of ``wrt`` at ``inputs`` (after derive's own check)."""
    d = derive.derive(chain_text)
    assert d.check.ok, d.check.failures
    values = forward(d.chain, inputs)
    (g,) = [g for g in d.gradients if g.wrt.name == wrt]
    return evaluate(g.expr, values)


x, y = rng.normal(size=(4, 1)), rng.normal(size=(4, 1))
W = rng.normal(size=(3, 4))
lam = np.array([[0.7]])

NORMS = [
    # (chain, wrt, inputs, closed form of the gradient)
    ("x : 4; y : 4; E = 1/2 ||x - y||^2; wrt x", "x", {"x": x, "y": y}, x - y),
    ("x : 4; E = 2 ||x||^2; wrt x", "x", {"x": x}, 4 * x),
    ("W : 3x4; lam : scalar; E = lam ||W||_F^2; wrt W", "W", {"W": W, "lam": lam}, 2 * 0.7 * W),
    ("x : 4; y : 4; E = x^T y / (||x|| ||y||); wrt x", "x", {"x": x, "y": y},
     y / (np.linalg.norm(x) * np.linalg.norm(y))
     - (x.T @ y).item() * x / (np.linalg.norm(x) ** 3 * np.linalg.norm(y))),
    ("x : 4; y : 4; E = ½‖x − y‖²; wrt x", "x", {"x": x, "y": y}, x - y),
    ("x : 4; E = ||x||_2; wrt x", "x", {"x": x}, x / np.linalg.norm(x)),
    ("x : 4; E = ‖x‖₂²; wrt x", "x", {"x": x}, 2 * x),
    ("W : 3x4; E = ||W||_{F}; wrt W", "W", {"W": W}, W / np.linalg.norm(W)),
    ("x : 4; y : 4; E = ||x|| ||y|| + ||x - y||; wrt x", "x", {"x": x, "y": y},
     np.linalg.norm(y) * x / np.linalg.norm(x) + (x - y) / np.linalg.norm(x - y)),
]


@pytest.mark.parametrize("chain_text, wrt, inputs, expected", NORMS, ids=[c[0] for c in NORMS])
def test_norms_as_people_write_them(chain_text, wrt, inputs, expected):
    assert np.allclose(gradient_of(chain_text, wrt, inputs), expected, rtol=1e-10, atol=1e-12)


A = rng.normal(size=(4, 4))
SPELLINGS = [
    ("x : 4; A : 4×4; E = x⊤ A @ x; wrt x", (A + A.T) @ x),
    ("x : 4; A : 4 × 4; E = x.T · A x; wrt x", (A + A.T) @ x),
    ("x : 4; y : 4; A : 4x4; E = ⟨A x, y⟩ + ⟨x, x⟩; wrt x", A.T @ y + 2 * x),
]


@pytest.mark.parametrize("chain_text, expected", SPELLINGS, ids=[c[0] for c in SPELLINGS])
def test_other_spellings(chain_text, expected):
    inputs = {"x": x, "y": y, "A": A}
    used = {k: v for k, v in inputs.items() if f"{k} :" in chain_text}
    assert np.allclose(gradient_of(chain_text, "x", used), expected, rtol=1e-10)


def test_spellings_give_the_same_tree():
    plain = parse_chain("x : 4; A : 4x4; E = x' A x; wrt x").objective.expr
    for spelled in ("x : 4; A : 4×4; E = x⊤ A @ x; wrt x", "x : 4; A : 4 × 4; E = x.T · A x; wrt x",
                    "x : 4; A : 4x4; E = x^T A * x; wrt x"):
        assert parse_chain(spelled).objective.expr == plain


def test_inner_product_is_frobenius():
    assert text(parse_chain("a : 3; b : 3; E = ⟨a, b⟩; wrt a").objective.expr) == "a : b"


@pytest.mark.parametrize("chain_text, shown", [
    ("x : 3; E = 1/2 ||x||^2 ||x||; wrt x", "1/2 ‖x‖²‖x‖"),
    ("x : 3; E = ||x|| ||x||; wrt x", "‖x‖‖x‖"),
    ("x : 3; E = 3 ||2 x||; wrt x", "3‖2x‖"),
])
def test_bars_after_an_operand_open_when_no_norm_is_open(chain_text, shown):
    assert text(parse_chain(chain_text).objective.expr) == shown
