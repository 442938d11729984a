"""Resource limits (derive/limits.py): big or explosive input ends in a clear error with
exit 2 — never a hang, a MemoryError or a RecursionError."""
import io
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from derive import api
from derive.api import derive
from derive.cli import main
from derive.errors import DeriveError
from derive.limits import Limits, applied, current, read_bounded, tick
from derive.parse import parse_chain

UNLIMITED = Limits(max_bytes=0, max_lines=0, max_nodes=0, max_depth=0, max_exponent=0,
                   max_entries=0, max_seconds=0)


def tanh_chain(n: int) -> str:
    """``h_i = tanh(h_{i-1})``: written out, each adjoint nests one level deeper than the last."""
    return "\n".join(["h0 : 3"] + [f"h{i} = tanh(h{i - 1})" for i in range(1, n)]
                     + [f"E = 1'h{n - 1}", "wrt h0"])


def error_of(text, **kwargs) -> DeriveError:
    with pytest.raises(DeriveError) as info:
        derive(text, **kwargs)
    return info.value


# ---------------------------------------------------------------- where limits come from


def test_defaults_environment_and_overrides():
    assert Limits.from_environment({}) == Limits()
    env = {"DERIVE_MAX_SECONDS": "2.5", "DERIVE_MAX_NODES": "7", "DERIVE_MAX_LINES": " "}
    limits = Limits.from_environment(env, max_nodes=9, max_depth=None)
    assert (limits.max_seconds, limits.max_nodes, limits.max_lines) == (2.5, 9, Limits().max_lines)


@pytest.mark.parametrize("value", ["abc", "-1", "nan", "1.5e999", "2.5"])
def test_a_bad_environment_value_is_an_input_error(value):
    with pytest.raises(DeriveError, match="DERIVE_MAX_LINES must be a non-negative number"):
        Limits.from_environment({"DERIVE_MAX_LINES": value})


def test_the_environment_reaches_the_command(tmp_path):
    result = CliRunner().invoke(main, ["render", "-e", "x : 3; E = x'x + x'x; wrt x"],
                                env={"DERIVE_MAX_NODES": "3"})
    assert result.exit_code == 2 and "more than 3 nodes" in result.stderr
    result = CliRunner().invoke(main, ["check", "-e", "x : 3; E = x'x; wrt x"],
                                env={"DERIVE_MAX_SECONDS": "soon"})
    assert result.exit_code == 2 and "DERIVE_MAX_SECONDS must be" in result.stderr


def test_limits_nest_and_the_sooner_deadline_wins():
    with applied(Limits(max_seconds=100)), applied(Limits(max_seconds=0, max_nodes=7)) as inner:
        assert current() is inner and current().max_nodes == 7
        tick()
    assert current() == Limits.from_environment()


def test_the_api_installs_no_signal_handler():
    before = signal.getsignal(signal.SIGALRM)
    derive("x : 3; E = x'x; wrt x", limits=Limits(max_seconds=1))
    assert signal.getsignal(signal.SIGALRM) is before


# ---------------------------------------------------------------- the source text


def test_too_many_bytes_points_where_the_limit_is_crossed():
    error = error_of("x : 3\nE = x'x + x'x\nwrt x", limits=Limits(max_bytes=12))
    assert "longer than 12 bytes" in error.message and (error.line, error.column) == (2, 7)


def test_too_many_lines():
    text = "x : 3\n" + "".join(f"v{i} = x\n" for i in range(10)) + "E = x'x\nwrt x\n"
    error = error_of(text, limits=Limits(max_lines=5))
    assert "more than 5 lines" in error.message and (error.line, error.column) == (6, 1)
    assert derive(text + "\n\n\n", limits=Limits(max_lines=13), check=False)


def test_an_expression_with_too_many_nodes():
    error = error_of("x : 3\nE = 1'(" + " + ".join(["x"] * 50) + ")\nwrt x",
                     limits=Limits(max_nodes=40))
    assert "more than 40 nodes" in error.message and (error.line, error.column) == (2, 5)


def test_depth_and_exponent_limits_are_configurable():
    nested = "X : 3x3; E = " + "tr(" * 12 + "X" + ")" * 12 + "; wrt X"
    assert "more than 10 levels" in error_of(nested, limits=Limits(max_depth=10)).message
    assert derive(nested, limits=Limits(max_depth=20), check=False)
    assert "at most 3" in error_of("X : 3x3; E = tr(X^4); wrt X",
                                   limits=Limits(max_exponent=3)).message


def test_read_bounded_stops_reading_at_the_limit():
    asked = []

    class Endless(io.RawIOBase):
        def read(self, size=-1):
            asked.append(size)
            return b"x" * (size if size > 0 else 10 ** 9)

    with applied(Limits(max_bytes=1000)), pytest.raises(DeriveError, match="longer than 1000"):
        read_bounded(Endless(), "the stream")
    assert asked == [1001]


def test_a_huge_file_and_a_huge_stdin_are_refused(tmp_path):
    big = tmp_path / "big.chain"
    big.write_text("x : 3\n" + "# padding\n" * 20000 + "E = x'x\nwrt x\n")
    result = CliRunner().invoke(main, ["render", str(big)])
    assert result.exit_code == 2 and "longer than 100000 bytes" in result.stderr
    result = CliRunner().invoke(main, ["render", "-"], input=big.read_text())
    assert result.exit_code == 2 and "standard input is longer than" in result.stderr


# ---------------------------------------------------------------- the derivation


def test_an_exploding_differential_is_refused_before_it_is_built():
    start = time.monotonic()
    error = error_of("X : 3x3\nE = tr(((X^100)^100)^100)\nwrt X")
    assert "the differential of E grows beyond 5000 nodes" in error.message
    assert (error.line, error.column) == (2, 5) and time.monotonic() - start < 5


def test_a_deep_chain_names_its_adjoints_instead_of_nesting_them():
    """Written out, h̄_1 would nest 30 levels deep; named, no adjoint nests at all."""
    d = derive(tanh_chain(30), limits=Limits(max_depth=10))
    assert d.check.ok and len(d.steps) == 30


def test_an_adjoint_too_large_is_refused_at_its_definition():
    from derive.sweep import backward, definition_lines
    chain = parse_chain(tanh_chain(5))
    _, linear = definition_lines(chain, chain.varying())
    with applied(Limits(max_nodes=6)), pytest.raises(DeriveError) as info:
        backward(chain, linear)
    assert "the adjoint of h" in info.value.message and "grows beyond 6 nodes" in info.value.message
    assert info.value.line > 1


def test_the_time_limit_stops_a_slow_derivation():
    start = time.monotonic()
    # 3000 layers: seconds of work even with named adjoints (600 can finish in 0.5 s)
    error = error_of(tanh_chain(3000), limits=Limits(max_depth=0, max_seconds=0.5))
    assert "stopped after 0.5 s, the time limit" in error.message and error.line > 1
    assert time.monotonic() - start < 5


def test_the_time_limit_from_the_command_line(tmp_path):
    path = tmp_path / "slow.chain"
    path.write_text(tanh_chain(3000))
    result = CliRunner().invoke(main, ["render", str(path), "--max-seconds", "0.5"],
                                env={"DERIVE_MAX_DEPTH": "0"})
    assert result.exit_code == 2, result.output
    assert f"{path}:" in result.stderr and "stopped after 0.5 s" in result.stderr
    result = CliRunner().invoke(main, ["check", str(path), "--max-seconds", "-1"])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_a_point_too_large_to_draw_is_refused_unless_not_checked():
    text = "W : 100000x100000\nx : 100000\nE = x'W x\nwrt W"
    assert "--no-check" in error_of(text).message
    assert derive(text, check=False).gradients


@pytest.mark.parametrize("exhaustion", [RecursionError, MemoryError])
def test_exhaustion_behind_the_limits_is_still_an_input_error(monkeypatch, exhaustion):
    def fail(*args, **kwargs):
        raise exhaustion()
    monkeypatch.setattr(api, "build", fail)
    error = error_of("x : 3; E = x'x; wrt x")
    assert error.exit_code == 2 and error.message


def test_unlimited_still_parses_a_20000_term_sum():
    with applied(UNLIMITED):
        chain = parse_chain("x : 3\nE = " + " + ".join(["x'x"] * 20000) + "\nwrt x")
    assert len(chain.objective.expr.terms) == 20000


# ---------------------------------------------------------------- big inputs, end to end


def _run_bounded(path, *args, env=None):
    """``derive render PATH`` in a fresh interpreter, killed after 5 s; (result, seconds)."""
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-c", "from derive.cli import main; main()",
                             "render", str(path), *args], capture_output=True, text=True,
                            timeout=5, env=env, check=False)
    return result, time.monotonic() - start


BIG = {
    "10000 lines": "x : 3\n" + "".join(f"v{i} = x\n" for i in range(10000)) + "E = x'x\nwrt x\n",
    "20000-term sum": "x : 3\nE = " + " + ".join(["x'x"] * 20000) + "\nwrt x\n",
    "20000-term short sum": "x : 3\nE = 1'(" + " + ".join(["x"] * 20000) + ")\nwrt x\n",
    "1 MB line": "x : 3; " + "; ".join(f"v{i} = 2 x" for i in range(75000)) + "; E = x'x; wrt x",
}


@pytest.mark.parametrize("name", list(BIG))
def test_big_inputs_are_handled_or_refused_within_5_seconds(tmp_path, name):
    path = tmp_path / "big.chain"
    path.write_text(BIG[name])
    result, _ = _run_bounded(path)
    assert result.returncode in (0, 2), result.stderr
    assert "Traceback" not in result.stderr and "Error:" not in result.stderr
    if result.returncode == 2:
        assert result.stderr.startswith((f"{path}:", "derive: ")) and "limit" in result.stderr


def test_without_size_limits_the_time_limit_still_stops_10000_lines(tmp_path):
    path = tmp_path / "big.chain"
    path.write_text("x0 : 3\n" + "".join(f"x{i} = x{i - 1} + x0\n" for i in range(1, 10000))
                    + "E = x9999'x9999\nwrt x0\n")
    env = {**os.environ, "DERIVE_MAX_BYTES": "0", "DERIVE_MAX_LINES": "0"}
    result, _ = _run_bounded(path, "--max-seconds", "1.5", env=env)
    assert result.returncode == 2 and "stopped after 1.5 s" in result.stderr


def test_a_limit_already_past_before_the_check_says_so():
    """The cost estimate used to print "about 0 s, more than the -0.3 s left"."""
    from derive.api import derive as derive_unchecked
    from derive.check import assign_sizes
    from derive.cost import refuse_costly
    derivation = derive_unchecked("x : 3; E = x'x; wrt x", check=False)
    with applied(Limits(max_seconds=1e-9)):
        time.sleep(0.01)
        with pytest.raises(DeriveError, match="stopped after .* s, the time limit") as caught:
            refuse_costly(derivation, assign_sizes(derivation.chain))
    assert "left" not in str(caught.value)
