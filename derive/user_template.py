"""A user's Jinja2 template (``--template FILE``) rendered in Jinja2's sandbox.

The template gets the context the built-in templates get (``render.page``) and their
filters; it may include or extend the built-in templates by name.  Its errors are
user errors, cited by the template's path and line.
"""
from __future__ import annotations

import os
import re
import stat
from contextlib import contextmanager
from pathlib import Path
from string import Formatter

import jinja2
from jinja2 import nodes
from jinja2.loaders import split_template_path
from jinja2.runtime import LoopContext, Macro
from jinja2.sandbox import SandboxedEnvironment, SecurityError
from jinja2.visitor import NodeTransformer

from .errors import DeriveError, Source
from .limits import tick
from .templates_path import template_dir

RUNTIME_ERRORS = (jinja2.TemplateError, ArithmeticError, LookupError, TypeError, ValueError)
MAX_REPEAT = 1_000_000        # items of a string or list made by ``*``, ``+`` or ``~``
MAX_POWER = 1_000             # exponent of ``**``
MAX_INT_BITS = 10_000         # bits of an integer arithmetic makes (about 3 000 digits)
MAX_WIDTH = 10_000            # a field width or precision in ``%`` and ``.format``
MAX_DEPTH = 100               # macro (and recursive loop) calls inside one another
MAX_ITERATIONS = 1_000_000    # iterations of all ``for`` loops of one rendering together
MAX_OUTPUT = 10_000_000       # characters the template writes
MAX_TEMPLATE_BYTES = 1_000_000   # of the template file and of each file it includes
MAX_MEMORY = 1 << 29          # bytes the rendering may allocate (Linux; 512 MiB)
_PERCENT_FIELD = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?")
_NUMBER = re.compile(r"\d+")
_PADDING = {"center", "ljust", "rjust", "zfill", "expandtabs"}


class _Sandbox(SandboxedEnvironment):
    """Jinja2's sandbox, kept from exhausting memory, time or the stack: it bounds
    ``range`` but not what ``*``, ``**``, ``+``, ``~``, ``%``, ``.format``, padding, nested
    loops or a recursive macro build.  Every bound is a ``SecurityError`` (exit 2)."""

    intercepted_binops = frozenset({"*", "**", "+", "-", "//", "%"})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.iterations, self.depth = 0, 0
        self.globals["__derive_loop"] = self.bounded_loop
        self.globals["__derive_concat"] = self.bounded_concat

    def call_binop(self, context, operator, left, right):
        _check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (Jinja's signature)
        _check_padding(__obj, args, kwargs)
        if isinstance(__obj, (Macro, LoopContext)):
            if __self.depth >= MAX_DEPTH:
                raise SecurityError(f"macros call one another more than {MAX_DEPTH} deep")
            if isinstance(__obj, LoopContext) and args:      # a recursive loop's loop(…)
                args = (__self.bounded_loop(args[0]),) + args[1:]
            __self.depth += 1
            try:
                return super().call(__context, __obj, *args, **kwargs)
            finally:
                __self.depth -= 1
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value):
        """``'{:01000000000d}'.format(1)`` is refused before it is built."""
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        _check_format(value.__self__)
        return wrapper

    def bounded_loop(self, iterable):
        """Every ``for`` loop iterates through this: a shared budget, and the time limit."""
        for item in iterable:
            self.iterations += 1
            if self.iterations > MAX_ITERATIONS:
                raise SecurityError(f"the loops run more than {MAX_ITERATIONS} times")
            if self.iterations % 1024 == 0:
                tick()
            yield item

    @staticmethod
    def bounded_concat(*parts) -> str:
        """``~``: refused beyond MAX_REPEAT characters (``s ~ s`` doubling in a loop)."""
        if sum(len(p) if isinstance(p, str) else 1 for p in parts) > MAX_REPEAT:
            raise SecurityError(f"a string longer than {MAX_REPEAT} characters")
        text = "".join(str(p) for p in parts)
        if len(text) > MAX_REPEAT:
            raise SecurityError(f"a string longer than {MAX_REPEAT} characters")
        return text

    def _parse(self, source, name, filename):
        """The template's tree with every ``for`` and ``~`` routed through the bounds."""
        return _Bounds().visit(super()._parse(source, name, filename))


class _Bounds(NodeTransformer):
    """``for x in seq`` becomes ``for x in __derive_loop(seq)``, ``a ~ b`` becomes
    ``__derive_concat(a, b)``."""

    def visit_For(self, node):
        self.generic_visit(node)
        node.iter = _call("__derive_loop", [node.iter], node.iter.lineno)
        return node

    def visit_Concat(self, node):
        self.generic_visit(node)
        return _call("__derive_concat", node.nodes, node.lineno)


def _call(name: str, args: list, lineno: int):
    return nodes.Call(nodes.Name(name, "load", lineno=lineno), list(args), [], None, None,
                      lineno=lineno)


def _check_binop(operator: str, left, right) -> None:
    """Refuse what would build a huge value before it is built."""
    if operator == "**" and isinstance(right, int) and abs(right) > MAX_POWER:
        raise SecurityError(f"exponent {right} is larger than {MAX_POWER}")
    if operator == "*":
        for items, count in ((left, right), (right, left)):
            if isinstance(items, (str, list, tuple)) and isinstance(count, int) \
                    and len(items) * count > MAX_REPEAT:
                raise SecurityError(f"a repetition longer than {MAX_REPEAT} items")
    if operator == "+" and all(isinstance(x, (str, list, tuple)) for x in (left, right)) \
            and len(left) + len(right) > MAX_REPEAT:
        raise SecurityError(f"a string or list longer than {MAX_REPEAT} items")
    if operator == "%" and isinstance(left, str):
        _check_percent(left)
    if isinstance(left, int) and isinstance(right, int) \
            and _result_bits(operator, left, right) > MAX_INT_BITS:
        raise SecurityError(f"an integer larger than {MAX_INT_BITS} bits")


def _result_bits(operator: str, left: int, right: int) -> int:
    """An upper bound on the bits of ``left operator right``."""
    bits = max(left.bit_length(), right.bit_length())
    if operator == "*":
        return left.bit_length() + right.bit_length()
    if operator == "**":
        return left.bit_length() * right if right > 0 and abs(left) > 1 else bits
    return bits + 1


def _check_percent(text: str) -> None:
    """``'%01000000000d' % 1`` (and ``|format``) would write a gigabyte."""
    for width, precision in _PERCENT_FIELD.findall(text):
        for number in (width, precision):
            if number == "*" or (number and int(number) > MAX_WIDTH):
                raise SecurityError(f"a field wider than {MAX_WIDTH} characters in {text[:40]!r}")


def _check_format(text: str) -> None:
    for _, _field, spec, _ in Formatter().parse(text):
        if spec and ("{" in spec or any(int(n) > MAX_WIDTH for n in _NUMBER.findall(spec))):
            raise SecurityError(f"a field wider than {MAX_WIDTH} characters "
                                f"(or one set by an argument) in {text[:40]!r}")


def _check_padding(obj, args, kwargs) -> None:
    """``'x'.center(10**9)``: a padding method or filter asked for a huge width."""
    name = getattr(obj, "__name__", "")
    if name in _PADDING:
        for value in (*args, *kwargs.values()):
            if isinstance(value, int) and not isinstance(value, bool) and value > MAX_WIDTH:
                raise SecurityError(f"a width of {value}, larger than {MAX_WIDTH}")


def _bounded_width(jinja_filter):
    """``|center`` and ``|indent`` with the width bounded (filters bypass ``call``)."""
    def bounded(value, *args, **kwargs):
        for width in (*args, *kwargs.values()):
            if isinstance(width, int) and not isinstance(width, bool) and width > MAX_WIDTH:
                raise SecurityError(f"a width of {width}, larger than {MAX_WIDTH}")
        return jinja_filter(value, *args, **kwargs)
    return bounded


def _bounded_format(value, *args, **kwargs) -> str:
    """Jinja's ``|format`` filter (``%``-formatting), with the field widths bounded."""
    _check_percent(str(value))
    return str(value) % (kwargs or args)


def render_user_template(path, context: dict, filters: dict) -> str:
    """``path`` rendered with ``context``; a failing template raises ``DeriveError``."""
    path = Path(path)
    text = _read(path)
    env = _sandbox(path.parent, filters)
    try:
        with _memory_bounded():
            return _generate(env.from_string(text), context)
    except jinja2.TemplateSyntaxError as err:
        raise DeriveError(f"template error: {err.message}", Source(text, str(path)),
                          err.lineno) from None
    except RUNTIME_ERRORS as err:
        raise DeriveError(f"template error: {err}", Source(text, str(path)),
                          _template_line(err)) from None
    except RecursionError as err:
        raise DeriveError("template error: the template nests too deeply (includes or "
                          "macros inside one another)", Source(text, str(path)),
                          _template_line(err)) from None
    except MemoryError as err:
        raise DeriveError(f"template error: the template needs more than "
                          f"{MAX_MEMORY >> 20} MiB of memory", Source(text, str(path)),
                          _template_line(err)) from None


def _generate(template, context: dict) -> str:
    """The output, refused once it passes MAX_OUTPUT characters (counted as it is made)."""
    parts, size = [], 0
    for part in template.generate(context):
        size += len(part)
        if size > MAX_OUTPUT:
            raise SecurityError(f"the output is longer than {MAX_OUTPUT} characters, the "
                                "limit for a template")
        parts.append(part)
    return "".join(parts)


@contextmanager
def _memory_bounded():
    """A ceiling on the address space while the template runs (a one-step blow-up such
    as ``'a'|replace('a', big)`` the other bounds cannot see), lifted afterwards."""
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        ceiling = _address_space() + MAX_MEMORY
        if soft != resource.RLIM_INFINITY and soft < ceiling or \
                hard != resource.RLIM_INFINITY and hard < ceiling:
            raise OSError
        resource.setrlimit(resource.RLIMIT_AS, (ceiling, hard))
    except (ImportError, OSError, ValueError):
        yield
        return
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _address_space() -> int:
    """This process's virtual memory size in bytes (Linux ``/proc``; else OSError)."""
    with open("/proc/self/statm", encoding="ascii") as stream:
        return int(stream.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _sandbox(folder: Path, filters: dict) -> SandboxedEnvironment:
    """Includes resolve next to the user's template first, then among the built-in ones."""
    loader = jinja2.ChoiceLoader([_BoundedLoader(str(folder)),
                                  _BoundedLoader(str(template_dir()))])
    env = _Sandbox(loader=loader, undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                   trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.filters.update(filters)
    env.filters["format"] = _bounded_format
    for name in ("center", "indent"):
        env.filters[name] = _bounded_width(env.filters[name])
    return env


class _BoundedLoader(jinja2.FileSystemLoader):
    """An included file larger than MAX_TEMPLATE_BYTES is refused before it is read
    (Jinja reads only regular files, so ``/dev/zero`` is not found, not read)."""

    def get_source(self, environment, template):
        for folder in self.searchpath:
            candidate = os.path.join(folder, *split_template_path(template))
            if os.path.isfile(candidate) and os.path.getsize(candidate) > MAX_TEMPLATE_BYTES:
                raise SecurityError(f"{template} is larger than {MAX_TEMPLATE_BYTES} bytes")
            if os.path.isfile(candidate):
                break
        return super().get_source(environment, template)


def _read(path: Path) -> str:
    """The template's text: a regular file of at most MAX_TEMPLATE_BYTES (``/dev/zero`` or
    a FIFO is refused before anything is read, without blocking)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as stream:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise DeriveError(f"cannot read template {path}: not a regular file")
            data = stream.read(MAX_TEMPLATE_BYTES + 1)
        if len(data) > MAX_TEMPLATE_BYTES:
            raise DeriveError(f"cannot read template {path}: larger than "
                              f"{MAX_TEMPLATE_BYTES} bytes, the limit for a template")
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise DeriveError(f"cannot read template {path}: not UTF-8 text") from None
    except OSError as exc:
        raise DeriveError(f"cannot read template {path}: {exc.strerror or exc}") from None


def _template_line(err: BaseException) -> int | None:
    """The template line of the innermost frame Jinja mapped back to the template."""
    line, tb = None, err.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
