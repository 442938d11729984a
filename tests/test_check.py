"""The numeric check on hand-built derivations: right ones pass, a wrong line fails alone."""
import dataclasses

import numpy as np
import pytest
import sympy

from derive import expr as E
from derive.chain import Chain, Definition, Input
from derive.check import assign_sizes, check, draw_input, draw_point, _domain_failure
from derive.derivation import Derivation, DefinitionLine, Gradient, SubstitutionLine
from derive.errors import DeriveError
from derive.evaluate import DomainError

m, n, k = sympy.symbols("m n k")
ONE = sympy.Integer(1)
HALF = sympy.Rational(1, 2)


def d(symbol):
    return E.Differential(symbol)


def minus(a, b):
    return E.Add((a, E.neg(b)))


def sym(name, rows, cols=ONE, props=()):
    return E.Symbol(name, (rows, cols), props=frozenset(props))


# ---------------------------------------------------------------- the seed, by hand

W, x, y = sym("W", m, n), sym("x", n), sym("y", m)
v, s, S, Eo = sym("v", m), sym("s", m), sym("S", m, m), E.Symbol("E")
S_minus_S2 = minus(S, E.Power(S, 2))
s_minus_y = minus(s, y)


def seed_chain(alias=True):
    definitions = [Definition(v, E.Mul((W, x)), 4), Definition(s, E.Apply("sigma", v), 5)]
    if alias:
        definitions.append(Definition(S, E.Diag(s), 6))
    definitions.append(Definition(Eo, E.scale(HALF, E.Frobenius(s_minus_y, s_minus_y)), 7))
    return Chain(inputs=(Input(W, True, 1), Input(x, True, 2), Input(y, True, 3)),
                 definitions=tuple(definitions), wrt=(W,), wrt_line=8)


def seed_derivation(ds=None, gradient=None, substitutions=None):
    ds = ds or E.Hadamard(minus(s, E.Hadamard(s, s)), d(v))
    lines = (
        DefinitionLine(v, E.Mul((W, x)), v, E.Mul((d(W), x)), 4),
        DefinitionLine(s, E.Apply("sigma", v), s, ds, 5),
        DefinitionLine(S, E.Diag(s), s, E.Mul((S_minus_S2, d(v))), 6, is_alias=True),
        DefinitionLine(Eo, seed_chain().definitions[-1].expr, Eo, E.Frobenius(s_minus_y, d(s)), 7),
    )
    G = E.Mul((S_minus_S2, s_minus_y, E.Transpose(x)))
    substitutions = substitutions or (
        SubstitutionLine(E.Frobenius(s_minus_y, d(s))),
        SubstitutionLine(E.Frobenius(s_minus_y, E.Mul((S_minus_S2, d(v)))), s),
        SubstitutionLine(E.Frobenius(E.Mul((S_minus_S2, s_minus_y)), E.Mul((d(W), x))), v),
        SubstitutionLine(E.Frobenius(G, d(W))),
    )
    return Derivation(seed_chain(), lines, substitutions, (Gradient(W, gradient or G),))


def failing(result):
    return [(v.block, v.index) for v in result.failures]


def test_seed_derivation_passes():
    result = check(seed_derivation())
    assert result.ok, result.failures
    assert [v.block for v in result.verdicts] == ["definition"] * 4 + ["substitution"] * 4 + ["gradient"]
    assert [v.line for v in result.verdicts if v.block == "definition"] == [4, 5, 6, 7]
    assert result.worst < 1e-7
    assert (result.seed, result.tolerance, result.identity_tolerance, result.directions) == \
        (0, 1e-8, 1e-9, 3)
    assert result.sizes == {"m": 2, "n": 3}


def test_hadamard_form_without_alias_passes():
    hadamard = E.Mul((E.Hadamard(minus(s, E.Hadamard(s, s)), s_minus_y), E.Transpose(x)))
    base = seed_derivation(gradient=hadamard)
    derivation = dataclasses.replace(
        base, chain=seed_chain(alias=False),
        definitions=tuple(l for l in base.definitions if not l.is_alias),
        substitutions=(base.substitutions[0], SubstitutionLine(E.Frobenius(hadamard, d(W)))))
    assert check(derivation).ok


def test_wrong_sigmoid_rule_fails_on_that_definition_line():
    """s∘s instead of s − s∘s, with substitution lines and gradient derived from it."""
    wrong = E.Hadamard(E.Hadamard(s, s), d(v))
    S2 = E.Power(S, 2)
    G = E.Mul((S2, s_minus_y, E.Transpose(x)))
    derivation = seed_derivation(ds=wrong, gradient=G, substitutions=(
        SubstitutionLine(E.Frobenius(s_minus_y, d(s))),
        SubstitutionLine(E.Frobenius(s_minus_y, E.Mul((S2, d(v)))), s),
        SubstitutionLine(E.Frobenius(G, d(W))),
    ))
    result = check(derivation)
    assert [f for f in failing(result) if f[0] != "gradient"] == [("definition", 1)]
    assert ("gradient", 0) in failing(result)
    bad = result.failures[0]
    assert bad.line == 5 and bad.relative_error > 1e-2 and "ds" in bad.note


def test_wrong_substitution_line_fails_alone():
    base = seed_derivation()
    subs = list(base.substitutions)
    subs[2] = SubstitutionLine(E.Frobenius(E.Mul((S, s_minus_y)), E.Mul((d(W), x))), v)
    result = check(dataclasses.replace(base, substitutions=tuple(subs)))
    assert failing(result) == [("substitution", 2)]


def test_line_that_forgets_a_term_fails():
    """dv = 0 (no dW x) must fail: W is moved even when the line does not show dW."""
    base = seed_derivation()
    lines = list(base.definitions)
    lines[0] = dataclasses.replace(lines[0], differential=E.Zero((m, ONE)))
    result = check(dataclasses.replace(base, definitions=tuple(lines)))
    assert ("definition", 0) in failing(result)


# ---------------------------------------------------------------- xᵀAx: transposes, symmetry

A_plain = sym("A", n, n)
A_sym = sym("A", n, n, props=("symmetric",))


def quadratic(A, dE, G):
    """E = xᵀAx wrt x, with the given definition line and gradient."""
    xv = sym("x", n)
    q = E.Mul((E.Transpose(xv), A, xv))
    chain = Chain(inputs=(Input(A, True, 1), Input(xv, True, 2)),
                  definitions=(Definition(Eo, q, 3),), wrt=(xv,), wrt_line=4)
    return Derivation(chain, (DefinitionLine(Eo, q, Eo, dE, 3),),
                      (SubstitutionLine(dE), SubstitutionLine(E.Frobenius(G, d(xv)))),
                      (Gradient(xv, G),))


X_ = sym("x", n)
FULL = E.Add((E.Mul((E.Transpose(d(X_)), A_plain, X_)), E.Mul((E.Transpose(X_), A_plain, d(X_)))))
HALF_LINE = E.scale(2, E.Mul((E.Transpose(X_), A_plain, d(X_))))


def test_quadratic_form_passes_with_both_terms():
    G = E.Mul((E.Add((A_plain, E.Transpose(A_plain))), X_))
    assert check(quadratic(A_plain, FULL, G)).ok


def test_missing_transpose_in_gradient_fails_only_the_gradient():
    G_wrong = E.Mul((E.Add((A_plain, A_plain)), X_))
    result = check(quadratic(A_plain, FULL, G_wrong))
    assert failing(result) == [("substitution", 1), ("gradient", 0)]
    assert result.failures[-1].relative_error > 0.1


def test_symmetric_shortcut_needs_the_declared_property():
    G = E.scale(2, E.Mul((A_plain, X_)))
    assert ("definition", 0) in failing(check(quadratic(A_plain, HALF_LINE, G)))
    line = E.scale(2, E.Mul((E.Transpose(X_), A_sym, d(X_))))
    assert check(quadratic(A_sym, line, E.scale(2, E.Mul((A_sym, X_))))).ok


# ---------------------------------------------------------------- sizes and points


def test_symbolic_sizes_get_distinct_values():
    P, Q = sym("P", m, n), sym("Q", n, k)
    chain = Chain(inputs=(Input(P, True, 1), Input(Q, True, 2)), definitions=(), wrt=())
    sizes = assign_sizes(chain)
    assert sorted(sizes.values()) == [2, 3, 4]
    assert len(set(sizes.values())) == 3


def test_sizes_avoid_literal_sizes():
    P, Q = sym("P", sympy.Integer(2), n), sym("Q", n, m)
    chain = Chain(inputs=(Input(P, True, 1), Input(Q, True, 2)), definitions=(), wrt=())
    assert set(assign_sizes(chain).values()) == {3, 4}


@pytest.mark.parametrize("strategy", ["normal", "abs", "shifted"])
def test_properties_are_honoured(strategy):
    rng = np.random.default_rng(3)
    sizes = {n: 4}
    spd = draw_input(sym("X", n, n, ("spd",)), sizes, rng, strategy)
    assert np.allclose(spd, spd.T) and np.all(np.linalg.eigvalsh(spd) > 0)
    symmetric = draw_input(sym("X", n, n, ("symmetric",)), sizes, rng, strategy)
    assert np.allclose(symmetric, symmetric.T)
    assert np.all(draw_input(sym("p", n, ONE, ("positive",)), sizes, rng, strategy) > 0)
    assert np.all(draw_input(E.Symbol("lam", props=frozenset({"positive"})), sizes, rng, strategy) > 0)
    invertible = draw_input(sym("X", n, n, ("invertible",)), sizes, rng, strategy)
    assert abs(np.linalg.det(invertible)) > 1e-3


def logdet_derivation(X):
    chain = Chain(inputs=(Input(X, True, 1),), definitions=(Definition(Eo, E.LogDet(X), 2),),
                  wrt=(X,), wrt_line=3)
    G = E.Transpose(E.Inverse(X))
    return Derivation(chain, (DefinitionLine(Eo, E.LogDet(X), Eo, E.Frobenius(G, d(X)), 2),),
                      (SubstitutionLine(E.Frobenius(G, d(X))),), (Gradient(X, G),))


def test_spd_logdet_passes_at_the_first_point():
    X = sym("X", n, n, ("spd",))
    result = check(logdet_derivation(X))
    assert result.ok and result.sizes == {"n": 2}
    point = draw_point(logdet_derivation(X).chain, {n: 2}, np.random.default_rng(0))
    assert np.all(np.linalg.eigvalsh(point["X"]) > 0)


def test_logdet_of_an_undeclared_matrix_redraws_until_the_determinant_is_positive():
    assert check(logdet_derivation(sym("X", n, n))).ok


def log_derivation(argument):
    """l = log(argument); E = 1 : l, wrt x."""
    xv, l = sym("x", n), sym("l", n)
    chain = Chain(inputs=(Input(xv, True, 1),),
                  definitions=(Definition(l, E.Apply("log", argument), 2),
                               Definition(Eo, E.Frobenius(E.Ones(n), l), 3)), wrt=(xv,))
    dl = E.HadamardDivide(E.Differential(xv) if argument == xv else
                          E.Hadamard(E.scale(-2, xv), d(xv)), argument)
    G = E.HadamardDivide(E.Ones(n), xv) if argument == xv else E.HadamardDivide(
        E.scale(2, E.Ones(n)), xv)
    return Derivation(chain, (DefinitionLine(l, E.Apply("log", argument), l, dl, 2),
                              DefinitionLine(Eo, chain.definitions[1].expr, Eo,
                                             E.Frobenius(E.Ones(n), d(l)), 3)),
                      (SubstitutionLine(E.Frobenius(E.Ones(n), d(l))),
                       SubstitutionLine(E.Frobenius(G, d(xv)))), (Gradient(xv, G),))


@pytest.mark.parametrize("seed", range(5))
def test_log_of_a_vector_redraws_to_positive_entries(seed):
    assert check(log_derivation(sym("x", n)), seed=seed).ok


def test_log_outside_its_domain_everywhere_is_an_input_error_naming_the_line():
    xv = sym("x", n)
    with pytest.raises(DeriveError) as info:
        check(log_derivation(E.neg(E.Hadamard(xv, xv))))
    assert info.value.exit_code == 2
    assert info.value.line == 2
    assert "log on line 2 needs positive entries" in info.value.message


def test_domain_failure_on_an_input_suggests_a_property():
    X = sym("X", n, n)
    chain = logdet_derivation(X).chain
    error = DomainError("log det", "a positive determinant", X)
    error.definition = chain.definitions[0]
    message = _domain_failure(chain, error).message
    assert message == "log det on line 2 needs a positive determinant: declare X : n x n spd"


# ---------------------------------------------------------------- several wrt, scalars


def two_layer(G1=None):
    W1, W2, xv, yv = sym("W1", m, n), sym("W2", k, m), sym("x", n), sym("y", k)
    a, h, u = sym("a", m), sym("h", m), sym("u", k)
    u_y = minus(u, yv)
    defs = (Definition(a, E.Mul((W1, xv)), 5), Definition(h, E.Apply("tanh", a), 6),
            Definition(u, E.Mul((W2, h)), 7),
            Definition(Eo, E.scale(HALF, E.Frobenius(u_y, u_y)), 8))
    chain = Chain(inputs=tuple(Input(z, True, i) for i, z in enumerate((W1, W2, xv, yv), 1)),
                  definitions=defs, wrt=(W1, W2), wrt_line=9)
    dh = E.Hadamard(minus(E.Ones(m), E.Hadamard(h, h)), d(a))
    lines = (DefinitionLine(a, defs[0].expr, a, E.Mul((d(W1), xv)), 5),
             DefinitionLine(h, defs[1].expr, h, dh, 6),
             DefinitionLine(u, defs[2].expr, u, E.Add((E.Mul((d(W2), h)), E.Mul((W2, d(h))))), 7),
             DefinitionLine(Eo, defs[3].expr, Eo, E.Frobenius(u_y, d(u)), 8))
    G2 = E.Mul((u_y, E.Transpose(h)))
    G1 = G1 or E.Mul((E.Hadamard(minus(E.Ones(m), E.Hadamard(h, h)),
                                 E.Mul((E.Transpose(W2), u_y))), E.Transpose(xv)))
    subs = (SubstitutionLine(E.Frobenius(u_y, d(u))),
            SubstitutionLine(E.Add((E.Frobenius(G1, d(W1)), E.Frobenius(G2, d(W2))))))
    return Derivation(chain, lines, subs, (Gradient(W1, G1), Gradient(W2, G2)))


def test_two_wrt_pass_jointly():
    result = check(two_layer())
    assert result.ok
    assert len(set(result.sizes.values())) == 3


def test_wrong_gradient_is_localised_to_its_variable():
    W2, xv, yv, u = sym("W2", k, m), sym("x", n), sym("y", k), sym("u", k)
    wrong = E.Mul((E.Transpose(W2), minus(u, yv), E.Transpose(xv)))   # forgot 1 − h∘h
    result = check(two_layer(G1=wrong))
    assert ("gradient", 0) in failing(result) and ("gradient", 1) not in failing(result)
    assert "∂E/∂W1 alone" in result.failures[-1].note


def test_scalar_wrt():
    lam, xv = E.Symbol("lam", props=frozenset({"positive"})), sym("x", n)
    expr = E.Mul((lam, E.Frobenius(xv, xv)))
    chain = Chain(inputs=(Input(lam, True, 1), Input(xv, True, 2)),
                  definitions=(Definition(Eo, expr, 3),), wrt=(lam,))
    line = E.Mul((d(lam), E.Frobenius(xv, xv)))
    G = E.Frobenius(xv, xv)
    derivation = Derivation(chain, (DefinitionLine(Eo, expr, Eo, line, 3),),
                            (SubstitutionLine(line), SubstitutionLine(E.Mul((G, d(lam))))),
                            (Gradient(lam, G),))
    assert check(derivation).ok


def test_seed_changes_the_point_not_the_verdict():
    for seed in (1, 2, 42):
        result = check(seed_derivation(), seed=seed)
        assert result.ok and result.seed == seed


def test_more_directions():
    assert check(seed_derivation(), directions=5).directions == 5


def test_a_gradient_that_is_truly_zero_is_not_failed_by_rounding_noise():
    """x:(x/(x:x)) = 1: every line is 0 up to rounding; the noise floor must not fail it."""
    from derive.api import derive
    derivation = derive("x : 3\nE = x:x / (x:x)\nwrt x")
    assert derivation.check.ok, derivation.check.failures


def test_the_noise_floor_does_not_hide_a_small_wrong_term():
    """A wrong gradient of modest size still fails although the objective is large."""
    from derive.api import derive
    import dataclasses
    from derive import expr as E
    derivation = derive("x : 3\nc : scalar\nE = 1000000 c + x'x\nwrt x", check=False)
    g = derivation.gradients[0]
    wrong = dataclasses.replace(g, expr=E.Mul((E.Number(3), E.Symbol("x", g.wrt.shape))),
                                expanded=None)
    broken = dataclasses.replace(derivation, gradients=(wrong,))
    from derive.check import check
    assert not check(broken).ok


# ---------------------------------------------------------------- right both ways (the attacks)


def deep_tanh(layers, width, f="tanh", tail=""):
    """h_l = f(W_l h_{l−1}); E = ½‖h_L − y‖² (+ tail), wrt every W_l."""
    lines = [f"x : {width}", f"y : {width}"] + [f"W{l} : {width}x{width}"
                                              for l in range(1, layers + 1)]
    previous = "x"
    for l in range(1, layers + 1):
        lines += [f"a{l} = W{l} {previous}", f"h{l} = {f}(a{l})"]
        previous = f"h{l}"
    lines += [f"E = 1/2 ({previous} - y):({previous} - y){tail}",
              "wrt " + ", ".join(f"W{l}" for l in range(1, layers + 1))]
    return "\n".join(lines) + "\n"


def backprop_closed_form(values, layers):
    """∂E/∂W_l of the deep tanh net by hand-written backpropagation (plain NumPy)."""
    h = [values["x"]]
    for l in range(1, layers + 1):
        h.append(np.tanh(values[f"W{l}"] @ h[-1]))
    delta = (h[-1] - values["y"]) * (1 - h[-1] ** 2)
    grads = {}
    for l in range(layers, 0, -1):
        grads[f"W{l}"] = delta @ h[l - 1].T
        delta = (values[f"W{l}"].T @ delta) * (1 - h[l - 1] ** 2)
    return grads


def test_a_deep_wide_tanh_network_is_not_a_false_alarm():
    """Issue 11: 12 layers of 100 wrt every W_l exited 3 ('7.8e-06 > 1e-06')."""
    from derive.api import derive
    derivation = derive(deep_tanh(12, 100))
    assert derivation.check.ok and derivation.check.complete, derivation.check.failures
    rng = np.random.default_rng(5)
    values = {"x": rng.normal(size=(100, 1)), "y": rng.normal(size=(100, 1)),
              **{f"W{l}": rng.normal(size=(100, 100)) / 10 for l in range(1, 13)}}
    expected = backprop_closed_form(values, 12)
    namespace: dict = {}
    exec(compile(derivation.to_numpy(), "<derive numpy>", "exec"), namespace)  # derive's own module
    got = namespace["gradient"](**values)
    for name, value in expected.items():
        assert np.linalg.norm(got[name] - value) <= 1e-10 * np.linalg.norm(value)


def broken_sigmoid(monkeypatch):
    """σ′ written as s + s∘s (the issue's corrupted rule)."""
    from derive import functions
    sigma = functions.ELEMENTWISE["sigma"]
    monkeypatch.setitem(functions.ELEMENTWISE, "sigma", dataclasses.replace(
        sigma, differential=lambda u, y, du: E.Hadamard(E.Add((y, E.Hadamard(y, y))), du)))


OFFSET = "W : 5x4\nx : 4\ny : 5\nv = W x\ns = sigma(v)\nE = 1/2 (s - y):(s - y) + {}\nwrt W\n"


@pytest.mark.parametrize("offset", ["1000000000", "1000000000000000"])
def test_a_large_constant_offset_does_not_hide_a_broken_rule(monkeypatch, offset):
    """Issue 11: with + 10⁹ the noise floor followed |E| and σ′ = s + s∘s passed."""
    from derive.api import derive
    broken_sigmoid(monkeypatch)
    result = derive(OFFSET.format(offset)).check
    assert not result.ok and ("definition", 1) in failing(result)
    gradient = [v for v in result.verdicts if v.block == "gradient"][0]
    assert not gradient.verified     # wrong, or (at 10¹⁵, E's rounding swamps it) not checked


@pytest.mark.parametrize("offset", ["1000000000", "1000000000000000"])
def test_a_large_constant_offset_is_checked_when_right(offset):
    from derive.api import derive
    result = derive(OFFSET.format(offset)).check
    assert result.ok and result.complete, [v for v in result.verdicts if not v.checked]


def test_values_that_underflow_are_not_checked_never_passed():
    """Issue 11: σ(x − 800·1) is 0 at every point: nothing can be compared, and the
    verdict must say so in every format, after redrawing the point."""
    from derive.api import derive
    from derive.cli import main
    from click.testing import CliRunner
    text = "x : 4\ny : 4\ns = sigma(x - 800 * 1)\nE = 1/2 (s - y):(s - y)\nwrt x\n"
    result = derive(text).check
    assert result.ok and not result.complete
    assert result.points == 3                                  # redrawn twice first
    gradient = [v for v in result.verdicts if v.block == "gradient"][0]
    assert not gradient.checked and "not checked" in gradient.note
    markdown = derive(text).to_markdown()
    assert "Every displayed equality was checked" not in markdown
    assert "Not every displayed equality could be checked" in markdown
    table = CliRunner().invoke(main, ["check", "-e", text])
    assert table.exit_code == 0 and "NOT CHECKED" in table.stdout
    assert "? gradient" in table.stdout and "✓ gradient" not in table.stdout
    assert '"status": "partly checked"' in derive(text).to_json()
    for command in (["check", "-e", text], ["render", "-e", text]):     # stderr says it too
        said = CliRunner().invoke(main, command).stderr
        assert "could not be checked numerically" in said and "gradient on line 5" in said


def test_tiny_values_are_compared_not_waved_through():
    """σ(x − 40·1) ≈ 4e-18: the sigmoid keeps its relative accuracy, so both sides are
    compared (and agree); the check does not print 0 error having compared nothing."""
    from derive.api import derive
    result = derive("x : 4\ny : 4\ns = sigma(x - 40 * 1)\nE = 1/2 (s - y):(s - y)\nwrt x\n").check
    assert result.ok and result.complete
    s_line = [v for v in result.verdicts if v.block == "definition"][0]
    assert 0 < s_line.relative_error < 1e-12
    x = np.array([0.5, -1.0, 2.0])
    from derive.functions import ELEMENTWISE
    assert np.allclose(ELEMENTWISE["sigma"].numpy(x - 40), 1 / (1 + np.exp(40 - x)), rtol=1e-14,
                       atol=0)


def test_rounding_dominated_lines_are_not_checked():
    """E = x:x − x:x: every line is 0 up to rounding; nothing is confirmed, nothing fails."""
    from derive.api import derive
    result = derive("x : 3\nE = x:x - x:x\nwrt x").check
    assert result.ok and not result.complete


def test_precision_has_a_small_margin():
    """A gradient wrong by 2·10⁻⁸ (relative) fails: the check is held to TOLERANCE = 1e-8
    where its own error estimate allows it, so loosening the tolerance 3× passes it."""
    from derive.check import TOLERANCE
    G = E.Mul((E.Add((A_plain, E.Transpose(A_plain))), X_))
    assert check(quadratic(A_plain, FULL, G)).ok
    for factor, ok in ((1 + 2 * TOLERANCE, False), (1 + TOLERANCE / 3, True)):
        scaled = E.Mul((E.Number(sympy.Float(factor, 20)), G))
        result = check(quadratic(A_plain, FULL, scaled))
        assert (("gradient", 0) not in failing(result)) is ok, (factor, result.failures)


# ---------------------------------------------------------------- symmetric inputs, symmetric products


def test_a_transposed_gradient_of_an_spd_input_fails():
    """E = aᵀΣb with Σ spd: the gradient is a bᵀ; b aᵀ agrees on symmetric directions only,
    so a check moving Σ along symmetric directions would call it verified."""
    Sigma = sym("Sigma", n, n, ("spd",))
    a, b = sym("a", n), sym("b", n)
    q = E.Mul((E.Transpose(a), Sigma, b))
    chain = Chain(inputs=(Input(Sigma, True, 1), Input(a, True, 2), Input(b, True, 3)),
                  definitions=(Definition(Eo, q, 4),), wrt=(Sigma,), wrt_line=5)
    line = E.Mul((E.Transpose(a), d(Sigma), b))

    def derivation(G):
        return Derivation(chain, (DefinitionLine(Eo, q, Eo, line, 4),),
                          (SubstitutionLine(line), SubstitutionLine(E.Frobenius(G, d(Sigma)))),
                          (Gradient(Sigma, G),))
    right, wrong = E.Mul((a, E.Transpose(b))), E.Mul((b, E.Transpose(a)))
    assert check(derivation(right)).ok
    result = check(derivation(wrong))
    assert ("gradient", 0) in failing(result) and ("substitution", 1) in failing(result)


def test_a_product_of_two_symmetric_matrices_is_not_symmetric():
    """E = tr(A B X), A and B symmetric: ∂E/∂X = (AB)ᵀ = BA, not AB."""
    from derive.api import derive
    derivation = derive("A : n x n symmetric\nB : n x n symmetric\nX : n x n\nE = tr(A B X)\nwrt X")
    assert derivation.check.ok and derivation.check.complete
    rng = np.random.default_rng(2)
    A0, B0 = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    A, B, X = A0 + A0.T, B0 + B0.T, rng.normal(size=(3, 3))
    got = derivation.gradients[0].numpy(A=A, B=B, X=X)
    assert np.allclose(got, B @ A) and not np.allclose(got, A @ B)
    Asym, Bsym, Xs = (E.Symbol(name, (n, n), props=frozenset(p))
                      for name, p in (("A", {"symmetric"}), ("B", {"symmetric"}), ("X", ())))
    wrong = dataclasses.replace(derivation, gradients=(dataclasses.replace(
        derivation.gradients[0], expr=E.Mul((Asym, Bsym)), expanded=None),))
    assert ("gradient", 0) in failing(check(wrong))


def test_a_vanishing_gradient_through_20_layers_is_confirmed():
    """∂E/∂W1 of 20 tanh layers is tiny next to the bound on its terms' rounding; a complex
    step agreeing to 15 digits confirms it all the same (not 'not checked')."""
    from derive.api import derive
    text = deep_tanh(20, 4).replace("wrt " + ", ".join(f"W{l}" for l in range(1, 21)), "wrt W1")
    result = derive(text).check
    assert result.ok and result.complete, [v for v in result.verdicts if not v.verified]
