"""What the numeric check will cost, estimated from shapes before anything is evaluated.

The time limit is cooperative (``limits.tick`` between lines), so one line that takes a
minute inside NumPy — ``tr(X^100)`` of a 300×300 matrix, whose differential holds a
hundred matrix powers — would overshoot ``--max-seconds`` by that minute, and an outer
product ``x x'`` of a 20000-vector builds 3.2 GB arrays that no Ctrl-C interrupts.  So
the check first adds up, node by node, the arithmetic and the array sizes of every
expression it evaluates, and refuses (exit 2) what would pass ``max_entries`` or the
time left, naming the line and the node.
"""
from __future__ import annotations

import math

from . import expr as E
from .errors import DeriveError
from .evaluate import concrete_shape
from .limits import current, raise_it, seconds_left, tick

PRODUCTS_PER_SECOND = 3e9   # multiply-adds of matrix products, powers, inverses (BLAS)
ENTRIES_PER_SECOND = 1e8    # entries of elementwise work, with NumPy's overhead per call
                            # (both cautious, measured on a loaded 2-core machine: the
                            # estimate errs long, 1-5 times the real time)
EVALUATIONS = 24          # times the check evaluates an expression: ±h steps, fourth-order
                          # differences, 3 directions and their localisation
LINEAR_EVALUATIONS = 6    # a linear form's: once per direction, at up to two points
LOW_RANK = 4              # the rank of a matrix direction, with room (it is 1, or 2 summed)
DIAGONAL = (E.Diag, E.Identity)   # kept as vectors by the evaluator: no n×n array


def refuse_costly(derivation, sizes) -> None:
    """Stop before the check when one of its arrays or its arithmetic is out of bounds."""
    limits = current()
    shapes: dict = {}
    if _inputs_too_large(derivation.chain, sizes, shapes, limits.max_entries):
        return                    # the check's own message names the input
    seconds = 0.0
    diagonal = _Diagonal(derivation)
    for expr, line, times in _evaluated(derivation):
        for node in _nodes(expr):
            rows, cols = _shape(node, sizes, shapes)
            if diagonal(node):
                seconds += rows * times / ENTRIES_PER_SECOND
                continue
            if limits.max_entries and _dense(node, diagonal) and rows * cols > limits.max_entries:
                _refuse(derivation, line, f"the numeric check would build a {rows}×{cols} "
                        f"array ({type(node).__name__}), more than {limits.max_entries} "
                        "numbers: use --no-check, smaller sizes, or lift the limit "
                        + raise_it("max_entries"))
            seconds += _seconds(node, rows, cols, sizes, shapes, diagonal) * times
    tick()                        # past the limit already: say that, not "−0.3 s left"
    left = seconds_left()
    if seconds > left:
        about = f"{seconds:.0f}" if seconds >= 10 else f"{seconds:.1f}"
        _refuse(derivation, None, f"the numeric check would take about {about} s, more "
                f"than the {left:.1f} s left of the time limit {raise_it('max_seconds')}; "
                "--no-check skips it")


def _inputs_too_large(chain, sizes, shapes, limit: int) -> bool:
    entries = 0
    for item in chain.inputs:
        rows, cols = _shape(item.symbol, sizes, shapes)
        entries += rows * cols
    return bool(limit) and entries > limit


def _evaluated(derivation):
    """``(expression, source line, evaluations)`` of everything the check evaluates: a
    definition at every step of its differences and of the gradient's, a linear form
    once per direction and point; Hessians, Jacobians and claims, differenced and
    compared at several points, as often as a definition."""
    for d in derivation.definitions:
        yield d.expr, d.line, EVALUATIONS
        yield d.differential, d.line, LINEAR_EVALUATIONS
    for s in derivation.substitutions:
        yield s.expr, None, LINEAR_EVALUATIONS
    for step in derivation.steps:
        for expr in (step.adjoint, step.substituted, step.moved):
            yield expr, None, LINEAR_EVALUATIONS
    for g in derivation.gradients:
        yield g.expr, None, LINEAR_EVALUATIONS
    for h in derivation.hessians:        # a block's Kronecker matrix is built whole
        for line in h.lines:
            yield line.expr, h.line, EVALUATIONS
            if line.matrix is not None:
                yield line.matrix, h.line, EVALUATIONS
    for block in derivation.jacobians:   # J is built whole, every dF line evaluated
        yield block.matrix, block.line or None, EVALUATIONS
        for line in block.lines:
            yield line.expr, block.line or None, EVALUATIONS
    for claim in derivation.chain.claims:
        if claim[2] is not None:
            yield claim[2], claim[3], EVALUATIONS


def _nodes(expr):
    """Every node of the tree, a subtree shared by identity once (the evaluator keeps each
    node's value by identity while it evaluates one expression)."""
    stack, seen = [expr], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        stack.extend(node.children)


def _shape(node, sizes, shapes) -> tuple:
    key = tuple(node.shape)
    if key not in shapes:
        try:
            shapes[key] = concrete_shape(node.shape, sizes)
        except (ValueError, TypeError):
            shapes[key] = (1, 1)
    return shapes[key]


class _Diagonal:
    """Whether a node's value is a diagonal, which the evaluator keeps as a vector:
    ``Diag(s)``, ``I``, a name defined as one, and sums, products, powers and inverses
    of those (remembered by node identity during one estimate)."""

    def __init__(self, derivation) -> None:
        self.known: dict = {}
        self.names = set()
        for d in derivation.definitions:
            if self(d.expr):
                self.names.add(d.symbol.name)

    def __call__(self, node) -> bool:
        key = id(node)
        if key not in self.known:
            self.known[key] = self._decide(node)
        return self.known[key]

    def _decide(self, node) -> bool:
        if isinstance(node, DIAGONAL):
            return True
        if isinstance(node, (E.Symbol, E.Differential)):
            symbol = node if isinstance(node, E.Symbol) else node.of
            return getattr(symbol, "name", None) in self.names
        if isinstance(node, (E.Mul, E.Add, E.Hadamard, E.Transpose, E.Inverse, E.Power)):
            children = [c for c in node.children if tuple(c.shape) != (1, 1)]
            return bool(children) and all(self(c) for c in children)
        return False


def _dense(node, diagonal) -> bool:
    """Whether evaluating the node makes a full array larger than its operands': a product
    (``x x'``) or a Kronecker product.  Elementwise nodes are as large as an operand,
    which is checked itself."""
    return isinstance(node, (E.Mul, E.Kron)) and not diagonal(node)


def _seconds(node, rows, cols, sizes, shapes, diagonal) -> float:
    """Time to evaluate ``node`` (not a diagonal) once from its children's values."""
    if isinstance(node, E.Mul):
        full = [_shape(f, sizes, shapes) for f in node.factors if not diagonal(f)]
        if any(E.contains_differential(f) for f in node.factors):
            # a differential's value is a rank-one direction u vᵀ (kept factored by the
            # evaluator), so A dX B costs the matrix–vector products A u and vᵀ B
            flops = sum(r * c for r, c in full) * LOW_RANK
        else:
            flops = _product_flops(full)
        return flops / PRODUCTS_PER_SECOND + rows * cols / ENTRIES_PER_SECOND
    if isinstance(node, E.Power) and not node.arg.is_scalar:
        squarings = 2 * max(1, math.ceil(math.log2(max(node.exponent, 2))))
        return rows ** 3 * squarings / PRODUCTS_PER_SECOND
    if isinstance(node, (E.Inverse, E.Det, E.LogDet)) and not diagonal(node.arg):
        return _shape(node.arg, sizes, shapes)[0] ** 3 / PRODUCTS_PER_SECOND
    return rows * cols / ENTRIES_PER_SECOND


def _product_flops(shapes) -> float:
    """The cheaper of left-to-right and right-to-left (1×1 factors scale)."""
    matrices = [s for s in shapes if s != (1, 1)]
    if len(matrices) < 2:
        return matrices[0][0] * matrices[0][1] if matrices else 1

    def sweep(order):
        (rows, cols), cost = order[0], 0
        for _, c in order[1:]:
            cost += rows * cols * c
            cols = c
        return cost

    backward = [(c, r) for r, c in reversed(matrices)]
    return min(sweep(matrices), sweep(backward))


def _refuse(derivation, line, message: str) -> None:
    source = derivation.chain.source
    raise DeriveError(message, source if line else None, line, 1 if line else None)
