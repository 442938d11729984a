"""Fuzzing with hypothesis: token soups and mutated example chains through the whole pipeline.

Every case goes parse → derive → check → render (Markdown ×3, LaTeX, JSON, NumPy, the
standalone article, the HTML page; a PDF now and then). The only failures allowed are
derive's own: a ``DeriveError`` with a line and column (or one of the few whole-input
errors, such as a bad ``--wrt``), or a failed numeric check, which the command reports
with exit 3 and nothing written — and then only where the independent oracle
(``tests/oracle.py``) does not find the gradient right; a passed check must not meet an
oracle that finds it wrong. No other exception, no hang (each case runs under an
alarm: hypothesis deadlines cannot stop a call that never returns) and no file left
behind by a failing run.

The CI budget is small and deterministic; ``HYPOTHESIS_PROFILE=long python -m pytest
tests/test_fuzz.py`` runs ten times as many cases, randomly, and keeps failures in
``.hypothesis/`` to replay them.
"""
import json
import os
import re
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from derive import api, check, document, render, verdict as verdicts
from derive.check import adjoint_values, assign_sizes, draw_point
from derive.cli import main
from derive.errors import DeriveError
from derive.evaluate import DomainError, dense, evaluate, forward
from external import need
from oracle import could_not_compare, judge

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "examples").glob("*.chain"))]

settings.register_profile("ci", max_examples=200, derandomize=True, database=None,
                          deadline=None, suppress_health_check=list(HealthCheck))
settings.register_profile("long", max_examples=2000, deadline=None,
                          suppress_health_check=list(HealthCheck))
PROFILE = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def budget(percent: int) -> settings:
    """A share of the profile's examples (ci: about 200 in all, under 10 s)."""
    return settings(PROFILE, max_examples=max(2, PROFILE.max_examples * percent // 100))


CASE_SECONDS = 20        # a case that takes longer has hung
WHOLE_INPUT = ("--wrt ",)   # errors about options, not about a place in the text

# ---------------------------------------------------------------- what the fuzzer writes

NAMES = ["W", "x", "y", "v", "s", "S", "E", "A", "X", "b", "h", "W1", "W2", "t", "T", "I", "d",
         "dx", "n", "m", "α", "σ", "Σ", "λ", "alpha", "lambda", "e300", "given", "np", "wrt"]
NUMBERS = ["0", "1", "2", "3", "4", "5", "1/2", "½", "3.5", "007", "1.", ".5", "99",
           "10000000000", "1e5"]
DECLARATIONS = [" : ", "scalar", "5x4", "4x4", "3 x 3", "n x n", "x", "spd", "symmetric",
                "positive", "invertible", "diagonal", "wrt ", "wrt *", "99999", "100000x100000"]
OPERATORS = ["+", "-", "−", "*", "/", "∘", "⊙", ".*", "./", "⊘", "⊗", ":", "=", ","]
POSTFIX = ["'", "ᵀ", "^T", "^{-1}", "^{-T}", "^2", "²", "³", "⁻¹", "⁻ᵀ", "^", "^{", "^-1",
           "^100", "^999999999999", "^{\\top}"]
FUNCTIONS = ["tr(", "det(", "logdet(", "log(", "exp(", "sigma(", "σ(", "sigmoid(", "tanh(",
             "Diag(", "diag(", "inv(", "vec(", "kron(", "softmax(", "foo(", "tr ("]
PUNCTUATION = ["(", ")", "(", ")", ";", "\n", "\n", "\r\n", "# title: ", "# ", "#"]
UNICODE = ["é", "ℝ", "😀", "\u200b", "\u00a0", "\ufeff", "\u2028", "\x00", "\x1b[31m", "\ud800",
           "\t", "\x0c", "\r", "\\", "{", "}", "$$", "```", "</script>", "\\input{/etc/passwd}"]
TOKENS = NAMES + NUMBERS + DECLARATIONS + OPERATORS + POSTFIX + FUNCTIONS + PUNCTUATION + UNICODE


@st.composite
def soups(draw):
    """Tokens of the language (and a few strangers) in any order."""
    tokens = draw(st.lists(st.one_of(st.sampled_from(TOKENS), st.characters()), max_size=40))
    return "".join(token + draw(st.sampled_from(["", " "])) for token in tokens)


def _expressions():
    """Well-formed expressions over a few names: the soup that gets past the grammar."""
    leaves = st.sampled_from(["W", "x", "y", "A", "X", "v", "s", "α", "1", "I", "2", "1/2", "½"])

    def extend(inner):
        return st.one_of(
            st.tuples(inner, st.sampled_from([" + ", " - ", " ", " * ", " / ", " ∘ ", " ./ ",
                                              ":", " ⊗ "]), inner).map("".join),
            st.tuples(st.sampled_from(FUNCTIONS[:12]), inner).map(lambda t: f"{t[0]}{t[1]})"),
            st.tuples(inner, st.sampled_from(POSTFIX[:10])).map(lambda t: f"({t[0]}){t[1]}"),
            inner.map(lambda e: f"-({e})"))
    return st.recursive(leaves, extend, max_leaves=8)


@st.composite
def statements(draw):
    """Declarations, definitions and a wrt line, each well-formed, in random order."""
    lines = []
    for name in draw(st.lists(st.sampled_from(["W", "x", "y", "A", "X", "α"]), unique=True)):
        size = draw(st.sampled_from(["scalar", "4", "5", "n", "5x4", "4x4", "n x n", "4 x m"]))
        props = draw(st.sampled_from(["", " spd", " symmetric", " positive", " invertible"]))
        lines.append(f"{name} : {size}{props}")
    for name in ["v", "s", "S", "h"][:draw(st.integers(0, 4))]:
        lines.append(f"{name} = {draw(_expressions())}")
    lines.append("E = " + draw(st.sampled_from(["v:v", "tr(S)", "s:s", "h:h", "x:x",
                                                "logdet(X)", "1/2 (s - y):(s - y)"])))
    lines.append("wrt " + draw(st.sampled_from(["W", "x", "X", "A", "*", "W, x"])))
    return "\n".join(lines)


def _split(text: str) -> list:
    """Tokens roughly as the grammar sees them: names, numbers, blanks, single characters."""
    return re.findall(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+(?:\.[0-9]+)?|\s+|.", text)


def _position(draw, length: int) -> int:
    return draw(st.integers(0, length))


def _delete_chars(draw, text):
    i = _position(draw, len(text))
    return text[:i] + text[i + draw(st.integers(1, 3)):]


def _duplicate_chars(draw, text):
    i = _position(draw, len(text))
    j = min(len(text), i + draw(st.integers(1, 12)))
    return text[:j] + text[i:j] + text[j:]


def _swap_chars(draw, text):
    if len(text) < 2:
        return text
    i, j = sorted((_position(draw, len(text) - 1), _position(draw, len(text) - 1)))
    return text[:i] + text[j] + text[i + 1:j] + text[i] + text[j + 1:]


def _insert(draw, text):
    i = _position(draw, len(text))
    piece = draw(st.one_of(st.sampled_from(TOKENS), st.characters()))
    return text[:i] + piece + text[i:]


def _on_tokens(operation):
    def mutate(draw, text):
        tokens = _split(text)
        if not tokens:
            return text
        i, j = _position(draw, len(tokens) - 1), _position(draw, len(tokens) - 1)
        if operation == "delete":
            del tokens[i]
        elif operation == "duplicate":
            tokens.insert(i, tokens[i])
        elif operation == "swap":
            tokens[i], tokens[j] = tokens[j], tokens[i]
        else:
            tokens.insert(i, draw(st.sampled_from(TOKENS)))
        return "".join(tokens)
    mutate.__name__ = f"{operation}_token"
    return mutate


def _on_lines(draw, text):
    lines = text.split("\n")
    i, j = _position(draw, len(lines) - 1), _position(draw, len(lines) - 1)
    what = draw(st.sampled_from(["delete", "duplicate", "swap"]))
    if what == "delete":
        del lines[i]
    elif what == "duplicate":
        lines.insert(j, lines[i])
    else:
        lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines)


MUTATIONS = [_delete_chars, _duplicate_chars, _swap_chars, _insert, _on_lines,
             *(_on_tokens(op) for op in ("delete", "duplicate", "swap", "insert"))]


@st.composite
def mutants(draw):
    """An example chain with one to four random edits."""
    text = draw(st.sampled_from(EXAMPLES))
    for _ in range(draw(st.integers(1, 4))):
        text = draw(st.sampled_from(MUTATIONS))(draw, text)
    return text


chains = st.one_of(soups(), statements(), mutants())
wrts = st.sampled_from([None, None, None, None, ["*"], ["W"], ["x"], ["W", "x"], ["nope"]])

# ---------------------------------------------------------------- the pipeline


class Hung(BaseException):
    """Raised by the alarm; a BaseException so that no ``except Exception`` swallows it."""


@contextmanager
def bounded(seconds: float = CASE_SECONDS):
    def alarm(signum, frame):
        raise Hung(f"one case ran longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def assert_reported(err: DeriveError) -> None:
    """A user error: exit 2 and a place (``name:line:col``, the line and a caret), unless it
    is about an option rather than the text."""
    assert err.exit_code == 2, err.format()
    if err.line is None:
        assert err.message.startswith(WHOLE_INPUT), f"error without a location: {err.message}"
        return
    assert err.source is not None and err.line >= 1 and err.column >= 1, err.format()
    first, shown, caret = err.format().split("\n")
    assert first.startswith(f"{err.source.name}:{err.line}:{err.column}: ")
    assert caret.endswith("^") and set(caret[:-1]) <= {" ", "\t"}, err.format()


def pipeline(text: str, wrt=None, expand: bool = False, explain: bool = False) -> str:
    """``ok``, ``input error`` or ``check failed, oracle: …``; anything else raises."""
    try:
        derivation = api.derive(text, wrt=wrt, expand=expand)
    except DeriveError as err:
        assert_reported(err)
        return "input error"
    verdict = judge(derivation)       # the oracle's, not derive's own check
    if not derivation.check.ok:
        assert verdict != "right" or could_not_compare(derivation.check), \
            "a false alarm: the oracle finds the gradient right"
        assert verdicts.failure_sentences(derivation)      # the failing lines are named
        assert "✗" in verdicts.to_verdict(derivation)
        return f"check failed, oracle: {verdict}"
    assert verdict != "wrong", "a wrong verdict: the check passed a gradient the oracle calls wrong"
    for flavor in render.FLAVORS:
        assert "checked numerically" in derivation.to_markdown(flavor, explain)
    assert "\\begin{align*}" in derivation.to_latex(explain)
    assert json.loads(derivation.to_json())["check"]["ok"] is True
    assert "\\documentclass" in document.standalone(derivation, explain=explain)
    assert "<html" in document.html([derivation], explain=explain)
    run_numpy_module(derivation)
    return "ok"


def run_numpy_module(derivation) -> None:
    """The generated module compiles, runs, and its gradient is the derivation's."""
    namespace = {}
    exec(compile(derivation.to_numpy(), "<derive numpy>", "exec"), namespace)  # our own output
    chain = derivation.chain
    sizes = assign_sizes(chain)
    point = draw_point(chain, sizes, np.random.default_rng(1), "shifted")
    if not derivation.gradients:               # only Jacobians asked for
        run_jacobian_function(derivation, namespace, point, sizes)
        return
    with np.errstate(all="ignore"):
        try:
            gradients = namespace["gradient"](**point)
        except (ValueError, np.linalg.LinAlgError):    # log det ≤ 0, a singular matrix
            return
        assert list(gradients) == list(dict.fromkeys(w.name for w in chain.wrt))
        for g in derivation.gradients:
            value = np.asarray(gradients[g.wrt.name], dtype=float)
            assert value.size == point[g.wrt.name].size
            try:
                values = forward(chain, point, sizes, keep_diagonal=True)
                values.update(adjoint_values(derivation, values, sizes))
                expected = dense(evaluate(g.expr, values, None, sizes))
            except DomainError:
                continue
            if np.all(np.isfinite(expected)) and np.all(np.isfinite(value)):
                assert np.allclose(value.reshape(expected.shape), expected, rtol=1e-6, atol=1e-8)


def run_jacobian_function(derivation, namespace, point, sizes) -> None:
    """The module's jacobian() gives the derivation's Jacobians, keyed F/X."""
    with np.errstate(all="ignore"):
        try:
            got = namespace["jacobian"](**point)
            values = forward(derivation.chain, point, sizes)
        except (ValueError, np.linalg.LinAlgError, DomainError):
            return
        for block in derivation.jacobians:
            expected = dense(evaluate(block.matrix, values, None, sizes))
            value = got[f"{block.of.name}/{block.wrt.name}"]
            if np.all(np.isfinite(expected)) and np.all(np.isfinite(value)):
                assert np.allclose(value, expected, rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------- the properties


@budget(25)
@given(text=st.one_of(soups(), statements()), wrt=wrts)
def test_token_soup_is_derived_or_refused_with_a_location(text, wrt):
    with bounded():
        event(pipeline(text, wrt))


@budget(40)
@given(text=mutants(), wrt=wrts, expand=st.booleans(), explain=st.booleans())
@example(text="# title: a\x00b\nx : 3\nE = x:x\nwrt x\n", wrt=None, expand=False, explain=False)
@example(text="x : 3\nE = x:x + I:I\nwrt x\n", wrt=None, expand=False, explain=False)
@example(text="E = 2\nwrt *\n", wrt=None, expand=False, explain=False)
@example(text="x : 3\nE = exp(1000 x:x)\nwrt x\n", wrt=None, expand=False, explain=False)
@example(text="given : 3\nE = given:given\nwrt given\n", wrt=None, expand=False, explain=False)
def test_mutated_examples_are_derived_or_refused_with_a_location(text, wrt, expand, explain):
    with bounded():
        event(pipeline(text, wrt, expand, explain))


FORMATS = {".md": [], ".md ": ["--flavor", "github", "--explain"], ".tex": [],
           ".tex ": ["--standalone"], ".json": [], ".py": [], ".html": []}


@budget(30)
@given(text=chains, suffix=st.sampled_from(sorted(FORMATS)), old=st.booleans(),
       stdin=st.booleans(), no_check=st.booleans())
def test_the_command_writes_a_whole_file_or_nothing(text, suffix, old, stdin, no_check):
    """Exit 0 and the new file, or exit 2/3 with the old file (or none) and no temporary one."""
    with tempfile.TemporaryDirectory() as folder, bounded():
        out = Path(folder) / f"out{suffix.strip()}"
        if old:
            out.write_bytes(b"old contents\n")
        source = ["-"] if stdin and _utf8(text) else ["-e", text]
        args = ["render", *source, "-o", str(out), *FORMATS[suffix]]
        result = CliRunner().invoke(main, args + (["--no-check"] if no_check else []),
                                    input=text if source == ["-"] else None)
        assert result.exception is None or isinstance(result.exception, SystemExit), \
            repr(result.exception)
        assert "Traceback" not in result.output
        assert result.exit_code in (0, 2, 3), result.output
        event(f"exit {result.exit_code}")
        assert sorted(os.listdir(folder)) == ([out.name] if result.exit_code == 0 or old else [])
        if result.exit_code == 0:
            assert out.read_bytes() != b"old contents\n"
        else:
            assert not old or out.read_bytes() == b"old contents\n"
            assert result.stdout == ""
            name = "<stdin>" if source == ["-"] else "<-e>"
            assert result.stderr.startswith((f"{name}:", "derive: --wrt")), result.stderr


def _utf8(text: str) -> bool:
    """Whether ``text`` can be piped (lone surrogates, from a bad argv, cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@budget(3)
@given(text=mutants())
def test_pdf_of_a_mutant_is_whole_or_absent(text):
    need("pdflatex", "texlive-latex-base texlive-latex-recommended latexmk")
    with tempfile.TemporaryDirectory() as folder, bounded(90):
        out = Path(folder) / "out.pdf"
        result = CliRunner().invoke(main, ["render", "-e", text, "-o", str(out)])
        assert result.exit_code in (0, 2, 3), result.output
        assert "Traceback" not in result.output
        event(f"exit {result.exit_code}")
        if result.exit_code == 0:
            assert out.read_bytes().startswith(b"%PDF")
        assert os.listdir(folder) == (["out.pdf"] if result.exit_code == 0 else [])


# ---------------------------------------------------------------- what fuzzing found


@pytest.mark.parametrize("text, where, message", [
    ("x : 3\nE = x:x   # a NUL \x00 in a comment\nwrt x", (2, 19), "unexpected character '\\x00'"),
    ("# title: \x1b]0;pwned\x07\nx : 3\nE = x:x\nwrt x", (1, 10), "unexpected character '\\x1b'"),
    ("x : 3\nE = x:x + I:I\nwrt x", (2, 11), "cannot tell the size of I"),
    ("x : 3\nE = x:x + 1:1\nwrt x", (2, 11), "cannot tell the length of the ones vector 1"),
    ("E = 2\nwrt *", (2, 5), "wrt *: E depends on no input"),
])
def test_found_by_fuzzing_input_errors(text, where, message):
    with pytest.raises(DeriveError) as caught:
        api.derive(text)
    assert (caught.value.line, caught.value.column) == where
    assert message in caught.value.message


def test_found_by_fuzzing_overflow_is_not_verified(monkeypatch):
    """Values so large their norms overflow: the comparisons were nan, which passed; now
    the lines that could not be compared are said not to be checked (at the first point:
    the one drawn smaller for a steep point is tested in test_visibility.py)."""
    monkeypatch.setattr(check, "STEEP", np.inf)
    derivation = api.derive("x : 3\nE = exp(1000 x:x)\nwrt x")
    assert not derivation.check.complete
    assert derivation.check.unchecked or not derivation.check.ok
    assert "Every displayed equality was checked" not in derivation.to_markdown()


def test_found_by_fuzzing_titles_keep_to_one_line():
    derivation = api.derive("# title: a\rb\u2028c\x0cd\nx : 3\nE = x:x\nwrt x")
    assert derivation.chain.title == "a b c d"


def test_found_by_fuzzing_an_input_named_like_the_modules_locals():
    derivation = api.derive("given : 3\ninputs : 3\nE = given:inputs\nwrt given, inputs")
    namespace = {}
    exec(compile(derivation.to_numpy(), "<derive numpy>", "exec"), namespace)  # our own output
    gradient = namespace["gradient"](given=np.ones(3), inputs=2 * np.ones(3))
    assert np.allclose(gradient["given"], 2) and np.allclose(gradient["inputs"], 1)


def test_found_by_fuzzing_bytes_that_are_not_utf8(tmp_path):
    """Standard input that is not UTF-8 is an input error; a file name that is not UTF-8
    shows as U+FFFD in every output, which can then be written."""
    piped = CliRunner().invoke(main, ["render", "-"], input=b"x : 3\nE = x:x # \xff\nwrt x\n")
    assert piped.exit_code == 2 and "not UTF-8" in piped.stderr
    name = os.fsdecode(b"\xff.chain")
    try:
        (tmp_path / name).write_text("x : 3\nE = x:x\nwrt x\n", encoding="utf-8")
    except (OSError, UnicodeError):
        pytest.skip("the file system refuses a file name that is not UTF-8")
    for out in ("out.json", "out.html"):
        result = CliRunner().invoke(main, ["render", str(tmp_path / name), "-o",
                                           str(tmp_path / out)])
        assert result.exit_code == 0, result.output
        assert "\ufffd.chain" in (tmp_path / out).read_text(encoding="utf-8")
    notes = CliRunner().invoke(main, ["notes", str(tmp_path / name), "-o",
                                      str(tmp_path / "notes.tex")])
    assert notes.exit_code == 0, notes.output
