"""Identity lines checked in exact arithmetic, at a random point modulo a large prime.

A substitution line (and each side of a backprop step) equals dE whatever the values
of the variables.  When every operation on the line is rational (sums, products,
transposes, inverses, det, traces, Hadamard products and quotients, Kronecker products,
diagonals, vec), that identity is checked at a random point of the integers modulo
``P = 2⁶¹ − 1``: a wrong identity of degree d survives with probability at most d/P
(Schwartz–Zippel), and no rounding blurs it.  A variable defined by a non-rational
function (``s = σ(v)``) is a free symbol there, drawn with the structure the derivation
knows of it (symmetric, diagonal); a line that itself applies such a function is
refused.  The identities do not depend on the sizes, so sizes above ``SMALL`` are
replaced by small ones unless a node ties sizes together (Kronecker products, vec).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import sympy

from . import expr as E
from .draws import Draws
from .evaluate import concrete_shape

P = 2 ** 61 - 1
SMALL = 12            # literal sizes above this are checked at a small size instead
LIMIT = 64            # sizes the exact check accepts when they cannot be made small
TIES = (E.Kron, E.Vec, E.Unvec, E.Commutation, E.KronBlockSum, E.KronBlockFrobenius)


class NotRational(Exception):
    """A node the exact check cannot evaluate (a function, a root, a norm) or a value it
    does not have (the differential of a line that applies one)."""


UNKNOWN = object()


# ---------------------------------------------------------------- arithmetic modulo P


def _array(rows):
    return np.array(rows, dtype=object).reshape(len(rows), -1)


def _zeros(shape):
    out = np.empty(shape, dtype=object)
    out.fill(0)
    return out


def _identity(n):
    out = _zeros((n, n))
    for i in range(n):
        out[i, i] = 1
    return out


def _inverse_of(x: int) -> int:
    if x % P == 0:
        raise NotRational("a zero divisor modulo P")
    return pow(int(x), P - 2, P)


def _number(value) -> int:
    """A rational number modulo P; a float by its exact binary value (as NumPy reads it)."""
    if isinstance(value, int):
        return value % P
    if isinstance(value, (float, sympy.Float)):
        value = sympy.Rational(value)
    if not getattr(value, "is_Rational", False):
        raise NotRational(f"the number {value}")
    return int(value.p) % P * _inverse_of(int(value.q)) % P


def _matmul(a, b):
    if a.shape[1] != b.shape[0]:
        raise NotRational("a product of mismatched sizes")
    return (a.dot(b)) % P


def _product(node, args):
    """Left to right as evaluate.py reads a product: 1×1 factors, and 1×1 running
    products such as ``xᵀy`` in ``xᵀy A``, are scalars."""
    scalar, out = 1, None
    for a in args:
        if a.shape == (1, 1):
            scalar = scalar * a[0, 0] % P
            continue
        out = a if out is None else _matmul(out, a)
        if out.shape == (1, 1):
            scalar, out = scalar * out[0, 0] % P, None
    if out is None:
        return _array([[scalar]])
    return out * scalar % P


def _gauss(x):
    """(det, inverse) of a square matrix modulo P by Gauss–Jordan elimination."""
    n = x.shape[0]
    a = [[int(v) % P for v in row] + [1 if i == j else 0 for j in range(n)]
         for i, row in enumerate(x.tolist())]
    det = 1
    for col in range(n):
        pivot = next((r for r in range(col, n) if a[r][col]), None)
        if pivot is None:
            return 0, None
        if pivot != col:
            a[col], a[pivot] = a[pivot], a[col]
            det = -det
        det = det * a[col][col] % P
        scale = _inverse_of(a[col][col])
        a[col] = [v * scale % P for v in a[col]]
        for r in range(n):
            if r != col and a[r][col]:
                f = a[r][col]
                a[r] = [(v - f * w) % P for v, w in zip(a[r], a[col])]
    return det % P, _array([row[n:] for row in a])


def _inverse(node, x):
    inverse = _gauss(x)[1]
    if inverse is None:
        raise NotRational("a matrix singular modulo P")
    return inverse


def _whole(k) -> int:
    if not E.is_integer(k):
        raise NotRational(f"the power {k}")
    return int(k)


def _power(node, x):
    k = _whole(node.exponent)
    base = _inverse(node, x) if k < 0 else x
    out = _identity(x.shape[0]) if x.shape != (1, 1) else _array([[1]])
    for _ in range(abs(k)):
        out = _matmul(out, base)
    return out


def _element_power(node, x):
    k = _whole(node.exponent)
    if k < 0:
        return np.vectorize(lambda v: pow(_inverse_of(v), -k, P), otypes=[object])(x)
    return np.vectorize(lambda v: pow(int(v), k, P), otypes=[object])(x)


def _divide(node, a, b):
    return a * np.vectorize(_inverse_of, otypes=[object])(b) % P


def _diag(node, x):
    out = _zeros((x.shape[0], x.shape[0]))
    for i in range(x.shape[0]):
        out[i, i] = x[i, 0]
    return out


def _diag_part(node, x):
    return _array([[x[i, i]] for i in range(x.shape[0])])


def _unvec(node, x, sizes):
    rows, cols = sizes.shape((node.rows, node.cols))
    return x.reshape((rows, cols), order="F")


def _blocks(g, outer, inner):
    (p, q), (r, s) = outer, inner
    return g.reshape(p, r, q, s)


def _kron_block_sum(node, g, a):
    inner = (g.shape[0] // a.shape[0], g.shape[1] // a.shape[1])
    return np.einsum("ij,ikjl->kl", a, _blocks(g, a.shape, inner)) % P


def _kron_block_frobenius(node, g, b):
    outer = (g.shape[0] // b.shape[0], g.shape[1] // b.shape[1])
    return np.einsum("ikjl,kl->ij", _blocks(g, outer, b.shape), b) % P


def _refuse(node, *args):
    raise NotRational(type(node).__name__)


#: One row per node kind: (node, operand values) → value modulo P.  The refused kinds
#: are the non-rational ones; a node kind missing here is refused too.
ROWS: dict[type, Callable] = {
    E.Add:                lambda node, args: sum(args[1:], args[0]) % P,
    E.Mul:                _product,
    E.Transpose:          lambda node, x: x.T,
    E.Inverse:            _inverse,
    E.Power:              _power,
    E.Hadamard:           lambda node, a, b: a * b % P,
    E.HadamardDivide:     _divide,
    E.Frobenius:          lambda node, a, b: _array([[int(np.sum(a * b)) % P]]),
    E.Trace:              lambda node, x: _array([[int(np.trace(x)) % P]]),
    E.Det:                lambda node, x: _array([[_gauss(x)[0]]]),
    E.Diag:               _diag,
    E.DiagPart:           _diag_part,
    E.ElementPower:       _element_power,
    E.Vec:                lambda node, x: x.reshape((-1, 1), order="F"),
    E.Kron:               lambda node, a, b: np.kron(a, b) % P,
    E.KronBlockSum:       _kron_block_sum,
    E.KronBlockFrobenius: _kron_block_frobenius,
    E.Apply:              _refuse,
    E.Unspecified:        _refuse,
    E.LogDet:             _refuse,
    E.Norm:               _refuse,
    E.Softmax:            _refuse,
    E.SoftmaxRows:        _refuse,
    E.LogSumExp:          _refuse,
}
NARY = (E.Add, E.Mul)


def rational(expr: E.Expr) -> bool:
    """Whether every node of ``expr`` is a rational operation (or a leaf)."""
    return all(_rational_node(n) for n in E.walk(expr))


def _rational_node(node) -> bool:
    if isinstance(node, (E.Power, E.ElementPower)) and not E.is_integer(node.exponent):
        return False
    return not node.children or isinstance(node, E.Unvec) \
        or ROWS.get(type(node), _refuse) is not _refuse


# ---------------------------------------------------------------- the point


class Sizes:
    """Concrete sizes for the exact check: the check's own, with literal sizes above
    ``SMALL`` replaced injectively by small unused ones (when nothing ties sizes)."""

    def __init__(self, sizes: dict, literal: set, shrink: bool):
        self.sizes = sizes
        used = set(sizes.values()) | {s for s in literal if s <= SMALL}
        self.map: dict = {}
        candidate = 2
        for size in sorted(s for s in literal if s > SMALL):
            if not shrink:
                self.map[size] = size
                continue
            while candidate in used:
                candidate += 1
            self.map[size] = candidate
            used.add(candidate)

    def shape(self, shape) -> tuple:
        return tuple(self.map.get(s, s) for s in concrete_shape(shape, self.sizes))


def _random(shape, rng, props=frozenset()):
    rows, cols = shape
    out = _array([[int(v) for v in row] for row in rng.integers(0, P, size=(rows, cols))])
    if rows == cols and props & {"diagonal"}:
        return _diag(None, _diag_part(None, out))
    if rows == cols and props & {"symmetric", "spd"}:
        return (out + out.T) % P
    return out


# ---------------------------------------------------------------- evaluation


def value(expr: E.Expr, env: dict, diffs: dict, sizes: Sizes):
    """``expr`` modulo P; raises NotRational for a refused node or an unknown value."""
    memo: dict[int, object] = {}
    stack = [(expr, False)]
    while stack:
        node, expanded = stack.pop()
        if id(node) in memo:
            continue
        if not node.children:
            memo[id(node)] = _leaf(node, env, diffs, sizes)
        elif expanded:
            args = [memo[id(c)] for c in node.children]
            row = ROWS.get(type(node), _refuse)
            if isinstance(node, E.Unvec):
                memo[id(node)] = _unvec(node, args[0], sizes)
            elif isinstance(node, NARY):
                memo[id(node)] = row(node, args)
            else:
                memo[id(node)] = row(node, *args)
        else:
            stack.append((node, True))
            stack.extend((c, False) for c in node.children if id(c) not in memo)
    return memo[id(expr)]


def _leaf(node, env, diffs, sizes):
    if isinstance(node, E.Symbol):
        found = env.get(node.name, UNKNOWN)
    elif isinstance(node, E.Adjoint):
        found = env.get(node.key, UNKNOWN)
    elif isinstance(node, E.Differential):
        found = diffs.get(node.of.name)
        if found is None:
            found = _zeros(sizes.shape(node.shape))
    elif isinstance(node, E.Number):
        found = _array([[_number(node.value)]])
    elif isinstance(node, E.Zero):
        found = _zeros(sizes.shape(node.shape))
    elif isinstance(node, E.Identity):
        found = _identity(sizes.shape(node.shape)[0])
    elif isinstance(node, E.Ones):
        found = _zeros(sizes.shape(node.shape)) + 1
    elif isinstance(node, E.Commutation):
        m, n = sizes.shape((node.rows, node.cols))
        found = _zeros((m * n, m * n))
        for i in range(m):
            for j in range(n):
                found[j + i * n, i + j * m] = 1
    else:
        raise NotRational(type(node).__name__)
    if found is UNKNOWN:
        raise NotRational(f"no exact value for {node}")
    return found


def _try(expr, env, diffs, sizes):
    try:
        return value(expr, env, diffs, sizes)
    except (NotRational, ValueError, IndexError):
        return UNKNOWN


# ---------------------------------------------------------------- the identities


def identity_lines(derivation, seed: int, check_sizes: dict) -> dict:
    """``{(block, index): holds}`` for every identity line the exact check could evaluate:
    substitution lines against the first, and the sides of each backprop step."""
    chain = derivation.chain
    exprs = ([d.expr for d in chain.definitions] + [line.differential for line in derivation.definitions]
             + [s.expr for s in derivation.substitutions]
             + [e for st in derivation.steps for e in (st.adjoint, st.substituted, st.moved)])
    tied = any(isinstance(n, TIES) for e in exprs for n in E.walk(e))
    sizes = Sizes(check_sizes, _literal_sizes(chain, exprs), shrink=not tied)
    if tied and any(s > LIMIT for s in sizes.map.values()):
        return {}
    rng = Draws([seed, 61])
    env = _point(chain, sizes, rng)
    diffs = _differentials(derivation, env, sizes, rng)
    env.update(_adjoints(derivation, env, diffs, sizes))
    found = {}
    subs = [_try(s.expr, env, diffs, sizes) for s in derivation.substitutions]
    for i, v in enumerate(subs):
        if v is not UNKNOWN and subs[0] is not UNKNOWN:
            found[("substitution", i)] = bool(np.array_equal(v % P, subs[0] % P))
    for i, step in enumerate(derivation.steps):
        lhs = step.substituted if i == 0 else \
            E.Frobenius(E.Adjoint(step.variable), E.Differential(step.variable))
        sides = [_try(e, env, diffs, sizes) for e in (lhs, step.substituted, step.moved)]
        if all(s is not UNKNOWN for s in sides):
            found[("step", i)] = all(np.array_equal(s % P, sides[0] % P) for s in sides)
    return found


def _literal_sizes(chain, exprs) -> set:
    found = set()
    for e in [item.symbol for item in chain.inputs] + exprs:
        for n in E.walk(e):
            for size in n.shape:
                if isinstance(size, int) or getattr(size, "is_Integer", False):
                    found.add(int(size))
    return found


def _point(chain, sizes, rng) -> dict:
    """Inputs at random; a rational definition computed, any other a free symbol."""
    env = {item.symbol.name: _random(sizes.shape(item.symbol.shape), rng, item.symbol.props)
           for item in chain.inputs}
    for definition in chain.definitions:
        symbol = definition.symbol
        computed = _try(definition.expr, env, {}, sizes) if rational(definition.expr) else UNKNOWN
        env[symbol.name] = computed if computed is not UNKNOWN else \
            _random(sizes.shape(symbol.shape), rng, symbol.props)
    return env


def _differentials(derivation, env, sizes, rng) -> dict:
    """dX of the wrt inputs at random; of each definition from the line that shows it
    (unknown when that line applies a non-rational function)."""
    chain = derivation.chain
    symmetric = bool(derivation.options.get("symmetric_gradient"))
    diffs: dict = {}
    for w in chain.wrt:
        props = w.props if symmetric else frozenset()
        diffs[w.name] = _random(sizes.shape(w.shape), rng, props & {"symmetric", "spd"})
    shown = {line.differential_of.name: line for line in derivation.definitions
             if not line.is_alias}
    for definition in chain.definitions:
        name = definition.symbol.name
        if name in diffs:
            continue
        if name in shown:
            expr = shown[name].differential
        elif isinstance(definition.expr, E.Diag) and isinstance(definition.expr.arg, E.Symbol):
            expr = E.Diag(E.Differential(definition.expr.arg))
        else:
            expr = None
        diffs[name] = UNKNOWN if expr is None else _try(expr, env, diffs, sizes)
    return diffs


def _adjoints(derivation, env, diffs, sizes) -> dict:
    found: dict = {}
    for step in derivation.steps[1:]:
        found[E.Adjoint(step.variable).key] = _try(step.adjoint, {**env, **found}, diffs, sizes)
    return found
