"""The call-shaped operations other than elementwise functions, one row each.

A row names the operation, the spellings the input language accepts, how many
arguments it takes, its shape rule (a key of ``parse.SHAPE_RULES``: the rule and its
error wording live with the shape inference) and the node it builds.  The parser's
function names are these rows' spellings plus ``functions.ALIASES``; the printers,
the evaluator and the rule table dispatch on the node the row builds.
"""
from __future__ import annotations

from typing import Callable

from .record import record
from .expr import (
    Det,
    Diag,
    DiagPart,
    Expr,
    Frobenius,
    Inverse,
    Kron,
    LogDet,
    LogSumExp,
    Mul,
    Norm,
    Ones,
    Power,
    Softmax,
    SoftmaxRows,
    Trace,
    Transpose,
    Vec,
)
from .functions import ALIASES


@record
class Call:
    name: str
    spellings: tuple           # every name the input language accepts for it
    shape: str                 # its shape rule: "square → scalar", "vector → same", …
    make: Callable             # finished operand(s) -> node
    arity: int = 1
    hint: str = ""             # added to a shape error ("softmax_rows(M) for …")
    summary: str = ""          # one line for the README and --help


def inverse(x: Expr) -> Expr:
    """``X⁻¹``; a scalar's inverse is the power ``α⁻¹``."""
    return Power(x, -1) if x.is_scalar else Inverse(x)


def sum_of_entries(x: Expr) -> Expr:
    """``sum(x) = 1ᵀx``, ``sum(X) = 1:X``: written with the ones vector, so its differential
    and its Frobenius moves are those of a product, and the output reads as a person
    writes a sum of entries."""
    if x.is_scalar:
        return x
    rows, cols = x.shape
    if cols == 1:
        return Mul((Transpose(Ones(rows)), x))
    return Frobenius(Ones(rows, cols), x)


CALLS = {c.name: c for c in (
    Call("tr", ("tr", "trace", "Tr", "Trace"), "square → scalar", Trace,
         summary="the trace of a square matrix"),
    Call("det", ("det",), "square → scalar", Det, summary="the determinant"),
    Call("logdet", ("logdet",), "square → scalar", LogDet,
         summary="log det X (also written log(det(X)))"),
    Call("Diag", ("Diag",), "vector → square", Diag,
         summary="the diagonal matrix with a vector on its diagonal"),
    Call("diag", ("diag",), "square → vector", DiagPart,
         summary="the diagonal of a square matrix, as a vector"),
    Call("inv", ("inv",), "inverse", inverse, summary="the inverse, X⁻¹"),
    Call("norm", ("norm",), "any → scalar", Norm,
         summary="the 2-norm of a vector, the Frobenius norm of a matrix"),
    Call("vec", ("vec",), "vec", Vec, summary="the columns stacked into one vector"),
    Call("kron", ("kron",), "kron", Kron, arity=2, summary="the Kronecker product A ⊗ B"),
    Call("softmax", ("softmax",), "vector → same", Softmax,
         hint=" (softmax_rows(M) for the rows of a matrix)", summary="exp(z)/1ᵀexp(z)"),
    Call("softmax_rows", ("softmax_rows",), "same", SoftmaxRows,
         summary="the softmax of each row of a matrix"),
    Call("logsumexp", ("logsumexp",), "vector → scalar", LogSumExp,
         hint=" (softmax_rows(M) for the rows of a matrix)", summary="log 1ᵀexp(z)"),
    Call("sum", ("sum",), "any → scalar", sum_of_entries,
         summary="the sum of all entries: 1ᵀx, or 1:X for a matrix"),
)}

SPELLINGS = {spelling: row.name for row in CALLS.values() for spelling in row.spellings}

FUNCTION_NAMES = frozenset(SPELLINGS) | frozenset(ALIASES)
"""Every name the input language reads as a function."""
