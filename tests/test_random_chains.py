"""Differential testing: random valid chains, judged by an independent oracle.

Every chain from tests/random_chains.py is well shaped by construction. Its displayed
gradients are judged by ``tests/oracle.py`` (a NumPy evaluator and central differences
of its own), not by derive's check: the oracle must call them right, and derive's check
must say the same (a failed check on a right gradient is a false alarm; a passed check
on a wrong one cannot happen without the oracle seeing it). A few hundred chains run
here; `python tests/random_chains.py N` runs more.
"""
import pytest

from derive.check import check
from derive.expr import ShapeError
from derive.sweep import build
from oracle import judge
from random_chains import Generator

SEEDS = range(300)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_chain_verifies(seed):
    try:
        chain = Generator(seed).chain()
    except ShapeError:
        pytest.skip("the generator drew an ill-shaped chain")
    derivation = build(chain)
    assert judge(derivation, seed) == "right"
    result = check(derivation)
    assert result.ok, [(v.block, v.index, v.relative_error) for v in result.failures]


@pytest.mark.parametrize("seed", range(60))
def test_random_chain_renders_and_its_numpy_gradient_is_the_derived_one(seed):
    """Every format renders; the generated module computes exactly the displayed G."""
    import dataclasses

    import numpy as np

    from derive import render
    from derive.check import adjoint_values, assign_sizes, draw_point
    from derive.evaluate import evaluate, forward
    from derive.numpy_code import to_numpy

    chain = Generator(seed).chain()
    derivation = build(chain)
    derivation = dataclasses.replace(derivation, check=check(derivation))
    for fmt in ("markdown", "latex", "json"):
        assert render.render(derivation, fmt, "mse")
    namespace = {}
    exec(compile(to_numpy(derivation), "<generated>", "exec"), namespace)   # derive's own output
    point = draw_point(chain, assign_sizes(chain), np.random.default_rng(seed), "shifted")
    values = forward(chain, point)
    values.update(adjoint_values(derivation, values, None))
    got = namespace["gradient"](**point)
    for gradient in derivation.gradients:
        want = evaluate(gradient.expr, values)
        assert np.allclose(np.reshape(got[gradient.wrt.name], want.shape), want, rtol=1e-9, atol=1e-12)


def test_the_oracle_judges_a_large_input_along_directions():
    """Found by the fuzz run: entry-by-entry differences of a 4×32012 input took two
    minutes (a hang); along random directions the oracle still tells right from wrong."""
    import dataclasses
    from derive import expr as E
    from derive.api import derive
    d = derive("X : 4x32012\nE = X:X\nwrt X", check=False)
    assert judge(d, 1) == "right"
    g = d.gradients[0]
    tripled = dataclasses.replace(g, expr=E.Mul((E.Number(3), g.wrt)))
    wrong = dataclasses.replace(d, gradients=(tripled,))
    assert judge(wrong, 1) == "wrong"
