"""Every expression node has an entry in every per-node table that must know it.

A node added to ``expr.py`` without its differential rule, its printers (LaTeX, text,
document, NumPy), its evaluation or, where a differential can sit inside it, its
Frobenius move fails here, by name, before any chain reaches the gap.  The exemptions
say why a node needs no entry.
"""
import inspect

import pytest

from derive import evaluate
from derive import expr as E
from derive.frobenius import MOVES
from derive.functions import ALIASES, ELEMENTWISE
from derive.numpy_code import NumpyPrinter
from derive.operations import CALLS, SPELLINGS
from derive.parse import FUNCTIONS, SHAPE_RULES
from derive.printer import DocumentPrinter, LatexPrinter, TextPrinter
from derive.rules import DIFFERENTIALS

NODES = sorted((c for _, c in inspect.getmembers(E, inspect.isclass)
                if issubclass(c, E.Expr) and c not in (E.Expr, E.Unary)), key=lambda c: c.__name__)

# Symbol and Differential are the leaves the rule engine handles itself; an adjoint is
# written out before a Hessian differentiates a gradient (hessian.py).
NOT_DIFFERENTIATED = {E.Symbol, E.Differential, E.Adjoint}
# a dX never sits inside these in a linear form: the rules put it outside (d(X⁻¹) is
# −X⁻¹ dX X⁻¹, d f(u) is f′(u)∘du) or they are leaves
NO_DIFFERENTIAL_INSIDE = {E.Symbol, E.Differential, E.Adjoint, E.Number, E.Zero, E.Identity,
                          E.Ones, E.Commutation, E.Inverse, E.Power, E.Det, E.LogDet, E.Apply, E.Unspecified,
                          E.Norm, E.ElementPower, E.Softmax, E.SoftmaxRows, E.LogSumExp}
LEAVES = {E.Symbol, E.Differential, E.Adjoint, E.Number, E.Zero, E.Identity, E.Ones,
          E.Commutation}


def test_nodes_are_found():
    assert len(NODES) > 25 and E.Unspecified in NODES and E.Apply in NODES


@pytest.mark.parametrize("node", NODES, ids=lambda c: c.__name__)
def test_differential_rule(node):
    assert node in DIFFERENTIALS or node in NOT_DIFFERENTIATED, f"rules.DIFFERENTIALS lacks {node.__name__}"


@pytest.mark.parametrize("printer", [LatexPrinter, TextPrinter, DocumentPrinter, NumpyPrinter],
                         ids=lambda c: c.__name__)
@pytest.mark.parametrize("node", NODES, ids=lambda c: c.__name__)
def test_printers(printer, node):
    assert callable(getattr(printer, f"_print_{node.__name__}", None)), \
        f"{printer.__name__} lacks _print_{node.__name__}"


@pytest.mark.parametrize("node", NODES, ids=lambda c: c.__name__)
def test_evaluation(node):
    tables = (evaluate.UNARY, evaluate.BINARY, evaluate.NARY)
    assert any(node in t for t in tables) or node in LEAVES or node is E.Unvec, \
        f"evaluate has no entry for {node.__name__}"


@pytest.mark.parametrize("node", NODES, ids=lambda c: c.__name__)
def test_frobenius_move(node):
    assert node in MOVES or node in NO_DIFFERENTIAL_INSIDE, f"frobenius.MOVES lacks {node.__name__}"


def test_every_differential_rule_output_can_be_moved():
    """What the rule table builds around a differential, the Frobenius table can undo."""
    inside = set(DIFFERENTIALS) - NO_DIFFERENTIAL_INSIDE - {E.Number, E.Identity, E.Ones, E.Zero}
    assert inside <= set(MOVES)


def test_every_call_row_has_its_shape_rule_and_every_name_reaches_the_parser():
    for row in CALLS.values():
        assert row.shape in SHAPE_RULES, row.name
        assert row.arity in (1, 2)
    assert set(SPELLINGS) | set(ALIASES) == FUNCTIONS
    for name, f in ELEMENTWISE.items():
        assert ALIASES[name] == name and f.rule and f.latex
