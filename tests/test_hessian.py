"""Hessians (``hessian W`` and ``hessian W, b``): the gallery against closed forms written
here in plain NumPy, the check catching wrong lines, the errors, and every output format."""
import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest

from derive import DeriveError
from derive.api import derive, derive_file
from derive.check_hessian import hessian_verdicts
from derive.expr import Mul, Number
from derive.numpy_code import to_numpy
from test_numpy_code import load

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def commutation(m, n):
    """K with K vec(X) = vec(Xᵀ) for an m×n X (column-major vec)."""
    k = np.zeros((m * n, m * n))
    for i in range(m):
        for j in range(n):
            k[i * n + j, j * m + i] = 1
    return k


def logistic(X, w, y):
    p = sigmoid(X @ w)
    return {"w": X.T @ np.diag((p * (1 - p))[:, 0]) @ X}


def log_sum_exp(A, x, b):
    p = softmax(A @ x + b)
    return {"x": A.T @ (np.diag(p[:, 0]) - p @ p.T) @ A}


def log_det(X):
    inverse = np.linalg.inv(X)
    return {"X": -np.kron(inverse, inverse.T) @ commutation(*X.shape)}


def unspecified(a, x, **functions):
    return {"x": functions["g_prime2"](a.T @ x) * (a @ a.T)}


def blocks(W, x, b, y):
    m = W.shape[0]
    return {"W": np.kron(x @ x.T, np.eye(m)), "W,b": np.kron(x, np.eye(m)),
            "b,W": np.kron(x.T, np.eye(m)), "b": np.eye(m)}


CLOSED_FORMS = {
    "hessian_quadratic_form": lambda x, A: {"x": A + A.T},
    "hessian_least_squares": lambda A, x, b: {"x": A.T @ A},
    "hessian_logistic_regression": logistic,
    "hessian_log_sum_exp": log_sum_exp,
    "hessian_log_det": log_det,
    "hessian_unspecified": unspecified,
    "hessian_blocks": blocks,
    "hessian_trace_xtax": lambda A, X: {"X": np.kron(np.eye(X.shape[1]), A + A.T)},
}

FUNCTIONS = {"g": np.sin, "g_prime": np.cos, "g_prime2": lambda u: -np.sin(u)}


def point(chain, rng):
    """Square matrices near I (log det), everything else standard normal."""
    values = {}
    for item in chain.inputs:
        shape = tuple(int(k) for k in item.symbol.shape)
        value = rng.normal(size=shape)
        if shape[0] == shape[1] > 1:
            value = np.eye(shape[0]) + 0.3 * value
        values[item.symbol.name] = value
    return values


def test_every_hessian_example_has_a_closed_form():
    assert {p.stem for p in EXAMPLES.glob("hessian_*.chain")} == set(CLOSED_FORMS)


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_hessian_matches_closed_form(name, tmp_path):
    derivation = derive_file(EXAMPLES / f"{name}.chain")
    assert derivation.check.ok, derivation.check.failures
    assert any(v.block == "hessian" for v in derivation.check.verdicts)
    module = load(to_numpy(derivation), tmp_path, name)
    rng = np.random.default_rng(3)
    names = [w.name for w in derivation.hessians[0].wrt]
    for _ in range(2):
        inputs = point(derivation.chain, rng)
        extra = {k: v for k, v in FUNCTIONS.items() if k in module.hessian.__code__.co_varnames}
        got = module.hessian(**extra, **inputs)
        want = CLOSED_FORMS[name](**inputs, **extra)
        assert set(got) == set(want)
        for key, value in want.items():
            assert np.allclose(got[key], value, rtol=1e-9, atol=1e-12), (name, key)
        direction = {n: rng.normal(size=inputs[n].shape) for n in names}
        product = module.hvp(direction if len(names) > 1 else direction[names[0]], **extra,
                             **inputs)
        product = product if len(names) > 1 else {names[0]: product}
        for row in names:
            expected = sum(_block(want, row, col) @ direction[col].reshape(-1, 1, order="F")
                           for col in names)
            assert np.allclose(product[row].reshape(-1, 1, order="F"), expected, rtol=1e-9,
                               atol=1e-12), (name, row)


def _block(blocks, row, col):
    return blocks[row] if row == col else blocks[f"{row},{col}"]


@pytest.mark.parametrize("name, matrix, symmetric", [
    ("hessian_quadratic_form", "A + Aᵀ", True),
    ("hessian_least_squares", "Aᵀ A", True),
    ("hessian_logistic_regression", "XᵀDiag(p − p ∘ p) X", True),
    ("hessian_trace_xtax", "I ⊗ (A + Aᵀ)", True),
    ("hessian_unspecified", "g′′(aᵀ x) a aᵀ", True),
    ("hessian_log_det", "−(X⁻¹ ⊗ X⁻ᵀ)K_(4,4)", False),      # symmetric, but not on sight
])
def test_kronecker_forms_read_as_textbooks_write_them(name, matrix, symmetric):
    from derive.printer import text
    h = derive_file(EXAMPLES / f"{name}.chain", check=False).hessians[0]
    assert text(h.blocks[0].matrix) == matrix
    assert h.symmetric is symmetric


def test_blocks_are_keyed_by_names():
    derivation = derive_file(EXAMPLES / "hessian_blocks.chain")
    data = json.loads(derivation.to_json())["hessians"][0]
    assert data["wrt"] == ["W", "b"]
    assert set(data["blocks"]) == {"W", "W,b", "b,W", "b"}
    assert data["blocks"]["W,b"]["shape"] == ["12", "3"]
    assert data["layout"] == "numerator layout, column-major vec"


# ---------------------------------------------------------------- the check


def _corrupted(derivation, index, factor=2):
    """The derivation with what Hessian line ``index`` shows (a block: its matrix) scaled
    by ``factor``."""
    h = derivation.hessians[0]
    lines = list(h.lines)
    line = lines[index]
    field = "matrix" if line.matrix is not None else "expr"
    lines[index] = dataclasses.replace(line, **{field: Mul((Number(factor), getattr(line, field)))})
    return dataclasses.replace(derivation, hessians=(dataclasses.replace(h, lines=tuple(lines)),))


@pytest.mark.parametrize("kind", ["differential", "second", "block"])
def test_a_wrong_line_fails_the_check(kind):
    derivation = derive_file(EXAMPLES / "hessian_logistic_regression.chain")
    index = next(i for i, line in enumerate(derivation.hessians[0].lines) if line.kind == kind)
    verdicts = {v.index: v for v in hessian_verdicts(_corrupted(derivation, index))}
    assert not verdicts[index].ok
    assert verdicts[index].relative_error > 0.1
    assert all(v.ok for i, v in verdicts.items() if i != index and i < index)


def test_an_asymmetric_second_differential_fails_the_symmetry_check():
    """d(∇E) = A dx instead of (A + Aᵀ)dx: not a Hessian of anything."""
    derivation = derive_file(EXAMPLES / "hessian_quadratic_form.chain")
    h = derivation.hessians[0]
    lines = list(h.lines)
    index = next(i for i, line in enumerate(lines) if line.kind == "differential")
    wrong = lines[index].expr.factors[0].terms[0]          # A, of (A + Aᵀ) dx
    lines[index] = dataclasses.replace(lines[index], expr=Mul((wrong, lines[index].expr.factors[1])))
    broken = dataclasses.replace(derivation, hessians=(dataclasses.replace(h, lines=tuple(lines)),))
    verdicts = hessian_verdicts(broken)
    symmetry = verdicts[-1]
    assert symmetry.index == len(lines) and not symmetry.ok


def test_every_checked_line_has_a_verdict_and_the_gradients_are_not_claimed():
    derivation = derive_file(EXAMPLES / "hessian_blocks.chain")
    h = derivation.hessians[0]
    indexes = {v.index for v in derivation.check.verdicts if v.block == "hessian"}
    assert indexes == {i for i, line in enumerate(h.lines) if line.kind != "gradient"} \
        | {len(h.lines)}


def test_derive_check_prints_the_hessian_lines():
    from click.testing import CliRunner
    from derive.cli import main
    result = CliRunner().invoke(main, ["check", str(EXAMPLES / "hessian_blocks.chain")])
    assert result.exit_code == 0, result.output
    assert "∂²E/∂W∂b" in result.output
    assert "symmetry: uᵀHv = vᵀHu" in result.output


def test_no_check_says_so():
    derivation = derive_file(EXAMPLES / "hessian_least_squares.chain", check=False)
    text = derivation.to_markdown()
    assert "symmetry was **not** checked numerically" in text


# ---------------------------------------------------------------- requests and errors


def error_of(text):
    with pytest.raises(DeriveError) as caught:
        derive(text, check=False)
    return caught.value


def test_hessian_of_a_non_scalar_says_what_to_ask_instead():
    error = error_of("x : 4\nA : 4x4\nv = A x\nhessian x")
    assert (error.line, error.column) == (4, 1)
    assert "a Hessian is of a scalar" in error.message
    assert "jacobian v wrt x" in error.message


def test_hessian_of_an_unknown_name():
    error = error_of("x : 4\nE = x'x\nhessian q")
    assert (error.line, error.column) == (3, 9)
    assert "q is not an input of this chain (its inputs: x)" in error.message


def test_hessian_of_a_defined_name():
    error = error_of("x : 4\nv = 2 x\nE = v'v\nhessian v")
    assert (error.line, error.column) == (4, 9)
    assert "v is defined on line 2; hessian needs an input" in error.message


def test_a_second_hessian_line_is_refused():
    error = error_of("x : 4\nb : 4\nE = x'b\nhessian x\nhessian b")
    assert (error.line, error.column) == (5, 1)
    assert "hessian W, b" in error.message


def test_hessian_without_a_name():
    error = error_of("x : 4\nE = x'x\nhessian")
    assert error.line == 3
    assert "expected a name after 'hessian'" in error.message


def test_a_name_the_objective_does_not_depend_on_is_a_warning_and_its_blocks_are_zero():
    derivation = derive("x : 4\nc : 3\nE = x'x\nhessian x, c")
    said = [str(w) for w in derivation.warnings if " c" in str(w)]
    assert said == ["hessian c: E does not depend on c, so its gradient and every Hessian "
                    "block with c are 0"]                  # one warning, not the wrt's too
    assert derivation.check.ok
    with pytest.raises(DeriveError) as caught:
        derive("x : 4\nc : 3\nE = x'x\nhessian x, c", strict=True)
    assert "--strict" in caught.value.message


def test_the_hessian_names_are_differentiated_without_a_wrt_line():
    derivation = derive("x : 4\nA : 4x4\nE = x'A x\nhessian x")
    assert [w.name for w in derivation.chain.wrt] == ["x"]
    assert derivation.chain.hessians == ((("x",), 4, 1),)


def test_a_wrt_line_keeps_its_names_and_gains_the_hessians():
    derivation = derive("x : 4\nA : 4x4\nE = x'A x\nwrt A\nhessian x")
    assert [w.name for w in derivation.chain.wrt] == ["A", "x"]
    assert [w.name for w in derivation.hessians[0].wrt] == ["x"]
    assert derivation.check.ok


def test_hessian_through_named_adjoints():
    """Two layers: the gradients use named adjoints, which the Hessian writes out."""
    rng = np.random.default_rng(0)
    text = (EXAMPLES / "two_layer.chain").read_text().replace("wrt W1, W2", "hessian W1, W2")
    derivation = derive(text)
    assert derivation.check.ok, derivation.check.failures
    W1, W2, x, y = (rng.normal(size=s) for s in ((4, 3), (2, 4), (3, 1), (2, 1)))

    def gradient(W1, W2):
        h = sigmoid(W1 @ x)
        o = W2 @ h
        d1 = (h - h * h) * (W2.T @ (o - y))
        return np.concatenate([(d1 @ x.T).reshape(-1, order="F"), ((o - y) @ h.T).reshape(-1, order="F")])

    source = to_numpy(derivation)
    namespace: dict = {}
    exec(compile(source, "two_layer_hessian", "exec"), namespace)
    got = namespace["hessian"](W1=W1, W2=W2, x=x, y=y)
    full = np.block([[got["W1"], got["W1,W2"]], [got["W2,W1"], got["W2"]]])
    columns = []
    for k in range(full.shape[1]):
        e = np.zeros(full.shape[1])
        e[k] = 1e-6
        dW1, dW2 = e[:12].reshape(4, 3, order="F"), e[12:].reshape(2, 4, order="F")
        columns.append((gradient(W1 + dW1, W2 + dW2) - gradient(W1 - dW1, W2 - dW2)) / 2e-6)
    assert np.allclose(full, np.stack(columns, axis=1), rtol=1e-6, atol=1e-8)
    assert np.allclose(full, full.T, atol=1e-12)


# ---------------------------------------------------------------- outputs


@pytest.mark.parametrize("flavor", ["mse", "katex", "github"])
def test_markdown_shows_the_hessian(flavor):
    text = derive_file(EXAMPLES / "hessian_blocks.chain").to_markdown(flavor)
    assert r"\frac{\partial^2 E}{\partial W\,\partial b}" in text
    assert r"d\left(\nabla_{W} E\right)" in text
    assert "u^THv = v^THu" in text


def test_latex_and_documents_show_the_hessian():
    from derive import document
    derivation = derive_file(EXAMPLES / "hessian_logistic_regression.chain")
    for text in (derivation.to_latex(), document.standalone(derivation),
                 document.html([derivation])):
        assert r"\nabla_{w} E" in text
        assert "symmetry was checked numerically" in text


# ---------------------------------------------------------------- pasted LaTeX


def test_a_pasted_hessian_request():
    text = (r"Let $X \in \mathbb{R}^{6\times 3}$, $w \in \mathbb{R}^3$, $y \in \mathbb{R}^6$, "
            r"$p = \sigma(Xw)$ and $E = -(y^T\log(p) + (1-y)^T\log(1-p))$. "
            r"What is $\frac{\partial^2 E}{\partial w^2}$?")
    derivation = derive(text)
    assert derivation.chain.hessians[0][0] == ("w",)
    assert derivation.check.ok
    rng = np.random.default_rng(1)
    X, w = rng.normal(size=(6, 3)), rng.normal(size=(3, 1))
    p = sigmoid(X @ w)
    from derive.evaluate import evaluate, forward
    values = forward(derivation.chain, {"X": X, "w": w, "y": rng.normal(size=(6, 1))})
    got = evaluate(derivation.hessians[0].blocks[0].matrix, values)
    assert np.allclose(got, X.T @ np.diag((p * (1 - p))[:, 0]) @ X)


def test_a_pasted_block_request_and_a_prose_hessian_line():
    text = (r"$W \in \mathbb{R}^{3\times 4}$, $x \in \mathbb{R}^4$, $b, y \in \mathbb{R}^3$, "
            r"$E = \frac12 \|Wx + b - y\|^2$: find $\frac{\partial^2 E}{\partial W\,\partial b}$.")
    assert derive(text, check=False).chain.hessians[0][0] == ("W", "b")
    prose = text.replace(r"find $\frac{\partial^2 E}{\partial W\,\partial b}$.", "\nhessian b\n")
    assert derive(prose, check=False).chain.hessians[0][0] == ("b",)


NABLA_FORMS = [r"$E = \frac{1}{2}x^TAx$. Find $\nabla^2_x E$.",
               r"Find $\nabla_x^2 \frac{1}{2}x^TAx$.",
               r"$f(x) = \frac{1}{2}x^TAx$. Find $\nabla^2 f(x)$.",
               r"$f(x) = \frac{1}{2}x^TAx$. Find $\nabla^{2} f$."]


@pytest.mark.parametrize("asked", NABLA_FORMS)
def test_nabla_squared_asks_for_the_hessian_and_says_how_it_is_read(asked):
    text = r"Let $x \in \mathbb{R}^4$, $A \in \mathbb{R}^{4\times 4}$. " + asked
    derivation = derive(text)
    assert derivation.chain.hessians[0][0] == ("x",) and derivation.check.ok
    assert any("read as the Hessian" in str(w) for w in derivation.warnings)
    A = np.random.default_rng(2).normal(size=(4, 4))
    from derive.evaluate import evaluate
    got = evaluate(derivation.hessians[0].blocks[0].matrix, {"A": A, "x": np.ones((4, 1))})
    assert np.allclose(got, (A + A.T) / 2)


def test_nabla_with_a_square_inside_its_operand_is_a_gradient_not_a_hessian():
    derivation = derive(r"Let $x \in \mathbb{R}^4$. Find $\nabla_x \|x\|^2$.")
    assert not derivation.chain.hessians and derivation.gradients[0].wrt.name == "x"
    x = np.array([[1.0], [2.0], [-2.0], [4.0]])
    assert np.allclose(derivation.gradients[0].numpy(x=x), 2 * x)


def test_a_claimed_hessian_is_not_compared_and_says_so():
    text = r"$x \in \mathbb{R}^4$, $E = x^Tx$, $\frac{\partial^2 E}{\partial x^2} = 2I$"
    derivation = derive(text, check=False)
    assert any("right side of a Hessian is not compared" in str(w) for w in derivation.warnings)


# ---------------------------------------------------------------- the whole gallery


GALLERY = sorted(p for p in EXAMPLES.glob("*.chain") if not p.stem.startswith("hessian_")
                 and "\nwrt *" not in p.read_text()
                 and "\nwrt " in p.read_text())     # the Jacobian examples have no gradient


@pytest.mark.parametrize("path", GALLERY, ids=lambda p: p.stem)
def test_every_gallery_chain_has_a_checked_hessian(path):
    """Each example's ``wrt`` line made a ``hessian`` line: every line and block verifies."""
    text = re.sub(r"\nwrt ", "\nhessian ", path.read_text())
    derivation = derive(text)
    assert derivation.check.ok, derivation.check.failures
    h = derivation.hessians[0]
    assert len([v for v in derivation.check.verdicts if v.block == "hessian"]) == \
        len([line for line in h.lines if line.kind != "gradient"]) + 1


def test_vec_least_squares_hessian_is_the_kronecker_textbook_form():
    """‖AXB − C‖²: H = 2(BBᵀ)⊗(AᵀA) on column-major vec (Magnus & Neudecker)."""
    text = (EXAMPLES / "vec_least_squares.chain").read_text().replace("\nwrt X", "\nhessian X")
    derivation = derive(text)
    rng = np.random.default_rng(5)
    inputs = point(derivation.chain, rng)
    namespace: dict = {}
    exec(compile(to_numpy(derivation), "vec_least_squares_hessian", "exec"), namespace)
    got = namespace["hessian"](**inputs)["X"]
    A, B = inputs["A"], inputs["B"]
    assert np.allclose(got, 2 * np.kron(B @ B.T, A.T @ A), rtol=1e-10)


def test_a_symmetric_input_hessian_is_said_to_hold_for_symmetric_directions(tmp_path):
    """E = aᵀS⁻¹a with S spd: d²E = 2 aᵀS⁻¹ D S⁻¹ D S⁻¹a for symmetric D (by hand); derive's
    Hessian is derived from a gradient simplified with Sᵀ = S, so it is right there and the
    output says that is where it holds."""
    derivation = derive("S : 3x3 spd\na : 3\nE = a' inv(S) a\nhessian S")
    assert derivation.check.ok
    assert any("hold for symmetric directions dS" in str(w) for w in derivation.warnings)
    module = load(to_numpy(derivation), tmp_path, "symmetric_hessian")
    rng = np.random.default_rng(5)
    base = rng.normal(size=(3, 3))
    S, a = base @ base.T + 3 * np.eye(3), rng.normal(size=(3, 1))
    D = rng.normal(size=(3, 3))
    D = D + D.T
    inverse = np.linalg.inv(S)
    want = 2 * (a.T @ inverse @ D @ inverse @ D @ inverse @ a).item()
    vec = D.reshape(-1, 1, order="F")
    got = (vec.T @ module.hessian(S=S, a=a)["S"] @ vec).item()
    assert np.isclose(got, want, rtol=1e-9)
