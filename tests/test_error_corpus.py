"""The error corpus (tests/error_corpus.txt) through the real command: every bad chain
exits 2 with `FILE:LINE:COL: message`, the line echoed, a caret under the column and no
traceback."""
from pathlib import Path

import pytest
from click.testing import CliRunner

from derive.cli import main

CORPUS = Path(__file__).resolve().parent / "error_corpus.txt"


def load_corpus(path: Path = CORPUS) -> list:
    """``(line, column, fragment, text)`` per case: a ``=== L:C | fragment`` header, then text."""
    cases, current = [], None
    for raw in path.read_text(encoding="utf-8").split("\n"):
        if raw.startswith("=== "):
            place, fragment = raw[4:].split(" | ", 1)
            line, column = map(int, place.split(":"))
            current = [line, column, fragment, []]
            cases.append(current)
        elif current is not None:
            current[3].append(raw)
    return [(line, column, fragment, _text(lines)) for line, column, fragment, lines in cases]


def _text(lines: list) -> str:
    """A case's chain: its lines up to the last non-blank one (section comments between
    cases belong to no case)."""
    while lines and (not lines[-1].strip() or lines[-1].startswith("# ---")):
        lines = lines[:-1]
    return "\n".join(lines) + "\n" if lines else ""


CASES = load_corpus()


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_located(result, name, text, line, column, fragment):
    """Exit 2; ``name:line:col: …fragment…``, the source line, a caret under the column."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.stdout == ""
    head, shown, caret = result.stderr.rstrip("\n").split("\n")
    assert head.startswith(f"{name}:{line}:{column}: "), head
    assert fragment in head, head
    source_line = text.split("\n")[line - 1] if text else ""
    assert shown == "  " + source_line
    assert caret == "  " + " " * (column - 1) + "^"


def test_the_corpus_is_large_and_varied():
    assert len(CASES) >= 30
    assert len({fragment for _, _, fragment, _ in CASES}) >= 30


@pytest.mark.parametrize("line, column, fragment, text", CASES,
                         ids=[f"{i}-{c[2][:40]}" for i, c in enumerate(CASES)])
def test_bad_chain_file(tmp_path, line, column, fragment, text):
    path = tmp_path / "bad.chain"
    path.write_text(text, encoding="utf-8")
    strict = ["--strict"] if text.startswith("# strict:") else []
    assert_located(run("render", *strict, path), str(path), text, line, column, fragment)


@pytest.mark.parametrize("text, column, fragment", [
    ("W : 5x4; x : 5; v = W x; E = v'v; wrt W", 23, "W x: W is 5×4 but x has 5 rows"),
    ("x : 3; E = (x'x + 1; wrt x", 20, "missing ')'"),
    ("x : 3; E = x'x + 1.2.3; wrt x", 18, "bad number 1.2.3"),
    ("x : 3; E = x'x €; wrt x", 16, "unexpected character '€'"),
    ("x : 3; E = x'x +; wrt x", 17, "expected an expression after '+'"),
    ("a : 3; b : 4; E = a:b; wrt a", 20, "a:b: a is a vector of length 3 but b is"),
    ("x : 3; v = w; w = x; E = w'w; wrt x", 12, "w is defined at column 15, after its use here"),
    ("x : 3; v = 2 x; v = x; E = v'v; wrt x", 17, "v is already defined at column 8"),
    ("x : 3; E = x'x; wrt y", 21, "wrt y: y is not an input of this chain"),
    ("x : 3; E = x'x", 1, "nothing to differentiate with respect to"),
    ("x : 3; wrt x", 1, "no definitions"),
    ("A : 3x4 spd; E = tr(A); wrt A", 9, "spd needs a square matrix, but A is 3×4"),
    ("A : 3x4; E = logdet(A); wrt A", 14, "logdet needs a square matrix, but A is 3×4"),
])
def test_inline_chains_cite_columns_on_line_one(text, column, fragment):
    assert_located(run("render", "-e", text), "<-e>", text, 1, column, fragment)


def test_check_command_and_stdin_report_the_same_way():
    text = "W : 5x4\nx : 5\nv = W x\nE = v'v\nwrt W\n"
    result = CliRunner().invoke(main, ["check", "-"], input=text)
    assert_located(result, "<stdin>", text, 3, 7, "W x: W is 5×4 but x has 5 rows")


def test_a_caret_under_a_tab_indented_line_keeps_the_tab():
    text = "W : 5x4\nx : 5\n\tv = W x\nE = v'v\nwrt W"
    result = run("render", "-e", text)
    assert result.exit_code == 2
    assert result.stderr.split("\n")[1:3] == ["  \tv = W x", "  \t      ^"]


def test_a_long_line_is_shown_around_the_column():
    text = "x : 3; " + "v = x; " * 2000 + "E = x'x €; wrt x"
    result = run("render", "-e", text)
    assert result.exit_code == 2
    head, shown, caret = result.stderr.rstrip("\n").split("\n")
    assert "unexpected character '€'" in head
    assert len(shown) < 120 and shown.startswith("  …")
    assert shown[len(caret) - 1] == "€"
