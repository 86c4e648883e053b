"""`make bench`, TodosAPI part: `GET /api/me` (an RS256 token verified against the issuer's JWKS) in TodosAPI and in the
peers a team would weigh instead, side by side in one run, then `/api/health` and `/api/todos`.

The peers, each written as its community would (bench/peers/ and bench/fastapi_me.py):
- Go `net/http` and golang-jwt v4, the issuer's keys kept by `kid` (Debian's golang-go, golang-github-golang-jwt-jwt-dev);
- Node `node:http` and jose's `createRemoteJWKSet` and `jwtVerify` (Debian's nodejs and node-jose);
- FastAPI and PyJWT's `PyJWKClient`, one uvicorn worker.

Every server runs on one core and wrk on the other (`-t1 -c32`), with 256 users' tokens taken in turn and every answer
checked (bench/bearer_rotation.lua). The servers are measured in turn (ABCD…), three rounds, after a warm-up of each;
the median is the result and every round is printed. TodosAPI runs as shipped: an access line per request, metrics
recorded. Results go to stdout and to .build/bench-results.json, with the targets of issue 20 (bench/targets.py).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Tests" / "Interop"))
from support import Service, free_port  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from gateway_bench import wrk as checked_wrk  # noqa: E402
from results import record, target  # noqa: E402

RELEASE = Path(os.environ.get("RELEASE_BIN", ROOT / ".build" / "release"))
DURATION = os.environ.get("BENCH_DURATION", "10s")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
USERS = 256
AUDIENCE = "urn:todos-api"

PINNED = shutil.which("taskset") is not None and (os.cpu_count() or 1) > 1
SERVER_CORE = ["taskset", "-c", "0"] if PINNED else []

# What `make bench` holds TodosAPI to (issue 20).
TARGETS = {"me_vs_go": 1.5, "me_vs_node": 2.0, "list_vs_me": 0.6}


def wrk(url: str, tokens: Path | None, expect: str, pid: int, duration: str = DURATION) -> dict:
    """One run of gateway_bench's checked wrk against `url`, `-t1 -c32`: with the tokens of `tokens` in turn, or none;
    every answer must be a 200 holding `expect` (bench/bearer_rotation.lua). Besides requests per second, the CPU time
    the server (`pid`) spent per request: the measure a drifting machine moves least."""
    row = checked_wrk(url, tokens or Path("/dev/null"), expect, {"server": pid}, script="bearer_rotation.lua",
                      threads=1, connections=32, duration=duration)
    row["cpu_us_per_request"] = row.pop("cpu_us_per_call_server")
    return row


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def version(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip().splitlines()[0]
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def build_go_peer(workdir: Path) -> Path:
    """bench/peers/go-me, built offline against Debian's packaged golang-jwt (its go.mod replaces the module)."""
    binary = ROOT / ".build" / "bench-peers" / "go-me"
    environment = {**os.environ, "GOPROXY": "off", "GOFLAGS": "-mod=mod", "GOCACHE": str(ROOT / ".build" / "go-cache"),
                   "GOPATH": str(ROOT / ".build" / "go-path"), "CGO_ENABLED": "0"}
    subprocess.run(["go", "build", "-o", str(binary), "."], cwd=ROOT / "bench" / "peers" / "go-me", env=environment,
                   check=True)
    return binary


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    idp_port = free_port()
    issuer = f"http://127.0.0.1:{idp_port}/"
    users = workdir / "users.json"
    users.write_text(json.dumps({"users": [
        {"username": f"user{number}", "password": f"password-{number}", "user_id": f"auth0|user{number}",
         "name": f"User {number}", "email": f"user{number}@example.com", "permissions": ["read:todos", "write:todos"]}
        for number in range(USERS)]}))
    shared = {"LOG_LEVEL": "warning", "DEVIDP_ISSUER": issuer, "DEVIDP_SIGNING_KEY": str(workdir / "key.pem"),
              "DEVIDP_USERS": str(users), "AUTH0_DOMAIN": issuer.rstrip("/"), "AUTH0_AUDIENCE": AUDIENCE}
    idp = Service("devidp", [str(RELEASE / "DevIdP"), "serve", "--port", str(idp_port)], shared, issuer + "health")
    environment = {**os.environ, **shared, "DEV_VARS_FILE": str(workdir / "none")}
    tokens = workdir / "tokens.txt"
    tokens.write_text("".join(
        subprocess.run([str(RELEASE / "DevIdP"), "token", "--user", f"user{number}", "--scope",
                        "read:todos write:todos"], env=environment, cwd=workdir, capture_output=True, text=True,
                       check=True).stdout.strip() + "\n"
        for number in range(USERS)))
    results: dict = {"machine": machine(), "date": time.strftime("%Y-%m-%d"),
                     "wrk": f"-t1 -c32 -d{DURATION}, {USERS} users' tokens in turn",
                     "todos_api_setup": "each server on one core, wrk on the other" if PINNED else "unpinned",
                     "versions": {"go": version(["go", "version"]), "node": version(["node", "--version"]),
                                  "jose": json.loads(Path("/usr/share/nodejs/jose/package.json").read_text())["version"]
                                  if Path("/usr/share/nodejs/jose/package.json").exists() else "unknown"}}
    import httpx2 as httpx

    go_binary = build_go_peer(workdir)
    jwks_url = issuer + ".well-known/jwks.json"
    peer_env = {"ISSUER": issuer, "AUDIENCE": AUDIENCE, "JWKS_URL": jwks_url}
    python = ROOT / ".venv" / "bin" / "python"

    def start(name: str) -> tuple[Service, str]:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        if name == "todos_api":
            command = [str(RELEASE / "TodosAPI"), "--port", str(port)]
            env = {**shared, "LOG_LEVEL": "info", "TODOS_DATABASE": str(workdir / "todos.sqlite")}
        elif name == "go":
            command, env = [str(go_binary)], {**peer_env, "PORT": str(port)}
        elif name == "node":
            command = ["node", str(ROOT / "bench" / "peers" / "node-me" / "server.js")]
            env = {**peer_env, "PORT": str(port), "NODE_PATH": "/usr/share/nodejs", "NODE_ENV": "production"}
        else:
            command = [str(python), "-m", "uvicorn", "fastapi_me:app", "--host", "127.0.0.1", "--port", str(port),
                       "--no-access-log", "--log-level", "warning"]
            env = {**peer_env, "PYTHONPATH": str(ROOT / "bench")}
        return Service(name, [*SERVER_CORE, *command], env, base + "/api/health"), base

    servers = {name: start(name) for name in ("todos_api", "go", "node", "fastapi")}
    try:
        # Every user's ten todos: the three samples a new user gets, and seven more.
        _, todos_base = servers["todos_api"]
        with httpx.Client() as client:
            for token in tokens.read_text().split():
                bearer = {"Authorization": f"Bearer {token}"}
                for number in range(7):
                    client.post(todos_base + "/api/todos", headers=bearer,
                                json={"title": f"Benchmark todo {number}", "description": "One of ten"}).raise_for_status()
            assert len(client.get(todos_base + "/api/todos", headers=bearer).json()["todos"]) == 10

        def on(server: str, path: str, token_file: Path | None, expect: str) -> tuple:
            service, base = servers[server]
            return base + path, token_file, expect, service.process.pid

        measured = {  # name: (url, tokens, what every answer holds, the server's pid)
            "todos_api_me": on("todos_api", "/api/me", tokens, '"sub":'),
            "go_me": on("go", "/api/me", tokens, '"sub":'),
            "node_me": on("node", "/api/me", tokens, '"sub":'),
            "fastapi_me": on("fastapi", "/api/me", tokens, '"sub":'),
            "todos_api_health": on("todos_api", "/api/health", None, '"status":"ok"'),
            "todos_api_list": on("todos_api", "/api/todos", tokens, '"todos":'),
        }
        for url, token_file, expect, pid in measured.values():  # warm-up: JIT, key caches, connections
            wrk(url, token_file, expect, pid, duration="3s")
        runs: dict[str, list[dict]] = {name: [] for name in measured}
        for _ in range(ROUNDS):
            for name, (url, token_file, expect, pid) in measured.items():
                runs[name].append(wrk(url, token_file, expect, pid))
        for name, rows in runs.items():
            results[name] = {**sorted(rows, key=lambda row: row["rps"])[len(rows) // 2],
                             "runs_rps": [row["rps"] for row in rows],
                             "runs_cpu_us": [row["cpu_us_per_request"] for row in rows]}
        lines = servers["todos_api"][0].output().count("GET /api/me 200")
        assert lines > 1000, f"the access log has {lines} lines for /api/me: logging is not on"
    finally:
        for service, _ in servers.values():
            service.stop()
        idp.stop()
    shutil.rmtree(workdir, ignore_errors=True)

    me = results["todos_api_me"]["rps"]
    ratios = {"me_vs_go": me / results["go_me"]["rps"], "me_vs_node": me / results["node_me"]["rps"],
              "me_vs_fastapi": me / results["fastapi_me"]["rps"],
              "me_vs_health": me / results["todos_api_health"]["rps"],
              "list_vs_me": results["todos_api_list"]["rps"] / me}
    results["ratios"] = {name: round(value, 2) for name, value in ratios.items()}

    print(f"\nMachine: {results['machine']}   wrk {results['wrk']}   {results['versions']}")
    print(f"{'GET, median of ' + str(ROUNDS) + ' rounds':58} {'req/s':>8} {'p50':>9} {'p99':>9} {'CPU/req':>9}  rounds")
    for name, label in [("todos_api_me", "TodosAPI /api/me (RS256 via JWKS, logs on)"),
                        ("go_me", "Go net/http + golang-jwt v4 /api/me"),
                        ("node_me", "Node node:http + jose /api/me"),
                        ("fastapi_me", "FastAPI + PyJWT /api/me, one uvicorn worker"),
                        ("todos_api_health", "TodosAPI /api/health"),
                        ("todos_api_list", "TodosAPI /api/todos (the user's ten todos)")]:
        row = results[name]
        every = ", ".join(f"{rps:.0f}" for rps in row["runs_rps"])
        print(f"{label:58} {row['rps']:>8.0f} {row['p50']:>9} {row['p99']:>9} {row['cpu_us_per_request']:>6} µs  "
              f"{every}")
    print(f"\n/api/me: {ratios['me_vs_go']:.2f}x Go, {ratios['me_vs_node']:.2f}x Node, "
          f"{ratios['me_vs_fastapi']:.1f}x FastAPI; {ratios['me_vs_health']:.2f} of /api/health. "
          f"/api/todos: {ratios['list_vs_me']:.2f} of /api/me.")
    record(results, {f"todos_api_{name}": target(ratios[name], at_least=wanted) for name, wanted in TARGETS.items()},
           fresh=True)


if __name__ == "__main__":
    main()
