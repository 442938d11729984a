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
