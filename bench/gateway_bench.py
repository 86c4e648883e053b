"""`make bench`, gateway part: MCP tool calls through the gateway (gateway → TodosAPI) at 32 concurrent sessions,
refresh token grants per second, and the same tool call served by the official Python MCP SDK for comparison.
Release builds, loopback, wrk. Results are printed and merged into .build/bench-results.json."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Tests" / "Interop"))
import support  # noqa: E402

support.BIN = Path(os.environ.get("RELEASE_BIN", ROOT / ".build" / "release"))
from gateway_stack import open_session, sign_in, start_stack  # noqa: E402
from support import Service, free_port  # noqa: E402

DURATION = os.environ.get("BENCH_DURATION", "10s")
SESSIONS = 32


def wrk(url: str, script: str, data_file: Path, threads: int, connections: int) -> dict:
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", DURATION, "--latency", "-s",
               str(ROOT / "bench" / script), url, "--", str(data_file)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non2xx:
        raise RuntimeError(f"{url}: {non2xx.group(1)} error responses:\n{output}")
    latency = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", output, re.M))
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
            "p50": latency.get("50"), "p99": latency.get("99")}


def check_tool_call(mcp_url: str, token: str, session: str) -> None:
    import httpx2 as httpx

    response = httpx.post(mcp_url, headers={
        "Authorization": f"Bearer {token}", "Mcp-Session-Id": session, "Accept": "application/json, text/event-stream",
    }, json={"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "list-todos", "arguments": {}}})
    assert response.status_code == 200 and 'todos' in response.text and '"isError":true' not in response.text, response.text


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    stack = start_stack("devidp", gateway_env={"MCP_MAX_SESSIONS_PER_USER": "100"}, common_env={"LOG_LEVEL": "warning"})
    results: dict = {}
    try:
        sessions = workdir / "sessions.txt"
        lines = []
        for _ in range(SESSIONS):
            tokens = sign_in(stack.gateway_url)
            lines.append(f"{tokens['access_token']} {open_session(stack.mcp_url, tokens['access_token'])}")
        sessions.write_text("\n".join(lines) + "\n")
        check_tool_call(stack.mcp_url, *lines[0].split())
        wrk(stack.mcp_url, "mcp_tool_call.lua", sessions, 2, SESSIONS)  # warm-up
        results["gateway_tool_call"] = wrk(stack.mcp_url, "mcp_tool_call.lua", sessions, 2, SESSIONS)

        clients = workdir / "clients.txt"
        clients.write_text("".join(f"{t['client_id']} {t['refresh_token']}\n" for t in (sign_in(stack.gateway_url) for _ in range(8))))
        results["gateway_refresh_grant"] = wrk(stack.gateway_url + "/token", "refresh_grant.lua", clients, 8, 8)

        # The Python MCP SDK doing the same authenticated call to the same TodosAPI.
        upstream = subprocess.run(
            [str(support.BIN / "DevIdP"), "token", "--user", "alice", "--scope", "read:todos"],
            env={**os.environ, "DEVIDP_ISSUER": stack.idp_issuer, "DEV_VARS_FILE": str(workdir / "none"),
                 "DEVIDP_SIGNING_KEY": str(Path(stack.services[0].env["DEVIDP_SIGNING_KEY"]))},
            capture_output=True, text=True, check=True).stdout.strip()
        port = free_port()
        tokens = [secrets.token_urlsafe(32) for _ in range(SESSIONS)]
        python = Service("python-mcp", [str(ROOT / ".venv" / "bin" / "python"), str(ROOT / "bench" / "python_mcp_server.py")],
                         {"PORT": str(port), "BENCH_TOKENS": ",".join(tokens), "UPSTREAM_TOKEN": upstream,
                          "API_BASE_URL": stack.api_url}, f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp")
        try:
            url = f"http://127.0.0.1:{port}/mcp"
            python_sessions = workdir / "python-sessions.txt"
            pairs = [f"{token} {open_session(url, token)}" for token in tokens]
            python_sessions.write_text("\n".join(pairs) + "\n")
            check_tool_call(url, *pairs[0].split())
            wrk(url, "mcp_tool_call.lua", python_sessions, 2, SESSIONS)  # warm-up
            results["python_sdk_tool_call"] = wrk(url, "mcp_tool_call.lua", python_sessions, 2, SESSIONS)
        finally:
            python.stop()
    finally:
        stack.stop()

    results["gateway_vs_python_sdk"] = round(
        results["gateway_tool_call"]["rps"] / results["python_sdk_tool_call"]["rps"], 1)
    print(f"\n{'gateway benchmark (' + str(SESSIONS) + ' sessions)':48} {'req/s':>10} {'p50':>9} {'p99':>9}")
    for name, label in [("gateway_tool_call", "Gateway tools/call list-todos (→ TodosAPI)"),
                        ("python_sdk_tool_call", "Python MCP SDK, same call"),
                        ("gateway_refresh_grant", "Gateway refresh_token grants (8 clients)")]:
        row = results[name]
        print(f"{label:48} {row['rps']:>10.0f} {row['p50']:>9} {row['p99']:>9}")
    print(f"\nTool calls through the gateway: {results['gateway_vs_python_sdk']}x the Python MCP SDK server.")
    path = ROOT / ".build" / "bench-results.json"
    merged = json.loads(path.read_text()) if path.exists() else {}
    merged.update(results)
    path.write_text(json.dumps(merged, indent=2))


if __name__ == "__main__":
    main()
