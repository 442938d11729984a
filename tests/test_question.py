"""The reference question, pasted as its asker wrote it (examples/question.tex): derive
reads its formulas, derives ∂E/∂W₁ with f₁′ in the result, and the result matches the
closed form the question's own comments give, ∂E/∂w_ij = (x₂ − y)ᵢ f₁′(x₁)ᵢ x₀ⱼ."""
from pathlib import Path

import numpy as np
from click.testing import CliRunner

import derive
from derive.cli import main
from derive.evaluate import evaluate, forward
from derive.functions import stand_in_parameter
from derive.printer import text

QUESTION = Path(__file__).resolve().parent.parent / "examples" / "question.tex"


def test_the_question_derives_the_gradient_with_f_prime():
    d = derive.derive_file(QUESTION)
    assert d.check.ok
    assert [x.text for x in d.gradients] == ["∂E/∂W_1 = ((x_2 − y) ∘ f_1′(x_1))x_0ᵀ"]
    assert [text(line.differential) for line in d.definitions] == \
        ["dW_1 x_0", "f_1′(x_1) ∘ dx_1", "(x_2 − y) : dx_2"]
    assert any("f_1 is an unspecified elementwise function" in w for w in d.warnings)


def test_the_gradient_matches_the_askers_entrywise_formula():
    """With f₁ the stand-in the check states, u ↦ sin(cu) + u²/4."""
    c = stand_in_parameter("f_1")
    rng = np.random.default_rng(11)
    W1, x0, y = rng.normal(size=(5, 4)), rng.normal(size=(4, 1)), rng.normal(size=(5, 1))
    x1 = W1 @ x0
    x2 = np.sin(c * x1) + x1 ** 2 / 4
    f_prime = c * np.cos(c * x1) + x1 / 2
    expected = np.array([[(x2 - y)[i, 0] * f_prime[i, 0] * x0[j, 0] for j in range(4)]
                         for i in range(5)])
    d = derive.derive_file(QUESTION)
    values = forward(d.chain, {"W_1": W1, "x_0": x0, "y": y})
    assert np.allclose(evaluate(d.gradients[0].expr, values), expected, rtol=1e-12)


def test_the_command_line_renders_the_question():
    result = CliRunner().invoke(main, ["render", str(QUESTION)])
    assert result.exit_code == 0, result.output
    assert r"\frac{\partial E}{\partial W_{1}} &= ((x_{2} - y)\circ f_{1}'(x_{1}))x_{0}^T" \
        in result.stdout
    assert "checked numerically" in result.stdout
