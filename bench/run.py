"""`make bench`: throughput and latency of TodosAPI on a release build, measured with wrk.

Measures GET /api/health (no authentication) and GET /api/me (RS256 token verified against the issuer's JWKS),
prints requests/s, p50 and p99 for both and their ratio (the price of authentication), then the same /api/me in
FastAPI + PyJWT for comparison. Results go to stdout and to .build/bench-results.json.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Tests" / "Interop"))
from support import Service, free_port  # noqa: E402

RELEASE = Path(os.environ.get("RELEASE_BIN", ROOT / ".build" / "release"))
DURATION = os.environ.get("BENCH_DURATION", "10s")
CONNECTIONS = os.environ.get("BENCH_CONNECTIONS", "64")
THREADS = os.environ.get("BENCH_THREADS", "2")


# TodosAPI runs on one core and wrk on the other, so that wrk's own work (parsing larger responses) does not count
# against the server; the FastAPI baselines keep both cores (its two-worker row needs them).
PINNED = shutil.which("taskset") is not None and (os.cpu_count() or 1) > 1
SERVER_CORE = ["taskset", "-c", "0"] if PINNED else []
CLIENT_CORE = ["taskset", "-c", "1"] if PINNED else []


def wrk(url: str, headers: dict[str, str] | None = None, pinned: bool = False) -> dict:
    command = [*(CLIENT_CORE if pinned else []), "wrk", "-t", THREADS, "-c", CONNECTIONS, "-d", DURATION, "--latency", url]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    subprocess.run(command[:-1] + ["-d", "2s", url], capture_output=True, check=True)  # warm-up
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non2xx:
        raise RuntimeError(f"{url}: {non2xx.group(1)} error responses during the run:\n{output}")
    latency = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", output, re.M))
    return {"rps": rps, "p50": latency.get("50"), "p99": latency.get("99")}


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


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    idp_port = free_port()
    issuer = f"http://127.0.0.1:{idp_port}/"
    shared = {"LOG_LEVEL": "warning", "DEVIDP_ISSUER": issuer, "DEVIDP_SIGNING_KEY": str(workdir / "key.pem"),
              "AUTH0_DOMAIN": issuer.rstrip("/"), "AUTH0_AUDIENCE": "urn:todos-api"}
    idp = Service("devidp", [str(RELEASE / "DevIdP"), "serve", "--port", str(idp_port)], shared, issuer + "health")
    env = {**os.environ, **shared, "DEV_VARS_FILE": str(workdir / "none")}
    token = subprocess.run([str(RELEASE / "DevIdP"), "token", "--user", "alice"], env=env, cwd=workdir,
                           capture_output=True, text=True, check=True).stdout.strip()
    results: dict = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "wrk": f"-t{THREADS} -c{CONNECTIONS} -d{DURATION}",
                     "todos_api_setup": "each server on one core, wrk on the other" if PINNED else "unpinned"}
    import httpx2 as httpx

    def start_api(label: str, settings: dict[str, str]) -> tuple[Service, str]:
        """TodosAPI as shipped (LOG_LEVEL=info: an access line per request, metrics recorded), or with `settings`."""
        api_port = free_port()
        api = Service(f"todos-api{label}", [*SERVER_CORE, str(RELEASE / "TodosAPI"), "--port", str(api_port)],
                      {**shared, "LOG_LEVEL": "info", "TODOS_DATABASE": str(workdir / f"todos{label}.sqlite"),
                       **settings}, f"http://127.0.0.1:{api_port}/api/health")
        return api, f"http://127.0.0.1:{api_port}"

    # Three TodosAPI processes on the same core, measured in turn (ABCABC…, median of three runs each): as shipped,
    # with logs off, with metrics off. Only the one being measured has load.
    variants = {"": {}, "_logs_off": {"LOG_LEVEL": "warning"}, "_metrics_off": {"METRICS_ENABLED": "false"}}
    apis = {label: start_api(label, settings) for label, settings in variants.items()}
    bearer = {"Authorization": f"Bearer {token}"}
    try:
        runs: dict[str, list[dict]] = {}
        for _ in range(3):
            for label, (_, base) in apis.items():
                if label == "":
                    runs.setdefault("todos_api_health", []).append(wrk(base + "/api/health", pinned=True))
                runs.setdefault(f"todos_api_me{label}", []).append(wrk(base + "/api/me", bearer, pinned=True))
        for name, rows in runs.items():
            results[name] = {**sorted(rows, key=lambda row: row["rps"])[1], "runs_rps": [row["rps"] for row in rows]}
        api, base = apis[""]
        # A user's ten todos: the three samples every new user gets, and seven more.
        for number in range(7):
            httpx.post(base + "/api/todos", headers=bearer,
                       json={"title": f"Benchmark todo {number}", "description": "One of ten"}).raise_for_status()
        assert len(httpx.get(base + "/api/todos", headers=bearer).json()["todos"]) == 10
        results["todos_api_list"] = wrk(base + "/api/todos", bearer, pinned=True)
        lines = api.output().count("GET /api/me 200")
        assert lines > 1000, f"the access log has {lines} lines for /api/me: logging is not on"
    finally:
        for api, _ in apis.values():
            api.stop()

    python = ROOT / ".venv" / "bin" / "python"
    for workers in (1, 2):
        port = free_port()
        fastapi = Service(
            f"fastapi-{workers}",
            [*(SERVER_CORE if workers == 1 else []), str(python), "-m", "uvicorn", "fastapi_me:app", "--host",
             "127.0.0.1", "--port", str(port),
             "--workers", str(workers), "--no-access-log", "--log-level", "warning"],
            {"ISSUER": issuer, "AUDIENCE": "urn:todos-api", "JWKS_URL": issuer + ".well-known/jwks.json",
             "PYTHONPATH": str(ROOT / "bench")},
            f"http://127.0.0.1:{port}/api/health")
        try:
            # One worker on one core, as TodosAPI; two workers take both cores (wrk shares them).
            rows = [wrk(f"http://127.0.0.1:{port}/api/me", {"Authorization": f"Bearer {token}"}, pinned=workers == 1)
                    for _ in range(3)]
            results[f"fastapi_me_{workers}_worker"] = {**sorted(rows, key=lambda row: row["rps"])[1],
                                                       "runs_rps": [row["rps"] for row in rows]}
        finally:
            fastapi.stop()
    idp.stop()
    shutil.rmtree(workdir, ignore_errors=True)

    health, me = results["todos_api_health"], results["todos_api_me"]
    results["auth_cost_ratio"] = round(me["rps"] / health["rps"], 3)
    results["list_vs_me_ratio"] = round(results["todos_api_list"]["rps"] / me["rps"], 3)
    results["vs_fastapi_1_worker"] = round(me["rps"] / results["fastapi_me_1_worker"]["rps"], 1)
    results["vs_fastapi_2_workers"] = round(me["rps"] / results["fastapi_me_2_worker"]["rps"], 1)
    results["logs_off_vs_fastapi_1_worker"] = round(
        results["todos_api_me_logs_off"]["rps"] / results["fastapi_me_1_worker"]["rps"], 1)
    results["metrics_cost"] = round(1 - me["rps"] / results["todos_api_me_metrics_off"]["rps"], 3)
    print(f"\nMachine: {results['machine']}   wrk {results['wrk']}")
    print(f"{'endpoint':52} {'req/s':>10} {'p50':>9} {'p99':>9}")
    for name, label in [("todos_api_health", "TodosAPI GET /api/health (logs on)"),
                        ("todos_api_me", "TodosAPI GET /api/me (RS256 + JWKS, logs on)"),
                        ("todos_api_list", "TodosAPI GET /api/todos (ten todos, logs on)"),
                        ("todos_api_me_logs_off", "TodosAPI GET /api/me (LOG_LEVEL=warning)"),
                        ("todos_api_me_metrics_off", "TodosAPI GET /api/me (logs on, METRICS_ENABLED=false)"),
                        ("fastapi_me_1_worker", "FastAPI + PyJWT /api/me, 1 worker (one core)"),
                        ("fastapi_me_2_worker", "FastAPI + PyJWT /api/me, 2 workers")]:
        row = results[name]
        runs = f"  (runs: {', '.join(f'{rps:.0f}' for rps in row['runs_rps'])})" if "runs_rps" in row else ""
        print(f"{label:52} {row['rps']:>10.0f} {row['p50']:>9} {row['p99']:>9}{runs}")
    print(f"\nLogs on: /api/me keeps {results['auth_cost_ratio']:.0%} of /api/health's throughput (authentication cost).")
    print(f"/api/todos (ten todos) serves {results['list_vs_me_ratio']:.0%} of /api/me's throughput.")
    print(f"/api/me is {results['vs_fastapi_1_worker']}x FastAPI + PyJWT (1 worker, one core each) with logs on, "
          f"{results['logs_off_vs_fastapi_1_worker']}x with logs off; {results['vs_fastapi_2_workers']}x 2 workers.")
    print(f"Metrics cost {results['metrics_cost']:.1%} of /api/me's throughput.")
    (ROOT / ".build" / "bench-results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
