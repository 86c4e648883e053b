import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import BIN  # noqa: E402


def pytest_sessionstart(session: pytest.Session) -> None:
    for binary in ("TodosAPI", "DevIdP"):
        if not (BIN / binary).exists():
            raise pytest.UsageError(f"{BIN / binary} is missing: run 'swift build' first (make test does)")
