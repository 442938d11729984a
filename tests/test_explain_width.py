"""--explain fits a forum's column: the rule names never make a display block wider than
650 px (math.stackexchange's column) unless the formulas alone already are.

Widths come from the real renderers: MathJax 3 (SVG output, in em) for the mse and github
flavors, KaTeX in headless chromium for the katex flavor, both at a 16 px font.
"""
import json
import re
import subprocess
from pathlib import Path

import pytest

import derive
from derive import document
from external import need
from test_js_renderers import JS, math_of, require_node

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.chain"))
COLUMN, FONT = 650, 16


def displays(flavor: str) -> dict:
    """``{(example, explain, index): tex}`` of every display block."""
    out = {}
    for path in EXAMPLES:
        d = derive.derive_file(path)
        for explain in (False, True):
            blocks = [tex for tex, display in math_of(d.to_markdown(flavor, explain=explain), flavor)
                      if display]
            out.update({(path.stem, explain, i): tex for i, tex in enumerate(blocks)})
    return out


def too_wide(widths: dict) -> list:
    """Blocks that --explain made wider than the column and than they were without it."""
    return [(name, i, round(plain), round(widths[name, True, i]))
            for (name, explain, i), plain in widths.items()
            if not explain and widths[name, True, i] > max(COLUMN, plain + 1)]


@pytest.mark.parametrize("flavor", ["mse", "github"])
def test_explain_fits_the_column_in_mathjax(flavor):
    require_node()
    blocks = displays(flavor)
    payload = json.dumps([{"tex": tex, "display": True} for tex in blocks.values()])
    done = subprocess.run(["node", str(JS / "mathjax_width.js")], input=payload, cwd=JS,
                          capture_output=True, text=True, timeout=300, check=True)
    ems = json.loads(done.stdout)
    assert None not in ems
    widths = {key: em * FONT for key, em in zip(blocks, ems)}
    assert too_wide(widths) == []


PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><style>{css}</style>
<style>body {{ width: {column}px; font-size: {font}px; margin: 0 }}
.katex-display {{ display: inline-block }}</style></head><body>{blocks}
<pre id="out"></pre><script>{js}</script><script>
var nodes = document.querySelectorAll(".f"), widths = [];
for (var i = 0; i < nodes.length; i++) {{
  katex.render(nodes[i].textContent, nodes[i], {{displayMode: true, throwOnError: true}});
  widths.push(nodes[i].querySelector(".katex").getBoundingClientRect().width);
}}
document.getElementById("out").textContent = JSON.stringify(widths);
</script></body></html>"""


def test_explain_fits_the_column_in_katex(tmp_path):
    chromium = need("chromium", "chromium")
    blocks = displays("katex")
    divs = "".join(f'<div class="f">{tex.replace("&", "&amp;").replace("<", "&lt;")}</div>'
                   for tex in blocks.values())
    page = tmp_path / "widths.html"
    page.write_text(PAGE.format(css=document._inline_css(), js=document._inline_js(),
                                column=COLUMN, font=FONT, blocks=divs), encoding="utf-8")
    done = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000",
         "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="out">(\[.*?\])</pre>', done.stdout)
    assert found, done.stderr[-2000:]
    widths = dict(zip(blocks, json.loads(found.group(1))))
    assert len(widths) == len(blocks) and too_wide(widths) == []
