"""Rendering: the templates' layout, and the LaTeX snippet compiled when a TeX engine exists."""
import dataclasses
import json
import shutil
import subprocess
from pathlib import Path

import pytest

import derive
from derive import render, verdict
from derive.templates_path import template_dir

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "backprop.chain"


@pytest.fixture(scope="module")
def seed():
    return derive.derive_file(EXAMPLE)


def test_markdown_is_the_seed_layout(seed):
    text = seed.to_markdown()
    assert text.count(r"$$\eqalign{") == 2 and text.count("}$$") == 2
    assert text.count(r"&\implies") == len(seed.definitions)
    assert r"\frac{\partial E}{\partial W} &=" in text
    assert text.startswith("**One logistic layer, squared error**")
    assert "checked numerically" in text and "seed 0" in text
    assert seed._repr_markdown_() == seed.to_markdown("katex")


def test_latex_snippet_is_amsmath_not_plain_tex(seed):
    text = seed.to_latex()
    assert r"\eqalign" not in text and r"\cr" not in text
    assert text.count(r"\begin{align*}") == text.count(r"\end{align*}") == 2
    assert text.count(r"&&\implies") == len(seed.definitions)


def test_unchecked_and_failed_derivations_never_claim_to_be_verified(seed):
    unchecked = dataclasses.replace(seed, check=None)
    assert "not** checked" in unchecked.to_markdown()
    assert "not} checked" in unchecked.to_latex()
    verdicts = tuple(dataclasses.replace(v, ok=False, relative_error=0.5) if i == 0 else v
                     for i, v in enumerate(seed.check.verdicts))
    failed = dataclasses.replace(seed, check=dataclasses.replace(seed.check, verdicts=verdicts))
    for text in (failed.to_markdown(), failed.to_latex()):
        assert "FAILED" in text and "check failed" in text
        assert "Every displayed equality was checked" not in text
    assert "✗" in verdict.to_verdict(failed)


def test_json_has_steps_rules_gradients_and_verdicts(seed):
    data = json.loads(seed.to_json())
    assert data["title"] == "One logistic layer, squared error"
    assert [i["name"] for i in data["inputs"]] == ["W", "x", "y"]
    assert len(data["definitions"]) == len(seed.definitions)
    assert all({"latex", "text", "rules"} <= set(d) for d in data["definitions"])
    assert data["substitutions"][0]["latex"].endswith(":ds")
    assert data["gradients"][0]["wrt"] == "W"
    assert data["check"]["ok"] and data["check"]["verdicts"]


def test_expand_shows_the_expanded_gradient():
    plain = derive.derive_file(EXAMPLE, check=False)
    expanded = derive.derive_file(EXAMPLE, check=False, expand=True)
    label = r"\frac{\partial E}{\partial W}"
    line = lambda d: next(l for l in d.to_markdown().splitlines() if label in l)
    assert line(plain) != line(expanded)


def test_tex_escape():
    assert render.tex_escape("50% of a_b & c") == r"50\% of a\_b \& c"


def test_templates_are_found():
    for name in ("markdown.md.j2", "latex.tex.j2"):
        assert (template_dir() / name).is_file()


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_latex_snippet_compiles(seed, tmp_path):
    document = ("\\documentclass{article}\n\\usepackage{amsmath}\n\\begin{document}\n"
                f"{seed.to_latex()}\n\\end{{document}}\n")
    (tmp_path / "snippet.tex").write_text(document, encoding="utf-8")
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                          "-no-shell-escape", "snippet.tex"], cwd=tmp_path,
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:]
    assert (tmp_path / "snippet.pdf").is_file()
