"""`make bench`, several instances: two gateway instances on one PostgreSQL database behind nginx (round robin), as
docs/deployment.md sets them up, with access logs on and metrics recorded, as shipped. Measures refresh token grants
(each hops instances: rotation is one PostgreSQL transaction) and MCP 2026-07-28 `tools/call` through nginx, and the
Python MCP SDK server doing the same call, on the same machine. Needs GATEWAY_TEST_DATABASE_URL (`make bench` runs it
under scripts/with-postgres.sh).

With two cores, the processes are not pinned: PostgreSQL, nginx, both instances, TodosAPI and wrk share them. Results
are printed and merged into .build/bench-results.json."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Tests" / "Interop"))
sys.path.insert(0, str(ROOT / "bench"))
import support  # noqa: E402

support.BIN = Path(os.environ.get("RELEASE_BIN", ROOT / ".build" / "release"))
import gateway_bench  # noqa: E402
from cluster import start_cluster  # noqa: E402
from results import record, target  # noqa: E402
from gateway_stack import sign_in  # noqa: E402
from support import Service, free_port  # noqa: E402

gateway_bench.WRK_CORE = []  # nothing is pinned here
USERS = 32


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="cluster-bench-"))
    cluster = start_cluster(2, gateway_env={
        "LOG_LEVEL": "info", "RATE_LIMIT_TOKEN": "off", "RATE_LIMIT_REGISTER": "off", "RATE_LIMIT_AUTHORIZE": "off"})
    results: dict = {}
    try:
        processes = {f"gateway_{index}": gateway.process.pid for index, gateway in enumerate(cluster.gateways)}
        processes["todos_api"] = cluster.api.process.pid
        # Three rounds, the median reported and every round printed, as everywhere else. Each round has 16 clients of
        # its own: a round leaves every client with a newer refresh token than its file holds.
        rounds = []
        for number in range(3):
            clients = workdir / f"clients-{number}.txt"
            clients.write_text("".join(f"{t['client_id']} {t['refresh_token']}\n"
                                       for t in (sign_in(cluster.url) for _ in range(16))))
            rounds.append(gateway_bench.wrk(cluster.url + "/token", clients, "", processes, script="refresh_grant.lua",
                                            threads=16, connections=16))
        results["cluster_refresh_grant"] = {**sorted(rounds, key=lambda row: row["rps"])[1],
                                            "runs_rps": [row["rps"] for row in rounds]}

        stateless = workdir / "stateless.txt"
        stateless.write_text("".join(f"{sign_in(cluster.url)['access_token']} -\n" for _ in range(USERS)))
        results.update(gateway_bench.measure(cluster.mcp_url, {"cluster_tool_call_stateless": (stateless, "stateless")},
                                             processes))

        upstream = subprocess.run(
            [str(support.BIN / "DevIdP"), "token", "--user", "alice", "--scope", "read:todos"],
            env={**os.environ, "DEVIDP_ISSUER": cluster.idp.env["DEVIDP_ISSUER"], "DEV_VARS_FILE": str(workdir / "none"),
                 "DEVIDP_SIGNING_KEY": cluster.idp.env["DEVIDP_SIGNING_KEY"]},
            capture_output=True, text=True, check=True).stdout.strip()
        port = free_port()
        python_tokens = [secrets.token_urlsafe(32) for _ in range(USERS)]
        python = Service("python-mcp", [str(ROOT / ".venv" / "bin" / "python"), str(ROOT / "bench" / "python_mcp_server.py")],
                         {"PORT": str(port), "BENCH_TOKENS": ",".join(python_tokens), "UPSTREAM_TOKEN": upstream,
                          "API_BASE_URL": cluster.api_url}, f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp")
        try:
            python_file = workdir / "python.txt"
            python_file.write_text("".join(f"{token} -\n" for token in python_tokens))
            results.update(gateway_bench.measure(
                f"http://127.0.0.1:{port}/mcp", {"cluster_python_sdk_tool_call": (python_file, "stateless")},
                {"python": python.process.pid, "todos_api": cluster.api.process.pid}))
        finally:
            python.stop()
        reuse = sum(gateway.output().count("audit refresh_token_reused") for gateway in cluster.gateways)
        assert reuse == 0, "a refresh was taken for a replay during the benchmark"
    finally:
        cluster.stop()

    results["cluster_vs_python_sdk"] = round(
        results["cluster_tool_call_stateless"]["rps"] / results["cluster_python_sdk_tool_call"]["rps"], 1)
    results["cluster_setup"] = ("two gateway instances on PostgreSQL behind nginx, TodosAPI, DevIdP and wrk sharing "
                                "the machine's cores; access logs on, metrics on")
    print(f"\n{'two instances on PostgreSQL behind nginx':50} {'req/s':>8} {'p50':>9} {'p99':>9}")
    for name, label in [("cluster_refresh_grant", "refresh_token grants (16 clients, hopping)"),
                        ("cluster_tool_call_stateless", "tools/call, 2026-07-28 (→ TodosAPI)"),
                        ("cluster_python_sdk_tool_call", "Python MCP SDK, same call, same machine")]:
        row = results[name]
        runs = f"  (runs: {', '.join(f'{rps:.0f}' for rps in row['runs_rps'])})" if "runs_rps" in row else ""
        print(f"{label:50} {row['rps']:>8.0f} {row['p50']:>9} {row['p99']:>9}{runs}")
    print(f"\nTool calls through two instances: {results['cluster_vs_python_sdk']}x the Python MCP SDK server.")
    record(results, {"cluster_refresh_grants_per_second_postgres_two_instances": target(
        results["cluster_refresh_grant"]["rps"], at_least=gateway_bench.REFRESH_GRANTS_PER_SECOND)})


if __name__ == "__main__":
    main()
