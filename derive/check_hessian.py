"""A Hessian → verdicts: each displayed line against differences of the gradient.

Every line of ``d(∇_W E)`` is compared with ``(∇E(W + hU) − ∇E(W − hU))/2h`` along random
directions U of all the Hessian's names together, ``d²E`` with the same difference of
``U : ∇E``, each block ``∂²E/∂W∂Y`` (its matrix on vec when it has one) with the
difference of ``∇_W E`` along ``U_Y`` alone, and the symmetry ``uᵀHv = vᵀHu`` at random
u, v.  The gradient lines are not checked again here: the gradient block checked them.
"""
from __future__ import annotations

import numpy as np

from .check import (IDENTITY_TOLERANCE, MAX_TRIES, STRATEGIES, Comparison, _domain_failure,
                    assign_sizes, compare_with_difference, draw_point, judge, line_verdict,
                    magnitude, propagate, rounding, worst)
from .draws import Draws
from .derivation import Derivation, Hessian
from .evaluate import DomainError, dense, evaluate, forward
from .limits import tick

BLOCK = "hessian"


def hessian_verdicts(derivation: Derivation, seed: int = 0, directions: int = 3) -> list:
    """The verdicts on every Hessian line (``block="hessian"``, ``index`` its place in
    ``Hessian.lines``; the symmetry check comes after the lines)."""
    if not derivation.hessians:
        return []
    chain = derivation.chain
    rng = Draws(seed)
    sizes = assign_sizes(chain)
    last: DomainError | None = None
    for attempt in range(MAX_TRIES):
        point = draw_point(chain, sizes, rng, STRATEGIES[attempt % len(STRATEGIES)])
        try:
            with np.errstate(all="ignore"):
                return [v for h in derivation.hessians
                        for v in _verdicts(derivation, h, point, sizes, rng, directions)]
        except DomainError as error:
            last = error
    raise _domain_failure(chain, last) if last is not None else AssertionError("no point tried")


def _verdicts(derivation, h: Hessian, point, sizes, rng, directions) -> list:
    values = forward(derivation.chain, point, sizes, keep_diagonal=True)
    probe = _Probe(derivation, h, point, values, sizes)
    moves = [probe.direction(rng) for _ in range(directions)]
    verdicts = []
    for index, line in enumerate(h.lines):
        tick(derivation.chain.source, h.line)
        if line.kind == "gradient":
            continue
        comparison = worst(probe.error(line, move) for move in moves)
        verdicts.append(line_verdict(BLOCK, index, h.line, comparison, _what(line)))
    comparison = worst(probe.asymmetry(probe.direction(rng), probe.direction(rng))
                       for _ in range(directions))
    verdicts.append(line_verdict(BLOCK, len(h.lines), h.line, comparison,
                                 "uᵀHv = vᵀHu at random u, v"))
    return verdicts


def _what(line) -> str:
    if line.kind == "block":
        return (f"∂²E/∂{line.of.name}∂{line.by.name} differs from a central difference of "
                f"∂E/∂{line.of.name} along d{line.by.name}")
    return f"differs from a central difference of the gradient ∂E/∂{line.of.name}"


class _Probe:
    """The values one check needs at its point: the gradients moved along a direction, the
    displayed lines evaluated along one."""

    def __init__(self, derivation: Derivation, h: Hessian, point, values, sizes):
        self.derivation, self.h, self.point, self.values, self.sizes = \
            derivation, h, point, values, sizes
        self.gradients = {line.of.name: line.expr for line in h.lines if line.kind == "gradient"}
        self.final = {}
        for line in h.lines:
            if line.kind == "differential":
                self.final[line.of.name] = line.expr     # the last one: only the dW are left

    def direction(self, rng) -> dict:
        """A random direction of every Hessian name (symmetric for a symmetric input)."""
        found = {}
        for w in self.h.wrt:
            d = rng.normal(size=dense(self.values[w.name]).shape)
            if w.props & {"symmetric", "spd"} and d.shape[0] == d.shape[1]:
                d = (d + d.T) / 2
            found[w.name] = d
        return found

    def gradient(self, name: str, moved: dict) -> np.ndarray:
        values = forward(self.derivation.chain, moved, self.sizes, keep_diagonal=True)
        return dense(evaluate(self.gradients[name], values, None, self.sizes))

    def along(self, expr, move: dict):
        """``expr`` with every dX the derivation knows taken along ``move``."""
        wrt = {w.name: np.zeros(dense(self.values[w.name]).shape)
               for w in self.derivation.chain.wrt}
        diffs = propagate(self.derivation, self.values, {**wrt, **move}, self.sizes)
        return dense(evaluate(expr, self.values, diffs, self.sizes)), diffs

    def error(self, line, move: dict) -> Comparison:
        if line.kind == "block":
            move = {line.by.name: move[line.by.name]}
        if line.kind == "second":
            def function(moved):
                return np.array([[sum(np.sum(move[n] * self.gradient(n, moved))
                                      for n in move)]])     # complex on a complex step
        else:
            def function(moved):
                return self.gradient(line.of.name, moved)
        value, diffs = self.along(line.expr, move)
        if line.kind == "block" and line.matrix is not None:
            value = self._times(line.matrix, move[line.by.name], value.shape)
        floor = rounding(magnitude(line.expr, self.values, diffs, self.sizes))
        return compare_with_difference(function, value, self.point, move, floor)

    def _times(self, matrix, u: np.ndarray, shape) -> np.ndarray:
        """``unvec(H vec(u))``: the block's matrix applied to a direction, column-major."""
        h = dense(evaluate(matrix, self.values, None, self.sizes))
        return np.reshape(h @ np.reshape(u, (-1, 1), order="F"), shape, order="F")

    def asymmetry(self, u: dict, v: dict) -> Comparison:
        """``uᵀHv`` against ``vᵀHu``, both from the displayed second differential; the floor
        is the rounding scale of their terms (they may cancel to 0)."""
        def bilinear(left, right):
            pairs = [(left[name], self.along(dg, right)[0]) for name, dg in self.final.items()]
            return (sum(float(np.sum(a * b)) for a, b in pairs),
                    sum(float(np.linalg.norm(a) * np.linalg.norm(b)) for a, b in pairs))
        (a, scale_a), (b, scale_b) = bilinear(u, v), bilinear(v, u)
        return judge(np.array([[a]]), np.array([[b]]), rounding(max(scale_a, scale_b)),
                     IDENTITY_TOLERANCE)
