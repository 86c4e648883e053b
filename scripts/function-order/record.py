#!/usr/bin/env python3
"""Records the order in which the gateway's code first runs, for the linker to lay it out in that order.

A process keeps resident the pages of its code it has touched, and Linux maps a file's pages 64 KiB (or a whole cached
folio) at a time around each page fault. Linked in the compiler's order, the 4-5 MiB of code the gateway runs are
spread over most of its 36 MiB (the Swift runtime and Foundation linked in), and most of it stayed resident. Laid out
in the order recorded here, the code it runs is together at the start.

    RELEASE_BIN=... .venv/bin/python scripts/function-order/record.py BINARY LINK_MAP [LINKER_SCRIPT]

BINARY is a release build of McpGateway (`make order-file` makes it), LINK_MAP the map lld wrote when linking it
(`-Map`), LINKER_SCRIPT (default deploy/McpGateway.ld) what gets the order: an output section placed before `.text`
(`INSERT BEFORE .text`) that lists the input sections that ran, each named by its object file and section. Sections,
not symbols: the compiler gives many functions no symbol at all (async functions' continuations, outlined copies),
and copies of one specialisation in several modules share a name; each function has a section of its own
(-function-sections), and C libraries built without them are ordered by their objects' whole `.text`.

The run: the stack of the tests (DevIdP and TodosAPI from RELEASE_BIN, the gateway under trace.c), start-up,
sign-ins, refresh grants, a session with tools/list and tool calls, stateless tool calls, a revocation, then a
graceful stop. Sections the linker does not find match nothing, so a script recorded before a change still serves the
build after it: code added since then is laid out after the recorded code, as the compiler placed it, and only costs
resident memory.
"""
from __future__ import annotations

import bisect
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Tests" / "Interop"))
import support  # noqa: E402

support.BIN = Path(os.environ.get("RELEASE_BIN", ROOT / ".build" / "release"))
import httpx2 as httpx  # noqa: E402
from gateway_stack import call_tool, open_session, sign_in, start_stack  # noqa: E402


INPUT_SECTION = re.compile(r"^\s*([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\d+\s+(\S+):\((\.text[^)\s]*)\)\s*$")


def trap_points(link_map: Path, binary: Path) -> list[tuple[int, int, str]]:
    """Where trace.c puts its traps: the first byte of every code section of the link (from lld's map: address,
    size, `file:(section)`), and every function inside one (a C object's `.text` holds many); each named by its
    section."""
    sections = []
    for line in link_map.read_text().splitlines():
        match = INPUT_SECTION.match(line)
        if match and int(match.group(2), 16):
            sections.append((int(match.group(1), 16), int(match.group(2), 16), f"{match.group(3)}:({match.group(4)})"))
    sections.sort()
    starts = [start for start, _, _ in sections]
    points = {start: (size, name) for start, size, name in sections}
    objdump = shutil.which("llvm-objdump") or shutil.which("objdump")
    listing = subprocess.run([objdump, "-t", str(binary)], capture_output=True, text=True, check=True).stdout
    for line in listing.splitlines():
        # 0000000000286140 l     F .text	0000000000000022 name, or …0022 .hidden name
        head, _, rest = line.partition("\t")
        fields, tail = head.split(), rest.split()
        if len(fields) < 4 or fields[-2] != "F" or len(tail) < 2:
            continue
        address = int(fields[0], 16)
        index = bisect.bisect_right(starts, address) - 1
        if index >= 0 and address < sections[index][0] + sections[index][1] and address not in points:
            points[address] = (int(tail[0], 16), sections[index][2])
    return [(address, size, name) for address, (size, name) in sorted(points.items())]


def pattern(section: str) -> str:
    """A linker-script input section description for `file:(section)` that holds wherever the build folder is:
    `*libswiftCore.a:Errors.cpp.o(.text.x)` for an archive's member, `*/NIOCore.build/Channel.swift.o(.text.x)` for
    an object of the build."""
    file, _, name = section.rpartition(":(")
    member = re.match(r"^(?:.*/)?([^/]+\.a)\(([^)]+)\)$", file)
    if member:
        return f"*{member.group(1)}:{member.group(2)}({name}"
    parts = file.split("/")
    where = "/".join(parts[-2:]) if len(parts) >= 2 and parts[-2].endswith(".build") else parts[-1]
    return f"*/{where}({name}"


def exercise(stack) -> None:
    """What users do, each more than once: sign-ins, refreshes, sessions, tool calls, revocation."""
    scope = "read:todos write:todos offline_access"
    grants = [sign_in(stack.gateway_url, "alice", scope) for _ in range(3)]
    with httpx.Client(timeout=30) as http:
        for grant in grants:
            refreshed = http.post(f"{stack.gateway_url}/token", data={
                "grant_type": "refresh_token", "refresh_token": grant["refresh_token"], "client_id": grant["client_id"]})
            refreshed.raise_for_status()
            grant.update(refreshed.json())
        token = grants[0]["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"}
        session = open_session(stack.mcp_url, token)
        for index, (method, params) in enumerate([
            ("tools/list", {}),
            ("tools/call", {"name": "add-todo", "arguments": {"title": "Recorded todo"}}),
            ("tools/call", {"name": "list-todos", "arguments": {}}),
            ("ping", {}),
        ]):
            answer = http.post(stack.mcp_url, headers={**headers, "Mcp-Session-Id": session},
                               json={"jsonrpc": "2.0", "id": index + 2, "method": method, "params": params})
            answer.raise_for_status()
        http.delete(stack.mcp_url, headers={**headers, "Mcp-Session-Id": session})
        for name, arguments in (("list-todos", {}), ("add-todo", {"title": "Another"}), ("list-todos", {})):
            called = call_tool(http, stack.gateway_url, token, name, arguments)
            assert called.status_code == 200, called.text
        for path in ("/health", "/.well-known/oauth-authorization-server", "/.well-known/oauth-protected-resource/mcp"):
            http.get(stack.gateway_url + path).raise_for_status()
        revoked = http.post(f"{stack.gateway_url}/revoke", data={
            "token": grants[2]["refresh_token"], "client_id": grants[2]["client_id"]})
        revoked.raise_for_status()


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    binary, link_map = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
    script = Path(sys.argv[3]) if len(sys.argv) > 3 else ROOT / "deploy" / "McpGateway.ld"
    work = Path(tempfile.mkdtemp(prefix="function-order-"))
    tracer = work / "trace.so"
    compiler = shutil.which("clang") or shutil.which("cc")
    subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", str(tracer), str(Path(__file__).with_name("trace.c"))],
                   check=True)
    points = trap_points(link_map, binary)
    (work / "points.txt").write_text("".join(f"{address:x} {size:x} {name}\n" for address, size, name in points
                                             if " " not in name))
    ranks = work / "ranks.txt"
    stack = start_stack("devidp", common_env={"LOG_LEVEL": "warning"}, gateway_binary=binary, gateway_env={
        "LD_PRELOAD": str(tracer), "TRACE_FUNCTIONS": str(work / "points.txt"), "TRACE_OUT": str(ranks),
        "SWIFT_BACKTRACE": "enable=no"})
    try:
        exercise(stack)
    finally:
        stack.stop()
    if not ranks.exists():
        print(f"the gateway wrote no trace ({ranks}); see its log", file=sys.stderr)
        return 1
    rows = sorted((int(rank), name) for rank, _, name in (line.split(" ", 2) for line in ranks.read_text().splitlines()))
    seen: set[str] = set()
    ran = [name for _, name in rows if not (name in seen or seen.add(name))]
    with script.open("w") as out:
        out.write("/* The gateway's code in the order it first ran: scripts/function-order/record.py, `make order-file`. */\n")
        out.write("SECTIONS\n{\n  .text.startup_order :\n  {\n")
        out.writelines(f"    {pattern(name)}\n" for name in ran)
        out.write("  }\n}\nINSERT BEFORE .text;\n")
    print(f"{len(ran)} of {len({name for _, _, name in points})} code sections ran; their order is in {script}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
