"""Claimed gradients (``∂E/∂W = G`` in pasted LaTeX), compared with derive's own.

The comparison reuses the numeric check's point drawing and relative error.
"""
from __future__ import annotations

import numpy as np

from .check import (MAX_TRIES, STRATEGIES, TOLERANCE, _shape_text, adjoint_values,
                    assign_sizes, draw_point, relative_error)
from .errors import Notice, note
from .evaluate import DomainError, evaluate, forward


def check_claims(derivation, seed: int = 0) -> list:
    """A sentence for every claimed gradient (``∂E/∂W = G`` in pasted LaTeX), compared with
    derive's own at one random point."""
    chain = derivation.chain
    claims = [c for c in chain.claims if c[2] is not None]
    if not claims:
        return []
    rng = np.random.default_rng(seed)
    sizes = assign_sizes(chain)
    gradients = {g.wrt.name: g for g in derivation.gradients}
    for attempt in range(MAX_TRIES):
        point = draw_point(chain, sizes, rng, STRATEGIES[attempt % len(STRATEGIES)])
        try:
            with np.errstate(all="ignore"):
                values = forward(chain, point, sizes)
                values.update(adjoint_values(derivation, values, sizes))
                return [_compare_claim(claim, gradients[claim[1]], values, sizes, seed)
                        for claim in claims]
        except DomainError:
            continue
    return [Notice(f"line {claims[0][3]}: the claims could not be checked: every random point "
                   "left a function's domain", claims[0][3], claims[0][4])]


def _compare_claim(claim, gradient, values, sizes, seed) -> Notice:
    name, wrt, expr, line, column = claim
    what = f"line {line}: the claim ∂{name}/∂{wrt} = …"
    if expr.shape != gradient.wrt.shape:
        return Notice(f"{what} does not agree with derive's gradient: it is "
                      f"{_shape_text(expr.shape)}, but {wrt} is {_shape_text(gradient.wrt.shape)}",
                      line, column)
    error = relative_error(evaluate(gradient.expr, values, None, sizes),
                           evaluate(expr, values, None, sizes))
    if error <= TOLERANCE:
        return note(f"{what} agrees with derive's gradient (checked at a random point)", line,
                    column)
    return Notice(f"{what} does not agree with derive's gradient: relative difference "
                  f"{error:.2g} at a random point (seed {seed})", line, column)
