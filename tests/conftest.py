"""The suite tests the installed package when there is one (``pip install .``), not the
source folder that ``python -m pytest`` puts first on ``sys.path``: what users get is the
wheel, templates, grammars and assets included. Without an install it tests the source."""
import importlib.machinery
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _outside_repo(entry: str) -> bool:
    try:
        return Path(entry or ".").resolve() != REPO
    except OSError:
        return True


_elsewhere = [p for p in sys.path if _outside_repo(p)]
if importlib.machinery.PathFinder.find_spec("derive", _elsewhere) is not None:
    sys.path[:] = _elsewhere
