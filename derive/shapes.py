"""Sizes being inferred: a union-find over constants, user size symbols and unknowns.

While a chain is read, every size is a variable. Declared sizes are constants (``5``)
or rigid symbols (``m``): a rigid symbol equals only itself, so ``m`` never becomes
``5`` or ``n`` behind the user's back. Sizes from naming conventions, ``1`` and ``I``
are fresh and take whatever they are unified with. Once every line is read, the
fresh sizes still unknown become new symbols (``n_1``, ``n_2``, …).
"""
from __future__ import annotations

import sympy

ONE = sympy.Integer(1)


class Sizes:
    """The size variables of one chain; a shape is a pair of variable ids."""

    def __init__(self) -> None:
        self._parent: list[int] = []
        self._value: list = []        # meaningful at roots: Integer, Symbol or None
        self._symbols: dict[str, int] = {}
        self._one = self.constant(1)

    def _new(self, value) -> int:
        self._parent.append(len(self._parent))
        self._value.append(value)
        return len(self._parent) - 1

    def fresh(self) -> int:
        return self._new(None)

    def constant(self, n: int) -> int:
        return self._new(sympy.Integer(n))

    def rigid(self, value: sympy.Expr) -> int:
        """A size fixed at ``value`` (a finished chain's: ``5``, ``m``, ``m·n``), which unifies
        only with what equals it."""
        return self._new(value)

    def symbol(self, name: str) -> int:
        """The variable of the user size symbol ``name`` (one per name)."""
        if name not in self._symbols:
            self._symbols[name] = self._new(sympy.Symbol(name))
        return self._symbols[name]

    def product(self, a: int, b: int) -> int | None:
        """The size ``a·b`` (rigid, as a symbol is), or None while either is unknown."""
        va, vb = self.value(a), self.value(b)
        if va is None or vb is None:
            return None
        return self._new(sympy.Mul(va, vb))

    @property
    def symbol_names(self) -> set:
        return set(self._symbols)

    def scalar(self) -> tuple:
        return (self._one, self._one)

    def find(self, i: int) -> int:
        root = i
        while self._parent[root] != root:
            root = self._parent[root]
        while self._parent[i] != root:
            self._parent[i], i = root, self._parent[i]
        return root

    def value(self, i: int):
        """The size as known now: a SymPy Integer or Symbol, or None if still unknown."""
        return self._value[self.find(i)]

    def unify(self, a: int, b: int) -> bool:
        """Make ``a`` and ``b`` the same size; False (and no change) if they differ."""
        a, b = self.find(a), self.find(b)
        if a == b:
            return True
        va, vb = self._value[a], self._value[b]
        if va is not None and vb is not None and va != vb:
            return False
        if va is None:
            self._parent[a] = b
        else:
            self._parent[b] = a
        return True

    def unify_shapes(self, s: tuple, t: tuple) -> bool:
        """Both sizes equal, or nothing bound at all."""
        if not self.can_unify(s[0], t[0]) or not self.can_unify(s[1], t[1]):
            return False
        return self.unify(s[0], t[0]) and self.unify(s[1], t[1])

    def can_unify(self, a: int, b: int) -> bool:
        va, vb = self.value(a), self.value(b)
        return self.find(a) == self.find(b) or va is None or vb is None or va == vb

    def is_one(self, i: int) -> bool:
        return self.value(i) == ONE

    def is_scalar(self, shape: tuple) -> bool:
        """Definitely 1×1 now (an unknown size might still become anything)."""
        return self.is_one(shape[0]) and self.is_one(shape[1])

    def show(self, i: int) -> str:
        value = self.value(i)
        return "?" if value is None else str(value)

    def show_shape(self, shape: tuple) -> str:
        """``a scalar``, ``a vector of length 5``, ``5×4`` (``?`` for a size not known yet)."""
        if self.is_scalar(shape):
            return "a scalar"
        if self.is_one(shape[1]):
            return f"a vector of length {self.show(shape[0])}"
        return f"{self.show(shape[0])}×{self.show(shape[1])}"

    def name_unknowns(self, taken: set) -> None:
        """Turn each still-unknown size into a new symbol ``n_1``, ``n_2``, … not in ``taken``."""
        counter = 0
        for i in range(len(self._parent)):
            root = self.find(i)
            if self._value[root] is None:
                counter += 1
                while f"n_{counter}" in taken:
                    counter += 1
                self._value[root] = sympy.Symbol(f"n_{counter}")

    def size(self, i: int) -> sympy.Expr:
        """The final size (after ``name_unknowns``)."""
        return self.value(i)

    def shape(self, shape: tuple) -> tuple:
        return (self.size(shape[0]), self.size(shape[1]))
