"""Symmetric inputs: the gradient convention is stated, never silently chosen."""
import numpy as np
from click.testing import CliRunner

from derive.api import derive
from derive.cli import main
from derive.check import adjoint_values
from derive.evaluate import evaluate, forward

CHAIN = "A : 3x3\nSigma : 3x3 spd\nE = tr(A Sigma)\nwrt Sigma"


def gradient_at(derivation, point):
    values = forward(derivation.chain, point)
    values.update(adjoint_values(derivation, values, None))
    return evaluate(derivation.gradients[0].expr, values)


def test_default_is_the_unstructured_gradient_and_says_so():
    d = derive(CHAIN)
    assert d.check.ok
    A = np.random.default_rng(1).normal(size=(3, 3))
    assert np.allclose(gradient_at(d, {"A": A, "Sigma": np.eye(3)}), A.T)
    assert any("unstructured" in w for w in d.warnings)


def test_symmetric_subspace_gradient_on_request_is_checked_along_symmetric_directions():
    d = derive(CHAIN, symmetric_gradient=True)
    assert d.check.ok, d.check.failures
    A = np.random.default_rng(2).normal(size=(3, 3))
    assert np.allclose(gradient_at(d, {"A": A, "Sigma": np.eye(3)}), (A + A.T) / 2)
    assert any("sym(G)" in w for w in d.warnings)


def test_the_cli_flag_and_every_format_carry_the_note():
    runner = CliRunner()
    for args in (["render", "-e", CHAIN], ["render", "-e", CHAIN, "-t", "latex"],
                 ["render", "-e", CHAIN, "--symmetric-gradient", "--flavor", "katex"],
                 ["check", "-e", CHAIN, "--symmetric-gradient"]):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, result.output
        if args[0] == "render":
            assert "declared symmetric" in result.stdout
