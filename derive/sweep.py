"""Chain → derivation: each definition's differential, then the reverse sweep.

Substituting differentials from the objective backwards is reverse-mode
differentiation: ``dE`` is kept as a sum ``Σ G_Z : dZ``; the variable defined last
is eliminated first by substituting its differential ``dZ = ℓ_Z`` and moving the
coefficients of ``ℓ_Z`` to the left of ``:`` (frobenius.py).  Each variable is
visited once and its adjoint ``G_Z`` collects every use, so the cost is linear in
the chain.  When only ``wrt`` differentials remain, ``dE = G_W : dW`` gives
``∂E/∂W = G_W``.

A chain whose variables are reused (several ``wrt``, or a variable feeding several
definitions) is shown as backpropagation: each adjoint gets a name ``z̄`` and a line
of its own, so every line stays short however deep the chain.
"""
from __future__ import annotations

import sympy

from .chain import Chain, Definition
from .derivation import AdjointStep, DefinitionLine, Derivation, Gradient, SubstitutionLine
from .diagonal import rewrite_with_aliases
from .errors import Notice, note
from .expr import (SCALAR, Add, Adjoint, Diag, Differential, Expr, Frobenius, Mul, Number, Symbol,
                   Transpose, Zero, walk)
from .frobenius import move_left
from .functions import notes as function_notes
from .limits import bound, tick
from .printer import differential_prefix, latex
from .rule import Rule
from .rules import differentiate
from .simplify import expand as expand_sums, factor, simplify

IDENTIFICATION = Rule("dE = G:dW ⟺ ∂E/∂W = G", r"dE = G:dW \iff \frac{\partial E}{\partial W} = G")


def build(chain: Chain, expand: bool = False, symmetric: bool = False) -> Derivation:
    """The derivation of ``chain`` (unchecked: check.py verifies it).

    A wrt input declared symmetric or spd gets the gradient of the unstructured function
    (what autodiff and the Cookbook's unstructured formulas give), and a note saying so;
    ``symmetric`` asks for the symmetric-subspace gradient ``sym(G) = (G + Gᵀ)/2`` instead.
    """
    varying = chain.varying()
    lines, linear = definition_lines(chain, varying)
    substitutions, steps = (), ()
    if reused(chain, varying):
        steps, adjoints = named_sweep(chain, linear)
    else:
        substitutions, adjoints = reverse_sweep(chain, linear)
    gradients, warnings = [], list(chain.warnings)
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
        gradients.append(Gradient(w, factor(g), expand_sums(g), chain=chain))
    warnings += [note(n) for n in function_notes([d.expr for d in chain.definitions])]
    return Derivation(chain, tuple(lines), tuple(substitutions), tuple(gradients),
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


def reused(chain: Chain, varying: frozenset) -> bool:
    """Several wrt, or a varying variable that feeds more than one definition (an alias
    ``S = Diag(s)`` is notation, not a use)."""
    if len(chain.wrt) > 1:
        return True
    users: dict = {}
    aliases = chain.aliases()
    for definition in chain.definitions:
        if definition.symbol.name in aliases:
            continue
        for name in {n.name for n in walk(definition.expr) if isinstance(n, Symbol)} & varying:
            users[name] = users.get(name, 0) + 1
    return any(count > 1 for count in users.values())


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
            return _symbol_of(linear[name], name)
    return None


def _symbol_of(ell: Expr, name: str) -> Symbol:
    """The variable ``name`` with the shape of its differential ``ell``."""
    return Symbol(name, ell.shape)


# ---------------------------------------------------------------- the sweep


def reverse_sweep(chain: Chain, linear: dict):
    """Substitution lines (each equal to dE) and the adjoint of every wrt input."""
    first = linear[chain.objective.symbol.name]
    lines = [SubstitutionLine(first)]
    pending: dict = {}
    _, rules = collect(pending, Number(1), first)
    for z, g in eliminations(chain, pending):
        shown = _sum([pair(g, linear[z.name]), *pending_terms(pending)], first.shape)
        lines.append(SubstitutionLine(shown, z, rules + (substitute(chain, z),)))
        _, rules = collect(pending, g, linear[z.name])
    order = [w.name for w in chain.wrt]
    pending = dict(sorted(pending.items(), key=lambda item: order.index(item[0])))
    final = _sum(pending_terms(pending), first.shape)
    if pending and final != lines[-1].expr:
        lines.append(SubstitutionLine(final, None, rules + (IDENTIFICATION,)))
    return lines, wrt_adjoints(pending)


def eliminations(chain: Chain, pending: dict):
    """``(z, G_z)`` for each variable with a non-zero adjoint, the last defined first;
    ``pending`` grows as the caller substitutes each ``dz``."""
    for definition in reversed(chain.definitions[:-1]):
        z = definition.symbol
        if z.name not in pending:
            continue
        _, contributions = pending.pop(z.name)
        g = _bounded(simplify(_sum(contributions, z.shape)), f"the adjoint of {z.name}", chain,
                     definition)
        if not isinstance(g, Zero):
            yield z, g


def wrt_adjoints(pending: dict) -> dict:
    """What is left when every definition is eliminated: the wrt inputs' adjoints."""
    return {name: simplify(_sum(gs, sym.shape)) for name, (sym, gs) in pending.items()}


def substitute(chain: Chain, z: Symbol) -> Rule:
    """The rule ``substitute dZ``; its LaTeX writes dZ as the derivation's lines do."""
    dz = latex(Differential(z), differential_prefix(chain))
    return Rule(f"substitute d{z.name}", rf"\text{{substitute }} {dz}")


def named_sweep(chain: Chain, linear: dict):
    """Backprop with named adjoints: one AdjointStep per variable, last defined first."""
    objective = chain.objective.symbol
    first = linear[objective.name]
    pending: dict = {}
    moved, rules = collect(pending, Number(1), first)
    steps = [AdjointStep(objective, Number(1), first, moved, rules)]
    for z, g in eliminations(chain, pending):
        bar = Adjoint(z)
        moved, rules = collect(pending, bar, linear[z.name])
        steps.append(AdjointStep(z, factor(g), pair(bar, linear[z.name]), moved, rules))
    return steps, wrt_adjoints(pending)


def collect(pending: dict, g: Expr, linear: Expr):
    """``g : linear`` as ``Σ Gᵢ : dYᵢ`` (one term per Y), each Gᵢ also added to pending."""
    pieces: dict = {}
    used: list[Rule] = []
    for coefficient, symbol, rules in move_left(g, linear):
        pieces.setdefault(symbol.name, (symbol, []))[1].append(coefficient)
        used.extend(r for r in rules if r not in used)
    terms = []
    for symbol, coefficients in pieces.values():
        g_y = simplify(_sum(coefficients, symbol.shape))
        pending.setdefault(symbol.name, (symbol, []))[1].append(g_y)
        terms.append(pair(g_y, Differential(symbol)))
    return _sum(terms, SCALAR), tuple(used)


def pending_terms(pending: dict) -> list:
    return [pair(simplify(_sum(gs, sym.shape)), Differential(sym)) for sym, gs in pending.values()]


def pair(g: Expr, linear: Expr) -> Expr:
    """``G : ℓ``, written as a plain product when both are scalars."""
    if g.is_scalar and linear.is_scalar:
        return linear if g == Number(1) else Mul((g, linear))
    return Frobenius(g, linear)


def _bounded(expr: Expr, what: str, chain: Chain, definition: Definition) -> Expr:
    """``expr``, unless it outgrows the limits or the run its time (limits.py): then an
    input error at the definition it came from."""
    tick(chain.source, definition.line)
    bound(expr, what, chain.source, definition.line, definition.expr_column)
    return expr


def _sum(terms, shape) -> Expr:
    terms = [t for t in terms if not isinstance(t, Zero)]
    if not terms:
        return Zero(shape)
    return terms[0] if len(terms) == 1 else Add(tuple(terms))
