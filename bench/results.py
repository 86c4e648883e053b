"""Where `make bench` keeps what it measured: .build/bench-results.json, one object merged by every script, with the
targets each script measured against (`targets`: name → measured, target, met), which bench/targets.py checks last."""

from __future__ import annotations

import json
from pathlib import Path

PATH = Path(__file__).resolve().parents[1] / ".build" / "bench-results.json"


def target(measured: float, at_least: float | None = None, below: float | None = None) -> dict:
    """A target entry: `measured` must be at least `at_least`, or below `below`."""
    met = (at_least is None or measured >= at_least) and (below is None or measured < below)
    return {"measured": round(measured, 2), **({"at_least": at_least} if at_least is not None else {}),
            **({"below": below} if below is not None else {}), "met": met}


def record(results: dict, targets: dict[str, dict] | None = None, fresh: bool = False) -> None:
    """Merges `results` (and `targets`) into the file; `fresh` starts it anew (the first script of a run)."""
    merged = {} if fresh or not PATH.exists() else json.loads(PATH.read_text())
    merged.update({key: value for key, value in results.items() if key != "targets"})
    merged.setdefault("targets", {}).update(targets or {})
    PATH.parent.mkdir(parents=True, exist_ok=True)
    PATH.write_text(json.dumps(merged, indent=2))
