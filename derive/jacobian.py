"""Jacobians by differentials: ``vec dF = J vec dX ⟹ ∂vec F/∂vec X = J``.

A request ``jacobian F wrt X`` is answered as the gradient is: the definitions between X
and F are differentiated with only X varying (a defined X is held independent, so the
answer is the local Jacobian), ``dF``'s differential has the differentials of the
intermediate variables substituted one at a time, the last defined first, until only
``dX`` is left, and ``J`` is read off that linear form by vec.py's table.  The layout is
numerator layout on column-major vec: row i of J is entry i of vec F, column j is entry j
of vec X, and a vector needs no vec (``dx₂ = Diag(f′(x₁)) dx₁ ⟹ ∂x₂/∂x₁ = Diag(f′(x₁))``).

``--jacobians`` (``local_blocks``) shows the chain rule behind a gradient: each
definition's local Jacobian read off its displayed line, and their product in the chain's
order, one term per path, which is ``vec(∂E/∂W)ᵀ``: check_jacobian.py verifies both.
"""
from __future__ import annotations

import dataclasses

from .chain import Chain
from .derivation import Derivation, JacobianBlock, SubstitutionLine
from .errors import DeriveError
from .expr import Add, Differential, Expr, Mul, Symbol, differentials_in, replace_nodes, walk
from .limits import bound, tick
from .simplify import simplify
from .display import substitute
from .sweep import definition_lines
from . import vec

MAX_PATHS = 8        # --jacobians writes out the product path by path up to this many


def symbol_named(chain: Chain, name: str) -> Symbol:
    """The Symbol of an input or a defined variable."""
    item = chain.input_named(name)
    if item is not None:
        return item.symbol
    return next(d.symbol for d in chain.definitions if d.symbol.name == name)


def requested(chain: Chain) -> tuple:
    """One JacobianBlock per ``jacobian F wrt X`` of the chain, in the order asked."""
    return tuple(block(chain, f, x, line, column) for f, x, line, column in chain.jacobians)


def block(chain: Chain, f_name: str, x_name: str, line: int = 0, column: int = 1) -> JacobianBlock:
    """``∂F/∂X``: dF with the intermediate differentials substituted, then J read off."""
    f, x = symbol_named(chain, f_name), symbol_named(chain, x_name)
    _, linear = definition_lines(chain, chain.varying([x_name]))
    current = Differential(x) if f_name == x_name else linear[f_name]
    lines = [SubstitutionLine(current)]
    order = [d.symbol.name for d in chain.definitions]
    while True:
        pending = [s for s in differentials_in(current) if s.name != x_name]
        if not pending:
            break
        tick(chain.source, line or None)
        y = max(pending, key=lambda s: order.index(s.name))
        current = simplify(replace_nodes(current, {Differential(y): linear[y.name]}))
        bound(current, f"the differential of {f_name}", chain.source, line or None, column)
        lines.append(SubstitutionLine(current, y, (substitute(chain, y),)))
    try:
        matrix, rules = vec.coefficient(current, x)
    except DeriveError as error:
        raise (error.located(chain.source, line, column) if chain.source else error) from None
    return JacobianBlock(f, x, matrix, tuple(lines), rules, line)


# ---------------------------------------------------------------- --jacobians


def local_blocks(derivation: Derivation) -> tuple:
    """Each varying definition's local Jacobian with respect to each varying operand, read
    off its displayed line, then per wrt input the product along every path to E."""
    chain = derivation.chain
    shown = {line.differential_of.name: line for line in derivation.definitions}
    aliases = chain.aliases()
    edges: dict = {}                   # Y → [(Z, J_YZ)], in the order of Y's line
    blocks = []
    for definition in chain.definitions:
        name = definition.symbol.name
        if name in aliases or name not in shown:
            continue
        line = shown[name]
        for z in differentials_in(line.differential):
            matrix, rules = vec.coefficient(line.differential, z)
            local = JacobianBlock(line.differential_of, z, matrix, (), rules, line.line, "local")
            blocks.append(local)
            edges.setdefault(name, []).append((z.name, matrix))
    objective = chain.objective.symbol
    for gradient in derivation.gradients:
        paths = _paths(edges, objective.name, gradient.wrt.name)
        if not paths or len(paths) > MAX_PATHS:
            continue
        total = simplify(_sum([_product(path) for path in paths]))
        blocks.append(JacobianBlock(objective, gradient.wrt, total, (), (), chain.wrt_line,
                                    "product", tuple(tuple(path) for path in paths),
                                    gradient.expr))
    return tuple(blocks)


def _paths(edges: dict, top: str, bottom: str) -> list:
    """Every path from ``top`` down to ``bottom`` as its Jacobians, top first."""
    if top == bottom:
        return [[]]
    found = []
    for z, matrix in edges.get(top, []):
        for rest in _paths(edges, z, bottom):
            found.append([matrix, *rest])
            if len(found) > MAX_PATHS:
                return found
    return found


def _product(factors: list) -> Expr:
    return factors[0] if len(factors) == 1 else Mul(tuple(factors))


def _sum(terms: list) -> Expr:
    return terms[0] if len(terms) == 1 else Add(tuple(terms))


# ---------------------------------------------------------------- the derivation


def with_jacobians(derivation: Derivation, local: bool = False) -> Derivation:
    """The derivation with its requested Jacobian blocks (and ``--jacobians``' if ``local``)."""
    blocks = requested(derivation.chain)
    if local and derivation.gradients:
        blocks += local_blocks(derivation)
    if not blocks:
        return derivation
    return dataclasses.replace(derivation, jacobians=blocks)


def jacobians_only(chain: Chain) -> Derivation:
    """A chain that asks only for Jacobians (no ``wrt``): its definitions with every input
    varying, and the Jacobian blocks; no gradient."""
    names = [item.symbol.name for item in chain.inputs]
    lines, _ = definition_lines(chain, chain.varying(names))
    return Derivation(chain, tuple(lines), (), (), warnings=chain.warnings,
                      options={"expand": False, "symmetric_gradient": False},
                      jacobians=requested(chain))


def uses(blocks, node_type) -> bool:
    """Whether any Jacobian shown is built with ``node_type`` (for the notation sentence)."""
    return any(isinstance(n, node_type) for b in blocks for n in walk(b.matrix))
