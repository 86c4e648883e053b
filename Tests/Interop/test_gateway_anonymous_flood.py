"""An anonymous flood of /authorize and /register, as a stranger would send it, with the default settings: the database
stays within a few hundred kilobytes, the flood is answered 200 (the consent page, which stores nothing) or 429 with
Retry-After, and the gateway keeps answering everyone else."""

import os
import threading
import time
from pathlib import Path

import httpx2 as httpx

from gateway_stack import start_stack


def database_bytes(path: Path) -> int:
    return sum(os.path.getsize(f) for f in path.parent.glob(path.name + "*"))


def test_an_anonymous_flood_does_not_fill_the_disk():
    stack = start_stack("devidp")
    try:
        database = Path(stack.services[-1].env["GATEWAY_DATABASE"])
        client = httpx.post(f"{stack.gateway_url}/register", json={
            "redirect_uris": ["http://127.0.0.1:9/cb"], "token_endpoint_auth_method": "none"}).json()
        time.sleep(1)
        before = database_bytes(database)
        query = {"response_type": "code", "client_id": client["client_id"], "redirect_uri": "http://127.0.0.1:9/cb",
                 "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256",
                 "state": "s" * 4000}
        statuses: dict[int, int] = {}
        lock = threading.Lock()
        deadline = time.monotonic() + 8

        def flood(kind: str) -> None:
            with httpx.Client(timeout=5) as http:
                while time.monotonic() < deadline:
                    if kind == "authorize":
                        response = http.get(f"{stack.gateway_url}/authorize", params=query)
                    else:
                        response = http.post(f"{stack.gateway_url}/register", json={
                            "redirect_uris": ["https://flood.example/cb"], "client_name": "x" * 200})
                    if response.status_code == 429:
                        assert int(response.headers["retry-after"]) >= 1
                    with lock:
                        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        threads = [threading.Thread(target=flood, args=(kind,)) for kind in ["authorize", "register"] * 3]
        for thread in threads:
            thread.start()
        # Meanwhile the gateway answers others at once.
        slowest = 0.0
        while any(thread.is_alive() for thread in threads):
            started = time.monotonic()
            assert httpx.get(f"{stack.gateway_url}/health", timeout=2).status_code == 200
            slowest = max(slowest, time.monotonic() - started)
            time.sleep(0.2)
        for thread in threads:
            thread.join()
        grown = database_bytes(database) - before
        print(f"statuses {statuses}, database grew {grown} bytes, slowest /health {slowest * 1000:.0f} ms")
        assert sum(statuses.values()) > 1000
        assert set(statuses) <= {200, 201, 429}, statuses
        assert statuses.get(429, 0) > 0
        assert grown < 300_000, grown
        assert slowest < 1.0
    finally:
        stack.stop()
