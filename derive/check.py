"""A Derivation → a CheckResult: every displayed line verified at a random point, or
said not to be.

Definition lines are compared with a difference of their own function, substitution
lines with the first line (they are exact identities), the gradient with a difference of
the objective. All wrt inputs move jointly along a few random directions; per-variable
errors are computed only to localise a failure.

Each comparison is judged against an estimate of its own error (``Comparison``): the
difference's truncation and rounding and the linear form's rounding, relative to the
size of the directional derivative, never to the function's value.  When that cannot
confirm anything (both sides vanish, underflow, or rounding dominates) the line is "not
checked", the point is redrawn, and the verdict says so if no point could check it.

Directions are rank one (``u vᵀ``, kept as factors) and diagonals vectors, so the check
of the reference chain costs a few forward passes at any n.
"""
from __future__ import annotations

import dataclasses
from typing import cast

import numpy as np
import sympy

from .record import record
from . import exact
from . import expr as E
from .draws import Draws
from .derivation import CheckResult, Derivation, LineVerdict
from .errors import EXIT_INPUT, DeriveError, Notice, note
from .functions import ELEMENTWISE
from .evaluate import (THIN, DiagValue, DomainError, LowRank, NotAnalytic, add, concrete_shape,
                       dense, evaluate, evaluate_all, evaluate_raw, finite, forward, inner,
                       norm_bound, product_cache, scaled, typical_entry)
from .limits import current as current_limits
from .limits import raise_it, tick
from .printer import text as text_of

TOLERANCE = 1e-8      # the smallest relative error bound of a difference line
IDENTITY_TOLERANCE = 1e-9   # the same for the two sides of an exact identity
CEILING = 1e-6        # a comparison whose error bound exceeds this confirms nothing
SAFETY = 10           # the error estimates' safety factor
ROUNDING = 10         # rounding of a computed value, in units of ε times its terms' size
EPS = float(np.finfo(float).eps)
STEPS = (1e-4, 1e-6, 1e-2)   # central-difference steps, relative to the operands' scale
COMPLEX_STEP = 1e-20  # the complex step, relative to the operands' scale
COMPLEX_STEP_AGAIN = 1e-8   # the second complex step that confirms a disagreement
COMPLEX_FAILS = 1e-4  # a complex step disagreeing by more than this shows a wrong line
MAX_TRIES = 21        # points drawn when functions leave their domains
REDRAWS = 2           # further points drawn for lines not checked at the first
STEEP = 20            # an elementwise function's argument beyond ±this is steep there
STEEP_SCALE = 0.1     # the scale of the point drawn again after a steep one
STRATEGIES = ("normal", "abs", "shifted")
TINY = 1e-300
FAST_ENTRIES = 250_000   # matrices this large are drawn by the fast generator

ADVICE = {  # function that left its domain -> the property to declare on its input
    **{f.name: f.domain.advice for f in ELEMENTWISE.values() if f.domain and f.domain.advice},
    "log det": "spd",
    "det": "invertible",
    "inverse": "invertible",
    "elementwise division": "positive",
    "power": "positive",
    "elementwise power": "positive",
}


def check(derivation: Derivation, seed: int = 0, directions: int = 3) -> CheckResult:
    """Verify every displayed line; redraw the point when a function leaves its domain,
    and (up to ``REDRAWS`` times) when a line could not be checked there."""
    chain = derivation.chain
    rng = Draws(seed)
    sizes = assign_sizes(chain)
    _check_entries(chain, sizes)
    last, verdicts, points, scale = None, None, 0, 1.0
    for attempt in range(MAX_TRIES + REDRAWS):
        tick()
        try:
            with Scratch() as scratch:
                point = draw_point(chain, sizes, rng, STRATEGIES[attempt % len(STRATEGIES)],
                                   scratch)
                if scale != 1.0:
                    point = {name: value * scale for name, value in point.items()}
                with np.errstate(all="ignore"), product_cache(point):   # inf, nan are caught
                    found, steep = _verdicts(derivation, point, sizes, rng, directions)
                del point
        except DomainError as error:
            last = error
            if getattr(error, "steep", False):
                scale = STEEP_SCALE         # a smaller point may stay inside it
            if verdicts is None and attempt + 1 >= MAX_TRIES:
                break
            continue
        verdicts = found if verdicts is None else _merge(verdicts, found)
        points += 1
        if steep and scale == 1.0 and points <= REDRAWS:
            scale = STEEP_SCALE             # once more where the slopes are visible
            continue
        if all(v.checked for v in verdicts) or points > REDRAWS:
            break
    if verdicts is None:
        # every attempt that does not give verdicts sets ``last``
        raise _domain_failure(chain, cast(DomainError, last))
    return CheckResult(seed=seed, tolerance=TOLERANCE, identity_tolerance=IDENTITY_TOLERANCE,
                       directions=directions, sizes={s.name: v for s, v in sizes.items()},
                       verdicts=tuple(_exactly(derivation, verdicts, seed, sizes)),
                       points=points, exact_prime=exact.P)


def _exactly(derivation, verdicts, seed, sizes) -> list:
    """The identity lines that also hold in exact arithmetic are marked ``exact`` (a line
    the floating-point check could not confirm, such as 0 = 0 after an underflow, is then
    verified); a disagreement leaves the numeric verdict and says so."""
    tick()
    found = exact.identity_lines(derivation, seed, sizes)
    out = []
    for v in verdicts:
        holds = found.get((v.block, v.index))
        if holds:       # an identity that holds for all values holds at this point too
            v = dataclasses.replace(v, exact=True, ok=True,
                                    note="" if not (v.ok and v.checked) else v.note)
        elif holds is False and v.ok:
            v = dataclasses.replace(v, note=(v.note + "; " if v.note else "")
                                    + "exact check modulo a prime disagrees")
        out.append(v)
    return out


# ---------------------------------------------------------------- the point


def assign_sizes(chain) -> dict:
    """Distinct values 2, 3, 4, … for the symbolic sizes, skipping the chain's literal sizes.

    Never all equal, so a missing transpose shows up as a wrong value or a shape clash.
    """
    literal = set()
    found = set(chain.size_symbols)
    for item in chain.inputs:
        for size in item.symbol.shape:
            size = sympy.sympify(size)
            found |= size.free_symbols
            if size.is_Integer:
                literal.add(int(size))
    sizes, candidate = {}, 2
    for symbol in sorted(found, key=lambda s: s.name):
        while candidate in literal:
            candidate += 1
        sizes[symbol] = candidate
        candidate += 1
    return sizes


def _check_entries(chain, sizes) -> None:
    """Refuse a point too large to draw (``W : 100000x100000`` is 80 GB) before drawing it."""
    limit, total = current_limits().max_entries, 0
    for item in chain.inputs:
        rows, cols = concrete_shape(item.symbol.shape, sizes)
        total += rows * cols
        if limit and total > limit:
            raise DeriveError(f"the numeric check would draw more than {limit} random numbers, "
                              f"{rows * cols} for {item.symbol.name} alone: use --no-check, "
                              f"smaller sizes, or lift the limit {raise_it('max_entries')}",
                              chain.source, item.line, item.column)


def draw_point(chain, sizes, rng, strategy: str = "normal", scratch=None) -> dict:
    """One random value per input, honouring its declared properties."""
    return {item.symbol.name: draw_input(item.symbol, sizes, rng, strategy, scratch)
            for item in chain.inputs}


def draw_input(symbol: E.Symbol, sizes, rng, strategy: str, scratch=None) -> np.ndarray:
    """``normal``, ``abs`` (|normal| + 0.1) or ``shifted`` (I + 0.3·normal when square).

    A matrix's entries have variance 1/columns, so products with vectors stay of order
    one at any size (σ(Wx) does not saturate at n = 2000).
    """
    rows, cols = concrete_shape(symbol.shape, sizes)
    props = symbol.props
    square = rows == cols
    plain = not (props & {"positive", "spd", "invertible", "diagonal", "symmetric"})
    if rows * cols >= FAST_ENTRIES and plain and strategy == "normal":
        return _fast_draw(rows, cols, rng, scratch)
    base = rng.normal(size=(rows, cols)) / np.sqrt(cols)
    if strategy == "abs" or "positive" in props:
        base = np.abs(base) + 0.1
    elif strategy == "shifted" and square:
        base = np.eye(rows) + 0.3 * base
    if not square:
        return base
    if "spd" in props:
        return base @ base.T + np.eye(rows)
    if "invertible" in props and strategy == "normal":
        base = np.eye(rows) + 0.3 * base
    if "diagonal" in props:
        return np.diag(np.diag(base))
    if "symmetric" in props:
        return (base + base.T) / 2
    return base


def _fast_draw(rows: int, cols: int, rng, scratch=None) -> np.ndarray:
    """Entries uniform on ±√(3/cols) (variance 1/cols) from rows + cols random numbers in
    two passes over the matrix: the top bits of ``aᵢbⱼ mod 2⁶⁴`` for random odd 64-bit
    ``a``, ``b`` (each row and each column a bijective image of independent draws).  A
    dense normal draw of 2000×2000 costs 30–70 evaluations of the reference chain; this
    about two, and none of them page faults when ``scratch`` (a pool kept between
    checks) lends a buffer.  Any point off a lower-dimensional algebraic set detects a
    wrong identity; this map of 2n numbers satisfies no polynomial identity."""
    a = rng.integers(-2 ** 62, 2 ** 62, size=(rows, 1), dtype=np.int64) * 2 + 1
    b = rng.integers(-2 ** 62, 2 ** 62, size=(1, cols), dtype=np.int64) * 2 + 1
    scratch = scratch if scratch is not None else Scratch()
    hashed = scratch.take(rows * cols, np.int64)[: rows * cols].reshape(rows, cols)
    out = scratch.take(rows * cols, np.float64)[: rows * cols].reshape(rows, cols)
    with np.errstate(over="ignore"):
        np.multiply(a, b, out=hashed)                 # wraps modulo 2⁶⁴, as meant
    np.multiply(hashed, np.sqrt(3.0 / cols) * 2.0 ** -63, out=out, casting="unsafe")
    return out


class Scratch:
    """Buffers for the large draws of one check, returned to a pool for the next: a
    fresh 32 MB array costs its page faults (several forward passes) every time.  Only
    ``check`` uses it, whose point never leaves it; a concurrent check finds the pool
    empty and allocates its own."""

    pool: list = []
    LIMIT = 2 ** 24           # entries kept between checks (128 MB)

    def __init__(self) -> None:
        self.lent: list = []

    def take(self, size: int, dtype) -> np.ndarray:
        for k, buffer in enumerate(Scratch.pool):
            if buffer.size >= size and buffer.dtype == dtype:
                self.lent.append(Scratch.pool.pop(k))
                return self.lent[-1]
        self.lent.append(np.empty(size, dtype))
        return self.lent[-1]

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        kept = sum(b.size for b in Scratch.pool)
        for buffer in sorted(self.lent, key=lambda b: b.size):
            if kept + buffer.size <= Scratch.LIMIT:
                Scratch.pool.append(buffer)
                kept += buffer.size
        self.lent = []


def _domain_failure(chain, error: DomainError) -> DeriveError:
    """Which function on which line needs a declared property, as a located input error."""
    definition = getattr(error, "definition", None)
    line = definition.line if definition is not None else getattr(error, "line", None)
    where = f" on line {line}" if line else ""
    message = f"{error.function}{where} needs {error.detail} at every point tried"
    arg = error.arg
    item = chain.input_named(arg.name) if isinstance(arg, E.Symbol) else None
    if item is not None and error.function in ADVICE:
        symbol = cast(E.Symbol, arg)        # item is None unless arg is a Symbol
        message = (f"{error.function}{where} needs {error.detail}: declare "
                   f"{symbol.name} : {_shape_text(symbol.shape)} {ADVICE[error.function]}")
    column = definition.expr_column if definition is not None else 1
    return DeriveError(message, chain.source, line, column if line else None, EXIT_INPUT)


def _shape_text(shape) -> str:
    rows, cols = shape
    if E.is_scalar_shape(shape):
        return "scalar"
    if cols == E.ONE:
        return str(rows)
    return f"{rows} x {cols}"


# ---------------------------------------------------------------- comparing two numbers


@record
class Comparison:
    """One comparison of a linear form with a difference (or of two sides of an identity).

    ``error`` is ‖L − D‖ / scale and ``bound`` the relative error the comparison allows:
    the estimated error of the difference and the rounding of both sides, times
    ``SAFETY``, never below ``TOLERANCE`` (``IDENTITY_TOLERANCE`` for identities); the
    scale is the size of the two sides themselves (the directional derivative), never of
    the function's value.  Sides that agree within the floor confirm the line whatever
    the estimate (two independent computations do not agree to eight digits by chance).
    ``checked`` is False when the two sides cannot confirm anything (both vanish or
    underflow, or they differ and the bound exceeds ``CEILING``); such a comparison fails
    only when the sides differ by more than even that bound.
    """

    error: float
    bound: float
    checked: bool
    reason: str = ""            # why not checked

    @property
    def ok(self) -> bool:
        return self.error <= self.bound

    @property
    def failed(self) -> bool:
        return not self.ok


def judge(a, b, uncertainty: float, floor: float) -> Comparison:
    """``a`` against ``b``, when their difference may be ``uncertainty`` (absolute) for
    reasons other than a wrong formula; ``floor`` is the smallest relative bound."""
    a, b = dense(a), dense(b)
    scale = max(norm_bound(a), norm_bound(b))
    if not (np.isfinite(scale) and np.isfinite(uncertainty)):
        return Comparison(np.inf, np.inf, False, "values too large to compare")
    if scale <= TINY:
        return Comparison(0.0, np.inf, False, "both sides vanish (or underflow)")
    error = float(np.linalg.norm(a - b)) / scale
    if error <= floor:      # agreement this close confirms, however loose the estimate
        return Comparison(error, floor, True)
    bound = max(SAFETY * uncertainty / scale, floor)
    if not np.isfinite(error):
        return Comparison(np.inf, bound, True)
    if bound > CEILING and error <= bound:
        return Comparison(error, bound, False, "rounding dominates the comparison")
    return Comparison(error, bound, True)


def worst(comparisons) -> Comparison:
    """A line's verdict over its directions: the worst failure, else the least precise
    checked comparison, else not checked."""
    comparisons = list(comparisons)
    failed = [c for c in comparisons if c.failed]
    if failed:
        return max(failed, key=lambda c: c.error / c.bound)
    checked = [c for c in comparisons if c.checked]
    if checked:
        return max(checked, key=lambda c: (c.bound, c.error))
    return comparisons[0] if comparisons else Comparison(0.0, np.inf, False, "nothing to compare")


def relative_error(a, b, floor: float = TINY) -> float:
    """‖a − b‖ relative to the larger of ‖a‖, ‖b‖ and ``floor``.

    Values too large to compare (a norm or the floor overflowing) give ``inf``, never
    ``nan``: a nan would pass every ``max`` and no ``<=``, and a line would be called
    verified that was not.
    """
    a, b = dense(a), dense(b)
    unit = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)))
    if not (np.isfinite(unit) and np.isfinite(floor)):
        return np.inf
    unit = unit or 1.0            # norms of a/unit and b/unit cannot overflow
    a, b = a / unit, b / unit
    scale = max(np.linalg.norm(a), np.linalg.norm(b), floor / unit, TINY)
    error = float(np.linalg.norm(a - b) / scale)
    return error if np.isfinite(error) else np.inf


def rounding(magnitude: float) -> float:
    """The rounding error a value computed from terms of this size may carry."""
    return ROUNDING * EPS * magnitude


# ---------------------------------------------------------------- the difference


def compare_with_difference(function, linear, values, direction, linear_floor=0.0) -> Comparison:
    """The linear form ``linear`` against the derivative of ``function`` at ``values``
    along ``direction`` (a dict name → array or LowRank), as a ``Comparison``.

    The derivative is a Richardson extrapolation of central differences at steps t and
    t/2; its error is estimated from their disagreement and from the rounding of the
    function's values (which grows as the step shrinks).  A complex step, where every
    function on the path allows one, confirms a line at once.  Otherwise a first step
    that is not as precise as ``TOLERANCE`` is followed by a smaller one (steep
    functions) and a larger one (large values swamp small steps), and the most precise
    of them decides: the bound is never looser than the best estimate available.  When
    no real step can resolve the derivative, a complex step that disagrees grossly, and
    alike at a second step, fails the line (``_complex_failure``); else it is not checked.
    ``linear_floor`` is the rounding of the linear form's own terms.  A DomainError at
    the first step redraws the point.
    """
    imaginary = _complex_estimate(function, values, direction, COMPLEX_STEP)
    at_once = None if imaginary is None else \
        judge(linear, imaginary, linear_floor + rounding(norm_bound(imaginary)), TOLERANCE)
    if at_once is not None and at_once.checked and at_once.ok:
        return at_once
    estimates: list = []
    for k, step in enumerate(STEPS):
        try:
            estimates.append(_richardson(function, values, direction, step))
        except DomainError:
            if k == 0:      # a complex step that sees a wrong line needs no other point
                failed = _complex_failure(function, values, direction, at_once, imaginary)
                if failed is None:
                    raise
                return failed
            continue
        estimate, uncertainty = _consistent(estimates)[-1]
        comparison = judge(linear, estimate, uncertainty + linear_floor, TOLERANCE)
        if comparison.bound <= TOLERANCE:       # as precise as a comparison is held to
            return comparison
    comparisons = [judge(linear, estimate, uncertainty + linear_floor, TOLERANCE)
                   for estimate, uncertainty in _consistent(estimates)]
    best = min(comparisons, key=lambda c: c.bound)     # the most precise step decides
    if best.checked or at_once is None or not at_once.failed:
        return best
    return _complex_failure(function, values, direction, at_once, imaginary) or best


def _consistent(estimates) -> list:
    """The estimates of the derivative at several steps, each error estimate widened to
    its distance from any other estimate it contradicts (farther apart than their two
    estimates allow).  Richardson's estimate assumes a function smooth at the scale of
    the step: tanh(10⁵ Wx) jumps within a step of 1e-2, and two such differences can agree
    with each other and not with the truth.  Which of two contradicting estimates is
    wrong is unknown, so neither confirms nor fails anything closer than their gap."""
    out = []
    for i, (estimate, uncertainty) in enumerate(estimates):
        for j, (other, other_uncertainty) in enumerate(estimates):
            gap = float(np.linalg.norm(estimate - other))
            if j != i and gap > uncertainty + other_uncertainty:
                uncertainty = max(uncertainty, gap)
        out.append((estimate, uncertainty))
    return out


def _complex_estimate(function, values, direction, step):
    """``Im f(x + ih d) / h`` at ``h = step`` relative to the operands' scale: no
    subtraction, so no rounding from the size of f (a constant offset of 10⁹ costs
    nothing) and no truncation at h = 1e-20.  None when a function on the path is not
    analytic (or the path stays real)."""
    h = step * max(1.0, _largest(values, direction)) / max(_largest(direction, direction), TINY)
    try:
        value = dense(function(_shifted(values, direction, 1j * h)))
    except (DomainError, NotAnalytic, TypeError, ValueError, np.linalg.LinAlgError):
        return None
    if not np.iscomplexobj(value):
        return None
    return np.imag(value) / h


def _complex_failure(function, values, direction, first: Comparison | None, estimate):
    """The complex step's disagreement as a failure, when no real difference can see the
    derivative (values of 10¹⁵ swamp it): only if it is gross (``COMPLEX_FAILS``, far
    beyond any rounding of the imaginary part) and the same at a step 10¹² times larger
    (rounding that leaks from the real part would scale with 1/h, a wrong formula does
    not).  Else None: the line stays not checked."""
    if first is None or not (first.checked and first.error > COMPLEX_FAILS):
        return None
    again = _complex_estimate(function, values, direction, COMPLEX_STEP_AGAIN)
    if again is None or relative_error(estimate, again) > CEILING:
        return None
    return first


def _richardson(function, values, direction, step):
    """``(4 D(t/2) − D(t)) / 3`` from central differences ``D``, and its error estimate."""
    t = step * max(1.0, _largest(values, direction)) / max(_largest(direction, direction), TINY)
    wide, magnitude = _central(function, values, direction, t)
    half, magnitude_half = _central(function, values, direction, t / 2)
    estimate = (4 * half - wide) / 3
    truncation = float(np.linalg.norm(wide - half)) / 3
    noise = 3 * rounding(max(magnitude, magnitude_half)) / t
    return estimate, truncation + noise + rounding(norm_bound(estimate)) / step


def _central(function, values, direction, t):
    plus = dense(function(_shifted(values, direction, t)))
    minus = dense(function(_shifted(values, direction, -t)))
    return (plus - minus) / (2 * t), max(norm_bound(plus), norm_bound(minus))


def _largest(values, names) -> float:
    """The size of a typical entry of the named values (RMS: one BLAS pass, cached)."""
    sizes = [typical_entry(values[n]) for n in names]
    return max(sizes, default=1.0)


def _shifted(values: dict, direction: dict, t: complex) -> dict:
    moved = dict(values)
    for name, d in direction.items():
        moved[name] = add(values[name], scaled(d, t))
    return moved
# ---------------------------------------------------------------- the verdicts


def _verdicts(derivation, point, sizes, rng, directions) -> tuple[list, bool]:
    """Every line's verdict at ``point``, and whether the point is steep (``_steep``)."""
    chain = derivation.chain
    values = forward(chain, point, sizes, keep_diagonal=True)
    steep = _steep(chain, values, sizes)
    try:
        values.update(_adjoints(derivation, values, sizes))
        wrt_dirs = [{w.name: _direction(derivation, w, values, rng) for w in chain.wrt}
                    for _ in range(directions)]
        diffs = [propagate(derivation, values, direction, sizes) for direction in wrt_dirs]
        return (_definition_verdicts(derivation, values, sizes, rng, directions)
                + _substitution_verdicts(derivation, values, sizes, diffs)
                + _step_verdicts(derivation, values, sizes, diffs)
                + _gradient_verdicts(derivation, values, sizes, wrt_dirs)), steep
    except DomainError as error:    # a difference's step left the domain: softmax(30Wx)
        error.steep = steep         # has entries of 1e-30 that log cannot step across
        raise


SATURATING = (E.Apply, E.Softmax, E.SoftmaxRows, E.LogSumExp)


def _steep(chain, values, sizes) -> bool:
    """Whether an elementwise function (or softmax) meets an argument beyond ±``STEEP``
    at this point: there exp, σ and tanh span so many orders of magnitude that a wrong
    term where they are flat hides beside the steep entries (1ᵀexp(40x) + 1ᵀx differs
    from 1ᵀexp(40x) by 10⁻⁴³ of itself), so the check draws a point of smaller scale too."""
    for definition in chain.definitions:
        for n in E.walk(definition.expr):
            if isinstance(n, SATURATING):
                arg = values[n.arg.name] if isinstance(n.arg, E.Symbol) else \
                    evaluate_raw(n.arg, values, None, sizes)
                if float(np.max(np.abs(dense(arg)), initial=0.0)) > STEEP:
                    return True
    return False


def _merge(old: list, new: list) -> list:
    """After a redraw: a line keeps its first verdict that says something, unless the new
    point shows it wrong (a wrong term can be too small to see at one point and not at
    another: a failure anywhere is a failure)."""
    return [o if o.checked and (n.ok or not o.ok) else n for o, n in zip(old, new)]


def random_direction(shape, rng, symmetric: bool = False):
    """A random direction: ``u vᵀ`` for a matrix (stored as its factors; a wrong linear
    form is still caught with probability 1, at O(n) instead of O(n²)), dense when small.
    ``symmetric`` gives ``(u vᵀ + v uᵀ)/2``."""
    rows, cols = shape
    if min(rows, cols) < THIN:
        d = rng.normal(size=shape)
        return (d + d.T) / 2 if symmetric and rows == cols else d
    u, v = rng.normal(size=(rows, 1)), rng.normal(size=(cols, 1))
    if symmetric and rows == cols:
        return LowRank(None, np.hstack([u, v]) / 2, np.hstack([v, u]))
    return LowRank(None, u, v)


def _direction(derivation, w, values, rng):
    """A random direction for ``w``; symmetric only when its gradient is the
    symmetric-subspace one (``sym(G) : dW = G : dW`` holds only for symmetric dW):
    otherwise a symmetric input moves in every direction, so a transposed gradient fails."""
    structured = bool(w.props & {"symmetric", "spd"})
    symmetric = bool(derivation.options.get("symmetric_gradient")) and structured
    return random_direction(values[w.name].shape, rng, symmetric)


def _adjoints(derivation, values, sizes) -> dict:
    """The named adjoints ``z̄`` at the point, in sweep order, in compact forms."""
    found: dict[str, object] = {}
    for step in derivation.steps[1:]:
        found[E.Adjoint(step.variable).key] = evaluate_raw(step.adjoint, {**values, **found},
                                                           None, sizes)
    return found


def adjoint_values(derivation, values, sizes) -> dict:
    """The named adjoints ``z̄`` at the point, in sweep order (each needs only earlier ones)."""
    return {k: dense(v) for k, v in _adjoints(derivation, values, sizes).items()}


def _definition_verdicts(derivation, values, sizes, rng, directions) -> list:
    chain = derivation.chain
    active = chain.varying()
    verdicts = []
    for index, line in enumerate(derivation.definitions):
        tick(chain.source, line.line)
        target = line.differential_of
        function_expr = line.expr if not line.is_alias else chain.definition_of(target).expr
        names, tied = _perturbed(chain, function_expr, line.differential, active)
        if not names and not tied and isinstance(line.differential, E.Zero):
            verdicts.append(LineVerdict("definition", index, line.line, 0.0, True,
                                        "exact: no operand varies", exact=True))
            continue

        differenced = varying_part(function_expr, {*names, *tied})

        def function(moved, expr=differenced, line=line, tied=tied):
            for alias, vector in tied.items():
                moved[alias] = DiagValue(dense(moved[vector]))
            return _at_line(line.line, evaluate_raw, expr, moved, None, sizes)

        terms = _Terms(differenced, {*names, *tied}, tied, line.line, sizes)
        whole = f"d{target.name} differs from a central difference of {target.name}'s definition"
        judged = []          # (comparison, the sentence that says why it failed)
        for _ in range(directions):
            direction = {n: random_direction(values[n].shape, rng) for n in names}
            linear = _at_line(line.line, evaluate_raw, line.differential, values, direction,
                              sizes)
            floor = rounding(magnitude(line.differential, values, direction, sizes))
            judged.append((compare_with_difference(function, linear, values, direction, floor),
                           whole))
            if terms.sums and not judged[-1][0].failed:
                found, why = terms.compare(values, direction, linear, floor)
                judged += [(c, why) for c in found]
        chosen = worst([c for c, _ in judged])
        failure = next(why for c, why in judged if c is chosen)
        verdicts.append(line_verdict("definition", index, line.line, chosen, failure))
    return verdicts


SMALL_TERM = 1e-2    # a term this small beside the largest of its sum is checked on its own


class _Terms:
    """A definition's small terms, each checked against a difference of its own.

    A difference of the whole line resolves its differential to about 1e-8 of its size:
    in ``E = 10¹²·1ᵀx + 1ᵀexp(x)`` a wrong rule for exp changes dE by 1e-12 and would be
    verified.  So every sum in the definition (at any depth) whose terms' differentials
    differ in size has each small term's differential, by the rule tables, compared with a
    difference of that term alone; and the line shown is compared, as an exact identity
    held to the size of the smallest such term, with the rules' differential of the whole
    (the same terms' differentials, composed), which ties what was checked to what is shown.
    """

    def __init__(self, expr, moving, tied, line, sizes) -> None:
        from .rules import differentiate      # the engine's tables: only for lines with sums

        def varies(symbol):
            return symbol.name in moving

        self.line, self.sizes, self.tied = line, sizes, tied
        self.sums = [[(t, differentiate(t, varies)[0]) for t in terms]
                     for terms in _sums(expr, moving)]
        self.whole = differentiate(expr, varies)[0] if self.sums else None

    def compare(self, values, direction, linear, floor) -> tuple:
        """The small terms' comparisons along ``direction``, then the identity: a list
        (empty when no term is small) and the failure sentence for a failed one."""
        moved = {**direction, **{a: DiagValue(dense(direction[v])) for a, v in self.tied.items()}}
        found, smallest = [], np.inf
        for terms in self.sums:
            sides = [_at_line(self.line, _side, ell, values, moved, self.sizes) for _, ell in terms]
            largest = max(norm_bound(value) for value, _ in sides)
            for (term, _), (value, bound) in zip(terms, sides):
                size = norm_bound(value)
                if 0 < size < SMALL_TERM * largest:
                    found.append(self._difference(term, value, bound, values, direction))
                    if found[-1].failed:
                        return found, f"the differential of its term {text_of(term)} differs " \
                                      "from a central difference of that term"
                    smallest = min(smallest, size)
        if not found:
            return [], ""
        whole, bound = _at_line(self.line, _side, self.whole, values, moved, self.sizes)
        scale = max(norm_bound(whole), norm_bound(dense(linear)), TINY)
        found.append(judge(linear, whole, rounding(bound) + floor,
                           IDENTITY_TOLERANCE * min(1.0, smallest / scale)))
        return found, "it differs from the sum of its terms' differentials"

    def _difference(self, term, ell, bound, values, direction) -> Comparison:
        def function(moved):
            for alias, vector in self.tied.items():
                moved[alias] = DiagValue(dense(moved[vector]))
            return _at_line(self.line, evaluate_raw, term, moved, None, self.sizes)

        return compare_with_difference(function, ell, values, direction, rounding(bound))


def _sums(expr, moving) -> list:
    """The terms of every sum in ``expr`` with at least two that vary with ``moving``."""
    found, seen = [], set()
    for node in E.walk(expr):
        if isinstance(node, E.Add) and node not in seen:
            seen.add(node)
            terms = [t for t in node.terms if _moves(t, moving)]
            if len(terms) > 1:
                found.append(terms)
    return found


def _moves(expr, moving) -> bool:
    return any(isinstance(n, E.Symbol) and n.name in moving for n in E.walk(expr))


def line_verdict(block, index, line, comparison: Comparison, failure: str) -> LineVerdict:
    """The LineVerdict of a comparison: its note says why it failed (``failure``) or was
    not checked.  The Jacobian and Hessian checks make theirs with it."""
    if comparison.failed:
        note = failure
    elif not comparison.checked:
        note = f"not checked: {comparison.reason}"
    else:
        note = ""
    return LineVerdict(block, index, line, comparison.error, comparison.ok, note,
                       checked=comparison.checked or comparison.failed,
                       tolerance=comparison.bound)


def _perturbed(chain, function_expr, differential, active):
    """Operands to move: those whose differentials the line shows, and every active
    operand of the function (so a line that forgets a term fails). An alias
    ``S = Diag(s)`` moves with s when the line writes dS as Diag(ds): ``tied``."""
    shown = [s.name for s in E.differentials_in(differential)]
    names, tied = list(shown), {}
    for n in E.walk(function_expr):
        if not isinstance(n, E.Symbol) or n.name not in active or n.name in names:
            continue
        vector = _aliased(chain, n)
        if vector is not None and vector in shown:
            tied[n.name] = vector
        elif n.name not in tied:
            names.append(n.name)
    return names, tied


MULTILINEAR = (E.Mul, E.Hadamard, E.Frobenius, E.Kron, E.Transpose, E.Trace)


def varying_part(expr, moving) -> E.Expr:
    """``expr`` without the terms that do not depend on ``moving``: its derivative along
    them exactly, but a difference of it is not swamped by a constant (``E = q + 10¹⁵``
    leaves ``q``; ``c (q + k)`` leaves ``c q``, through any product linear in each
    factor).  Those terms are constant, so no rounding of theirs enters the comparison."""
    if isinstance(expr, E.Add):
        kept = [varying_part(t, moving) for t in expr.terms if _moves(t, moving)]
        return expr if not kept else kept[0] if len(kept) == 1 else E.Add(tuple(kept))
    if isinstance(expr, MULTILINEAR):
        varying = [c for c in expr.children if _moves(c, moving)]
        if len(varying) == 1:
            return expr.rebuild([varying_part(c, moving) if c is varying[0] else c
                                 for c in expr.children])
    return expr


def _aliased(chain, symbol):
    """z when ``symbol`` is defined as ``Diag(z)``, else None."""
    definition = chain.definition_of(symbol)
    if definition is not None and isinstance(definition.expr, E.Diag) \
            and isinstance(definition.expr.arg, E.Symbol):
        return definition.expr.arg.name
    return None


def _at_line(line, function, *args):
    """Call ``function``; a DomainError learns the source line it happened on."""
    try:
        return function(*args)
    except DomainError as error:
        if getattr(error, "line", None) is None:
            error.line = line
        raise


def propagate(derivation, values, direction: dict, sizes) -> dict:
    """dX of every defined variable along the wrt ``direction``, in chain order.

    Uses the line that shows dX (not an alias line); a variable without one (an
    alias ``S = Diag(s)``) is linearised from its definition.  Values stay compact.
    """
    shown = {line.differential_of.name: line for line in derivation.definitions
             if not line.is_alias}
    diffs = dict(direction)
    for definition in derivation.chain.definitions:
        tick(derivation.chain.source, definition.line)
        name = definition.symbol.name
        if name in shown:
            diffs[name] = evaluate_raw(shown[name].differential, values, diffs, sizes)
        else:
            diffs[name] = _linearise(definition.expr, values, diffs, sizes)
    return diffs


def _linearise(expr, values, diffs, sizes):
    """d(expr): exact for ``Diag(s)``, else a central difference along the operands' dX."""
    if isinstance(expr, E.Diag) and isinstance(expr.arg, E.Symbol):
        return evaluate_raw(E.Diag(E.Differential(expr.arg)), values, diffs, sizes)
    moved = {n.name: diffs[n.name] for n in E.walk(expr)
             if isinstance(n, E.Symbol) and n.name in diffs}
    if not moved:
        return np.zeros(dense(evaluate(expr, values, None, sizes)).shape)
    return _richardson(lambda v: evaluate(expr, v, None, sizes), values, moved, STEPS[0])[0]


def _side(expr, values, diffs, sizes) -> tuple:
    """A side of an identity: its value and the size of its terms (its rounding scale)."""
    memo = evaluate_all(expr, values, diffs, sizes)
    return finite(dense(memo[id(expr)]), expr), _bound(expr, memo)


def _identity(sides) -> Comparison:
    """Two sides of an exact identity: equal up to the rounding of their terms."""
    (a, a_size), (b, b_size) = sides
    return judge(a, b, rounding(a_size + b_size), IDENTITY_TOLERANCE)


def _substitution_verdicts(derivation, values, sizes, all_diffs) -> list:
    lines = derivation.substitutions
    found: list[list] = [[] for _ in lines]
    for diffs in all_diffs:
        sides = [_side(line.expr, values, diffs, sizes) for line in lines]
        for index in range(len(lines)):
            found[index].append(_identity((sides[index], sides[0])))
    return [line_verdict("substitution", i, 0, worst(c),
                          "not equal to the first line dE (an exact identity)")
            for i, c in enumerate(found)]


def _step_verdicts(derivation, values, sizes, all_diffs) -> list:
    """Each backprop step ``z̄ : dz = z̄ : ℓ_z = Σ Gᵢ : dYᵢ`` is an exact identity."""
    steps = derivation.steps
    found: list[list] = [[] for _ in steps]
    for diffs in all_diffs:
        for index, step in enumerate(steps):
            lhs = step.substituted if index == 0 else \
                E.Frobenius(E.Adjoint(step.variable), E.Differential(step.variable))
            expected = _side(lhs, values, diffs, sizes)
            for side in (step.substituted, step.moved):
                found[index].append(_identity((_side(side, values, diffs, sizes), expected)))
    return [line_verdict("step", i, 0, worst(c), "the two sides differ (an exact identity)")
            for i, c in enumerate(found)]


def shown_gradient(derivation, gradient):
    """The form the output displays: expanded with ``--expand``."""
    if derivation.options.get("expand") and gradient.expanded is not None:
        return gradient.expanded
    return gradient.expr


def magnitude(expr, values, diffs, sizes) -> float:
    """A bound on the size of every term of ``expr`` (norms are submultiplicative):
    the scale its rounding errors have, even where the terms cancel to 0."""
    return _bound(expr, evaluate_all(expr, values, diffs, sizes))


def _bound(e, memo) -> float:
    """Σ over terms of Π over factors of their norms, times √k for a product summing k
    terms per entry (the typical growth of rounding in a dot product of length k)."""
    if isinstance(e, E.Add):
        return sum(_bound(t, memo) for t in e.terms)
    if isinstance(e, (E.Mul, E.Frobenius, E.Hadamard)):
        return float(np.prod([_bound(c, memo) for c in e.children])) * np.sqrt(_inner_length(e))
    return norm_bound(memo[id(e)])


def _inner_length(e) -> int:
    """The longest sum an entry of this product adds up (1 for a Hadamard product)."""
    if isinstance(e, E.Frobenius):
        return max(1, _entries(e.left.shape))
    if isinstance(e, E.Mul):
        return max([_entries((f.shape[1], 1)) for f in e.factors[:-1]] + [1])
    return 1


def _entries(shape) -> int:
    rows, cols = shape
    try:
        return int(rows) * int(cols)
    except TypeError:       # a symbolic size: the check's sizes are small
        return 4


def _gradient_verdicts(derivation, values, sizes, wrt_dirs) -> list:
    """Σ G_W : dW against the objective moved along all wrt jointly."""
    gradients = derivation.gradients
    if not gradients:
        return []
    g_values = [evaluate_raw(shown_gradient(derivation, g), values, None, sizes)
                for g in gradients]
    chain = _varying_objective(derivation.chain)
    objective = chain.objective.symbol.name
    inputs = {item.symbol.name: values[item.symbol.name] for item in chain.inputs}

    def f(moved):
        return dense(forward(chain, moved, sizes, keep_diagonal=True)[objective])

    g_scales = [magnitude(shown_gradient(derivation, g), values, None, sizes) for g in gradients]

    def linear(direction):
        return sum(inner(gv, direction[g.wrt.name])
                   for g, gv in zip(gradients, g_values) if g.wrt.name in direction)

    def linear_floor(direction):
        return rounding(sum(scale * norm_bound(direction[g.wrt.name])
                            for g, scale in zip(gradients, g_scales) if g.wrt.name in direction))

    def compare(direction):
        return compare_with_difference(f, np.array([[linear(direction)]]), inputs, direction,
                                       linear_floor(direction))

    joint = worst(compare(direction) for direction in wrt_dirs)
    line = derivation.chain.wrt_line
    failure = f"Σ G:d{gradients[0].wrt.name} differs from a central difference of the objective"
    balanced, hidden = _balanced(gradients, g_values, wrt_dirs[0], inputs)
    unseen: set = set()
    if joint.ok and hidden:         # shares too small to see in the joint comparison
        comparison = compare(balanced)
        if comparison.failed:
            joint = comparison
        elif not comparison.checked:
            unseen = hidden
    if joint.ok or len(gradients) == 1:
        verdict = line_verdict("gradient", 0, line, joint, failure)
        if len(gradients) > 1 and verdict.checked:
            verdict = dataclasses.replace(verdict, note="checked jointly with all wrt")
        return [dataclasses.replace(verdict, index=i) if i not in unseen else
                dataclasses.replace(verdict, index=i, checked=False, note=(
                    f"not checked: ∂{objective}/∂{gradients[i].wrt.name} is too small a "
                    "share of the joint derivative to see, and alone it cannot be resolved"))
                for i in range(len(gradients))]
    alone = [compare({g.wrt.name: wrt_dirs[0][g.wrt.name]}) for g in gradients]
    any_alone = any(c.failed for c in alone)
    verdicts = []
    for i, (g, c) in enumerate(zip(gradients, alone)):
        note = f"joint error {joint.error:.3g}; ∂{objective}/∂{g.wrt.name} alone {c.error:.3g}"
        ok = any_alone and c.ok
        seen = not any_alone or c.checked or c.failed   # alone, it may confirm nothing
        if not seen:
            note = f"not checked: {c.reason} ({note})"
        verdicts.append(LineVerdict("gradient", i, line, c.error if any_alone else joint.error,
                                    ok, note, checked=seen,
                                    tolerance=c.bound if any_alone else joint.bound))
    return verdicts


VISIBLE = 1e-3     # a wrt whose share of the joint derivative is smaller is checked apart


def _balanced(gradients, g_values, direction, inputs) -> tuple:
    """The joint ``direction`` rescaled so every wrt's term ``G : dW`` has the size of the
    largest, and the wrt whose share was below ``VISIBLE`` of it (empty: none hidden).
    In a deep σ network ∂E/∂W₁ is 10⁻¹² of ∂E/∂W₂₀: the joint comparison cannot see it
    doubled.  Shares come from the shown gradients' sizes (RMS over random directions)."""
    if len(gradients) < 2:
        return direction, set()
    shares = [norm_bound(gv) * norm_bound(direction[g.wrt.name])
              / np.sqrt(np.size(inputs[g.wrt.name])) for g, gv in zip(gradients, g_values)]
    top = max(shares)
    hidden = {i for i, share in enumerate(shares) if share < VISIBLE * top}
    if not hidden or not np.isfinite(top):
        return direction, set()
    return {g.wrt.name: scaled(direction[g.wrt.name], min(top / max(share, TINY), 1e12))
            for g, share in zip(gradients, shares)}, hidden


def _varying_objective(chain):
    """The chain with its objective's constant terms left out (``varying_part``)."""
    last = chain.objective
    expr = varying_part(last.expr, chain.varying())
    if expr is last.expr:
        return chain
    return dataclasses.replace(chain, definitions=chain.definitions[:-1]
                               + (dataclasses.replace(last, expr=expr),))


# ---------------------------------------------------------------- further forms


ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")


def check_alternatives(chain, seed: int = 0) -> list:
    """A sentence for every further form the asker wrote (``J = A = B``: B), compared with
    the first at one random point: the derivation uses the first, so a form that does not
    agree must be said, not dropped."""
    if not chain.alternatives:
        return []
    rng = Draws(seed)
    sizes = assign_sizes(chain)
    for attempt in range(MAX_TRIES):
        point = draw_point(chain, sizes, rng, STRATEGIES[attempt % len(STRATEGIES)])
        try:
            with np.errstate(all="ignore"):
                return [_compare_form(chain, alternative, forward(chain, point, sizes), sizes, k, seed)
                        for k, alternative in enumerate(chain.alternatives)]
        except DomainError:
            continue
    return [Notice(f"line {line}: the further forms of {name} could not be checked: every "
                   "random point left a function's domain", line, column)
            for name, _, line, column in chain.alternatives[:1]]


def _compare_form(chain, alternative, values, sizes, index, seed=0) -> Notice:
    name, expr, line, column = alternative
    earlier = sum(1 for other in chain.alternatives[:index] if other[0] == name)
    ordinal = ORDINALS[min(earlier + 1, len(ORDINALS) - 1)]
    error = relative_error(values[name], evaluate(expr, values, sizes=sizes))
    if error <= TOLERANCE:
        return note(f"line {line}: the {ordinal} form of {name} agrees with the first (checked "
                    "at a random point)", line, column)
    return Notice(f"line {line}: the {ordinal} form of {name} does not agree with the first: "
                  f"relative difference {error:.2g} at a random point (seed {seed}); derive uses "
                  "the first", line, column)
