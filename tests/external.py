"""The external tools of the real-renderer tests (TeX, poppler, chromium).

Locally a missing tool skips the test with the reason; under ``CI=true`` it fails it,
since ``.ci/run`` installs them and CI must always run these tests.
"""
import os
import shutil

import pytest


def missing(reason: str) -> None:
    """Skip (locally) or fail (under CI=true) because of ``reason``."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def need(tool: str, package: str) -> str:
    """The path of ``tool``, which Debian's ``package`` provides."""
    path = shutil.which(tool)
    if path is None:
        missing(f"{tool} is not installed (apt-get install {package})")
    return path
