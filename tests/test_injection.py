"""Hostile input runs no code and injects nothing, in any output.

Two promises. No code execution: user text never reaches ``eval``, ``exec``, ``sympify``
or ``parse_expr`` (derive/ is read for those calls, and sympify is watched while hostile
chains run), and user templates render in Jinja2's sandbox, which refuses the usual
escapes. No injection: free text — titles, file names used as headings, the notes title,
warnings — comes out as inert text in every format (Markdown flavors, the LaTeX snippet,
the standalone article, notes, HTML, the NumPy docstring; JSON is data), and a PDF built
from it shows the text instead of obeying it.
"""
import ast
import html.parser
import json
import re
import subprocess
import tempfile
from pathlib import Path

import pytest
import sympy
from sympy.parsing import sympy_parser
from click.testing import CliRunner
from jinja2.sandbox import SandboxedEnvironment

from derive import api, document, parse, render, user_template
from derive.cli import main
from derive.errors import DeriveError
from derive.render import md_escape
from derive.tex_text import tex_escape
from external import need

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "derive"
EXAMPLES = sorted((ROOT / "examples").glob("*.chain"))
BODY = "W : 2x3\nx : 3\nw_1 : 2\nv = W x\nE = v:v\nwrt W, w_1\n"   # w_1: a warning


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


# ---------------------------------------------------------------- no code execution

FORBIDDEN_CALLS = {"eval", "exec", "parse_expr", "__import__", "execfile", "import_module",
                   "lambdify", "system", "popen", "loads"}
ALLOWED_COMPILE = {("numpy_code.py", "to_numpy")}        # compiles its own source, runs nothing
ALLOWED_SYMPIFY = {("check.py", "assign_sizes"), ("evaluate.py", "concrete_shape"),
                   ("numpy_code.py", "_size")}          # sizes: SymPy objects from the parser


def _calls(path: Path) -> list:
    """(called name, innermost enclosing function, node) of every call in a module."""
    found = []

    def visit(node, function):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function = node.name
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            found.append((name, function, node))
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(ast.parse(path.read_text(encoding="utf-8")), "<module>")
    return found


def test_derive_calls_no_evaluator_on_anything():
    found = []
    for path in sorted(PACKAGE.glob("*.py")):
        for name, function, node in _calls(path):
            if name in FORBIDDEN_CALLS:
                found.append(f"{path.name}:{node.lineno} {name}() in {function}")
            if name == "compile" and (path.name, function) not in ALLOWED_COMPILE \
                    and not (isinstance(node.func, ast.Attribute)
                             and getattr(node.func.value, "id", "") == "re"):
                found.append(f"{path.name}:{node.lineno} compile() in {function}")
            if name in ("sympify", "S") and (path.name, function) not in ALLOWED_SYMPIFY:
                found.append(f"{path.name}:{node.lineno} {name}() in {function}")
    assert found == []


def test_the_numpy_module_compiles_but_never_runs_inside_derive():
    source = (PACKAGE / "numpy_code.py").read_text(encoding="utf-8")
    assert re.findall(r"\bcompile\((.*)\)", source) == ['source, "<derive numpy>", "exec"']
    assert "exec(" not in source and "eval(" not in source


def test_only_the_sandbox_renders_template_text():
    """Built-in templates come from files; text is compiled only in the user sandbox."""
    for path in sorted(PACKAGE.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        if "from_string" in text or "Template(" in text:
            assert path.name == "user_template.py", path.name
    assert isinstance(user_template._sandbox(ROOT, {}), SandboxedEnvironment)


@pytest.fixture
def watched_sympify(monkeypatch):
    """sympify refuses strings, and SymPy's parser refuses everything, while the test runs:
    user text never reaches ``parse_expr`` (which ``eval``s), directly or through sympify."""
    real = sympy.sympify
    seen = []

    def guarded(value, *args, **kwargs):
        assert not isinstance(value, (str, bytes)), f"sympify of text {value!r}"
        seen.append(type(value).__name__)
        return real(value, *args, **kwargs)

    def refused(text, *args, **kwargs):
        raise AssertionError(f"parse_expr of {text!r}")

    monkeypatch.setattr(sympy, "sympify", guarded)
    monkeypatch.setattr(sympy_parser, "parse_expr", refused)
    return seen


PAYLOAD = "__import__('os').system('touch {pwned}')"


def hostile_chains(pwned: Path) -> dict:
    """The payload in every position a chain has."""
    call = PAYLOAD.format(pwned=pwned)
    quoted = f'"""; {call}; """ \\" \' {call}'
    return {
        "expression": f"x : 3\nE = {call}\nwrt x",
        "definition name": f"x : 3\n{call} = x:x\nwrt x",
        "declaration": f"{call} : 3\nE = x:x\nwrt x",
        "size": f"x : {call}\nE = x:x\nwrt x",
        "wrt": f"x : 3\nE = x:x\nwrt {call}",
        "function": "x : 3\nE = eval(x):x\nwrt x",
        "title": f"# title: {quoted}\nx : 3\nE = x:x\nwrt x",
        "comment": f"x : 3   # {quoted}\nE = x:x   # {call}\nwrt x",
        "python names": "exec : 3\nos : 3\nimport : 3\nE = exec:os + import:import\nwrt exec, import",
        "method call": "x : 3\nE = os.system('touch PWNED'):x\nwrt x",
        "statement": f"x : 3\nE = x:x\nwrt x\nimport os; os.system('touch {pwned}')",
        "exec": "x : 3\nE = exec(compile('import os', 'f', 'exec')):x\nwrt x",
    }


def test_payloads_in_every_position_execute_nothing(tmp_path, monkeypatch, watched_sympify):
    monkeypatch.chdir(tmp_path)
    pwned = tmp_path / "PWNED"
    for where, text in hostile_chains(pwned).items():
        for args in (["render", "-e", text], ["render", "-e", text, "-t", "numpy"],
                     ["render", "-", "-t", "json"], ["check", "-e", text],
                     ["render", "-e", "x : 3\nE = x:x", "--wrt", PAYLOAD.format(pwned=pwned)]):
            result = run(*args, input=text)
            assert result.exit_code in (0, 2), (where, args, result.output)
            assert "Traceback" not in result.output
        try:
            derivation = api.derive(text)
        except DeriveError:
            continue
        module = derivation.to_numpy()
        namespace = {}
        exec(compile(module, "<derive numpy>", "exec"), namespace)   # the generated module itself
        gradient = namespace["gradient"](**{i.symbol.name: [1.0, 2.0, 3.0]
                                            for i in derivation.chain.inputs})
        assert set(gradient) == {w.name for w in derivation.chain.wrt}
    assert not pwned.exists() and not Path("/tmp/PWNED").exists()
    assert list(tmp_path.iterdir()) == []
    assert watched_sympify                     # sizes did go through sympify: the guard ran


def test_a_title_is_the_docstring_and_nothing_else():
    title = 'a """ b \\ c \'\'\' d """"'
    derivation = api.derive(f"# title: {title}\nx : 3\nE = x:x\nwrt x")
    tree = ast.parse(derivation.to_numpy())
    assert ast.get_docstring(tree).startswith(f"{title}: the objective")
    statements = [type(node).__name__ for node in tree.body]
    assert statements[:2] == ["Expr", "Import"]


def test_parse_tables_are_never_unpickled_from_a_shared_folder(tmp_path, monkeypatch):
    """lark's own cache is a pickle in /tmp under a predictable name: whoever wrote it first
    would run code as the user. derive keeps it in a folder only its user can write."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cache = Path(parse._cache_file())
    assert cache.parent == tmp_path / "derive"
    assert cache.parent.stat().st_mode & 0o077 == 0
    cache.parent.chmod(0o777)
    assert parse._cache_file() is False
    monkeypatch.delenv("XDG_CACHE_HOME")
    default = parse._cache_file()
    assert default is False or not default.startswith(tempfile.gettempdir())


TEMPLATE_ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.system('touch PWNED') }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'].popen('touch PWNED').read() }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ self.__init__.__globals__ }}",
    "{{ title.__class__.__base__.__subclasses__() }}",
    "{{ '{0.__class__.__mro__}'.format('') }}",
    "{{ gradients.__class__.__init__.__globals__ }}",
    "{{ check.__class__ }}{{ check.items.__self__.__class__ }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ range.__self__ }}",
    "{% include '/etc/passwd' %}",
    "{% include '../../../../../../etc/passwd' %}",
    "{% import '/etc/passwd' as p %}",
    "{{ 'a' * 10**13 }}",
    "{{ [1] * 10**9 }}",
    "{{ 9 ** (9 ** 9) }}",
]


@pytest.mark.parametrize("body", TEMPLATE_ESCAPES)
def test_user_templates_cannot_reach_python_or_files(body, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    template = tmp_path / "t.j2"
    template.write_text(f"before {body} after\n", encoding="utf-8")
    out = tmp_path / "out.txt"
    result = run("render", EXAMPLES[0], "--template", template, "-o", out)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"{template}:1:") and "template error" in result.stderr
    assert "Traceback" not in result.output and "root:" not in result.output
    assert not out.exists() and not (tmp_path / "PWNED").exists()


# ---------------------------------------------------------------- no injection

TEX_ATTACKS = [r"\input{/etc/passwd}", r"\write18{touch PWNED}", r"\immediate\write18{id}",
               r"\catcode`\{=12 \def\x{y}", "^^5cinput{/etc/passwd}", "% the rest is a comment }{"]
WEB_ATTACKS = ["</script><script>alert(1)</script>", "<img src=x onerror=alert(1)>",
               "``` $$ \\eqalign{ }$$ ```", "[link](javascript:alert(1)) *a* _b_ <b>"]
TITLE = " ".join(TEX_ATTACKS + WEB_ATTACKS)
DANGEROUS_TEX = ("\\input", "\\write18", "\\immediate", "\\catcode", "\\def\\x", "^^5c")
PASSWD_LINE = "root:x:0:0"


def derived(title: str, check: bool = True):
    return api.derive(f"# title: {title}\n{BODY}", check=check)


def test_hostile_title_is_data_in_json():
    data = json.loads(derived(TITLE).to_json())
    assert data["title"] == TITLE and data["status"] == "verified"


@pytest.mark.parametrize("flavor", render.FLAVORS)
def test_markdown_shows_the_title_and_warning_escaped(flavor):
    plain, hostile = derived("T").to_markdown(flavor), derived(TITLE).to_markdown(flavor)
    assert hostile.replace(md_escape(TITLE), "T") == plain     # only the title changed
    assert _unescaped(md_escape(TITLE)) & set("`$<>*_[]\\&") == set()
    assert hostile.count("```") == plain.count("```") and hostile.count("$$") == plain.count("$$")
    assert "Warning: w\\_1" in hostile


def _unescaped(text: str) -> set:
    """The characters of Markdown text that no backslash escapes."""
    found, escaped = set(), False
    for c in text:
        if not escaped and c != "\\":
            found.add(c)
        escaped = not escaped and c == "\\"
    return found


INERT_TEX = re.compile(r"\\(?:textbackslash|textasciicircum|textasciitilde|textless|textgreater"
                       r"|textbar)\{\}|\\[{}%&#$_]|\\ensuremath\{\\?[A-Za-z]*\}")


@pytest.mark.parametrize("make", [
    lambda d, t: d.to_latex(),
    lambda d, t: d.to_latex(explain=True),
    lambda d, t: document.standalone(d),
    lambda d, t: document.notes([d, d], headings=[t, "x"], title=t),
], ids=["snippet", "explained", "standalone", "notes"])
def test_latex_shows_the_title_escaped(make):
    plain, hostile = make(derived("T"), "T"), make(derived(TITLE), TITLE)
    escaped = tex_escape(TITLE)
    assert hostile.replace(escaped, "T") == plain                # only the title changed
    assert not set(INERT_TEX.sub("", escaped)) & set("\\{}%$&#^_~")   # no command, group, …
    for attack in DANGEROUS_TEX:
        assert attack not in hostile, attack
    if "documentclass" in hostile:                 # articles show warnings, escaped
        assert "w\\_1 has no path" in hostile


def test_html_keeps_the_title_as_text():
    plain = document.html([derived("T")])
    hostile = document.html([derived(TITLE)], notes=True, headings=[TITLE], title=TITLE)
    assert _tags(hostile) == _tags(document.html([derived("T")], notes=True, headings=["T"],
                                                 title="T"))
    assert all(not name.startswith("on") for _, attrs in _tags(hostile) for name, _ in attrs)
    assert "&lt;/script&gt;&lt;script&gt;alert(1)" in hostile and "<img" not in _markup(hostile)
    assert _tags(plain) == _tags(document.html([derived(TITLE)]))


def test_katex_url_cannot_open_a_tag():
    page = document.html([derived("T")], katex_url='https://x"><script>alert(1)</script>')
    assert "<script>alert(1)" not in page
    assert "x&#34;&gt;&lt;script&gt;" in page or "x&quot;&gt;&lt;script&gt;" in page


def _markup(page: str) -> str:
    """The page less the inline KaTeX (its script and stylesheet hold markup in strings)."""
    return page.replace(document._inline_js(), "").replace(document._inline_css(), "")


def _tags(page: str) -> list:
    """Every start tag (name, attribute names) of a page, in order."""
    found = []

    class Tags(html.parser.HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, tuple((name, None) for name, _ in attrs)))

    Tags().feed(page)
    return found


def test_file_names_as_note_headings_are_escaped(tmp_path):
    name = "$$ ``` <img src=x onerror=alert(1)> \\input{passwd} %.chain"
    chain = tmp_path / name
    chain.write_text(BODY, encoding="utf-8")
    tex, page = tmp_path / "notes.tex", tmp_path / "notes.html"
    assert run("notes", chain, "-o", tex, "--title", TITLE).exit_code == 0
    assert run("notes", chain, "-o", page, "--title", TITLE).exit_code == 0
    text = tex.read_text(encoding="utf-8")
    assert f"\\section{{{tex_escape(name)}}}" in text and "\\input{passwd}" not in text
    html_text = page.read_text(encoding="utf-8")
    assert "<img" not in _markup(html_text)
    assert "&lt;img src=x onerror=alert(1)&gt;" in html_text


def test_the_pdf_prints_the_attacks_and_obeys_none(tmp_path):
    need("pdflatex", "texlive-latex-base texlive-latex-recommended latexmk")
    need("pdftotext", "poppler-utils")
    chain = tmp_path / "hostile.chain"
    chain.write_text(f"# title: {TITLE}\n{BODY}", encoding="utf-8")
    out = tmp_path / "hostile.pdf"
    result = run("render", chain, "-o", out)
    assert result.exit_code == 0, result.output
    text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True,
                          check=True, timeout=60).stdout
    flat = " ".join(text.split())
    assert PASSWD_LINE not in text
    for literal in (r"\input{/etc/passwd}", r"\write18{touch PWNED}", "<img src=x onerror"):
        assert literal in flat, (literal, flat[:400])
    assert not (tmp_path / "PWNED").exists() and not Path("PWNED").exists()
