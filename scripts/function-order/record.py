#!/usr/bin/env python3
"""Records the order in which the gateway's functions first run, for the linker to lay them out in that order.

A process keeps resident the pages of its code it has touched, and Linux maps a file's pages 64 KiB (or a whole cached
folio) at a time around each page fault. Linked in the compiler's order, the 4.4 MiB of code the gateway runs are
spread over most of its 36 MiB of code (the Swift runtime and Foundation linked in), and most of it stayed resident.
Linked in the order recorded here, the code it runs is mostly together. Not all of it: a name that several modules'
copies of one specialisation share orders every copy, and the few functions without a symbol (thunks the compiler
names privately) stay where they were.

    RELEASE_BIN=... .venv/bin/python scripts/function-order/record.py BINARY [ORDER_FILE]

BINARY is a release build of McpGateway linked with function sections (`make order-file` builds it); ORDER_FILE
(default deploy/McpGateway.order) gets one symbol name per line, for lld's `--symbol-ordering-file`. The run: the stack
of tests (DevIdP, TodosAPI from RELEASE_BIN, the gateway under trace.c), start-up, sign-ins, refresh grants, a session
with tools/list and tool calls, stateless tool calls, a revocation, then a graceful stop. Names the linker does not
find are skipped, so an order file recorded before a change still serves the build after it: code added since then is
laid out after the recorded code, as the compiler placed it, and only costs resident memory.
"""
from __future__ import annotations

import os
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


def functions(binary: Path) -> list[tuple[int, int, str]]:
    """The functions of the executable's `.text`: address, size, name (one name for aliases of one address)."""
    objdump = shutil.which("llvm-objdump") or shutil.which("objdump")
    listing = subprocess.run([objdump, "-t", str(binary)], capture_output=True, text=True, check=True).stdout
    found: dict[int, tuple[int, str]] = {}
    for line in listing.splitlines():
        # 0000000000286140 l     F .text	0000000000000022 name, or …0022 .hidden name (mangled: no spaces)
        head, _, rest = line.partition("\t")
        fields, tail = head.split(), rest.split()
        if len(fields) < 4 or fields[-2] != "F" or fields[-1] != ".text" or len(tail) < 2:
            continue
        address, size, name = int(fields[0], 16), int(tail[0], 16), tail[-1]
        if size > 0:
            found.setdefault(address, (size, name))
    return [(address, size, name) for address, (size, name) in sorted(found.items())]


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
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    binary = Path(sys.argv[1]).resolve()
    order_file = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "deploy" / "McpGateway.order"
    work = Path(tempfile.mkdtemp(prefix="function-order-"))
    tracer = work / "trace.so"
    compiler = shutil.which("clang") or shutil.which("cc")
    subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", str(tracer), str(Path(__file__).with_name("trace.c"))],
                   check=True)
    listed = functions(binary)
    (work / "functions.txt").write_text("".join(f"{address:x} {size:x} {name}\n" for address, size, name in listed))
    ranks = work / "ranks.txt"
    stack = start_stack("devidp", common_env={"LOG_LEVEL": "warning"}, gateway_binary=binary, gateway_env={
        "LD_PRELOAD": str(tracer), "TRACE_FUNCTIONS": str(work / "functions.txt"), "TRACE_OUT": str(ranks),
        "SWIFT_BACKTRACE": "enable=no"})
    try:
        exercise(stack)
    finally:
        stack.stop()
    if not ranks.exists():
        print(f"the gateway wrote no trace ({ranks}); see its log", file=sys.stderr)
        return 1
    rows = sorted((int(rank), int(size), name) for rank, size, name in (line.split(" ", 2) for line in
                                                                         ranks.read_text().splitlines()))
    order_file.write_text("".join(f"{name}\n" for _, _, name in rows))
    ran = sum(size for _, size, _ in rows)
    total = sum(size for _, size, _ in listed)
    print(f"{len(rows)} of {len(listed)} functions ran ({ran / 2**20:.1f} of {total / 2**20:.1f} MiB of code); "
          f"their order is in {order_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
