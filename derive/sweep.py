"""Chain → derivation: each definition's differential, then the reverse sweep.

Substituting differentials from the objective backwards is reverse-mode
differentiation.  ``backward`` is the whole algorithm, the shape of micrograd's
``backward()``: visit the variables last defined first; each one's adjoint ``z̄`` is
the sum of what its users passed down; substitute ``dz = ℓ_z`` into ``z̄ : dz`` and move
the coefficients left of ``:`` (frobenius.py), which passes ``Gᵢ`` down to each ``Yᵢ``
in ``ℓ_z``.  Each variable is visited once, so the cost is linear in the chain.  What is
left on the wrt inputs is their gradient: ``dE = G_W : dW`` gives ``∂E/∂W = G_W``.

The sweep records a trace; display.py decides how it is shown (plain substitution
lines, or named adjoints).
"""
from __future__ import annotations

import sympy

from .chain import Chain, Definition
from .derivation import DefinitionLine, Derivation, Gradient
from .diagonal import rewrite_with_aliases
from .display import Elimination, Trace, lines as displayed, total
from .errors import Notice, note
from .expr import Add, Adjoint, Diag, Expr, Mul, Number, Symbol, Transpose, Zero, walk
from .frobenius import move_left
from .functions import notes as function_notes
from .limits import bound, tick
from .rules import differentiate
from .simplify import expand as expand_sums, factor, simplify


def build(chain: Chain, expand: bool = False, symmetric: bool = False) -> Derivation:
    """The derivation of ``chain`` (unchecked: check.py verifies it).

    A wrt input declared symmetric or spd gets the gradient of the unstructured function
    (what autodiff and the Cookbook's unstructured formulas give), and a note saying so;
    ``symmetric`` asks for the symmetric-subspace gradient ``sym(G) = (G + Gᵀ)/2`` instead.
    """
    definitions, linear = definition_lines(chain, chain.varying())
    substitutions, steps, adjoints = displayed(chain, backward(chain, linear))
    gradients, warnings = [], list(chain.warnings)
    named = tuple((step.variable, step.adjoint) for step in steps[1:])
    for w in chain.wrt:
        g = adjoints.get(w.name, Zero(w.shape))
        bound(g, f"the gradient of {w.name}", chain.source, chain.wrt_line or None)
        if isinstance(g, Zero):
            warnings.append(Notice(f"{w.name} has no path to the objective "
                                   f"{chain.objective.symbol.name}: its gradient is 0",
                                   chain.wrt_line))
        if _structured(w):
            warnings.append(note(_convention(w, symmetric)))
            g = simplify(Mul((Number(sympy.Rational(1, 2)), Add((g, Transpose(g)))))) if symmetric else g
        gradients.append(Gradient(w, factor(g), expand_sums(g), chain=chain, adjoints=named))
    warnings += [note(n) for n in function_notes([d.expr for d in chain.definitions])]
    return Derivation(chain, tuple(definitions), tuple(substitutions), tuple(gradients),
                      steps=tuple(steps), warnings=tuple(warnings),
                      options={"expand": expand, "symmetric_gradient": symmetric})


def _structured(w: Symbol) -> bool:
    return bool(w.props & {"symmetric", "spd"}) and not w.is_scalar


def _convention(w: Symbol, symmetric: bool) -> str:
    """The gradient convention for a symmetric input, said, never silently chosen."""
    if symmetric:
        return (f"{w.name} is declared symmetric: ∂E/∂{w.name} is the symmetric-subspace gradient "
                f"sym(G) = (G + Gᵀ)/2 of the unstructured gradient G (--symmetric-gradient)")
    return (f"{w.name} is declared symmetric: ∂E/∂{w.name} is the gradient of the unstructured "
            f"function, as autodiff computes it; --symmetric-gradient gives sym(G) = (G + Gᵀ)/2")


# ---------------------------------------------------------------- the sweep


def backward(chain: Chain, linear: dict) -> Trace:
    """The reverse sweep, once over the chain: the objective's adjoint is 1; each
    variable, last defined first, sums what its users passed down into its adjoint
    ``z̄`` and passes ``z̄ : ℓ_z = Σ Gᵢ : dYᵢ`` down to the ``Yᵢ``.  A wrt name is not
    eliminated (even a defined one: it is held independent); what reaches it is its
    adjoint."""
    objective = chain.objective.symbol
    passed: dict[str, list] = {objective.name: [Number(1)]}   # name -> what its users passed
    wrt = {w.name for w in chain.wrt}
    eliminations = []
    for definition in reversed(chain.definitions):
        z = definition.symbol
        if z.name in wrt or z.name not in passed:
            continue
        adjoint = _bounded(simplify(total(passed.pop(z.name), z.shape)), f"the adjoint of {z.name}",
                           chain, definition)
        if isinstance(adjoint, Zero):
            continue
        bar = adjoint if z == objective else Adjoint(z)
        moved, rules = move(bar, linear[z.name])
        for y, g in moved:
            passed.setdefault(y.name, []).append(g)
        eliminations.append(Elimination(z, adjoint, bar, linear[z.name], moved, rules))
    remaining = {w.name: simplify(total(passed[w.name], w.shape)) for w in chain.wrt
                 if w.name in passed}
    return Trace(tuple(eliminations), remaining)


def move(g: Expr, linear: Expr):
    """``g : linear`` as ``((Y, Gᵢ), …)`` with ``g : linear = Σ Gᵢ : dYᵢ`` (one term per
    Y, in order of appearance), and the rules that moved the coefficients."""
    pieces: dict = {}
    used: list = []
    for coefficient, symbol, rules in move_left(g, linear):
        pieces.setdefault(symbol.name, (symbol, []))[1].append(coefficient)
        used.extend(r for r in rules if r not in used)
    moved = tuple((symbol, simplify(total(cs, symbol.shape))) for symbol, cs in pieces.values())
    return moved, tuple(used)


# ---------------------------------------------------------------- definition lines


def definition_lines(chain: Chain, varying: frozenset):
    """One ``Y = f ⟹ dY = ℓ`` line per definition, and each variable's ``ℓ``."""
    lines: list = []
    linear: dict[str, Expr] = {}
    aliases: dict[Expr, Symbol] = {}
    notation = chain.aliases()
    for definition in chain.definitions:
        vector = aliased_vector(definition, linear) if definition.symbol.name in notation else None
        if vector is None:
            ell, rules = differentiate(definition.expr, lambda s: s.name in varying, definition.symbol)
            what = f"the differential of {definition.symbol.name}"
            ell = _bounded(ell, what, chain, definition)      # before simplify expands it
            linear[definition.symbol.name] = _bounded(simplify(ell), what, chain, definition)
            lines.append(DefinitionLine(definition.symbol, definition.expr, definition.symbol,
                                        linear[definition.symbol.name], definition.line, rules))
            continue
        aliases[definition.expr] = definition.symbol
        shown, rules = rewrite_with_aliases(linear[vector.name], aliases)
        linear[vector.name] = shown
        ell, _ = differentiate(definition.expr, lambda s: s.name in varying, definition.symbol)
        linear[definition.symbol.name] = simplify(ell)
        lines.append(DefinitionLine(definition.symbol, definition.expr, vector, shown,
                                    definition.line, rules, is_alias=True))
    return lines, linear


def aliased_vector(definition: Definition, linear: dict):
    """For an alias (``Chain.aliases``), the variable whose line it shows again: ``s`` for
    ``S = Diag(s)``; ``x_2`` for ``F = Diag(f′(x_1))`` of a coefficient in ``dx_2``'s line
    (the latest such), which then reads ``dx_2 = F dx_1``; None when there is none."""
    e = definition.expr
    assert isinstance(e, Diag)
    if isinstance(e.arg, Symbol):
        return e.arg if e.arg.name in linear else None
    for name in reversed(list(linear)):
        if any(n == e.arg for n in walk(linear[name])):
            return Symbol(name, linear[name].shape)
    return None


def _bounded(expr: Expr, what: str, chain: Chain, definition: Definition) -> Expr:
    """``expr``, unless it outgrows the limits or the run its time (limits.py): then an
    input error at the definition it came from."""
    tick(chain.source, definition.line)
    bound(expr, what, chain.source, definition.line, definition.expr_column)
    return expr
