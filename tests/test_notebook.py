"""derive in a notebook: short reprs, gradients with .latex/.text/.numpy, errors without
derive's frames, and the %%derive cell magic, run in a real Jupyter kernel (nbclient)."""
import numpy as np
import pytest

import derive
from external import missing

BACKPROP = "W : 5x4\nx : 4\ny : 5\nv = W x\ns = sigma(v)\nS = Diag(s)\nE = 1/2 (s - y):(s - y)\nwrt W\n"


def test_a_derivation_has_a_short_repr():
    shown = repr(derive.derive(BACKPROP))
    assert shown.startswith("<Derivation ∂E/∂W = (S − S²)(s − y)xᵀ (4 definitions, verified")
    assert len(shown) < 200
    assert "not checked" in repr(derive.derive(BACKPROP, check=False))


def test_a_gradient_shows_itself_and_evaluates():
    g = derive.derive(BACKPROP).gradient("W")
    assert g.text == "∂E/∂W = (S − S²)(s − y)xᵀ"
    assert g.latex == r"\frac{\partial E}{\partial W} = (S - S^2)(s - y)x^T"
    assert repr(g) == f"<Gradient {g.text}>" and g._repr_latex_() == f"$${g.latex}$$"
    rng = np.random.default_rng(3)
    W, x, y = rng.normal(size=(5, 4)), rng.normal(size=(4, 1)), rng.normal(size=(5, 1))
    s = 1 / (1 + np.exp(-W @ x))
    assert np.allclose(g.numpy(W=W, x=x, y=y), ((s - s * s) * (s - y)) @ x.T, rtol=1e-12)
    with pytest.raises(KeyError, match="no gradient with respect to x"):
        derive.derive(BACKPROP).gradient("x")


def test_an_input_error_carries_no_internal_frames():
    import traceback
    with pytest.raises(derive.DeriveError) as info:
        derive.derive("x : 3\nE = x x\nwrt x")
    frames = traceback.extract_tb(info.value.__traceback__)
    assert [f.name for f in frames if "derive" in f.filename and "tests" not in f.filename] == \
        ["derive"]
    assert str(info.value).startswith("<-e>:2:7: x x: x is a vector of length 3")


def _run_notebook(cells):
    try:
        import nbformat
        from nbclient import NotebookClient
    except ImportError:
        missing("Jupyter is not installed (pip install nbclient nbformat ipykernel)")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    return nb.cells


def test_the_cell_magic_in_a_real_kernel():
    cells = _run_notebook([
        "%load_ext derive.notebook",
        "%%derive\n" + BACKPROP,
        "%%derive --no-check\nx : 3\nE = x x\nwrt x",
        "import derive\nd = derive.derive('x : 3; E = x\\'x; wrt x')\nd.gradient('x')",
    ])
    shown = cells[1].outputs[0]["data"]
    assert r"\frac{\partial E}{\partial W} &= (S - S^2)(s - y)x^T" in shown["text/markdown"]
    assert shown["text/plain"].startswith("<Derivation ∂E/∂W")
    error = cells[2].outputs[0]
    assert error["name"] == "stdout" and error["text"].startswith("<cell>:2:7: x x:")
    gradient = cells[3].outputs[0]["data"]
    assert gradient["text/latex"] == r"$$\frac{\partial E}{\partial x} = 2x$$"
