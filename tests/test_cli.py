"""The command line, through click's CliRunner: formats, inputs, -o, exit codes, errors."""
import dataclasses
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import derive.api
from derive.cli import main
from derive.output import write_atomically

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "backprop.chain"
INLINE = "W : 5x4; x : 4; y : 5; v = W x; s = sigma(v); E = 1/2 (s - y):(s - y); wrt W"
GRADIENT = r"\frac{\partial E}{\partial W}"


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def test_render_to_stdout_is_the_mse_markdown():
    result = run("render", EXAMPLE)
    assert result.exit_code == 0, result.output
    assert result.stdout.count(r"$$\eqalign{") == 2
    assert GRADIENT in result.stdout
    assert "checked numerically" in result.stdout and "seed 0" in result.stdout
    assert result.stderr == ""


def test_inline_and_stdin_inputs():
    inline = run("render", "-e", INLINE)
    assert inline.exit_code == 0, inline.output
    assert GRADIENT in inline.stdout
    piped = run("render", "-", input=EXAMPLE.read_text())
    assert piped.exit_code == 0, piped.output
    assert piped.stdout == run("render", EXAMPLE).stdout


def test_no_check_says_so_and_expand_changes_the_gradient():
    plain = run("render", EXAMPLE, "--no-check")
    assert plain.exit_code == 0
    assert "not** checked" in plain.stdout and "--no-check" in plain.stdout
    expanded = run("render", EXAMPLE, "--no-check", "--expand")
    gradient_line = [l for l in plain.stdout.splitlines() if GRADIENT in l]
    expanded_line = [l for l in expanded.stdout.splitlines() if GRADIENT in l]
    assert gradient_line and expanded_line and gradient_line != expanded_line


@pytest.mark.parametrize("suffix, probe", [
    (".md", r"\eqalign{"),
    (".tex", r"\begin{align*}"),
    (".json", '"gradients"'),
    (".py", "def gradient("),
])
def test_output_format_follows_the_extension(tmp_path, suffix, probe):
    out = tmp_path / f"derivation{suffix}"
    result = run("render", EXAMPLE, "-o", out)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert probe in out.read_text(encoding="utf-8")
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_to_overrides_the_extension(tmp_path):
    out = tmp_path / "derivation.txt"
    assert run("render", EXAMPLE, "-t", "json", "-o", out).exit_code == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["wrt"] == ["W"] and data["check"]["ok"] is True


def test_bad_input_leaves_the_existing_output_untouched(tmp_path):
    out = tmp_path / "derivation.md"
    out.write_text("old\n")
    result = run("render", "-e", "v = W x; E = foo(v):v; wrt W", "-o", out)
    assert result.exit_code == 2
    assert out.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["derivation.md"]


def test_a_failed_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    out = tmp_path / "derivation.md"
    out.write_text("old\n")

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", broken)
    with pytest.raises(derive.DeriveError, match="No space left"):
        write_atomically(out, "new\n")
    assert out.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["derivation.md"]


@pytest.mark.parametrize("text, where", [
    ("v = W x\nE = foo(v):v\nwrt W\n", "<stdin>:2:"),
    ("W : 5x4\nx : 4\nv = W x +\nE = v:v\nwrt W\n", "<stdin>:3:"),
])
def test_input_errors_exit_2_with_location_and_caret(text, where):
    result = run("render", "-", input=text)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(where)
    assert "^" in result.stderr.splitlines()[2]
    assert "Traceback" not in result.output


def test_errors_in_a_file_cite_its_path(tmp_path):
    chain = tmp_path / "bad.chain"
    chain.write_text("W : 5x4\nv = W x\nE = v:v\n")   # no wrt
    result = run("render", chain)
    assert result.exit_code == 2
    assert result.stderr.startswith(str(chain))
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args, message", [
    (["render"], "exactly one"),
    (["render", "-e", "E = x:x", EXAMPLE], "exactly one"),
    (["render", EXAMPLE, "-t", "pdf"], "refusing to write a PDF to standard output"),
    (["render", EXAMPLE, "-t", "pdf", "-o", "/dev/stdout"], "refusing to write a PDF"),
    (["render", EXAMPLE, "-t", "json", "--keep-tex"], "--keep-tex applies to PDF"),
    (["render", EXAMPLE, "--katex-url", "dist"], "--katex-url applies to HTML"),
    (["render", EXAMPLE, "--flavor", "latex"], "unknown Markdown flavor"),
    (["render", EXAMPLE, "-t", "latex", "--template", "x.j2"], "not both"),
    (["render", EXAMPLE, "--standalone"], "--standalone applies to LaTeX"),
    (["notes", EXAMPLE, "-o", "notes.md"], "notes are written as .tex, .pdf or .html"),
    (["notes", "-o", "notes.tex"], "Missing argument"),
    (["render", EXAMPLE, "-t", "docx"], "unknown format"),
    (["render", EXAMPLE, "-o", "out.xyz"], "cannot tell the format"),
    (["render", "missing.chain"], "cannot read"),
])
def test_usage_errors_exit_2(args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def _failing_check(monkeypatch):
    """Make the check report the definition on source line 6 as wrong."""
    real = derive.api.numeric_check

    def corrupted(derivation, **kwargs):
        result = real(derivation, **kwargs)
        verdicts = tuple(dataclasses.replace(v, ok=False, relative_error=0.5)
                         if (v.block, v.line) == ("definition", 6) else v
                         for v in result.verdicts)
        return dataclasses.replace(result, verdicts=verdicts)

    monkeypatch.setattr(derive.api, "numeric_check", corrupted)


def test_failed_check_exits_3_and_writes_nothing(tmp_path, monkeypatch):
    _failing_check(monkeypatch)
    out = tmp_path / "derivation.md"
    result = run("render", EXAMPLE, "-o", out)
    assert result.exit_code == 3
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert "✗" in result.stderr and f"{EXAMPLE}:6: numeric check failed" in result.stderr
    to_stdout = run("render", EXAMPLE)
    assert to_stdout.exit_code == 3 and to_stdout.stdout == ""


def test_check_command_verdicts(monkeypatch):
    ok = run("check", EXAMPLE)
    assert ok.exit_code == 0, ok.output
    assert "relative error" in ok.stdout and "seed 0" in ok.stdout
    assert "seed 7" in run("check", EXAMPLE, "--seed", "7").stdout
    _failing_check(monkeypatch)
    failed = run("check", EXAMPLE)
    assert failed.exit_code == 3
    assert f"{EXAMPLE}:6: numeric check failed" in failed.stderr


def test_interrupt_exits_130(monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(derive.api, "derive", interrupted)
    result = run("render", EXAMPLE)
    assert result.exit_code == 130
    assert "Traceback" not in result.output
