"""Every Markdown flavor of every example, rendered by the real renderer of its target.

``katex`` goes through KaTeX (throwOnError), ``mse`` and ``github`` through MathJax 3 with a
formatError that throws; ``github`` must also avoid the macros GitHub blocks.  The math
is cut out of the Markdown here and sent to one node process per renderer (tests/js).
Without node or tests/js/node_modules these tests skip, except under CI=true.
"""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from external import missing as skip_or_fail
from random_chains import Generator

import derive
from derive import frobenius
from derive.diagonal import (
    DIAG_OF_HADAMARD,
    DIAG_OF_MULTIPLE,
    DIAG_OF_ONES,
    DIAG_OF_SUM,
    HADAMARD_AS_DIAG,
)
from derive.expr import ShapeError
from derive.functions import ELEMENTWISE
from derive.rule import Rule
from derive.rules import DIFFERENTIALS
from derive.display import IDENTIFICATION
from derive.sweep import build

ROOT = Path(__file__).resolve().parent.parent
JS = ROOT / "tests" / "js"
EXAMPLES = sorted((ROOT / "examples").glob("*.chain"))
FLAVORS = ("mse", "katex", "github")
RENDERER = {"mse": "mathjax", "katex": "katex", "github": "mathjax"}
GITHUB_BLOCKED = re.compile(r"\\(operatorname|newcommand|renewcommand|def|mbox|phantom)(?![A-Za-z])")
CASES = [(path.stem, flavor, explain) for path in EXAMPLES for flavor in FLAVORS
         for explain in (False, True)]
RANDOM_SEEDS = range(40)


def require_node() -> None:
    """Skip without node or the npm packages; under CI=true their absence is a failure."""
    missing = None
    if shutil.which("node") is None:
        missing = "node is not installed (apt-get install nodejs npm)"
    elif not (JS / "node_modules" / "katex").is_dir() or \
            not (JS / "node_modules" / "mathjax-full").is_dir():
        missing = "tests/js/node_modules is missing (run: npm ci --prefix tests/js)"
    if missing:
        skip_or_fail(missing)


def run_renderer(name: str, formulas: list) -> list:
    """``[(tex, display)]`` through ``tests/js/<name>_render.js``: one ``{ok, error}`` each."""
    payload = json.dumps([{"tex": tex, "display": display} for tex, display in formulas])
    done = subprocess.run(["node", str(JS / f"{name}_render.js")], input=payload, cwd=JS,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout)
    assert len(results) == len(formulas)
    return results


def math_of(markdown: str, flavor: str) -> list:
    """The formulas of a Markdown text as ``(tex, display)``, by its flavor's delimiters."""
    if flavor == "github":
        display = re.findall(r"^```math\n(.*?)\n```$", markdown, flags=re.DOTALL | re.MULTILINE)
        inline = re.findall(r"\$`(.+?)`\$", markdown)
    else:
        display = re.findall(r"\$\$(.+?)\$\$", markdown, flags=re.DOTALL)
        rest = re.sub(r"\$\$.+?\$\$", "", markdown, flags=re.DOTALL)
        inline = re.findall(r"(?<!\\)\$([^$\n]+?)(?<!\\)\$", rest)
    return [(tex, True) for tex in display] + [(tex, False) for tex in inline]


def table_rules() -> list:
    """Every rule the tables can name, so --explain renders whichever a chain uses."""
    rules = [rule for rule, _ in DIFFERENTIALS.values()]
    rules += [f.rule for f in ELEMENTWISE.values()]
    rules += [v for v in vars(frobenius).values() if isinstance(v, Rule)]
    rules += [HADAMARD_AS_DIAG, DIAG_OF_SUM, DIAG_OF_MULTIPLE, DIAG_OF_HADAMARD, DIAG_OF_ONES,
              IDENTIFICATION]
    return rules


@pytest.fixture(scope="module")
def documents():
    """``{(example, flavor, explain): markdown}`` for every case."""
    out = {}
    for path in EXAMPLES:
        d = derive.derive_file(path)
        for _, flavor, explain in (c for c in CASES if c[0] == path.stem):
            out[path.stem, flavor, explain] = d.to_markdown(flavor, explain=explain)
        out[path.stem, "jupyter", False] = d._repr_latex_()
    for seed in RANDOM_SEEDS:
        try:
            d = build(Generator(seed).chain())
        except ShapeError:
            continue
        for flavor in FLAVORS:
            out[f"random{seed}", flavor, True] = d.to_markdown(flavor, explain=True)
    return out


@pytest.fixture(scope="module")
def verdicts(documents):
    """Each formula's verdict, keyed by case; one node run per renderer for the whole suite."""
    require_node()
    batches = {"katex": [], "mathjax": []}
    for (name, flavor, explain), text in documents.items():
        if flavor == "jupyter":
            for renderer in batches:
                batches[renderer] += [((name, flavor, explain), f) for f in math_of(text, "katex")]
        else:
            batches[RENDERER[flavor]] += [((name, flavor, explain), f)
                                          for f in math_of(text, flavor)]
    for renderer in batches:
        batches[renderer] += [(("rules", renderer, True), (r.latex, True)) for r in table_rules()]
    out = {}
    for renderer, items in batches.items():
        results = run_renderer(renderer, [formula for _, formula in items])
        for (key, formula), result in zip(items, results):
            out.setdefault((key, renderer), []).append((formula[0], result))
    return out


def display_blocks(name: str) -> int:
    """Display blocks of an example: definitions, substitutions (if it has a gradient), and
    one per Jacobian block."""
    path = ROOT / "examples" / f"{name}.chain"
    if not path.exists():
        return 2
    derivation = derive.derive_file(path, check=False)
    return 1 + bool(derivation.gradients) + len(derivation.hessians) + len(derivation.jacobians)


def failures(pairs) -> list:
    return [f"{result['error']}\n  in: {tex[:300]}" for tex, result in pairs if not result["ok"]]


@pytest.mark.parametrize("name, flavor, explain", CASES,
                         ids=[f"{n}-{f}{'-explain' if e else ''}" for n, f, e in CASES])
def test_every_formula_renders(verdicts, documents, name, flavor, explain):
    pairs = verdicts[(name, flavor, explain), RENDERER[flavor]]
    text = documents[name, flavor, explain]
    display = [tex for tex, display in math_of(text, flavor) if display]
    blocks = display_blocks(name)
    assert len(display) == blocks and len(pairs) >= blocks + 2     # and the inline math
    assert not failures(pairs)
    if explain:
        assert r"\text{by }" in text
    if flavor == "github":
        assert "$$" not in text
        assert not GITHUB_BLOCKED.findall(text)


@pytest.mark.parametrize("renderer", ["katex", "mathjax"])
def test_jupyter_latex_renders_in_katex_and_mathjax(verdicts, renderer):
    for path in EXAMPLES:
        pairs = verdicts[(path.stem, "jupyter", False), renderer]
        assert len(pairs) == display_blocks(path.stem) and not failures(pairs)


def test_random_chains_render_in_every_flavor(verdicts, documents):
    """The printer's whole vocabulary, as the random chains of the Core tests exercise it."""
    keys = [(key, RENDERER[key[1]]) for key in documents if key[0].startswith("random")]
    assert len(keys) > 3 * 30
    assert not [f for key in keys for f in failures(verdicts[key])]


@pytest.mark.parametrize("renderer", ["katex", "mathjax"])
def test_every_rule_of_the_tables_renders(verdicts, renderer):
    assert not failures(verdicts[("rules", renderer, True), renderer])


def test_the_renderers_reject_what_their_targets_reject():
    """Proof that the checks can fail: KaTeX refuses \\eqalign, MathJax an unknown macro."""
    require_node()
    katex = run_renderer("katex", [(r"\eqalign{a &= b \cr}", True), (r"\notamacro x", True),
                                   (r"\begin{aligned} a &= b \end{aligned}", True)])
    assert [r["ok"] for r in katex] == [False, False, True]
    assert "eqalign" in katex[0]["error"]
    mathjax = run_renderer("mathjax", [(r"\notamacro x", True), (r"\frac{a}", True),
                                       (r"\eqalign{a &= b &\implies c \cr}", True)])
    assert [r["ok"] for r in mathjax] == [False, False, True]
    assert "notamacro" in mathjax[0]["error"]
    assert GITHUB_BLOCKED.findall(r"\operatorname{tr}(A) \def\x{1} \det X \mbox{a}") == \
        ["operatorname", "def", "mbox"]


def test_the_mse_flavor_is_not_katex_safe_and_is_told_apart():
    """The default flavor's \\eqalign fails in KaTeX: the flavors are not interchangeable."""
    require_node()
    text = derive.derive_file(EXAMPLES[0], check=False).to_markdown("mse")
    results = run_renderer("katex", [f for f in math_of(text, "mse") if f[1]])
    assert results and not any(r["ok"] for r in results)
