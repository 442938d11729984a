"""HTML pages, opened in headless chromium with KaTeX from the local npm copy, no network.

Every formula of a page is an element of class ``math``; once the page has run, each must
hold a rendered ``.katex`` and none a ``.katex-error``. Without chromium or
tests/js/node_modules/katex these tests skip (they fail under CI=true).
"""
import re
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

import derive
from derive import document
from derive.cli import main
from external import missing, need

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.chain"))
BACKPROP = ROOT / "examples" / "backprop.chain"
KATEX_DIST = ROOT / "tests" / "js" / "node_modules" / "katex" / "dist"
HOSTILE_TITLE = "A </script><script>document.title='owned'</script> & <b>bold</b> σ"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def browser(tmp_path):
    """A function: an HTML file → its DOM after the page's scripts ran (headless chromium)."""
    chromium = need("chromium", "chromium")
    if not (KATEX_DIST / "katex.min.js").is_file():
        missing("tests/js/node_modules/katex is missing (run: npm ci --prefix tests/js)")

    def dom(page: Path, *flags) -> str:
        done = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", "--disable-extensions", f"--user-data-dir={tmp_path / 'profile'}",
             *flags, "--virtual-time-budget=5000", "--dump-dom", page.resolve().as_uri()],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout
    return dom


def formulas(html: str) -> int:
    return len(re.findall(r'class="math (?:display|inline)"', html))


def rendered(dom: str) -> tuple:
    """(number of rendered ``.katex`` elements, number of ``.katex-error`` elements)."""
    return len(re.findall(r'class="katex"', dom)), len(re.findall(r'class="katex-error"', dom))


@pytest.mark.parametrize("options", [[], ["--explain"]])
def test_backprop_page_renders_every_formula(browser, tmp_path, options):
    page = tmp_path / "backprop.html"
    result = run("render", BACKPROP, "-o", page, "--katex-url", KATEX_DIST, *options)
    assert result.exit_code == 0, result.output
    html = page.read_text(encoding="utf-8")
    assert formulas(html) > 10 and (r"\text{by }" in html) == bool(options)
    dom = browser(page)
    assert rendered(dom) == (formulas(html), 0)
    assert "One logistic layer, squared error" in dom and "checked numerically" in dom


def test_notes_page_renders_every_formula_of_every_example(browser, tmp_path):
    page = tmp_path / "notes.html"
    result = run("notes", *EXAMPLES, "-o", page, "--katex-url", KATEX_DIST)
    assert result.exit_code == 0, result.output
    html = page.read_text(encoding="utf-8")
    dom = browser(page)
    assert rendered(dom) == (formulas(html), 0)
    assert html.count('<section id="section-') == len(EXAMPLES)
    assert html.count("Every displayed equality was checked numerically") == len(EXAMPLES)


def test_a_bad_macro_shows_as_a_katex_error(browser, tmp_path):
    html = document.html([derive.derive_file(BACKPROP)], katex_url=str(KATEX_DIST))
    page = tmp_path / "bad.html"
    page.write_text(html.replace(r"\begin{aligned}", r"\eqalign{", 1), encoding="utf-8")
    count, errors = rendered(browser(page))
    assert errors == 1 and count == formulas(html) - 1


def test_a_hostile_title_stays_text(browser, tmp_path):
    source = tmp_path / "hostile.chain"
    source.write_text(f"# title: {HOSTILE_TITLE}\nW : 5x4\nx : 4\nE = (W x):(W x)\nwrt W\n",
                      encoding="utf-8")
    page = tmp_path / "hostile.html"
    assert run("render", source, "-o", page, "--katex-url", KATEX_DIST).exit_code == 0
    html = page.read_text(encoding="utf-8")
    assert "</script><script>" not in html and "<b>" not in html
    dom = browser(page)
    assert re.search(r"<title>(.*?)</title>", dom).group(1).startswith("A &lt;/script&gt;")
    assert rendered(dom) == (formulas(html), 0)


OFFLINE = ("--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9")


def visible_tex(dom: str) -> list:
    """TeX left in the page's visible text: KaTeX keeps each source in a MathML
    ``<annotation>``, and the inline stylesheet and script hold macros too, so those go."""
    text = re.sub(r"<(annotation|script|style)\b.*?</\1>", "", dom, flags=re.S)
    return re.findall(r"\\(?:frob|hadamard|Diag|begin|frac|mathrm)\b", text)


def test_the_default_page_renders_offline_from_file(browser, tmp_path):
    """No --katex-url: KaTeX and its fonts are inside the page; the network is off."""
    page = tmp_path / "usb" / "backprop.html"
    page.parent.mkdir()
    result = run("render", BACKPROP, "-o", page)
    assert result.exit_code == 0, result.output
    html = page.read_text(encoding="utf-8")
    markup = re.sub(r"<(script|style)\b.*?</\1>", "", html, flags=re.S)
    assert not re.findall(r'(?:src|href)="(?!#|data:)[^"]*"', markup)
    log = tmp_path / "net.json"
    dom = browser(page, *OFFLINE, f"--log-net-log={log}")
    assert rendered(dom) == (formulas(html), 0) and formulas(html) > 10
    assert visible_tex(dom) == []
    requested = set(re.findall(r'"url":"([^"]*)"', log.read_text(encoding="utf-8")))
    assert not [url for url in requested if "katex" in url or "jsdelivr" in url
                or url.startswith("file:") and "backprop.html" not in url]


def test_the_inline_katex_is_the_pinned_release():
    """The copy in the wheel is byte for byte the release the CDN hashes name."""
    import base64
    import hashlib
    for name, integrity in document.KATEX_INTEGRITY.items():
        digest = hashlib.sha384((document.KATEX_FILES / name).read_bytes()).digest()
        assert "sha384-" + base64.b64encode(digest).decode() == integrity
    assert (document.KATEX_FILES / "LICENSE").read_text().startswith("The MIT License")


def test_katex_url_cdn_loads_pinned_katex_with_integrity():
    html = document.html([derive.derive_file(BACKPROP)], katex_url="cdn")
    cdn = "https://cdn.jsdelivr.net/npm/katex@0.19.1/dist/"
    assert f'href="{cdn}katex.min.css" integrity="sha384-' in html
    assert f'src="{cdn}katex.min.js" integrity="sha384-' in html
    assert r"\eqalign" not in html and r"\begin{aligned}" in html


def test_katex_url_accepts_a_folder_relative_to_the_page_or_a_url(tmp_path):
    dist = tmp_path / "vendor" / "katex"
    dist.mkdir(parents=True)
    for name in document.KATEX_INTEGRITY:
        (dist / name).write_text("", encoding="utf-8")
    local = document.katex_assets(str(dist), page_dir=tmp_path / "site")
    assert local["js"]["href"] == "../vendor/katex/katex.min.js"
    assert local["js"]["integrity"] is None
    remote = document.katex_assets("https://example.org/katex/dist/")
    assert remote["css"]["href"] == "https://example.org/katex/dist/katex.min.css"


def test_katex_url_refuses_a_folder_without_katex(tmp_path):
    result = run("render", BACKPROP, "-o", tmp_path / "p.html", "--katex-url", tmp_path / "nowhere")
    assert result.exit_code == 2 and "no katex.min.css or katex.min.js there" in result.stderr
    assert not (tmp_path / "p.html").exists()
