"""Faults of the gateway's HTTP dependencies, injected by a fault proxy (fault_proxy.py) between the gateway and
TodosAPI or the identity provider (DevIdP), as docs/operations.md lists them: no answer, headers then silence, one byte
a second, resets, closes, 503, garbage, refused connections, and a refresh answered later than the calls waited for it.

For each fault, eight users (each their own DevIdP user and grant) call tools at once, and each test checks the rules
of docs/operations.md:
- every tool call is answered (HTTP 200, a JSON-RPC result with `isError: true`) within its deadline plus a second;
- no grant is revoked (the gateway's SQLite database, `oauthGrant.revokedAt`);
- once the proxy passes requests again, every user's next call succeeds, without signing in again;
- the gateway's descriptors, threads and memory come back to where they were before the faults.

The faults: TodosAPI hanging, sending headers then nothing, one byte a second, resetting, closing, answering 503 or
garbage, refusing connections (and hanging under 8 x 30 calls at once, none queued behind another); the provider doing
the same during token refreshes (each user's waiting calls share one refresh); and the provider answering refreshes
after the calls stopped waiting but within the refresh's own deadline, with strict rotation: the answer is stored, no
refresh token is sent twice, nobody is signed out.

Short deadlines keep it fast: API_TIMEOUT=2s, API_CONNECT_TIMEOUT=1s, UPSTREAM_TIMEOUT=2s,
UPSTREAM_REFRESH_TIMEOUT=4s. For TodosAPI's faults DevIdP issues hour-long tokens (no refresh interferes); for the
provider's, 5-second tokens, which the gateway (refresh margin 60 s) refreshes at every tool call."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import re
import secrets
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from fault_proxy import FaultProxy
from gateway_stack import GATEWAY_CLIENT_ID, GATEWAY_CLIENT_SECRET, sign_in
from support import BIN, Service, free_port

API_TIMEOUT = 2.0
API_CONNECT_TIMEOUT = 1.0
UPSTREAM_TIMEOUT = 2.0
UPSTREAM_REFRESH_TIMEOUT = 4.0
SLACK = 1.0
"""docs/operations.md: a request is never answered later than its deadline plus a second."""
AT_ONCE = 1.0
"""How soon "a tool error at once" comes (a reset, a 5xx, garbage: nothing to wait for)."""
RECOVERY = 3.0
"""How long the first call after a fault may take (a new connection, a refresh)."""

USERS = [f"user{index}" for index in range(1, 9)]
SCOPE = "read:todos write:todos offline_access"
META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "faults-test", "version": "1"}}

FD_MARGIN = 8
THREAD_MARGIN = 4
RSS_MARGIN_KB = 40 * 1024
KEPT_CONNECTION_IDLE_TIMEOUT = 20.0
"""How long the gateway keeps an unused connection to TodosAPI (KeepAliveHTTPClient.Configuration.idleTimeout)."""


# The calls.

@dataclass
class Outcome:
    user: str
    tool: str
    started: float
    elapsed: float
    status: int | None
    is_error: bool | None
    text: str
    wall_started: float = 0.0
    request_id: str | None = None

    @property
    def tool_error(self) -> bool:
        return self.status == 200 and self.is_error is True

    @property
    def succeeded(self) -> bool:
        return self.status == 200 and self.is_error is False

    def __str__(self) -> str:
        return (f"{self.user} {self.tool} at +{self.started:.2f}s: {self.status} isError={self.is_error} "
                f"after {self.elapsed:.2f}s (request id {self.request_id}) {self.text[:120]!r}")


async def call_tool(gateway_url: str, user: str, access_token: str, tool: str = "list-todos",
                    arguments: dict | None = None, origin: float = 0.0, timeout: float = 30.0) -> Outcome:
    """One stateless MCP tools/call (revision 2026-07-28) on a connection of its own, timed from connecting to the last
    byte of the answer (the answer is parsed afterwards)."""
    host, port = gateway_url.removeprefix("http://").split(":")
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": tool, "arguments": arguments or {}, "_meta": META}}).encode()
    head = (f"POST /mcp HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {access_token}\r\n"
            "Accept: application/json, text/event-stream\r\nContent-Type: application/json\r\n"
            f"MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: {tool}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    wall_started, started = time.time(), time.monotonic()
    writer = None

    async def exchange() -> tuple[bytes, bytes]:
        nonlocal writer
        reader, writer = await asyncio.open_connection(host, int(port), limit=1 << 20)
        writer.write(head + body)
        await writer.drain()
        response_head = await reader.readuntil(b"\r\n\r\n")
        lowered = response_head.lower()
        if b"transfer-encoding: chunked" in lowered:
            data = b""
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                data += (await reader.readexactly(size + 2))[:-2]
            await reader.readuntil(b"\r\n")
        elif (length := re.search(rb"content-length: *(\d+)", lowered)) is not None:
            data = await reader.readexactly(int(length.group(1)))
        else:
            data = await reader.read()
        return response_head, data

    try:
        response_head, data = await asyncio.wait_for(exchange(), timeout)
        elapsed = time.monotonic() - started
    except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError,
            ValueError) as error:
        return Outcome(user, tool, started - origin, time.monotonic() - started, None, None, f"{error!r}",
                       wall_started)
    finally:
        if writer is not None:
            writer.close()
    lines = response_head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    text = data.decode(errors="replace")
    is_error = None
    try:
        if headers.get("content-type", "").startswith("text/event-stream"):
            text = next(line[5:].strip() for line in text.splitlines() if line.startswith("data:"))
        document = json.loads(text)
        is_error = document["result"]["isError"]
        text = " ".join(item.get("text", "") for item in document["result"].get("content", []))
    except (StopIteration, ValueError, KeyError, TypeError):
        pass
    return Outcome(user, tool, started - origin, elapsed, status, is_error, text, wall_started,
                   headers.get("x-request-id"))


def call_all(gateway_url: str, jobs: list[tuple[str, str, str, dict | None]]) -> list[Outcome]:
    """Makes every call of `jobs` (user, access token, tool, arguments) at once, each on its own connection, from one
    event loop: no thread waits for its turn to read its answer."""

    async def run() -> list[Outcome]:
        origin = time.monotonic()
        return list(await asyncio.gather(*(call_tool(gateway_url, user, token, tool, arguments, origin)
                                           for user, token, tool, arguments in jobs)))

    return asyncio.run(run())


def summary(outcomes: list[Outcome]) -> str:
    slowest = sorted(outcomes, key=lambda outcome: outcome.elapsed)
    return (f"{len(outcomes)} calls, {sum(o.tool_error for o in outcomes)} tool errors, "
            f"{sum(o.succeeded for o in outcomes)} successes; elapsed min {slowest[0].elapsed:.2f}s, "
            f"max {slowest[-1].elapsed:.2f}s")


# The system under test, with a fault proxy in front of TodosAPI and one in front of DevIdP.

@dataclass
class Resources:
    fds: int
    threads: int
    rss_kb: int


def resources(pid: int) -> Resources:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return Resources(len(list(Path(f"/proc/{pid}/fd").iterdir())), int(fields["Threads"].strip()),
                     int(fields["VmRSS"].strip().split()[0]))


TCP_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1", "05": "FIN_WAIT2",
              "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING"}


def open_files(pid: int) -> list[str]:
    """What a process holds open, its TCP sockets described by their ports and state (to tell which are left over)."""
    sockets: dict[str, str] = {}
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = (int(address.rsplit(":", 1)[1], 16) for address in fields[1:3])
            sockets[fields[9]] = f"tcp :{local} -> :{remote} {TCP_STATES.get(fields[3], fields[3])}"
    described = []
    for path in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = str(path.readlink())
        except OSError:
            continue
        inode = target.removeprefix("socket:[").removesuffix("]") if target.startswith("socket:[") else None
        described.append(sockets.get(inode, target) if inode else target)
    return sorted(described)


class FaultStack:
    """DevIdP, TodosAPI and the gateway on free loopback ports, with `api_proxy` between the gateway and TodosAPI and
    `idp_proxy` between the gateway and DevIdP. DevIdP's issuer is the proxy's URL, so its discovery document sends the
    gateway through the proxy; TodosAPI fetches DevIdP's keys directly, so that provider faults are the gateway's
    alone. Eight users are signed in, each with a grant of their own (`tokens[user]`)."""

    def __init__(self, name: str, devidp_env: dict[str, str]) -> None:
        self.name = name
        self.workdir = Path(tempfile.mkdtemp(prefix=f"faults-{name}-"))
        self.services: list[Service] = []
        self.proxies: list[FaultProxy] = []
        try:
            self._start(devidp_env)
        except BaseException:
            self.stop()
            raise

    def _start(self, devidp_env: dict[str, str]) -> None:
        users = self.workdir / "users.json"
        users.write_text(json.dumps({"users": [
            {"username": user, "password": f"{user}-password", "user_id": f"auth0|{user}", "name": user.title(),
             "email": f"{user}@example.com", "permissions": ["read:todos", "write:todos"]} for user in USERS]}))
        idp_port, api_port, gateway_port = free_port(), free_port(), free_port()
        self.gateway_url = f"http://127.0.0.1:{gateway_port}"
        self.idp_proxy = FaultProxy("127.0.0.1", idp_port, name=f"{self.name}-idp-proxy")
        self.proxies.append(self.idp_proxy)
        issuer = self.idp_proxy.url + "/"
        self.idp = Service("devidp", [str(BIN / "DevIdP"), "serve", "--port", str(idp_port)], {
            "DEVIDP_ISSUER": issuer, "DEVIDP_SIGNING_KEY": str(self.workdir / "devidp.pem"),
            "DEVIDP_USERS": str(users), "AUTH0_CLIENT_ID": GATEWAY_CLIENT_ID,
            "AUTH0_CLIENT_SECRET": GATEWAY_CLIENT_SECRET, "PUBLIC_URL": self.gateway_url, **devidp_env,
        }, f"http://127.0.0.1:{idp_port}/health")
        self.services.append(self.idp)
        self.api = Service("todos-api", [str(BIN / "TodosAPI"), "--port", str(api_port)], {
            "AUTH0_DOMAIN": issuer.rstrip("/"), "JWKS_URL": f"http://127.0.0.1:{idp_port}/.well-known/jwks.json",
            "TODOS_DATABASE": str(self.workdir / "todos.sqlite"),
        }, f"http://127.0.0.1:{api_port}/api/health")
        self.services.append(self.api)
        self.api_proxy = FaultProxy("127.0.0.1", api_port, name=f"{self.name}-api-proxy")
        self.proxies.append(self.api_proxy)
        self.database = self.workdir / "gateway.sqlite"
        self.gateway = Service("gateway", [str(BIN / "McpGateway"), "--port", str(gateway_port)], {
            "AUTH0_DOMAIN": issuer.rstrip("/"), "PUBLIC_URL": self.gateway_url, "AUTH0_CLIENT_ID": GATEWAY_CLIENT_ID,
            "AUTH0_CLIENT_SECRET": GATEWAY_CLIENT_SECRET, "API_BASE_URL": self.api_proxy.url,
            "COOKIE_ENCRYPTION_KEY": secrets.token_urlsafe(32), "GATEWAY_ENCRYPTION_KEY": secrets.token_urlsafe(32),
            "GATEWAY_DATABASE": str(self.database), "API_TIMEOUT": f"{API_TIMEOUT:g}s",
            "API_CONNECT_TIMEOUT": f"{API_CONNECT_TIMEOUT:g}s", "UPSTREAM_TIMEOUT": f"{UPSTREAM_TIMEOUT:g}s",
            "UPSTREAM_REFRESH_TIMEOUT": f"{UPSTREAM_REFRESH_TIMEOUT:g}s",
        }, self.gateway_url + "/health")
        self.services.append(self.gateway)
        self.tokens = {user: sign_in(self.gateway_url, user, scope=SCOPE) for user in USERS}
        # Warm up: every user's grant used once (the kept connections to TodosAPI opened, the caches filled).
        for _ in range(2):
            outcomes = self.call_every_user()
            assert all(outcome.succeeded for outcome in outcomes), "\n".join(map(str, outcomes))
        time.sleep(0.5)
        self.baseline = resources(self.gateway.process.pid)

    # What the tests look at.

    def call_every_user(self, calls: int = 1, tools: tuple[str, ...] = ("list-todos",)) -> list[Outcome]:
        jobs = [(user, self.tokens[user]["access_token"], tools[index % len(tools)],
                 {"title": f"{self.name} {user} {index}"} if tools[index % len(tools)] == "add-todo" else None)
                for user in USERS for index in range(calls)]
        return call_all(self.gateway_url, jobs)

    def grants(self) -> tuple[int, int]:
        """(active, revoked) grants in the gateway's database."""
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=10) as database:
            active = database.execute(
                "SELECT count(*) FROM oauthGrant WHERE revokedAt IS NULL").fetchone()[0]
            revoked = database.execute(
                "SELECT count(*) FROM oauthGrant WHERE revokedAt IS NOT NULL").fetchone()[0]
        return active, revoked

    def resources(self) -> Resources:
        return resources(self.gateway.process.pid)

    def log(self, tail: int = 6000) -> str:
        return self.gateway.output()[-tail:]

    def stop(self) -> None:
        for proxy in self.proxies:
            proxy.close()
        for service in reversed(self.services):
            service.stop()


@pytest.fixture(scope="module")
def api_stack():
    stack = FaultStack("api", {})
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def provider_stack():
    # A provider that accepts a rotated refresh token again for 30 s (Auth0's Reuse Interval): a refresh whose answer
    # the fault lost (headers then silence, one byte a second) is sent again by the next call and accepted.
    stack = FaultStack("provider", {"DEVIDP_ACCESS_TOKEN_TTL": "5", "DEVIDP_REFRESH_REUSE_INTERVAL": "30s"})
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def strict_stack():
    # Strict rotation (Auth0's default Reuse Interval, 0): a refresh token sent twice revokes the user's session.
    stack = FaultStack("strict", {"DEVIDP_ACCESS_TOKEN_TTL": "5", "DEVIDP_REFRESH_REUSE_INTERVAL": "0"})
    yield stack
    stack.stop()


# The checks every fault ends with.

def gateway_timing(stack: FaultStack, outcomes: list[Outcome]) -> str:
    """For each call, what the gateway's access log says of it (by X-Request-Id): how long its handler took, how long
    after the client sent it the handler began, how long after the gateway logged the answer the client had it. Tells
    a late answer of the gateway from a client (or a machine) too busy to send or read in time."""
    logged: dict[str, tuple[float, float]] = {}
    for line in stack.gateway.output().splitlines():
        if "POST /mcp" not in line or "http.duration_ms=" not in line:
            continue
        identifier = re.search(r"hb\.request\.id=(\S+)", line)
        duration = re.search(r"http\.duration_ms=([\d.]+)", line)
        try:
            ended = datetime.datetime.fromisoformat(line.split(" ", 1)[0].replace("Z", "+00:00")).timestamp()
        except ValueError:
            continue
        if identifier and duration:
            logged[identifier.group(1)] = (ended, float(duration.group(1)) / 1000)
    lines = []
    for outcome in outcomes:
        if outcome.request_id not in logged:
            lines.append(f"  {outcome}: not in the gateway's log")
            continue
        ended, duration = logged[outcome.request_id]
        began = ended - duration - outcome.wall_started
        read = outcome.wall_started + outcome.elapsed - ended
        lines.append(f"  {outcome.user} {outcome.tool}: client {outcome.elapsed:.2f}s, gateway handler "
                     f"{duration:.2f}s, began {began:+.2f}s after sending, answer read {read:+.2f}s after the gateway "
                     "logged it")
    return "\n".join(lines)


def assert_answered_in_time(stack: FaultStack, outcomes: list[Outcome], within: float, fault: str) -> None:
    late = [outcome for outcome in outcomes if outcome.elapsed > within]
    wrong = [outcome for outcome in outcomes if not outcome.tool_error]
    details = "\n".join(map(str, (late + wrong)[:12]))
    if late:
        details += f"\nTimings of the late calls (load average {os.getloadavg()}):\n{gateway_timing(stack, late[:12])}"
    assert not late and not wrong, (
        f"{fault}: {summary(outcomes)}; {len(late)} answered after {within:.1f}s, {len(wrong)} not a tool error:\n"
        f"{details}\n--- gateway log ---\n{stack.log()}")


def assert_grants_kept(stack: FaultStack, fault: str) -> None:
    active, revoked = stack.grants()
    assert (active, revoked) == (len(USERS), 0), (
        f"{fault}: {active} active and {revoked} revoked grants, expected {len(USERS)} and 0\n"
        f"--- gateway log ---\n{stack.log()}")


def assert_every_user_recovers(stack: FaultStack, fault: str) -> None:
    """Every user's next call succeeds, with the access token they had, soon."""
    outcomes = stack.call_every_user()
    bad = [outcome for outcome in outcomes if not outcome.succeeded or outcome.elapsed > RECOVERY]
    assert not bad, (f"{fault}: after the fault, {len(bad)} of {len(outcomes)} users' next call failed or was late:\n"
                     + "\n".join(map(str, bad)) + f"\n--- gateway log ---\n{stack.log()}")


def assert_provider_refused_nothing(stack: FaultStack, fault: str) -> None:
    """DevIdP refused no token request: no refresh token came back after it was rotated (beyond the reuse interval),
    which would have revoked that user's session there."""
    refused = [line for line in stack.idp.output().splitlines() if "POST /oauth/token 4" in line]
    assert not refused, f"{fault}: DevIdP refused token requests:\n" + "\n".join(refused[:10]) + (
        f"\n--- gateway log ---\n{stack.log()}")


def assert_no_unexpected_error(stack: FaultStack, fault: str) -> None:
    """Every fault was handled as one: none reached the gateway's last-resort error handler."""
    unexpected = [line for line in stack.gateway.output().splitlines() if "Unexpected error" in line]
    assert not unexpected, f"{fault}: " + "\n".join(unexpected[:5])


def assert_nothing_left_over(stack: FaultStack, fault: str, settle: float = 5.0) -> None:
    """Descriptors, threads and memory back to (about) where they were before the faults, within `settle` seconds
    (connections the gateway closed take a moment to go)."""
    started = time.monotonic()
    first_excess: tuple[Resources, list[str]] | None = None
    while True:
        now = stack.resources()
        within = (now.fds <= stack.baseline.fds + FD_MARGIN and now.threads <= stack.baseline.threads + THREAD_MARGIN
                  and now.rss_kb <= stack.baseline.rss_kb + RSS_MARGIN_KB)
        if within or time.monotonic() - started > settle:
            break
        if first_excess is None:
            first_excess = (now, open_files(stack.gateway.process.pid))
        time.sleep(0.2)
    took = time.monotonic() - started
    print(f"{fault}: gateway resources before the faults {stack.baseline}, after recovery {now} ({took:.1f}s)"
          + (f"; at first {first_excess[0]}: {first_excess[1]}" if first_excess else ""))
    assert within, (f"{fault}: the gateway holds {now} {settle:.0f}s after recovery, before the faults "
                    f"{stack.baseline} (margins {FD_MARGIN} fds, {THREAD_MARGIN} threads, {RSS_MARGIN_KB // 1024} MB):"
                    f" {open_files(stack.gateway.process.pid)}")


# 1. TodosAPI.

API_FAULTS = {
    # mode: (parameters, how soon every call must be answered)
    "hang": ({}, API_TIMEOUT + SLACK),
    "headers_then_silence": ({}, API_TIMEOUT + SLACK),
    "slow_body": ({"interval": 1.0, "chunk": 1}, API_TIMEOUT + SLACK),
    "reset": ({}, AT_ONCE),
    "close": ({}, AT_ONCE),
    "status": ({"status": 503}, AT_ONCE),
    "garbage": ({}, AT_ONCE),
    "refuse": ({}, API_CONNECT_TIMEOUT + SLACK),
}


@pytest.mark.parametrize("mode", list(API_FAULTS))
def test_a_todos_api_fault_is_a_tool_error_in_time(api_stack: FaultStack, mode: str):
    parameters, within = API_FAULTS[mode]
    fault = f"TodosAPI {mode}"
    api_stack.api_proxy.set_mode(mode, **parameters)
    try:
        # Eight users, three calls each at once: two reads (which the gateway may send again once) and a write.
        outcomes = api_stack.call_every_user(3, ("list-todos", "add-todo", "list-todos"))
    finally:
        api_stack.api_proxy.set_mode("pass")
    print(f"{fault}: {summary(outcomes)}")
    assert_answered_in_time(api_stack, outcomes, within, fault)
    assert_grants_kept(api_stack, fault)
    assert_every_user_recovers(api_stack, fault)
    assert_no_unexpected_error(api_stack, fault)
    assert_nothing_left_over(api_stack, fault)


def test_todos_api_hanging_under_load_answers_every_call_by_its_deadline(api_stack: FaultStack):
    """Eight users, thirty calls each at once, while TodosAPI answers nothing: all are answered within API_TIMEOUT plus
    a second, none queued behind the others (the calls beyond the 64 kept connections wait for one within their own
    deadline)."""
    fault = "TodosAPI hang, 8 users x 30 calls"
    api_stack.api_proxy.set_mode("hang")
    try:
        outcomes = api_stack.call_every_user(30)
    finally:
        api_stack.api_proxy.set_mode("pass")
    print(f"{fault}: {summary(outcomes)}")
    assert_answered_in_time(api_stack, outcomes, API_TIMEOUT + SLACK, fault)
    assert_grants_kept(api_stack, fault)
    assert_every_user_recovers(api_stack, fault)
    assert_no_unexpected_error(api_stack, fault)
    # Connections opened for calls that gave up meanwhile (the machine busy, connecting slow) are kept for the next
    # calls, until the client's idle timeout (KeepAliveHTTPClient, 20 s): they must be gone by then.
    assert_nothing_left_over(api_stack, fault, settle=KEPT_CONNECTION_IDLE_TIMEOUT + 3)


# 2. The provider, during refreshes.

PROVIDER_FAULTS = {
    # mode: (parameters, whether the refreshes it catches stay out: until UPSTREAM_REFRESH_TIMEOUT for an answer that
    # does not come or never ends; a refused connection fails the refresh at once, as a reset does)
    "hang": ({}, True),
    "headers_then_silence": ({}, True),
    "slow_body": ({"interval": 1.0, "chunk": 1}, True),
    "reset": ({}, False),
    "close": ({}, False),
    "status": ({"status": 503}, False),
    "garbage": ({}, False),
    "refuse": ({}, False),
}


def refreshes(proxy: FaultProxy, since: int) -> list:
    return [request for request in proxy.requests[since:]
            if request.method == "POST" and request.path.startswith("/oauth/token")]


@pytest.mark.parametrize("mode", list(PROVIDER_FAULTS))
def test_a_provider_fault_during_refreshes_keeps_every_grant(provider_stack: FaultStack, mode: str):
    parameters, lasting = PROVIDER_FAULTS[mode]
    fault = f"provider {mode} during refreshes"
    proxy = provider_stack.idp_proxy
    seen_before = len(proxy.requests)
    proxy.set_mode(mode, **parameters)
    try:
        # Every call needs a refresh (5-second tokens, a 60-second margin); each user's two calls share one. Then
        # each user's next call: it waits for a refresh still out, or tries again after one that failed.
        first = provider_stack.call_every_user(2)
        second_started = time.monotonic()
        second = provider_stack.call_every_user(1)
        if lasting:
            # The fault lasts until every refresh it caught is over: a call made while one is out waits for it
            # (docs/operations.md, rule 2), so the first call after the fault would still fail. That includes the
            # one background retry each interrupted refresh gets, a second after it failed.
            time.sleep(max(0.0, second_started + 2 * UPSTREAM_REFRESH_TIMEOUT + 1.3 - time.monotonic()))
    finally:
        proxy.set_mode("pass")
    sent = refreshes(proxy, seen_before)
    print(f"{fault}: first {summary(first)}; second {summary(second)}; {len(sent)} refreshes reached the proxy")
    # A refused connection is answered at once: not retried until the deadline (nor after the provider is back).
    limit = 1.0 + SLACK if mode == "refuse" else UPSTREAM_TIMEOUT + SLACK
    assert_answered_in_time(provider_stack, first + second, limit, fault)
    if lasting and mode != "refuse":
        # Every call came while its user's refresh was out: it waited for that one, none sent the refresh token again;
        # the gateway itself sent it once more, in the background, a second after it failed.
        assert len(USERS) <= len(sent) <= 2 * len(USERS), f"{fault}: {len(sent)} refreshes for {len(USERS)} users: {sent}"
    else:
        # A refresh that failed at once is tried again by the user's next call, with the same refresh token: one
        # refresh per call at most. Refused connections never reach the proxy's request log.
        assert len(sent) <= len(first) + len(second), f"{fault}: {len(sent)} refreshes: {sent}"
        if mode != "refuse":
            assert len(sent) >= 2 * len(USERS), f"{fault}: {len(sent)} refreshes for {len(USERS)} users: {sent}"
    assert_grants_kept(provider_stack, fault)
    assert_every_user_recovers(provider_stack, fault)
    assert_grants_kept(provider_stack, fault)
    assert_provider_refused_nothing(provider_stack, fault)
    assert_no_unexpected_error(provider_stack, fault)
    assert_nothing_left_over(provider_stack, fault)


# 3. The provider answering a refresh after the calls gave up, with strict rotation.

def test_a_late_refresh_answer_is_stored_and_its_token_never_sent_again(strict_stack: FaultStack):
    """DevIdP answers each refresh 3 s late: after UPSTREAM_TIMEOUT (the calls get a tool error at 2 s) but within
    UPSTREAM_REFRESH_TIMEOUT (the refresh waits, and stores the answer). The refresh token went once per user; a call
    made while the refresh is still out joins it instead of sending the spent token again (which DevIdP, with strict
    rotation, would take for a replay and revoke the user's session); after the fault, every user's next call
    succeeds."""
    fault = "provider answering refreshes 3 s late"
    delay = 3.0
    assert UPSTREAM_TIMEOUT + 0.5 < delay < UPSTREAM_REFRESH_TIMEOUT - 0.5
    proxy = strict_stack.idp_proxy
    seen_before = len(proxy.requests)
    started = time.monotonic()
    proxy.set_mode("slow_answer", path_prefix="/oauth/token", delay=delay)
    try:
        first = strict_stack.call_every_user(2)
        # While the refreshes are still out (they are answered at +3 s): one more call per user.
        second = strict_stack.call_every_user(1)
        time.sleep(max(0.0, started + delay + 0.5 - time.monotonic()))
        sent = refreshes(proxy, seen_before)
    finally:
        proxy.set_mode("pass")
    print(f"{fault}: first {summary(first)}; second {summary(second)}; {len(sent)} refreshes sent")
    for outcome in first:
        assert outcome.elapsed >= UPSTREAM_TIMEOUT - 0.3, f"{fault}: answered before the refresh deadline: {outcome}"
    assert_answered_in_time(strict_stack, first, UPSTREAM_TIMEOUT + SLACK, fault)
    # The next calls, made while the refreshes are still out, wait for them and get the late answer's token.
    failed = [outcome for outcome in second if not outcome.succeeded or outcome.elapsed > UPSTREAM_TIMEOUT + SLACK]
    assert not failed, (f"{fault}: calls made while the refreshes were out:\n" + "\n".join(map(str, failed))
                        + f"\n--- gateway log ---\n{strict_stack.log()}")
    # Each user's refresh token went to the provider once during the fault (each user needed at least one).
    assert len(sent) == len(USERS), f"{fault}: {len(sent)} refreshes for {len(USERS)} users: {sent}"
    assert all(request.mode == "slow_answer" for request in sent), sent
    assert_grants_kept(strict_stack, fault)
    assert_every_user_recovers(strict_stack, fault)
    assert_grants_kept(strict_stack, fault)
    assert_provider_refused_nothing(strict_stack, fault)
    assert_no_unexpected_error(strict_stack, fault)
    assert_nothing_left_over(strict_stack, fault)
