"""Nothing hostile gets in: the attacks of item 5 of "Trust at every size", one test each.

Another user on the same machine must not get code run as the user of derive (the cache
of parse tables and compiled templates), nor get derive to overwrite a file the shell's
``>`` would refuse (``-o``); a user template must not exhaust memory, time or the stack;
and no odd environment (a closed stdin, a full disk, Ctrl-C, a FIFO, escape sequences in
a name) ends in a traceback, a hang or a steered terminal.
"""
import os
import pickle
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from derive import cache, cli, errors, parse
from derive.cli import main
from derive.templates_path import PrivateBytecodeCache

ROOT = Path(__file__).resolve().parent.parent
BACKPROP = ROOT / "examples" / "backprop.chain"
OTHER = 65534            # "nobody": another user (the tests that need it run as root)
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make another user's files")


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def command(*args, **kwargs):
    """The real command, in a subprocess: ``python -m derive …``."""
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("timeout", 60)
    return subprocess.run([sys.executable, "-m", "derive", *map(str, args)], cwd=ROOT, **kwargs)


class Payload:
    """Unpickling this runs code: it leaves a file named PWNED."""

    def __init__(self, folder):
        self.folder = str(folder)

    def __reduce__(self):
        return (os.system, (f"touch {self.folder}/PWNED",))


# ---------------------------------------------------------------- the private cache


def test_the_cache_folder_is_reached_without_following_links(tmp_path, monkeypatch):
    """``$XDG_CACHE_HOME/derive`` as a link to a folder someone else can write: no cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (tmp_path / "derive").symlink_to(elsewhere)
    assert parse._cache_file() is False
    assert cache.private_cache_fd("templates") is None


def test_a_folder_on_the_way_that_others_can_write_turns_the_cache_off(tmp_path, monkeypatch):
    """Whoever can write a parent could swap ``derive`` after the check: no cache."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)                       # not sticky: anyone may rename what is inside
    monkeypatch.setenv("XDG_CACHE_HOME", str(shared))
    assert parse._cache_file() is False
    shared.chmod(0o1777)                      # sticky, like /tmp: only owners rename
    assert parse._cache_file() == str(shared / "derive" / Path(parse._cache_file()).name)


def test_a_link_in_place_of_the_pickle_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = Path(parse._cache_file())
    target = tmp_path / "tables"
    target.write_bytes(b"")
    path.symlink_to(target)
    assert parse._cache_file() is False


@as_root
def test_another_users_pickle_is_never_unpickled(tmp_path):
    """The measured attack: a pickle that is not ours where the tables go runs nothing."""
    xdg = tmp_path / "xdg"
    environment = {**os.environ, "XDG_CACHE_HOME": str(xdg)}
    assert command("check", BACKPROP, env=environment).returncode == 0   # creates the folder
    tables = next((xdg / "derive").glob("grammar-*.pickle"))
    tables.write_bytes(b"hash\n" + pickle.dumps(Payload(tmp_path)))   # what lark reads
    os.chown(tables, OTHER, OTHER)
    done = command("check", BACKPROP, env=environment)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "PWNED").exists()
    os.chown(tables, 0, 0)
    tables.chmod(0o666)                       # ours, but anyone may write it
    assert command("check", BACKPROP, env=environment).returncode == 0
    assert not (tmp_path / "PWNED").exists()


class Bucket:
    key = "k"

    def __init__(self):
        self.code = None

    def load_bytecode(self, stream):
        self.code = stream.read()

    def write_bytecode(self, stream):
        stream.write(b"compiled")


def test_compiled_templates_are_loaded_only_from_our_own_files(tmp_path):
    folder = tmp_path / "templates"
    folder.mkdir(mode=0o700)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        store = PrivateBytecodeCache(fd)
        store.dump_bytecode(Bucket())
        assert sorted(os.listdir(folder)) == ["__jinja2_k.cache"]     # renamed into place
        bucket = Bucket()
        store.load_bytecode(bucket)
        assert bucket.code == b"compiled"
        (folder / "__jinja2_k.cache").chmod(0o666)
        bucket = Bucket()
        store.load_bytecode(bucket)
        assert bucket.code is None
        (folder / "__jinja2_k.cache").unlink()
        (tmp_path / "planted").write_bytes(b"code")
        (folder / "__jinja2_k.cache").symlink_to(tmp_path / "planted")
        store.load_bytecode(bucket)
        assert bucket.code is None
    finally:
        os.close(fd)


@as_root
def test_another_users_compiled_template_is_not_loaded(tmp_path):
    folder = tmp_path / "templates"
    folder.mkdir(mode=0o700)
    (folder / "__jinja2_k.cache").write_bytes(b"code")
    os.chown(folder / "__jinja2_k.cache", OTHER, OTHER)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        bucket = Bucket()
        PrivateBytecodeCache(fd).load_bytecode(bucket)
        assert bucket.code is None
    finally:
        os.close(fd)


# ---------------------------------------------------------------- -o and the kernel's rules

OLD = b"the victim's file\n"


@as_root
def test_another_users_link_in_a_sticky_folder_is_not_followed(tmp_path):
    """The measured attack: someone else's link in /tmp-like folder to the victim's file."""
    victim = tmp_path / "victim.md"
    victim.write_bytes(OLD)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    link = shared / "out.md"
    link.symlink_to(victim)
    os.lchown(link, OTHER, OTHER)
    result = run("render", BACKPROP, "-o", link)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "another user's link in a shared sticky folder" in result.stderr
    assert victim.read_bytes() == OLD and link.is_symlink()
    assert sorted(os.listdir(shared)) == ["out.md"]
    if Path("/proc/sys/fs/protected_symlinks").read_text().strip() == "1":   # as the shell
        shell = subprocess.run(["sh", "-c", f"echo x > '{link}'"], capture_output=True)
        assert shell.returncode != 0 and victim.read_bytes() == OLD


def test_our_own_link_is_followed_and_its_target_replaced_whole(tmp_path):
    target = tmp_path / "real" / "out.md"
    target.parent.mkdir()
    target.write_bytes(OLD)
    target.chmod(0o640)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    link = shared / "out.md"
    link.symlink_to(os.path.relpath(target, shared))          # relative, as people make them
    assert run("render", BACKPROP, "-o", link).exit_code == 0
    assert link.is_symlink() and target.read_bytes() == run("render", BACKPROP).stdout_bytes
    assert target.stat().st_mode & 0o777 == 0o640
    assert sorted(os.listdir(target.parent)) == ["out.md"]


def test_a_read_only_file_is_refused_not_replaced(tmp_path):
    out = tmp_path / "out.md"
    out.write_bytes(OLD)
    out.chmod(0o444)
    result = run("render", BACKPROP, "-o", out)
    assert result.exit_code == 2
    assert result.stderr == f"derive: cannot write {out}: it is read-only\n"
    assert out.read_bytes() == OLD and os.listdir(tmp_path) == ["out.md"]


# ---------------------------------------------------------------- --template bounds

TEMPLATE_ATTACKS = {   # body -> what the message says
    "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}": "macros call one another more than",
    "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
    "{% endfor %}{{ ns.s|length }}": "a string longer than",
    "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}"
    "{% endfor %}": "a string or list longer than",
    "{{ '%01000000000d' % 1 }}": "a field wider than",
    "{{ '%0*d' % (1000000000, 1) }}": "a field wider than",
    "{{ '%01000000000d'|format(1) }}": "a field wider than",
    "{{ '{:01000000000d}'.format(1) }}": "a field wider than",
    "{{ '{:{}}'.format(1, 1000000000) }}": "a field wider than",
    "{{ 'x'.center(1000000000) }}": "a width of 1000000000",
    "{{ 'x'|center(1000000000) }}": "a width of 1000000000",
    "{{ 'x'|indent(1000000000, true) }}": "a width of 1000000000",
    "{{ (9 ** 999) ** 999 }}": "an integer larger than",
    "{% set ns = namespace(x=3) %}{% for i in range(100) %}{% set ns.x = ns.x * ns.x %}"
    "{% endfor %}": "an integer larger than",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}":
        "the loops run more than",
    "{% for a in [range(100000)] * 100 recursive %}{{ loop(a) if a is iterable }}{% endfor %}":
        "the loops run more than",
    "{% for i in range(100000) %}{{ 'a' * 1000 }}{% endfor %}": "the output is longer than",
    "{{ ('a' * 1000000)|replace('a', 'a' * 1000000) }}": "MiB of memory",
}


def render_with(tmp_path, body: str):
    template = tmp_path / "t.j2"
    template.write_text(f"before {body} after\n", encoding="utf-8")
    out = tmp_path / "out.txt"
    return template, out, run("render", BACKPROP, "--template", template, "-o", out)


@pytest.mark.parametrize("body", TEMPLATE_ATTACKS)
def test_template_attacks_end_in_one_clear_error(body, tmp_path):
    template, out, result = render_with(tmp_path, body)
    assert result.exit_code == 2, result.output
    where = f"{template}:1:" if "output" not in TEMPLATE_ATTACKS[body] else "derive:"
    assert result.stderr.startswith(where) and "template error" in result.stderr
    assert TEMPLATE_ATTACKS[body] in result.stderr
    assert "Traceback" not in result.output and not out.exists()


def test_a_template_including_itself_is_an_error_not_a_traceback(tmp_path):
    template, out, result = render_with(tmp_path, "{% include 't.j2' %}")
    assert result.exit_code == 2 and "nests too deeply" in result.stderr
    assert "Traceback" not in result.output and not out.exists()


def test_the_template_bounds_leave_ordinary_templates_alone(tmp_path):
    body = ("{% macro m(n) %}{% if n %}{{ n }}{{ m(n - 1) }}{% endif %}{% endmacro %}{{ m(3) }}"
            "{% for i in range(3) %}{{ i ~ '-' }}{% endfor %} {{ '%5.2f' % 3 }} "
            "{{ '{:>4}'.format(1) }} {{ 'x'|center(5) }} {{ '%d'|format(7) }} {{ 2 ** 64 }}"
            "{% for a in [[1, [2]], [3]] recursive %}{{ loop(a) if a is iterable else a }}"
            "{% endfor %}")
    template, out, result = render_with(tmp_path, body)
    assert result.exit_code == 0, result.output
    assert out.read_text() == ("before 3210-1-2-  3.00    1   x   7 18446744073709551616123"
                               " after\n")


def test_a_template_that_is_no_file_or_too_large_is_not_read(tmp_path):
    fifo = tmp_path / "fifo.j2"
    os.mkfifo(fifo)
    big = tmp_path / "big.j2"
    big.write_bytes(b"a" * 1_000_001)
    for template, message in (("/dev/zero", "not a regular file"), (fifo, "not a regular file"),
                              (big, "larger than 1000000 bytes")):
        done = command("render", BACKPROP, "--template", template, "--no-check", timeout=20)
        assert done.returncode == 2, done.stderr
        assert done.stderr.decode() == f"derive: cannot read template {template}: {message}" + (
            ", the limit for a template\n" if "larger" in message else "\n")


def test_an_included_file_too_large_is_refused(tmp_path):
    (tmp_path / "big.j2").write_bytes(b"a" * 1_000_001)
    template, out, result = render_with(tmp_path, "{% include 'big.j2' %}")
    assert result.exit_code == 2 and "big.j2 is larger than 1000000 bytes" in result.stderr


# ---------------------------------------------------------------- no traceback, no hang


def no_traceback(done) -> str:
    stderr = done.stderr.decode() if isinstance(done.stderr, bytes) else done.stderr
    assert "Traceback" not in stderr
    return stderr


def test_a_negative_seed_is_a_usage_error():
    for args in (["check", BACKPROP], ["render", BACKPROP], ["notes", BACKPROP, "-o", "n.tex"]):
        result = run(*args, "--seed", "-1")
        assert result.exit_code == 2 and "-1 is not in the range x>=0" in result.stderr


def test_a_closed_stdin_is_an_error_message():
    done = command("render", "-", stdin=subprocess.DEVNULL, timeout=60,
                   preexec_fn=lambda: os.close(0))
    assert done.returncode == 2
    assert no_traceback(done) == ("derive: cannot read standard input: it is closed "
                                  "(give FILE or -e TEXT)\n")


def test_a_full_disk_on_stdout_is_an_error_message():
    for args in (["render", BACKPROP], ["check", BACKPROP]):
        with open("/dev/full", "w") as full:
            done = command(*args, stdout=full, stderr=subprocess.PIPE, capture_output=False)
        assert done.returncode == 2
        assert no_traceback(done) == ("derive: cannot write standard output: "
                                      "No space left on device\n")


def test_a_closed_stdout_is_an_error_message():
    done = command("render", BACKPROP, stdout=None, stderr=subprocess.PIPE, capture_output=False,
                   preexec_fn=lambda: os.close(1))
    assert done.returncode == 2
    assert no_traceback(done) == ("derive: cannot write standard output: it is closed "
                                  "(give -o FILE)\n")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN"])
def test_max_seconds_must_be_a_finite_number(value):
    result = run("check", BACKPROP, "--max-seconds", value)
    assert result.exit_code == 2 and "Invalid value for '--max-seconds'" in result.stderr


def test_a_fifo_as_a_chain_file_does_not_block(tmp_path):
    fifo = tmp_path / "a.chain"
    os.mkfifo(fifo)
    done = command("notes", fifo, "-o", tmp_path / "notes.tex", timeout=30)
    assert done.returncode == 2 and "notes not written" in no_traceback(done)
    done = command("check", "/dev/null", timeout=30)          # a device: refused unopened
    assert done.returncode == 2
    assert no_traceback(done) == ("derive: cannot read /dev/null: not a regular file "
                                  "(give - to read standard input)\n")


def test_a_pipe_as_a_chain_file_still_works():
    done = subprocess.run(["bash", "-c", f"{sys.executable} -m derive check <(cat {BACKPROP})"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_ctrl_c_before_any_command_runs_exits_130(monkeypatch):
    """click's own handling would say "Aborted!" and exit 1."""
    import click

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(click.core.Context, "invoke", interrupt)
    result = run("check", BACKPROP)
    assert result.exit_code == 130 and result.stderr == "derive: interrupted\n"
    monkeypatch.setattr(click.core.Command, "parse_args", interrupt)
    result = run("check", BACKPROP)
    assert result.exit_code == 130 and result.stderr == "derive: interrupted\n"


@pytest.mark.parametrize("delay", [0.15, 0.3, 0.5])
def test_ctrl_c_while_starting_up_exits_130(delay):
    """The real process, interrupted while it imports click, SymPy and NumPy."""
    import signal
    import time
    process = subprocess.Popen([sys.executable, "-m", "derive", "check", str(BACKPROP)],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    if process.returncode == 0:
        pytest.skip("finished before the signal")
    if b"Traceback" in stderr and b"derive" not in stderr:
        pytest.skip("interrupted in Python's own start-up (site), before derive's first line")
    if process.returncode == -signal.SIGINT:      # during Python's own shutdown: the
        assert b"Traceback" not in stderr         # default handler, which a shell shows as 130
        return
    assert process.returncode == 130 and b"Traceback" not in stderr
    assert stderr.endswith(b"derive: interrupted\n")


ESCAPE = "\x1b]0;owned\x07\x1b[31m"


def test_escape_sequences_in_file_names_reach_stderr_replaced(tmp_path):
    missing = tmp_path / f"{ESCAPE}.chain"
    result = run("check", missing)
    assert result.exit_code == 2 and "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert "\ufffd]0;owned\ufffd\ufffd[31m.chain: no such file" in result.stderr
    bad = tmp_path / f"{ESCAPE}bad.chain"
    bad.write_text("W : 5x4\nx : 4\nv = foo(W x)\nE = v:v\nwrt W\n", encoding="utf-8")
    for args in (["check", bad], ["notes", bad, "-o", tmp_path / "n.tex"]):
        result = run(*args)
        assert result.exit_code == 2 and "\x1b" not in result.stderr, args
        assert "unknown function foo" in result.stderr


# every character near the classes' bounds: C0, C1, lone surrogates, layout, and
# non-ASCII ones printable or not
_ODD = [chr(c) for c in range(0xa1)] + ["\ud800", "\udbff", "\udc00", "\udfff"] + list(
    "é∘ᵀ½😀\u200b\u2028\ufeff\ue000")
_CLASSES = ((parse._CONTROL, "\t\n\f\r"), (errors._UNPRINTABLE, "\t"), (cli._CONTROL, "\t\n"))


def _same_as_the_pattern(text: str) -> None:
    for pattern, layout in _CLASSES:
        found, plain = errors.first_unprintable(text, pattern, layout), re.search(pattern, text)
        assert (found and (found.start(), found.group())) == (plain and (plain.start(), plain.group()))
        assert errors.shown_printable(text, pattern, layout) == re.sub(pattern, "\ufffd", text)
    found, plain = parse.refused_character(text), re.search(parse._CONTROL, text)
    assert (found and found.start()) == (plain and plain.start())


def test_the_printable_shortcut_finds_what_the_patterns_find():
    """``first_unprintable`` skips the pattern for a text ``str.isprintable`` calls clean:
    for the parser's, the messages' and the command's classes it finds exactly what a
    plain search finds (each odd character alone in a clean text), and replaces exactly
    what a plain substitution replaces."""
    for c in _ODD:
        _same_as_the_pattern(f"x : 3 # é{c}∘")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_ODD + list("ab :=(")), max_size=10).map("".join))
def test_the_printable_shortcut_on_mixed_texts(text):
    _same_as_the_pattern(text)


def test_escape_sequences_in_warnings_and_click_errors_are_replaced(tmp_path):
    chain = tmp_path / f"{ESCAPE}.chain"
    chain.write_text("W : 2x3\nx : 3\nw_1 : 2\nv = W x\nE = v:v\nwrt W, w_1\n", encoding="utf-8")
    result = run("check", chain)
    assert "warning" in result.stderr and "\x1b" not in result.stderr
    result = run(f"{ESCAPE}command")
    assert result.exit_code == 2 and "\x1b" not in result.stderr
    result = run("check", "--wrt", ESCAPE, BACKPROP)
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr


# ---------------------------------------------------------------- the check's cost, up front


def test_a_check_that_would_pass_the_time_limit_is_refused_before_it_starts():
    """Measured: ``--max-seconds 2`` ran 10-58 s on this chain."""
    import time
    start = time.monotonic()
    result = run("check", "--max-seconds", "2", "-e", "X : 300x300; E = tr(X^100); wrt X")
    assert time.monotonic() - start < 3
    assert result.exit_code == 2 and "the numeric check would take about" in result.stderr
    assert "--no-check skips it" in result.stderr
    assert run("render", "--no-check", "-e", "X : 300x300; E = tr(X^100); wrt X").exit_code == 0


def test_an_outer_product_too_large_to_build_is_refused():
    """Measured: ``x : 20000; A = x x'`` built 3.2 GB matrices and ignored Ctrl-C for 5 s."""
    import time
    start = time.monotonic()
    result = run("check", "-e", "x : 20000; A = x x'; E = 1'A 1; wrt x")
    assert time.monotonic() - start < 3
    assert result.exit_code == 2 and "would build a 20000×20000 array" in result.stderr
    assert "<-e>:1:1:" in result.stderr


def test_a_hessian_or_jacobian_too_large_to_build_is_refused():
    """Measured: ``X : 200x200; E = tr(XᵀXXᵀX); hessian X`` with ``--max-seconds 5`` ran
    90 s and reached 24 GB (the block's 40000×40000 Kronecker matrix) before it was killed;
    a 300×300 ``jacobian Y wrt X`` allocated its 90000×90000 J before giving up."""
    import time
    for text, size in (("X : 200x200\nE = tr(X'X X'X)\nhessian X\nwrt X", "40000×40000"),
                       ("X : 300x300\nY = X X\njacobian Y wrt X", "90000×90000")):
        start = time.monotonic()
        result = run("check", "--max-seconds", "5", "-e", text)
        assert time.monotonic() - start < 3
        assert result.exit_code == 2 and f"would build a {size} array" in result.stderr
        assert "<-e>:3:" in result.stderr         # the hessian / jacobian line
        assert run("render", "--no-check", "-e", text).exit_code == 0


def test_the_estimate_counts_directions_as_rank_one_and_shared_nodes_once():
    """Measured: ``X : 1000x1000; E = tr(X⁻¹ X X⁻¹)`` checks in about 20 s here, but was
    estimated at 478 s (every dX priced as a dense matrix in n³ products, every linear
    line differenced like a definition, a shared X⁻¹ once per use); now about 73 s."""
    from derive import cost
    from derive.api import derive as derive_unchecked
    from derive.check import assign_sizes
    from derive.errors import DeriveError
    from derive.limits import Limits, applied
    text = "X : 1000x1000; E = tr(inv(X) X inv(X)); wrt X"
    derivation = derive_unchecked(text, check=False)
    with applied(Limits(max_seconds=120)):
        cost.refuse_costly(derivation, assign_sizes(derivation.chain))     # not refused
    with applied(Limits(max_seconds=2)), pytest.raises(DeriveError, match="would take about"):
        cost.refuse_costly(derivation, assign_sizes(derivation.chain))


def test_the_estimate_leaves_ordinary_checks_alone():
    for text in ("W : 1000x1000; x : 1000; v = W x; s = sigma(v); E = s's; wrt W",
                 "x : 1000; S = Diag(x); E = 1'S S x; wrt x",
                 "X : 60x60; E = tr(X^50); wrt X"):
        result = run("check", "-e", text)
        assert result.exit_code == 0, (text, result.output)


def test_nothing_is_created_in_a_folder_others_can_write(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("XDG_CACHE_HOME", str(shared))
    assert parse._cache_file() is False and os.listdir(shared) == []
