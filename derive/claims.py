"""Claimed gradients (``claim dE/dW = C``, ``--claim``, a pasted ``∂E/∂W = C``) compared
with derive's own ∂E/∂W = G: right, or wrong with a direction that separates them and,
where the difference is a recognisable slip, the slip named.

Why a claim can be trusted when called right: C and G are evaluated (no differences,
so no truncation error) at POINTS independent random points and must agree to
TOLERANCE, far below the relative size of any slip at a random point (a factor, a
term, a transpose or a product order changes the value by a sizeable fraction of
itself); and where every operation that C and G depend on is rational, they are also
compared exactly, in rational arithmetic, at a random rational point. G itself is
derive's checked gradient; the central difference of E along the separating
direction shown with a wrong claim is a third, independent witness.

Why a named slip can be trusted: each is a corrected claim (Cᵀ, C/k, C ± one term,
one product reversed, one factor transposed) that must equal G at FRESH further
points before it is said.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Callable

import numpy as np
import sympy

from . import expr as E
from .chain import Chain
from .check import MAX_TRIES, STRATEGIES, adjoint_values, assign_sizes, draw_point
from .derivation import ClaimVerdict
from .draws import Draws
from .evaluate import DomainError, concrete_shape, dense, evaluate, forward
from .limits import tick
from .parse import parse_claim
from .printer import text as text_of
from .simplify import simplify

POINTS = 4             # independent random points a right claim must agree at
FRESH = 3              # further points a diagnosis must hold at before it is said
TOLERANCE = 1e-9       # relative; a slip differs by far more at a random point
FIT = 1e-6             # a first, loose screen of candidate slips at one point
MAX_TERMS = 64         # terms of an expanded sum considered for a missing/extra term
MAX_CANDIDATES = 200   # corrected claims tried per wrong claim
SUBSCRIPT = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def with_claims(chain: Chain, claims) -> Chain:
    """The chain with the claims given beside its text (``--claim 'W = EXPR'``, or
    ``derive(claims={"W": "EXPR"})``); a claim about an input not in ``wrt`` adds it."""
    if not claims:
        return chain
    if isinstance(claims, str):
        texts = [claims]
    elif isinstance(claims, Mapping):
        texts = [f"{name} = {expr}" for name, expr in claims.items()]
    else:
        texts = [str(c) for c in claims]
    found, wrt = list(chain.claims), list(chain.wrt)
    for text in texts:
        name, expr = parse_claim(chain, text)
        found.append((chain.objective.symbol.name, name, expr, 0, 0))
        symbol = next(i.symbol for i in chain.inputs if i.symbol.name == name)
        if all(w.name != name for w in wrt):
            wrt.append(symbol)
    return replace(chain, claims=tuple(found), wrt=tuple(wrt))


def check_claims(derivation, seed: int = 0) -> tuple:
    """A ClaimVerdict for every claim that was read (an unreadable pasted claim was warned
    about when it was read), in the order written."""
    claims = [c for c in derivation.chain.claims if c[2] is not None]
    if not claims:
        return ()
    judge = _Judge(derivation, seed)
    return tuple(judge.verdict(claim) for claim in claims)


def unchecked_claims(derivation) -> tuple:
    """The claims of a derivation that is not checked (``--no-check``): said, not judged."""
    return tuple(ClaimVerdict(name, wrt, expr, _gradient(derivation, wrt), line, column, None,
                              note="not checked (--no-check)")
                 for name, wrt, expr, line, column in derivation.chain.claims if expr is not None)


def _gradient(derivation, wrt: str) -> E.Expr:
    """G as the output shows it (expanded with ``--expand``), its named adjoints ``z̄``
    written out when that stays short: a claim is set beside what it spells out."""
    g = derivation.gradient(wrt)
    g = g.expanded if derivation.options.get("expand") and g.expanded is not None else g.expr
    return _inlined(derivation, g)


INLINE_NODES = 200     # a gradient longer than this once written out keeps its adjoints


def _inlined(derivation, expr: E.Expr) -> E.Expr:
    table = {E.Adjoint(step.variable).key: step.adjoint for step in derivation.steps[1:]}
    if not table:
        return expr
    memo: dict = {}

    def written_out(e: E.Expr) -> E.Expr:
        if isinstance(e, E.Adjoint) and e.key in table:
            if e.key not in memo:
                memo[e.key] = written_out(table[e.key])
            return memo[e.key]
        return e.rebuild([written_out(c) for c in e.children]) if e.children else e

    try:
        out = simplify(written_out(expr))
    except RecursionError:
        return expr
    return out if sum(1 for _ in E.walk(out)) <= INLINE_NODES else expr


def _structured(symbol: E.Symbol) -> bool:
    return bool(symbol.props & {"symmetric", "spd"}) and not symbol.is_scalar


def _sym(expr: E.Expr) -> E.Expr:
    return E.Mul((E.Number(sympy.Rational(1, 2)), E.Add((expr, E.Transpose(expr)))))


# ---------------------------------------------------------------- the points


@dataclass
class _Point:
    inputs: dict      # the input arrays drawn
    values: dict      # every defined variable and named adjoint at them


def _points(derivation, sizes, rng, count: int) -> list:
    """``count`` random points inside every function's domain (fewer if none can be found)."""
    chain, failures = derivation.chain, 0
    found: list[_Point] = []
    while len(found) < count and failures < MAX_TRIES:
        tick()
        inputs = draw_point(chain, sizes, rng, STRATEGIES[failures % len(STRATEGIES)])
        try:
            with np.errstate(all="ignore"):
                values = forward(chain, inputs, sizes)
                values.update(adjoint_values(derivation, values, sizes))
        except DomainError:
            failures += 1
            continue
        found.append(_Point(inputs, values))
    return found


# ---------------------------------------------------------------- the judgement


class _Judge:
    """Compares claims with derive's gradients at shared random points."""

    def __init__(self, derivation, seed: int):
        self.derivation = derivation
        self.sizes = assign_sizes(derivation.chain)
        rng = Draws(seed)
        self.seed = seed
        self.points = _points(derivation, self.sizes, rng, POINTS)
        self.fresh = _points(derivation, self.sizes, rng, FRESH)
        self.exact_rng = Draws([seed, 1])

    def value(self, expr: E.Expr, point: _Point) -> np.ndarray:
        with np.errstate(all="ignore"):
            return dense(evaluate(expr, point.values, None, self.sizes))

    def verdict(self, claim) -> ClaimVerdict:
        name, wrt, claimed, line, column = claim
        symbol = next(w for w in self.derivation.chain.wrt if w.name == wrt)
        gradient = _gradient(self.derivation, wrt)
        symmetric = _structured(symbol) and bool(self.derivation.options.get("symmetric_gradient"))
        view = _sym if symmetric else (lambda e: e)
        common = dict(objective=name, wrt=wrt, claimed=claimed, gradient=gradient, line=line,
                      column=column, tolerance=TOLERANCE)
        try:
            error = self.difference(view(claimed), gradient, self.points)
        except DomainError as failure:
            return ClaimVerdict(**common, holds=False, points=0,
                                note=f"the claim cannot be evaluated where the chain can: {failure}")
        if not self.points:
            return ClaimVerdict(**common, holds=None,
                                note="not checked: every random point left a function's domain")
        exact = _exact_equal(self.derivation, view(claimed), gradient, self.sizes,
                             self.exact_rng) if error <= TOLERANCE else None
        if error <= TOLERANCE and exact is not False:
            return ClaimVerdict(**common, holds=True, points=len(self.points), exact=bool(exact),
                                error=error)
        wrong = _Wrong(self, symbol, view, claimed, gradient)
        kind, sentence = wrong.diagnosis(symmetric_input=_structured(symbol) and not symmetric)
        note = ("the difference is below floating-point resolution, but exact rational "
                "arithmetic sees it" if exact is False and error <= TOLERANCE else "")
        text, latex, c, g, f = wrong.direction()
        return ClaimVerdict(**common, holds=False, points=len(self.points), error=error,
                            direction=(text, latex), claimed_value=c, gradient_value=g,
                            difference_value=f, slip=kind, diagnosis=sentence, note=note,
                            point=self.points[0].inputs)

    def difference(self, a: E.Expr, b: E.Expr, points) -> float:
        """The worst relative difference of ``a`` and ``b`` over ``points``; a value that is
        0 by cancellation is judged against the size of its terms, not its rounding noise."""
        worst = 0.0
        for point in points:
            x, y = self.value(a, point), self.value(b, point)
            scale = max(float(np.linalg.norm(x)), float(np.linalg.norm(y)),
                        1e-12 * self.term_scale(a, b, point))
            if not np.isfinite(scale):
                return np.inf
            gap = float(np.linalg.norm(x - y) / scale) if scale > 0 else 0.0
            worst = max(worst, gap if np.isfinite(gap) else np.inf)
        return worst

    def term_scale(self, a: E.Expr, b: E.Expr, point: _Point) -> float:
        terms = (_terms(a) or [a]) + (_terms(b) or [b])
        return max(float(np.linalg.norm(self.value(t, point))) for t in terms)

    def agrees(self, a: E.Expr, b: E.Expr) -> bool:
        """``a`` equals ``b`` at every point, the fresh ones included (a diagnosis' test)."""
        try:
            return self.difference(a, b, self.points + self.fresh) <= TOLERANCE
        except DomainError:
            return False


class _Wrong:
    """A claim that does not hold: the direction that shows it and the slip, if any."""

    def __init__(self, judge: _Judge, symbol, view, claimed, gradient):
        self.judge, self.symbol, self.view = judge, symbol, view
        self.claimed, self.gradient = claimed, gradient
        self.tried = 0

    def corrected(self, candidate) -> bool:
        """Whether the claim corrected to ``candidate`` equals the gradient everywhere tried."""
        self.tried += 1
        if self.tried > MAX_CANDIDATES:
            return False
        tick()
        return self.judge.agrees(self.view(candidate), self.gradient)

    def diagnosis(self, symmetric_input: bool = False) -> tuple:
        """``(kind, sentence)`` of the first slip verified, else ``("", "")``; for a
        symmetric input, a claim right only along symmetric directions is said before the
        slips inside it."""
        finders = [self.factor, self.transposed, self.term, self.order, self.one_transpose]
        if symmetric_input:
            finders.insert(2, self.symmetric)
        for finder in finders:
            try:
                found = finder()
            except (E.ShapeError, DomainError, ZeroDivisionError):
                found = None
            if found:
                return found
        return "", ""

    # ------------------------------------------------ the slips

    def factor(self):
        """C = k G for a constant k: a wrong sign (k = −1), a missing or extra factor."""
        point = self.judge.points[0]
        c = self.judge.value(self.view(self.claimed), point)
        g = self.judge.value(self.gradient, point)
        k = _fit(c, g)
        if k is None or k == 0:
            return None
        r = _simple(k)
        if r is not None and self.corrected(E.scale(sympy.Rational(1, 1) / _rational(r), self.claimed)):
            return _factor_sentence(r)
        for symbol in self.judge.derivation.chain.inputs:
            symbol = symbol.symbol
            if not symbol.is_scalar:
                continue
            value = float(dense(point.inputs[symbol.name])[0, 0])
            for power, how in ((1, "times"), (-1, "divided by")):
                if value != 0 and abs(value ** power - k) <= FIT * abs(k) \
                        and self.corrected(E.Mul((E.Power(symbol, -power), self.claimed))):
                    return "factor", (f"a factor {symbol.name}: the claim is the gradient {how} "
                                      f"{symbol.name}")
        return None

    def transposed(self):
        if E.is_scalar_shape(self.claimed.shape) or not E.is_square_shape(self.claimed.shape):
            return None
        if self.corrected(E.Transpose(self.claimed)):
            return ("transpose", f"a missing transpose: the claim is the transpose of "
                                 f"∂{self.judge.derivation.objective.name}/∂{self.symbol.name}")
        return None

    def term(self):
        """C − G is ± one term of G's or C's expanded sum (or a multiple of one)."""
        point = self.judge.points[0]
        d = self.judge.value(self.view(self.claimed), point) - self.judge.value(self.gradient, point)
        for source, terms in (("gradient", _pieces(self.gradient)), ("claim", _pieces(self.claimed))):
            for t in terms:
                found = self.one_term(source, t, d, point)
                if found:
                    return found
        return None

    def one_term(self, source: str, t: E.Expr, d, point):
        value = self.judge.value(self.view(t) if source == "claim" else t, point)
        r = _simple(_fit(d, value))
        if r is None or r == 0:
            return None
        if not self.corrected(E.Add((self.claimed, E.scale(-_rational(r), t)))):
            return None
        shown, negated = text_of(simplify(t)), text_of(simplify(E.neg(t)))
        if source == "gradient":
            if r == -1:
                return "term", f"a missing term: the gradient has the term {shown}, which the claim lacks"
            if r == -2:
                return "sign", (f"one term's sign is wrong: the claim has {negated} where the "
                                f"gradient has {shown}")
            return "factor", (f"a factor on one term: the claim has {_number(1 + r)}·({shown}) where "
                              f"the gradient has {shown}")
        if r == 1:
            return "term", f"an extra term: the claim's term {shown} is not in the gradient"
        if r == 2:
            return "sign", (f"one term's sign is wrong: the claim has {shown} where the gradient "
                            f"has {negated}")
        return "factor", (f"a factor on one term: the claim has {shown} where the gradient has "
                          f"{_number(1 - r)}·({shown})")

    def order(self):
        """One product of the claim with its factors reversed (or two neighbours swapped)."""
        for node, path in _with_paths(self.claimed):
            if not isinstance(node, E.Mul) or len(node.factors) < 2:
                continue
            factors = list(node.factors)
            orders = [factors[::-1]] + [factors[:i] + [factors[i + 1], factors[i]] + factors[i + 2:]
                                        for i in range(len(factors) - 1)]
            for changed in orders:
                if changed == factors:
                    continue
                try:
                    swapped = E.Mul(tuple(changed))
                    candidate = _replaced(self.claimed, path, swapped)
                except E.ShapeError:
                    continue
                if self.corrected(candidate):
                    return ("order", f"a swapped product order: the claim has {text_of(node)} "
                                     f"where the gradient needs {text_of(swapped)}")
        return None

    def one_transpose(self):
        """One square factor missing its transpose, or one transpose too many."""
        for node, path in _with_paths(self.claimed):
            if isinstance(node, E.Transpose) and not node.arg.is_scalar:
                fix, had, needs = node.arg, node, node.arg
            elif isinstance(node, E.Symbol) and E.is_square_shape(node.shape) \
                    and not node.is_scalar and not node.props & {"symmetric", "spd", "diagonal"}:
                fix, had, needs = E.Transpose(node), node, E.Transpose(node)
            else:
                continue
            try:
                candidate = _replaced(self.claimed, path, fix)
            except E.ShapeError:
                continue
            if self.corrected(candidate):
                return ("transpose", f"a transpose slip on one factor: the claim has "
                                     f"{text_of(had)} where the gradient needs {text_of(needs)}")
        return None

    def symmetric(self):
        """For a symmetric input: a claim that agrees only along symmetric directions."""
        if self.judge.agrees(_sym(self.claimed), _sym(self.gradient)):
            return ("symmetric", f"right only along symmetric directions: the claim's symmetric "
                                 f"part is sym(G), but the claim is not the gradient G of the "
                                 f"unstructured function; with --symmetric-gradient, "
                                 f"∂E/∂{self.symbol.name} is sym(G) and this claim holds")
        return None

    # ------------------------------------------------ the direction that shows it

    def direction(self) -> tuple:
        """U = e_i e_jᵀ at the entry where C and G differ most (symmetrised for the symmetric
        gradient), with C : U, G : U and the central difference of E along U."""
        point = self.judge.points[0]
        c = self.judge.value(self.claimed, point)
        g = self.judge.value(self.gradient, point)
        symmetric = self.view is _sym
        gap = np.abs(dense(self.judge.value(self.view(self.claimed), point)) - g)
        i, j = np.unravel_index(int(np.argmax(gap)), gap.shape)
        u = np.zeros(g.shape)
        u[i, j] = 1.0
        if symmetric:
            u[j, i] = 1.0
        text, latex = _direction_names(int(i), int(j), g.shape, symmetric)
        return (text, latex, float(np.sum(c * u)), float(np.sum(g * u)),
                self.central_difference(point, u))

    def central_difference(self, point: _Point, u) -> float | None:
        """(E(W + hU) − E(W − hU))/2h: the objective's own rate along U, known to neither."""
        chain, name = self.judge.derivation.chain, self.symbol.name
        h = 1e-5 * max(1.0, float(np.max(np.abs(dense(point.inputs[name])))))
        sides = []
        for sign in (1, -1):
            inputs = dict(point.inputs)
            inputs[name] = dense(point.inputs[name]) + sign * h * u
            try:
                with np.errstate(all="ignore"):
                    values = forward(chain, inputs, self.judge.sizes)
            except DomainError:
                return None
            sides.append(float(dense(values[chain.objective.symbol.name])[0, 0]))
        return (sides[0] - sides[1]) / (2 * h)


def _direction_names(i: int, j: int, shape, symmetric: bool) -> tuple:
    """``e₂e₃ᵀ`` and ``e_{2} e_{3}^T`` (1-based), ``e₂`` for a vector, ``1`` for a scalar."""
    rows, cols = shape
    if rows == cols == 1:
        return "1", "1"
    if cols == 1:
        return f"e{str(i + 1).translate(SUBSCRIPT)}", f"e_{{{i + 1}}}"
    a, b = str(i + 1).translate(SUBSCRIPT), str(j + 1).translate(SUBSCRIPT)
    text, latex = f"e{a}e{b}ᵀ", f"e_{{{i + 1}}} e_{{{j + 1}}}^T"
    if symmetric and i != j:
        text += f" + e{b}e{a}ᵀ"
        latex += f" + e_{{{j + 1}}} e_{{{i + 1}}}^T"
    return text, latex


def _fit(d, t) -> float | None:
    """k with d = k t exactly enough (least squares, then a loose residual screen)."""
    d, t = dense(d), dense(t)
    norm = float(np.sum(t * t))
    if not np.isfinite(norm) or norm == 0:
        return None
    k = float(np.sum(d * t)) / norm
    if float(np.linalg.norm(d - k * t)) > FIT * max(float(np.linalg.norm(d)), 1e-300):
        return None
    return k


def _simple(k: float | None) -> Fraction | None:
    """k as a fraction with a small denominator, if it is one."""
    if k is None or not np.isfinite(k):
        return None
    r = Fraction(k).limit_denominator(12)
    return r if abs(float(r) - k) <= FIT * max(abs(k), 1e-12) else None


def _rational(r: Fraction) -> sympy.Rational:
    return sympy.Rational(r.numerator, r.denominator)


def _number(r: Fraction) -> str:
    return str(r.numerator) if r.denominator == 1 else f"{r.numerator}/{r.denominator}"


def _factor_sentence(r: Fraction) -> tuple:
    if r == -1:
        return "sign", "a wrong sign: the claim is minus the gradient"
    if r < 0:
        return "factor", f"a wrong sign and a factor: the claim is {_number(r)} times the gradient"
    if r.numerator == 1:
        return ("factor", f"a missing factor {r.denominator}: the claim is 1/{r.denominator} "
                          "times the gradient")
    if r.denominator == 1:
        return ("factor", f"an extra factor {r.numerator}: the claim is {r.numerator} times "
                          "the gradient")
    return "factor", f"a wrong factor: the claim is {_number(r)} times the gradient"


# ---------------------------------------------------------------- expressions


def _terms(expr: E.Expr) -> list:
    """The terms of ``expr`` multiplied out (products, transposes, ∘, :, tr and ⊗ distribute
    over sums), or [] when there would be more than MAX_TERMS."""
    if isinstance(expr, E.Add):
        out = [t for term in expr.terms for t in (_terms(term) or [term])]
    elif isinstance(expr, E.Transpose):
        out = [E.Transpose(t) for t in _terms(expr.arg) or [expr.arg]]
    elif isinstance(expr, E.Trace):
        out = [E.Trace(t) for t in _terms(expr.arg) or [expr.arg]]
    elif isinstance(expr, (E.Mul, E.Hadamard, E.Frobenius, E.Kron)):
        out = [[]]
        for child in expr.children:
            out = [o + [t] for o in out for t in _terms(child) or [child]]
            if len(out) > MAX_TERMS:
                return []
        out = [expr.rebuild(parts) for parts in out]
    else:
        out = [expr]
    return out if len(out) <= MAX_TERMS else []


LINEAR = (E.Add, E.Mul, E.Transpose, E.Trace, E.Hadamard, E.Frobenius, E.Kron)


def _pieces(expr: E.Expr) -> list:
    """The terms a slip can add or drop: each term of each sum that ``expr`` is linear in,
    in place (``(S − S²)(s − y)xᵀ`` has ``(S − S²)(−y)xᵀ``), then the full expansion's terms."""
    found: list = []
    for node, path in _with_paths(expr):
        if len(found) > MAX_TERMS:
            break
        if isinstance(node, E.Add) and _linear_at(expr, path):
            found += [_replaced(expr, path, t) for t in node.terms]
    found += _terms(expr)
    unique: list = []
    for piece in found:
        if piece not in unique and piece != expr:
            unique.append(piece)
    return unique[:MAX_TERMS]


def _linear_at(expr: E.Expr, path: tuple) -> bool:
    """Whether ``expr`` is linear in its node at ``path`` (only linear nodes above it)."""
    node = expr
    for k in path:
        if not isinstance(node, LINEAR):
            return False
        node = node.children[k]
    return True


def _with_paths(expr: E.Expr):
    """Every node with its path of child indices from ``expr``, parents first."""
    stack: list[tuple[E.Expr, tuple]] = [(expr, ())]
    while stack:
        node, path = stack.pop()
        yield node, path
        stack.extend((c, path + (k,)) for k, c in reversed(list(enumerate(node.children))))


def _replaced(expr: E.Expr, path: tuple, new: E.Expr) -> E.Expr:
    if not path:
        return new
    children = list(expr.children)
    children[path[0]] = _replaced(children[path[0]], path[1:], new)
    return expr.rebuild(children)


# ---------------------------------------------------------------- exact arithmetic
#
# A hook as much as a check: when C, G and everything they depend on are built from
# rational operations (sums, products, transposes, inverses, ∘, :, tr, det, Diag, vec,
# ⊗, whole powers), both are evaluated in Fractions at one random rational point and
# must be equal, not merely close. Anything else (σ, exp, log det, an unspecified
# function) makes the comparison numeric only.


class _NotRational(Exception):
    """An operation outside the rational ones: no exact comparison."""


MAX_EXACT_ENTRIES = 2000    # of all inputs together: Fractions are slow


def _exact_equal(derivation, a: E.Expr, b: E.Expr, sizes, rng) -> bool | None:
    """True or False when ``a`` and ``b`` could be compared exactly, else None."""
    for _ in range(3):
        try:
            exact = _Exact(derivation, sizes, rng)
            return bool(np.all(exact.value(a) == exact.value(b)))
        except (_NotRational, RecursionError):
            return None
        except ZeroDivisionError:       # a singular matrix or a 0 divided by: draw again
            continue
    return None


class _Exact:
    """Values in Fractions, computed on demand (only what ``a`` and ``b`` depend on)."""

    def __init__(self, derivation, sizes, rng):
        chain = derivation.chain
        self.sizes, self.rng = sizes, rng
        self.inputs = {i.symbol.name: i.symbol for i in chain.inputs}
        entries = sum(np.prod(concrete_shape(s.shape, sizes)) for s in self.inputs.values())
        if entries > MAX_EXACT_ENTRIES or len(chain.definitions) > 50:
            raise _NotRational
        self.definitions = {d.symbol.name: d.expr for d in chain.definitions}
        self.adjoints = {E.Adjoint(step.variable).key: step.adjoint for step in derivation.steps[1:]}
        self.memo: dict = {}

    def named(self, key: str):
        if key not in self.memo:
            if key in self.inputs:
                self.memo[key] = _rational_input(self.inputs[key], self.sizes, self.rng)
            elif key in self.definitions:
                self.memo[key] = self.value(self.definitions[key])
            elif key in self.adjoints:
                self.memo[key] = self.value(self.adjoints[key])
            else:
                raise _NotRational
        return self.memo[key]

    def value(self, expr: E.Expr):
        if isinstance(expr, E.Symbol):
            return self.named(expr.name)
        if isinstance(expr, E.Adjoint):
            return self.named(expr.key)
        if isinstance(expr, (E.Number, E.Zero, E.Identity, E.Ones)):
            return _exact_leaf(expr, self.sizes)
        rule = EXACT.get(type(expr))
        if rule is None:
            raise _NotRational
        return rule(expr, *[self.value(c) for c in expr.children])


def _array(rows: int, cols: int, entries) -> np.ndarray:
    out = np.empty((rows, cols), dtype=object)
    out.flat[:] = list(entries)
    return out


def _rational_input(symbol: E.Symbol, sizes, rng) -> np.ndarray:
    """Small random fractions honouring the declared properties (as ``draw_input`` does)."""
    rows, cols = concrete_shape(symbol.shape, sizes)
    base = _array(rows, cols, (Fraction(int(rng.integers(-9, 10)), int(rng.integers(1, 5)))
                               for _ in range(rows * cols)))
    if "positive" in symbol.props:
        base = np.vectorize(lambda q: abs(q) + Fraction(1, 10), otypes=[object])(base)
    if rows != cols:
        return base
    if "spd" in symbol.props:
        return base @ base.T + rows * _eye(rows)
    if "invertible" in symbol.props:
        base = _eye(rows) + Fraction(3, 10) * base
    if "diagonal" in symbol.props:
        return _diag(_diag_part(base))
    if "symmetric" in symbol.props:
        return (base + base.T) * Fraction(1, 2)
    return base


def _eye(n: int) -> np.ndarray:
    return _array(n, n, (Fraction(int(i == j)) for i in range(n) for j in range(n)))


def _diag(vector) -> np.ndarray:
    n = vector.shape[0]
    return _array(n, n, (vector[i, 0] if i == j else Fraction(0)
                         for i in range(n) for j in range(n)))


def _diag_part(x) -> np.ndarray:
    return _array(x.shape[0], 1, (x[i, i] for i in range(x.shape[0])))


def _exact_leaf(expr, sizes) -> np.ndarray:
    if isinstance(expr, E.Number):
        value = sympy.nsimplify(expr.value)
        if not value.is_Rational:
            raise _NotRational
        return _array(1, 1, [Fraction(int(value.p), int(value.q))])
    rows, cols = concrete_shape(expr.shape, sizes)
    if isinstance(expr, E.Identity):
        return _eye(rows)
    fill = Fraction(1) if isinstance(expr, E.Ones) else Fraction(0)
    return _array(rows, cols, [fill] * (rows * cols))


def _scalar(x) -> bool:
    return x.shape == (1, 1)


def _exact_mul(node, *args):
    """As the float evaluator multiplies: a 1×1 factor or 1×1 running product is a scalar."""
    coefficient, run = Fraction(1), None
    for a in args:
        if _scalar(a):
            coefficient *= a[0, 0]
            continue
        run = a if run is None else run @ a
        if _scalar(run):
            coefficient *= run[0, 0]
            run = None
    return _array(1, 1, [coefficient]) if run is None else run * coefficient


def _inverse(node, x):
    """Gauss–Jordan in Fractions; a singular matrix raises ZeroDivisionError."""
    n = x.shape[0]
    a = np.concatenate([x.copy(), _eye(n)], axis=1)
    for col in range(n):
        pivot = next((r for r in range(col, n) if a[r, col] != 0), None)
        if pivot is None:
            raise ZeroDivisionError("singular")
        a[[col, pivot]] = a[[pivot, col]]
        a[col] = a[col] / a[col, col]
        for r in range(n):
            if r != col and a[r, col] != 0:
                a[r] = a[r] - a[r, col] * a[col]
    return a[:, n:]


def _det(node, x):
    n, a, det = x.shape[0], x.copy(), Fraction(1)
    for col in range(n):
        pivot = next((r for r in range(col, n) if a[r, col] != 0), None)
        if pivot is None:
            return _array(1, 1, [Fraction(0)])
        if pivot != col:
            a[[col, pivot]] = a[[pivot, col]]
            det = -det
        det *= a[col, col]
        for r in range(col + 1, n):
            a[r] = a[r] - (a[r, col] / a[col, col]) * a[col]
    return _array(1, 1, [det])


def _power(node, x):
    k = node.exponent
    if not E.is_integer(k):
        raise _NotRational
    k = int(k)
    if _scalar(x):
        return _array(1, 1, [x[0, 0] ** k])
    out = _eye(x.shape[0])
    for _ in range(k):
        out = out @ x
    return out


def _element_power(node, x):
    if not E.is_integer(node.exponent):
        raise _NotRational
    return np.vectorize(lambda q: q ** int(node.exponent), otypes=[object])(x)


EXACT: dict[type, Callable] = {   # node type -> its value from its children's exact values
    E.Add: lambda node, *args: sum(args[1:], args[0]),
    E.Mul: _exact_mul,
    E.Transpose: lambda node, x: x.T,
    E.Inverse: lambda node, x: _array(1, 1, [1 / x[0, 0]]) if _scalar(x) else _inverse(node, x),
    E.Power: _power,
    E.Hadamard: lambda node, a, b: a * b,
    E.HadamardDivide: lambda node, a, b: a / b,
    E.Frobenius: lambda node, a, b: _array(1, 1, [np.sum(a * b)]),
    E.Trace: lambda node, x: _array(1, 1, [np.sum(_diag_part(x))]),
    E.Det: _det,
    E.Diag: lambda node, x: _diag(x),
    E.DiagPart: lambda node, x: _diag_part(x),
    E.Vec: lambda node, x: x.reshape(-1, 1, order="F"),
    E.Kron: lambda node, a, b: np.kron(a, b),
    E.ElementPower: _element_power,
}
