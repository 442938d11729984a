"""Matrix expressions: a small immutable tree whose nodes check their shapes when built.

Sizes are SymPy expressions (``Integer(5)`` or ``Symbol('n')``); a shape is a pair
``(rows, cols)``; a vector is ``(n, 1)``; a 1×1 shape is a scalar everywhere.
Equality is structural, so like terms can be collected by comparing trees.
"""
from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, TypeVar, cast

import sympy

from .record import field, record

if TYPE_CHECKING:
    from _typeshed import DataclassInstance
    from typing_extensions import dataclass_transform
else:
    # Only the type checker needs it: at run time the marker is a no-op.
    def dataclass_transform(**_kwargs):
        return lambda decorated: decorated

ONE = sympy.Integer(1)
SCALAR = (ONE, ONE)

PROPERTIES = ("symmetric", "spd", "invertible", "positive", "diagonal")


class ShapeError(ValueError):
    """An operation applied to operands of incompatible shapes (message says which)."""


def show_shape(shape) -> str:
    rows, cols = shape
    if (rows, cols) == SCALAR:
        return "a scalar"
    if cols == ONE:
        return f"a vector of length {rows}"
    return f"{rows}×{cols}"


def is_scalar_shape(shape) -> bool:
    return tuple(shape) == SCALAR


def is_square_shape(shape) -> bool:
    return shape[0] == shape[1]


class Expr:
    """Base of all nodes; subclasses are ``@node`` classes listing their children."""


    shape: tuple
    child_fields: tuple = ()

    @property
    def children(self) -> tuple:
        out: list[Expr] = []
        for name in self.child_fields:
            value = getattr(self, name)
            out.extend(value if isinstance(value, tuple) else (value,))
        return tuple(out)

    def rebuild(self, children) -> "Expr":
        """The same node over new children (in the order of ``children``)."""
        children = list(children)
        values = {}
        for name in self.child_fields:
            old = getattr(self, name)
            if isinstance(old, tuple):
                values[name] = tuple(children[: len(old)])
                del children[: len(old)]
            else:
                values[name] = children.pop(0)
        # every concrete node class is a record (a dataclass to ``fields``), made so by @node
        node_fields = fields(cast("DataclassInstance", self))
        kwargs = {f.name: getattr(self, f.name) for f in node_fields if f.name != "shape"}
        if "shape" not in self.child_fields and not self.derives_shape:
            kwargs["shape"] = self.shape
        return type(self)(**{**kwargs, **values})

    derives_shape = True

    @property
    def is_scalar(self) -> bool:
        return is_scalar_shape(self.shape)

    def __post_init__(self):
        object.__setattr__(self, "shape", self.infer_shape())

    def infer_shape(self):
        return self.shape


_Node = TypeVar("_Node", bound="Expr")


@dataclass_transform(eq_default=True, frozen_default=True, field_specifiers=(field,))
def node(cls: type[_Node]) -> type[_Node]:
    """Frozen, structurally compared, hash-cached record for an expression node."""
    cls = record(cls)
    compared_hash = cls.__hash__

    def cached_hash(self):
        try:
            return self.__dict__["_hash"]
        except KeyError:
            value = compared_hash(self)
            self.__dict__["_hash"] = value
            return value

    # replacing the record's __hash__ by the caching one is the point of @node
    cls.__hash__ = cached_hash  # type: ignore[method-assign]
    return cls


# ---------------------------------------------------------------- leaves


@node
class Symbol(Expr):
    """An input or a defined variable."""

    name: str
    shape: tuple = SCALAR
    derives_shape = False
    props: frozenset = field(default=frozenset(), compare=False)


@node
class Differential(Expr):
    """``dX`` for the variable X."""

    of: Symbol
    shape: tuple = field(default=SCALAR, compare=False)

    def infer_shape(self):
        return self.of.shape


@node
class Adjoint(Expr):
    """``z̄ = ∂E/∂z``, the named adjoint of a variable, defined on a line of its own."""

    of: Symbol
    shape: tuple = field(default=SCALAR, compare=False)

    def infer_shape(self):
        return self.of.shape

    @property
    def key(self) -> str:
        """Where its value is kept beside the variables' values (no name has a space)."""
        return "adjoint " + self.of.name


@node
class Number(Expr):
    """An exact scalar (SymPy Rational)."""

    value: sympy.Expr
    shape: tuple = field(default=SCALAR, compare=False)

    def __post_init__(self):
        if not isinstance(self.value, sympy.Basic):
            object.__setattr__(self, "value", sympy.Rational(self.value))
        super().__post_init__()


@node
class Zero(Expr):
    shape: tuple = SCALAR
    derives_shape = False


@node
class Identity(Expr):
    size: sympy.Expr
    shape: tuple = field(default=SCALAR, compare=False)

    def infer_shape(self):
        return (self.size, self.size)


@node
class Commutation(Expr):
    """The commutation matrix ``K_{m,n}``: ``K vec(A) = vec(Aᵀ)`` for an m×n matrix A, the
    coefficient that reads ``vec(dXᵀ) = K vec dX`` (vec.py)."""

    rows: sympy.Expr
    cols: sympy.Expr
    shape: tuple = field(default=SCALAR, compare=False)

    def infer_shape(self):
        return (self.rows * self.cols, self.rows * self.cols)


@node
class Ones(Expr):
    """The ones vector (``cols`` = 1) or a ones matrix."""

    rows: sympy.Expr
    cols: sympy.Expr = ONE
    shape: tuple = field(default=SCALAR, compare=False)

    def infer_shape(self):
        return (self.rows, self.cols)


# ---------------------------------------------------------------- operations


def _require_same(what, shapes):
    first = shapes[0]
    for other in shapes[1:]:
        if tuple(other) != tuple(first):
            raise ShapeError(f"{what} of {show_shape(first)} and {show_shape(other)}")
    return tuple(first)


def _require_square(what, shape):
    if not is_square_shape(shape):
        raise ShapeError(f"{what} needs a square matrix, got {show_shape(shape)}")


def product_shape(left, right):
    """Shape of ``left · right`` where a 1×1 factor acts as a scalar."""
    if is_scalar_shape(left):
        return tuple(right)
    if is_scalar_shape(right):
        return tuple(left)
    if left[1] != right[0]:
        raise ShapeError(
            f"product of {show_shape(left)} and {show_shape(right)}: "
            f"{left[1]} columns against {right[0]} rows"
        )
    return (left[0], right[1])


@node
class Unary(Expr):
    """A node of one operand ``arg``; subclasses say what shape it gives."""

    arg: Expr
    shape: tuple = field(default=SCALAR, compare=False)
    child_fields = ("arg",)


@node
class Add(Expr):
    terms: tuple
    shape: tuple = field(default=SCALAR, compare=False)
    child_fields = ("terms",)

    def infer_shape(self):
        return _require_same("sum", [t.shape for t in self.terms])


@node
class Mul(Expr):
    """Matrix product of ``factors`` in order; 1×1 factors act as scalars."""

    factors: tuple
    shape: tuple = field(default=SCALAR, compare=False)
    child_fields = ("factors",)

    def infer_shape(self):
        shape = self.factors[0].shape
        for factor in self.factors[1:]:
            shape = product_shape(shape, factor.shape)
        return shape


@node
class Transpose(Unary):
    def infer_shape(self):
        return (self.arg.shape[1], self.arg.shape[0])


@node
class Inverse(Unary):
    def infer_shape(self):
        _require_square("inverse", self.arg.shape)
        return self.arg.shape


def is_integer(k) -> bool:
    """Whether an exponent (an int or a SymPy Rational) is whole."""
    return isinstance(k, int) or bool(getattr(k, "is_Integer", False))


@node
class Power(Expr):
    """Integer matrix power ``X^k`` (k ≥ 0), or any rational power of a scalar
    (``k`` an int when whole, else an exact SymPy Rational such as 1/3)."""

    arg: Expr
    exponent: int
    shape: tuple = field(default=SCALAR, compare=False)
    child_fields = ("arg",)

    def infer_shape(self):
        if not self.arg.is_scalar:
            _require_square("matrix power", self.arg.shape)
            if not is_integer(self.exponent):
                raise ShapeError(f"a power {self.exponent} of a matrix: only whole powers of a "
                                 f"matrix exist here; write X.^{{{self.exponent}}} for entries")
            if self.exponent < 0:
                raise ShapeError("a negative matrix power: write inv(X)^k or X^{-1}")
        return self.arg.shape


@node
class Hadamard(Expr):
    """Elementwise product ``A ∘ B``."""

    left: Expr
    right: Expr
    shape: tuple = field(default=SCALAR, compare=False)
    child_fields = ("left", "right")

    def infer_shape(self):
        return _require_same("elementwise product", [self.left.shape, self.right.shape])


@node
class HadamardDivide(Expr):
    """Elementwise quotient ``A ⊘ B``."""

    left: Expr
    right: Expr
    shape: tuple = field(default=SCALAR, compare=False)
    child_fields = ("left", "right")

    def infer_shape(self):
        return _require_same("elementwise quotient", [self.left.shape, self.right.shape])


@node
class Frobenius(Expr):
    """``A : B = tr(AᵀB)``."""

    left: Expr
    right: Expr
    shape: tuple = field(default=SCALAR, compare=False)
    child_fields = ("left", "right")

    def infer_shape(self):
        _require_same("Frobenius product", [self.left.shape, self.right.shape])
        return SCALAR


@node
class Trace(Unary):
    def infer_shape(self):
        _require_square("tr", self.arg.shape)
        return SCALAR


@node
class Det(Unary):
    def infer_shape(self):
        _require_square("det", self.arg.shape)
        return SCALAR


@node
class LogDet(Unary):
    def infer_shape(self):
        _require_square("log det", self.arg.shape)
        return SCALAR


@node
class Apply(Expr):
    """An elementwise function (``exp``, ``log``, ``sigma``, ``tanh``) of a matrix."""

    func: str
    arg: Expr
    shape: tuple = field(default=SCALAR, compare=False)
    child_fields = ("arg",)

    def infer_shape(self):
        return self.arg.shape


@node
class Unspecified(Expr):
    """An unspecified elementwise function ``f`` (``order`` 0) or its derivative ``f′`` (1),
    ``f″`` (2), declared ``f : function`` or named by convention (f, g, h, φ, ψ)."""

    name: str
    arg: Expr
    order: int = 0
    shape: tuple = field(default=SCALAR, compare=False)
    child_fields = ("arg",)

    def infer_shape(self):
        return self.arg.shape


@node
class Diag(Unary):
    """``Diag(v)``: the square matrix with the vector v on its diagonal."""

    def infer_shape(self):
        rows, cols = self.arg.shape
        if cols != ONE:
            raise ShapeError(f"Diag needs a vector, got {show_shape(self.arg.shape)}")
        return (rows, rows)


@node
class DiagPart(Unary):
    """``diag(M)``: the diagonal of a square matrix as a vector."""

    def infer_shape(self):
        _require_square("diag", self.arg.shape)
        return (self.arg.shape[0], ONE)


@node
class Norm(Unary):
    """``‖A‖``: the Frobenius norm of a matrix, the 2-norm of a vector (the same number)."""

    def infer_shape(self):
        return SCALAR


@node
class ElementPower(Expr):
    """Elementwise power ``A^{∘k}`` (``A.^k``): k an int, or an exact SymPy Rational (a
    non-integer power needs positive entries)."""

    arg: Expr
    exponent: int
    shape: tuple = field(default=SCALAR, compare=False)
    child_fields = ("arg",)

    def infer_shape(self):
        return self.arg.shape


@node
class Vec(Unary):
    """``vec(X)``: the columns of X stacked into one vector (column-major)."""

    def infer_shape(self):
        rows, cols = self.arg.shape
        return (rows * cols, ONE)


@node
class Unvec(Expr):
    """``unvec(g)``: a vector of length rows·cols refolded column by column, vec's inverse."""

    arg: Expr
    rows: sympy.Expr
    cols: sympy.Expr
    shape: tuple = field(default=SCALAR, compare=False)
    child_fields = ("arg",)

    def infer_shape(self):
        if tuple(self.arg.shape) != (self.rows * self.cols, ONE):
            raise ShapeError(f"unvec to {self.rows}×{self.cols} of {show_shape(self.arg.shape)}")
        return (self.rows, self.cols)


@node
class Kron(Expr):
    """Kronecker product ``A ⊗ B``: the block matrix [aᵢⱼB]."""

    left: Expr
    right: Expr
    shape: tuple = field(default=SCALAR, compare=False)
    child_fields = ("left", "right")

    def infer_shape(self):
        (p, q), (r, s) = self.left.shape, self.right.shape
        return (p * r, q * s)


def _blocks(g, outer, inner):
    """Check that g is made of outer-shaped many inner-shaped blocks."""
    (p, q), (r, s) = outer, inner
    if tuple(g.shape) != (p * r, q * s):
        raise ShapeError(f"{show_shape(g.shape)} is not {p}×{q} blocks of {r}×{s}")


@node
class KronBlockSum(Expr):
    """``Σᵢⱼ aᵢⱼ Gᵢⱼ``: the blocks Gᵢⱼ (of shape rows×cols) of g weighted by A's entries;
    ``G : (A ⊗ dB)`` is ``(Σᵢⱼ aᵢⱼGᵢⱼ) : dB``."""

    g: Expr
    a: Expr
    shape: tuple = field(default=SCALAR, compare=False)
    child_fields = ("g", "a")

    def infer_shape(self):
        (p, q), (m, n) = self.a.shape, self.g.shape
        inner = (sympy.cancel(m / p), sympy.cancel(n / q))
        _blocks(self.g, self.a.shape, inner)
        return inner


@node
class KronBlockFrobenius(Expr):
    """``[Gᵢⱼ : B]ᵢⱼ``: each block of g (shaped like B) against B;
    ``G : (dA ⊗ B)`` is ``[Gᵢⱼ : B]ᵢⱼ : dA``."""

    g: Expr
    b: Expr
    shape: tuple = field(default=SCALAR, compare=False)
    child_fields = ("g", "b")

    def infer_shape(self):
        (r, s), (m, n) = self.b.shape, self.g.shape
        outer = (sympy.cancel(m / r), sympy.cancel(n / s))
        _blocks(self.g, outer, self.b.shape)
        return outer


def _require_vector(what, shape):
    if shape[1] != ONE:
        raise ShapeError(f"{what} needs a column vector, got {show_shape(shape)}")


@node
class Softmax(Unary):
    """``softmax(z) = exp(z) / 1ᵀexp(z)`` of a column vector."""

    def infer_shape(self):
        _require_vector("softmax", self.arg.shape)
        return self.arg.shape


@node
class SoftmaxRows(Unary):
    """The softmax of each row of a matrix."""

    def infer_shape(self):
        return self.arg.shape


@node
class LogSumExp(Unary):
    """``logsumexp(z) = log 1ᵀexp(z)`` of a column vector."""

    def infer_shape(self):
        _require_vector("logsumexp", self.arg.shape)
        return SCALAR


# ---------------------------------------------------------------- helpers


def walk(expr: Expr):
    """Every node of the tree, parents before children, without recursion."""
    stack = [expr]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


def replace_nodes(expr: Expr, table: dict) -> Expr:
    """``expr`` with every subtree found in ``table`` replaced by its value (the
    display writes adjoints out, the Hessian substitutes differentials: one walk for both)."""
    if expr in table:
        return table[expr]
    children = expr.children
    if not children:
        return expr
    rebuilt = [replace_nodes(c, table) for c in children]
    return expr.rebuild(rebuilt) if rebuilt != list(children) else expr


def contains_differential(expr: Expr) -> bool:
    """Whether a ``dX`` occurs in ``expr``; cached on every node (simplify asks about the
    same subtrees again and again), computed without recursion."""
    stack = [(expr, False)]
    while stack:
        current, ready = stack.pop()
        if "_has_d" in current.__dict__:
            continue
        if ready:
            value = isinstance(current, Differential) or \
                any(c.__dict__["_has_d"] for c in current.children)
            object.__setattr__(current, "_has_d", value)
        else:
            stack.append((current, True))
            stack.extend((c, False) for c in current.children)
    return expr.__dict__["_has_d"]


def differentials_in(expr: Expr) -> list:
    """The variables whose differentials occur in ``expr``, in order of appearance."""
    seen = []
    for n in walk(expr):
        if isinstance(n, Differential) and n.of not in seen:
            seen.append(n.of)
    return seen


def scalar_groups(factors) -> list:
    """Bracket runs whose product is 1×1 before more factors: ``xᵀy A`` → ``(xᵀy) A``."""
    groups, run = [], []
    for i, f in enumerate(factors):
        run.append(f)
        if len(run) > 1 and i < len(factors) - 1 and Mul(tuple(run)).is_scalar:
            groups.append(Mul(tuple(run)))
            run = []
    return groups + run


def neg(expr: Expr) -> Expr:
    return Mul((Number(-1), expr))


def scale(coefficient, expr: Expr) -> Expr:
    return Mul((Number(coefficient), expr))


def is_symmetric(expr: Expr) -> bool:
    """True when ``expr`` is symmetric by construction (never guessed numerically)."""
    if expr.is_scalar:
        return True
    if isinstance(expr, Symbol):
        return bool(expr.props & {"symmetric", "spd", "diagonal"})
    if isinstance(expr, (Identity, Diag, Zero)):
        return is_square_shape(expr.shape)
    if isinstance(expr, (Add,)):
        return all(is_symmetric(t) for t in expr.terms)
    if isinstance(expr, (Inverse, Power, Transpose, Apply, Unspecified)):
        return is_square_shape(expr.shape) and is_symmetric(expr.arg)
    if isinstance(expr, Hadamard):
        return is_symmetric(expr.left) and is_symmetric(expr.right)
    if isinstance(expr, Mul):
        return _symmetric_product(expr.factors)
    return False


def _symmetric_product(factors) -> bool:
    matrices = [f for f in factors if not f.is_scalar]
    if not matrices:
        return True
    if len(matrices) == 1:
        return is_symmetric(matrices[0])
    if all(is_diagonal(f) for f in matrices):
        return True
    reversed_transposed = [transpose_of(f) for f in reversed(matrices)]
    return reversed_transposed == matrices


def transpose_of(expr: Expr) -> Expr:
    """A structural transpose for comparisons: ``(Aᵀ)ᵀ = A``."""
    return expr.arg if isinstance(expr, Transpose) else Transpose(expr)


def is_diagonal(expr: Expr) -> bool:
    if expr.is_scalar:
        return True
    if isinstance(expr, Symbol):
        return "diagonal" in expr.props
    if isinstance(expr, (Identity, Diag, Zero)):
        return True
    if isinstance(expr, (Add, Mul)):
        parts = expr.terms if isinstance(expr, Add) else expr.factors
        return all(is_diagonal(p) for p in parts)
    if isinstance(expr, (Inverse, Power, Transpose)):
        return is_diagonal(expr.arg)
    if isinstance(expr, Hadamard):
        return is_diagonal(expr.left) or is_diagonal(expr.right)
    return False


def properties_of(expr: Expr) -> frozenset:
    """Properties a defined variable inherits from its definition."""
    props = set()
    if not expr.is_scalar and is_square_shape(expr.shape):
        if is_diagonal(expr):
            props |= {"diagonal", "symmetric"}
        elif is_symmetric(expr):
            props.add("symmetric")
    return frozenset(props)
