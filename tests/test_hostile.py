"""Nothing hostile gets in: the attacks of item 5 of "Trust at every size", one test each.

Another user on the same machine must not get code run as the user of derive (the cache
of parse tables and compiled templates), nor get derive to overwrite a file the shell's
``>`` would refuse (``-o``); a user template must not exhaust memory, time or the stack;
and no odd environment (a closed stdin, a full disk, Ctrl-C, a FIFO, escape sequences in
a name) ends in a traceback, a hang or a steered terminal.
"""
import os
import pickle
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from derive import cache, parse
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
