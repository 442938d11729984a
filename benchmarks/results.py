"""benchmarks/RESULTS.md is written by the benchmarks themselves: each runner replaces its
own section (between ``<!-- NAME -->`` and ``<!-- /NAME -->``) with what it printed."""
from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = ("# Benchmark results\n\nWritten by the benchmark runners (`python benchmarks/run.py`, "
          "`python benchmarks/quality.py`, `python benchmarks/deep_chain.py`); each section is "
          "the output of the last run of its command.\n")


class _Tee(io.TextIOBase):
    def __init__(self, stream):
        self.stream, self.kept = stream, io.StringIO()

    def write(self, text):
        self.kept.write(text)
        return self.stream.write(text)

    def flush(self):
        self.stream.flush()


@contextlib.contextmanager
def recorded(name: str, title: str):
    """Print as usual; when the block finishes, the printed text becomes section ``name``."""
    tee = _Tee(sys.stdout)
    with contextlib.redirect_stdout(tee):
        yield
    write_section(name, title, tee.kept.getvalue())


def write_section(name: str, title: str, body: str) -> None:
    old = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else HEADER
    section = f"<!-- {name} -->\n## {title}\n\n```\n{body.rstrip()}\n```\n<!-- /{name} -->\n"
    pattern = re.compile(rf"<!-- {re.escape(name)} -->.*?<!-- /{re.escape(name)} -->\n", re.S)
    new = pattern.sub(lambda _: section, old) if pattern.search(old) else old.rstrip() + "\n\n" + section
    fd, temporary = tempfile.mkstemp(dir=RESULTS.parent, prefix=".RESULTS.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(new)
    os.chmod(temporary, 0o644)          # mkstemp's 0600 would hide the results from others
    os.replace(temporary, RESULTS)
