"""Expression trees → NumPy values, for the numeric check and the rule tests.

Every value is a 2-D float array (vectors ``(n, 1)``, scalars ``(1, 1)``). The walk
is iterative, so a 20 000-term sum or a deep tree never hits Python's recursion
limit. Internally a diagonal matrix (``Diag(v)``, ``I``, sums and products of them)
is kept as its diagonal, so ``(S − S²) dv`` costs O(n), not O(n³), at n = 1000; a
low-rank matrix (the check's direction ``u vᵀ``, an outer product ``a xᵀ``, a point moved
along one, ``W + t u vᵀ``) is kept as its factors, so ``(W + t u vᵀ)x = Wx + t u(vᵀx)``
costs a matrix–vector product, and ``Wx`` itself is computed once per check
(``product_cache``). Finiteness is tested where a function can make inf or nan (its
output) and on the result, not at every node.
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
    steep: bool                # set by the check: its point was steep (check._steep)


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


class LowRank:
    """``base + left rightᵀ`` (``base`` None is 0) with ``left`` p×r, ``right`` q×r, r small.

    Only matrices at least ``THIN`` rows and columns stay factored; anything thinner is
    cheaper dense.  Operations that do not know the form see it dense (``dense_args``).
    """

    __slots__ = ("base", "left", "right")

    def __init__(self, base, left, right):
        self.base, self.left, self.right = base, left, right

    @property
    def shape(self):
        return (self.left.shape[0], self.right.shape[0])

    @property
    def dtype(self):
        return np.result_type(self.left, self.right, *(() if self.base is None else (self.base,)))

    def dense(self):
        product = self.left @ self.right.T
        return product if self.base is None else self.base + product

    def scaled(self, c):
        return LowRank(None if self.base is None else c * self.base, c * self.left, self.right)

    def transposed(self):
        return LowRank(None if self.base is None else self.base.T, self.right, self.left)


THIN = 5            # a matrix with fewer rows or columns than this is stored dense
MAX_RANK = 4        # a sum of low-rank terms beyond this rank is stored dense


def low_rank(base, left, right):
    """``base + left rightᵀ``, factored when that is smaller than dense."""
    if isinstance(base, LowRank):            # (B + P Qᵀ) + L Rᵀ = B + [P L][Q R]ᵀ
        base, left, right = base.base, np.hstack([base.left, left]), np.hstack([base.right, right])
    rows, cols = left.shape[0], right.shape[0]
    if min(rows, cols) < THIN or left.shape[1] > MAX_RANK:
        return LowRank(None if base is None else dense(base), left, right).dense()
    if isinstance(base, DiagValue):
        base = base.dense()
    return LowRank(base, left, right)


def dense(value) -> np.ndarray:
    return value.dense() if isinstance(value, (DiagValue, LowRank)) else value


def norm_bound(value) -> float:
    """An upper bound on the Frobenius norm without forming the matrix (exact unless low-rank)."""
    if isinstance(value, DiagValue):
        return float(np.linalg.norm(value.vec))
    if isinstance(value, LowRank):
        base = 0.0 if value.base is None else float(np.linalg.norm(value.base))
        return base + float(np.linalg.norm(value.left) * np.linalg.norm(value.right))
    return float(np.linalg.norm(value))


def add(a, b):
    """``a + b`` in the most compact form (a point moved along ``u vᵀ`` stays factored)."""
    return _add(None, [as_matrix(a), as_matrix(b)])


def scaled(value, c: complex):
    """``c · value``, keeping its form."""
    if isinstance(value, LowRank):
        return value.scaled(c)
    if isinstance(value, DiagValue):
        return DiagValue(c * value.vec)
    return c * value


def inner(a, b) -> float:
    """``a : b`` of two values in any form (``G : u vᵀ = uᵀ G v``)."""
    return _inner(as_matrix(a), as_matrix(b))


def typical_entry(value) -> float:
    """The RMS of the entries (of a point's arrays: computed once per check)."""
    if _products is not None and isinstance(value, np.ndarray) and id(value) in _products.pinned:
        found = _products.rms.get(id(value))
        if found is None:
            found = _products.rms[id(value)] = _rms(value)
        return found
    return _rms(value)


def _rms(value) -> float:
    """Of a large dense array, from a strided sample of about 4096 entries (a step size
    needs the order of magnitude, not a pass over 4 million entries)."""
    if isinstance(value, np.ndarray) and value.size > 65536:
        rows, cols = value.shape
        value = value[:: max(1, rows // 64), :: max(1, cols // 64)]
    size = value.shape[0] if isinstance(value, DiagValue) else value.shape[0] * value.shape[1]
    return norm_bound(value) / np.sqrt(max(size, 1))


# ---------------------------------------------------------------- products at the point, once


class _Products:
    """Dense products of the point's own arrays, by the arrays' identity (kept alive here,
    so an identity is never reused): the moved evaluations of a check share ``Wx``."""

    def __init__(self, arrays) -> None:
        self.pinned = {id(a): a for a in arrays if isinstance(a, np.ndarray)}
        self.done: dict = {}
        self.rms: dict = {}

    def product(self, factors):
        key = tuple(id(f) for f in factors)
        if not all(self.pinned.get(k) is f for k, f in zip(key, factors)):
            return np.linalg.multi_dot(factors)
        if key not in self.done:
            self.done[key] = np.linalg.multi_dot(factors)
            self.pinned[id(self.done[key])] = self.done[key]
        return self.done[key]


_products: _Products | None = None


class product_cache:
    """``with product_cache(values): …`` — products of ``values``' arrays are computed once."""

    def __init__(self, values):
        self.cache = _Products(values.values())

    def __enter__(self):
        global _products
        self.saved, _products = _products, self.cache
        return self.cache

    def __exit__(self, *exc):
        global _products
        _products = self.saved


def _multi_dot(factors):
    if _products is not None:
        return _products.product(factors)
    return np.linalg.multi_dot(factors)


def as_matrix(value) -> np.ndarray | DiagValue | LowRank:
    """A 2-D float array: scalars become ``(1, 1)``, 1-D arrays column vectors."""
    if isinstance(value, (DiagValue, LowRank)):
        return value
    array = np.asarray(value, dtype=complex if np.iscomplexobj(value) else float)
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


def _scalar(value):
    """The entry of a 1×1 value: a float, or a complex during a complex step."""
    return _real_or_complex(dense(value)[0, 0])


def finite(value, node):
    """``value``, or a DomainError when it holds inf or nan."""
    return _finite(value, node)


def _finite(value, node):
    if isinstance(value, LowRank):
        arrays = [value.left, value.right]
        if value.base is not None and (_products is None or id(value.base) not in _products.pinned):
            arrays.append(value.base)
    else:
        arrays = [value.vec if isinstance(value, DiagValue) else value]
    if not all(np.all(np.isfinite(a)) for a in arrays):
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
    low = [a for a in args if isinstance(a, LowRank)]
    if low and sum(a.left.shape[1] for a in low) <= MAX_RANK:
        bases = [a.base for a in low if a.base is not None] \
            + [a for a in args if not isinstance(a, LowRank)]
        base = None if not bases else bases[0] if len(bases) == 1 else _add(node, bases)
        return low_rank(base, np.hstack([a.left for a in low]), np.hstack([a.right for a in low]))
    total = dense(args[0]).copy()
    for a in args[1:]:
        term = dense(a)
        if np.iscomplexobj(term) and not np.iscomplexobj(total):
            total = total + term
        else:
            total += term
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
    product = _chain_product(run)
    if coefficient == 1:
        return product
    return product.scaled(coefficient) if isinstance(product, LowRank) else coefficient * product


def _chain_product(matrices):
    """A product of matrices in the cheapest order; a low-rank factor ``B + L Rᵀ`` splits
    it into ``…B…`` and ``(…L)(Rᵀ…)``, and a product through a vector (``a xᵀ``) stays
    factored."""
    for i, m in enumerate(matrices):
        if isinstance(m, LowRank):
            before, after = list(matrices[:i]), list(matrices[i + 1:])
            left = _chain_product(before + [m.left]) if before else m.left
            right = _chain_product([m.right.T] + after) if after else m.right.T
            base = _chain_product(before + [m.base] + after) if m.base is not None else None
            return low_rank(base, dense(left), dense(right).T)
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
    rows, cols = dense_factors[0].shape[0], dense_factors[-1].shape[1]
    thin = next((k for k, f in enumerate(dense_factors[:-1]) if f.shape[1] == 1), None)
    if thin is not None and min(rows, cols) >= THIN:
        return LowRank(None, _product_of(dense_factors[:thin + 1]),
                       _product_of(dense_factors[thin + 1:]).T)
    return _multi_dot(dense_factors)


def _product_of(factors):
    return factors[0] if len(factors) == 1 else _multi_dot(factors)


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
        if np.real(base) <= 0 and not E.is_integer(k):
            raise DomainError("power", f"a positive base (a power {k})", node.arg)
        if isinstance(base, complex):
            return np.array([[base ** (int(k) if E.is_integer(k) else float(k))]])
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
    if isinstance(x, LowRank):
        low = np.sum(x.left * x.right, axis=1, keepdims=True)
        return low if x.base is None else _diag_part(x.base) + low
    return np.diagonal(x).reshape(-1, 1).copy()


def _frobenius(node, a, b):
    return np.array([[_inner(a, b)]])


def _inner(a, b):
    """``A : B`` without forming a low-rank or diagonal operand: ``G : u vᵀ = uᵀ G v``."""
    if isinstance(a, LowRank) and not isinstance(b, LowRank):
        a, b = b, a
    if isinstance(b, LowRank):
        base = 0.0 if b.base is None else _inner(a, b.base)
        if isinstance(a, LowRank):
            low = np.sum((a.left.T @ b.left) * (a.right.T @ b.right))
            low = low + (0.0 if a.base is None else np.sum(b.left * (a.base @ b.right)))
        elif isinstance(a, DiagValue):
            low = np.sum(a.vec * b.left * b.right)
        else:
            low = np.sum(b.left * (a @ b.right))
        return base + low
    if isinstance(a, DiagValue) or isinstance(b, DiagValue):
        return _real_or_complex(np.sum(_diag_part(a) * _diag_part(b)))
    return _real_or_complex(np.sum(a * b))


def _real_or_complex(x):
    return complex(x) if np.iscomplexobj(x) else float(x)


def _det(node, x):
    if isinstance(x, DiagValue):
        return np.array([[_real_or_complex(np.prod(x.vec))]])
    return np.array([[_real_or_complex(np.linalg.det(x))]])


def _logdet(node, x):
    """log det, by slogdet; on a complex step, log|det| + log(sign) (analytic near a
    positive determinant)."""
    if isinstance(x, DiagValue):
        vec = x.vec
        if np.iscomplexobj(vec):
            sign, value = np.prod(vec / np.abs(vec)), np.sum(np.log(np.abs(vec)))
        else:
            sign, value = (1.0 if np.all(vec > 0) else -1.0), np.sum(np.log(np.abs(vec)))
    else:
        sign, value = np.linalg.slogdet(x)
    if np.real(sign) <= 0:
        raise DomainError("log det", "a positive determinant", node.arg)
    if np.iscomplexobj(sign):
        return np.array([[complex(value + np.log(sign))]])
    return np.array([[float(value)]])


def _element_power(node, x):
    x = dense(x)
    if node.exponent < 0 and np.any(x == 0):
        raise DomainError("elementwise power", "non-zero entries", node.arg)
    if not E.is_integer(node.exponent) and np.any(np.real(x) <= 0):
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
    e = np.exp(x - np.max(np.real(x), axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _logsumexp(x):
    top = np.max(np.real(x))
    return np.array([[_real_or_complex(top + np.log(np.sum(np.exp(x - top))))]])


def _norm(node, x):
    """‖x‖; on a complex step √(Σ x²), the analytic continuation (not √(Σ |x|²))."""
    x = dense(x)
    if np.iscomplexobj(x):
        return np.array([[complex(np.sqrt(np.sum(x * x)))]])
    return np.array([[float(np.linalg.norm(x))]])


class NotAnalytic(TypeError):
    """A complex step met a function whose implementation is not analytic (abs, relu, …):
    the check differentiates by real differences instead."""


def _apply(node, x):
    """The row's implementation, refusing arguments outside its domain or at its kink
    (the check then redraws its point, as for the log of a negative entry)."""
    function = ELEMENTWISE[node.func]
    x = dense(x)
    if np.iscomplexobj(x):
        if not function.analytic:
            raise NotAnalytic(node.func)
        if function.domain is not None and not np.all(function.domain.ok(np.real(x))):
            raise DomainError(node.func, function.domain.detail, node.arg)
        return function.numpy(x)
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
            return np.zeros(values[name].shape if hasattr(values[name], "shape")
                            else as_matrix(values[name]).shape)
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
    E.Transpose: lambda node, x: x if isinstance(x, DiagValue) else
    x.transposed() if isinstance(x, LowRank) else x.T,
    E.Inverse: _inverse,
    E.Power: _power,
    E.Trace: lambda node, x: np.array([[_real_or_complex(np.sum(_diag_part(x)))]]),
    E.Det: _det,
    E.LogDet: _logdet,
    E.Apply: _apply,
    E.Unspecified: lambda node, x: stand_in(node.name, node.order)(dense(x)),
    E.Diag: lambda node, x: DiagValue(dense(x).copy()),
    E.DiagPart: lambda node, x: _diag_part(x),
    E.ElementPower: _element_power,
    E.Vec: lambda node, x: dense(x).reshape(-1, 1, order="F"),
    E.Norm: _norm,
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


LOW_RANK_AWARE = frozenset({E.Add, E.Mul, E.Transpose, E.Frobenius, E.Trace, E.DiagPart})
CAN_OVERFLOW = frozenset({E.Apply, E.Unspecified, E.Inverse, E.Power, E.Det, E.LogDet,
                          E.HadamardDivide, E.ElementPower, E.Softmax, E.SoftmaxRows,
                          E.LogSumExp, E.Norm, E.Kron})
"""Nodes whose output is tested for inf and nan: the functions; sums and products are
linear, so an overflow in one shows in the function it feeds or in the result."""


def _combine(node, args):
    kind = type(node)
    if kind not in LOW_RANK_AWARE:
        args = [a.dense() if isinstance(a, LowRank) else a for a in args]
    if kind in NARY:
        return NARY[kind](node, args)
    if kind in BINARY:
        return BINARY[kind](node, *args)
    return UNARY[kind](node, *args)


# ---------------------------------------------------------------- the walk


def evaluate_raw(expr: E.Expr, values: dict, differentials: dict | None = None,
                 sizes: dict | None = None):
    """Like ``evaluate`` but a diagonal result may stay a ``DiagValue``, a low-rank one a
    ``LowRank``."""
    memo = evaluate_all(expr, values, differentials, sizes)
    return _finite(memo[id(expr)], expr)


def evaluate_all(expr: E.Expr, values: dict, differentials: dict | None = None,
                 sizes: dict | None = None) -> dict:
    """The value of every node of ``expr``, by ``id`` (the check bounds each term's size)."""
    sizes = _complete_sizes(expr, values, sizes)
    memo: dict = {}
    stack = [(expr, False)]
    with np.errstate(all="ignore"):
        while stack:
            node, expanded = stack.pop()
            key = id(node)
            if key in memo:
                continue
            children = node.children
            if not children:
                memo[key] = _leaf(node, values, differentials, sizes)
            elif expanded and isinstance(node, E.Unvec):     # the only node needing its sizes
                shape = concrete_shape(node.shape, sizes)
                memo[key] = dense(memo[id(node.arg)]).reshape(shape, order="F")
            elif expanded:
                args = [memo[id(c)] for c in children]
                value = _combine(node, args)
                memo[key] = _finite(value, node) if type(node) in CAN_OVERFLOW else value
            else:
                stack.append((node, True))
                stack.extend((c, False) for c in children if id(c) not in memo)
    return memo


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

    ``keep_diagonal`` keeps diagonal and low-rank values in their compact forms (for the
    check); otherwise every value is a plain array.
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
