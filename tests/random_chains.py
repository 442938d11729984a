"""Random chains in the Core grammar, for differential testing of the whole engine.

Each chain is built from expression nodes of compatible shapes, so every one is
valid; derive's numeric check must then pass on it — a failure means a rule, a
rearrangement or a simplification is wrong.
"""
from __future__ import annotations

import random

import sympy

from derive import expr as E
from derive.chain import Chain, Definition, Input

SIZES = (2, 3, 4)
N = {k: sympy.Integer(k) for k in SIZES}
FUNCTIONS = ("exp", "tanh", "sigma")


def _inputs():
    """One matrix of every shape, one vector of every length, one scalar."""
    out = {}
    for r in SIZES:
        out[f"x{r}"] = E.Symbol(f"x{r}", (N[r], E.ONE))
        for c in SIZES:
            out[f"M{r}{c}"] = E.Symbol(f"M{r}{c}", (N[r], N[c]))
    out["alpha"] = E.Symbol("alpha")
    return out


class Generator:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.symbols = list(_inputs().values())
        self.alpha = self.symbols[-1]

    def leaf(self, shape):
        choices = [s for s in self.symbols if s.shape == shape]
        if not choices:                  # a row: the transpose of a vector
            return E.Transpose(self.leaf(shape[::-1]))
        return self.rng.choice(choices)

    def matrix(self, shape, depth):
        """A random expression of ``shape``."""
        if depth <= 0 or self.rng.random() < 0.25:
            return self.leaf(shape)
        r, c = shape
        pick = self.rng.randrange(12)
        if pick == 0:
            return E.Add((self.matrix(shape, depth - 1), E.neg(self.matrix(shape, depth - 1))))
        if pick == 1:
            k = N[self.rng.choice(SIZES)]
            return E.Mul((self.matrix((r, k), depth - 1), self.matrix((k, c), depth - 1)))
        if pick == 2:
            return E.Transpose(self.matrix((c, r), depth - 1))
        if pick == 3:
            return E.Hadamard(self.matrix(shape, depth - 1), self.matrix(shape, depth - 1))
        if pick == 4:
            return E.Apply(self.rng.choice(FUNCTIONS), self.matrix(shape, depth - 1))
        if pick == 5:
            return E.Mul((E.Number(sympy.Rational(self.rng.choice((1, -3, 5)), 2)),
                          self.matrix(shape, depth - 1)))
        if pick == 6 and r == c and r != E.ONE:
            return E.Power(self.matrix(shape, depth - 1), self.rng.choice((2, 3)))
        if pick == 7 and r == c and r != E.ONE:
            return E.Diag(E.Apply("sigma", self.matrix((r, E.ONE), depth - 1)))
        if pick == 8 and c == E.ONE and r != E.ONE:
            return E.DiagPart(self.matrix((r, r), depth - 1))
        if pick == 9 and r == c:
            return E.Inverse(self.near_identity(r, depth - 1))
        if pick == 10:
            return E.Mul((self.matrix(shape, depth - 1), E.Power(self.positive_scalar(depth - 1), -1)))
        if pick == 11:
            return E.Mul((E.Det(self.near_identity(N[2], depth - 1)), self.matrix(shape, depth - 1)))
        return self.leaf(shape)

    def near_identity(self, n, depth):
        """``I + tanh(M)/10``: invertible, with a positive determinant."""
        return E.Add((E.Identity(n), E.Mul((E.Number(sympy.Rational(1, 10)),
                                             E.Apply("tanh", self.matrix((n, n), depth))))))

    def positive_scalar(self, depth):
        """``1 + v:v``, with the ones vector's transpose in front sometimes."""
        n = N[self.rng.choice(SIZES)]
        v = self.matrix((n, E.ONE), depth)
        if self.rng.random() < 0.5:
            return E.Add((E.Number(1), E.Frobenius(v, v)))
        return E.Add((E.Number(2), E.Mul((E.Transpose(E.Ones(n)), E.Apply("sigma", v)))))

    def scalar(self, depth):
        pick = self.rng.randrange(5)
        if pick == 0:
            n = N[self.rng.choice(SIZES)]
            return E.Trace(self.matrix((n, n), depth))
        if pick == 1:
            shape = (N[self.rng.choice(SIZES)], N[self.rng.choice(SIZES)])
            return E.Frobenius(self.matrix(shape, depth), self.matrix(shape, depth))
        if pick == 2:
            n = N[self.rng.choice(SIZES)]
            shifted = E.Add((E.Identity(n), E.Mul((E.Number(sympy.Rational(1, 10)),
                                                    E.Apply("tanh", self.matrix((n, n), depth))))))
            return E.LogDet(shifted)
        if pick == 3:
            n = N[self.rng.choice(SIZES)]
            return E.Mul((E.Transpose(self.matrix((n, E.ONE), depth)), self.matrix((n, E.ONE), depth)))
        return E.Mul((self.alpha, E.Frobenius(self.matrix((N[2], N[3]), depth),
                                                    self.leaf((N[2], N[3])))))

    def define(self, definitions, name, expr):
        symbol = E.Symbol(name, expr.shape, E.properties_of(expr))
        definitions.append(Definition(symbol, expr, 100 + len(definitions)))
        self.symbols.append(symbol)

    def chain(self) -> Chain:
        """One or two intermediate definitions, then a scalar objective that may use them."""
        inputs = tuple(Input(s, True, i + 1) for i, s in enumerate(self.symbols))
        definitions = []
        for k in range(self.rng.randrange(1, 4)):
            shape = self.rng.choice([(N[self.rng.choice(SIZES)], N[self.rng.choice(SIZES)]),
                                     (N[self.rng.choice(SIZES)], E.ONE), E.SCALAR])
            expr = self.matrix(shape, 2) if shape != E.SCALAR else self.positive_scalar(1)
            if shape[1] == E.ONE and shape[0] != E.ONE and self.rng.random() < 0.5:
                expr = E.Apply(self.rng.choice(("sigma", "tanh")), expr)
            self.define(definitions, f"V{k}", expr)
            if shape[1] == E.ONE and shape[0] != E.ONE and self.rng.random() < 0.5:
                self.define(definitions, f"D{k}", E.Diag(self.symbols[-1]))    # an alias
        objective = self.scalar(2)
        definitions.append(Definition(E.Symbol("L"), objective, 200))
        used = {n.name for d in definitions for n in E.walk(d.expr) if isinstance(n, E.Symbol)}
        wrt = [s.symbol for s in inputs if s.symbol.name in used]
        wrt = self.rng.sample(wrt, k=min(len(wrt), self.rng.randrange(1, 4)))
        return Chain(inputs, tuple(definitions), tuple(wrt))


if __name__ == "__main__":        # a longer run: python tests/random_chains.py 5000
    import sys

    from derive.check import check
    from derive.expr import ShapeError
    from derive.sweep import build

    failures = 0
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    for seed in range(count):
        try:
            chain = Generator(seed).chain()
        except ShapeError:
            continue
        if not check(build(chain)).ok:
            failures += 1
            print("seed", seed, "fails")
    print(f"{count} seeds, {failures} failures")
