"""The declared chain: inputs, ordered definitions, the objective and the wrt variables.

Every later stage reads a Chain; nothing mutates it.
"""
from __future__ import annotations

from typing import Iterable

from .record import record
from .errors import Source
from .expr import Diag, Expr, Symbol, walk


@record
class Input:
    symbol: Symbol
    declared: bool        # False when its kind came from the naming convention
    line: int             # where it was declared or first used
    column: int = 1


@record
class Definition:
    symbol: Symbol        # the defined variable, with the shape of ``expr``
    expr: Expr            # right-hand side, over inputs and earlier definitions
    line: int
    column: int = 1       # column of the defined name
    expr_column: int = 1  # column where the right-hand side starts


@record
class Chain:
    inputs: tuple         # of Input, in order of declaration / first use
    definitions: tuple    # of Definition, in source order; the last is the objective
    wrt: tuple            # of Symbol (inputs), in the order asked for
    title: str | None = None
    source: Source | None = None
    wrt_line: int = 0     # line of the ``wrt`` statement (0: from --wrt)
    warnings: tuple = ()  # of errors.Notice: what the reader was unsure of, said
    # what the LaTeX front end read besides the chain (README: Pasted LaTeX)
    claims: tuple = ()        # (objective name, wrt name, Expr or None, line, column)
    alternatives: tuple = ()  # (defined name, Expr, line, column): J = A = B gives B
    hessians: tuple = ()      # (tuple of wrt names, line, column): ``hessian W, b``
    jacobians: tuple = ()     # (F name, X name, line, column): ``jacobian F wrt X``

    @property
    def objective(self) -> Definition:
        return self.definitions[-1]

    def definition_of(self, symbol: Symbol) -> Definition | None:
        for definition in self.definitions:
            if definition.symbol.name == symbol.name:
                return definition
        return None

    def input_named(self, name: str) -> Input | None:
        for item in self.inputs:
            if item.symbol.name == name:
                return item
        return None

    def varying(self, wrt: Iterable[str | Symbol] | None = None) -> frozenset[str]:
        """The names whose differential is not 0 when only ``wrt`` (default: the chain's
        wrt) vary: those names and every definition depending on one.  A defined name in
        ``wrt`` is held independent (what it is defined from does not vary through it).
        The sweep and the check both ask this, so they cannot disagree."""
        names = {w if isinstance(w, str) else w.name for w in (self.wrt if wrt is None else wrt)}
        for definition in self.definitions:
            if any(isinstance(n, Symbol) and n.name in names for n in walk(definition.expr)):
                names.add(definition.symbol.name)
        return frozenset(names)

    def aliases(self) -> frozenset[str]:
        """Names of the notation definitions: ``S = Diag(s)`` of a defined ``s``, and a
        ``F = Diag(…)`` no later definition uses (it names a coefficient of a line).  An
        alias is not a use of its operands: it shows a line again, in other notation."""
        used = {n.name for d in self.definitions for n in walk(d.expr) if isinstance(n, Symbol)}
        defined: set = set()
        found = set()
        for definition in self.definitions[:-1]:
            e = definition.expr
            if isinstance(e, Diag) and (definition.symbol.name not in used or
                                        (isinstance(e.arg, Symbol) and e.arg.name in defined)):
                found.add(definition.symbol.name)
            defined.add(definition.symbol.name)
        return frozenset(found)

    @property
    def size_symbols(self) -> list:
        """The symbolic sizes (``m``, ``n``) of the chain, sorted by name."""
        found = set()
        for item in self.inputs:
            for size in item.symbol.shape:
                found |= size.free_symbols
        return sorted(found, key=lambda s: s.name)
