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


# ---------------------------------------------------------------- pandoc's habits

import os  # noqa: E402
import pty  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import derive.formats  # noqa: E402

ROOT = EXAMPLE.parent.parent
TWO_LAYER = ROOT / "examples" / "two_layer.chain"


def command(*args, stdin=None, stderr=subprocess.PIPE, env=None, timeout=120):
    """The real process, ``python -m derive``, run from another folder."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "derive", *map(str, args)], stdin=stdin,
                          stdout=subprocess.PIPE, stderr=stderr, env=environment,
                          cwd=ROOT / "tests", timeout=timeout)


def test_derive_file_is_derive_render_file():
    rendered = run("render", EXAMPLE).stdout
    assert run(EXAMPLE).stdout == rendered
    assert run(EXAMPLE, "-t", "tex").stdout == run("render", EXAMPLE, "-t", "latex").stdout
    assert run("-t", "json", EXAMPLE).exit_code == 0          # render's options first
    assert command(EXAMPLE).stdout.decode() == rendered


def test_missing_file_and_unknown_word_are_one_message():
    missing = run("missing.chain")
    assert missing.exit_code == 2 and "cannot read missing.chain: no such file" in missing.stderr
    unknown = run("rendr")
    assert unknown.exit_code == 2 and "No such command 'rendr'" in unknown.stderr
    assert "Traceback" not in missing.output + unknown.output


def test_standard_input_when_no_file_is_given_and_it_is_piped():
    rendered = run("render", EXAMPLE).stdout
    assert run("render", input=EXAMPLE.read_text()).stdout == rendered
    assert run(input=EXAMPLE.read_text()).stdout == rendered       # a bare `derive`
    assert run("-t", "py", input=EXAMPLE.read_text()).stdout == \
        run("render", EXAMPLE, "-t", "numpy").stdout
    with open(EXAMPLE, "rb") as stdin:                               # derive < file
        piped = command(stdin=stdin)
    assert piped.returncode == 0 and piped.stdout.decode() == rendered
    with open(EXAMPLE, "rb") as stdin:
        assert command("render", stdin=stdin).stdout.decode() == rendered
    with open(os.devnull, "rb") as stdin:                            # nothing piped in
        empty = command("render", stdin=stdin)
    assert empty.returncode == 2 and b"standard input is empty" in empty.stderr


def _on_a_terminal(*args):
    """``derive ARGS`` with a terminal as standard input: it must not wait for it."""
    main_fd, other = pty.openpty()
    try:
        return command(*args, stdin=other, timeout=60)
    finally:
        os.close(main_fd)
        os.close(other)


def test_a_terminal_on_standard_input_is_not_read():
    bare = _on_a_terminal()
    assert b"Usage: derive" in bare.stdout + bare.stderr and b"render" in bare.stdout + bare.stderr
    render = _on_a_terminal("render")
    assert render.returncode == 2 and b"give exactly one of FILE" in render.stderr


@pytest.mark.parametrize("short, long", [("md", "markdown"), ("tex", "latex"), ("py", "numpy"),
                                         ("TeX", "latex")])
def test_short_format_names(short, long):
    result = run(EXAMPLE, "-t", short)
    assert result.exit_code == 0, result.output
    assert result.stdout == run("render", EXAMPLE, "--to", long).stdout


def test_dash_output_is_standard_output_and_s_is_standalone(tmp_path):
    assert run(EXAMPLE, "-o", "-").stdout == run(EXAMPLE).stdout
    short = run(EXAMPLE, "-t", "tex", "-s", "-o", "-")
    assert short.exit_code == 0 and r"\documentclass" in short.stdout
    assert short.stdout == run("render", EXAMPLE, "-t", "latex", "--standalone").stdout
    pdf = run(EXAMPLE, "-t", "pdf", "-o", "-")
    assert pdf.exit_code == 2 and "refusing to write a PDF to standard output" in pdf.stderr
    notes = run("notes", EXAMPLE, "-t", "tex", "-o", "-")
    assert notes.exit_code == 0 and r"\tableofcontents" in notes.stdout


def test_help_lists_every_fixed_value_in_users_words():
    shown = run("render", "--help").stdout
    for name in derive.formats.FORMATS + derive.formats.FLAVORS + derive.formats.LANGUAGES:
        assert name in shown
    assert "|md|tex|py]" in shown.replace("\n", "").replace(" ", "")
    expand = shown[shown.index("--expand"):shown.index("--no-check")]
    assert "seed" not in expand and "Multiply the gradient out" in expand
    notes = run("notes", "--help").stdout
    assert "[latex|pdf|html|tex]" in notes.replace("\n", "").replace(" ", "")
    top = run("--help").stdout
    assert "derive FILE" in top and "standard input" in top


def _complete(words: str):
    """What click's bash completion protocol answers for the line ``words`` (the cursor
    after its last word)."""
    env = {"_DERIVE_COMPLETE": "bash_complete", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split()) - (not words.endswith(" ")))}
    done = command(env=env)
    assert done.returncode == 0, done.stderr
    return [line.split(",", 1)[1] for line in done.stdout.decode().splitlines()]


@pytest.mark.parametrize("words, expected", [
    ("derive render x.chain -t ", derive.formats.spellings()),
    ("derive x.chain --to ", derive.formats.spellings()),
    ("derive render x.chain --flavor ", derive.formats.FLAVORS),
    ("derive x.chain --flavor k", ("katex",)),
    ("derive render -f ", derive.formats.LANGUAGES),
    ("derive notes a.chain -t ", ("latex", "pdf", "html", "tex")),
    ("derive ", ("check", "notes", "render")),
])
def test_shell_completion_offers_the_values(words, expected):
    assert tuple(_complete(words)) == tuple(expected)


def test_bash_itself_completes_from_the_generated_script(tmp_path):
    """The script click generates, sourced by a real bash, filled COMPREPLY."""
    import shutil
    if shutil.which("bash") is None:
        pytest.skip("no bash")
    script = command(env={"_DERIVE_COMPLETE": "bash_source"}).stdout.decode()
    assert "_derive_completion" in script
    shim = tmp_path / "derive"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m derive "$@"\n')
    shim.chmod(0o755)
    probe = (script + '\nCOMP_WORDS=(derive render x.chain --flavor ""); COMP_CWORD=4\n'
             '_derive_completion derive\nprintf "%s\\n" "${COMPREPLY[@]}"\n')
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.stdout.split() == list(derive.formats.FLAVORS), done.stderr


def test_version_without_package_metadata(tmp_path):
    """Not pip-installed: the version is derive.__version__, which pyproject reads."""
    import tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "derive.__version__"}
    assert "version" in project["project"]["dynamic"]
    assert derive.__version__ == "0.2.0"
    import warnings
    from setuptools.config.pyprojecttoml import read_configuration
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")               # setuptools: [tool.setuptools] is "beta"
        built = read_configuration(ROOT / "pyproject.toml", expand=True)
    assert built["project"]["version"] == derive.__version__       # what pip would install
    blind = ("import importlib.metadata as m, sys\n"
             "def missing(*a, **k): raise m.PackageNotFoundError('derive')\n"
             "m.version = m.distribution = missing\n"
             "sys.argv = ['derive', '--version']\n"
             "from derive.__main__ import main; main()\n")
    done = subprocess.run([sys.executable, "-c", blind], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path, timeout=120)
    assert done.returncode == 0 and done.stdout == "derive 0.2.0\n", done.stderr
    assert run("--version").stdout == "derive 0.2.0\n"


def test_formats_and_flavors_are_listed_once():
    from derive import cli, render
    assert render.FLAVORS is derive.formats.FLAVORS
    assert set(render.FORMATS) <= set(derive.formats.FORMATS)
    for name in ("FORMATS", "FLAVORS", "EXTENSIONS"):
        assert not hasattr(cli, name) and not hasattr(derive.api, name)
    source = (ROOT / "derive" / "cli.py").read_text() + (ROOT / "derive" / "api.py").read_text()
    assert '"katex"' not in source and '".md"' not in source


# ---------------------------------------------------------------- notes: progress, one summary

BAD_A = "W : 5x4\nx : 4\nv = foo(W x)\nE = v:v\nwrt W\n"
BAD_B = "W : 5x4\nx : 4\nv = W x +\nE = v:v\nwrt W\n"


def test_notes_show_progress_on_a_terminal_only(tmp_path):
    out = tmp_path / "notes.tex"
    main_fd, terminal = pty.openpty()
    try:
        done = command("notes", EXAMPLE, TWO_LAYER, "-o", out, stderr=terminal)
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(main_fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(main_fd)
    assert done.returncode == 0 and out.exists()
    shown = shown.decode()
    assert f"[1/2] {EXAMPLE}" in shown and f"[2/2] {TWO_LAYER}" in shown
    assert shown.endswith("\r\x1b[K")                     # the line is cleared at the end
    piped = command("notes", EXAMPLE, TWO_LAYER, "-o", out)
    assert piped.returncode == 0 and piped.stderr == b""


def test_notes_collect_every_failure_into_one_summary(tmp_path):
    a, b = tmp_path / "a.chain", tmp_path / "b.chain"
    a.write_text(BAD_A)
    b.write_text(BAD_B)
    out = tmp_path / "notes.html"
    result = run("notes", a, EXAMPLE, b, "-o", out)
    assert result.exit_code == 2 and not out.exists()
    lines = result.stderr.splitlines()
    assert lines[0] == f"derive: notes not written: {a}, {b} failed (2 of 3 chains)"
    assert lines[1].startswith(f"  {a}:3:5: unknown function foo")
    assert lines[2] == f"  {b}:3:10: expected an expression after '+'"
    assert len(lines) == 3 and str(EXAMPLE) not in result.stderr      # one line each
    with pytest.raises(derive.DeriveError) as raised:
        derive.notes([a, EXAMPLE, b], out)
    assert raised.value.format() == result.stderr.rstrip("\n")


def test_notes_summary_names_the_first_failed_line(monkeypatch, tmp_path):
    _failing_check(monkeypatch)
    result = run("notes", EXAMPLE, "-o", tmp_path / "n.tex")
    assert result.exit_code == 3
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and lines[1].startswith(f"  {EXAMPLE}:6: numeric check failed")
    assert "✗" not in result.stderr                          # no verdict dump


def _slow_build(monkeypatch, seconds):
    real = derive.api.build

    def slow(*args, **kwargs):
        time.sleep(seconds)
        return real(*args, **kwargs)

    monkeypatch.setattr(derive.api, "build", slow)


def test_max_seconds_is_per_chain_in_notes(monkeypatch, tmp_path):
    _slow_build(monkeypatch, 0.4)
    out = tmp_path / "n.tex"
    chains = [EXAMPLE, TWO_LAYER, EXAMPLE]               # 1.2 s together, 0.4 s each
    done = run("notes", *chains, "-o", out, "--max-seconds", "1")
    assert done.exit_code == 0, done.output
    stopped = run("notes", *chains, "-o", out, "--max-seconds", "0.2")
    assert stopped.exit_code == 2
    assert stopped.stderr.count("stopped after 0.2 s") == 3
    assert f"  {TWO_LAYER}:" in stopped.stderr          # each stop names its chain


# ---------------------------------------------------------------- the API does what the CLI does


def test_the_api_renders_and_writes_like_the_command(tmp_path):
    page = tmp_path / "b.html"
    returned = derive.render(EXAMPLE, output=page)
    assert page.read_text(encoding="utf-8") == returned and "<html" in returned
    assert derive.render(EXAMPLE) == run(EXAMPLE).stdout
    assert derive.render(text=EXAMPLE.read_text(), to="py") == run(EXAMPLE, "-t", "py").stdout
    assert derive.render(EXAMPLE, to="tex", standalone=True, output="-").startswith(r"\documentclass")
    for options, message in [({"to": "docx"}, "unknown format 'docx'"),
                             ({"flavor": "latex"}, "unknown Markdown flavor"),
                             ({"output": tmp_path / "x.xyz"}, "cannot tell the format"),
                             ({"keep_tex": True}, "--keep-tex applies to PDF")]:
        with pytest.raises(derive.DeriveError, match=message):
            derive.render(EXAMPLE, **options)
    assert list(tmp_path.iterdir()) == [page]


def test_the_api_notes_and_its_progress(tmp_path):
    seen = []
    tex = derive.notes([EXAMPLE, TWO_LAYER], tmp_path / "n.tex",
                       progress=lambda *event: seen.append(event))
    assert (tmp_path / "n.tex").read_text(encoding="utf-8") == tex
    assert seen == [(0, 2, str(EXAMPLE), 0), (1, 2, str(TWO_LAYER), 0), (2, 2, None, 0)]


def test_a_failed_check_raises_check_failed_and_writes_nothing(monkeypatch, tmp_path):
    _failing_check(monkeypatch)
    with pytest.raises(derive.api.CheckFailed) as raised:
        derive.render(EXAMPLE, output=tmp_path / "x.md")
    assert raised.value.exit_code == 3 and "✗" in raised.value.format()
    assert list(tmp_path.iterdir()) == []


def test_api_warnings_go_to_the_callback_or_to_python_warnings():
    text = "W : 5x4\nx : 4\ny : 5\nv = W x\nE = v:v\nwrt W\n"        # y is never used
    said = []
    derive.render(text=text, warn=said.append)
    assert said == ["<-e>:3:1: warning: y is declared but never used"]
    with pytest.warns(UserWarning, match="y is declared but never used"):
        derive.render(text=text)


@pytest.mark.parametrize("given", ["", " , "])
def test_a_wrt_option_naming_nothing_is_an_error(given):
    """``--wrt ""`` (an empty shell variable) used the chain's own wrt without a word."""
    result = run("check", "--wrt", given, "-e", "x : 3; y : 3; E = x'y; wrt x")
    assert result.exit_code == 2 and "'--wrt': names no variable" in result.output
    assert run("check", "--wrt", "y", "-e", "x : 3; y : 3; E = x'y; wrt x").exit_code == 0


def test_the_command_freezes_what_is_alive_at_its_end_and_the_library_never_does():
    """The process's last cyclic collection walks SymPy's objects, which die with it anyway:
    ``python -m derive`` freezes them as it ends (its output and exit code unchanged); a
    command run in this process (click's runner, the API) leaves the collector alone."""
    import gc
    probe = ("import atexit, gc, sys\n"
             "atexit.register(lambda: print('frozen', gc.get_freeze_count(), file=sys.stderr))\n"
             f"sys.argv = ['derive', 'check', {str(EXAMPLE)!r}]\n"
             "from derive.__main__ import main\nmain()\n")
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env=environment, cwd=ROOT / "tests", timeout=120)
    assert done.returncode == 0 and "✓ line 5" in done.stdout
    assert int(done.stderr.split("frozen")[-1]) > 10_000
    before = gc.get_freeze_count()
    assert run("check", EXAMPLE).exit_code == 0
    assert gc.get_freeze_count() == before
