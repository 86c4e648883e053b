"""`make bench`, last: every target the scripts measured against (.build/bench-results.json, see bench/results.py),
one line each; exits non-zero if one is missed. The scripts record their targets and go on, so that one missed target
does not hide the others' numbers."""

from __future__ import annotations

import sys

from results import PATH, json


def main() -> None:
    targets = json.loads(PATH.read_text()).get("targets", {}) if PATH.exists() else {}
    if not targets:
        sys.exit(f"{PATH} holds no targets: run `make bench`")
    print(f"\n{'target':58} {'measured':>9} {'wanted':>10}")
    missed = []
    for name, entry in targets.items():
        wanted = f"≥ {entry['at_least']}" if "at_least" in entry else f"< {entry['below']}"
        print(f"{name:58} {entry['measured']:>9} {wanted:>10}  {'met' if entry['met'] else 'MISSED'}")
        if not entry["met"]:
            missed.append(name)
    if missed:
        sys.exit(f"\n{len(missed)} of {len(targets)} targets missed: {', '.join(missed)}")
    print(f"\nAll {len(targets)} targets met.")


if __name__ == "__main__":
    main()
