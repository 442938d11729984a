"""The sweep's trace becomes the lines a derivation displays: plain substitutions or
named adjoints.

The sweep (sweep.py) eliminates one variable at a time and records, for each, its
adjoint ``z̄ = G`` written with the adjoints of later variables, the substituted form
``z̄ : ℓ_z`` and the moved terms ``Σ Gᵢ : dYᵢ``.  Two ways to show that trace:

- **plain**: every ``z̄`` replaced by its value, one ``= …`` line per elimination,
  each equal to ``dE`` — the seed's four lines.  A line repeats every adjoint before
  it, so the block grows with the square of the depth.
- **named**: each adjoint gets a name and a line of its own (backpropagation), so
  every line stays short however deep the chain.

The plain form is shown while it reads: one wrt, no variable feeding two definitions,
and no adjoint that, written out, grows past ``PLAIN_NODES`` nodes — past that it would
repeat the adjoints before it on every line, and naming them keeps the output linear
in the chain's length.
"""
from __future__ import annotations


from .record import record
from .chain import Chain
from .derivation import AdjointStep, SubstitutionLine
from .expr import (SCALAR, Add, Differential, Expr, Frobenius, Mul, Number, Symbol, Zero,
                   replace_nodes, walk)
from .printer import differential_prefix, latex
from .rule import Rule
from .simplify import factor, simplify

IDENTIFICATION = Rule("dE = G:dW ⟺ ∂E/∂W = G", r"dE = G:dW \iff \frac{\partial E}{\partial W} = G")

# an adjoint written out in more nodes than this is named instead (the longest the
# gallery's plain blocks show has 17; a layer h = tanh(W h′) adds 11)
PLAIN_NODES = 60


@record
class Elimination:
    """One variable eliminated by the sweep, the objective first.

    ``adjoint`` is written with the named adjoints of later variables (``Adjoint``
    nodes; 1 for the objective); ``moved`` lists ``(Y, Gᵢ)`` with ``z̄ : ℓ_z = Σ Gᵢ : dYᵢ``,
    each ``Gᵢ`` in terms of ``z̄``.
    """

    variable: Symbol
    adjoint: Expr
    bar: Expr                 # z̄, what ``moved`` is written with (1 for the objective)
    linear: Expr              # ℓ_z, the differential substituted for dz
    moved: tuple              # of (Symbol, Expr), one per differential left
    rules: tuple = ()         # the rules that moved the coefficients left of ``:``


@record
class Trace:
    eliminations: tuple       # of Elimination, the objective first
    remaining: dict           # wrt name -> its adjoint, in terms of named adjoints


def pair(g: Expr, linear: Expr) -> Expr:
    """``G : ℓ``, written as a plain product when both are scalars."""
    if g.is_scalar and linear.is_scalar:
        return linear if g == Number(1) else Mul((g, linear))
    return Frobenius(g, linear)


def total(terms, shape) -> Expr:
    """The sum of ``terms`` without its zeros (``Zero(shape)`` when nothing is left)."""
    terms = [t for t in terms if not isinstance(t, Zero)]
    if not terms:
        return Zero(shape)
    return terms[0] if len(terms) == 1 else Add(tuple(terms))


def substitute(chain: Chain, z: Symbol) -> Rule:
    """The rule ``substitute dZ``; its LaTeX writes dZ as the derivation's lines do."""
    dz = latex(Differential(z), differential_prefix(chain))
    return Rule(f"substitute d{z.name}", rf"\text{{substitute }} {dz}")


def lines(chain: Chain, trace: Trace):
    """``(substitutions, steps, adjoints)``: the displayed lines, one of the two blocks
    empty, and each wrt input's adjoint as the gradient will read it."""
    if not reused(chain):
        plain = plain_lines(chain, trace)
        if plain is not None:
            return plain[0], (), plain[1]
    return (), named_steps(trace), trace.remaining


def reused(chain: Chain) -> bool:
    """Several wrt, or a varying variable that feeds more than one definition (an alias
    ``S = Diag(s)`` is notation, not a use)."""
    if len(chain.wrt) > 1:
        return True
    varying, aliases = chain.varying(), chain.aliases()
    users: dict = {}
    for definition in chain.definitions:
        if definition.symbol.name in aliases:
            continue
        for name in {n.name for n in walk(definition.expr) if isinstance(n, Symbol)} & varying:
            users[name] = users.get(name, 0) + 1
    return any(count > 1 for count in users.values())


def named_steps(trace: Trace) -> tuple:
    """Backprop with named adjoints: one AdjointStep per elimination, as the trace has it."""
    first, *rest = trace.eliminations
    return (AdjointStep(first.variable, first.adjoint, first.linear, _moved_sum(first.moved),
                        first.rules),
            *(AdjointStep(e.variable, factor(e.adjoint), pair(e.bar, e.linear), _moved_sum(e.moved),
                          e.rules) for e in rest))


def _moved_sum(moved) -> Expr:
    return total([pair(g, Differential(y)) for y, g in moved], SCALAR)


def plain_lines(chain: Chain, trace: Trace):
    """The substitution lines and the wrt adjoints with every ``z̄`` written out; None
    when an adjoint grows past ``PLAIN_NODES`` (the plain block would stop reading)."""
    first, *rest = trace.eliminations
    shown = [SubstitutionLine(first.linear)]
    pending: dict = {}            # name -> (symbol, contributions written out)
    # a variable the sweep did not eliminate, and no wrt input, has the adjoint 0
    kept = {e.variable.name for e in rest} | {w.name for w in chain.wrt}
    _arrive(pending, first, first.bar, kept)
    rules = first.rules
    for e in rest:
        _, contributions = pending.pop(e.variable.name)
        g = simplify(total(contributions, e.variable.shape))
        if _nodes(g) > PLAIN_NODES:
            return None
        line = total([pair(g, e.linear), *_terms(pending)], first.linear.shape)
        shown.append(SubstitutionLine(line, e.variable, rules + (substitute(chain, e.variable),)))
        _arrive(pending, e, g, kept)
        rules = e.rules
    order = [w.name for w in chain.wrt]
    pending = dict(sorted(pending.items(), key=lambda item: order.index(item[0])))
    final = total(_terms(pending), first.linear.shape)
    if pending and final != shown[-1].expr:
        shown.append(SubstitutionLine(final, None, rules + (IDENTIFICATION,)))
    adjoints = {name: simplify(total(gs, sym.shape)) for name, (sym, gs) in pending.items()}
    return shown, adjoints


def _arrive(pending: dict, e: Elimination, value: Expr, kept: set) -> None:
    """The moved terms of ``e`` (those on ``kept`` names) with ``z̄`` written out as
    ``value``, added to pending."""
    bar = e.bar
    for y, g in e.moved:
        if y.name not in kept:
            continue
        written = g if bar == value else simplify(replace_nodes(g, {bar: value}))
        pending.setdefault(y.name, (y, []))[1].append(written)


def _terms(pending: dict) -> list:
    return [pair(simplify(total(gs, sym.shape)), Differential(sym)) for sym, gs in pending.values()]


def _nodes(expr: Expr) -> int:
    return sum(1 for _ in walk(expr))
