"""Nothing lost, nothing half-written: every output goes to a temporary file that is renamed.

A failing run — bad input (exit 2), a failed check (exit 3, here from a corrupted rule),
a TeX error (exit 5), Ctrl-C anywhere (exit 130, no traceback) — leaves an existing output
file byte for byte as it was, and leaves no temporary file or folder behind; ``derive notes``
writes nothing when any chain fails, and names the chains that did.
"""
import dataclasses
import os
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

import derive.api
from derive import document, functions, numpy_code, output, pdf, render
from derive.cli import main
from external import need

ROOT = Path(__file__).resolve().parent.parent
BACKPROP = ROOT / "examples" / "backprop.chain"
TWO_LAYER = ROOT / "examples" / "two_layer.chain"
OLD = b"the previous output, which must survive\n"
BAD = "W : 5x4\nx : 4\nv = foo(W x)\nE = v:v\nwrt W\n"
SUFFIXES = [".md", ".tex", ".json", ".py", ".html", ".pdf"]
BROKEN_TEX = "\\documentclass{article}\n\\begin{document}\n\\undefinedmacro\n\\end{document}\n"


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """Temporary files of the run (TeX's folder included) land in ``tmp_path/tmp``; the
    template environments, which keep a cache in the temporary folder, exist before."""
    render._environment(), numpy_code._environment()
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def existing(tmp_path: Path, suffix: str) -> Path:
    """An output file from an earlier run, alone in its folder."""
    if suffix == ".pdf":
        need("pdflatex", "texlive-latex-base texlive-latex-recommended latexmk")
    out = tmp_path / "out" / f"derivation{suffix}"
    out.parent.mkdir()
    out.write_bytes(OLD)
    return out


def assert_untouched(out: Path, scratch: Path) -> None:
    assert out.read_bytes() == OLD
    assert os.listdir(out.parent) == [out.name]         # no .derivation.*.tmp
    assert os.listdir(scratch) == []                    # no derive-tex-* folder


def wrong_sigmoid(u, y, du):
    """σ′ = s + s∘s: a sign slip in the rule table."""
    from derive import expr as E
    return E.Hadamard(E.Add((y, E.Hadamard(y, y))), du)


def corrupt_sigmoid(monkeypatch):
    sigma = functions.ELEMENTWISE["sigma"]
    monkeypatch.setitem(functions.ELEMENTWISE, "sigma",
                        dataclasses.replace(sigma, differential=wrong_sigmoid))


def interrupt(*args, **kwargs):
    raise KeyboardInterrupt


# ---------------------------------------------------------------- render -o


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_bad_input_keeps_the_old_file(suffix, tmp_path, scratch):
    out = existing(tmp_path, suffix)
    result = run("render", "-e", BAD, "-o", out)
    assert result.exit_code == 2 and "<-e>:3:5: unknown function foo" in result.stderr
    assert_untouched(out, scratch)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_failed_check_keeps_the_old_file(suffix, tmp_path, scratch, monkeypatch):
    out = existing(tmp_path, suffix)
    corrupt_sigmoid(monkeypatch)
    result = run("render", BACKPROP, "-o", out)
    assert result.exit_code == 3 and "numeric check failed" in result.stderr
    assert result.stdout == ""
    assert_untouched(out, scratch)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_interrupt_while_writing_keeps_the_old_file(suffix, tmp_path, scratch, monkeypatch):
    """Ctrl-C after the temporary file is written, before it is renamed."""
    out = existing(tmp_path, suffix)
    monkeypatch.setattr(output.os, "fsync", interrupt)
    result = run("render", BACKPROP, "-o", out)
    assert result.exit_code == 130
    assert result.stderr == "derive: interrupted\n" and "Traceback" not in result.output
    assert_untouched(out, scratch)


@pytest.mark.parametrize("suffix", [".md", ".json", ".html", ".tex"])
def test_interrupt_while_rendering_keeps_the_old_file(suffix, tmp_path, scratch, monkeypatch):
    out = existing(tmp_path, suffix)
    monkeypatch.setattr(render, "check_data", interrupt)   # every format calls it
    result = run("render", BACKPROP, "-o", out, *(["--standalone"] if suffix == ".tex" else []))
    assert result.exit_code == 130 and "Traceback" not in result.output
    assert_untouched(out, scratch)


def test_interrupt_while_tex_runs_keeps_the_old_pdf(tmp_path, scratch, monkeypatch):
    out = existing(tmp_path, ".pdf")
    monkeypatch.setattr(pdf.subprocess.Popen, "communicate", interrupt)
    result = run("render", BACKPROP, "-o", out)
    assert result.exit_code == 130 and "Traceback" not in result.output
    assert_untouched(out, scratch)


def test_tex_error_keeps_the_old_pdf(tmp_path, scratch, monkeypatch):
    out = existing(tmp_path, ".pdf")
    monkeypatch.setattr(document, "standalone", lambda *a, **k: BROKEN_TEX)
    result = run("render", BACKPROP, "-o", out)
    assert result.exit_code == 5 and "Undefined control sequence" in result.stderr
    assert_untouched(out, scratch)


def test_a_successful_run_replaces_the_file_whole(tmp_path, scratch):
    out = existing(tmp_path, ".md")
    mode = 0o640
    out.chmod(mode)
    assert run("render", BACKPROP, "-o", out).exit_code == 0
    assert out.read_bytes() == run("render", BACKPROP).stdout_bytes
    assert out.stat().st_mode & 0o777 == mode            # the old file's permissions
    assert os.listdir(out.parent) == [out.name]


def test_check_and_stdin_interrupted_exit_130(monkeypatch):
    monkeypatch.setattr(derive.api, "numeric_check", interrupt)
    for args in (["check", BACKPROP], ["render", "-"], ["render", "-e", BAD.replace("foo", "")]):
        result = run(*args, input=BACKPROP.read_text())
        assert result.exit_code == 130, args
        assert result.stderr == "derive: interrupted\n" and "Traceback" not in result.output


# ---------------------------------------------------------------- notes


@pytest.mark.parametrize("suffix", [".tex", ".html", ".pdf"])
def test_notes_write_nothing_when_a_chain_fails_and_name_it(suffix, tmp_path, scratch):
    out = existing(tmp_path, suffix)
    bad = tmp_path / "bad.chain"
    bad.write_text(BAD, encoding="utf-8")
    result = run("notes", BACKPROP, bad, TWO_LAYER, "-o", out)
    assert result.exit_code == 2
    assert f"{bad}:3:5: unknown function foo" in result.stderr
    assert f"notes not written: {bad} failed" in result.stderr
    assert str(BACKPROP) not in result.stderr and str(TWO_LAYER) not in result.stderr
    assert_untouched(out, scratch)


@pytest.mark.parametrize("suffix", [".tex", ".html", ".pdf"])
def test_notes_write_nothing_when_a_check_fails(suffix, tmp_path, scratch, monkeypatch):
    """Both examples use σ: both fail, and both are named."""
    out = existing(tmp_path, suffix)
    corrupt_sigmoid(monkeypatch)
    log_det = ROOT / "examples" / "log_det.chain"
    result = run("notes", log_det, BACKPROP, TWO_LAYER, "-o", out)
    assert result.exit_code == 3
    assert f"notes not written: {BACKPROP}, {TWO_LAYER} failed" in result.stderr
    assert f"{log_det}:" not in result.stderr
    assert_untouched(out, scratch)


def test_notes_interrupted_exit_130_and_write_nothing(tmp_path, scratch, monkeypatch):
    out = existing(tmp_path, ".tex")
    monkeypatch.setattr(derive.api, "derive_file", interrupt)
    result = run("notes", BACKPROP, TWO_LAYER, "-o", out)
    assert result.exit_code == 130 and "Traceback" not in result.output
    assert_untouched(out, scratch)
