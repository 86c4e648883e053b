"""FastMCP 4's client (`fastmcp.Client`) against the gateway, signing in with FastMCP's own OAuth support
(`fastmcp.client.auth.OAuth`): dynamic registration, a callback server of its own on a loopback port, and the system
browser, which these tests replace with a headless one. The stand-in does what a browser would: it signs the user in
(consent page, DevIdP's login form) and then follows the final redirect to FastMCP's callback server, whose answer
completes the flow. Nothing of FastMCP's OAuth is bypassed but the `webbrowser.open` call.

FastMCP 4 chooses the protocol with `Client(mode=...)`: `"2026-07-28"` pins the stateless revision, `"auto"` (its
default) probes `server/discover`, and `"legacy"` runs the `initialize` handshake, which always offers the newest
session revision its MCP SDK knows (2025-11-25); FastMCP has no setting for an older one. Its `SSETransport` (`/sse`)
is legacy-only, so there `"auto"` means `initialize` too."""

from __future__ import annotations

import threading
import time
import webbrowser
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlparse

import anyio
import httpx2 as httpx
import pytest
from fastmcp import Client
from fastmcp.client.auth import OAuth
from fastmcp.client.transports import SSETransport, StreamableHttpTransport
from fastmcp.exceptions import ToolError
from key_value.aio.stores.memory import MemoryStore
from mcp.shared.exceptions import MCPError

from gateway_stack import Stack, WireLog, start_stack
from headless_browser import HeadlessBrowser
from support import free_port

pytestmark = pytest.mark.filterwarnings("ignore:Using in-memory token storage")

TOOLS = ["whoami", "list-todos", "list-billing", "add-todo", "update-todo", "delete-todo"]
MODERN = "2026-07-28"


@dataclass
class BrowserStandIn:
    """Takes the place of the browser FastMCP's OAuth opens, for one user. `open` returns at once, as
    `webbrowser.open` does; a thread signs the user in and delivers the redirect to FastMCP's callback server, retrying
    until that server (started by FastMCP after the browser was opened) accepts the connection."""

    username: str
    callback_port: int = field(default_factory=free_port)
    opened: list[str] = field(default_factory=list)
    callback_answers: list[httpx.Response] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)
    storage: MemoryStore = field(default_factory=MemoryStore)

    def __post_init__(self) -> None:
        self.browser = HeadlessBrowser(username=self.username, password=f"{self.username}-password")

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.callback_port}/callback"

    def oauth(self) -> OAuth:
        """FastMCP's OAuth, on a fixed callback port so that later clients reuse the registration and the tokens."""
        return OAuth(client_name=f"Interop test (FastMCP, {self.username})", token_storage=self.storage,
                     callback_host="127.0.0.1", callback_port=self.callback_port, callback_timeout=30)

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        self.opened.append(url)
        threading.Thread(target=self._sign_in, args=(url,), daemon=True).start()
        return True

    def _sign_in(self, url: str) -> None:
        try:
            query = self.browser.authorize(url, self.redirect_uri)
            callback = self.redirect_uri + "?" + urlencode(query)
            deadline = time.monotonic() + 20
            while True:
                try:
                    self.callback_answers.append(httpx.get(callback, timeout=10))
                    return
                except httpx.ConnectError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        except BaseException as error:  # noqa: BLE001 - reported by the test, which would otherwise time out
            self.failures.append(error)


@pytest.fixture(scope="module")
def stack():
    stack = start_stack("devidp")
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def users():
    """One browser stand-in, callback port and token store per user and endpoint, shared by the tests."""
    return {(user, path): BrowserStandIn(user) for user in ("alice", "bob") for path in ("mcp", "sse")}


def fastmcp_client(stack: Stack, user: BrowserStandIn, monkeypatch, mode: str, transport: str, wire: WireLog):
    monkeypatch.setattr(webbrowser, "open", user.open)

    def http_client(**options) -> httpx.AsyncClient:
        options.setdefault("timeout", httpx.Timeout(30.0, read=300.0))
        return wire.hook(httpx.AsyncClient(**options))

    if transport == "sse":
        connection = SSETransport(stack.sse_url, auth=user.oauth(), httpx_client_factory=http_client)
    else:
        connection = StreamableHttpTransport(stack.mcp_url, auth=user.oauth(), httpx_client_factory=http_client)
    return Client(connection, mode=mode, timeout=30)


def check_sign_ins(user: BrowserStandIn, expected: int) -> None:
    assert not user.failures, user.failures
    assert len(user.opened) == expected
    assert len(user.callback_answers) == expected
    for answer in user.callback_answers:
        assert answer.status_code == 200 and "Authentication successful" in answer.text


CONNECTIONS = [
    pytest.param(MODERN, "mcp", MODERN, id="2026-07-28-pinned"),
    pytest.param("auto", "mcp", MODERN, id="2026-07-28-auto"),
    pytest.param("legacy", "mcp", "2025-11-25", id="2025-11-25"),
    pytest.param("auto", "sse", "2025-11-25", id="sse"),
]


def check_wire(wire: WireLog, mode: str, transport: str, expected: str) -> None:
    posts = [request for request in wire.posts if isinstance(request.body, dict)]
    assert posts
    if expected == MODERN:
        assert "initialize" not in wire.methods
        assert all(request.headers.get("mcp-protocol-version") == MODERN for request in posts)
        assert all("mcp-session-id" not in request.headers for request in posts)
        if mode == "auto":
            assert wire.methods[0] == "server/discover"
    else:
        # The last one: the first is answered 401 when the client has yet to sign in, and sent again with a token.
        initialize = [request for request in posts if request.body.get("method") == "initialize"][-1]
        assert initialize.body["params"]["protocolVersion"] == expected
        if transport == "mcp":
            later = posts[posts.index(initialize) + 1:]
            assert later and all(request.headers.get("mcp-protocol-version") == expected for request in later)
            assert all(request.headers.get("mcp-session-id") for request in later)


@pytest.mark.parametrize("mode, transport, expected", CONNECTIONS)
def test_alice_uses_every_tool(stack: Stack, users, monkeypatch, mode: str, transport: str, expected: str):
    alice = users[("alice", transport)]
    wire = WireLog()

    async def run():
        async with fastmcp_client(stack, alice, monkeypatch, mode, transport, wire) as client:
            assert client.protocol_version == expected
            if mode != MODERN:
                assert client.server_info.name == "mcp-todos-gateway"
            assert [tool.name for tool in await client.list_tools()] == TOOLS

            me = await client.call_tool("whoami", {})
            assert me.structured_content["sub"] == "auth0|alice" and me.data.sub == "auth0|alice"
            assert set(me.structured_content["scopes"]) == {"offline_access", "read:todos", "read:billing",
                                                           "write:todos"}
            todos = (await client.call_tool("list-todos", {})).structured_content["todos"]
            assert len(todos) >= 3 and all(todo["owner"] == "auth0|alice" for todo in todos)
            billing = (await client.call_tool("list-billing", {})).structured_content
            assert billing == {"billing": {"method": "credit-card", "last4": "1234", "expiration": "01/2027"}}

            title = f"Written by FastMCP ({mode}, {transport})"
            added = (await client.call_tool("add-todo", {"title": title, "due": "2027-02-01"})).structured_content
            todo_id = added["todo"]["id"]
            assert added["todo"]["title"] == title and added["todo"]["owner"] == "auth0|alice"
            updated = (await client.call_tool("update-todo", {"id": todo_id, "title": title + ", renamed",
                                                               "completed": True})).structured_content["todo"]
            assert updated["completed"] is True and updated["title"] == title + ", renamed"
            deleted = await client.call_tool("delete-todo", {"id": todo_id})
            assert deleted.structured_content == {"deleted": True, "id": todo_id}
            with pytest.raises(ToolError, match="No such todo"):
                await client.call_tool("delete-todo", {"id": todo_id})
            again = await client.call_tool("delete-todo", {"id": todo_id}, raise_on_error=False)
            assert again.is_error

    anyio.run(run)
    check_wire(wire, mode, transport, expected)
    check_sign_ins(alice, 1)  # FastMCP kept the registration and tokens: one sign-in per endpoint
    query = parse_qs(urlparse(alice.opened[0]).query)
    assert query["redirect_uri"] == [alice.redirect_uri] and query["code_challenge_method"] == ["S256"]


@pytest.mark.parametrize("mode, transport, expected", CONNECTIONS)
def test_bob_is_refused_billing(stack: Stack, users, monkeypatch, mode: str, transport: str, expected: str):
    bob = users[("bob", transport)]
    wire = WireLog()

    async def run():
        async with fastmcp_client(stack, bob, monkeypatch, mode, transport, wire) as client:
            assert client.protocol_version == expected
            me = await client.call_tool("whoami", {})
            assert me.structured_content["sub"] == "auth0|bob"
            assert "read:billing" not in me.structured_content["scopes"]
            before = len(bob.opened)
            if transport == "sse":
                with pytest.raises(ToolError, match="read:billing"):
                    await client.call_tool("list-billing", {})
                assert len(bob.opened) == before
            else:
                with pytest.raises(MCPError):
                    await client.call_tool("list-billing", {})
                # FastMCP followed the 403's step-up challenge: bob was sent to sign in again for read:billing.
                assert len(bob.opened) == before + 1
                assert "read:billing" in parse_qs(urlparse(bob.opened[-1]).query)["scope"][0].split()
            assert (await client.call_tool("list-todos", {})).structured_content["todos"][0]["owner"] == "auth0|bob"

    anyio.run(run)
    check_wire(wire, mode, transport, expected)
    check_sign_ins(bob, len(bob.opened))
