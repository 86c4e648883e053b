import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import BIN  # noqa: E402


def pytest_sessionstart(session: pytest.Session) -> None:
    for binary in ("TodosAPI", "DevIdP"):
        if not (BIN / binary).exists():
            raise pytest.UsageError(f"{BIN / binary} is missing: run 'swift build' first (make test does)")
    # Every working directory the tests make (services' databases, keys, logs) goes into one folder of this run, which
    # is removed when the run ends, however its tests ended.
    directory = tempfile.mkdtemp(prefix="interop-run-")
    # Other users must pass through it as through /tmp: the PostgreSQL of the fault tests runs as `postgres`.
    os.chmod(directory, 0o711)
    session.config.stash[_RUN_DIRECTORY] = tempfile.tempdir = directory


def pytest_sessionfinish(session: pytest.Session) -> None:
    directory = session.config.stash.get(_RUN_DIRECTORY, None)
    if directory:
        tempfile.tempdir = None
        shutil.rmtree(directory, ignore_errors=True)


_RUN_DIRECTORY = pytest.StashKey[str]()
