"""Result quality: the LaTeX length of derive's gradient against the textbook form.

``python benchmarks/quality.py`` prints one row per gradient of examples/*.chain that has
a textbook form below (written from the chain's ``# source:`` comment, in derive's
notation and with the chain's own defined names, e.g. ``r`` for ``x − μ``; for the
networks, ``\\bar{h}`` is the back-propagated δ of the source) and the overall ratio,
Σ derive / Σ textbook, aimed at ≤ 1.2.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

from derive.api import derive_file
from derive.printer import latex

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

TEXTBOOK = {
    ("attention_head", "Q"): r"\bar{S}K",
    ("attention_head", "K"): r"\bar{S}^TQ",
    ("attention_head", "V"): r"A^T\bar{O}",
    ("bilinear_form", "X"): r"ab^T",
    ("bilinear_transpose", "X"): r"ba^T",
    ("det_axb", "X"): r"\det(AXB)X^{-T}",
    ("det_xtax", "X"): r"\det(X^TAX)(AX(X^TAX)^{-1} + A^TX(X^TA^TX)^{-1})",
    ("determinant", "X"): r"\det(X)X^{-T}",
    ("diag_form", "x"): r"a\circ b",
    ("diag_weights", "d"): r"x\circ x",
    ("exp_sum", "x"): r"\exp(x)",
    ("frobenius_axb", "X"): r"2A^TMB^T",
    ("frobenius_norm", "X"): r"2X",
    ("frobenius_norm_plain", "X"): r"\frac{X}{\|X\|_F}",
    ("gaussian_covariance", "Sigma"): r"\frac{1}{2}\Sigma^{-1} - \frac{1}{2}\Sigma^{-1}rr^T\Sigma^{-1}",
    ("gaussian_mean", "mu"): r"-\Sigma^{-1}r",
    ("hadamard_form", "x"): r"2y\circ r",
    ("hadamard_residual", "X"): r"2A\circ R",
    ("inverse_bilinear", "X"): r"-X^{-T}ab^TX^{-T}",
    ("kron_quadratic", "X"): r"AXB^T + A^TXB",
    ("least_squares", "x"): r"2A^T(Ax - b)",
    ("linear_form", "x"): r"a",
    ("log_det", "X"): r"X^{-T}",
    ("log_det_gram", "X"): r"2X(X^TX)^{-1}",
    ("log_sum", "x"): r"\mathbf{1}\oslash x",
    ("log_sum_exp", "x"): r"\frac{\exp(x)}{\mathbf{1}^T\exp(x)}",
    ("logistic_regression", "w"): r"X^T(p - y)",
    ("logsumexp", "x"): r"\mathrm{softmax}(x)",
    ("matrix_factorisation", "U"): r"-2RV",
    ("matrix_factorisation", "V"): r"-2R^TU",
    ("quadratic_form", "x"): r"(A + A^T)x",
    ("rayleigh_quotient", "x"): r"\frac{(A + A^T)x - \frac{2x^TAx}{x^Tx}x}{x^Tx}",
    ("residual", "W"): r"((\mathbf{1} - t\circ t)\circ (h - y))x^T",
    ("ridge", "w"): r"2X^T(Xw - y) + 2\lambda w",
    ("softmax_cross_entropy", "W"): r"(\mathrm{softmax}(z) - y)x^T",
    ("softmax_nll", "W"): r"((\mathbf{1}^Ty)p - y)x^T",
    ("softplus_logistic", "w"): r"X^T(\sigma(z) - y)",
    ("sqrt_sum", "x"): r"\mathbf{1}\oslash (2\sqrt{x})",
    ("tanh_layer", "W"): r"((\mathbf{1} - t\circ t)\circ (t - y))x^T",
    ("three_layer", "W1"): r"((\mathbf{1} - h_{1}\circ h_{1})\circ \bar{h}_{1})x^T",
    ("three_layer", "W2"): r"((\mathbf{1} - h_{2}\circ h_{2})\circ \bar{h}_{2})h_{1}^T",
    ("three_layer", "W3"): r"(o - y)h_{2}^T",
    ("three_layer", "x"): r"W_{1}^T((\mathbf{1} - h_{1}\circ h_{1})\circ \bar{h}_{1})",
    ("three_layer", "y"): r"y - o",
    ("tied_weight", "W"): r"2(Wxr^T + Wrx^T)",
    ("trace_axb", "X"): r"A^TB^T",
    ("trace_axbxtc", "X"): r"A^TC^TXB^T + CAXB",
    ("trace_cube", "X"): r"3(X^2)^T",
    ("trace_inverse", "X"): r"-(X^{-1}AX^{-1})^T",
    ("trace_xbxt", "X"): r"XB^T + XB",
    ("trace_xtax", "X"): r"AX + A^TX",
    ("two_layer", "W1"): r"((h - h\circ h)\circ \bar{h})x^T",
    ("two_layer", "W2"): r"(o - y)h^T",
    ("vector_norm", "x"): r"\frac{x - a}{\|x - a\|}",
    ("vec_least_squares", "X"): r"2A^T\mathrm{unvec}(r)B^T",
    ("weighted_least_squares", "s"): r"-2A^TWr",
}


def rows():
    """(example, wrt, derive's LaTeX, textbook LaTeX or None) for every gallery gradient."""
    for path in sorted(EXAMPLES.glob("*.chain")):
        for gradient in derive_file(path, check=False).gradients:
            key = (path.stem, gradient.wrt.name)
            yield (*key, latex(gradient.expr), TEXTBOOK.get(key))


def main() -> int:
    total_derive = total_textbook = 0
    logs, missing = [], []
    print(f"{'example':<24} {'wrt':<6} {'derive':>6} {'textbook':>8} {'ratio':>6}")
    for name, wrt, ours, textbook in rows():
        if textbook is None:
            missing.append(f"{name}/{wrt}")
            continue
        ratio = len(ours) / len(textbook)
        total_derive, total_textbook = total_derive + len(ours), total_textbook + len(textbook)
        logs.append(math.log(ratio))
        print(f"{name:<24} {wrt:<6} {len(ours):>6} {len(textbook):>8} {ratio:>6.2f}")
    print(f"overall Σ derive / Σ textbook = {total_derive}/{total_textbook} = "
          f"{total_derive / total_textbook:.2f} (target ≤ 1.2); geometric mean of ratios "
          f"{math.exp(sum(logs) / len(logs)):.2f}; worst {math.exp(max(logs)):.2f}")
    if missing:
        print("no textbook form:", ", ".join(missing))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from results import recorded
    with recorded("quality", "python benchmarks/quality.py"):
        code = main()
    sys.exit(code)
