"""Which modules' code the gateway keeps resident at rest: reads /proc/<pid>/pagemap for the gateway binary's
executable mapping after start-up and attributes each resident page to the symbol it holds (by `nm -n`), grouped by
the Swift module of its mangled name (or the C library's prefix). A diagnostic for the memory targets of
docs/benchmarks.md, not a benchmark with a target; run it after a release build:

    RELEASE_BIN="$(swift build -c release --show-bin-path)" .venv/bin/python bench/resident_modules.py

Pages past the last symbol of a region (read-only data, unwind tables, Swift metadata sections) are named after the
symbol before them, such as `_end` or `__abi_tag`."""

from __future__ import annotations

import bisect
import collections
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Tests" / "Interop"))
import support  # noqa: E402

support.BIN = Path(os.environ.get("RELEASE_BIN", ROOT / ".build" / "release"))
from gateway_stack import start_stack  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def module_of(symbol: str) -> str:
    """`$s10OpenAPIKit…` is OpenAPIKit; C symbols are named by their prefix."""
    if symbol.startswith("$s"):
        digits = ""
        for character in symbol[2:]:
            if not character.isdigit():
                break
            digits += character
        if digits:
            start = 2 + len(digits)
            return symbol[start:start + int(digits)]
    for prefix, name in (("CCryptoBoringSSL", "BoringSSL"), ("_ZN4bssl", "BoringSSL"), ("yaml_", "libyaml"),
                         ("sqlite3", "sqlite")):
        if symbol.startswith(prefix):
            return name
    return symbol[:24]


def load_address(binary: Path, offset: int) -> int:
    """The address in the binary of its byte at file `offset`: its segment's address plus the offset into it. gold
    gives the code the same address as its offset; lld does not (scripts/release-build.sh's builds)."""
    headers = subprocess.run(["readelf", "-l", "-W", str(binary)], capture_output=True, text=True, check=True).stdout
    for line in headers.splitlines():
        fields = line.split()
        if fields and fields[0] == "LOAD":
            file_offset, address, size = int(fields[1], 16), int(fields[2], 16), int(fields[4], 16)
            if file_offset & ~0xFFF <= offset < file_offset + size:
                return address - file_offset + offset
    return offset


def main() -> None:
    binary = support.BIN / "McpGateway"
    symbols = []
    listing = subprocess.run(["nm", "-n", "--defined-only", str(binary)], capture_output=True, text=True, check=True)
    for line in listing.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3:
            symbols.append((int(parts[0], 16), parts[2]))
    addresses = [address for address, _ in symbols]
    stack = start_stack("devidp")
    try:
        time.sleep(2)
        pid = stack.services[-1].process.pid
        mapping = next(line.split() for line in Path(f"/proc/{pid}/maps").read_text().splitlines()
                       if line.endswith("McpGateway") and "r-xp" in line)
        start, end = (int(value, 16) for value in mapping[0].split("-"))
        base = start - load_address(binary, int(mapping[2], 16))
        with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
            pagemap.seek(start // PAGE * 8)
            entries = pagemap.read((end - start) // PAGE * 8)
        resident = collections.Counter()
        for index in range(0, len(entries), 8):
            if struct.unpack("<Q", entries[index:index + 8])[0] >> 63:
                offset = start + index // 8 * PAGE - base
                found = bisect.bisect_right(addresses, offset) - 1
                resident[module_of(symbols[found][1]) if found >= 0 else "?"] += PAGE // 1024
    finally:
        stack.stop()
    total = sum(resident.values())
    print(f"{binary}: {total / 1024:.1f} MiB of its executable mapping resident at rest")
    for module, kib in resident.most_common(30):
        print(f"  {module:40} {kib / 1024:6.2f} MiB")


if __name__ == "__main__":
    main()
