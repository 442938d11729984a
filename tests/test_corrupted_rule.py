"""A wrong table rule is caught by the numeric check, on the line it affects.

The corruption happens in the tables themselves (as a careless edit would), so the
check cannot know about it; `derive check` must exit 3 and name the line, and the
NumPy module, which prints the very gradient the derivation shows, must change.
"""
import dataclasses
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from derive import expr as E
from derive import frobenius, functions
from derive.api import derive_file
from derive.cli import main
from derive.numpy_code import to_numpy
from external import need

SEED = str(Path(__file__).resolve().parent.parent / "examples" / "backprop.chain")


def wrong_sigmoid(u, y, du):
    """σ′ = s + s∘s: a sign slip in the table."""
    return E.Hadamard(E.Add((y, E.Hadamard(y, y))), du)


def numpy_gradient(derivation, point):
    namespace = {}
    exec(compile(to_numpy(derivation), "<derive numpy>", "exec"), namespace)  # our own generated code
    return namespace["gradient"](**point)["W"]


def test_correct_tables_pass():
    result = CliRunner().invoke(main, ["check", SEED])
    assert result.exit_code == 0, result.output


def test_corrupted_differential_rule_fails_on_its_line(monkeypatch):
    rng = np.random.default_rng(3)
    point = {"W": rng.normal(size=(5, 4)), "x": rng.normal(size=(4, 1)), "y": rng.normal(size=(5, 1))}
    good = numpy_gradient(derive_file(SEED), point)

    sigma = functions.ELEMENTWISE["sigma"]
    monkeypatch.setitem(functions.ELEMENTWISE, "sigma", dataclasses.replace(sigma, differential=wrong_sigmoid))
    result = CliRunner().invoke(main, ["check", SEED])
    assert result.exit_code == 3
    assert f"{SEED}:6:" in result.output          # s = sigma(v) is line 6
    assert "Traceback" not in result.output

    bad = numpy_gradient(derive_file(SEED, check=False), point)
    assert not np.allclose(good, bad)


def test_corrupted_frobenius_rule_fails_on_a_substitution(monkeypatch):
    """A:(B∘C) = (A∘B∘B):C — shapes still fit, values do not."""
    def squared_coefficient(g, e):
        return [(E.Hadamard(g, E.Hadamard(e.left, e.left)), e.right, ("broken",))]

    monkeypatch.setitem(frobenius.MOVES, E.Hadamard, squared_coefficient)
    two_layer = SEED.replace("backprop", "two_layer")
    result = CliRunner().invoke(main, ["render", two_layer])
    assert result.exit_code == 3
    assert "numeric check failed" in result.output
    assert result.stdout == ""          # nothing presented as verified


@pytest.mark.parametrize("suffix", [".md", ".tex", ".json", ".py", ".html", ".pdf"])
def test_a_failed_check_writes_nothing_in_any_format(suffix, monkeypatch, tmp_path):
    if suffix == ".pdf":
        need("pdflatex", "texlive-latex-base texlive-latex-recommended latexmk")
    sigma = functions.ELEMENTWISE["sigma"]
    monkeypatch.setitem(functions.ELEMENTWISE, "sigma", dataclasses.replace(sigma, differential=wrong_sigmoid))
    out = tmp_path / f"backprop{suffix}"
    result = CliRunner().invoke(main, ["render", SEED, "-o", str(out)])
    assert result.exit_code == 3
    assert f"{SEED}:6: numeric check failed" in result.stderr and "✗" in result.stderr
    assert result.stdout == "" and list(tmp_path.iterdir()) == []
    if suffix != ".pdf":
        to = {".md": "markdown", ".tex": "latex", ".json": "json", ".py": "numpy",
              ".html": "html"}[suffix]
        piped = CliRunner().invoke(main, ["render", SEED, "-t", to])
        assert piped.exit_code == 3 and piped.stdout == ""


NOT_CHECKED = {                       # what each format says under --no-check
    ("-t", "markdown", "--flavor", "mse"): "was **not** checked numerically",
    ("-t", "markdown", "--flavor", "katex"): "was **not** checked numerically",
    ("-t", "markdown", "--flavor", "github"): "was **not** checked numerically",
    ("-t", "latex"): r"was \emph{not} checked numerically",
    ("-t", "latex", "--standalone"): r"was \emph{not} checked numerically",
    ("-t", "html"): "was <em>not</em> checked numerically",
    ("-t", "json"): '"status": "not checked"',
    ("-t", "numpy"): "which were not checked numerically\n(--no-check)",
}


@pytest.mark.parametrize("options", NOT_CHECKED, ids=" ".join)
def test_no_check_says_not_checked_in_every_format(options):
    result = CliRunner().invoke(main, ["render", SEED, "--no-check", *options])
    assert result.exit_code == 0, result.output
    assert NOT_CHECKED[options] in result.stdout
    for claim in ("Every displayed equality was checked", "checked numerically: worst",
                  '"status": "verified"'):
        assert claim not in result.stdout


def test_no_check_pdf_says_not_checked(tmp_path):
    need("pdflatex", "texlive-latex-base texlive-latex-recommended latexmk")
    need("pdftotext", "poppler-utils")
    out = tmp_path / "backprop.pdf"
    assert CliRunner().invoke(main, ["render", SEED, "--no-check", "-o", str(out)]).exit_code == 0
    text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True,
                          check=True, timeout=60).stdout
    assert "not checked numerically" in " ".join(text.split())
