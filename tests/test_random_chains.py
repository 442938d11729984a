"""Differential testing: random valid chains must all verify.

Every chain from tests/random_chains.py is well shaped by construction, so a numeric
check failure, or any exception, means a rule, a rearrangement or a simplification
is wrong.  A few hundred chains run here; `python tests/random_chains.py N` runs more.
"""
import pytest

from derive.check import check
from derive.expr import ShapeError
from derive.sweep import build
from random_chains import Generator

SEEDS = range(300)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_chain_verifies(seed):
    try:
        chain = Generator(seed).chain()
    except ShapeError:
        pytest.skip("the generator drew an ill-shaped chain")
    result = check(build(chain))
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
