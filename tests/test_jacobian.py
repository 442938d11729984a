"""Jacobians: ``jacobian F wrt X`` and ``--jacobians``, against closed forms in plain NumPy.

Each gallery example's Jacobians are evaluated at random points drawn here and compared
with the textbook formula written below (column-major vec, ``np.kron``, a commutation
matrix built here); the numeric check is asserted separately, never used as the oracle.
"""
import dataclasses
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from derive import verdict
from derive.api import derive, derive_file
from derive.check_jacobian import jacobian_verdicts
from derive.errors import DeriveError
from derive.evaluate import evaluate, forward
from derive.expr import Kron
from derive.functions import stand_in_parameter

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
rng = np.random.default_rng(11)


def vec(a):
    return np.reshape(a, (-1, 1), order="F")


def commutation(m, n):
    """K with K vec(A) = vec(Aᵀ) for A m×n, column by column from unit matrices."""
    k = np.zeros((m * n, m * n))
    for j in range(m * n):
        unit = np.zeros((m * n, 1))
        unit[j] = 1
        k[:, j] = vec(np.reshape(unit, (m, n), order="F").T)[:, 0]
    return k


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def f_1_prime(u):
    c = stand_in_parameter("f_1")
    return c * np.cos(c * u) + u / 2


def question(W_1, x_0, y):
    x_1 = W_1 @ x_0
    c = stand_in_parameter("f_1")
    x_2 = np.sin(c * x_1) + x_1 ** 2 / 4
    d = np.diag(f_1_prime(x_1)[:, 0])
    return {"x_2/x_1": d, "x_1/W_1": np.kron(x_0.T, np.eye(5)), "E/x_2": (x_2 - y).T,
            "x_2/W_1": d @ np.kron(x_0.T, np.eye(5))}


def normalise(x):
    u = x / np.linalg.norm(x)
    return {"u/x": (np.eye(len(x)) - u @ u.T) / np.linalg.norm(x)}


def sigmoid_layer(W, x):
    s = sigmoid(W @ x)
    d = np.diag((s * (1 - s))[:, 0])
    return {"s/x": d @ W, "s/W": np.kron(x.T, d)}


def gram(X):
    m, n = X.shape
    return {"G/X": np.kron(np.eye(n), X.T) + np.kron(X.T, np.eye(n)) @ commutation(m, n)}


def inverse(X):
    y = np.linalg.inv(X)
    return {"Y/X": -np.kron(y.T, y)}


JACOBIAN_FORMS = {
    "jacobian_question": question,
    "jacobian_softmax": lambda x: {"p/x": np.diag(softmax(x)[:, 0]) - softmax(x) @ softmax(x).T},
    "jacobian_normalise": normalise,
    "jacobian_sigmoid_layer": sigmoid_layer,
    "jacobian_axb": lambda A, X, B: {"Y/X": np.kron(B.T, A)},
    "jacobian_gram": gram,
    "jacobian_inverse": inverse,
}


def draw(chain):
    """A random point (sizes 2, 3, 4, … for the symbolic sizes), square inputs near I."""
    sizes, point = {}, {}
    for item in chain.inputs:
        shape = []
        for size in item.symbol.shape:
            if size.is_Integer:
                shape.append(int(size))
            else:
                shape.append(sizes.setdefault(size, 2 + len(sizes)))
        value = rng.normal(size=shape)
        if shape[0] == shape[1] and shape[0] > 1:
            value = np.eye(shape[0]) + 0.3 * value
        point[item.symbol.name] = value
    return point


def test_every_jacobian_example_has_a_closed_form():
    assert {p.stem for p in EXAMPLES.glob("jacobian_*.chain")} == set(JACOBIAN_FORMS)


@pytest.mark.parametrize("name", sorted(JACOBIAN_FORMS))
def test_example_jacobians_match_closed_forms(name):
    derivation = derive_file(EXAMPLES / f"{name}.chain")
    assert derivation.check.ok, derivation.check.failures
    assert {v.block for v in derivation.check.verdicts} >= {"jacobian"}
    for _ in range(3):
        point = draw(derivation.chain)
        values = forward(derivation.chain, point)
        want = JACOBIAN_FORMS[name](**point)
        assert set(want) == {f"{b.of.name}/{b.wrt.name}" for b in derivation.jacobians}
        for block in derivation.jacobians:
            got = evaluate(block.matrix, values)
            expected = want[f"{block.of.name}/{block.wrt.name}"]
            assert got.shape == expected.shape
            assert np.allclose(got, expected, rtol=1e-9, atol=1e-12), (name, block.of, block.wrt)


def _module(source: str, tmp_path: Path, name: str):
    path = tmp_path / f"{name}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["jacobian_gram", "jacobian_sigmoid_layer", "jacobian_question"])
def test_numpy_module_jacobian(name, tmp_path):
    derivation = derive_file(EXAMPLES / f"{name}.chain")
    module = _module(derivation.to_numpy(), tmp_path, name)
    point = draw(derivation.chain)
    callables = {"f_1": lambda u: np.sin(stand_in_parameter("f_1") * u) + u ** 2 / 4,
                 "f_1_prime": f_1_prime} if name == "jacobian_question" else {}
    got = module.jacobian(**point, **callables)
    want = JACOBIAN_FORMS[name](**point)
    assert set(got) == set(want)
    for key in want:
        assert np.allclose(got[key], want[key], rtol=1e-9, atol=1e-12), key


def test_the_reference_question_with_jacobians():
    """--jacobians on question.tex: ∂x₁/∂vec W₁ = x₀ᵀ⊗I, ∂x₂/∂x₁ = Diag(f′(x₁)),
    ∂E/∂x₂ = (x₂ − y)ᵀ, and their product is vec(∂E/∂W₁)ᵀ."""
    derivation = derive_file(EXAMPLES / "question.tex", jacobians=True)
    assert derivation.check.ok, derivation.check.failures
    kinds = [b.kind for b in derivation.jacobians]
    assert kinds == ["local", "local", "local", "product"]
    point = {"W_1": rng.normal(size=(5, 4)), "x_0": rng.normal(size=(4, 1)),
             "y": rng.normal(size=(5, 1))}
    values = forward(derivation.chain, point)
    want = question(**point)
    for block in derivation.jacobians[:3]:
        got = evaluate(block.matrix, values)
        assert np.allclose(got, want[f"{block.of.name}/{block.wrt.name}"])
    product = evaluate(derivation.jacobians[3].matrix, values)
    x_1 = point["W_1"] @ point["x_0"]
    x_2 = np.sin(stand_in_parameter("f_1") * x_1) + x_1 ** 2 / 4
    gradient = ((x_2 - point["y"]) * f_1_prime(x_1)) @ point["x_0"].T
    assert product.shape == (1, 20)
    assert np.allclose(product, vec(gradient).T)
    markdown = derivation.to_markdown()
    assert r"\frac{\partial x_{2}}{\partial x_{1}} &= \mathrm{Diag}(f_{1}'(x_{1}))" in markdown
    assert r"\frac{\partial x_{1}}{\partial \mathrm{vec}(W_{1})} &= x_{0}^T\otimes I" in markdown
    assert "numerator layout" in markdown


def test_a_wrong_jacobian_fails_its_check():
    derivation = derive_file(EXAMPLES / "jacobian_axb.chain")
    block = derivation.jacobians[0]
    swapped = Kron(block.matrix.right, block.matrix.left)     # A ⊗ Bᵀ: the right shape, wrong
    wrong = dataclasses.replace(block, matrix=swapped)
    verdicts = jacobian_verdicts(dataclasses.replace(derivation, jacobians=(wrong,)))
    assert verdicts[0].ok and not verdicts[1].ok          # dY = A dX B holds; A ⊗ Bᵀ does not
    assert verdicts[1].block == "jacobian" and verdicts[1].relative_error > 1e-3


def test_every_format_shows_the_jacobians(tmp_path):
    derivation = derive_file(EXAMPLES / "jacobian_axb.chain")
    for flavor in ("mse", "katex", "github"):
        assert r"B^T\otimes A" in derivation.to_markdown(flavor)
    assert r"B^T\otimes A" in derivation.to_latex()
    data = json.loads(derivation.to_json())
    assert data["jacobians"][0]["key"] == "Y/X" and data["jacobians"][0]["jacobian"]["text"] == "Bᵀ ⊗ A"
    assert data["jacobians"][0]["shape"] == ["p*q", "m*n"]
    from derive.document import html, standalone
    assert r"B^T\otimes A" in standalone(derivation)
    assert r"B^T\otimes A" in html([derivation])
    assert "∂vec(Y)/∂vec(X) = Bᵀ ⊗ A" in verdict.to_verdict(derivation)


# ---------------------------------------------------------------- requests that cannot be answered


@pytest.mark.parametrize("text, where, says", [
    ("x : 3\nA : 3x3\ny = A x\njacobian z wrt x", "4:10", "z is not defined"),
    ("x : 3\nA : 3x3\ny = A x\njacobian y wrt q", "4:16", "q is not an input or a defined variable"),
    ("x : 3\nA : 3x3\ny = A x\nz = A x\njacobian y wrt z", "5:16", "y does not depend on z"),
    ("x : 3\nA : 3x3\ny = A x\njacobian x wrt A", "4:10", "x is an input"),
    ("x : 3\nA : 3x3\ny = A x\njacobian y x", "4:12", "`jacobian F wrt X`"),
    ("x : 3\nA : 3x3\ny = A x\nwrt x", "3:1", "`jacobian y wrt x`"),
])
def test_unanswerable_requests_are_refused_with_a_place(text, where, says):
    with pytest.raises(DeriveError) as caught:
        derive(text)
    message = caught.value.format()
    assert f"<-e>:{where}:" in message and says in message


def test_a_defined_variable_is_held_independent():
    """∂s/∂v for s = σ(v), v = W x: the local Jacobian, not one through W."""
    text = "W : 3x2\nx : 2\nv = W x\ns = sigma(v)\njacobian s wrt v"
    derivation = derive(text)
    point = {"W": rng.normal(size=(3, 2)), "x": rng.normal(size=(2, 1))}
    s = sigmoid(point["W"] @ point["x"])
    got = evaluate(derivation.jacobians[0].matrix, forward(derivation.chain, point))
    assert np.allclose(got, np.diag((s * (1 - s))[:, 0]))
    assert derivation.gradients == () and derivation.check.ok


def test_jacobians_beside_a_gradient():
    text = "W : 3x2\nx : 2\ny : 3\nv = W x\nE = 1/2 ||v - y||^2\njacobian v wrt W\nwrt W"
    derivation = derive(text)
    assert len(derivation.gradients) == 1 and len(derivation.jacobians) == 1
    point = {"W": rng.normal(size=(3, 2)), "x": rng.normal(size=(2, 1)), "y": rng.normal(size=(3, 1))}
    got = evaluate(derivation.jacobians[0].matrix, forward(derivation.chain, point))
    assert np.allclose(got, np.kron(point["x"].T, np.eye(3)))
    assert derivation.check.ok


def test_pasted_latex_asks_for_jacobians():
    """∂x₂/∂x₁ with x₁ defined, ∂vec(·)/∂vec(·), and ∂p/∂x of a vector objective are
    Jacobian requests, as derive's own output writes them."""
    text = ("W_1 : 5x4\nx_0 : 4\n$$x_1 = W_1 x_0$$ $$x_2 = f_1(x_1)$$\n"
            "$$\\frac{\\partial x_2}{\\partial x_1}$$\n"
            "$$\\frac{\\partial\\,\\mathrm{vec}(x_2)}{\\partial\\,\\mathrm{vec}(W_1)} = ?$$\n")
    derivation = derive(text)
    assert [j[:2] for j in derivation.chain.jacobians] == [("x_2", "x_1"), ("x_2", "W_1")]
    assert derivation.check.ok
    chain = derive("x : 3\n$$p = \\mathrm{softmax}(x)$$ $$\\frac{\\partial p}{\\partial x}$$").chain
    assert [j[:2] for j in chain.jacobians] == [("p", "x")] and chain.wrt == ()
