"""The plain-text printer never glues two tokens into a different one: the text of every
definition of every example, and of a few expressions built to tempt it, read back as
chain syntax, is the same expression."""
from pathlib import Path

import pytest

from derive.parse import parse_chain
from derive.printer import text

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.chain"))


def _size(symbol) -> str:
    rows, cols = symbol.shape
    return "scalar" if (rows, cols) == (1, 1) else f"{rows}" if cols == 1 else f"{rows}x{cols}"


def reread(chain):
    """The chain written again from its declarations and the text of each definition."""
    declared = {"spd", "symmetric", "positive", "invertible"}
    lines = [f"{i.symbol.name} : {_size(i.symbol)} {' '.join(sorted(i.symbol.props & declared))}"
             for i in chain.inputs]
    lines += [f"{d.symbol.name} = {text(d.expr)}" for d in chain.definitions]
    lines += [f"jacobian {f} wrt {x}" for f, x, _, _ in chain.jacobians]
    if chain.wrt:
        lines.append("wrt " + ", ".join(w.name for w in chain.wrt))
    return parse_chain("\n".join(lines) + "\n")


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_the_text_of_every_example_reads_back(path):
    chain = parse_chain(path.read_text(encoding="utf-8"))
    again = reread(chain)
    assert [d.expr for d in again.definitions] == [d.expr for d in chain.definitions]


@pytest.mark.parametrize("expression", [
    "sigma(x - 40 * 1):x", "(2 1)'x", "1'x 2", "x'x 3 2", "2 3 x'x", "(x - 1/2 1)'(x + 10 1)",
])
def test_numbers_never_run_together(expression):
    chain = parse_chain(f"x : 3\nE = {expression}\nwrt x\n")
    assert reread(chain).objective.expr == chain.objective.expr, text(chain.objective.expr)
