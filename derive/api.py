"""The Python API: chain text in, a (checked) Derivation out; ``render`` and ``notes`` do
all the command line does (format inference, option checks, documents, files). Never
prints; errors are DeriveError."""
from __future__ import annotations

import dataclasses
import os
import stat
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable

from .check import assign_sizes, check as numeric_check
from .check import check_alternatives
from .cost import refuse_costly
from .derivation import LOADERS, Derivation
from .errors import EXIT_CHECK_FAILED, DeriveError, Notice, note
from . import formats
from .limits import Limits, applied, read_bounded
from .parse import looks_like_latex, parse_chain
from .sweep import build


def _load_outputs() -> None:
    """The renderers, imported the first time a Derivation is asked for a format."""
    from . import render  # noqa: F401  (importing it fills derivation.OUTPUTS)


LOADERS.append(_load_outputs)


def derive(text: str, *, wrt=None, source_name: str = "<-e>", check: bool = True,
           seed: int = 0, expand: bool = False, limits: Limits | None = None,
           symmetric_gradient: bool = False, strict: bool = False,
           language: str | None = None, claims=None, jacobians: bool = False) -> Derivation:
    """Parse ``text``, derive the gradient(s) and, unless ``check=False``, verify every line.

    ``claims`` adds claimed gradients to those the text makes (``claim dE/dW = …``): a
    mapping ``{"W": "EXPR"}`` or strings ``"W = EXPR"``, EXPR in the chain syntax over the
    chain's names. Their verdicts are ``derivation.claims`` (``ClaimVerdict``: ``holds``,
    the separating direction, the slip); a claim about an input not in ``wrt`` adds it.

    ``language`` is ``"chain"``, ``"latex"`` or None: LaTeX when the text has a ``$`` or a
    backslash. Warnings (``derivation.warnings`` of kind ``"warning"``: an undeclared name
    beside declared ones, an unused input, a wrt with no path, a formula the LaTeX reader
    skipped) are data; ``strict`` makes the first of them a DeriveError instead.

    A failed numeric check is not an exception: it is recorded in ``derivation.check``
    (``.ok`` is False, ``.failures`` names the lines), so callers can still show it.
    ``limits`` bounds sizes and time (default: ``Limits`` with ``DERIVE_MAX_…`` variables).
    ``jacobians`` adds the chain rule made visible: each definition's local Jacobian and
    their product, checked to equal the gradient (``derivation.jacobians``); a chain's
    ``jacobian F wrt X`` lines are answered either way.
    """
    try:
        return _derive(text, wrt, source_name, check, seed, expand, limits, symmetric_gradient,
                       strict, language, claims, jacobians)
    except DeriveError as error:     # the caller's line and the message, not derive's frames
        raise error.with_traceback(None) from None


def read_chain(text: str, source_name: str, wrt, language: str | None):
    """The chain of ``text``: the chain reader, or the LaTeX reader, which (with its grammar)
    is loaded only for LaTeX, so that a chain's cold start does not pay for it."""
    if language == "chain" or (language is None and not looks_like_latex(text)):
        return parse_chain(text, source_name, wrt)
    from .latex_input import read_chain as read_either
    return read_either(text, source_name, wrt, language)


def _derive(text, wrt, source_name, check, seed, expand, limits, symmetric_gradient,
            strict, language, claims=None, jacobians=False) -> Derivation:
    with applied(limits), _resources():
        chain = read_chain(text, source_name, list(wrt) if wrt else None, language)
        if claims:
            from .claims import with_claims
            chain = with_claims(chain, claims)
        derivation = _built(chain, expand, symmetric_gradient, jacobians)
        if strict:
            _refuse_warnings(derivation)
        if check:
            derivation = _checked(derivation, seed)
        if check and chain.alternatives:
            found = check_alternatives(chain, seed)
            derivation = dataclasses.replace(derivation, warnings=derivation.warnings + tuple(found))
        if chain.claims:
            from .claims import check_claims, unchecked_claims
            verdicts = check_claims(derivation, seed) if check else unchecked_claims(derivation)
            derivation = dataclasses.replace(derivation, claims=verdicts)
    return derivation


def _built(chain, expand: bool, symmetric: bool, jacobians: bool) -> Derivation:
    """The derivation of ``chain``.  The Hessian and Jacobian stages (like the claims',
    above) are imported only for a chain that asks for them: a cold start pays for the
    stages it uses."""
    if not chain.wrt:
        from .jacobian import jacobians_only
        return jacobians_only(chain)
    derivation = build(chain, expand=expand, symmetric=symmetric)
    if chain.hessians:
        from .hessian import with_hessians
        derivation = with_hessians(derivation)
    if chain.jacobians or jacobians:
        from .jacobian import with_jacobians
        derivation = with_jacobians(derivation, local=jacobians)
    return derivation


def _checked(derivation: Derivation, seed: int) -> Derivation:
    """Every line's verdict: the derivation's, its Hessians' and its Jacobians'."""
    refuse_costly(derivation, assign_sizes(derivation.chain))   # before any array
    derivation = dataclasses.replace(derivation, check=numeric_check(derivation, seed=seed))
    if derivation.hessians:
        derivation = _with_hessian_verdicts(derivation, seed)
    if derivation.jacobians:
        from .check_jacobian import with_jacobian_verdicts
        derivation = with_jacobian_verdicts(derivation, seed)
    return derivation


def _with_hessian_verdicts(derivation: Derivation, seed: int) -> Derivation:
    """The Hessian's verdicts (check_hessian.py) beside the derivation's own."""
    from .check_hessian import hessian_verdicts
    found = hessian_verdicts(derivation, seed=seed)
    if not found or derivation.check is None:
        return derivation
    result = dataclasses.replace(derivation.check, verdicts=derivation.check.verdicts + tuple(found))
    return dataclasses.replace(derivation, check=result)


def derive_file(path, *, wrt=None, source_name: str | None = None, check: bool = True,
                seed: int = 0, expand: bool = False, limits: Limits | None = None,
                symmetric_gradient: bool = False, strict: bool = False,
                language: str | None = None, claims=None, jacobians: bool = False) -> Derivation:
    """``derive`` on the UTF-8 text of ``path``; errors cite the path as given. A ``.tex``
    file is LaTeX."""
    if language is None and str(path).lower().endswith(".tex"):
        language = "latex"
    with applied(limits):
        return derive(read_text(path), wrt=wrt, source_name=source_name or display_name(path),
                      check=check, seed=seed, expand=expand, symmetric_gradient=symmetric_gradient,
                      strict=strict, language=language, claims=claims, jacobians=jacobians)


def warnings_of(derivation: Derivation) -> list:
    """The warnings proper (not the notes on conventions that the outputs state)."""
    return [w for w in derivation.warnings if getattr(w, "kind", "warning") == "warning"]


def _refuse_warnings(derivation: Derivation) -> None:
    found = warnings_of(derivation)
    if found:
        first, more = found[0], len(found) - 1
        extra = f" (and {more} more warning{'s' * (more > 1)})" if more else ""
        raise DeriveError(f"{first}{extra}; --strict makes warnings errors",
                          derivation.chain.source, first.line or None, first.column or None)


@contextmanager
def _resources():
    """The last line of defence behind limits.py: exhaustion is an input error, not a crash."""
    try:
        yield
    except RecursionError:
        raise DeriveError("the derivation nests too deeply for Python's stack "
                          "(keep DERIVE_MAX_DEPTH at its default, 100)") from None
    except MemoryError:
        raise DeriveError("out of memory: the chain or its sizes are too large for this "
                          "machine") from None


def display_name(path) -> str:
    """``path`` as messages, headings and outputs show it: bytes of a file name that are not
    UTF-8 become U+FFFD, which every output can encode (a lone surrogate cannot)."""
    try:
        return os.fsencode(path).decode("utf-8", "replace")
    except UnicodeError:
        return str(path).encode("utf-8", "replace").decode("utf-8")


def read_text(path) -> str:
    """A chain file's text, with unreadable files reported as input errors."""
    try:
        with _open_chain(path) as stream:
            data = read_bounded(stream, str(path))
        return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except FileNotFoundError:
        raise DeriveError(f"cannot read {path}: no such file") from None
    except UnicodeDecodeError:
        raise DeriveError(f"cannot read {path}: not UTF-8 text") from None
    except OSError as exc:
        raise DeriveError(f"cannot read {path}: {exc.strerror or exc}") from None


def _open_chain(path):
    """A regular file, or a pipe (``<(…)``), opened without blocking: a FIFO nobody writes
    to reads as empty instead of waiting forever, and a device (``/dev/tty``) is refused
    before it is opened."""
    if not _readable_kind(os.stat(path).st_mode):
        raise DeriveError(f"cannot read {path}: not a regular file (give - to read "
                          "standard input)")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not _readable_kind(os.fstat(fd).st_mode):        # swapped since the stat
            raise DeriveError(f"cannot read {path}: not a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)     # a pipe's writer is waited for; none: end of file
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def _readable_kind(mode: int) -> bool:
    return stat.S_ISREG(mode) or stat.S_ISFIFO(mode)


# ---------------------------------------------------------------- documents and files


class CheckFailed(DeriveError):
    """A numeric check that failed where output was asked for: nothing is written. The
    message is the derivation with the failing lines marked, then one sentence per line."""

    def __init__(self, derivation: Derivation):
        from .verdict import failure_sentences, to_verdict
        self.derivation = derivation
        self.sentences = failure_sentences(derivation)
        super().__init__("numeric check failed", exit_code=EXIT_CHECK_FAILED)
        self.verdict = to_verdict(derivation)

    def format(self) -> str:
        return self.verdict + "\n".join(self.sentences)


Warn = Callable[[str], None]


def render(path=None, *, text: str | None = None, source_name: str | None = None,
           to: str | None = None, output=None, flavor: str = "mse",
           template=None, standalone: bool = False, explain: bool = False,
           keep_tex: bool = False, katex_url: str | None = None,
           wrt=None, seed: int = 0, check: bool = True, expand: bool = False,
           symmetric_gradient: bool = False, strict: bool = False, language: str | None = None,
           limits: Limits | None = None, max_seconds: float | None = None,
           warn: Warn | None = None, claims=None, jacobians: bool = False) -> str | bytes:
    """What ``derive render`` does: derive the chain in the file ``path`` (or ``text``),
    check it, and return it in format ``to`` — else the format of ``output``'s extension,
    else Markdown (``flavor``: mse, katex or github; ``md``, ``tex``, ``py`` are short for
    markdown, latex, numpy). ``output``, a file name, is written atomically; ``"-"`` means
    the caller prints the result (so no PDF); None writes nothing. A PDF is returned as
    bytes. Options that cannot apply (``keep_tex`` without PDF, …) are refused before any
    derivation runs; a failed check raises ``CheckFailed`` (exit 3) and writes nothing.
    ``warn`` receives each warning as ``file:line:col: warning: …`` (default: Python's
    ``warnings.warn``)."""
    if (path is None) == (text is None):
        raise DeriveError("give exactly one of a chain file and text=")
    if template is not None and to is not None:
        raise DeriveError("give -t or --template, not both")
    fmt = formats.infer(to, None if template is not None else output)
    flavor = formats.chosen(flavor, formats.FLAVORS, "Markdown flavor")
    check_document_options(fmt, output, standalone=standalone, keep_tex=keep_tex,
                           katex_url=katex_url)
    limits = _limits(limits, max_seconds)
    with applied(limits):
        options = dict(wrt=wrt, check=check, seed=seed, expand=expand, strict=strict,
                       symmetric_gradient=symmetric_gradient, language=language, claims=claims,
                       jacobians=jacobians)
        if path is not None:
            derivation = derive_file(path, source_name=source_name, **options)
        else:
            if text is None:
                raise DeriveError("give a chain file or text=")
            derivation = derive(text, source_name=source_name or "<-e>", **options)
        report_warnings(derivation, warn)
        if derivation.check is not None and not derivation.check.ok:
            raise CheckFailed(derivation)
        from . import render as renderer
        if template is not None:
            rendered = renderer.to_template(derivation, template, explain)
        elif fmt in formats.DOCUMENTS or standalone:
            rendered = document([derivation], fmt, katex_url=katex_url, explain=explain,
                                output=output)
        else:
            rendered = renderer.render(derivation, fmt, flavor, explain)
    return _written(rendered, output, fmt, keep_tex)


Progress = Callable[[int, int, "str | None", int], None]


def notes(paths: Iterable, output=None, *, to: str | None = None, title: str | None = None,
          seed: int = 0, explain: bool = False, keep_tex: bool = False,
          katex_url: str | None = None, strict: bool = False,
          limits: Limits | None = None, max_seconds: float | None = None,
          warn: Warn | None = None, progress: Progress | None = None) -> str | bytes:
    """What ``derive notes`` does: lecture notes (LaTeX, PDF or HTML: ``to``, else
    ``output``'s extension), a section per chain file, titled by its ``# title:`` line,
    else its file name. Every chain is derived and checked first, each under its own
    time limit (``max_seconds``); if any fails, nothing is written and one DeriveError
    names every failed chain with its first error. ``progress(done, total, name,
    failed)`` is called before each chain and, with ``name`` None, at the end."""
    paths = list(paths)
    if not paths:
        raise DeriveError("give at least one chain file")
    fmt = formats.infer_notes(to, output)
    check_document_options(fmt, output, keep_tex=keep_tex, katex_url=katex_url)
    limits = _limits(limits, max_seconds)
    derivations: list = []
    failures: list = []
    code = EXIT_CHECK_FAILED
    for done, path in enumerate(paths):
        if progress is not None:
            progress(done, len(paths), display_name(path), len(failures))
        try:
            derivation = derive_file(path, seed=seed, strict=strict, limits=limits)
        except DeriveError as err:
            located = err.source is not None and err.line is not None
            failures.append((path, err.format().split("\n")[0] if located
                             else f"{display_name(path)}: {err.message}"))
            code = min(code, err.exit_code)
            continue
        report_warnings(derivation, warn)
        if derivation.check is not None and not derivation.check.ok:
            from .verdict import failure_sentences
            failures.append((path, (failure_sentences(derivation) or ["numeric check failed"])[0]))
        derivations.append(derivation)
    if progress is not None:
        progress(len(paths), len(paths), None, len(failures))
    if failures:
        raise DeriveError(_failed(failures, len(paths)), exit_code=code)
    headings = [d.chain.title or Path(display_name(p)).name for d, p in zip(derivations, paths)]
    rendered = document(derivations, fmt, notes=True, headings=headings, title=title,
                        katex_url=katex_url, explain=explain, output=output)
    return _written(rendered, output, fmt, keep_tex)


def _limits(limits: Limits | None, max_seconds: float | None) -> Limits:
    """``limits`` (else the defaults and DERIVE_MAX_… variables), ``max_seconds`` over them."""
    if limits is None:
        return Limits.from_environment(max_seconds=max_seconds)
    return limits if max_seconds is None else dataclasses.replace(limits, max_seconds=max_seconds)


def _failed(failures, total: int) -> str:
    """One summary: the failed chains, then each one's first error."""
    names = ", ".join(display_name(path) for path, _ in failures)
    lines = [f"notes not written: {names} failed ({len(failures)} of {total} chain"
             f"{'s' * (total > 1)})"]
    return "\n".join(lines + [f"  {first}" for _, first in failures])


def report_warnings(derivation: Derivation, warn: Warn | None = None) -> None:
    """Each warning as ``file:line:col: warning: …`` to ``warn`` (default: warnings.warn),
    then one ``file:line:col: claim … does not hold: …`` per wrong claim."""
    from .verdict import claim_sentences
    name = derivation.chain.source.name if derivation.chain.source else "derive"
    lines = [warning.format(name) if hasattr(warning, "format") else f"derive: warning: {warning}"
             for warning in warnings_of(derivation)]
    unchecked = _unchecked_notice(derivation)
    if unchecked is not None:
        lines.append(unchecked.format(name))
    for line in lines + claim_sentences(derivation):
        if warn is None:
            warnings.warn(line, UserWarning, stacklevel=3)
        else:
            warn(line)


def _unchecked_notice(derivation: Derivation) -> Notice | None:
    """The lines the check could not confirm, said on stderr too (the verdict says it in the
    output; someone reading only the terminal must not take them for verified)."""
    unchecked = derivation.check.unchecked if derivation.check is not None else []
    if not unchecked:
        return None
    where = sorted({f"the {v.block} on line {v.line}" if v.line else f"a {v.block} line"
                    for v in unchecked})
    reasons = sorted({v.note.removeprefix("not checked: ") for v in unchecked if v.note})
    first = min((v.line for v in unchecked if v.line), default=0)
    return note(f"{len(unchecked)} displayed line(s) could not be checked numerically and are "
                f"not claimed verified ({'; '.join(reasons) or 'no comparison possible'}): "
                + ", ".join(where), first)


def check_document_options(fmt: str, output=None, *, standalone: bool = False,
                           keep_tex: bool = False, katex_url: str | None = None) -> None:
    """Refuse what cannot work before any derivation runs: a PDF to stdout, no TeX (exit 4)."""
    if standalone and fmt not in ("latex", "pdf", "html"):
        raise DeriveError("--standalone applies to LaTeX output (-t latex)")
    if keep_tex and fmt != "pdf":
        raise DeriveError("--keep-tex applies to PDF output (-o FILE.pdf)")
    if katex_url and fmt != "html":
        raise DeriveError("--katex-url applies to HTML output (-o FILE.html)")
    if katex_url:
        from .document import katex_assets
        katex_assets(katex_url, _page_dir(output))      # refuses a folder without KaTeX
    if fmt == "pdf":
        from .output import is_stream
        if output == "-" or (output is not None and is_stream(output)):
            raise DeriveError("refusing to write a PDF to standard output or a terminal: "
                              "give -o FILE.pdf")
        from .pdf import engine
        engine()


def document(derivations, fmt: str, *, notes: bool = False, katex_url: str | None = None,
             explain: bool = False, output=None, **options) -> str:
    """A whole document: an HTML page, else the LaTeX article or notes (which a PDF compiles)."""
    from . import document as documents
    if fmt == "html":
        return documents.html(derivations, notes=notes, katex_url=katex_url, explain=explain,
                              page_dir=_page_dir(output), **options)
    if notes:
        return documents.notes(derivations, explain=explain, **options)
    return documents.standalone(derivations[0], explain=explain)


def _page_dir(output) -> Path:
    """The folder a page lands in: a local KaTeX copy is linked relative to it."""
    return Path(output).parent if output not in (None, "-") else Path.cwd()


def _written(rendered: str, output, fmt: str, keep_tex: bool) -> str | bytes:
    """``rendered`` written to the file ``output`` (atomically) and returned; for PDF,
    ``rendered`` is the LaTeX to compile and the PDF's bytes are returned."""
    from . import pdf
    from .output import write_atomically
    if fmt == "pdf":
        if output is None:
            return pdf.compile_pdf(rendered)
        pdf.write_pdf(rendered, output, keep_tex=keep_tex)
        return Path(output).read_bytes()
    if output not in (None, "-"):
        write_atomically(output, rendered)
    return rendered
