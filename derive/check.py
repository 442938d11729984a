"""A Derivation → a CheckResult: every displayed line verified at one random point.

Definition lines are compared with a central difference of their own function,
substitution lines with the first line (they are exact identities), the gradient
with a central difference of the objective. All wrt inputs move jointly along a
few random directions; per-variable errors are computed only to localise a failure.
The cost is a few forward passes, linear in the chain.
"""
from __future__ import annotations

from typing import cast

import numpy as np
import sympy

from . import expr as E
from .derivation import CheckResult, Derivation, LineVerdict
from .errors import EXIT_INPUT, DeriveError, Notice, note
from .functions import ELEMENTWISE
from .evaluate import DomainError, concrete_shape, dense, evaluate, forward
from .limits import current as current_limits
from .limits import raise_it, tick

TOLERANCE = 1e-6
IDENTITY_TOLERANCE = 1e-9
STEP = 1e-6           # central-difference step, relative to the operands' scale
WIDE_STEPS = (1e-3, 1e-4)   # fourth-order fallback steps, for lines with small derivatives
SHRINKS = (1.0, 0.1, 0.01)   # central-difference steps tried, as fractions of STEP
MAX_TRIES = 21
STRATEGIES = ("normal", "abs", "shifted")
TINY = 1e-300

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
    """Verify every displayed line; redraw the point when a function leaves its domain."""
    chain = derivation.chain
    rng = np.random.default_rng(seed)
    sizes = assign_sizes(chain)
    _check_entries(chain, sizes)
    last = None
    for attempt in range(MAX_TRIES):
        tick()
        point = draw_point(chain, sizes, rng, STRATEGIES[attempt % len(STRATEGIES)])
        try:
            with np.errstate(all="ignore"):   # inf and nan are caught, not warned about
                verdicts = _verdicts(derivation, point, sizes, rng, directions)
        except DomainError as error:
            last = error
            continue
        return CheckResult(seed=seed, tolerance=TOLERANCE, identity_tolerance=IDENTITY_TOLERANCE,
                           directions=directions,
                           sizes={s.name: v for s, v in sizes.items()},
                           verdicts=tuple(verdicts))
    # MAX_TRIES ≥ 1, and every attempt that does not return sets ``last``
    raise _domain_failure(chain, cast(DomainError, last))


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


def draw_point(chain, sizes, rng, strategy: str = "normal") -> dict:
    """One random value per input, honouring its declared properties."""
    return {item.symbol.name: draw_input(item.symbol, sizes, rng, strategy)
            for item in chain.inputs}


def draw_input(symbol: E.Symbol, sizes, rng, strategy: str) -> np.ndarray:
    """``normal``, ``abs`` (|normal| + 0.1) or ``shifted`` (I + 0.3·normal when square)."""
    rows, cols = concrete_shape(symbol.shape, sizes)
    props = symbol.props
    base = rng.normal(size=(rows, cols))
    square = rows == cols
    if strategy == "abs" or "positive" in props:
        base = np.abs(base) + 0.1
    elif strategy == "shifted" and square:
        base = np.eye(rows) + 0.3 * base
    if not square:
        return base
    if "spd" in props:
        return base @ base.T + rows * np.eye(rows)
    if "invertible" in props and strategy == "normal":
        base = np.eye(rows) + 0.3 * base
    if "diagonal" in props:
        return np.diag(np.diag(base))
    if "symmetric" in props:
        return (base + base.T) / 2
    return base


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


# ---------------------------------------------------------------- the verdicts


def _verdicts(derivation, point, sizes, rng, directions) -> list:
    chain = derivation.chain
    values = forward(chain, point, sizes, keep_diagonal=True)
    values.update(adjoint_values(derivation, values, sizes))
    wrt_dirs = [{w.name: _direction(derivation, w, values, rng) for w in chain.wrt}
                for _ in range(directions)]
    return (_definition_verdicts(derivation, values, sizes, rng, directions)
            + _substitution_verdicts(derivation, values, sizes, wrt_dirs)
            + _step_verdicts(derivation, values, sizes, wrt_dirs)
            + _gradient_verdicts(derivation, values, sizes, wrt_dirs))


def _direction(derivation, w, values, rng):
    """A random direction for ``w``; symmetric when its gradient is the symmetric-subspace one
    (``sym(G) : dW = G : dW`` holds only for symmetric dW)."""
    d = rng.normal(size=dense(values[w.name]).shape)
    structured = w.props & {"symmetric", "spd"}
    if derivation.options.get("symmetric_gradient") and structured and d.shape[0] == d.shape[1]:
        d = (d + d.T) / 2
    return d


def adjoint_values(derivation, values, sizes) -> dict:
    """The named adjoints ``z̄`` at the point, in sweep order (each needs only earlier ones)."""
    found: dict[str, object] = {}
    for step in derivation.steps[1:]:
        found[E.Adjoint(step.variable).key] = evaluate(step.adjoint, {**values, **found}, None, sizes)
    return found


def relative_error(a, b, floor: float = TINY) -> float:
    """‖a − b‖ relative to the larger of ‖a‖, ‖b‖ and ``floor`` (the rounding noise
    level, so a derivative that is truly 0 is not judged by its noise alone).

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


def noise_floor(magnitude: float | np.floating, tolerance: float, spread: float = 1.0) -> float:
    """The scale below which a difference is rounding noise: ``10 ε · magnitude / spread``,
    divided by the tolerance so noise alone can never fail a line."""
    return 10 * np.finfo(float).eps * magnitude / (spread * tolerance)


def _step(values: dict, names) -> float:
    """The central-difference step: STEP relative to the largest perturbed entry."""
    largest = max((np.max(np.abs(dense(values[n]))) for n in names), default=1.0)
    return STEP * max(1.0, float(largest))


def _shifted(values: dict, direction: dict, t: float) -> dict:
    moved = dict(values)
    for name, d in direction.items():
        moved[name] = dense(values[name]) + t * d
    return moved


def _difference(function, values, direction, shrink: float = 1.0):
    """Central difference of ``function(values)`` along ``direction``, its step and the
    rounding-noise floor of its value."""
    t = _step(values, direction) * shrink
    plus = function(_shifted(values, direction, t))
    minus = function(_shifted(values, direction, -t))
    magnitude = max(np.linalg.norm(dense(plus)), np.linalg.norm(dense(minus)))
    return (plus - minus) / (2 * t), t, noise_floor(magnitude, TOLERANCE, t)


def _fourth_order(function, values, direction, t):
    """``(8(f(t)−f(−t)) − (f(2t)−f(−2t))) / 12t``: O(t⁴) error, so t can be large."""
    try:
        f = {k: function(_shifted(values, direction, k * t)) for k in (-2, -1, 1, 2)}
    except DomainError:
        return None
    return (8 * (f[1] - f[-1]) - (f[2] - f[-2])) / (12 * t)


def _compare_with_difference(function, linear, values, direction, linear_floor=0.0) -> float:
    """Relative error of the linear form against the derivative of ``function``.

    A steep function can defeat one step size, so a failure is retried with smaller
    central-difference steps and a wide fourth-order one; a right derivative agrees at
    some step, a wrong one at none.  ``linear_floor`` is the rounding scale of the
    linear form's own terms.
    """
    numeric, _, floor = _difference(function, values, direction)   # a DomainError redraws
    error = relative_error(linear, numeric, max(floor, linear_floor))
    for shrink in SHRINKS[1:]:
        if error <= TOLERANCE:
            return error
        numeric, _, floor = _difference(function, values, direction, shrink)
        error = min(error, relative_error(linear, numeric, max(floor, linear_floor)))
    for wide in WIDE_STEPS:
        better = _fourth_order(function, values, direction, _step(values, direction) * wide / STEP)
        if better is not None:
            error = min(error, relative_error(linear, better, max(floor, linear_floor)))
    return error


def _definition_verdicts(derivation, values, sizes, rng, directions) -> list:
    chain = derivation.chain
    active = chain.varying()
    verdicts = []
    for index, line in enumerate(derivation.definitions):
        tick(chain.source, line.line)
        target = line.differential_of
        function_expr = line.expr if not line.is_alias else chain.definition_of(target).expr
        names, tied = _perturbed(chain, function_expr, line.differential, active)

        def function(moved, expr=function_expr, line=line, tied=tied):
            for alias, vector in tied.items():
                moved[alias] = np.diagflat(moved[vector])
            return _at_line(line.line, evaluate, expr, moved, None, sizes)

        worst = 0.0
        for _ in range(directions):
            direction = {n: rng.normal(size=values[n].shape) for n in names}
            linear = _at_line(line.line, evaluate, line.differential, values, direction, sizes)
            floor = noise_floor(magnitude(line.differential, values, direction, sizes), TOLERANCE)
            worst = max(worst, _compare_with_difference(function, linear, values, direction, floor))
        ok = worst <= TOLERANCE
        note = "" if ok else (f"d{target.name} differs from a central difference of "
                              f"{target.name}'s definition")
        verdicts.append(LineVerdict("definition", index, line.line, worst, ok, note))
    return verdicts


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
    alias ``S = Diag(s)``) is linearised from its definition.
    """
    shown = {line.differential_of.name: line for line in derivation.definitions
             if not line.is_alias}
    diffs = dict(direction)
    for definition in derivation.chain.definitions:
        tick(derivation.chain.source, definition.line)
        name = definition.symbol.name
        if name in shown:
            diffs[name] = evaluate(shown[name].differential, values, diffs, sizes)
        else:
            diffs[name] = _linearise(definition.expr, values, diffs, sizes)
    return diffs


def _linearise(expr, values, diffs, sizes):
    """d(expr): exact for ``Diag(s)``, else a central difference along the operands' dX."""
    if isinstance(expr, E.Diag) and isinstance(expr.arg, E.Symbol):
        return evaluate(E.Diag(E.Differential(expr.arg)), values, diffs, sizes)
    moved = {n.name: diffs[n.name] for n in E.walk(expr)
             if isinstance(n, E.Symbol) and n.name in diffs}
    if not moved:
        return np.zeros(dense(evaluate(expr, values, None, sizes)).shape)
    return _difference(lambda v: evaluate(expr, v, None, sizes), values, moved)[0]


def _substitution_verdicts(derivation, values, sizes, wrt_dirs) -> list:
    lines = derivation.substitutions
    worst = [0.0] * len(lines)
    for direction in wrt_dirs:
        diffs = propagate(derivation, values, direction, sizes)
        first = evaluate(lines[0].expr, values, diffs, sizes) if lines else None
        for index, line in enumerate(lines):
            value = evaluate(line.expr, values, diffs, sizes)
            floor = noise_floor(magnitude(line.expr, values, diffs, sizes), IDENTITY_TOLERANCE)
            worst[index] = max(worst[index], relative_error(value, first, floor))
    return [LineVerdict("substitution", i, 0, err, err <= IDENTITY_TOLERANCE,
                        "" if err <= IDENTITY_TOLERANCE else
                        "not equal to the first line dE (an exact identity)")
            for i, err in enumerate(worst)]


def _step_verdicts(derivation, values, sizes, wrt_dirs) -> list:
    """Each backprop step ``z̄ : dz = z̄ : ℓ_z = Σ Gᵢ : dYᵢ`` is an exact identity."""
    steps = derivation.steps
    worst = [0.0] * len(steps)
    for direction in wrt_dirs:
        diffs = propagate(derivation, values, direction, sizes)
        for index, step in enumerate(steps):
            lhs = step.substituted if index == 0 else \
                E.Frobenius(E.Adjoint(step.variable), E.Differential(step.variable))
            expected = evaluate(lhs, values, diffs, sizes)
            for side in (step.substituted, step.moved):
                floor = noise_floor(magnitude(side, values, diffs, sizes), IDENTITY_TOLERANCE)
                error = relative_error(evaluate(side, values, diffs, sizes), expected, floor)
                worst[index] = max(worst[index], error)
    return [LineVerdict("step", i, 0, err, err <= IDENTITY_TOLERANCE,
                        "" if err <= IDENTITY_TOLERANCE else "the two sides differ (an exact identity)")
            for i, err in enumerate(worst)]


def shown_gradient(derivation, gradient):
    """The form the output displays: expanded with ``--expand``."""
    if derivation.options.get("expand") and gradient.expanded is not None:
        return gradient.expanded
    return gradient.expr


def magnitude(expr, values, diffs, sizes) -> float:
    """A bound on the size of every term of ``expr`` (norms are submultiplicative):
    the scale its rounding errors have, even where the terms cancel to 0."""
    def bound(e):
        if isinstance(e, E.Add):
            return sum(bound(t) for t in e.terms)
        if isinstance(e, (E.Mul, E.Frobenius, E.Hadamard)):
            return float(np.prod([bound(c) for c in e.children]))
        return float(np.linalg.norm(dense(evaluate(e, values, diffs, sizes))))
    return bound(expr)


def _gradient_verdicts(derivation, values, sizes, wrt_dirs) -> list:
    """Σ G_W : dW against the objective moved along all wrt jointly."""
    gradients = derivation.gradients
    if not gradients:
        return []
    g_values = [evaluate(shown_gradient(derivation, g), values, None, sizes) for g in gradients]
    objective = derivation.chain.objective.symbol.name
    inputs = {item.symbol.name: values[item.symbol.name] for item in derivation.chain.inputs}

    def f(moved):
        return dense(forward(derivation.chain, moved, sizes, keep_diagonal=True)[objective])

    g_scales = [magnitude(shown_gradient(derivation, g), values, None, sizes) for g in gradients]

    def linear(direction):
        return sum(float(np.sum(gv * direction[g.wrt.name]))
                   for g, gv in zip(gradients, g_values) if g.wrt.name in direction)

    def linear_floor(direction):
        return noise_floor(sum(scale * np.linalg.norm(direction[g.wrt.name])
                               for g, scale in zip(gradients, g_scales) if g.wrt.name in direction),
                           TOLERANCE)

    joint = 0.0
    for direction in wrt_dirs:
        joint = max(joint, _compare_with_difference(f, np.array([[linear(direction)]]),
                                                    inputs, direction, linear_floor(direction)))
    line = derivation.chain.wrt_line
    if joint <= TOLERANCE or len(gradients) == 1:
        note = "checked jointly with all wrt" if len(gradients) > 1 else ""
        if joint > TOLERANCE:
            note = f"Σ G:d{gradients[0].wrt.name} differs from a central difference of the objective"
        return [LineVerdict("gradient", i, line, joint, joint <= TOLERANCE, note)
                for i in range(len(gradients))]
    return _localise(gradients, f, linear, linear_floor, inputs, wrt_dirs[0], joint, line,
                     objective)


def _localise(gradients, f, linear, linear_floor, inputs, direction, joint, line,
              objective) -> list:
    """After a joint failure: the error of each gradient alone, to name the wrong one."""
    alone = []
    for g in gradients:
        own = {g.wrt.name: direction[g.wrt.name]}
        alone.append(_compare_with_difference(f, np.array([[linear(own)]]), inputs, own,
                                              linear_floor(own)))
    any_alone = any(err > TOLERANCE for err in alone)
    verdicts = []
    for i, (g, err) in enumerate(zip(gradients, alone)):
        ok = any_alone and err <= TOLERANCE
        note = f"joint error {joint:.3g}; ∂{objective}/∂{g.wrt.name} alone {err:.3g}"
        verdicts.append(LineVerdict("gradient", i, line, err if any_alone else joint, ok, note))
    return verdicts


# ---------------------------------------------------------------- further forms


ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")


def check_alternatives(chain, seed: int = 0) -> list:
    """A sentence for every further form the asker wrote (``J = A = B``: B), compared with
    the first at one random point: the derivation uses the first, so a form that does not
    agree must be said, not dropped."""
    if not chain.alternatives:
        return []
    rng = np.random.default_rng(seed)
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
