"""A LaTeX document becomes a PDF file, compiled by TeX Live (latexmk, else pdflatex).

TeX runs in a temporary folder with ``-interaction=nonstopmode -halt-on-error
-no-shell-escape``, empty stdin and a time limit; the PDF reaches ``-o`` only through the
atomic writer, so a failed run leaves the old file (or none), never half a PDF.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from .errors import EXIT_NO_TEX, EXIT_TEX_FAILED, DeriveError
from .output import write_atomically

INSTALL = "apt-get install texlive-latex-base texlive-latex-recommended latexmk"
TEX_OPTIONS = ("-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape")
TIME_LIMIT = 60.0
JOB = "derivation"
MAX_RUNS = 3   # pdflatex alone: reruns until the table of contents settles


def engine() -> tuple:
    """``(latexmk or None, pdflatex)``; exit 4 with what to install when there is no pdflatex."""
    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        raise DeriveError(f"no TeX engine found (pdflatex is not on PATH); install TeX Live, "
                          f"e.g. {INSTALL}", exit_code=EXIT_NO_TEX)
    return shutil.which("latexmk"), pdflatex


def write_pdf(tex: str, output, *, keep_tex: bool = False, time_limit: float = TIME_LIMIT) -> None:
    """Compile ``tex`` and write the PDF to ``output`` (and, with ``keep_tex``, the source
    next to it, written first so a TeX error can be looked up in it)."""
    output = Path(output)
    kept = output.with_suffix(".tex") if keep_tex else None
    if kept is not None:
        write_atomically(kept, tex)
    write_atomically(output, compile_pdf(tex, time_limit=time_limit, kept=kept))


def compile_pdf(tex: str, *, time_limit: float = TIME_LIMIT, kept: Path | None = None) -> bytes:
    """The bytes of the PDF TeX makes of ``tex``; exit 5 with TeX's own error line if it fails."""
    latexmk, pdflatex = engine()
    with tempfile.TemporaryDirectory(prefix="derive-tex-") as name:
        folder = Path(name)
        (folder / f"{JOB}.tex").write_text(tex, encoding="utf-8")
        deadline = time.monotonic() + time_limit
        if latexmk:
            command = [latexmk, "-norc", "-pdf", f"-pdflatex={pdflatex} "
                       + " ".join(TEX_OPTIONS) + " %O %S", f"{JOB}.tex"]
            ok, transcript = _run(command, folder, deadline, time_limit)
        else:
            ok, transcript = _run_pdflatex(pdflatex, folder, deadline, time_limit)
        pdf = folder / f"{JOB}.pdf"
        if not ok or not pdf.is_file():
            raise DeriveError(_failure(folder / f"{JOB}.log", transcript, kept),
                              exit_code=EXIT_TEX_FAILED)
        return pdf.read_bytes()


def _run_pdflatex(pdflatex: str, folder: Path, deadline: float, time_limit: float) -> tuple:
    """pdflatex, rerun while the .aux file (and so the contents) still changes."""
    aux, before = folder / f"{JOB}.aux", None
    for _ in range(MAX_RUNS):
        ok, transcript = _run([pdflatex, *TEX_OPTIONS, f"{JOB}.tex"], folder, deadline, time_limit)
        after = aux.read_bytes() if aux.is_file() else None
        if not ok or after == before:
            break
        before = after
    return ok, transcript


def _run(command: list, folder: Path, deadline: float, time_limit: float) -> tuple:
    """``(succeeded, output)`` of one command; the whole process group dies at the deadline."""
    process = subprocess.Popen(command, cwd=folder, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        out, _ = process.communicate(timeout=max(deadline - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise DeriveError(f"TeX did not finish within {time_limit:g} s; no PDF was written",
                          exit_code=EXIT_TEX_FAILED) from None
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    return process.returncode == 0, out.decode("utf-8", "replace")


def _failure(log: Path, transcript: str, kept: Path | None) -> str:
    """TeX's ``! message`` and its ``l.N`` line, and where to read line N."""
    text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else transcript
    error = tex_error(text)
    if error is None:
        tail = "\n  ".join(transcript.strip().splitlines()[-15:])
        return f"TeX failed; no PDF was written. Its last words:\n  {tail}"
    message, line, context = error
    where = (f"see {kept}:{line}" if kept
             else f"line {line} of the generated LaTeX; --keep-tex keeps it")
    at = f"\n  l.{line} {context}\n  ({where})" if line else ""
    return f"TeX failed; no PDF was written: {message}{at}"


def tex_error(log: str):
    """``(message, line, context)`` of the first ``! …`` error in a TeX log, else None."""
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("! "):
            for after in lines[i + 1:i + 30]:
                found = re.match(r"l\.(\d+) ?(.*)", after)
                if found:
                    return line, int(found.group(1)), found.group(2).strip()
            return line, None, ""
    return None
