"""Every legal name prints as LaTeX that pdflatex, KaTeX and MathJax accept, and names that
print alike are refused (issue 11): underscores anywhere (``z_z_z_z``, ``x___``, ``S_2_``,
``x_``), Greek ``ο`` and ``ς``, the Greek capitals that are Latin letters in print."""
import pytest
from external import need
from test_js_renderers import math_of, require_node, run_renderer

from derive import api, document
from derive.errors import DeriveError
from derive.pdf import compile_pdf
from derive.printer import LatexPrinter

UNDERSCORES = ["z_z_z_z", "x___", "S_2_", "x_", "y_hat_", "W_1_2", "q__1"]
GREEK = ["ο", "ς", *"ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ", "θ"]


def chain_of(names: list) -> str:
    """Each name an input vector; a definition named like the first feeds the objective
    twice, so it gets a named adjoint (a bar over an awkward name) too."""
    inputs = names[1:]
    lines = [f"{n} : 3" for n in inputs]
    lines.append(f"{names[0]} = tanh({' + '.join(inputs)})")
    lines.append(f"L = {names[0]}:{names[0]} + {names[0]}:{inputs[0]}")
    lines.append("wrt " + ", ".join(inputs))
    return "\n".join(lines)


CHAINS = {"underscores": chain_of(UNDERSCORES + ["ο", "ς"]), "greek": chain_of(["h_"] + GREEK)}


@pytest.fixture(scope="module", params=sorted(CHAINS))
def derivation(request):
    return api.derive(CHAINS[request.param])


def test_the_names_print_apart(derivation):
    """No two of the names print alike (else the chain would have been refused)."""
    printed = [LatexPrinter().name(i.symbol.name) for i in derivation.chain.inputs]
    assert len(set(printed)) == len(printed)
    assert derivation.check.ok


def test_pdflatex_accepts_every_name(derivation):
    need("pdflatex", "texlive-latex-base texlive-latex-recommended latexmk")
    assert compile_pdf(document.standalone(derivation, explain=True)).startswith(b"%PDF")


@pytest.mark.parametrize("flavor, renderer", [("katex", "katex"), ("mse", "mathjax"),
                                              ("github", "mathjax")])
def test_katex_and_mathjax_accept_every_name(derivation, flavor, renderer):
    require_node()
    formulas = math_of(derivation.to_markdown(flavor), flavor)
    assert len(formulas) >= 3
    results = run_renderer(renderer, formulas)
    assert [r["error"] for r in results if not r["ok"]] == []


@pytest.mark.parametrize("text, where, first, second", [
    ("A : 3x3\nΑ : 3x3\nE = tr(A Α)\nwrt A", (2, 1), "Α", "A"),              # Greek Alpha
    ("x : 3\nο : scalar\nE = ο x'x\nwrt x", (2, 1), "ο", None),   # a lone omicron
    ("W1 : 3x3\nW_1 : 3x3\nE = tr(W1 W_1)\nwrt W1", (2, 1), "W_1", "W1"),
    ("x : 3\nalpha : scalar\nE = alpha x'x + α\nwrt x", (3, 17), "α", "alpha"),
    ("Sigma : 3x3\nx : 3\nE = x'Sigma x + x'Σ x\nwrt x", (3, 19), "Σ", "Sigma"),
    ("o : scalar\nx : 3\nE = o x'x + ο\nwrt x", (3, 13), "ο", "o"),
    ("P : 3x3\nx : 3\nE = x'P x + x'Ρ x\nwrt x", (3, 15), "Ρ", "P"),
])
def test_names_that_print_alike_are_refused_at_the_second(text, where, first, second):
    if second is None:                       # a lone ο is fine: it prints as o
        assert api.derive(text).check.ok
        return
    with pytest.raises(DeriveError) as caught:
        api.derive(text)
    assert (caught.value.line, caught.value.column) == where
    assert caught.value.message.startswith(f"{first} and {second} (line ")
    assert "print alike" in caught.value.message


def test_a_code_point_that_is_no_letter_is_refused():
    with pytest.raises(DeriveError, match="U\\+03A2, which is not a letter") as caught:
        api.derive("x : 3\nE = x'x + \u03a2\nwrt x")
    assert (caught.value.line, caught.value.column) == (2, 11)


def test_cyrillic_and_greek_letters_that_look_latin_meet_their_latin_twins():
    from derive.lookalike import first_alike
    assert first_alike(["A", "x", "\u0410"]) == ("\u0410", "A")        # Cyrillic А
    assert first_alike(["p", "\u0440"]) == ("\u0440", "p")             # Cyrillic р
    assert first_alike(["W1", "W_2", "Wx"]) is None
