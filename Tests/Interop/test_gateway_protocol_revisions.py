"""Every MCP revision the gateway speaks, driven by the official Python MCP SDK (`mcp.Client`, mcp 2.x) signed in by
OAuth, headlessly: 2026-07-28 (stateless, pinned and negotiated by the client's own `server/discover` probe), the
session revisions 2025-11-25, 2025-06-18 and 2025-03-26 on `/mcp`, and 2024-11-05 over the HTTP+SSE transport
(`/sse`; also in the client's default mode there, which falls back from its `server/discover` probe). Each lists the
tools and calls every one as alice, and bob is refused `list-billing`. Then the parts of 2026-07-28 a client library
hides, checked on the wire with plain HTTP requests.

`mode="legacy"` always offers `mcp_types.version.LATEST_HANDSHAKE_VERSION` (2025-11-25) in `initialize`; an older
revision is pinned by patching that name where `mcp.client.session` reads it, and the test checks that the client
and the wire both ended up on the pinned revision."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

import anyio
import httpx2 as httpx
import mcp.client.session
import pytest
from mcp.shared.exceptions import MCPError

from gateway_stack import HeadlessSignIn, Stack, WireLog, sdk_client, sign_in, start_stack

TOOLS = ["whoami", "list-todos", "list-billing", "add-todo", "update-todo", "delete-todo"]
MODERN = "2026-07-28"
PROTOCOL_VERSION = "io.modelcontextprotocol/protocolVersion"
CLIENT_CAPABILITIES = "io.modelcontextprotocol/clientCapabilities"
SERVER_INFO = "io.modelcontextprotocol/serverInfo"


@dataclass(frozen=True)
class Revision:
    """How the SDK client is told to connect, and the revision it must end up speaking."""

    expected: str
    mode: str
    offered: str | None = None  # the version `initialize` offers, when it is not the SDK's latest
    transport: str = "streamable-http"

    @property
    def stateless(self) -> bool:
        return self.expected == MODERN


REVISIONS = [
    pytest.param(Revision(MODERN, mode=MODERN), id="2026-07-28-pinned"),
    pytest.param(Revision(MODERN, mode="auto"), id="2026-07-28-auto"),
    pytest.param(Revision("2025-11-25", mode="legacy"), id="2025-11-25"),
    pytest.param(Revision("2025-06-18", mode="legacy", offered="2025-06-18"), id="2025-06-18"),
    pytest.param(Revision("2025-03-26", mode="legacy", offered="2025-03-26"), id="2025-03-26"),
    pytest.param(Revision("2024-11-05", mode="legacy", offered="2024-11-05", transport="sse"), id="2024-11-05-sse"),
    # The client's default mode on the HTTP+SSE transport: its server/discover probe is refused, so it falls back to
    # initialize, and the gateway grants the session revision offered.
    pytest.param(Revision("2025-11-25", mode="auto", transport="sse"), id="sse-auto"),
]


@pytest.fixture(scope="module")
def stack():
    stack = start_stack("devidp")
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def users():
    """One OAuth client state per user and endpoint, shared by every revision: each signs in once."""
    return {(user, transport): HeadlessSignIn(user)
            for user in ("alice", "bob") for transport in ("streamable-http", "sse")}


@pytest.fixture
def pinned(monkeypatch):
    def pin(revision: Revision) -> None:
        if revision.offered:
            monkeypatch.setattr(mcp.client.session, "LATEST_HANDSHAKE_VERSION", revision.offered)

    return pin


def endpoint(stack: Stack, revision: Revision) -> str:
    return stack.sse_url if revision.transport == "sse" else stack.mcp_url


def structured(result) -> dict:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content


def assert_spoke(wire: WireLog, revision: Revision) -> None:
    """The requests the client sent are those of `revision`, not only its own claim."""
    posts = [request for request in wire.posts if isinstance(request.body, dict)]
    assert posts, "no MCP requests were recorded"
    if revision.mode == "auto":
        assert wire.methods[0] == "server/discover"
    if revision.stateless:
        assert "initialize" not in wire.methods
        for request in posts:
            assert request.headers.get("mcp-protocol-version") == MODERN, request
            assert request.headers.get("mcp-method") == request.body["method"], request
            assert "mcp-session-id" not in request.headers
            if "id" in request.body:
                assert request.body["params"]["_meta"][PROTOCOL_VERSION] == MODERN
                assert CLIENT_CAPABILITIES in request.body["params"]["_meta"]
        return
    # The last one: the first is answered 401 when the client has yet to sign in, and sent again with a token.
    initialize = [request for request in posts if request.body.get("method") == "initialize"][-1]
    assert initialize.body["params"]["protocolVersion"] == revision.expected
    later = posts[posts.index(initialize) + 1:]
    assert later and "notifications/initialized" in [request.body.get("method") for request in later]
    for request in later:
        if revision.transport == "sse":
            assert request.path == "/messages"  # HTTP+SSE predates the MCP-Protocol-Version header
        else:
            assert request.headers.get("mcp-protocol-version") == revision.expected, request
            assert request.headers.get("mcp-session-id"), request


@pytest.mark.parametrize("revision", REVISIONS)
def test_alice_uses_every_tool(stack: Stack, users, pinned, revision: Revision):
    pinned(revision)
    alice = users[("alice", revision.transport)]
    wire = WireLog()

    async def run():
        async with sdk_client(endpoint(stack, revision), alice, mode=revision.mode, transport=revision.transport,
                              wire=wire) as client:
            assert client.protocol_version == revision.expected
            if revision.mode == "auto" and revision.stateless:
                discovered = client.session.discover_result
                assert discovered is not None and MODERN in discovered.supported_versions
            if revision.mode != MODERN:  # a pinned stateless client never asks who the server is
                assert client.server_info.name == "mcp-todos-gateway"
            if not revision.stateless:
                assert client.session.initialize_result.protocol_version == revision.expected

            listed = await client.list_tools()
            assert [tool.name for tool in listed.tools] == TOOLS
            assert [tool.name for tool in (await client.list_tools(cache_mode="bypass")).tools] == TOOLS
            if revision.stateless:
                assert listed.ttl_ms is not None and listed.ttl_ms > 0 and listed.cache_scope == "public"

            me = structured(await client.call_tool("whoami", {}))
            assert me["sub"] == "auth0|alice" and me["email"] == "alice@example.com"
            assert set(me["scopes"]) == {"offline_access", "read:todos", "read:billing", "write:todos"}
            todos = structured(await client.call_tool("list-todos", {}))["todos"]
            assert len(todos) >= 3 and all(todo["owner"] == "auth0|alice" for todo in todos)
            billing = structured(await client.call_tool("list-billing", {}))
            assert billing == {"billing": {"method": "credit-card", "last4": "1234", "expiration": "01/2027"}}

            title = f"Written over MCP {revision.expected} ({revision.mode})"
            added = structured(await client.call_tool("add-todo", {"title": title, "due": "2027-01-01"}))["todo"]
            assert added["title"] == title and added["due"] == "2027-01-01" and added["completed"] is False
            listed_ids = {todo["id"] for todo in structured(await client.call_tool("list-todos", {}))["todos"]}
            assert added["id"] in listed_ids
            updated = structured(await client.call_tool("update-todo", {"id": added["id"], "completed": True}))
            assert updated["todo"]["completed"] is True and updated["todo"]["title"] == title
            open_ids = {todo["id"] for todo in
                        structured(await client.call_tool("list-todos", {"completed": False}))["todos"]}
            assert added["id"] not in open_ids
            assert structured(await client.call_tool("delete-todo", {"id": added["id"]})) == {
                "deleted": True, "id": added["id"]}
            again = await client.call_tool("delete-todo", {"id": added["id"]})
            assert again.is_error and "No such todo" in again.content[0].text

    anyio.run(run)
    assert_spoke(wire, revision)
    assert alice.authorizations == 1  # signed in once for this endpoint, whichever revision came first


@pytest.mark.parametrize("revision", REVISIONS)
def test_bob_is_refused_billing(stack: Stack, users, pinned, revision: Revision):
    pinned(revision)
    bob = users[("bob", revision.transport)]
    wire = WireLog()

    async def run():
        async with sdk_client(endpoint(stack, revision), bob, mode=revision.mode, transport=revision.transport,
                              wire=wire) as client:
            assert client.protocol_version == revision.expected
            me = structured(await client.call_tool("whoami", {}))
            assert me["sub"] == "auth0|bob" and "read:billing" not in me["scopes"]
            assert structured(await client.call_tool("list-todos", {}))["todos"][0]["owner"] == "auth0|bob"
            before = bob.authorizations
            if revision.transport == "sse":
                # HTTP+SSE answers on the event stream, after the POST was accepted: a tool error, not a 403.
                refused = await client.call_tool("list-billing", {})
                assert refused.is_error and "read:billing" in refused.content[0].text
                assert bob.authorizations == before
            else:
                with pytest.raises(MCPError):
                    await client.call_tool("list-billing", {})
                # The 403's step-up challenge sent bob back through the browser for read:billing, which he lacks.
                assert bob.authorizations == before + 1
                scope = parse_qs(urlparse(bob.authorization_urls[-1]).query)["scope"][0].split()
                assert "read:billing" in scope
            assert structured(await client.call_tool("whoami", {}))["sub"] == "auth0|bob"  # still connected

    anyio.run(run)
    assert_spoke(wire, revision)


def test_the_sdk_listens_for_changes_on_2026(stack: Stack, users):
    async def run():
        async with sdk_client(stack.mcp_url, users[("alice", "streamable-http")], mode=MODERN) as client:
            async with client.listen(tools_list_changed=True) as subscription:
                # The tool list never changes, so the gateway honours none of the notifications asked for.
                assert subscription.honored.tools_list_changed is None
            assert [tool.name for tool in (await client.list_tools()).tools] == TOOLS

    anyio.run(run)


def test_a_listen_stream_the_client_closed_frees_its_place(stack: Stack, users):
    """A 2026-07-28 client listens again after every drop (there is no replay). A stream it closed must stop counting
    against the per-user limit (MCP_MAX_STREAMS_PER_USER, 8 by default), so a dozen listen-and-close cycles in a row
    all get a stream; each is given a second to be let go of."""
    refused: list[tuple[int, str]] = []

    async def run():
        async with sdk_client(stack.mcp_url, users[("bob", "streamable-http")], mode=MODERN) as client:
            for cycle in range(12):
                for wait in range(11):
                    try:
                        async with client.listen(tools_list_changed=True):
                            pass
                        break
                    except MCPError as error:
                        if wait == 10:
                            refused.append((cycle, error.error.message))
                        else:
                            await anyio.sleep(0.1)

    anyio.run(run)
    assert refused == []


# On the wire, with plain HTTP requests.

def meta(version: str = MODERN) -> dict:
    return {PROTOCOL_VERSION: version, CLIENT_CAPABILITIES: {},
            "io.modelcontextprotocol/clientInfo": {"name": "raw interop test", "version": "1"}}


@dataclass
class Raw:
    """Plain HTTP requests to `/mcp` with alice's access token."""

    stack: Stack
    token: str
    http: httpx.Client

    def modern(self, method: str, params: dict | None = None, request_id: object = 1, version: str = MODERN,
               headers: dict | None = None) -> httpx.Response:
        """A 2026-07-28 request: `_meta` and the standard headers agree, unless `headers` says otherwise."""
        body = {"jsonrpc": "2.0", "id": request_id, "method": method,
                "params": {**(params or {}), "_meta": meta(version)}}
        return self.http.post(self.stack.mcp_url, json=body, headers={
            "Authorization": f"Bearer {self.token}", "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": version, "Mcp-Method": method, **(headers or {})})

    def in_session(self, session: str | None, body, version: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json, text/event-stream"}
        if version:
            headers["MCP-Protocol-Version"] = version
        if session:
            headers["Mcp-Session-Id"] = session
        return self.http.post(self.stack.mcp_url, json=body, headers=headers)

    def open_session(self, version: str) -> tuple[str, dict]:
        """`initialize` offering `version`, then `notifications/initialized` at the version the gateway answered."""
        response = self.in_session(None, {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": version, "capabilities": {},
            "clientInfo": {"name": "raw interop test", "version": "1"}}}, None)
        assert response.status_code == 200, response.text
        session = response.headers["mcp-session-id"]
        result = response.json()["result"]
        initialized = self.in_session(session, {"jsonrpc": "2.0", "method": "notifications/initialized"},
                                      result["protocolVersion"])
        assert initialized.status_code == 202
        return session, result

    def end_session(self, session: str) -> None:
        response = self.http.delete(self.stack.mcp_url, headers={
            "Authorization": f"Bearer {self.token}", "Mcp-Session-Id": session})
        assert response.status_code == 200


@pytest.fixture(scope="module")
def raw(stack: Stack):
    with httpx.Client(timeout=10) as http:
        yield Raw(stack, sign_in(stack.gateway_url, "alice")["access_token"], http)


def test_server_discover(raw: Raw):
    response = raw.modern("server/discover", request_id="discover-1")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert "mcp-session-id" not in response.headers
    message = response.json()
    assert message["jsonrpc"] == "2.0" and message["id"] == "discover-1"
    result = message["result"]
    assert result["resultType"] == "complete"
    assert {MODERN, "2025-11-25"} <= set(result["supportedVersions"])
    assert set(result["supportedVersions"]) == {MODERN, "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}
    assert isinstance(result["ttlMs"], int) and result["ttlMs"] > 0
    assert result["cacheScope"] in ("public", "private")
    assert result["capabilities"]["tools"] == {"listChanged": False}
    assert result["_meta"][SERVER_INFO]["name"] == "mcp-todos-gateway"
    assert result["_meta"][SERVER_INFO]["version"]


def test_tools_list_has_cache_hints_on_2026_only(raw: Raw):
    response = raw.modern("tools/list")
    assert response.status_code == 200 and "mcp-session-id" not in response.headers
    modern = response.json()["result"]
    assert [tool["name"] for tool in modern["tools"]] == TOOLS
    assert modern["resultType"] == "complete"
    assert isinstance(modern["ttlMs"], int) and modern["ttlMs"] > 0 and modern["cacheScope"] == "public"
    assert modern["_meta"][SERVER_INFO]["name"] == "mcp-todos-gateway"

    call = raw.modern("tools/call", {"name": "whoami", "arguments": {}}, request_id=2, headers={"Mcp-Name": "whoami"})
    assert call.status_code == 200
    assert call.json()["result"]["resultType"] == "complete"
    assert call.json()["result"]["structuredContent"]["sub"] == "auth0|alice"

    for version in ("2025-11-25", "2025-06-18", "2025-03-26"):
        session, initialized = raw.open_session(version)
        try:
            assert initialized["protocolVersion"] == version
            listed = raw.in_session(session, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, version)
            assert listed.status_code == 200
            result = listed.json()["result"]
            assert [tool["name"] for tool in result["tools"]] == TOOLS
            assert not {"resultType", "ttlMs", "cacheScope"} & set(result), (version, sorted(result))
            called = raw.in_session(session, {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                              "params": {"name": "whoami", "arguments": {}}}, version)
            assert called.status_code == 200 and "resultType" not in called.json()["result"]
        finally:
            raw.end_session(session)


@pytest.mark.parametrize("method", ["tools/list", "server/discover"])
def test_an_unknown_protocol_version_is_refused_with_the_supported_ones(raw: Raw, method: str):
    response = raw.modern(method, request_id=7, version="2099-01-01")
    assert response.status_code == 400
    message = response.json()
    assert message["id"] == 7
    error = message["error"]
    assert error["code"] == -32022
    assert error["data"]["requested"] == "2099-01-01"
    assert MODERN in error["data"]["supported"] and "2025-11-25" in error["data"]["supported"]


@pytest.mark.parametrize("request_id", ["mismatch-1", 42])
def test_a_method_header_that_differs_from_the_body_is_refused(raw: Raw, request_id):
    response = raw.modern("tools/list", request_id=request_id, headers={"Mcp-Method": "tools/call"})
    assert response.status_code == 400
    message = response.json()
    assert message["id"] == request_id
    assert message["error"]["code"] == -32020
    assert "Mcp-Method" in message["error"]["message"]


def test_a_name_header_that_differs_from_the_body_is_refused(raw: Raw):
    response = raw.modern("tools/call", {"name": "whoami", "arguments": {}}, request_id=5,
                          headers={"Mcp-Name": "list-billing"})
    assert response.status_code == 400
    assert response.json()["id"] == 5 and response.json()["error"]["code"] == -32020


def test_initialize_with_a_future_version_gets_the_newest_session_revision(raw: Raw):
    session, result = raw.open_session("2099-01-01")
    try:
        assert result["protocolVersion"] == "2025-11-25"
        assert result["serverInfo"]["name"] == "mcp-todos-gateway"
        listed = raw.in_session(session, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, "2025-11-25")
        assert listed.status_code == 200 and [tool["name"] for tool in listed.json()["result"]["tools"]] == TOOLS
    finally:
        raw.end_session(session)


def test_batches_belong_to_2025_03_26_only(raw: Raw):
    batch = [{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, {"jsonrpc": "2.0", "id": 2, "method": "ping"}]
    old, _ = raw.open_session("2025-03-26")
    newer, _ = raw.open_session("2025-06-18")
    try:
        answered = raw.in_session(old, batch, "2025-03-26")
        assert answered.status_code == 200
        replies = {reply["id"]: reply for reply in answered.json()}
        assert set(replies) == {1, 2}
        assert [tool["name"] for tool in replies[1]["result"]["tools"]] == TOOLS and replies[2]["result"] == {}
        refused = raw.in_session(newer, batch, "2025-06-18")
        assert refused.status_code == 400 and refused.json()["error"]["code"] == -32600
    finally:
        raw.end_session(old)
        raw.end_session(newer)


def test_a_session_stream_can_be_opened_again_after_the_client_closed_it(raw: Raw):
    """A client whose `GET /mcp` stream dropped opens it again (the SDK retries twice, a second apart). The stream it
    closed must not keep the session's one place; each attempt is given a second for the gateway to notice."""
    session, _ = raw.open_session("2025-11-25")
    headers = {"Authorization": f"Bearer {raw.token}", "Mcp-Session-Id": session,
               "MCP-Protocol-Version": "2025-11-25", "Accept": "text/event-stream"}
    statuses = []
    try:
        for attempt in range(3):
            for wait in range(11):
                with raw.http.stream("GET", raw.stack.mcp_url, headers=headers) as stream:
                    status, body = stream.status_code, (stream.read() if stream.status_code != 200 else b"")
                if status == 200 or wait == 10:
                    statuses.append((status, body[:200]))
                    break
                time.sleep(0.1)
    finally:
        raw.end_session(session)
    assert statuses == [(200, b"")] * 3
