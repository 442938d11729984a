"""``python -m derive`` and the ``derive`` script: the command line, with Ctrl-C answered
by exit 130 from the first instant — even while click and the pipeline are imported,
before the click group (``derive.cli.main``) can catch anything itself."""
import sys

EXIT_INTERRUPTED = 130


def _without_regex():
    """lark imports the third-party ``regex`` module whenever it is installed, though derive's
    grammars never ask for it (``Lark(regex=True)``): in the command's own process, where no
    other code runs, lark is imported as if it were absent (a cold start pays ~20 ms less),
    and the module is importable again afterwards."""
    if "regex" in sys.modules or "lark" in sys.modules:
        return
    sys.modules["regex"] = None      # import regex: ImportError
    try:
        import lark  # noqa: F401
    finally:
        del sys.modules["regex"]


def main():
    try:
        _without_regex()
        from .cli import main as command
        command(prog_name="derive")      # also names completion: _DERIVE_COMPLETE
    except KeyboardInterrupt:
        try:
            sys.stderr.write("derive: interrupted\n")
        except (OSError, ValueError, AttributeError):
            pass
        sys.exit(EXIT_INTERRUPTED)
    finally:
        _spare_the_last_collection()


def _spare_the_last_collection():
    """The process ends now, its output written and closed: what is still alive (SymPy's
    hundreds of thousands of module objects, mostly) dies with it.  Frozen, they are left
    out of the cyclic collector's last walk at exit, which a bare ``import sympy`` pays too
    (~0.15 s).  Only in the command's own process: the library never freezes its caller's
    objects."""
    import gc
    gc.freeze()


if __name__ == "__main__":
    main()
