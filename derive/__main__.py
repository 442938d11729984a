"""``python -m derive`` and the ``derive`` script: the command line, with Ctrl-C answered
by exit 130 from the first instant — even while click and the pipeline are imported,
before the click group (``derive.cli.main``) can catch anything itself."""
import sys

EXIT_INTERRUPTED = 130


def main():
    try:
        from .cli import main as command
        command(prog_name="derive")      # also names completion: _DERIVE_COMPLETE
    except KeyboardInterrupt:
        try:
            sys.stderr.write("derive: interrupted\n")
        except (OSError, ValueError, AttributeError):
            pass
        sys.exit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    main()
