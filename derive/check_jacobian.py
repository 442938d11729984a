"""Every displayed Jacobian line checked against central differences along random directions.

A line of a requested block, ``dF = …`` (in dX and the intermediate differentials), and its
result ``vec dF = J vec dX``, are each compared with ``(F(X + hU) − F(X − hU))/2h`` for random
U, F evaluated with X held independent (a defined X takes the value given, not its
definition's); an intermediate dY in a line takes its own central difference along U, so
no line is judged by another line.  A ``--jacobians`` local Jacobian is compared with a
difference of its definition alone (the other operands fixed); their product with a
difference of the objective along W, and with ``vec(∂E/∂W)ᵀ`` read by differentials.

The comparison is check.py's, called from ``_compare`` only; the verdicts are LineVerdicts
with ``block="jacobian"`` and ``index`` from ``derivation.jacobian_rows``.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from . import check as numeric
from .draws import Draws
from .derivation import Derivation, JacobianBlock, LineVerdict, jacobian_rows
from .evaluate import DomainError, dense, evaluate, forward
from .expr import differentials_in
from .limits import tick

STEP = 1e-6         # of the intermediates' own central differences, relative to X's scale


def _compare(function: Callable, linear, values: dict, direction: dict) -> numeric.Comparison:
    """check.py's comparison of a linear form with a central difference (its one caller)."""
    return numeric.compare_with_difference(function, linear, values, direction)


def with_jacobian_verdicts(derivation: Derivation, seed: int = 0, directions: int = 3) -> Derivation:
    """The derivation with its Jacobian lines' verdicts added to its check (if checked)."""
    if not derivation.jacobians or derivation.check is None:
        return derivation
    verdicts = jacobian_verdicts(derivation, seed, directions)
    check = dataclasses.replace(derivation.check, verdicts=derivation.check.verdicts + verdicts)
    return dataclasses.replace(derivation, check=check)


def jacobian_verdicts(derivation: Derivation, seed: int = 0, directions: int = 3) -> tuple:
    """One LineVerdict per displayed Jacobian line; a point outside a function's domain is
    redrawn, as the main check does."""
    chain = derivation.chain
    rng = Draws(seed + 1)
    sizes = numeric.assign_sizes(chain)
    last: DomainError | None = None
    for attempt in range(numeric.MAX_TRIES):
        point = numeric.draw_point(chain, sizes, rng, numeric.STRATEGIES[attempt % 3])
        try:
            with np.errstate(all="ignore"):
                values = forward(chain, point, sizes)
                return tuple(_verdict(derivation, index, block, k, values, sizes, rng, directions)
                             for index, block, k in jacobian_rows(derivation))
        except DomainError as error:
            last = error
    raise numeric._domain_failure(chain, last) if last else AssertionError("no attempt")


def _verdict(derivation, index, block: JacobianBlock, k, values, sizes, rng, directions):
    tick(derivation.chain.source, block.line or None)
    check = {"request": _request_error, "local": _local_error, "product": _product_error}
    found = [check[block.kind](derivation, block, k, values, sizes,
                               {block.wrt.name: rng.normal(size=values[block.wrt.name].shape)})
             for _ in range(directions)]
    worst = max(c.error for c in found)
    ok = all(c.ok for c in found)
    note = "" if ok else (f"∂{block.of.name}/∂{block.wrt.name} differs from a central difference "
                          f"of {block.of.name}")
    return LineVerdict("jacobian", index, block.line, worst, ok, note,
                       checked=all(c.checked for c in found))


def held(chain, x_name: str, sizes) -> Callable:
    """``values ↦ values`` with every definition depending on X recomputed from X's value
    (X itself, even when defined, keeps the value given: it is held independent)."""
    varying = chain.varying([x_name])
    later = [d for d in chain.definitions if d.symbol.name in varying and d.symbol.name != x_name]

    def recompute(values: dict) -> dict:
        moved = dict(values)
        for definition in later:
            moved[definition.symbol.name] = dense(evaluate(definition.expr, moved, None, sizes))
        return moved

    return recompute


def _applied(block: JacobianBlock, values, sizes, direction) -> np.ndarray:
    """``J vec U`` refolded to F's shape."""
    j = evaluate(block.matrix, values, None, sizes)
    u = np.reshape(direction[block.wrt.name], (-1, 1), order="F")
    return np.reshape(j @ u, values[block.of.name].shape, order="F")


def _request_error(derivation, block, k, values, sizes, direction) -> numeric.Comparison:
    recompute = held(derivation.chain, block.wrt.name, sizes)

    def of(name):
        return lambda moved: recompute(moved)[name]

    if k == len(block.lines):
        linear = _applied(block, values, sizes, direction)
    else:
        expr = block.lines[k].expr
        diffs = dict(direction)
        for y in differentials_in(expr):
            if y.name not in diffs:
                diffs[y.name] = _central(of(y.name), values, direction)
        linear = evaluate(expr, values, diffs, sizes)
    return _compare(of(block.of.name), linear, values, direction)


def _local_error(derivation, block, k, values, sizes, direction) -> numeric.Comparison:
    expr = derivation.chain.definition_of(block.of).expr

    def function(moved):
        return evaluate(expr, moved, None, sizes)

    return _compare(function, _applied(block, values, sizes, direction), values, direction)


def _product_error(derivation, block, k, values, sizes, direction) -> numeric.Comparison:
    """Against a difference of the objective, and against ``vec(∂E/∂W)ᵀ``."""
    chain = derivation.chain
    inputs = {item.symbol.name: values[item.symbol.name] for item in chain.inputs}

    def objective(moved):
        return dense(forward(chain, moved, sizes)[block.of.name])

    along = _compare(objective, _applied(block, values, sizes, direction), inputs, direction)
    j = dense(evaluate(block.matrix, values, None, sizes))
    g = np.reshape(dense(evaluate(block.gradient, values, None, sizes)), (1, -1), order="F")
    equal = numeric.relative_error(j, g)
    if equal > numeric.TOLERANCE:                    # the product is not vec(∂E/∂W)ᵀ
        return numeric.Comparison(equal, numeric.TOLERANCE, True)
    return along


def _central(function: Callable, values: dict, direction: dict) -> np.ndarray:
    """``(f(X + hU) − f(X − hU))/2h``: an intermediate's differential along U, numerically."""
    scale = max(1.0, max(float(np.max(np.abs(values[n]))) for n in direction))
    h = STEP * scale

    def at(t):
        moved = dict(values)
        for name, d in direction.items():
            moved[name] = values[name] + t * d
        return dense(function(moved))

    return (at(h) - at(-h)) / (2 * h)
