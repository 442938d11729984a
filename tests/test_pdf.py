"""PDF output and the standalone LaTeX article, checked with the real TeX engine.

The PDFs are built by TeX Live, page 1 is rasterised by ``pdftoppm`` and must not be
blank, and ``pdftotext`` must find the title and the verification sentence. Without TeX
or poppler these tests skip (they fail under CI=true; see tests/external.py).
"""
import dataclasses
import re
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

import derive
import derive.api
from derive import document, pdf
from derive.cli import main
from derive.render import tex_escape
from external import need

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.chain"))
BACKPROP = ROOT / "examples" / "backprop.chain"
VERIFIED = "Every displayed equality was checked numerically"
BROKEN = ("\\documentclass{article}\n\\begin{document}\nfine\n$\\eqalign{a\\cr b}$\n"
          "\\end{document}\n")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def tex():
    need("pdflatex", "texlive-latex-base texlive-latex-recommended latexmk")


@pytest.fixture
def poppler():
    need("pdftoppm", "poppler-utils")
    need("pdftotext", "poppler-utils")


def dark_fraction(pdf_path: Path, tmp_path: Path) -> float:
    """The share of dark pixels on page 1, from a 50 dpi greyscale PGM made by pdftoppm."""
    subprocess.run(["pdftoppm", "-gray", "-r", "50", "-f", "1", "-l", "1", "-singlefile",
                    str(pdf_path), str(tmp_path / "page")], check=True, timeout=60)
    data = (tmp_path / "page.pgm").read_bytes()
    fields = re.match(rb"P5\s+(?:#.*\s+)*(\d+)\s+(\d+)\s+(\d+)\s", data)
    width, height = int(fields.group(1)), int(fields.group(2))
    pixels = data[fields.end():fields.end() + width * height]
    return sum(1 for p in pixels if p < 128) / (width * height)


def pdf_text(pdf_path: Path) -> str:
    """The PDF's text with line breaks, hyphenation and runs of spaces undone."""
    text = subprocess.run(["pdftotext", str(pdf_path), "-"], capture_output=True, text=True,
                          check=True, timeout=60).stdout
    return " ".join(re.sub(r"-\n", "", text).split())


def assert_derivation_pdf(pdf_path: Path, tmp_path: Path, title: str) -> str:
    assert pdf_path.read_bytes().startswith(b"%PDF")
    assert dark_fraction(pdf_path, tmp_path) > 0.005, "page 1 is blank"
    text = pdf_text(pdf_path)
    assert title in text and VERIFIED in text
    return text


# ---------------------------------------------------------------- with TeX


def test_backprop_pdf_shows_the_derivation(tex, poppler, tmp_path):
    out = tmp_path / "backprop.pdf"
    result = run("render", BACKPROP, "-o", out)
    assert result.exit_code == 0, result.output
    text = assert_derivation_pdf(out, tmp_path, "One logistic layer, squared error")
    assert "Verification." in text and "seed 0" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backprop.pdf", "page.pgm"]


def test_notes_over_all_examples(tex, poppler, tmp_path):
    out = tmp_path / "notes.pdf"
    result = run("notes", *EXAMPLES, "-o", out, "--keep-tex")
    assert result.exit_code == 0, result.output
    assert_derivation_pdf(out, tmp_path, "Derivations by differentials")
    text = pdf_text(out)
    titles = [derive.derive_file(p, check=False).chain.title for p in EXAMPLES]
    assert "Contents" in text and text.count(VERIFIED) == len(EXAMPLES)
    assert all(text.count(title) >= 2 for title in titles)      # contents and section
    source = (tmp_path / "notes.tex").read_text(encoding="utf-8")
    assert source.count(r"\newcommand{\frob}") == 1 and source.count(r"\section{") == len(EXAMPLES)


def test_notes_without_latexmk_rerun_pdflatex_for_the_contents(tex, poppler, tmp_path,
                                                                 monkeypatch):
    which = pdf.shutil.which
    monkeypatch.setattr(pdf.shutil, "which",
                        lambda name: None if name == "latexmk" else which(name))
    out = tmp_path / "notes.pdf"
    assert run("notes", *EXAMPLES[:3], "-o", out).exit_code == 0
    titles = [derive.derive_file(p, check=False).chain.title for p in EXAMPLES[:3]]
    text = pdf_text(out)
    assert all(text.count(title) >= 2 for title in titles)


def test_explained_pdf_puts_the_rules_under_each_line(tex, poppler, tmp_path):
    out = tmp_path / "two_layer.pdf"
    result = run("render", ROOT / "examples" / "two_layer.chain", "-o", out, "--explain")
    assert result.exit_code == 0, result.output
    text = assert_derivation_pdf(out, tmp_path, "Two-layer network, both weight matrices")
    assert "by" in text and "substitute" in text


def test_keep_tex_keeps_the_standalone_source(tex, tmp_path):
    out = tmp_path / "backprop.pdf"
    assert run("render", BACKPROP, "-o", out, "--keep-tex").exit_code == 0
    kept = (tmp_path / "backprop.tex").read_text(encoding="utf-8")
    assert kept == run("render", BACKPROP, "-t", "latex", "--standalone").stdout


def test_a_tex_error_exits_5_with_the_error_line_and_leaves_no_pdf(tex, tmp_path, monkeypatch):
    monkeypatch.setattr(document, "standalone", lambda derivation, **options: BROKEN)
    out = tmp_path / "broken.pdf"
    result = run("render", BACKPROP, "-o", out)
    assert result.exit_code == 5
    assert "! Undefined control sequence." in result.stderr and "l.4 $\\eqalign" in result.stderr
    assert list(tmp_path.iterdir()) == []
    out.write_bytes(b"old")
    kept = run("render", BACKPROP, "-o", out, "--keep-tex")
    assert kept.exit_code == 5 and f"{tmp_path / 'broken.tex'}:4" in kept.stderr
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.pdf", "broken.tex"]
    assert "Traceback" not in result.output + kept.output


def test_tex_that_never_ends_is_stopped_at_the_time_limit(tex):
    looping = "\\documentclass{article}\n\\begin{document}\n\\def\\a{\\a}\\a\n\\end{document}\n"
    with pytest.raises(derive.DeriveError, match="did not finish within 3 s") as caught:
        pdf.compile_pdf(looping, time_limit=3)
    assert caught.value.exit_code == 5


def test_free_text_with_unicode_compiles(tex, poppler, tmp_path):
    chain = ("# title: σ-layer ∘ Σ: ∂E/∂W ∈ ℝ^{m×n}, 50% of a_b & c — é « » ‖x‖²\n"
             "W : 5x4\nx : 4\nE = (W x):(W x)\nwrt W\n")
    source = tmp_path / "unicode_ü.chain"
    source.write_text(chain, encoding="utf-8")
    out = tmp_path / "unicode.pdf"
    result = run("render", source, "-o", out)
    assert result.exit_code == 0, result.output
    text = pdf_text(out)
    assert "50% of a" in text and "b & c —" in text and "×" in text


def test_the_page_check_rejects_a_blank_page(tex, poppler, tmp_path):
    blank = tmp_path / "blank.pdf"
    blank.write_bytes(pdf.compile_pdf("\\documentclass{article}\n\\pagestyle{empty}\n"
                                      "\\begin{document}\n\\mbox{}\n\\end{document}\n"))
    assert dark_fraction(blank, tmp_path) == 0.0
    with pytest.raises(AssertionError, match="blank"):
        assert_derivation_pdf(blank, tmp_path, "anything")


# ---------------------------------------------------------------- without TeX


def test_no_engine_exits_4_and_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(pdf.shutil, "which", lambda name: None)
    result = run("render", BACKPROP, "-o", tmp_path / "x.pdf")
    assert result.exit_code == 4
    assert "apt-get install texlive-latex-base texlive-latex-recommended latexmk" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_tex_error_lines_are_read_from_the_log():
    log = "(./x.tex\n! Undefined control sequence.\n<recently read> \\eqalign \n\nl.12 $\\eqalign\n"
    assert pdf.tex_error(log) == ("! Undefined control sequence.", 12, "$\\eqalign")
    assert pdf.tex_error("no errors here\n") is None


def test_standalone_article_layout():
    d = derive.derive_file(BACKPROP)
    text = document.standalone(d)
    assert text.startswith("\\documentclass") and text.rstrip().endswith("\\end{document}")
    assert "\\eqalign" not in text and "\\cr" not in text
    assert re.findall(r"\\usepackage(?:\[.*?\])?\{(\w+)\}", text) == ["amsmath", "longtable", "graphicx"]
    assert text.count("\\newcommand{\\Diag}") == 1 and "\\Diag(s)" in text
    assert "(s - y)\\frob (s - y)" in text and "):(" not in text
    assert text.count("&&\\implies") == len(d.definitions)
    assert "\\boxed{\\fit[0.9]{\\frac{\\partial E}{\\partial W} = " in text
    assert "$5\\times 4$ & matrix & input, differentiated" in text
    assert "Verification." in text and "seed 0" in text and VERIFIED in text


def test_standalone_never_claims_an_unchecked_derivation_was_verified():
    unchecked = derive.derive_file(BACKPROP, check=False)
    assert "\\emph{not} checked" in document.standalone(unchecked)
    checked = derive.derive_file(BACKPROP)
    verdicts = tuple(dataclasses.replace(v, ok=False, relative_error=0.5)
                     for v in checked.check.verdicts)
    failed = dataclasses.replace(checked,
                                 check=dataclasses.replace(checked.check, verdicts=verdicts))
    text = document.standalone(failed)
    assert "FAILED" in text and VERIFIED not in text


def test_tex_escape_maps_greek_and_symbols_to_macros():
    assert tex_escape("σ ∘ W_1 50%") == r"\ensuremath{\sigma} \ensuremath{\circ} W\_1 50\%"
    assert tex_escape("Σ é") == r"\ensuremath{\Sigma} é"
    assert tex_escape("ℝ Ŋ ×") == r"R ? \ensuremath{\times}"
    assert tex_escape("</script>") == r"\textless{}/script\textgreater{}"


def test_notes_write_nothing_when_a_chain_fails(tmp_path, monkeypatch):
    bad = tmp_path / "bad.chain"
    bad.write_text("W : 5x4\nv = foo(W)\nE = v:v\nwrt W\n")
    out = tmp_path / "notes.tex"
    result = run("notes", BACKPROP, bad, "-o", out)
    assert result.exit_code == 2
    assert f"{bad}:2:5: unknown function foo" in result.stderr
    assert f"notes not written: {bad} failed" in result.stderr
    real = derive.api.numeric_check

    def corrupted(derivation, **kwargs):
        result = real(derivation, **kwargs)
        verdicts = tuple(dataclasses.replace(v, ok=False, relative_error=0.5)
                         for v in result.verdicts)
        return dataclasses.replace(result, verdicts=verdicts)

    monkeypatch.setattr(derive.api, "numeric_check", corrupted)
    failed = run("notes", BACKPROP, "-o", out)
    assert failed.exit_code == 3
    assert f"notes not written: {BACKPROP} failed" in failed.stderr
    assert f"{BACKPROP}:5: numeric check failed" in failed.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.chain"]


def test_notes_as_latex(tmp_path):
    out = tmp_path / "notes.tex"
    result = run("notes", *EXAMPLES[:2], "-o", out, "--title", "Week 3: σ & co")
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert "\\tableofcontents" in text and text.count("\\section{") == 2
    assert "\\title{Week 3: \\ensuremath{\\sigma} \\& co}" in text


# ---------------------------------------------------------------- nothing lost


def _deep_chain(layers: int, wrt: str) -> str:
    lines = ["x : 4", "y : 4"] + [f"W{l} : 4x4" for l in range(1, layers + 1)]
    lines += [f"h{l} = tanh(W{l} {'x' if l == 1 else f'h{l - 1}'})" for l in range(1, layers + 1)]
    return "\n".join(lines + [f"E = 1/2 (h{layers} - y):(h{layers} - y)", f"wrt {wrt}"]) + "\n"


@pytest.mark.parametrize("layers, wrt", [(60, "*"), (20, "W1")], ids=["60 layers, every W",
                                                                       "20 layers, one W"])
def test_a_long_derivation_loses_nothing(tex, poppler, tmp_path, layers, wrt):
    """Every definition, the objective, the last symbol rows and every gradient are in the
    PDF's text; TeX reports no box more than 5 pt too wide and no page too full."""
    chain = tmp_path / "deep.chain"
    chain.write_text(_deep_chain(layers, wrt), encoding="utf-8")
    out = tmp_path / "deep.pdf"
    assert run("render", chain, "-o", out, "--keep-tex").exit_code == 0
    source = tmp_path / "deep.tex"
    subprocess.run(["pdflatex", "-interaction=nonstopmode", "-no-shell-escape", source.name],
                   cwd=tmp_path, capture_output=True, timeout=120, check=True)
    log = (tmp_path / "deep.log").read_text(encoding="latin-1")
    too_wide = [float(p) for p in re.findall(r"Overfull \\hbox \(([0-9.]+)pt too wide", log)]
    assert [w for w in too_wide if w > 5] == [] and "Overfull \\vbox" not in log
    text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True,
                          check=True, timeout=60).stdout
    assert text.count("tanh") >= layers and f"objective, line {2 * layers + 3}" in text
    assert f"defined, line {2 * layers + 2}" in text and VERIFIED in " ".join(text.split())
    shown = {int(n) for n in re.findall(r"dh(\d+)", "".join(text.split()))}
    assert shown >= set(range(1, layers + 1))


def test_options_in_tex_keep_their_two_hyphens():
    assert tex_escape("--symmetric-gradient") == "-{}-{}symmetric-{}gradient"
