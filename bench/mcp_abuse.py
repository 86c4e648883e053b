"""`make bench`, abuse part: how much memory the gateway holds, and whether it keeps answering, while signed-in users
(and, for the slowloris phase, anyone) abuse the MCP endpoints.

Phases, in order, each measured by the gateway's RSS (VmRSS of /proc/<pid>/status, sampled every 50 ms: the value at
the end of the phase and the phase's peak) while a probe checks, every 250 ms, that GET /health and a normal
tools/call list-todos (2026-07-28, its own user) answer within 1 s:

1. at rest, after sign-in and a warm-up;
2. 1,000 idle sessions (initialize) of 63 users, 16 each (the default MCP_MAX_SESSIONS_PER_USER), then one more
   (503 expected: MCP_MAX_SESSIONS is 1,000);
3. 300 pings with 1 MB ids (refused: 413) and 300 pings with 128-byte ids in one session;
4. floods: pings on one /sse session (read), pings on one /mcp session, notifications on /mcp, stateless tools/list
   (after 208 of the sessions of phase 2 end, to make room);
5. clients that never read (SO_RCVBUF 4 KiB): GET /sse streams while tools/list requests are POSTed to /messages until
   the gateway gives up on each stream, GET /mcp streams of sessions, subscriptions/listen streams; then the same after
   MCP_STREAM_STALL_TIMEOUT (30 s), with the connections the gateway still holds open;
6. slowloris: unauthenticated connections that never finish their headers, and one user's uploads that never finish;
   then SIGTERM, with those connections still open.

Prints a table and exits non-zero if a probe misses its 1 s deadline or an answer is wrong; the gateway's memory at
rest (under 40 MiB) and at its peak (under 150 MiB) are targets, which bench/targets.py checks. Binaries from RELEASE_BIN (default .build/release); BENCH_ABUSE_SCALE (default 1) scales the request counts.
Results are merged into .build/bench-results.json under "mcp_abuse".
"""

from __future__ import annotations

import json
import os
import re
import resource
import socket
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Tests" / "Interop"))
import support  # noqa: E402

support.BIN = Path(os.environ.get("RELEASE_BIN", ROOT / ".build" / "release"))
import httpx2 as httpx  # noqa: E402
from gateway_stack import sign_in, start_stack  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from results import record, target  # noqa: E402

SCALE = float(os.environ.get("BENCH_ABUSE_SCALE", "1"))
DEADLINE = 1.0
RSS_LIMIT_MIB, REST_LIMIT_MIB = 150, 40
SESSIONS, PER_USER = 1000, 16
SESSION_USERS = -(-SESSIONS // PER_USER)  # 63
META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}
SCOPES = "read:todos read:billing write:todos offline_access"


def scaled(count: int) -> int:
    return max(1, int(count * SCALE))


# ----------------------------------------------------------------------------------------------------------------------
# Measuring


class Gateway:
    def __init__(self, stack, tokens: dict[str, str]):
        self.stack, self.tokens = stack, tokens
        self.url = stack.gateway_url
        self.host, port = self.url.removeprefix("http://").split(":")
        self.port = int(port)
        self.pid = stack.services[-1].process.pid

    def status(self) -> dict[str, str]:
        return dict(line.split(":", 1) for line in Path(f"/proc/{self.pid}/status").read_text().splitlines())

    def rss(self) -> float:
        return int(self.status()["VmRSS"].split()[0]) / 1024

    def hwm(self) -> float:
        return int(self.status()["VmHWM"].split()[0]) / 1024

    def established(self) -> int:
        """The gateway's established TCP connections on its port (from /proc/net/tcp)."""
        count = 0
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == self.port and fields[3] == "01":
                count += 1
        return count

    def client(self, user: str, **headers: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10, limits=httpx.Limits(max_connections=4), headers={
            "Authorization": f"Bearer {self.tokens[user]}", "Accept": "application/json, text/event-stream",
            **headers})

    def connect(self, rcvbuf: int | None = 4096) -> socket.socket:
        sock = socket.socket()
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(10)
        sock.connect((self.host, self.port))
        return sock


@dataclass
class Phase:
    name: str
    rss: float = 0.0
    peak: float = 0.0
    health_max: float = 0.0
    tool_max: float = 0.0
    probes: int = 0
    misses: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class Monitor:
    """Samples RSS and probes /health and a tool call while a phase runs."""

    def __init__(self, gateway: Gateway, phase: Phase):
        self.gateway, self.phase = gateway, phase
        self.stop = threading.Event()
        self.probe_client = gateway.client("probe", **{"MCP-Protocol-Version": "2026-07-28",
                                                       "Mcp-Method": "tools/call", "Mcp-Name": "list-todos"})
        self.health_client = httpx.Client(timeout=5)
        self.threads = [threading.Thread(target=self._sample, daemon=True),
                        threading.Thread(target=self._probe, daemon=True)]

    def __enter__(self) -> "Monitor":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()
        self.phase.rss = self.gateway.rss()
        self.phase.peak = max(self.phase.peak, self.phase.rss)
        self.probe_client.close()
        self.health_client.close()

    def _sample(self) -> None:
        while not self.stop.is_set():
            self.phase.peak = max(self.phase.peak, self.gateway.rss())
            self.stop.wait(0.05)

    def _timed(self, label: str, call) -> float:
        started = time.monotonic()
        try:
            ok, detail = call()
        except Exception as error:  # noqa: BLE001 - a failed probe is a result
            ok, detail = False, repr(error)
        elapsed = time.monotonic() - started
        if not ok or elapsed > DEADLINE:
            self.phase.misses.append(f"{label}: {elapsed:.2f}s {detail}"[:200])
        return elapsed

    def _probe(self) -> None:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "list-todos", "arguments": {}, "_meta": META}}
        while not self.stop.is_set():
            health = self._timed("GET /health", lambda: (
                (response := self.health_client.get(self.gateway.url + "/health", timeout=5)).status_code == 200,
                response.status_code))
            tool = self._timed("tools/call list-todos", lambda: (
                (response := self.probe_client.post("/mcp", json=body, timeout=5)).status_code == 200
                and "todos" in response.text, f"{response.status_code} {response.text[:100]}"))
            self.phase.health_max = max(self.phase.health_max, health)
            self.phase.tool_max = max(self.phase.tool_max, tool)
            self.phase.probes += 1
            self.stop.wait(0.25)


def run_phase(gateway: Gateway, phases: list[Phase], name: str, work) -> Phase:
    phase = Phase(name)
    print(f"-- {name}", flush=True)
    with Monitor(gateway, phase):
        work(phase)
    phases.append(phase)
    print(f"   RSS {phase.rss:.1f} MiB (peak {phase.peak:.1f}); health ≤ {phase.health_max * 1000:.0f} ms, "
          f"tool ≤ {phase.tool_max * 1000:.0f} ms; {'; '.join(phase.notes)}", flush=True)
    for miss in phase.misses[:5]:
        print(f"   MISSED {miss}", flush=True)
    return phase


def counts(statuses) -> str:
    tally: dict[int, int] = {}
    for status in statuses:
        tally[status] = tally.get(status, 0) + 1
    return ", ".join(f"{count}×{status}" for status, count in sorted(tally.items()))


def parallel(function, items, workers: int = 8) -> list:
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(function, items))


# ----------------------------------------------------------------------------------------------------------------------
# Abuse


def initialize(client: httpx.Client) -> httpx.Response:
    return client.post("/mcp", json={"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "abuse", "version": "1"}}})


def open_sse(gateway: Gateway, user: str, rcvbuf: int | None = 4096) -> tuple[socket.socket, str]:
    """A GET /sse on a raw socket; returns it and its /messages path, having read only the endpoint event."""
    sock = gateway.connect(rcvbuf)
    sock.sendall(f"GET /sse HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {gateway.tokens[user]}\r\n"
                 f"Accept: text/event-stream\r\n\r\n".encode())
    data = b""
    while not re.search(rb"sessionId=[\w-]+\n", data):
        chunk = sock.recv(1)
        if not chunk:
            raise RuntimeError(f"GET /sse closed: {data!r}")
        data += chunk
    if not data.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"GET /sse: {data[:200]!r}")
    return sock, "/messages?" + re.search(rb"sessionId=[\w-]+", data).group(0).decode()


def drain_forever(sock: socket.socket) -> None:
    sock.settimeout(None)
    try:
        while sock.recv(65536):
            pass
    except OSError:
        pass


def main() -> int:
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    users = ["alice", "probe", *[f"user{n:02d}" for n in range(SESSION_USERS + 8)]]
    users_file = Path(tempfile.mkdtemp(prefix="mcp-abuse-")) / "users.json"
    users_file.write_text(json.dumps({"users": [{
        "username": name, "password": f"{name}-password", "user_id": f"auth0|{name}", "name": name,
        "email": f"{name}@example.com", "permissions": ["read:todos", "read:billing", "write:todos"]} for name in users]}))
    # The sign-ins of the set-up all come from this machine; the per-address limits are not what is measured here.
    stack = start_stack("devidp", devidp_env={"DEVIDP_USERS": str(users_file)}, common_env={"LOG_LEVEL": "warning"},
                        gateway_env={"RATE_LIMIT_REGISTER": "off", "RATE_LIMIT_AUTHORIZE": "off"})
    gateway: Gateway | None = None
    phases: list[Phase] = []
    held: list[socket.socket] = []
    try:
        print(f"signing in {len(users)} users", flush=True)
        tokens = dict(zip(users, parallel(lambda name: sign_in(stack.gateway_url, name, SCOPES)["access_token"],
                                          users, workers=4)))
        gateway = Gateway(stack, tokens)
        session_users = users[2:2 + SESSION_USERS]
        spare_users = users[2 + SESSION_USERS:]

        def rest(phase: Phase) -> None:
            with gateway.client("alice") as client:  # warm-up: every code path once
                session = initialize(client).headers["mcp-session-id"]
                client.post("/mcp", headers={"Mcp-Session-Id": session},
                            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
                client.delete("/mcp", headers={"Mcp-Session-Id": session})
            time.sleep(3)

        run_phase(gateway, phases, "at rest", rest)

        sessions: list[tuple[str, str]] = []

        def idle_sessions(phase: Phase) -> None:
            quotas = {user: min(PER_USER, SESSIONS - PER_USER * n) for n, user in enumerate(session_users)}

            def open_for(user: str) -> list[tuple[str, str]]:
                with gateway.client(user) as client:
                    opened = []
                    for _ in range(quotas[user]):
                        response = initialize(client)
                        if response.status_code != 200:
                            phase.problems.append(f"initialize {len(opened) + 1} of {user}: {response.status_code}")
                            break
                        opened.append((user, response.headers["mcp-session-id"]))
                    return opened
            for opened in parallel(open_for, session_users):
                sessions.extend(opened)
            with gateway.client(spare_users[0]) as client:
                one_more = initialize(client)
            phase.notes.append(f"{len(sessions)} sessions of {len(session_users)} users (16 each, the default cap); "
                               f"one more: {one_more.status_code} Retry-After {one_more.headers.get('retry-after')}")
            if one_more.status_code != 503:
                phase.problems.append(f"session {len(sessions) + 1} was not refused: {one_more.status_code}")
            time.sleep(1)

        run_phase(gateway, phases, f"{SESSIONS} idle sessions", idle_sessions)

        def hostile_ids(phase: Phase) -> None:
            user, session = next((user, session) for user, session in sessions if user == session_users[0])
            with gateway.client(user, **{"Mcp-Session-Id": session}) as client:
                huge = parallel(lambda n: client.post("/mcp", content=json.dumps(
                    {"jsonrpc": "2.0", "id": f"{n:07d}" + "i" * 1_000_000, "method": "ping"}),
                    headers={"Content-Type": "application/json"}).status_code, range(300), workers=4)
                long = parallel(lambda n: client.post("/mcp", json={
                    "jsonrpc": "2.0", "id": f"{n:03d}" + "i" * 125, "method": "ping"}), range(300), workers=4)
            echoed = sum(1 for n, response in enumerate(long) if response.status_code == 200
                         and response.json().get("id") == f"{n:03d}" + "i" * 125)
            phase.notes.append(f"1 MB ids: {counts(huge)}; 128-byte ids: {counts(r.status_code for r in long)}, "
                               f"{echoed} echoed")
            if set(huge) != {413}:
                phase.problems.append(f"1 MB ids should be refused with 413, got {counts(huge)}")
            if echoed != 300:
                phase.problems.append(f"only {echoed} of 300 pings with 128-byte ids were answered with their id")

        run_phase(gateway, phases, "300 pings with 1 MB ids + 300 with 128-byte ids", hostile_ids)

        # Room for the streams: the sessions of the first 13 users end (DELETE).
        for user, session in [pair for pair in sessions if pair[0] in session_users[:13]]:
            with gateway.client(user) as client:
                client.delete("/mcp", headers={"Mcp-Session-Id": session})
        remaining = [pair for pair in sessions if pair[0] not in session_users[:13]]
        sse_clients = scaled(24)

        def floods(phase: Phase) -> None:
            flood_user = spare_users[1]
            sock, path = open_sse(gateway, flood_user, rcvbuf=None)
            reader = threading.Thread(target=drain_forever, args=(sock,), daemon=True)
            reader.start()
            held.append(sock)
            count = scaled(15_000)
            with gateway.client(flood_user) as client:
                before = gateway.rss()
                statuses = parallel(lambda n: client.post(path, json={"jsonrpc": "2.0", "id": n, "method": "ping"})
                                    .status_code, range(count))
                sse_growth = gateway.rss() - before
                phase.notes.append(f"{count} pings on one read /sse: {counts(statuses)}, RSS +{sse_growth:.1f} MiB "
                                   f"({sse_growth * 2**20 / count:.0f} bytes a ping)")
                session = initialize(client).headers["mcp-session-id"]
            with gateway.client(flood_user, **{"Mcp-Session-Id": session}) as client:
                before = gateway.rss()
                statuses = parallel(lambda n: client.post("/mcp", json={"jsonrpc": "2.0", "id": n, "method": "ping"})
                                    .status_code, range(scaled(10_000)))
                notified = parallel(lambda n: client.post("/mcp", json={
                    "jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": n}}).status_code,
                    range(scaled(10_000)))
                phase.notes.append(f"{scaled(10_000)} pings on /mcp: {counts(statuses)}; notifications: "
                                   f"{counts(notified)}; RSS +{gateway.rss() - before:.1f} MiB")
            with gateway.client(flood_user, **{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"}) \
                    as client:
                statuses = parallel(lambda n: client.post("/mcp", json={
                    "jsonrpc": "2.0", "id": n, "method": "tools/list", "params": {"_meta": META}}).status_code,
                    range(scaled(5_000)))
                phase.notes.append(f"{scaled(5000)} stateless tools/list: {counts(statuses)}")

        run_phase(gateway, phases, "floods of pings and notifications", floods)
        for sock in held:
            sock.close()
        held.clear()
        time.sleep(2)



        def unread_streams(phase: Phase) -> None:
            # GET /sse never read, /messages flooded with tools/list until the gateway gives the stream up.
            def abuse_sse(n: int) -> tuple[int, int]:
                user = session_users[n % 13]
                sock, path = open_sse(gateway, user)
                held.append(sock)
                accepted = 0
                with gateway.client(user) as client:
                    for k in range(5000):
                        response = client.post(path, json={"jsonrpc": "2.0", "id": k, "method": "tools/list"})
                        if response.status_code != 202:
                            return accepted, response.status_code
                        accepted += 1
                return accepted, 202
            before = gateway.rss()
            results = parallel(abuse_sse, range(sse_clients), workers=4)
            phase.notes.append(f"{sse_clients} unread GET /sse: {sum(a for a, _ in results)} tools/list accepted "
                               f"(then {counts(status for _, status in results)}), RSS +{gateway.rss() - before:.1f} MiB")
            before = gateway.rss()
            # GET /mcp streams of existing sessions, never read.
            opened = 0
            for user, session in remaining[:scaled(300)]:
                sock = gateway.connect()
                sock.sendall(f"GET /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {gateway.tokens[user]}\r\n"
                             f"Accept: text/event-stream\r\nMcp-Session-Id: {session}\r\n\r\n".encode())
                held.append(sock)
                opened += 1
            # subscriptions/listen streams, never read: 8 per user (the default cap).
            listen = 0
            for user in session_users[13:13 + scaled(20)]:
                for n in range(8):
                    body = json.dumps({"jsonrpc": "2.0", "id": f"L{n}", "method": "subscriptions/listen",
                                       "params": {"_meta": META, "notifications": {"toolsListChanged": True}}})
                    sock = gateway.connect()
                    sock.sendall((f"POST /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {gateway.tokens[user]}\r\n"
                                  f"Content-Type: application/json\r\nAccept: text/event-stream\r\n"
                                  f"MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: subscriptions/listen\r\n"
                                  f"Content-Length: {len(body)}\r\n\r\n{body}").encode())
                    held.append(sock)
                    listen += 1
            time.sleep(2)
            phase.notes.append(f"{opened} unread GET /mcp and {listen} unread subscriptions/listen: RSS "
                               f"+{gateway.rss() - before:.1f} MiB; {gateway.established()} connections open")

        run_phase(gateway, phases, "streams never read", unread_streams)

        def after_stall(phase: Phase) -> None:
            time.sleep(35)  # MCP_STREAM_STALL_TIMEOUT is 30 s
            phase.notes.append(f"{gateway.established()} connections still open ({sse_clients} /sse given up at the "
                               f"buffer limit and stalled for 35 s should be closed)")

        run_phase(gateway, phases, "same, 35 s later (stall timeout 30 s)", after_stall)
        for sock in held:
            sock.close()
        held.clear()
        time.sleep(2)

        def slowloris(phase: Phase) -> None:
            connections = scaled(3000)
            for n in range(connections):
                sock = gateway.connect(rcvbuf=None)
                sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                held.append(sock)
            user = spare_users[2]
            for n in range(32):
                sock = gateway.connect(rcvbuf=None)
                sock.sendall(f"POST /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {gateway.tokens[user]}\r\n"
                             f"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{".encode())
                held.append(sock)
            time.sleep(20)
            with gateway.client(user, **{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"}) as client:
                locked = client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list",
                                                   "params": {"_meta": META}}).status_code
            phase.notes.append(f"{connections} unfinished headers + 32 unfinished uploads of one user, held 20 s: "
                               f"{gateway.established()} connections open; that user's next request: {locked}")

        run_phase(gateway, phases, "slowloris", slowloris)
    finally:
        shutdown = None
        if gateway:
            process = stack.services[-1].process
            started = time.monotonic()
            process.terminate()
            try:
                process.wait(timeout=15)
                shutdown = f"exited {time.monotonic() - started:.1f}s after SIGTERM"
            except Exception:  # noqa: BLE001
                shutdown = "still running 15 s after SIGTERM (with the slowloris connections open); killed"
                process.kill()
                process.wait()
        for sock in held:
            sock.close()
        stack.stop()

    hwm = max(phase.peak for phase in phases)
    print(f"\n{'phase':52} {'RSS MiB':>8} {'peak MiB':>9} {'health ms':>10} {'tool ms':>8} {'probes':>7} {'missed':>7}")
    for phase in phases:
        print(f"{phase.name:52} {phase.rss:>8.1f} {phase.peak:>9.1f} {phase.health_max * 1000:>10.0f} "
              f"{phase.tool_max * 1000:>8.0f} {phase.probes:>7} {len(phase.misses):>7}")
    print(f"\nShutdown: {shutdown}")
    failures = []
    for phase in phases:
        if phase.misses:
            failures.append(f"{phase.name}: {len(phase.misses)} probes missed the 1 s deadline or failed")
        failures += [f"{phase.name}: {problem}" for problem in phase.problems]
    record({"mcp_abuse": {"binaries": str(support.BIN), "scale": SCALE, "shutdown": shutdown, "phases": [
        {"phase": p.name, "rss_mib": round(p.rss, 1), "peak_mib": round(p.peak, 1),
         "health_max_ms": round(p.health_max * 1000), "tool_max_ms": round(p.tool_max * 1000), "probes": p.probes,
         "missed": p.misses[:10], "notes": p.notes, "problems": p.problems} for p in phases], "failures": failures}},
        # Memory is a target (bench/targets.py); a missed deadline or a wrong answer is a failure here.
        {"gateway_rss_at_rest_mib": target(phases[0].peak if phases else 0, below=REST_LIMIT_MIB),
         "gateway_rss_peak_under_abuse_mib": target(hwm, below=RSS_LIMIT_MIB)})
    for failure in failures:
        print(f"FAIL: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
