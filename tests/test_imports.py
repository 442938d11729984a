"""derive's modules import one another as a DAG: no circle, even through an import
inside a function (STYLE: layers, not circles)."""
import ast
import functools
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "derive"
MODULES = {p.stem for p in PACKAGE.glob("*.py")}


def imported(path: Path) -> set:
    """The derive modules ``path`` imports anywhere in its body (``__init__`` for the
    package itself: ``from . import __version__``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {_module(a.name.split(".")[1:]) for a in node.names
                      if a.name.split(".")[0] == "derive"}
        elif isinstance(node, ast.ImportFrom):
            module = (node.module or "").split(".") if node.module else []
            parts = ["derive", *module] if node.level else module    # level 1: from .x, from .
            if parts[0] != "derive":
                continue
            if parts[1:]:
                found.add(_module(parts[1:]))
            else:                                      # from . import formats, __version__
                found |= {_module([a.name]) for a in node.names}
    return found


def _module(parts: list) -> str:
    """The derive module a dotted path below ``derive`` names (the package: ``__init__``)."""
    return parts[0] if parts and parts[0] in MODULES else "__init__"


def graph() -> dict:
    return {p.stem: sorted(imported(p) - {p.stem}) for p in PACKAGE.glob("*.py")}


def cycles(edges: dict) -> list:
    """Each import circle once, as the list of modules along it (depth-first search)."""
    found, state = [], {}

    def visit(module, path):
        state[module] = "open"
        for target in edges.get(module, ()):
            if state.get(target) == "open":
                found.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    return found


def test_the_scanner_sees_a_circle_and_imports_inside_functions():
    assert cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c", "a"]]
    assert cycles({"a": ["b"], "b": []}) == []
    assert "render" in imported(PACKAGE / "api.py")
    assert "pdf" in imported(PACKAGE / "api.py")               # imported inside a function only
    assert "__init__" in imported(PACKAGE / "cli.py")          # from . import __version__
    assert "render" in imported(PACKAGE / "__init__.py")       # import derive.render


def test_the_imports_form_a_dag():
    circles = cycles(graph())
    assert not circles, "import circles: " + "; ".join(" → ".join(c) for c in circles)


@functools.cache
def _after_check() -> tuple:
    """``derive check examples/backprop.chain`` run as the command runs: its output and the
    modules it left loaded."""
    probe = ("import sys, runpy; sys.argv = ['derive', 'check', 'examples/backprop.chain']\n"
             "try:\n    runpy.run_module('derive', run_name='__main__')\n"
             "except SystemExit as stop:\n    assert stop.code in (None, 0), stop.code\n"
             "print(' '.join(sorted(sys.modules)))\n")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=PACKAGE.parent, timeout=120)
    assert run.returncode == 0, run.stderr
    *output, modules = run.stdout.strip().splitlines()
    return "\n".join(output), set(modules.split())


def test_derive_check_loads_no_template_engine():
    """The cold-start promise: ``derive check`` prints its verdict without Jinja2 (or the
    renderers), and a Derivation still renders once asked (the renderers load then)."""
    output, modules = _after_check()
    assert "✓ gradient" in output
    assert "derive.check" in modules and "derive.parse" in modules      # the probe sees loads
    assert not {m for m in modules if m.split(".")[0] in ("jinja2", "markupsafe")}
    assert "derive.render" not in modules
    from derive.api import derive
    assert "\\frac" in derive("x : 3\nE = x'x\nwrt x\n").to_latex()


def test_derive_check_of_a_plain_chain_loads_only_what_it_uses():
    """No numpy.random (the check's small draws come from derive.draws), no stage the chain
    does not ask for (claims, Hessians, Jacobians), no difflib (suggestions on errors)."""
    _, modules = _after_check()
    assert "derive.draws" in modules
    unused = {"numpy.random", "difflib", "derive.claims", "derive.hessian", "derive.jacobian",
              "derive.check_hessian", "derive.check_jacobian", "derive.latex_input"}
    assert not unused & modules, sorted(unused & modules)
