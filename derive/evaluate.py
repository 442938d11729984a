"""Expression trees → NumPy values, for the numeric check and the rule tests.

Every value is a 2-D float array (vectors ``(n, 1)``, scalars ``(1, 1)``). The walk
is iterative, so a 20 000-term sum or a deep tree never hits Python's recursion
limit. Internally a diagonal matrix (``Diag(v)``, ``I``, sums and products of them)
is kept as its diagonal, so ``(S − S²) dv`` costs O(n), not O(n³), at n = 1000.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import sympy

from . import expr as E
from .functions import ELEMENTWISE, KINK_MARGIN, stand_in

if TYPE_CHECKING:
    from .chain import Definition

CONDITION_LIMIT = 1e12


class DomainError(ValueError):
    """An argument left its function's domain (log of −1, a singular inverse, …).

    ``function`` names the operation (``log``, ``log det``, ``inverse``, …), ``detail``
    says what it needs (``positive entries``); ``arg`` is the offending argument node.
    """

    def __init__(self, function: str, detail: str, arg: E.Expr | None = None):
        super().__init__(f"{function} needs {detail}")
        self.function = function
        self.detail = detail
        self.arg = arg

    definition: Definition     # set by forward() on the way out; absent otherwise


class DiagValue:
    """A diagonal matrix stored as its diagonal ``vec`` of shape ``(n, 1)``."""

    __slots__ = ("vec",)

    def __init__(self, vec):
        self.vec = vec

    @property
    def shape(self):
        return (self.vec.shape[0], self.vec.shape[0])

    def dense(self):
        return np.diag(self.vec[:, 0])


def dense(value) -> np.ndarray:
    return value.dense() if isinstance(value, DiagValue) else value


def as_matrix(value) -> np.ndarray | DiagValue:
    """A 2-D float array: scalars become ``(1, 1)``, 1-D arrays column vectors."""
    if isinstance(value, DiagValue):
        return value
    array = np.asarray(value, dtype=float)
    if array.ndim == 0:
        return array.reshape(1, 1)
    if array.ndim == 1:
        return array.reshape(-1, 1)
    return array


def concrete_shape(shape, sizes) -> tuple:
    """``(rows, cols)`` as ints, substituting ``sizes`` (sympy Symbol or name → int)."""
    table = {}
    for key, value in (sizes or {}).items():
        table[sympy.Symbol(key) if isinstance(key, str) else key] = value
    out = []
    for size in shape:
        value = sympy.sympify(size).subs(table)
        if value.free_symbols:
            raise ValueError(f"no value for the size {value}")
        out.append(int(value))
    return tuple(out)


def infer_sizes(expr: E.Expr, values: dict, sizes: dict | None = None) -> dict:
    """Sizes read off the arrays of the symbols in ``expr`` (``W : m x n`` and W's array)."""
    found = dict(sizes or {})
    for item in E.walk(expr):
        if isinstance(item, E.Symbol) and item.name in values:
            actual = as_matrix(values[item.name]).shape
            for size, number in zip(item.shape, actual):
                if isinstance(size, sympy.Symbol):
                    found.setdefault(size, number)
    return found


def _is_scalar(value) -> bool:
    return value.shape == (1, 1)


def _scalar(value) -> float:
    return float(dense(value)[0, 0])


def _finite(value, node):
    array = value.vec if isinstance(value, DiagValue) else value
    if not np.all(np.isfinite(array)):
        raise DomainError(_name(node), "finite values (got inf or nan)", node)
    return value


def _name(node) -> str:
    if isinstance(node, E.Apply):
        return node.func
    return {E.LogDet: "log det", E.Det: "det", E.Inverse: "inverse",
            E.HadamardDivide: "elementwise division", E.Power: "power"}.get(
        type(node), type(node).__name__)


# ---------------------------------------------------------------- per node


def _add(node, args):
    if all(isinstance(a, DiagValue) for a in args):
        return DiagValue(sum(a.vec for a in args))
    total = dense(args[0]).copy()
    for a in args[1:]:
        total += dense(a)
    return total


def _mul(node, args):
    """Left to right, as shapes are inferred: a 1×1 factor, or a 1×1 running product
    such as ``xᵀy`` in ``xᵀy A``, is a scalar; each run between them is a matrix chain."""
    coefficient = 1.0
    run = []
    for a in args:
        if _is_scalar(a):
            coefficient *= _scalar(a)
            continue
        run.append(a)
        if (run[0].shape[0], a.shape[1]) == (1, 1):
            coefficient *= _scalar(_chain_product(run))
            run = []
    if not run:
        return np.array([[coefficient]])
    if all(isinstance(m, DiagValue) for m in run):
        vec = run[0].vec.copy()
        for m in run[1:]:
            vec = vec * m.vec
        return DiagValue(coefficient * vec)
    return coefficient * _chain_product(run)


def _chain_product(matrices):
    dense_factors = []
    pending = None  # a diagonal still to be applied to the next dense factor (left)
    for m in matrices:
        if isinstance(m, DiagValue):
            if dense_factors and pending is None:
                dense_factors[-1] = dense_factors[-1] * m.vec.T
            else:
                pending = m.vec if pending is None else pending * m.vec
        else:
            dense_factors.append(m if pending is None else pending * m)
            pending = None
    if not dense_factors:
        return DiagValue(pending)
    if len(dense_factors) == 1:
        return dense_factors[0]
    return np.linalg.multi_dot(dense_factors)


def _inverse(node, x):
    if isinstance(x, DiagValue):
        magnitude = np.abs(x.vec)
        if magnitude.min() == 0 or magnitude.max() / magnitude.min() > CONDITION_LIMIT:
            raise DomainError("inverse", "an invertible matrix", node.arg)
        return DiagValue(1.0 / x.vec)
    try:
        result = np.linalg.inv(x)
    except np.linalg.LinAlgError:
        raise DomainError("inverse", "an invertible matrix", node.arg) from None
    condition = np.linalg.norm(x, 1) * np.linalg.norm(result, 1)
    if not np.isfinite(condition) or condition > CONDITION_LIMIT:
        raise DomainError("inverse", "an invertible matrix", node.arg)
    return result


def _power(node, x):
    k = node.exponent
    if _is_scalar(x):
        base = _scalar(x)
        if base == 0 and k < 0:
            raise DomainError("power", "a nonzero base", node.arg)
        if base <= 0 and not E.is_integer(k):
            raise DomainError("power", f"a positive base (a power {k})", node.arg)
        return np.array([[np.float64(base) ** float(k)]])
    if isinstance(x, DiagValue):
        return DiagValue(x.vec ** k)
    return np.linalg.matrix_power(x, k)


def _hadamard(node, a, b):
    if isinstance(a, DiagValue) or isinstance(b, DiagValue):
        return DiagValue(_diag_part(a) * _diag_part(b))
    return a * b


def _hadamard_divide(node, a, b):
    b = dense(b)
    if np.any(b == 0):
        raise DomainError("elementwise division", "nonzero divisors", node.right)
    return dense(a) / b


def _diag_part(x):
    if isinstance(x, DiagValue):
        return x.vec
    return np.diagonal(x).reshape(-1, 1).copy()


def _frobenius(node, a, b):
    if isinstance(a, DiagValue) or isinstance(b, DiagValue):
        return np.array([[float(np.sum(_diag_part(a) * _diag_part(b)))]])
    return np.array([[float(np.sum(a * b))]])


def _det(node, x):
    if isinstance(x, DiagValue):
        return np.array([[float(np.prod(x.vec))]])
    return np.array([[float(np.linalg.det(x))]])


def _logdet(node, x):
    if isinstance(x, DiagValue):
        sign = 1.0 if np.all(x.vec > 0) else -1.0
        value = np.sum(np.log(np.abs(x.vec)))
    else:
        sign, value = np.linalg.slogdet(x)
    if sign <= 0:
        raise DomainError("log det", "a positive determinant", node.arg)
    return np.array([[float(value)]])


def _element_power(node, x):
    x = dense(x)
    if node.exponent < 0 and np.any(x == 0):
        raise DomainError("elementwise power", "non-zero entries", node.arg)
    if not E.is_integer(node.exponent) and np.any(x <= 0):
        raise DomainError("elementwise power", f"positive entries (a power {node.exponent})",
                          node.arg)
    return np.power(x, float(node.exponent))


def _blocks(g, outer, inner):
    """G as a 4-index array: G[i, k, j, l] is entry (k, l) of block (i, j)."""
    (p, q), (r, s) = outer, inner
    return dense(g).reshape(p, r, q, s)


def _kron_block_sum(node, g, a):
    a = dense(a)
    g = dense(g)
    inner = (g.shape[0] // a.shape[0], g.shape[1] // a.shape[1])
    return np.einsum("ij,ikjl->kl", a, _blocks(g, a.shape, inner))


def _kron_block_frobenius(node, g, b):
    b = dense(b)
    g = dense(g)
    outer = (g.shape[0] // b.shape[0], g.shape[1] // b.shape[1])
    return np.einsum("ikjl,kl->ij", _blocks(g, outer, b.shape), b)


def _softmax(x, axis):
    """Shifted by the largest entry, so exp never overflows."""
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _logsumexp(x):
    top = np.max(x)
    return np.array([[float(top + np.log(np.sum(np.exp(x - top))))]])


def _apply(node, x):
    """The row's implementation, refusing arguments outside its domain or at its kink
    (the check then redraws its point, as for the log of a negative entry)."""
    function = ELEMENTWISE[node.func]
    x = dense(x)
    if function.domain is not None and not np.all(function.domain.ok(x)):
        raise DomainError(node.func, function.domain.detail, node.arg)
    margin = KINK_MARGIN * max(1.0, float(np.max(np.abs(x), initial=0.0)))   # beyond any step
    if function.kink is not None and np.any(np.abs(x - function.kink) < margin):
        raise DomainError(node.func, f"entries away from its kink at {function.kink:g}", node.arg)
    return function.numpy(x)


def _leaf(node, values, differentials, sizes):
    if isinstance(node, E.Symbol):
        try:
            return as_matrix(values[node.name])
        except KeyError:
            raise KeyError(f"no value for {node.name}") from None
    if isinstance(node, E.Differential):
        name = node.of.name
        if differentials and name in differentials:
            return as_matrix(differentials[name])
        if name in values:
            return np.zeros(as_matrix(values[name]).shape)
        return np.zeros(concrete_shape(node.shape, sizes))
    if isinstance(node, E.Adjoint):
        return as_matrix(values[node.key])
    if isinstance(node, E.Number):
        return np.array([[float(node.value)]])
    if isinstance(node, E.Zero):
        return np.zeros(concrete_shape(node.shape, sizes))
    if isinstance(node, E.Identity):
        return DiagValue(np.ones((concrete_shape(node.shape, sizes)[0], 1)))
    if isinstance(node, E.Ones):
        return np.ones(concrete_shape(node.shape, sizes))
    if isinstance(node, E.Commutation):
        return commutation(*concrete_shape((node.rows, node.cols), sizes))
    raise TypeError(f"cannot evaluate {type(node).__name__}")


def commutation(m: int, n: int) -> np.ndarray:
    """``K`` with ``K vec(A) = vec(Aᵀ)`` for an m×n A: entry (i, j) of A sits at i + jm in
    vec A and at j + in in vec Aᵀ."""
    k = np.zeros((m * n, m * n))
    for i in range(m):
        for j in range(n):
            k[j + i * n, i + j * m] = 1.0
    return k


UNARY = {
    E.Transpose: lambda node, x: x if isinstance(x, DiagValue) else x.T,
    E.Inverse: _inverse,
    E.Power: _power,
    E.Trace: lambda node, x: np.array([[float(np.sum(_diag_part(x)))]]),
    E.Det: _det,
    E.LogDet: _logdet,
    E.Apply: _apply,
    E.Unspecified: lambda node, x: stand_in(node.name, node.order)(dense(x)),
    E.Diag: lambda node, x: DiagValue(dense(x).copy()),
    E.DiagPart: lambda node, x: _diag_part(x),
    E.ElementPower: _element_power,
    E.Vec: lambda node, x: dense(x).reshape(-1, 1, order="F"),
    E.Norm: lambda node, x: np.array([[float(np.linalg.norm(dense(x)))]]),
    E.Softmax: lambda node, x: _softmax(dense(x), 0),
    E.SoftmaxRows: lambda node, x: _softmax(dense(x), 1),
    E.LogSumExp: lambda node, x: _logsumexp(dense(x)),
}
BINARY = {
    E.Hadamard: _hadamard,
    E.HadamardDivide: _hadamard_divide,
    E.Frobenius: _frobenius,
    E.Kron: lambda node, a, b: np.kron(dense(a), dense(b)),
    E.KronBlockSum: _kron_block_sum,
    E.KronBlockFrobenius: _kron_block_frobenius,
}
NARY = {E.Add: _add, E.Mul: _mul}


def _combine(node, args):
    kind = type(node)
    if kind in NARY:
        return NARY[kind](node, args)
    if kind in BINARY:
        return BINARY[kind](node, *args)
    return UNARY[kind](node, *args)


# ---------------------------------------------------------------- the walk


def evaluate_raw(expr: E.Expr, values: dict, differentials: dict | None = None,
                 sizes: dict | None = None):
    """Like ``evaluate`` but a diagonal result may stay a ``DiagValue``."""
    sizes = _complete_sizes(expr, values, sizes)
    memo = {}
    stack = [(expr, False)]
    with np.errstate(all="ignore"):
        while stack:
            node, expanded = stack.pop()
            key = id(node)
            if key in memo:
                continue
            children = node.children
            if not children:
                memo[key] = _finite(_leaf(node, values, differentials, sizes), node)
            elif expanded and isinstance(node, E.Unvec):     # the only node needing its sizes
                shape = concrete_shape(node.shape, sizes)
                memo[key] = dense(memo[id(node.arg)]).reshape(shape, order="F")
            elif expanded:
                args = [memo[id(c)] for c in children]
                memo[key] = _finite(_combine(node, args), node)
            else:
                stack.append((node, True))
                stack.extend((c, False) for c in children if id(c) not in memo)
    return memo[id(expr)]


def _complete_sizes(expr, values, sizes):
    """Sizes for Ones/Identity/Zero: those given, else read off the arrays."""
    needs = any(isinstance(n, (E.Ones, E.Identity, E.Zero, E.Differential, E.Unvec, E.Commutation))
                and any(not isinstance(s, sympy.Integer) for s in n.shape)
                for n in E.walk(expr))
    return infer_sizes(expr, values, sizes) if needs else sizes


def evaluate(expr: E.Expr, values: dict, differentials: dict | None = None,
             sizes: dict | None = None) -> np.ndarray:
    """The value of ``expr`` with symbols from ``values`` and ``dX`` from ``differentials``.

    A differential missing from ``differentials`` is zero (a non-wrt input).
    Raises DomainError when an argument leaves its function's domain.
    """
    return dense(evaluate_raw(expr, values, differentials, sizes))


def forward(chain, inputs: dict, sizes: dict | None = None, keep_diagonal: bool = False) -> dict:
    """Every defined variable's value, in chain order (inputs included in the result).

    A DomainError raised here carries ``definition``, the Definition that failed.
    """
    values = {name: as_matrix(value) for name, value in inputs.items()}
    for definition in chain.definitions:
        try:
            value = evaluate_raw(definition.expr, values, None, sizes)
        except DomainError as error:
            error.definition = definition
            raise
        values[definition.symbol.name] = value if keep_diagonal else dense(value)
    return values
