"""Markdown flavors, --explain, user templates and the notebook views (layout and safety).

Whether the math renders is tests/test_js_renderers.py's job (KaTeX, MathJax 3).
"""
import copy
import pickle
import re
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from external import need

import derive
from derive import frobenius, render
from derive.cli import main
from derive.functions import ELEMENTWISE
from derive.rule import Rule
from derive.tex_text import latex_of
from derive.rules import DIFFERENTIALS

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.chain"))
BACKPROP = ROOT / "examples" / "backprop.chain"
PLAIN_TEX = re.compile(r"\\(eqalign|cr|rm|over)(?![A-Za-z])")


@pytest.fixture(scope="module")
def seed():
    return derive.derive_file(BACKPROP)


@pytest.fixture(scope="module")
def all_examples():
    return [derive.derive_file(path) for path in EXAMPLES]


def test_katex_flavor_is_aligned_without_plain_tex(seed):
    text = seed.to_markdown("katex")
    assert text.count(r"$$\begin{aligned}") == text.count(r"\end{aligned}$$") == 2
    assert text.count(r"&&\implies") == len(seed.definitions)
    assert not PLAIN_TEX.findall(text)
    assert text.startswith("**One logistic layer, squared error**")
    assert "checked numerically" in text


def test_github_flavor_uses_math_fences_and_no_dollar_dollar(seed):
    text = seed.to_markdown("github")
    assert "$$" not in text and not PLAIN_TEX.findall(text)
    assert text.count("```math\n\\begin{aligned}") == 2
    assert text.count("\\end{aligned}\n```") == 2
    assert r"$`A:B=\mathrm{tr}(A^TB)`$" in text


def test_latex_snippet_stays_amsmath_only(all_examples):
    for d in all_examples:
        for explain in (False, True):
            text = d.to_latex(explain=explain)
            assert not PLAIN_TEX.findall(text)
            assert r"\usepackage" not in text and r"\newcommand" not in text
            assert text.isascii()


def test_explained_latex_snippets_compile_with_amsmath_alone(all_examples, tmp_path):
    """Every example's snippet, with --explain, in one article that loads only amsmath."""
    pdflatex = need("pdflatex", "texlive-latex-base")
    body = "\n\n".join(d.to_latex(explain=True) for d in all_examples)
    (tmp_path / "all.tex").write_text("\\documentclass{article}\n\\usepackage{amsmath}\n"
                                      f"\\begin{{document}}\n{body}\n\\end{{document}}\n",
                                      encoding="utf-8")
    run = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error",
                          "-no-shell-escape", "all.tex"], cwd=tmp_path, stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout[-2000:]
    assert (tmp_path / "all.pdf").is_file()


def test_unknown_flavor_is_refused(seed):
    with pytest.raises(ValueError):
        seed.to_markdown("mathml")


# ---------------------------------------------------------------- explain


def test_every_rule_has_an_ascii_latex_form():
    rules = [r for r, _ in DIFFERENTIALS.values()] + [f.rule for f in ELEMENTWISE.values()]
    rules += [v for v in vars(frobenius).values() if isinstance(v, Rule)]
    assert len(rules) > 30
    for rule in rules:
        assert isinstance(rule, Rule), rule
        assert rule.latex.isascii() and rule.latex.count("{") == rule.latex.count("}"), rule


def test_every_line_of_every_example_names_rules_with_latex(all_examples):
    for d in all_examples:
        for line in d.definitions + d.substitutions[1:]:
            assert line.rules and all(isinstance(r, Rule) for r in line.rules), line


def test_rules_stay_plain_strings_for_json_and_survive_copies():
    rule = frobenius.LEFT_FACTOR
    assert rule == "A:BC = BᵀA:C" and str(rule) == "A:BC = BᵀA:C"
    for clone in (pickle.loads(pickle.dumps(rule)), copy.deepcopy(rule)):
        assert clone == rule and clone.latex == r"A:BC = B^TA:C"
    assert latex_of("a_b & c") == r"\text{a\_b \& c}"


def test_substitution_rules_name_the_eliminated_variable(seed):
    names = [list(s.rules) for s in seed.substitutions]
    assert "substitute ds" in names[1] and "substitute dv" in names[2]
    latex = [latex_of(r) for r in seed.substitutions[2].rules]
    assert r"\text{substitute } dv" in latex and r"A:BC = B^TA:C" in latex


@pytest.mark.parametrize("flavor", ["mse", "katex", "github", "latex"])
def test_explain_annotates_every_line_that_used_a_rule(seed, flavor):
    show = (lambda **k: seed.to_latex(**k)) if flavor == "latex" else \
        (lambda **k: seed.to_markdown(flavor, **k))
    plain, explained = show(), show(explain=True)
    assert r"\text{by }" not in plain
    lines = [d for d in seed.definitions] + [s for s in seed.substitutions if s.rules]
    assert explained.count(r"\text{by }") == len(lines) + len(seed.gradients)
    assert r"\text{by } A:BC = B^TA:C,\quad \text{substitute } dv" in explained
    assert r"\mathrm{Diag}(s) = S" in explained
    assert r"\iff \frac{\partial E}{\partial W} = G" in explained
    assert len(explained.splitlines()) == len(plain.splitlines())


def test_identification_is_shown_on_the_gradient_line(seed):
    data = render.page(seed, explain=True)
    assert all(r"\iff" not in r for s in data["substitutions"] for r in s["rules"])
    assert [r"\iff" in g["rules"][0] for g in data["gradients"]] == [True]


def test_explain_on_the_command_line():
    result = CliRunner().invoke(main, ["render", str(BACKPROP), "--flavor", "katex", "--explain"])
    assert result.exit_code == 0, result.output
    assert r"\\ &&&\qquad{\scriptstyle \text{by } d(AB) = dA\,B + A\,dB}" in result.output


# ---------------------------------------------------------------- free text


HOSTILE = "<script>alert(1)</script> `x` $y$ *z* [l](u) &amp; ```"


def hostile(check=True):
    text = f"# title: {HOSTILE}\nW : 2x3\nx : 3\nw_1 : 2\nv = W x\nE = v:v\nwrt W, w_1\n"
    return derive.derive(text, check=check)


@pytest.mark.parametrize("flavor", ["mse", "katex", "github"])
def test_titles_and_warnings_cannot_inject_markdown_or_html(flavor):
    text = hostile().to_markdown(flavor)
    title = text.splitlines()[0]
    assert "<" not in title.replace(r"\<", "") and ">" not in title.replace(r"\>", "")
    assert re.search(r"(?<!\\)[`$*\[&]", title[2:-2]) is None
    warning = next(line for line in text.splitlines() if line.startswith("Warning:"))
    assert r"w\_1 has no path" in warning
    fences = [line for line in text.splitlines() if line.startswith("```")]
    assert len(fences) == (4 if flavor == "github" else 0)


def test_md_escape():
    assert render.md_escape(r"a_b <i> $x$ \n") == r"a\_b \<i\> \$x\$ \\n"


# ---------------------------------------------------------------- user templates


def test_user_template_gets_the_context_and_the_built_in_templates(seed, tmp_path):
    template = tmp_path / "mine.md.j2"
    template.write_text(
        "{{ title|md_escape }}: {{ definitions|length }} lines\n"
        "{% for s in substitutions %}{{ s.latex }} {{ s.rule_names|join('; ') }}\n{% endfor %}"
        "{% include 'check_sentence.md.j2' %}", encoding="utf-8")
    text = render.to_template(seed, template, explain=True)
    assert text.startswith("One logistic layer, squared error: 4 lines\n")
    assert "substitute dv" in text and "checked numerically" in text


@pytest.mark.parametrize("body, message, line", [
    ("ok\n{{ ''.__class__.__mro__ }}\n", "unsafe", 2),
    ("ok\n{% for x in %}\n", "template error", 2),
    ("ok\nok\n{{ nothing.here }}\n", "'nothing' is undefined", 3),
])
def test_user_templates_are_sandboxed_and_their_errors_located(seed, tmp_path, body, message,
                                                               line):
    template = tmp_path / "bad.j2"
    template.write_text(body, encoding="utf-8")
    with pytest.raises(derive.DeriveError) as caught:
        render.to_template(seed, template)
    assert message in caught.value.message and caught.value.line == line
    assert caught.value.format().startswith(f"{template}:{line}:")


def test_template_on_the_command_line_writes_atomically(tmp_path):
    template = tmp_path / "t.txt.j2"
    template.write_text("{% for g in gradients %}{{ g.latex }}\n{% endfor %}", encoding="utf-8")
    out = tmp_path / "out.html"
    result = CliRunner().invoke(main, ["render", str(BACKPROP), "--template", str(template),
                                       "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == "(S - S^2)(s - y)x^T\n"
    missing = CliRunner().invoke(main, ["render", str(BACKPROP), "--template", "nope.j2"])
    assert missing.exit_code == 2 and "cannot read template" in missing.output


# ---------------------------------------------------------------- notebooks


def test_notebook_views_are_the_katex_safe_subset(seed):
    assert seed._repr_markdown_() == seed.to_markdown("katex")
    latex = seed._repr_latex_()
    assert latex.count(r"$$\begin{aligned}") == 2 and not PLAIN_TEX.findall(latex)
    assert latex.startswith("$$") and latex.rstrip().endswith("$$")
