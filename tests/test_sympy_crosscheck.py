"""Gallery examples against SymPy's matrix ``diff``, an independent symbolic engine.

Each case below rewrites an example chain as a SymPy matrix expression, asks SymPy
(1.14) for its derivative, substitutes random numbers and compares with derive's
gradient at the same point.  Only examples where SymPy's matrix ``diff`` answers
correctly are here.  Skipped (measured with SymPy 1.14), and why:

- ``determinant``, ``det_axb``, ``det_xtax``: SymPy returns an unevaluated ``Derivative(Determinant(…), X)``.
- ``log_det``, ``log_det_gram``, ``hessian_log_det``: SymPy returns ``0`` (wrong).
- ``gaussian_covariance``: ``log(det Σ)`` plus a 1×1 quadratic form raises
  ``TypeError: Mix of Matrix and Scalar symbols`` (and the log-det part alone gives 0).
- ``hadamard_form``, ``hadamard_residual``, ``tied_weight``, ``exp_sum``: SymPy answers with an array expression
  (``ArrayAdd(PermuteDims(ArrayTensorProduct(…)))``), not a matrix.
- ``diag_form``, ``diag_weights``: ``DiagMatrix`` inside a bilinear form raises RecursionError.
- elementwise functions (``sigma``, ``tanh``, ``log``, ``exp`` applied to a matrix
  expression): ``backprop``, ``tanh_layer``, ``two_layer``, ``three_layer``, ``residual``,
  ``logistic_regression``, ``log_sum``, ``log_sum_exp``, ``softmax_cross_entropy``,
  ``hessian_logistic_regression``, ``hessian_log_sum_exp``,
  ``sin_layer``, ``relu_layer`` —
  SymPy's matrix ``diff`` does not give a matrix gradient for these.
- ``cube_root``: a fractional power of a 1×1 matrix expression (as ``sqrt`` below), and
  ``unspecified_layer``, ``hessian_unspecified``: an unspecified function has no SymPy
  matrix counterpart.
- ``vector_norm``, ``frobenius_norm_plain``: ``sqrt`` of a 1×1 matrix expression raises
  ``TypeError: 'Half' object cannot be interpreted as an integer``.
- ``logsumexp``, ``softmax_nll``, ``softplus_logistic``, ``sqrt_sum``, ``attention_head``
  (softmax, logsumexp, softplus, sqrt of a vector) and ``kron_quadratic``,
  ``vec_least_squares`` (vec): SymPy's matrix expressions have no such operators to
  differentiate (``vec`` does not exist; elementwise functions as above).
- ``jacobian_question``, ``jacobian_softmax``, ``jacobian_normalise``, ``jacobian_sigmoid_layer``,
  ``jacobian_axb``, ``jacobian_gram``, ``jacobian_inverse``: Jacobians, no gradient (SymPy's
  matrix ``diff`` of a matrix by a matrix is a 4-index array); test_jacobian.py compares
  them with their closed forms.
"""
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from derive.api import derive_file
from derive.check import adjoint_values
from derive.evaluate import evaluate, forward

from test_examples import draw

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
half = sp.Rational(1, 2)

# example name -> the objective written in SymPy, from the example's source formula
CASES = {
    "linear_form": lambda s: s["a"].T * s["x"],
    "bilinear_form": lambda s: s["a"].T * s["X"] * s["b"],
    "bilinear_transpose": lambda s: s["a"].T * s["X"].T * s["b"],
    "quadratic_form": lambda s: s["x"].T * s["A"] * s["x"],
    "hessian_quadratic_form": lambda s: s["x"].T * s["A"] * s["x"],
    "hessian_least_squares": lambda s: half * (s["A"] * s["x"] - s["b"]).T * (s["A"] * s["x"] - s["b"]),
    "hessian_trace_xtax": lambda s: sp.Trace(s["X"].T * s["A"] * s["X"]),
    "hessian_blocks": lambda s: half * (s["W"] * s["x"] + s["b"] - s["y"]).T
    * (s["W"] * s["x"] + s["b"] - s["y"]),
    "least_squares": lambda s: (s["A"] * s["x"] - s["b"]).T * (s["A"] * s["x"] - s["b"]),
    "weighted_least_squares": lambda s: (s["x"] - s["A"] * s["s"]).T * s["W"] * (s["x"] - s["A"] * s["s"]),
    "ridge": lambda s: (s["X"] * s["w"] - s["y"]).T * (s["X"] * s["w"] - s["y"])
    + s["lambda"] * s["w"].T * s["w"],
    "trace_axb": lambda s: sp.Trace(s["A"] * s["X"] * s["B"]),
    "trace_xtax": lambda s: sp.Trace(s["X"].T * s["A"] * s["X"]),
    "trace_xbxt": lambda s: sp.Trace(s["X"] * s["B"] * s["X"].T),
    "trace_axbxtc": lambda s: sp.Trace(s["A"] * s["X"] * s["B"] * s["X"].T * s["C"]),
    "trace_cube": lambda s: sp.Trace(s["X"] ** 3),
    "frobenius_norm": lambda s: sp.Trace(s["X"].T * s["X"]),
    "frobenius_axb": lambda s: sp.Trace((s["A"] * s["X"] * s["B"]).T * (s["A"] * s["X"] * s["B"])),
    "inverse_bilinear": lambda s: s["a"].T * sp.Inverse(s["X"]) * s["b"],
    "trace_inverse": lambda s: sp.Trace(sp.Inverse(s["X"]) * s["A"]),
    "gaussian_mean": lambda s: half * (s["x"] - s["mu"]).T * sp.Inverse(s["Sigma"]) * (s["x"] - s["mu"]),
    "matrix_factorisation": lambda s: sp.Trace((s["X"] - s["U"] * s["V"].T).T * (s["X"] - s["U"] * s["V"].T)),
    "rayleigh_quotient": lambda s: (s["x"].T * s["A"] * s["x"]) * sp.Inverse(s["x"].T * s["x"]),
}


def symbols(chain):
    out = {}
    for item in chain.inputs:
        rows, cols = (int(k) for k in item.symbol.shape)
        name = item.symbol.name
        out[name] = sp.Symbol(name) if (rows, cols) == (1, 1) else sp.MatrixSymbol(name, rows, cols)
    return out


def numeric(expr, syms, point):
    """Substitute the point into a SymPy (matrix) expression and return a float array."""
    subs = {}
    for name, sym in syms.items():
        value = point[name]
        subs[sym] = float(np.asarray(value).reshape(-1)[0]) if isinstance(sym, sp.Symbol) \
            else sp.ImmutableMatrix(value)
    result = expr.xreplace(subs).doit()
    if not isinstance(result, sp.MatrixBase):
        result = result.as_explicit()       # an array expression (SymPy's answer for some shapes)
    array = np.array(result.tolist(), dtype=float)
    return np.squeeze(array) if array.ndim > 2 else array


def test_enough_cases():
    assert len(CASES) >= 5
    assert all((EXAMPLES / f"{name}.chain").exists() for name in CASES)


def test_every_example_is_compared_or_its_skip_explained():
    for path in EXAMPLES.glob("*.chain"):
        assert path.stem in CASES or f"``{path.stem}``" in __doc__, path.stem


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_matches_sympy(name):
    derivation = derive_file(EXAMPLES / f"{name}.chain")
    assert derivation.check.ok, derivation.check.failures
    syms = symbols(derivation.chain)
    objective = CASES[name](syms)
    rng = np.random.default_rng(11)
    for _ in range(2):
        point = draw(derivation.chain, rng)
        values = forward(derivation.chain, point)
        values.update(adjoint_values(derivation, values, None))
        for gradient in derivation.gradients:
            symbolic = objective.diff(syms[gradient.wrt.name])
            assert not symbolic.has(sp.Derivative) and symbolic != 0, (name, symbolic)
            want = numeric(symbolic, syms, point)
            got = evaluate(gradient.expr, values)
            assert np.allclose(got, np.reshape(want, np.shape(got)), rtol=1e-9, atol=1e-12), (
                name, gradient.wrt.name, symbolic)
