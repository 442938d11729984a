"""Every differential rule and every Frobenius rearrangement, checked numerically.

Shapes are distinct and non-square wherever the operation allows, so a missing
transpose cannot hide; each differential is compared with a central difference of
the function itself along random directions.
"""
import numpy as np
import pytest
import sympy

from derive import expr as E
from derive.evaluate import evaluate
from derive.frobenius import MOVES, move_left
from derive.functions import ELEMENTWISE, u
from derive.rules import DIFFERENTIALS, differentiate
from derive.simplify import simplify

n2, n3, n4 = (sympy.Integer(k) for k in (2, 3, 4))
A = E.Symbol("A", (n3, n4))          # 3×4
B = E.Symbol("B", (n4, n2))          # 4×2
C = E.Symbol("C", (n3, n4))          # 3×4, same shape as A
X = E.Symbol("X", (n3, n3))          # square
Y = E.Symbol("Y", (n3, n3))          # square
a = E.Symbol("a", (n3, E.ONE))
b = E.Symbol("b", (n4, E.ONE))
alpha = E.Symbol("alpha")
P = E.Symbol("P", (n3, n4), frozenset({"positive"}))   # positive entries for log, ⊘


def point(rng, symbols):
    values = {}
    for s in symbols:
        shape = tuple(int(k) for k in s.shape)
        if "positive" in s.props:
            values[s.name] = np.abs(rng.normal(size=shape)) + 0.5
        elif s.shape[0] == s.shape[1] and not s.is_scalar:
            values[s.name] = np.eye(shape[0]) + 0.3 * rng.normal(size=shape)
        else:
            values[s.name] = rng.normal(size=shape)
    return values


def symbols_of(expr):
    return sorted({n for n in E.walk(expr) if isinstance(n, E.Symbol)}, key=lambda s: s.name)


def assert_differential_matches(f, name="F", seed=0):
    """ℓ = simplify(d f) equals the central difference of f along three directions."""
    rng = np.random.default_rng(seed)
    symbols = symbols_of(f)
    ell, _ = differentiate(f, lambda s: True)
    ell = simplify(ell)
    values = point(rng, symbols)
    for _ in range(3):
        direction = {s.name: rng.normal(size=values[s.name].shape) for s in symbols}
        h = 1e-6
        plus = evaluate(f, {k: v + h * direction[k] for k, v in values.items()})
        minus = evaluate(f, {k: v - h * direction[k] for k, v in values.items()})
        numeric = (plus - minus) / (2 * h)
        exact = evaluate(ell, values, direction)
        scale = max(np.linalg.norm(numeric), np.linalg.norm(exact), 1e-12)
        assert np.linalg.norm(numeric - exact) / scale < 1e-6, (name, numeric, exact)


CASES = {
    E.Add: E.Add((E.Mul((A, B)), E.Mul((C, B)))),
    E.Mul: E.Mul((A, B, E.Transpose(B))),
    E.Transpose: E.Mul((E.Transpose(A), C)),
    E.Inverse: E.Mul((E.Symbol("N", (n4, n3)), E.Inverse(X))),
    E.Power: E.Mul((E.Power(X, 3), A)),
    E.Hadamard: E.Hadamard(A, E.Hadamard(C, A)),
    E.HadamardDivide: E.HadamardDivide(A, P),
    E.Frobenius: E.Frobenius(A, E.Mul((C, B, E.Symbol("Q", (n2, n4))))),
    E.Trace: E.Trace(E.Mul((A, B, E.Symbol("R", (n2, n3))))),
    E.Det: E.Det(E.Mul((X, Y))),
    E.LogDet: E.LogDet(E.Mul((X, E.Transpose(X)))),
    E.Apply: E.Apply("tanh", E.Mul((A, b))),
    E.Diag: E.Mul((E.Diag(a), A)),
    E.DiagPart: E.Hadamard(E.DiagPart(E.Mul((X, Y))), a),
    E.Norm: E.Mul((E.Norm(E.Mul((A, B))), E.Norm(E.Mul((A, b))), A)),
    E.ElementPower: E.Add((E.Hadamard(E.ElementPower(C, 3), E.ElementPower(P, -2)),
                           E.Hadamard(E.ElementPower(P, 2), E.ElementPower(A, 1)))),
    E.Vec: E.Mul((E.Transpose(E.Vec(E.Mul((A, B)))), E.Vec(E.Hadamard(E.Mul((A, B)), E.Mul((C, B)))))),
    E.Kron: E.Frobenius(E.Kron(A, E.Mul((E.Transpose(B), E.Transpose(C)))),
                        E.Kron(E.Hadamard(A, C), E.Mul((E.Transpose(B), E.Transpose(A))))),
    E.Unvec: E.Mul((E.Unvec(E.Vec(E.Hadamard(A, C)), n4, n3), X)),
    E.KronBlockSum: E.KronBlockSum(E.Kron(C, E.Mul((X, X))), A),
    E.KronBlockFrobenius: E.KronBlockFrobenius(E.Kron(E.Hadamard(A, C), X), E.Mul((X, X))),
    E.Softmax: E.Mul((E.Transpose(E.Softmax(E.Mul((A, b)))), A)),
    E.SoftmaxRows: E.Mul((E.SoftmaxRows(E.Mul((A, B))), E.Transpose(B))),
    E.LogSumExp: E.Mul((E.LogSumExp(E.Mul((A, b))), B)),
    E.Unspecified: E.Add((E.Unspecified("f_1", E.Mul((A, b))),
                          E.Hadamard(E.Unspecified("g", E.Mul((A, b)), 1), E.Mul((C, b))))),
}


@pytest.mark.parametrize("node_type", list(CASES), ids=lambda t: t.__name__)
def test_differential_rule_numerically(node_type):
    assert_differential_matches(CASES[node_type], node_type.__name__)


def test_every_operation_has_a_rule_and_a_case():
    operations = {t for t in DIFFERENTIALS
                  if t not in (E.Number, E.Identity, E.Ones, E.Zero, E.Commutation)}
    assert operations == set(CASES)


def test_squared_norm_is_a_frobenius_product():
    """d‖A‖² = 2A:dA (no ‖A‖/‖A‖ to cancel), for a matrix and for a vector."""
    f = E.Add((E.Power(E.Norm(E.Mul((A, B))), 2), E.Power(E.Norm(b), 2)))
    assert_differential_matches(f, "squared norm")
    ell, _ = differentiate(E.Power(E.Norm(A), 2), lambda s: True)
    assert E.Norm not in {type(n) for n in E.walk(ell)}


def test_scalar_power_and_scalar_inverse():
    assert_differential_matches(E.Mul((E.Power(alpha, 3), E.Power(alpha, -2), A)), "scalar power")


SAMPLES = (-1.7, -0.6, -0.2, 0.3, 0.7, 1.9)   # both signs, away from 0 and from ±1


def in_domain(f, values):
    """Entries of ``values`` where ``f`` is defined and smooth (the check's own test)."""
    ok = np.ones(np.shape(values), dtype=bool)
    if f.domain is not None:
        ok &= f.domain.ok(np.asarray(values))
    if f.kink is not None:
        ok &= np.abs(np.asarray(values) - f.kink) > 0.1
    return ok


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_elementwise_differential_numerically(name):
    """Each row's differential against a central difference, at both signs where defined."""
    f = ELEMENTWISE[name]
    U = E.Symbol("U", (n3, n4))
    rng = np.random.default_rng(1)
    values = rng.choice([t for t in SAMPLES if in_domain(f, t)], size=(3, 4)) \
        + 0.05 * rng.uniform(size=(3, 4))
    expr = E.Apply(name, U)
    ell = simplify(differentiate(expr, lambda s: True)[0])
    for _ in range(3):
        direction = rng.normal(size=(3, 4))
        h = 1e-6
        numeric = (evaluate(expr, {"U": values + h * direction})
                   - evaluate(expr, {"U": values - h * direction})) / (2 * h)
        exact = evaluate(ell, {"U": values}, {"U": direction})
        assert np.allclose(numeric, exact, rtol=1e-6, atol=1e-8), (name, numeric, exact)


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_elementwise_differential_agrees_with_sympy(name):
    """The table's f′, written with ans = f(u), is sympy's derivative of the definition."""
    f = ELEMENTWISE[name]
    r = sympy.Symbol("r", real=True)
    x, y, dx = E.Symbol("x"), E.Symbol("y"), E.Symbol("dx")
    ell = simplify(f.differential(x, y, dx))
    derivative = sympy.diff(f.definition(r), r)
    for t in [t for t in SAMPLES if in_domain(f, t)]:
        value = float(f.definition(r).subs(r, t))
        got = evaluate(ell, {"x": np.array([[t]]), "y": np.array([[value]]), "dx": np.array([[1.0]])})
        want = float(derivative.subs(r, t).subs(sympy.DiracDelta(t), 0))
        assert got[0, 0] == pytest.approx(want, rel=1e-12, abs=1e-300), (name, t)


def test_kinks_are_refused_by_the_evaluator():
    """At a kink the evaluator raises DomainError, which makes the check redraw its point."""
    from derive.evaluate import DomainError
    for name, f in ELEMENTWISE.items():
        if f.kink is not None:
            with pytest.raises(DomainError):
                evaluate(E.Apply(name, a), {"a": np.array([[1.0], [f.kink], [-1.0]])})


def test_rule_uses_the_defined_name():
    s, v = E.Symbol("s", (n3, E.ONE)), E.Symbol("v", (n3, E.ONE))
    ell, rules = differentiate(E.Apply("sigma", v), lambda sym: True, s)
    from derive.printer import text
    assert text(simplify(ell)) == "(s − s ∘ s) ∘ dv"
    assert rules == ("dσ(u) = (σ − σ∘σ)∘du",)


# ---------------------------------------------------------------- Frobenius moves

K = E.Symbol("K", (n2, n3))
G_FOR = {  # a coefficient G and a linear form ℓ in dA (or da), per table entry
    E.Add: (E.Symbol("G", (n3, n2)), E.Add((E.Mul((E.Differential(A), B)), E.Mul((C, E.Transpose(C), E.Differential(A), B))))),
    E.Mul: (E.Symbol("G", (n2, n2)), E.Mul((K, E.Differential(A), B))),
    E.Transpose: (E.Symbol("G", (n4, n3)), E.Transpose(E.Differential(A))),
    E.Hadamard: (E.Symbol("G", (n3, n4)), E.Hadamard(C, E.Differential(A))),
    E.HadamardDivide: (E.Symbol("G", (n3, n4)), E.HadamardDivide(E.Differential(A), P)),
    E.Frobenius: (alpha, E.Frobenius(E.Differential(A), C)),
    E.Trace: (alpha, E.Trace(E.Mul((E.Differential(A), E.Symbol("M", (n4, n3)))))),
    E.Diag: (E.Symbol("G", (n3, n3)), E.Diag(E.Differential(a))),
    E.DiagPart: (E.Symbol("g", (n3, E.ONE)), E.DiagPart(E.Mul((E.Differential(A), E.Symbol("M", (n4, n3)))))),
    E.Vec: (E.Symbol("g", (n3 * n2, E.ONE)), E.Vec(E.Mul((E.Differential(A), B)))),
    E.Unvec: (E.Symbol("G", (n4, n3)), E.Unvec(E.Vec(E.Hadamard(E.Differential(A), C)), n4, n3)),
    E.KronBlockSum: (E.Symbol("G", (n3, n3)),
                     E.Add((E.KronBlockSum(E.Kron(C, E.Differential(X)), A),
                            E.KronBlockSum(E.Kron(C, X), E.Differential(A))))),
    E.KronBlockFrobenius: (E.Symbol("G", (n3, n4)),
                           E.Add((E.KronBlockFrobenius(E.Kron(E.Differential(A), X), X),
                                  E.KronBlockFrobenius(E.Kron(C, X), E.Differential(X))))),
    E.Kron: (E.Symbol("G", (n3 * n2, n4 * n3)),
             E.Add((E.Kron(E.Differential(A), K),
                    E.Kron(K, E.Mul((E.Differential(A), B, E.Transpose(B))))))),
}


@pytest.mark.parametrize("node_type", list(G_FOR), ids=lambda t: t.__name__)
def test_frobenius_move_numerically(node_type):
    """G : ℓ equals Σ G′ : dY after moving every coefficient left."""
    g, ell = G_FOR[node_type]
    rng = np.random.default_rng(1)
    symbols = symbols_of(E.Add((E.Frobenius(g, ell),)))
    values = point(rng, symbols)
    direction = {s.name: rng.normal(size=values[s.name].shape) for s in symbols}
    before = evaluate(E.Frobenius(g, ell), values, direction)
    pieces = move_left(g, ell)
    after = sum(evaluate(E.Frobenius(G, E.Differential(Y)), values, direction) for G, Y, _ in pieces)
    assert after == pytest.approx(before, rel=1e-12)
    assert all(isinstance(Y, E.Symbol) for _, Y, _ in pieces)


def test_every_move_has_a_case():
    assert set(MOVES) == set(G_FOR)


def test_scalar_differential_and_scalar_groups():
    """G : M dα = (G:M) dα, and xᵀy inside a product acts as a scalar."""
    x, y = E.Symbol("x", (n4, E.ONE)), E.Symbol("y", (n4, E.ONE))
    g = E.Symbol("G", (n3, n4))
    for ell in (E.Mul((A, E.Differential(alpha))),
                E.Mul((E.Transpose(x), E.Differential(y), A))):
        rng = np.random.default_rng(2)
        symbols = symbols_of(E.Frobenius(g, ell))
        values = point(rng, symbols)
        direction = {s.name: rng.normal(size=values[s.name].shape) for s in symbols}
        before = evaluate(E.Frobenius(g, ell), values, direction)
        after = sum(evaluate(E.Frobenius(G, E.Differential(Y)), values, direction)
                    for G, Y, _ in move_left(g, ell))
        assert after == pytest.approx(before, rel=1e-12)


# ---------------------------------------------------------------- Diag rewrites for aliases

def test_alias_rewrites_keep_the_value():
    """a∘b = Diag(a)b, Diag(a ± b), Diag(αa), Diag(a∘b), Diag(1) = I: same value after."""
    from derive.diagonal import REWRITES, rewrite_with_aliases
    s, t = E.Symbol("s", (n3, E.ONE)), E.Symbol("t", (n3, E.ONE))
    S = E.Symbol("S", (n3, n3), frozenset({"diagonal", "symmetric"}))
    dv = E.Differential(E.Symbol("v", (n3, E.ONE)))
    ell = E.Hadamard(E.Add((E.Ones(n3), E.Hadamard(s, t), E.Mul((E.Number(-2), s)))), dv)
    rewritten, rules = rewrite_with_aliases(ell, {E.Diag(s): S})
    assert set(rules) >= {"a∘b = Diag(a) b", "Diag(a ± b) = Diag(a) ± Diag(b)",
                          "Diag(αa) = α Diag(a)", "Diag(a∘b) = Diag(a) Diag(b)", "Diag(1) = I",
                          "Diag(s) = S"}
    assert set(REWRITES) == {E.Hadamard, E.Diag}
    rng = np.random.default_rng(4)
    values = {"s": rng.normal(size=(3, 1)), "t": rng.normal(size=(3, 1))}
    values["S"] = np.diagflat(values["s"])
    direction = {"v": rng.normal(size=(3, 1))}
    assert np.allclose(evaluate(rewritten, values, direction), evaluate(ell, values, direction))
