"""An independent judge of derive's gradients: a plain NumPy evaluator of the expression
trees and central differences, sharing no code with ``derive/check.py`` or
``derive/evaluate.py``.

``judge(derivation)`` evaluates the chain's own definitions (what the user wrote) at a
point drawn here, differentiates the objective entry by entry with central differences
at two step sizes (their difference estimates the error of the difference), and compares
each displayed gradient (``Gradient.expr``, its named adjoints evaluated from the steps)
with them. The answer is ``"right"``, ``"wrong"`` (far outside the error estimate at two
points) or ``"inconclusive"`` (values not finite, outside a function's domain, or a
difference dominated by rounding): a test that needs a verdict asserts it.
"""
from __future__ import annotations

import numpy as np
import sympy

from derive import expr as E
from derive.functions import stand_in_parameter


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


FUNCTIONS = {
    "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "sigma": _sigmoid, "tanh": np.tanh,
    "softplus": lambda z: np.logaddexp(0.0, z), "sin": np.sin, "cos": np.cos, "tan": np.tan,
    "arcsin": np.arcsin, "arccos": np.arccos, "arctan": np.arctan, "sinh": np.sinh,
    "cosh": np.cosh, "log1p": np.log1p, "abs": np.abs, "sign": np.sign,
    "relu": lambda z: np.where(z > 0, z, 0.0), "step": lambda z: np.where(z > 0, 1.0, 0.0),
}


def stand_in(name: str, order: int):
    """u ↦ sin(c·u) + u²/4 and its derivatives, as derive's output states the stand-in."""
    c = stand_in_parameter(name)
    return (lambda u: np.sin(c * u) + u * u / 4, lambda u: c * np.cos(c * u) + u / 2,
            lambda u: -c * c * np.sin(c * u) + 0.5, lambda u: -c ** 3 * np.cos(c * u))[order]


class Unknown(Exception):
    """A node this evaluator does not know: the judge says inconclusive, never right."""


class Evaluator:
    """Values (2-D float arrays) of expression trees at one point."""

    def __init__(self, values: dict, sizes: dict, adjoints: dict | None = None):
        self.values, self.sizes = values, sizes
        self.adjoints = {} if adjoints is None else adjoints

    def size(self, size) -> int:
        return int(sympy.sympify(size).subs(self.sizes))

    def __call__(self, node: E.Expr) -> np.ndarray:
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            raise Unknown(type(node).__name__)
        return np.asarray(method(node), dtype=float).reshape(self.shape_of(node, method))

    def shape_of(self, node, method):
        return (self.size(node.shape[0]), self.size(node.shape[1]))

    def _Symbol(self, n):
        return self.values[n.name]

    def _Adjoint(self, n):
        return self.adjoints[n.of.name]

    def _Number(self, n):
        return float(n.value)

    def _Zero(self, n):
        return np.zeros((self.size(n.shape[0]), self.size(n.shape[1])))

    def _Identity(self, n):
        return np.eye(self.size(n.size))

    def _Ones(self, n):
        return np.ones((self.size(n.rows), self.size(n.cols)))

    def _Commutation(self, n):
        """K with K vec(A) = vec(Aᵀ), A of n.rows × n.cols: entry by entry."""
        m, k = self.size(n.rows), self.size(n.cols)
        out = np.zeros((m * k, m * k))
        for i in range(m):
            for j in range(k):
                out[i * k + j, j * m + i] = 1.0   # vec(Aᵀ)[j + i k] = A[i, j] = vec(A)[i + j m]
        return out

    def _Add(self, n):
        total = self(n.terms[0])
        for term in n.terms[1:]:
            total = total + self(term)
        return total

    def _Mul(self, n):
        """Scalars scale; the rest multiply as matrices, a 1×1 run in between acting as a scalar."""
        scale, run = 1.0, None
        for factor in n.factors:
            value = self(factor)
            if E.is_scalar_shape(factor.shape):
                scale = scale * value[0, 0]
            elif run is None:
                run = value
            elif run.shape == (1, 1) and value.shape[0] != 1:
                scale, run = scale * run[0, 0], value
            else:
                run = run @ value
        return scale if run is None else scale * run

    def _Transpose(self, n):
        return self(n.arg).T

    def _Inverse(self, n):
        return np.linalg.inv(self(n.arg))

    def _Power(self, n):
        value, k = self(n.arg), sympy.Rational(n.exponent)
        if value.shape == (1, 1):
            return value ** float(k)
        if k.q != 1:
            raise Unknown("a fractional power of a matrix")
        return np.linalg.matrix_power(value, int(k))

    def _ElementPower(self, n):
        return self(n.arg) ** float(sympy.Rational(n.exponent))

    def _Hadamard(self, n):
        return self(n.left) * self(n.right)

    def _HadamardDivide(self, n):
        return self(n.left) / self(n.right)

    def _Frobenius(self, n):
        return np.sum(self(n.left) * self(n.right))

    def _Trace(self, n):
        return np.trace(self(n.arg))

    def _Det(self, n):
        return np.linalg.det(self(n.arg))

    def _LogDet(self, n):
        det = np.linalg.det(self(n.arg))
        return np.log(det) if det > 0 else np.nan

    def _Apply(self, n):
        return FUNCTIONS[n.func](self(n.arg))

    def _Unspecified(self, n):
        return stand_in(n.name, n.order)(self(n.arg))

    def _Diag(self, n):
        return np.diag(self(n.arg)[:, 0])

    def _DiagPart(self, n):
        return np.diag(self(n.arg)).copy()

    def _Norm(self, n):
        return np.sqrt(np.sum(self(n.arg) ** 2))

    def _Vec(self, n):
        return self(n.arg).flatten(order="F")

    def _Unvec(self, n):
        return np.reshape(self(n.arg), (self.size(n.rows), self.size(n.cols)), order="F")

    def _Kron(self, n):
        a, b = self(n.left), self(n.right)
        return np.block([[a[i, j] * b for j in range(a.shape[1])] for i in range(a.shape[0])])

    def _KronBlockSum(self, n):
        g, a = self(n.g), self(n.a)
        r, s = g.shape[0] // a.shape[0], g.shape[1] // a.shape[1]
        return sum(a[i, j] * g[i * r:(i + 1) * r, j * s:(j + 1) * s]
                   for i in range(a.shape[0]) for j in range(a.shape[1]))

    def _KronBlockFrobenius(self, n):
        g, b = self(n.g), self(n.b)
        p, q = g.shape[0] // b.shape[0], g.shape[1] // b.shape[1]
        r, s = b.shape
        return np.array([[np.sum(g[i * r:(i + 1) * r, j * s:(j + 1) * s] * b) for j in range(q)]
                         for i in range(p)])

    def _Softmax(self, n):
        value = self(n.arg)
        e = np.exp(value - value.max())
        return e / e.sum()

    def _SoftmaxRows(self, n):
        value = self(n.arg)
        e = np.exp(value - value.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def _LogSumExp(self, n):
        value = self(n.arg)
        top = value.max()
        return top + np.log(np.sum(np.exp(value - top)))


# ---------------------------------------------------------------- points and differences


def sizes_of(chain, default: int = 3) -> dict:
    """A value for every symbolic size: 3, or 4 for a second one (so shapes differ)."""
    symbols = sorted({s for item in chain.inputs for size in item.symbol.shape
                      for s in sympy.sympify(size).free_symbols}, key=str)
    return {s: default + k % 2 for k, s in enumerate(symbols)}


def draw(chain, sizes: dict, rng) -> dict:
    """A point of our own: square matrices near I, declared properties honoured."""
    point = {}
    for item in chain.inputs:
        shape = tuple(int(sympy.sympify(s).subs(sizes)) for s in item.symbol.shape)
        value = 0.5 * rng.normal(size=shape)
        props = item.symbol.props
        if shape[0] == shape[1] > 1:
            value = np.eye(shape[0]) + 0.3 * value
            if "symmetric" in props or "spd" in props:
                value = (value + value.T) / 2
            if "spd" in props:
                value = value @ value.T + 0.2 * np.eye(shape[0])
        if "positive" in props:
            value = np.abs(value) + 0.3
        point[item.symbol.name] = value
    return point


def objective(chain, point: dict, sizes: dict) -> float:
    """E at ``point``, from the chain's definitions as written."""
    values = dict(point)
    evaluate = Evaluator(values, sizes)
    for definition in chain.definitions:
        values[definition.symbol.name] = evaluate(definition.expr)
    return float(values[chain.objective.symbol.name][0, 0])


def gradients(derivation, point: dict, sizes: dict) -> dict:
    """Each displayed gradient at ``point``, with the named adjoints it refers to."""
    chain = derivation.chain
    values, adjoints = dict(point), {}
    evaluate = Evaluator(values, sizes, adjoints)
    for definition in chain.definitions:
        values[definition.symbol.name] = evaluate(definition.expr)
    for step in derivation.steps[1:]:
        adjoints[step.variable.name] = evaluate(step.adjoint)
    return {g.wrt.name: evaluate(g.expr) for g in derivation.gradients}


def central_differences(chain, point: dict, sizes: dict, name: str, h: float) -> np.ndarray:
    """∂E/∂(each entry of ``name``), by (E(x + h) − E(x − h)) / 2h, h scaled by the entry."""
    base = point[name]
    out = np.zeros(base.shape)
    for index in np.ndindex(base.shape):
        step = h * max(1.0, abs(base[index]))
        sides = []
        for sign in (1, -1):
            moved = base.copy()
            moved[index] += sign * step
            sides.append(objective(chain, {**point, name: moved}, sizes))
        out[index] = (sides[0] - sides[1]) / (2 * step)
    return out


ENTRIES = 2000     # beyond this many entries, differences along random directions


def directional_differences(chain, point: dict, sizes: dict, name: str, h: float,
                            directions: list) -> np.ndarray:
    """(E(x + hU) − E(x − hU)) / 2h along each dense Gaussian ``U``: a wrong gradient G
    differs from the right one along almost every U, at a cost that does not grow with
    the entries (``central_differences`` of a 4×32012 input took two minutes)."""
    base = point[name]
    step = h * max(1.0, float(np.max(np.abs(base))))
    out = []
    for u in directions:
        sides = [objective(chain, {**point, name: base + sign * step * u}, sizes)
                 for sign in (1, -1)]
        out.append((sides[0] - sides[1]) / (2 * step))
    return np.array(out, dtype=float).reshape(-1)


def _differences(chain, point, sizes, name, value):
    """(G as compared, fine, coarse): entry by entry, or along 3 random directions."""
    base = point[name]
    if base.size <= ENTRIES:
        return (value, central_differences(chain, point, sizes, name, 1e-5),
                central_differences(chain, point, sizes, name, 1e-4))
    rng = np.random.default_rng(base.size)
    directions = [rng.standard_normal(base.shape) for _ in range(3)]
    if np.shape(value) != base.shape:
        return value, np.zeros(base.shape), np.zeros(base.shape)     # wrong: shapes differ
    along = np.array([float(np.sum(value * u)) for u in directions])
    return (along, directional_differences(chain, point, sizes, name, 1e-5, directions),
            directional_differences(chain, point, sizes, name, 1e-4, directions))


def compare(derivation, point: dict, sizes: dict) -> str:
    """``right``, ``wrong`` or ``inconclusive`` at one point."""
    chain = derivation.chain
    with np.errstate(all="ignore"):
        try:
            shown = gradients(derivation, point, sizes)
            verdicts = []
            for name, value in shown.items():
                compared, fine, coarse = _differences(chain, point, sizes, name, value)
                verdicts.append(_verdict(compared, fine, coarse))
        except (np.linalg.LinAlgError, ZeroDivisionError, OverflowError, Unknown):
            return "inconclusive"
    if "wrong" in verdicts:
        return "wrong"
    return "inconclusive" if "inconclusive" in verdicts else "right"


def _verdict(value, fine, coarse) -> str:
    """Right within the difference's own error estimate (the two step sizes' disagreement,
    plus rounding), wrong far outside it."""
    if value.shape != fine.shape:
        return "wrong"
    if not (np.all(np.isfinite(value)) and np.all(np.isfinite(fine))
            and np.all(np.isfinite(coarse))):
        return "inconclusive"
    scale = max(np.linalg.norm(fine), np.linalg.norm(value), 1e-300)
    error = np.linalg.norm(value - fine)
    estimate = np.linalg.norm(fine - coarse) + 1e-9 * scale
    if error <= 1e-6 * scale + 10 * estimate:
        return "right"
    if error > 1e-4 * scale and error > 1000 * estimate:
        return "wrong"
    return "inconclusive"


def judge(derivation, seed: int = 0, points: int = 3) -> str:
    """The oracle's verdict on every displayed gradient: right at some point and wrong at
    none; wrong where it is wrong at two points (once is a point near trouble)."""
    chain = derivation.chain
    rng = np.random.default_rng(seed)
    sizes = sizes_of(chain)
    seen = []
    for _ in range(points):
        seen.append(compare(derivation, draw(chain, sizes, rng), sizes))
        if seen.count("wrong") >= 2:
            return "wrong"
        if seen[-1] == "right" and "wrong" not in seen:
            return "right"
    return "inconclusive"


def could_not_compare(result) -> bool:
    """Whether every failing line of derive's check failed for want of a comparison (a value
    that overflowed, a line marked not checked) rather than by a finite error: a failure
    the oracle, at a gentler point of its own, may rightly not share."""
    failures = result.failures
    return bool(failures) and all(not getattr(v, "checked", True) or not np.isfinite(v.relative_error)
                                  for v in failures)
