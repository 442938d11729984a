"""A derivation's gradient → its Hessian, by the second differential.

The gradient ``G = ∂E/∂W`` is an expression like any right-hand side, so the same rule
table (rules.py) gives its differential ``dG``, in the differentials of the defined
variables it mentions; their own differentials (the definition lines' ``ℓ``) are then
substituted, the last defined first, until ``dG`` is a linear form in ``dW`` alone.
Then ``d²E = dW : dG = dW : H[dW]``: the linear map ``dW ↦ dG`` is the Hessian, and
where ``vec(dG) = H vec(dW)`` has a Kronecker form (vec.py) it is shown as a matrix on
column-major vec.  With several names (``hessian W, b``) each gradient is differentiated
along all of them, and the part of ``dG_W`` in ``dY`` is the block ``∂²E/∂W∂Y``.
"""
from __future__ import annotations

import dataclasses

from .derivation import Derivation, Hessian, HessianLine
from .errors import DeriveError, Notice, note
from .expr import (ONE, Add, Adjoint, Diag, Differential, Expr, Frobenius, Kron, Mul, Number,
                   Symbol, Transpose, Zero, contains_differential, replace_nodes, walk)
from .limits import bound, tick
from .rule import Rule
from .rules import differentiate
from .simplify import factor, simplify
from .display import substitute
from .sweep import definition_lines
from .vec import coefficient


def with_hessians(derivation: Derivation) -> Derivation:
    """``derivation`` with the Hessian its chain asks for (``hessian W, b``), if any."""
    chain = derivation.chain
    hessians, warnings = [], []
    for names, line, column in chain.hessians:
        wrt = tuple(next(w for w in chain.wrt if w.name == name) for name in names)
        hessians.append(hessian(derivation, wrt, line, column))
        warnings += _independent(derivation, wrt, line, column) + _structured(wrt)
    if not hessians:
        return derivation
    said = {str(w).split(":")[0] for w in warnings}     # "hessian c"
    kept = tuple(w for w in derivation.warnings if not _said_again(w, said))
    return dataclasses.replace(derivation, hessians=tuple(hessians),
                               warnings=kept + tuple(warnings))


def _structured(wrt: tuple) -> list:
    """A symmetric input's Hessian is derived from a gradient simplified with ``Sᵀ = S``, so
    it holds for symmetric directions only (where it is checked): said, never left implied."""
    return [note(f"{w.name} is declared symmetric: the Hessian blocks with {w.name} hold for "
                 f"symmetric directions d{w.name} (and are checked along them); on all of "
                 f"vec(d{w.name}) the unstructured function's Hessian may differ")
            for w in wrt if w.props & {"symmetric", "spd"} and not w.is_scalar]


def _said_again(warning, said: set) -> bool:
    """The sweep's "c has no path to the objective" for a name whose Hessian warning says
    it already (one warning for one fact)."""
    text = str(warning)
    return any(text.startswith(f"{name.split(' ', 1)[1]} has no path to the objective")
               for name in said)


def hessian(derivation: Derivation, wrt: tuple, line: int, column: int) -> Hessian:
    """The Hessian of the objective with respect to the inputs ``wrt`` (jointly)."""
    chain = derivation.chain
    varying = _varying(derivation, wrt)
    _, linear = definition_lines(chain, varying)
    gradients = [HessianLine("gradient", w, gradient_expression(derivation, w)) for w in wrt]
    lines, final = list(gradients), {}
    for g in gradients:
        tick(chain.source, line)
        shown = second_differential(derivation, g.of, g.expr, varying, linear, line, column)
        lines += shown
        final[g.of.name] = shown[-1].expr
    lines.append(HessianLine("second", wrt[0], _second(wrt, final)))
    blocks = [_block(w, y, final[w.name], wrt) for w in wrt for y in wrt]
    return Hessian(wrt, line, column, tuple(lines + blocks), _mirrored(blocks))


def _varying(derivation: Derivation, wrt: tuple) -> frozenset:
    """The Hessian's names and every definition depending on one (their d is not 0)."""
    return derivation.chain.varying(wrt)


def gradient_expression(derivation: Derivation, w: Symbol) -> Expr:
    """∂E/∂W over inputs and defined variables: named adjoints ``z̄`` are written out, from
    the steps that define them, so the rule table can differentiate it."""
    g = derivation.gradient(w.name).expr
    adjoints = {Adjoint(step.variable): step.adjoint for step in derivation.steps[1:]}
    while any(isinstance(n, Adjoint) for n in walk(g)):
        g = replace_nodes(g, adjoints)
    return simplify(g)


def second_differential(derivation: Derivation, w: Symbol, g: Expr, varying: frozenset,
                        linear: dict, line: int, column: int) -> list:
    """``d(∇_W E) = ℓ``, then one line per substituted definition, the last defined first,
    until only the Hessian's own differentials are left."""
    chain = derivation.chain
    what = f"the differential of ∂{chain.objective.symbol.name}/∂{w.name}"
    ell, rules = differentiate(g, lambda s: s.name in varying)
    current = _bounded(simplify(ell), what, derivation, line, column)
    lines = [HessianLine("differential", w, current, rules=rules)]
    for definition in reversed(chain.definitions):
        z = definition.symbol
        if Differential(z) not in set(walk(current)):
            continue
        tick(chain.source, line)
        current = _bounded(simplify(replace_nodes(current, {Differential(z): linear[z.name]})),
                           what, derivation, line, column)
        lines.append(HessianLine("differential", w, current, eliminated=z,
                                 rules=(substitute(chain, z),)))
    return lines


def _second(wrt: tuple, final: dict) -> Expr:
    """``d²E = Σ dW : d(∇_W E)``, the differential on the left as the identity reads it."""
    terms = [Mul((Differential(w), final[w.name])) if w.is_scalar
             else Frobenius(Differential(w), final[w.name]) for w in wrt]
    return terms[0] if len(terms) == 1 else Add(tuple(terms))


def _block(w: Symbol, y: Symbol, dg: Expr, wrt: tuple) -> HessianLine:
    """``∂²E/∂W∂Y``: the part of ``d(∇_W E)`` in ``dY``, and its matrix on vec if it has one."""
    others = {Differential(z): Zero(z.shape) for z in wrt if z != y}
    part = factor(simplify(replace_nodes(dg, others)))
    matrix, rules = matrix_form(part, y)
    return HessianLine("block", w, part, by=y, matrix=matrix, rules=rules)


def matrix_form(part: Expr, y: Symbol) -> tuple:
    """``(H, rules)`` with ``vec(part) = H vec(dY)`` (numerator layout, column-major vec), by
    the vec table (vec.py); ``(None, ())`` when the form has no Kronecker form there (then the
    linear map is the answer)."""
    if isinstance(part, Zero):
        return Zero((_size(part), _size(y))), ()
    moved = _diagonals_moved(part)
    try:
        found, rules = coefficient(moved, y)
    except DeriveError:
        return None, ()
    merged = _kron_products(simplify(found))
    used = ((DIAGONAL,) if moved != part else ()) + rules
    return factor(merged), used + ((MIXED,) if merged != simplify(found) else ())


DIAGONAL = Rule("Diag(a) b = Diag(b) a", r"\mathrm{Diag}(a)\,b = \mathrm{Diag}(b)\,a")


MIXED = Rule("(A⊗B)(C⊗D) = AC⊗BD", r"(A\otimes B)(C\otimes D) = AC\otimes BD")


def _kron_products(e: Expr) -> Expr:
    """Kronecker products merged by the mixed-product rule, as a person simplifies them:
    ``(x⊗I)(xᵀ⊗M) = xxᵀ⊗M``; a factor beside a Kronecker product with a one-row (one-column)
    left factor joins its right one, ``M(aᵀ⊗B) = aᵀ⊗MB``; a sum of such products is
    distributed, and ``a⊗B + a⊗C = a⊗(B + C)``."""
    children = [_kron_products(c) for c in e.children]
    e = simplify(e.rebuild(children)) if children else e
    if isinstance(e, Add):
        return _kron_sum(e)
    if not isinstance(e, Mul):
        return e
    factors: list = []
    for f in e.factors:
        factors.append(f)
        while len(factors) > 1:
            joined = _kron_pair(factors[-2], factors[-1])
            if joined is None:
                break
            factors[-2:] = [joined]
    return simplify(Mul(tuple(factors))) if len(factors) > 1 else factors[0]


def _kron_pair(left: Expr, right: Expr) -> Expr | None:
    """The product of two adjacent factors as one Kronecker product, or None."""
    if isinstance(left, Kron) and isinstance(right, Kron) \
            and left.left.shape[1] == right.left.shape[0] \
            and left.right.shape[1] == right.right.shape[0]:
        return Kron(simplify(Mul((left.left, right.left))), simplify(Mul((left.right, right.right))))
    if isinstance(right, Kron) and right.left.shape[0] == ONE and not left.is_scalar \
            and left.shape[1] == right.right.shape[0]:
        return Kron(right.left, simplify(Mul((left, right.right))))
    if isinstance(left, Kron) and left.left.shape[1] == ONE and not right.is_scalar \
            and left.right.shape[1] == right.shape[0]:
        return Kron(left.left, simplify(Mul((left.right, right))))
    if isinstance(right, Add) and _all_kron(right) and isinstance(left, Kron):
        return _kron_sum(Add(tuple(_kron_products(Mul((left, t))) for t in right.terms)))
    if isinstance(left, Add) and _all_kron(left) and isinstance(right, Kron):
        return _kron_sum(Add(tuple(_kron_products(Mul((t, right))) for t in left.terms)))
    return None


def _all_kron(e: Add) -> bool:
    return all(isinstance(_signed(t)[1], Kron) for t in e.terms)


def _signed(term: Expr) -> tuple:
    """``(c, A⊗B)`` for ``c(A⊗B)`` with a number c, else ``(None, term)``."""
    if isinstance(term, Mul) and len(term.factors) == 2 and isinstance(term.factors[0], Number):
        return term.factors[0], term.factors[1]
    return None, term


def _kron_sum(e: Add) -> Expr:
    """``a⊗B ± a⊗C = a⊗(B ± C)``: terms with the same left factor gathered, in order."""
    order: list = []
    groups: dict = {}
    for term in e.terms:
        sign, k = _signed(term)
        if not isinstance(k, Kron):
            order.append((None, term))
            continue
        if k.left not in groups:
            groups[k.left] = []
            order.append((k.left, term))
        groups[k.left].append(k.right if sign is None else Mul((sign, k.right)))
    if all(len(parts) == 1 for parts in groups.values()):
        return e
    terms = [term if left is None or len(groups[left]) == 1
             else Kron(left, simplify(Add(tuple(groups[left])))) for left, term in order]
    return simplify(Add(tuple(terms))) if len(terms) > 1 else terms[0]


def _diagonals_moved(e: Expr) -> Expr:
    """``Diag(ℓ) c = Diag(c) ℓ`` for a vector c, sums holding such a ``Diag(ℓ)`` distributed
    over what follows them: the differential leaves the diagonal, so the vec of the form is
    ``Diag(c)`` times that of ℓ rather than the vec of a diagonal matrix (``Diag(vec I)(1⊗I)``)."""
    if isinstance(e, Add):
        return simplify(Add(tuple(_diagonals_moved(t) for t in e.terms)))
    if not isinstance(e, Mul) or not _holds_diagonal(e):
        return e
    factors = [_diagonals_moved(f) for f in e.factors]
    for i, f in enumerate(factors[:-1]):
        rest = factors[i + 1:]
        after = rest[0] if len(rest) == 1 else Mul(tuple(rest))
        if after.shape[1] != ONE or contains_differential(after):
            continue
        if isinstance(f, Diag) and contains_differential(f.arg):
            return _diagonals_moved(simplify(Mul((*factors[:i], Diag(after), f.arg))))
        if isinstance(f, Add) and _holds_diagonal(f):
            return _diagonals_moved(simplify(Add(tuple(Mul((*factors[:i], t, *rest))
                                                       for t in f.terms))))
    return simplify(Mul(tuple(factors)))


def _holds_diagonal(e: Expr) -> bool:
    return any(isinstance(n, Diag) and contains_differential(n.arg) for n in walk(e))


def _size(e: Expr):
    return e.shape[0] * e.shape[1]


def _mirrored(blocks: list) -> bool:
    """Whether every block's matrix is its partner's transpose term by term (H = Hᵀ on
    sight, not only numerically)."""
    matrices = {(b.of.name, b.by.name): b.matrix for b in blocks if b.by is not None}
    if any(m is None for m in matrices.values()):
        return False
    return all(_same_terms(_transposed(m), matrices[(y, w)]) for (w, y), m in matrices.items())


def _transposed(e: Expr) -> Expr:
    """``eᵀ``, pushed through sums, products and Kronecker products, ``(A⊗B)ᵀ = Aᵀ⊗Bᵀ``,
    then simplified (which drops the transposes of symmetric factors)."""
    if isinstance(e, Kron):
        return Kron(_transposed(e.left), _transposed(e.right))
    if isinstance(e, Add):
        return simplify(Add(tuple(_transposed(t) for t in e.terms)))
    if isinstance(e, Mul):
        return simplify(Mul(tuple(_transposed(f) for f in reversed(e.factors))))
    return simplify(Transpose(e))


def _same_terms(a: Expr, b: Expr) -> bool:
    """Equal up to the order of the terms of every sum."""
    return _canonical(a) == _canonical(b) or _canonical(factor(a)) == _canonical(factor(b))


def _canonical(e: Expr) -> Expr:
    """``e`` with the terms of every sum in one fixed order (for comparisons only)."""
    children = [_canonical(c) for c in e.children]
    if isinstance(e, Add):
        return Add(tuple(sorted(children, key=repr)))
    return e.rebuild(children) if children else e


def _independent(derivation: Derivation, wrt: tuple, line: int, column: int) -> list:
    """A name the objective does not depend on has a zero Hessian: a warning, as a ``wrt``
    with no path gets (derive answers 0, and says so, rather than refusing)."""
    objective = derivation.chain.objective.symbol.name
    return [Notice(f"hessian {w.name}: {objective} does not depend on {w.name}, so its gradient "
                   f"and every Hessian block with {w.name} are 0", line, column)
            for w in wrt if objective not in _varying(derivation, (w,))]


def _bounded(e: Expr, what: str, derivation: Derivation, line: int, column: int) -> Expr:
    bound(e, what, derivation.chain.source, line, column)
    return e
