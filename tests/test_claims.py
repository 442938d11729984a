"""Claims ("is my gradient right?"): right claims written unlike derive's form, wrong ones
of each slip kind, on least squares, a logistic layer, trace forms and a symmetric input.
Every closed form is written here in plain NumPy; the numbers a wrong claim shows are
recomputed from it at the point the verdict names."""
import dataclasses
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from derive import api, document, functions
from derive import expr as E
from derive.cli import main
from derive.errors import DeriveError
from derive.evaluate import evaluate, forward

LSQ = "A : 5x3; b : 5; x : 3; E = 1/2 (A x - b):(A x - b)"
LSQ2 = "A : 5x3; b : 5; x : 3; E = (A x - b):(A x - b)"
LAYER = "W : 5x4; x : 4; y : 5\nv = W x; s = sigma(v); S = Diag(s); E = 1/2 (s - y):(s - y)"
TRACE = "A : 3x3; X : 3x3; E = tr(X' A X)"
LINEAR = "A : 3x4; X : 4x3; E = tr(A X)"
TRACE3 = "A : 3x3; B : 3x3; X : 3x3; E = tr(A X B)"
SPD = "Sigma : 3x3 spd; x : 3; E = logdet(Sigma) + x' inv(Sigma) x"
SPD_TRACE = "A : 3x3; Sigma : 3x3 spd; E = tr(A Sigma)"


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


CLOSED = {   # the gradient each chain's claims are about, in NumPy
    LSQ: lambda p: p["A"].T @ (p["A"] @ p["x"] - p["b"]),
    LSQ2: lambda p: 2 * p["A"].T @ (p["A"] @ p["x"] - p["b"]),
    LAYER: lambda p: ((sigmoid(p["W"] @ p["x"]) - p["y"]) * sigmoid(p["W"] @ p["x"])
                      * (1 - sigmoid(p["W"] @ p["x"]))) @ p["x"].T,
    TRACE: lambda p: (p["A"] + p["A"].T) @ p["X"],
    LINEAR: lambda p: p["A"].T,
    TRACE3: lambda p: p["A"].T @ p["B"].T,
    SPD: lambda p: np.linalg.inv(p["Sigma"]).T - np.linalg.inv(p["Sigma"]).T @ p["x"] @ p["x"].T
    @ np.linalg.inv(p["Sigma"]).T,
    SPD_TRACE: lambda p: p["A"].T,
}
WRT = {LSQ: "x", LSQ2: "x", LAYER: "W", TRACE: "X", LINEAR: "X", TRACE3: "X", SPD: "Sigma", SPD_TRACE: "Sigma"}


def verdict(chain, claim, **options):
    derivation = api.derive(f"{chain}\nclaim dE/d{WRT[chain]} = {claim}", **options)
    found, = derivation.claims
    return derivation, found


def random_point(derivation, seed=1):
    rng = np.random.default_rng(seed)
    point = {}
    for item in derivation.chain.inputs:
        rows, cols = (int(n) for n in item.symbol.shape)
        value = rng.normal(size=(rows, cols))
        if "spd" in item.symbol.props:
            value = value @ value.T + rows * np.eye(rows)
        point[item.symbol.name] = value
    return point


RIGHT = [
    (LSQ, "A'A x - A'b", True),                      # expanded
    (LSQ, "(x'A' - b')A", None),                     # transposed form: a row, refused below
    (LAYER, "(S - S^2)(s x' - y x')", False),        # the seed's own expanded form
    (LAYER, "(s - y)∘(s - s∘s) x'", False),          # elementwise, no Diag
    (TRACE, "A X + A' X", True),
    (TRACE, "(X' A + X' A')'", True),                # Wᵀ-rearranged
    (LINEAR, "A'", True),
    (SPD, "inv(Sigma) - inv(Sigma) x x' inv(Sigma)", True),   # Σ⁻¹ where derive has Σ⁻ᵀ
]


@pytest.mark.parametrize("chain, claim, exact", [r for r in RIGHT if r[2] is not None])
def test_a_right_claim_holds_and_equals_the_closed_form(chain, claim, exact):
    derivation, found = verdict(chain, claim)
    assert found.holds is True and found.exact is exact, found
    assert found.points >= 4 and found.error <= found.tolerance <= 1e-9
    point = random_point(derivation)
    values = forward(derivation.chain, point)
    assert np.allclose(evaluate(found.claimed, values), CLOSED[chain](point), rtol=1e-10)


def test_a_right_claim_of_the_transposed_shape_is_an_error_naming_both_shapes():
    with pytest.raises(DeriveError, match="is 1×3, but x is a vector of length 3") as caught:
        verdict(LSQ, "(x'A' - b')A")
    assert (caught.value.line, caught.value.column) == (2, 15)


WRONG = [   # chain, claim, slip kind, a fragment of the diagnosis, the corrected claim (NumPy)
    (LSQ2, "A'(A x - b)", "factor", "a missing factor 2", lambda p, c: 2 * c),
    (LSQ, "2 A'(A x - b)", "factor", "an extra factor 2", lambda p, c: c / 2),
    (LSQ, "A'(b - A x)", "sign", "a wrong sign", lambda p, c: -c),
    (LSQ, "A'A x", "term", "a missing term", lambda p, c: c - p["A"].T @ p["b"]),
    (LSQ, "A'(A x - b) + x", "term", "an extra term: the claim's term x", lambda p, c: c - p["x"]),
    (LSQ, "A'A x + A'b", "sign", "one term's sign is wrong", lambda p, c: c - 2 * p["A"].T @ p["b"]),
    (LAYER, "(S - S^2) s x'", "term", "a missing term", None),
    (LAYER, "(S - S^2)(s + y) x'", "sign", "one term's sign is wrong", None),
    (LINEAR, "A", None, None, None),           # 3×4 against X's 4×3: an error, below
    (TRACE, "(A + A')X'", "transpose", "the claim has Xᵀ where the gradient needs X", None),
    (TRACE, "A X + X A'", "order", "a swapped product order", None),
    (TRACE3, "B'A'", "order", "the claim has BᵀAᵀ where the gradient needs AᵀBᵀ", None),
    (SPD_TRACE, "A", "transpose", "a missing transpose", lambda p, c: c.T),
    (SPD, "inv(Sigma) + inv(Sigma) x x' inv(Sigma)", "sign", "one term's sign is wrong", None),
]


@pytest.mark.parametrize("chain, claim, kind, fragment, fix", [w for w in WRONG if w[2]])
def test_a_wrong_claim_names_its_slip_and_shows_where_it_differs(chain, claim, kind, fragment, fix):
    derivation, found = verdict(chain, claim)
    assert found.holds is False and found.slip == kind, found
    assert fragment in found.diagnosis
    closed = CLOSED[chain](found.point)
    values = forward(derivation.chain, found.point)
    claimed = evaluate(found.claimed, values)
    assert not np.allclose(claimed, closed)
    if fix is not None:                           # the slip, corrected by hand, is the closed form
        assert np.allclose(fix(found.point, claimed), closed)
    u = _direction(found.direction[0], closed.shape)
    assert found.gradient_value == pytest.approx(np.sum(closed * u), rel=1e-9)
    assert found.claimed_value == pytest.approx(np.sum(claimed * u), rel=1e-9)
    assert found.difference_value == pytest.approx(found.gradient_value, rel=1e-5, abs=1e-8)
    assert found.claimed_value != pytest.approx(found.gradient_value, rel=1e-3)


def _direction(text, shape):
    """U from its name: ``e₂e₃ᵀ`` (1-based), ``e₂`` for a vector."""
    digits = str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")
    parts = [int(p.translate(digits).rstrip("ᵀ")) - 1 for p in text.split("e")[1:]]
    u = np.zeros(shape)
    u[parts[0], parts[1] if len(parts) > 1 else 0] = 1
    return u


def test_a_wrong_claim_with_no_recognisable_slip_still_gets_its_direction():
    derivation, found = verdict(LAYER, "(s - y) x'")            # the factor S − S² forgotten
    assert found.holds is False and found.slip == "" and found.diagnosis == ""
    closed = CLOSED[LAYER](found.point)
    assert found.gradient_value == pytest.approx(np.sum(closed * _direction(found.direction[0],
                                                                           closed.shape)))


def test_a_claim_right_only_along_symmetric_directions_is_said_so():
    _, found = verdict(SPD_TRACE, "(A + A')/2")
    assert found.holds is False and found.slip == "symmetric"
    assert "--symmetric-gradient" in found.diagnosis
    _, found = verdict(SPD_TRACE, "(A + A')/2", symmetric_gradient=True)
    assert found.holds is True
    _, found = verdict(SPD_TRACE, "A + A'", symmetric_gradient=True)
    assert found.holds is False and found.slip == "factor"


def test_exact_arithmetic_sees_a_difference_below_the_float_tolerance():
    _, found = verdict(LSQ, "A'(A x - b) + 0.0000000000001 x")
    assert found.holds is False and found.error < 1e-9
    assert "exact rational arithmetic" in found.note


def test_a_claim_adds_its_variable_to_wrt_and_needs_no_wrt_line():
    derivation = api.derive(LAYER + "\nwrt W\nclaim dE/dx = W'(S - S^2)(s - y)")
    assert [w.name for w in derivation.chain.wrt] == ["W", "x"]
    assert derivation.claims[0].holds
    assert api.derive(LSQ + "\nclaim ∂E/∂x = A'(A x - b)").claims[0].holds


def test_claims_from_the_api_and_their_errors():
    derivation = api.derive(LSQ + "; wrt x", claims={"x": "A'(A x - b)", "A": "(A x - b)x'"})
    assert [(c.wrt, c.holds, c.line) for c in derivation.claims] == [("x", True, 0), ("A", True, 0)]
    derivation = api.derive(LSQ + "; wrt x", claims=["x = A'A x"])
    assert derivation.claims[0].slip == "term"
    with pytest.raises(DeriveError, match=r"--claim:1:5: z is not a name of this chain"):
        api.derive(LSQ + "; wrt x", claims=["x = z"])
    with pytest.raises(DeriveError, match="write W = EXPR"):
        api.derive(LSQ + "; wrt x", claims=["A'(A x - b)"])
    with pytest.raises(DeriveError, match="--claim r: r is not an input"):
        api.derive(LSQ + "; wrt x", claims=["r = x"])


def test_an_unchecked_claim_is_said_to_be_unchecked():
    derivation = api.derive(LSQ + "\nclaim dE/dx = x", check=False)
    assert derivation.claims[0].holds is None
    assert "not checked" in derivation.to_markdown()


# ---------------------------------------------------------------- outputs and exit codes


CHAIN = LSQ.replace("; ", "\n") + "\nclaim dE/dx = A'A x - A'b\nclaim dE/dx = 2 A'(A x - b)\n"


@pytest.fixture
def chain_file(tmp_path):
    path = tmp_path / "lsq.chain"
    path.write_text(CHAIN, encoding="utf-8")
    return path


def test_check_exits_1_on_a_wrong_claim_and_0_when_every_claim_holds(chain_file, tmp_path):
    result = CliRunner().invoke(main, ["check", str(chain_file)])
    assert result.exit_code == 1, result.output
    assert "✗ claim line 6" in result.stdout and "✓ claim line 5" in result.stdout
    wrong = [line for line in result.stderr.splitlines() if ": claim " in line]
    assert wrong == [f"{chain_file}:6:7: claim ∂E/∂x = 2Aᵀ(A x − b) does not hold: an extra "
                     f"factor 2: the claim is 2 times the gradient; derive's gradient is Aᵀ(A x − b)"]
    right = tmp_path / "right.chain"
    right.write_text(CHAIN.rsplit("claim", 1)[0], encoding="utf-8")
    assert CliRunner().invoke(main, ["check", str(right)]).exit_code == 0
    result = CliRunner().invoke(main, ["check", str(right), "--claim", "x = A'A x"])
    assert result.exit_code == 1 and "derive: claim ∂E/∂x = Aᵀ A x does not hold" in result.stderr


def test_derive_s_own_failed_check_stays_exit_3_with_a_claim(monkeypatch, tmp_path):
    """σ′ = s + s∘s, a sign slip in the table: derive's check fails, whatever the claims say."""
    path = tmp_path / "layer.chain"
    path.write_text(LAYER + "\nclaim dE/dW = (s - y) x'\n", encoding="utf-8")
    assert CliRunner().invoke(main, ["check", str(path)]).exit_code == 1
    sigma = functions.ELEMENTWISE["sigma"]
    wrong = dataclasses.replace(sigma, differential=lambda u, y, du: E.Hadamard(
        E.Add((y, E.Hadamard(y, y))), du))
    monkeypatch.setitem(functions.ELEMENTWISE, "sigma", wrong)
    assert CliRunner().invoke(main, ["check", str(path)]).exit_code == 3


def test_render_writes_the_verdicts_and_exits_0(chain_file, tmp_path):
    out = tmp_path / "lsq.md"
    result = CliRunner().invoke(main, ["render", str(chain_file), "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert "**Claim** (line 5)" in text and "is **right**" in text
    assert "is **wrong**: an extra factor 2" in text and "at the rate " in text
    assert result.stderr.count(": claim ") == 1


@pytest.mark.parametrize("flavor", ["mse", "katex", "github"])
def test_every_markdown_flavor_shows_each_claim_in_a_block_of_its_own(flavor):
    derivation = api.derive(CHAIN)
    text = derivation.to_markdown(flavor)
    blocks = [b for b in text.split("\n\n") if b.startswith("**Claim**")]
    assert len(blocks) == 2 and "right" in blocks[0] and "wrong" in blocks[1]
    if flavor == "github":
        assert "$`\\frac{\\partial E}{\\partial x} = 2A^T(Ax - b)`$" in blocks[1]


def test_latex_json_html_and_the_article_show_the_verdicts():
    derivation = api.derive(CHAIN)
    assert derivation.to_latex().count("\\noindent \\textbf{Claim}") == 2
    data = json.loads(derivation.to_json())
    assert [(c["holds"], c["slip"]) for c in data["claims"]] == [(True, ""), (False, "factor")]
    assert data["claims"][1]["gradient_text"] == "Aᵀ(A x − b)"
    assert document.standalone(derivation).count("\\paragraph{Claim.}") == 2
    page = document.html([derivation])
    assert page.count('<p class="claim">') == 2 and "an extra factor 2" in page


@pytest.mark.skipif(shutil.which("pdflatex") is None or shutil.which("pdftotext") is None,
                    reason="needs pdflatex and pdftotext")
def test_the_pdf_shows_the_verdicts(tmp_path, chain_file):
    out = tmp_path / "lsq.pdf"
    result = CliRunner().invoke(main, ["render", str(chain_file), "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True).stdout
    assert "Claim." in text and "an extra factor 2" in text


# ---------------------------------------------------------------- the gallery


GALLERY = Path(__file__).resolve().parent.parent / "examples" / "claims"
GALLERY_CLOSED = {   # example -> (the gradient in NumPy, [(holds, slip) per claim])
    "least_squares": (lambda A, b, x: A.T @ (A @ x - b), [(True, ""), (False, "sign")]),
    "missing_factor": (lambda A, b, x: 2 * A.T @ (A @ x - b), [(False, "factor")]),
    "backprop": (lambda W, x, y: ((sigmoid(W @ x) - y) * sigmoid(W @ x) * (1 - sigmoid(W @ x)))
                 @ x.T, [(True, ""), (False, "term")]),
    "trace_transpose": (lambda A, X: A.T, [(True, ""), (False, "transpose")]),
    "trace_order": (lambda A, B, X: A.T @ B.T, [(True, ""), (False, "order")]),
    "extra_term": (lambda A, X: (A + A.T) @ X, [(True, ""), (False, "term"), (False, "sign")]),
    "symmetric": (lambda Sigma, x: np.linalg.inv(Sigma) - np.linalg.inv(Sigma) @ x @ x.T
                  @ np.linalg.inv(Sigma), [(True, "")]),
    "symmetric_directions": (lambda A, Sigma: A.T, [(False, "symmetric")]),
}


def test_every_claim_example_has_a_closed_form():
    assert {p.stem for p in GALLERY.glob("*.chain")} == set(GALLERY_CLOSED)


@pytest.mark.parametrize("name", sorted(GALLERY_CLOSED))
def test_claim_example_against_its_closed_form(name):
    """Each claim's verdict, and each claim that holds equal to the closed form (which is
    also derive's gradient) at a point drawn here; each wrong one different from it."""
    closed, expected = GALLERY_CLOSED[name]
    derivation = api.derive_file(GALLERY / f"{name}.chain")
    assert [(c.holds, c.slip) for c in derivation.claims] == expected
    point = random_point(derivation, seed=7)
    values = forward(derivation.chain, point)
    want = closed(**point)
    wrt = derivation.claims[0].wrt
    assert np.allclose(derivation.gradient(wrt).numpy(**point), want)
    for claim in derivation.claims:
        assert np.allclose(evaluate(claim.claimed, values), want) == claim.holds
