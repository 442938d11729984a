"""The numeric check never looks away: a corrupted rule that changes what is shown fails
the check (or leaves the affected line not checked), on chains where the derivative is
hard to see — steep, saturated, swamped by a constant offset of 10¹⁵, near-singular.

A corruption that changes nothing shown (twice d(1ᵀ) is still 0) is no corruption of
the derivation: there the shown gradient is compared with its closed form in NumPy.
"""
import dataclasses

import numpy as np
import pytest

from derive import check as numeric
from derive import expr as E
from derive import functions, rules
from derive.api import derive, render
from derive.numpy_code import to_numpy
from test_check import deep_tanh

STEEP_TANH = "W : 100x100\nx : 100\nh = tanh(50 W x)\nE = 1'h\nwrt W\n"
STEEP_EXP = "x : 50\nE = 1'exp(8 x)\nwrt x\n"
INVERSE = "X : 60x60\na : 60\nb : 60\nE = a' inv(X) b\nwrt X\n"
SOFTMAX = "W : 30x20\nx : 20\ny : 30\np = softmax(W x)\nE = y'log(p)\nwrt W\n"


def offset_net(f: str) -> str:
    """Three layers h = f(W h), E = ½‖h₃ − y‖² + 10¹⁵: E's value hides its change."""
    return deep_tanh(3, 20, f, " + 1000000000000000")


OFFSET = offset_net("sigma")


def doubled(monkeypatch, kind):
    """The table row of ``kind`` gives twice its differential."""
    text_rule, rule = rules.DIFFERENTIALS[kind]
    monkeypatch.setitem(rules.DIFFERENTIALS, kind,
                        (text_rule, lambda e, d, ans: E.Mul((E.Number(2), rule(e, d, ans)))))


def plus_du(monkeypatch, name):
    """The elementwise function ``name`` gets the differential f′(u)du + du."""
    row = functions.ELEMENTWISE[name]
    monkeypatch.setitem(functions.ELEMENTWISE, name, dataclasses.replace(
        row, differential=lambda u, y, du, f=row.differential: E.Add((f(u, y, du), du))))


def shown(text):
    return render(text=text, to="json", check=False)


STEEP_SOFTMAX = "W : 10x10\nx : 10\ny : 10\np = softmax(30 W x)\nE = y'log(p)\nwrt W\n"
CAUGHT = [
    (STEEP_TANH, E.Mul), (STEEP_TANH, "tanh"),
    (STEEP_SOFTMAX, E.Mul), (STEEP_SOFTMAX, E.Softmax), (STEEP_SOFTMAX, "log"),
    (STEEP_EXP, E.Mul), (STEEP_EXP, "exp"),
    (INVERSE, E.Mul), (INVERSE, E.Inverse),
    (SOFTMAX, E.Mul), (SOFTMAX, E.Softmax), (SOFTMAX, "log"),
    (OFFSET, E.Add), (OFFSET, E.Mul), (OFFSET, E.Frobenius), (OFFSET, "sigma"),
]


@pytest.mark.parametrize("text, rule", CAUGHT,
                         ids=[f"{t.splitlines()[-2]}-{getattr(r, '__name__', r)}"
                              for t, r in CAUGHT])
def test_a_corrupted_rule_that_changes_the_derivation_fails_the_check(monkeypatch, text, rule):
    good = shown(text)
    (plus_du if isinstance(rule, str) else doubled)(monkeypatch, rule)
    assert shown(text) != good                  # the corruption shows
    result = derive(text).check
    assert not result.ok
    assert not any(v.verified for v in result.verdicts if v.block == "gradient")


def test_the_offset_chain_is_fully_checked_when_correct():
    result = derive(OFFSET).check
    assert result.ok and result.complete


@pytest.mark.parametrize("f", ["relu", "abs"])
def test_an_offset_on_a_path_without_a_complex_step_is_left_out_of_the_difference(
        monkeypatch, f):
    """relu and abs allow no complex step, so only real differences see dE; they are
    taken of E without its constant 10¹⁵ (which would swamp them)."""
    text = offset_net(f)
    assert derive(text).check.complete
    doubled(monkeypatch, E.Frobenius)
    result = derive(text).check
    assert not result.ok
    failed = {v.block for v in result.failures}
    assert failed == {"definition", "gradient"}


def test_a_gradient_alone_that_confirms_nothing_is_not_checked_never_verified(monkeypatch):
    """With the offset kept in the difference, the joint gradient fails and each wrt alone
    may be unresolvable: such a one is not checked, not verified.  Whether one is depends
    on the point, so several seeds are tried: at every one each gradient line fails or is
    not checked, and at some one a line is not checked."""
    monkeypatch.setattr(numeric, "varying_part", lambda expr, moving: expr)
    doubled(monkeypatch, E.Frobenius)
    unresolved = 0
    for seed in range(6):
        result = derive(offset_net("relu"), seed=seed).check
        gradients = [v for v in result.verdicts if v.block == "gradient"]
        assert not result.ok
        assert not any(v.verified for v in gradients)
        assert all(not v.ok if v.checked else v.note.startswith("not checked") for v in gradients)
        unresolved += sum(not v.checked for v in gradients)
    assert unresolved


def test_a_wrong_gradient_of_a_vanishing_share_fails_on_its_own_line():
    """In a 20-layer σ network ∂E/∂W₁ is some 10⁻¹² of ∂E/∂W₂₀: doubled, it hid in the
    joint comparison and was called verified; the rebalanced direction sees it."""
    derivation = derive(deep_tanh(20, 10, "sigma"), check=False)
    first = derivation.gradients[0]
    wrong = dataclasses.replace(first, expr=E.Mul((E.Number(2), first.expr)), expanded=None)
    broken = dataclasses.replace(derivation, gradients=(wrong,) + derivation.gradients[1:])
    result = numeric.check(broken)
    gradients = [v for v in result.verdicts if v.block == "gradient"]
    assert not gradients[0].ok
    assert all(v.ok for v in gradients[1:])
    assert numeric.check(derivation).complete


LOG_OFFSET = "x : 5\nE = log(x:x + 1000000000000000)\nwrt x\n"


def test_an_offset_inside_a_function_is_seen_by_the_complex_step(monkeypatch):
    """log(xᵀx + 10¹⁵): no constant term to leave out, and real differences cannot
    resolve a derivative of 10⁻¹⁵; the complex step's gross disagreement fails it."""
    assert derive(LOG_OFFSET).check.complete
    doubled(monkeypatch, E.Frobenius)
    assert not derive(LOG_OFFSET).check.ok


def test_without_the_complex_step_failure_the_line_is_not_checked_never_verified(monkeypatch):
    doubled(monkeypatch, E.Frobenius)
    monkeypatch.setattr(numeric, "COMPLEX_FAILS", np.inf)
    result = derive(LOG_OFFSET).check
    for v in result.verdicts:
        if v.block in ("definition", "gradient"):
            assert not v.checked and not v.verified
            assert v.note.startswith("not checked")
    assert not result.complete


def test_varying_part_leaves_out_constant_terms_through_products():
    x, c = E.Symbol("x", (3, 1)), E.Number(10 ** 15)
    q = E.Frobenius(x, x)
    assert numeric.varying_part(E.Add((q, c)), {"x"}) == q
    half = E.Number(sympy_half())
    assert numeric.varying_part(E.Mul((half, E.Add((c, q)))), {"x"}) == E.Mul((half, q))
    assert numeric.varying_part(E.Add((c, c)), {"x"}) == E.Add((c, c))   # nothing varies


def test_a_saturated_tanh_is_not_checked_not_a_false_alarm():
    """tanh(10⁵ Wx) with W, x positive: every entry of 10⁵Wx exceeds 10³ at any point the
    check draws (any seed, any of its scales), so h is all ones and the gradient 0, and so
    are the differences: not checked, never verified, and no false alarm."""
    text = "W : 100x100 positive\nx : 100 positive\nh = tanh(100000 W x)\nE = 1'h\nwrt W\n"
    for seed in range(3):
        result = derive(text, seed=seed).check
        assert result.ok
        gradient = [v for v in result.verdicts if v.block == "gradient"]
        assert gradient and not any(v.checked or v.verified for v in gradient)
        assert all(v.note.startswith("not checked") for v in gradient)


def test_a_tanh_saturated_nearly_everywhere_is_no_false_alarm():
    """tanh(10⁵ Wx) with W, x of either sign: nearly every entry is ±1, and a difference at a
    step of 1e-2 crosses a jump where an entry is near 0; two such differences agree with
    each other, not with the truth.  Where some entry is not saturated the gradient is
    rightly verified; at no seed is the correct chain a failure."""
    text = "W : 100x100\nx : 100\nh = tanh(100000 W x)\nE = 1'h\nwrt W\n"
    assert all(derive(text, seed=seed).check.ok for seed in range(5))


def test_a_wrong_term_hidden_beside_steep_entries_is_seen_at_a_point_of_smaller_scale(
        monkeypatch):
    """1ᵀexp(40x) spans e^±100: a wrong + dx is 10⁻⁴³ of the derivative at the first
    point, but not at the point drawn again at a tenth of the scale."""
    text = "x : 30\nE = 1'exp(40 x)\nwrt x\n"
    assert derive(text).check.complete
    plus_du(monkeypatch, "exp")
    result = derive(text).check
    assert not result.ok and result.points == 2
    assert not any(v.verified for v in result.verdicts if v.block == "gradient")


def test_a_chain_that_overflows_at_the_first_point_is_checked_at_the_smaller_one():
    """exp(1000 xᵀx) overflows at a point of scale 1, not at a tenth of it."""
    text = "x : 3\nE = exp(1000 x:x)\nwrt x\n"
    result = derive(text).check
    assert result.ok and result.complete and result.points == 2
    x = np.array([[0.01], [-0.02], [0.015]])
    want = 2000 * np.exp(1000 * (x.T @ x).item()) * x
    assert np.allclose(gradient_of(text, {"x": x}, "x"), want, rtol=1e-12)


def test_a_failure_at_a_redrawn_point_is_kept():
    verified = numeric.LineVerdict("definition", 0, 3, 1e-16, True, tolerance=1e-8)
    wrong = numeric.LineVerdict("definition", 0, 3, 0.5, False, "differs", tolerance=1e-8)
    assert numeric._merge([verified], [wrong]) == [wrong]
    assert numeric._merge([wrong], [verified]) == [wrong]


def test_contradicting_estimates_widen_each_other():
    close = (np.array([[1.0]]), 1e-3)
    far = (np.array([[5.0]]), 1e-9)
    (_, a), (_, b) = numeric._consistent([close, far])
    assert a == b == pytest.approx(4.0)
    (_, a), (_, b) = numeric._consistent([close, (np.array([[1.0005]]), 1e-9)])
    assert (a, b) == (1e-3, 1e-9)          # within their estimates: left alone


def sympy_half():
    import sympy
    return sympy.Rational(1, 2)


# ---------------------------------------------------------------- no effect: closed forms


def gradient_of(text, point, wrt):
    namespace: dict = {}
    exec(compile(to_numpy(derive(text)), "<derive numpy>", "exec"), namespace)  # our own code
    return namespace["gradient"](**point)[wrt]


def softmax(v):
    e = np.exp(v - v.max())
    return e / e.sum()


RNG = np.random.default_rng(11)
W100, X100 = RNG.normal(size=(100, 100)) / 10, RNG.normal(size=(100, 1))
X50 = RNG.normal(size=(50, 1)) / 4
M60, A60, B60 = np.eye(60) + 0.3 * RNG.normal(size=(60, 60)) / 8, RNG.normal(size=(60, 1)), \
    RNG.normal(size=(60, 1))
W30, X20, Y30 = RNG.normal(size=(30, 20)) / 5, RNG.normal(size=(20, 1)), RNG.random((30, 1))
NO_EFFECT = [
    (STEEP_TANH, {"W": W100, "x": X100}, "W",
     (1 - np.tanh(50 * W100 @ X100) ** 2) * 50 @ X100.T),
    (STEEP_EXP, {"x": X50}, "x", 8 * np.exp(8 * X50)),
    (INVERSE, {"X": M60, "a": A60, "b": B60}, "X",
     -np.linalg.inv(M60).T @ A60 @ B60.T @ np.linalg.inv(M60).T),
    (SOFTMAX, {"W": W30, "x": X20, "y": Y30}, "W",
     (Y30 - softmax(W30 @ X20) * Y30.sum()) @ X20.T),
]


@pytest.mark.parametrize("text, point, wrt, want", NO_EFFECT,
                         ids=["steep tanh", "steep exp", "inverse", "softmax"])
def test_a_doubled_transpose_of_a_constant_changes_nothing_and_the_gradient_is_right(
        monkeypatch, text, point, wrt, want):
    """d(1ᵀ) = d(aᵀ) = d(yᵀ) = 0 here, and twice 0 is 0: the derivation is the same."""
    good = shown(text)
    doubled(monkeypatch, E.Transpose)
    assert shown(text) == good
    result = derive(text).check
    assert result.ok and result.complete
    got = gradient_of(text, point, wrt)
    assert np.allclose(got, want, rtol=1e-9, atol=1e-12 * np.abs(want).max())


# ------------------------------------------------- a small term beside a large one

SMALL_TERM = "x : 5\nE = 1000000000000 * 1'x + 1'exp(x)\nwrt x\n"
SMALL_INSIDE = "x : 20\nr = 100000000 x + tanh(x)\nE = r:r\nwrt x\n"
SMALL_INVERSE = "X : 20x20 spd\nE = logdet(X) + 1/1000000000 tr(inv(X))\nwrt X\n"
HIDDEN = [(SMALL_TERM, "exp"), (SMALL_INSIDE, "tanh"), (SMALL_INVERSE, E.Inverse)]


@pytest.mark.parametrize("text", [SMALL_TERM, SMALL_INSIDE, SMALL_INVERSE])
def test_a_line_with_a_small_term_is_fully_checked_when_correct(text):
    assert derive(text).check.complete


@pytest.mark.parametrize("text, rule", HIDDEN, ids=["exp", "tanh", "inverse"])
def test_a_wrong_rule_in_a_term_too_small_for_the_whole_line_fails_it(monkeypatch, text, rule):
    """The term's differential is 10⁻⁸–10⁻¹² of the line's: a difference of the whole
    line cannot see it doubled, one of the term alone does."""
    good = shown(text)
    (plus_du if isinstance(rule, str) else doubled)(monkeypatch, rule)
    assert shown(text) != good
    result = derive(text).check
    failed = [v for v in result.failures if v.block == "definition"]
    assert failed and "its term" in failed[0].note
    monkeypatch.setattr(numeric, "SMALL_TERM", 0.0)     # no term checked on its own:
    assert derive(text).check.ok                       # the line hides it


def test_a_shown_line_that_drops_a_small_term_differs_from_its_terms_differentials():
    """dE shown without its small term: each term's own differential is right, and the
    line is not their sum (an identity held to the small term's size)."""
    derivation = derive(SMALL_TERM, check=False)
    line = derivation.definitions[0]
    assert isinstance(line.differential, E.Add)
    large = [t for t in line.differential.terms if not any(
        isinstance(n, E.Apply) for n in E.walk(t))]
    broken = dataclasses.replace(derivation, definitions=(
        dataclasses.replace(line, differential=large[0]),) + derivation.definitions[1:])
    result = numeric.check(broken)
    failed = [v for v in result.failures if v.block == "definition"]
    assert failed and failed[0].note == "it differs from the sum of its terms' differentials"
    assert numeric.check(derivation).complete
