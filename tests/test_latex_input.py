"""The LaTeX front end: every construct of the README's LaTeX section, read into the same
Chain as the equivalent chain syntax (the oracle), plus skipped formulas, errors and fuzz."""
import random

import pytest
from click.testing import CliRunner

from derive import api
from derive.cli import main
from derive.errors import DeriveError
from derive.latex_input import FUNCTION_WORDS, looks_like_latex, parse_latex, read_chain
from derive.parse import parse_chain


def located(chain) -> tuple:
    """The reader's warnings as stderr shows them, ``file:line:col: sentence``."""
    return tuple(f"{chain.source.name}:{w.line}:{w.column}: {w}" for w in chain.warnings)


def same(latex_text: str, chain_text: str):
    """The LaTeX reads as the chain text does: same names, trees and wrt."""
    read, oracle = parse_latex(latex_text), parse_chain(chain_text)
    assert [(d.symbol.name, d.expr) for d in read.definitions] == \
        [(d.symbol.name, d.expr) for d in oracle.definitions]
    assert [w.name for w in read.wrt] == [w.name for w in oracle.wrt]
    return read


# ---------------------------------------------------------------- where math is read

DECLS = "W : 5x4\nx : 4\ny : 5\n"
SEED_CHAIN = DECLS + "v = W x\ns = sigma(v)\nS = Diag(s)\nE = 1/2 (s - y):(s - y)\nwrt W"


@pytest.mark.parametrize("latex", [
    r"$v = Wx$, $s = \sigma(v)$, $S = \mathrm{Diag}(s)$, $E = \frac{1}{2}(s-y):(s-y)$",
    r"$$v = Wx,\quad s = \sigma(v),\quad S = \mathrm{Diag}(s),\quad E = \tfrac12 (s-y):(s-y)$$",
    "\\[ v = Wx \\]\nand \\( s = \\sigma(v) \\), \\(S = \\mathrm{Diag}(s)\\), \\[E = {1\\over 2}(s-y):(s-y).\\]",
    "\\begin{align*}\nv &= Wx \\\\\ns &= \\sigma(v) \\\\\nS &= \\mathrm{Diag}(s) \\\\\n"
    "E &= \\frac{1}{2}(s-y):(s-y)\n\\end{align*}",
    "$$\\begin{aligned} v &= Wx \\\\ s &= \\sigma(v) \\\\[1ex] S &= \\mathrm{Diag}(s) \\\\ "
    "E &= \\frac{1}{2}(s-y):(s-y) \\end{aligned}$$",
    "$$\\eqalign{ v &= Wx \\cr s &= \\sigma(v) \\cr S &= \\mathrm{Diag}(s) \\cr "
    "E &= \\frac{1}{2}(s-y):(s-y) \\cr }$$",
    "\\begin{equation} v = Wx \\label{eq:v} \\end{equation} then $s = \\sigma(v)$, "
    "$S = \\mathrm{Diag}(s)$ and finally $E = \\frac{1}{2}(s-y):(s-y)$.",
])
def test_math_is_read_from_every_delimiter(latex):
    same(DECLS + "wrt W\n" + latex, SEED_CHAIN)


def test_prose_is_ignored_and_chain_lines_beside_it_are_statements():
    latex = ("Hi all, I have a question about backprop.\nNote: this is hard\n"
             "W : 5x4\nx : 4\n  y : 5.\n"
             "Let $v = Wx$ and $s = \\sigma(v)$, with $S = \\mathrm{Diag}(s)$.\n"
             "The error is $E = \\frac{1}{2}(s-y):(s-y)$. wrt W\n")
    same(latex, SEED_CHAIN)


def test_the_seed_question_as_asked():
    latex = (r"Let $W \in \mathbb{R}^{5\times 4}$, $x \in \mathbb{R}^4$, $y\in\mathbb{R}^5$, "
             r"$v = Wx$, $s = \sigma(v)$, $S = \mathrm{Diag}(s)$ and "
             r"$E = \frac{1}{2}\|s - y\|^2$. How do I find $\frac{\partial E}{\partial W}$?")
    same(latex, DECLS + "v = W x\ns = sigma(v)\nS = Diag(s)\nE = 1/2 * ||s - y||^2\nwrt W")


# ---------------------------------------------------------------- statements


def test_definitions_by_equals_colon_equals_and_function_notation():
    same(r"$f(X) = \mathrm{tr}(X^TX)$", "f = tr(X' X)\nwrt X")
    same(r"$f(X) := \mathrm{tr}(X^TX)$", "f = tr(X' X)\nwrt X")
    same(r"$E \coloneqq x^Tx$ wrt x", "E = x'x\nwrt x")
    same(r"$E \triangleq x^Tx$" "\nwrt x", "E = x'x\nwrt x")


def test_declarations():
    same(r"$X \in \mathbb{R}^{n\times m}$, $y \in \mathbb{R}^n$, $E = y^T X X^T y$ wrt X",
         "X : n x m\ny : n\nE = y' X X' y\nwrt X")
    same(r"$x, y \in \mathbb{R}^5$, $A \in \mathbb{R}^{5 \times 4}$, $\alpha\in\mathbb{R}$, "
         r"$E = \alpha x^TAA^Ty$ wrt A", "x : 5\ny : 5\nA : 5x4\nalpha : scalar\n"
                                         "E = alpha x' A A' y\nwrt A")


@pytest.mark.parametrize("request_text", [
    r"$\frac{\partial E}{\partial W}$", r"$\dfrac{\partial E}{\partial \mathbf{W}}$",
    r"$\frac{dE}{dW}$", r"$\nabla_W E$", r"$\nabla_{\mathbf W} E$",
    r"$\frac{\partial}{\partial W} E$", r"$\partial E/\partial W$",
])
def test_requests_name_the_objective_and_wrt(request_text):
    same(r"$E = \|Wx - y\|^2$. Find " + request_text, "E = ||W x - y||^2\nwrt W")


@pytest.mark.parametrize("latex, chain", [
    (r"Compute $\frac{\partial}{\partial X} \mathrm{tr}(AX)$", "f = tr(A X)\nwrt X"),
    (r"Compute $\nabla_X \log\det X$", "f = logdet(X)\nwrt X"),
    (r"Compute $\frac{d}{dA} x^TAx$", "f = x'A x\nwrt A"),
    ("wrt X\n$tr(A\\odot X)$", "f = tr(A .* X)\nwrt X"),
])
def test_a_request_or_a_lone_expression_gives_the_objective(latex, chain):
    same(latex, chain)


def test_a_request_picks_the_objective_and_later_definitions_stay_if_independent():
    read = same(r"$E = \|y\|^2$, $y = Wx$, $F = 2E$. Find $\nabla_W E$.".replace(
        r"$E = \|y\|^2$, $y = Wx$", r"$y = Wx$, $E = \|y\|^2$"), "y = W x\nE = ||y||^2\nwrt W")
    assert any("F is defined after the objective E and uses it" in w for w in read.warnings)


def test_a_claim_is_a_request_recorded_and_reported():
    read = same(r"$E = \frac12 x^TAx$ and $\frac{\partial E}{\partial A} = \frac12 xx^T$",
                "E = 1/2 x'A x\nwrt A")
    (name, wrt, claimed, line, column), = read.claims
    assert (name, wrt, line, column) == ("E", "A", 1, 26)
    assert claimed == parse_chain("G = 1/2 x x'\nE = x'A x\nwrt A").definitions[0].expr


def test_claims_are_checked_against_derive_s_gradient():
    head = (DECLS + "$v = Wx$, $s = \\sigma(v)$, $S = \\mathrm{Diag}(s)$, "
            "$E = \\frac12 \\|s-y\\|^2$\n$\\frac{\\partial E}{\\partial W} = ")
    verdict, = api.derive(head + "(S - S^2)(s-y)x^T$").claims
    assert verdict.holds and (verdict.line, verdict.wrt) == (5, "W")
    verdict, = api.derive(head + "2(S - S^2)(s-y)x^T$").claims
    assert verdict.holds is False and verdict.slip == "factor"


def test_a_pasted_claim_of_the_wrong_shape_is_an_error_with_both_shapes():
    with pytest.raises(DeriveError, match="is 4×5, but W is 5×4") as caught:
        api.derive(DECLS + "$v = Wx$, $s = \\sigma(v)$, $E = \\frac12 \\|s-y\\|^2$\n"
                   "$\\frac{\\partial E}{\\partial W} = x(s-y)^T$")
    assert (caught.value.line, caught.value.column) == (5, 34)   # at the x


def test_a_claim_that_does_not_fit_the_chain_is_warned_and_not_read():
    read = parse_latex(DECLS + "$E = \\|Wx - y\\|^2$ and $\\frac{\\partial E}{\\partial W} = 2(Wx-y)x$")
    assert read.claims[0][2] is None
    assert "does not agree with derive's reading of the chain" in read.warnings[-1]


def test_a_chain_of_equalities_checks_each_further_form():
    latex = ("x : 3\nA : 3x3\n$J = \\|A - xx^T\\|_F^2 = \\mathrm{tr}(Y^TY) = 2\\mathrm{tr}(Y)$ "
             "where $Y = A - xx^T$\nwrt x\n")
    derivation = api.derive(latex)
    assert [d.symbol.name for d in derivation.chain.definitions] == ["Y", "J"]
    assert [a[0] for a in derivation.chain.alternatives] == ["J", "J"]
    forms = [w for w in derivation.warnings if " form of J" in w]
    assert forms[0] == "line 3: the second form of J agrees with the first (checked at a random point)"
    assert forms[1].startswith("line 3: the third form of J does not agree with the first")


def test_aligned_continuation_rows_are_further_forms():
    latex = "x : 3\n$$\\begin{aligned} E &= \\|x\\|^2 \\\\ &= x^Tx \\end{aligned}$$\nwrt x"
    read = same(latex, "x : 3\nE = ||x||^2\nwrt x")
    assert [a[0] for a in read.alternatives] == ["E"]


# ---------------------------------------------------------------- expressions

X_DECLS = "A : 3x3\nB : 3x3\nX : 3x3\nx : 3\ny : 3\n"


@pytest.mark.parametrize("latex, chain", [
    (r"\frac{x^Tx}{2}", "(x'x)/2"),
    (r"\frac{1}{2}x^Tx", "1/2 x'x"),
    (r"\frac12 x^Tx + \tfrac{1}{3}\,x^Ty + \dfrac{3}{4} y^Ty", "1/2 x'x + 1/3 x'y + 3/4 y'y"),
    (r"{x^Tx \over 2}", "(x'x)/2"),
    (r"\left( x + y \right)^T \left[ x - y \right]", "(x + y)'(x - y)"),
    (r"\{ x + y \}^T \big( x - y \big) + \Big[ x \Big]^T \bigl( y \bigr)", "(x + y)'(x - y) + x'y"),
    (r"\mathbf{1}^T \sigma(Ax)", "1' sigma(A x)"),
    (r"\operatorname{tr}(AX) + \mathrm{Tr}(X) + \text{trace}(X^\top X) + \mathrm{tr}\, X",
     "tr(A X) + tr(X) + tr(X'X) + tr(X)"),
    (r"\det X + \det(X) + |X| + \left|AX\right|", "det(X) + det(X) + det(X) + det(A X)"),
    (r"\log\det X + \log|X| + \log\det(X)", "logdet(X) + logdet(X) + logdet(X)"),
    (r"\mathbf{1}^T\log(x) + \mathbf{1}^T \exp(x) + e^{x^Ty} + \exp x^Ty", "1'log(x) + 1'exp(x) + exp(x'y) + exp(x'y)"),
    (r"x^\top y + x^{\top} y + x^T y + x' y + x^{\mathsf T}y", "x'y + x'y + x'y + x'y + x'y"),
    (r"x^TA^{-1}y + x^T A^{-T} y", "x'A^-1 y + x' A^-T y"),
    (r"\mathbf{1}^T(x\circ y) + \mathbf{1}^T(x\odot y) + \mathbf{1}^T(x\oslash y)", "1'(x .* y) + 1'(x .* y) + 1'(x ./ y)"),
    (r"2 \cdot x^Ty + 3 \times x^Ty", "2 * x'y + 3 * x'y"),
    (r"\langle A, X \rangle + \left\langle x, y\right\rangle", "A:X + x:y"),
    (r"\|X\|_F^2 + \|X\|^2_F + \lVert x\rVert_2 + \|x\| + \left\| A X\right\|_{F}", "||X||_F^2 + ||X||_F^2 + ||x|| + ||x|| + ||A X||_F"),
    (r"\frac{1}{2}\|x - y\|^2", "1/2 * ||x - y||^2"),
    (r"\sqrt{x^Tx} + \mathbf{1}^T \tanh(x) + x^T\operatorname{diag}(X)", "sqrt(x'x) + 1'tanh(x) + x'diag(X)"),
    (r"\mathbf{x}^T \boldsymbol{A} \bm{x} + \textbf{x}^T x", "x'A x + x'x"),
])
def test_expressions_read_as_the_chain_syntax_does(latex, chain):
    same(X_DECLS + f"$E = {latex}$\nwrt X, x", X_DECLS + f"E = {chain}\nwrt X, x")


def test_kronecker_and_vec():
    same("A : 2x2\nX : 2x2\n$E = \\mathrm{tr}(A \\otimes X) + \\mathbf{1}^T\\operatorname{vec}(X)$ wrt X",
         "A : 2x2\nX : 2x2\nE = tr(A ⊗ X) + 1'vec(X)\nwrt X")


def test_a_letter_with_its_decorations_is_one_name_and_juxtaposed_letters_multiply():
    same("W_1 : 5x4\nx_0 : 4\n$E = \\|W_1x_0\\|^2$ wrt W_1", "W_1 : 5x4\nx_0 : 4\nE = ||W_1 x_0||^2\nwrt W_1")
    same("$E = \\|W_{1} x_{0}\\|^2 + \\|\\mathbf{W}_1\\mathbf{x}_{0}\\|^2$\nwrt W_1",
         "E = ||W_1 x_0||^2 + ||W_1 x_0||^2\nwrt W_1")
    same("$E = x^TWx$ wrt W", "E = x' W x\nwrt W")


def test_subscripts_follow_a_declared_spelling():
    same("W1 : 5x4\nx : 4\n$E = \\|W_{1}x\\|^2$ wrt W1", "W1 : 5x4\nx : 4\nE = ||W1 x||^2\nwrt W1")


def test_greek_and_accents():
    read = same(r"$E = \alpha \hat{y}^T\hat y + \boldsymbol\theta^T \tilde x$ wrt y_hat",
                "E = alpha y_hat' y_hat + theta' x_tilde\nwrt y_hat")
    assert located(read) == ("<-e>:1:51: x_tilde was read as a scalar (an undeclared vector that "
                             "meets a scalar, such as a Greek letter): declare its size if it is "
                             "not, e.g. $\\mu \\in \\mathbb{R}^n$",)


def test_bold_and_plain_spellings_of_one_name_are_warned_about():
    read = parse_latex(r"$E = x^T \mathbf{x}$ wrt x")
    assert located(read) == ("<-e>:1:10: x is written both plain (line 1) and bold (line 1): "
                             "derive reads both as the same x",)


def test_function_words_are_the_chain_syntax_functions():
    from derive.parse import FUNCTIONS
    grammar = (__import__("pathlib").Path(__file__).parent.parent / "derive" / "latex.lark").read_text()
    for word, name in FUNCTION_WORDS.items():
        assert word in grammar
    assert {"tr", "det", "logdet", "log", "exp", "sigma", "tanh", "Diag", "diag", "sqrt"} <= \
        set(FUNCTION_WORDS.values()) & FUNCTIONS


# ---------------------------------------------------------------- skipped, never dropped


def test_differentials_and_derive_s_own_output_are_skipped_in_one_sentence():
    latex = ("W : 5x4\nx : 4\n$$\\begin{aligned} v &= Wx &&\\implies dv = dW\\,x \\\\"
             " E &= v^Tv &&\\implies dE = 2v:dv \\end{aligned}$$\n"
             "$$dE = 2v:dv = 2vx^T:dW$$\nwrt W")
    read = same(latex, "W : 5x4\nx : 4\nv = W x\nE = v'v\nwrt W")
    assert located(read) == ("<-e>:4:3: skipped 1 formula (at 4:3): differentials and adjoints, "
                             "which derive writes itself",)


def test_unreadable_formulas_outside_definitions_are_warnings_naming_the_place():
    read = parse_latex("$E = x^Tx$ where $\\sum_i x_i^2 \\le 1$ and $x$ is a vector.\nwrt x")
    assert located(read)[0].startswith("<-e>:1:19: skipped a formula: \\sum is not supported")
    assert "read 1 formula (at 1:44) as mentions" in read.warnings[1]


def test_a_formula_that_is_not_a_definition_is_reported():
    read = parse_latex("$E = x^Tx$ and $A:B = \\mathrm{tr}(B^TA)$ wrt x")
    assert located(read) == ("<-e>:1:17: skipped a formula that is not a definition: its left "
                             "side is not a name",)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("latex, line, column, fragment", [
    ("$E = x^Tx", 1, 1, "$ opens a formula that is never closed"),
    ("intro\n$$E = \\sum_i x_i$$\nwrt x", 2, 7, "\\sum is not supported"),
    ("$E = \\left( x^Tx$\nwrt x", 1, 17, "the formula ends too early"),
    ("$E = x^{(i)}$\nwrt x", 1, 7, "^{(i)} is an entry (an index)"),
    ("$X \\in \\mathbb{R}^{n\\times m \\times k}$ $E = \\mathrm{tr}(X)$", 1, 20, "cannot read the size"),
    ("$W \\in \\mathbb{R}^{5\\times 4}$, $x\\in\\mathbb{R}^5$, $E = \\|Wx\\|^2$ wrt W", 1, 61,
     "Wx: W is 5×4 but x has 5 rows"),
    ("$\\frac{\\partial E}{\\partial W}$", 1, 2, "E is differentiated but never defined"),
    ("Some prose only.", 1, 1, "no definition found in the LaTeX"),
])
def test_bad_latex_is_one_located_error(latex, line, column, fragment):
    with pytest.raises(DeriveError) as caught:
        parse_latex(latex)
    error = caught.value
    assert (error.line, error.column) == (line, column), error.format()
    assert fragment in error.message


def test_the_command_line_reads_latex_and_warns_on_stderr(tmp_path):
    question = tmp_path / "question.tex"
    question.write_text("Let $E = \\frac12 \\|Wx - y\\|^2$ with $W\\in\\mathbb{R}^{3\\times 2}$, "
                        "$x \\in \\mathbb{R}^2$, $y\\in\\mathbb{R}^3$ and $\\sum_i w_i$.\n"
                        "Find $\\nabla_W E$.\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["render", str(question)])
    assert result.exit_code == 0, result.output
    assert "\\frac{\\partial E}{\\partial W}" in result.stdout
    assert f"{question}:1:" in result.stderr and "\\sum" in result.stderr
    chain_file = tmp_path / "q.chain"
    chain_file.write_text(question.read_text())
    assert CliRunner().invoke(main, ["check", "-f", "latex", str(chain_file)]).exit_code == 0
    bad = CliRunner().invoke(main, ["render", "-f", "latex", "-e", "$E = (x$"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    assert bad.stderr.startswith("<-e>:1:8: the formula ends too early")


def test_detection():
    assert looks_like_latex("$x$") and looks_like_latex("\\alpha") and not looks_like_latex("E = x'x")
    assert not looks_like_latex("# title: cost in $, a \\ b\nx : 3\nE = x'x # $\nwrt x")
    assert [d.expr for d in read_chain("x : 3\nE = x'x\nwrt x").definitions] == \
        [d.expr for d in read_chain("x : 3\n$E = x^Tx$\nwrt x").definitions]
    with pytest.raises(DeriveError):
        read_chain("x : 3\nE = x'x\nwrt x", language="latex")


SNIPPETS = [r"\frac", "{", "}", r"\left(", r"\right)", "x", "W_1", "^T", "^{-1}", "=", r"\in",
            r"\mathbb{R}^{3\times 3}", r"\|", "|", r"\langle", ",", r"\rangle", "$", "$$", r"\\",
            "&", r"\partial", r"\nabla_X", "2", "+", "-", r"\cdot", r"\circ", r"\sigma(", ")",
            r"\sum", r"\mathbf{x}", r"\hat", "e^", r"\log", r"\det", "d", "'", "_F", r"\over",
            r"\begin{aligned}", r"\end{aligned}", "\n", "wrt X", "X : 3x3", ":", r"\sqrt", "[", "]"]


def test_random_latex_never_raises_anything_but_derive_error():
    rng = random.Random(0)
    for _ in range(400):
        text = "$" + " ".join(rng.choice(SNIPPETS) for _ in range(rng.randrange(1, 14))) + "$"
        try:
            parse_latex(text)
        except DeriveError as error:
            assert error.format()


# ---------------------------------------------------------------- forum phrasing


@pytest.mark.parametrize("latex, chain", [
    (r"Let $f(x) = \|Ax - b\|_2^2$. Find $\nabla f(x)$.", "f = ||A x - b||^2\nwrt x"),
    (r"Let $A \in \Bbb R^{n\times n}$, $f(X) = \operatorname{tr}(X^TAX)$. What is $\nabla_X f(X)$?",
     "A : n x n\nf = tr(X' A X)\nwrt X"),
    (r"Compute the derivative of $\text{tr}(X^TAX)$ with respect to $X$.", "f = tr(X' A X)\nwrt X"),
    (r"Find the gradient of $\log\det(X)$ w.r.t. $X$.", "f = logdet(X)\nwrt X"),
    (r"$g = \|x\|^2 \text{ and } f = x^T A x$, find $\nabla_x f$", "g = ||x||^2\nf = x' A x\nwrt x"),
    (r"$E = \mathbf{1}^T \operatorname{diag}(x)\, y + \mathbf{1}^T\mathrm{diag}(X)$ wrt x",
     "E = 1' Diag(x) y + 1' diag(X)\nwrt x"),
    (r"$\frac{\partial \operatorname{tr}(AXB)}{\partial X}$", "f = tr(A X B)\nwrt X"),
    (r"$$\min_W \|XW - Y\|_F^2 + \lambda\|W\|_F^2$$", "f = ||X W - Y||_F^2 + lambda * ||W||_F^2\nwrt W"),
    (r"$\hat{w} = \arg\min_{w} \|Xw - y\|^2$", "f = ||X w - y||^2\nwrt w"),
    (r"$\operatorname{argmax}_x\, b^Tx - x^TAx$", "f = b'x - x'A x\nwrt x"),
])
def test_forum_phrasing(latex, chain):
    same(latex, chain)


def test_the_readme_example_derives():
    readme = (__import__("pathlib").Path(__file__).parent.parent / "README.md").read_text()
    block = readme.split("### Pasted LaTeX", 1)[1].split("```\n", 2)[1]
    derivation = api.derive(block)
    assert derivation.check.ok and [w.name for w in derivation.chain.wrt] == ["W"]


@pytest.mark.parametrize("latex, chain", [
    (r"x \in \R^3, E = \ell^2 x^Tx + \varepsilon\, x^Tx", "x : 3\nE = ell^2 x'x + epsilon x'x"),
    (r"x \in ℝ^3, E = \vec{x}^T x + \Vert x \Vert + ||x||", "x : 3\nE = x'x + ||x|| + ||x||"),
    (r"E = \mathrm{tr}\,X^TAX + \mathbf{1}^T\ln(x) + \mathbf{1}^T X^{\circ 2}\mathbf{1}",
     "E = tr(X' A X) + 1'log(x) + 1' X.^2 1"),
    (r"E = \mathbf{1}^T\mathrm{softmax}_{\mathrm{rows}}(X)\mathbf{1} + W_{\text{out}}:X",
     "E = 1' softmax_rows(X) 1 + W_out:X"),
])
def test_more_spellings(latex, chain):
    same(f"${latex}$\nwrt *", chain + "\nwrt *")


def test_derive_s_own_notation_sentence_is_read_quietly():
    derivation = api.derive_file(__import__("pathlib").Path(__file__).parent.parent
                                 / "examples" / "backprop.chain")
    read = parse_latex("W : 5x4\nx : 4\ny : 5\n" + derivation.to_latex())
    assert not [w for w in read.warnings if "denotes" in w or "not a definition" in w
                or "skipped a formula" in w or "\\implies" in w]


def test_derive_s_own_gradients_pasted_back_are_claims_that_agree():
    path = __import__("pathlib").Path(__file__).parent.parent / "examples" / "determinant.chain"
    derivation = api.derive_file(path, check=False)
    again = api.derive("X : 3x3\n" + derivation.to_latex(), language="latex")
    assert again.claims and all(verdict.holds and verdict.exact for verdict in again.claims)


def test_sizes_with_subscripts_ones_and_identity_with_subscripts_old_bold():
    same(r"$W\in\mathbb{R}^{d_{out}\times d_{in}}$, $x \in \mathbb{R}^{d_{in}}$, "
         r"$E = \mathbf{1}_{d_{out}}^T \sigma(Wx) + x^T I_n x + {\bf x}^\mathsf{T} x$ wrt W",
         "W : d_out x d_in\nx : d_in\nE = 1'sigma(W x) + x' I x + x' x\nwrt W")


def test_an_accented_name_round_trips_through_the_printer():
    derivation = api.derive("y_hat : 3\ny : 3\nE = (y_hat - y)'(y_hat - y)\nwrt y_hat", check=False)
    assert "\\hat{y}" in derivation.to_latex()
    again = parse_latex("y_hat : 3\ny : 3\n" + derivation.to_latex())
    assert [d.expr for d in again.definitions] == [d.expr for d in derivation.chain.definitions]
    assert [w.name for w in again.wrt] == ["y_hat"]


def test_a_function_of_several_arguments_and_a_collapsed_vector_is_said():
    read = parse_latex(r"$\ell(\mu, \Sigma) = -\frac{1}{2}\log\det\Sigma - "
                       r"\frac{1}{2}(x-\mu)^T\Sigma^{-1}(x-\mu)$")
    assert [w.name for w in read.wrt] == ["mu", "Sigma"]
    assert any("x was read as a scalar" in w for w in read.warnings)
    same(r"$\mu \in \mathbb{R}^3$, $\Sigma\in\mathbb{R}^{3\times3}$, $\ell(\mu, \Sigma) = "
         r"-\frac{1}{2}\log\det\Sigma - \frac{1}{2}(x-\mu)^T\Sigma^{-1}(x-\mu)$",
         "mu : 3\nSigma : 3x3\nell = -1/2 logdet(Sigma) - 1/2 (x - mu)' Sigma^-1 (x - mu)\nwrt mu, Sigma")


def test_indexed_entries_are_skipped_or_refused_in_a_definition():
    read = parse_latex(r"$A = xy^T$, that is $A_{ij} = x_i y_j$, and $E = \mathrm{tr}(A)$ wrt x")
    assert located(read)[0].startswith("<-e>:1:22: skipped a formula: A_{ij} is an entry")
    with pytest.raises(DeriveError) as caught:
        parse_latex(r"$E = W_{ij} + x^Tx$ wrt x")
    assert (caught.value.line, caught.value.column) == (1, 6)
    assert "W_{ij} is an entry (an index)" in caught.value.message


def test_with_respect_to_a_list_of_variables():
    same(r"Differentiate $E = \|Wx + b - y\|^2$ with respect to $W$ and $b$, where $x$ is fixed.",
         "E = ||W x + b - y||^2\nwrt W, b")


def test_a_matrix_left_one_column_by_a_greek_scalar_is_warned_about():
    """Regression written with β: by the convention β is a scalar, so X becomes a vector;
    said, with the declaration that changes it, never silently."""
    read = parse_latex(r"$$L = \|y - X\beta\|_2^2 + \lambda \|\beta\|_2^2$$ Compute $\nabla_\beta L$.")
    assert any(w.startswith("X was read as a vector") and "\\beta \\in" in w
               for w in read.warnings), read.warnings
    declared = parse_latex(r"$y \in \mathbb{R}^n$, $X\in\mathbb{R}^{n\times k}$, "
                           r"$\beta\in\mathbb{R}^k$ $$L = \|y - X\beta\|_2^2$$ $\nabla_\beta L$")
    assert not [w for w in declared.warnings if "was read as a vector" in w]
    assert declared.input_named("beta").symbol.shape[1] == 1


def test_nabla_of_a_function_defined_with_its_argument():
    """``g(x) = …`` then ``\\nabla g``: the gradient of g with respect to x."""
    read = parse_latex(r"Let $g(x) = \exp(-\frac{1}{2} x^T \Sigma^{-1} x)$. What is $\nabla g$?")
    assert [w.name for w in read.wrt] == ["x"] and read.objective.symbol.name == "g"


def test_a_request_ending_in_equals_question_mark_is_a_request():
    read = parse_latex(r"$J = \operatorname{tr}\left( (X - A)^T (X - A) \right)$, "
                       r"$\frac{\partial J}{\partial X} = ?$")
    assert [w.name for w in read.wrt] == ["X"] and not read.claims
