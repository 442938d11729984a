"""``python -m derive``: the command line, as the ``derive`` entry point runs it."""
from .cli import main

main()
