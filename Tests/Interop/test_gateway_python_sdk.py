"""The official Python MCP SDK against the gateway: OAuth discovery, dynamic registration, consent, upstream
sign-in, tokens, every tool, refresh, revocation, step-up refusal. DevIdP is the upstream provider here; see
test_gateway_nanoidp.py for an independent one."""

import json
import time

import anyio
import httpx2 as httpx
import pytest
from mcp.shared.exceptions import MCPError

from gateway_stack import REDIRECT_URI, Stack, connect, start_stack


@pytest.fixture(scope="module")
def stack():
    stack = start_stack("devidp", gateway_env={"ACCESS_TOKEN_TTL": "3"}, devidp_env={"DEVIDP_ACCESS_TOKEN_TTL": "64"})
    yield stack
    stack.stop()


def structured(result) -> dict:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content


def test_unauthenticated_requests_point_to_the_metadata(stack: Stack):
    response = httpx.post(stack.mcp_url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer scope="offline_access read:billing read:todos write:todos", '
        f'resource_metadata="{stack.gateway_url}/.well-known/oauth-protected-resource/mcp"'
    )
    metadata = httpx.get(f"{stack.gateway_url}/.well-known/oauth-protected-resource/mcp").json()
    assert metadata["resource"] == stack.mcp_url
    assert metadata["authorization_servers"] == [stack.gateway_url]


def test_alice_signs_in_and_uses_every_tool(stack: Stack):
    async def run():
        async with connect(stack, "alice") as connection:
            session = connection.session
            tools = {tool.name: tool for tool in (await session.list_tools()).tools}
            assert set(tools) == {"whoami", "list-todos", "list-billing", "add-todo", "update-todo", "delete-todo"}
            assert tools["list-todos"].annotations.read_only_hint is True
            assert tools["delete-todo"].annotations.destructive_hint is True

            me = structured(await session.call_tool("whoami", {}))
            assert me["sub"] == "auth0|alice" and me["email"] == "alice@example.com"
            assert set(me["scopes"]) == {"offline_access", "read:todos", "read:billing", "write:todos"}

            todos = structured(await session.call_tool("list-todos", {}))["todos"]
            assert len(todos) >= 3 and all(todo["owner"] == "auth0|alice" for todo in todos)
            billing = structured(await session.call_tool("list-billing", {}))
            assert billing == {"billing": {"method": "credit-card", "last4": "1234", "expiration": "01/2027"}}

            added = structured(await session.call_tool("add-todo", {"title": "Written by the Python SDK", "due": "2027-01-01"}))["todo"]
            updated = structured(await session.call_tool("update-todo", {"id": added["id"], "completed": True}))["todo"]
            assert updated["completed"] is True and updated["title"] == "Written by the Python SDK"
            assert structured(await session.call_tool("delete-todo", {"id": added["id"]})) == {"deleted": True, "id": added["id"]}
            missing = await session.call_tool("delete-todo", {"id": added["id"]})
            assert missing.is_error and "No such todo" in missing.content[0].text

            # The client was dynamically registered as a public client and holds gateway tokens, never upstream ones.
            assert connection.storage.client_info.token_endpoint_auth_method == "none"
            assert connection.storage.tokens.access_token.startswith("mcpgw_at_")
            assert connection.storage.tokens.refresh_token.startswith("mcpgw_rt_")
            consent = [page for page in connection.browser.pages if "Allow" in page.text]
            assert consent and "Interop test (Python SDK)" in consent[0].text

    anyio.run(run)


def test_bob_gets_insufficient_scope_on_billing(stack: Stack):
    async def run():
        async with connect(stack, "bob") as connection:
            me = structured(await connection.session.call_tool("whoami", {}))
            assert set(me["scopes"]) == {"offline_access", "read:todos"}
            assert structured(await connection.session.call_tool("list-todos", {}))["todos"][0]["owner"] == "auth0|bob"
            with pytest.raises(MCPError):
                await connection.session.call_tool("list-billing", {})
            token = connection.storage.tokens.access_token
        # The same refusal as seen on the wire (a stateless 2026-07-28 request): 403 with a step-up challenge, and
        # a JSON-RPC error with the request's id for clients that do not step up.
        meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}
        response = httpx.post(stack.mcp_url, headers={
            "Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "list-billing",
        }, json={"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                 "params": {"name": "list-billing", "arguments": {}, "_meta": meta}})
        assert response.status_code == 403
        challenge = response.headers["www-authenticate"]
        assert 'error="insufficient_scope"' in challenge and "read:billing" in challenge
        assert "resource_metadata=" in challenge
        body = response.json()
        assert body["id"] == 9 and "read:billing" in body["error"]["message"]

    anyio.run(run)


def test_the_client_refreshes_after_access_token_expiry_and_the_upstream_token_is_refreshed(stack: Stack):
    async def run():
        async with connect(stack, "alice") as connection:
            first = connection.storage.tokens
            structured(await connection.session.call_tool("list-todos", {}))
            # Gateway access tokens live 3 s; DevIdP's 64 s, so after 4 s the upstream one is inside the refresh margin.
            await anyio.sleep(4.5)
            structured(await connection.session.call_tool("list-todos", {}))
            assert connection.storage.tokens.access_token != first.access_token
            assert connection.storage.tokens.refresh_token != first.refresh_token
            assert connection.authorizations == 1  # refreshed, not signed in again

    anyio.run(run)
    idp_log = stack.services[0].output()
    assert idp_log.count("POST /oauth/token 200") >= 2  # the code exchange, then at least one upstream refresh


def test_revocation_ends_access(stack: Stack):
    async def run():
        async with connect(stack, "alice") as connection:
            tokens = connection.storage.tokens
            client_id = connection.storage.client_info.client_id
        revoke = httpx.post(f"{stack.gateway_url}/revoke", data={"token": tokens.refresh_token, "client_id": client_id})
        assert revoke.status_code == 200
        response = httpx.post(stack.mcp_url, headers={"Authorization": f"Bearer {tokens.access_token}"},
                              json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
        refresh = httpx.post(f"{stack.gateway_url}/token", data={
            "grant_type": "refresh_token", "refresh_token": tokens.refresh_token, "client_id": client_id})
        assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"

    anyio.run(run)


def test_hostile_requests_get_oauth_errors_not_500s(stack: Stack):
    base = stack.gateway_url
    cases = [
        ("POST", "/register", {"content": b"{", "headers": {"content-type": "application/json"}}, 400),
        ("POST", "/register", {"json": {"redirect_uris": ["javascript:alert(1)"]}}, 400),
        ("GET", "/authorize?client_id=%00&redirect_uri=javascript:alert(1)", {}, 400),
        ("GET", "/authorize?" + "a=" + "x" * 6000, {}, 400),
        ("POST", "/token", {"data": {"grant_type": "authorization_code", "code": "' OR 1=1 --"}}, 401),
        ("POST", "/token", {"content": b"\xff\xfe", "headers": {"content-type": "application/x-www-form-urlencoded"}}, 401),
        ("POST", "/revoke", {"data": {"token": "x"}}, 401),
        ("GET", "/callback?state=%ZZ&code=1", {}, 400),
        ("POST", "/mcp", {"content": b"[]", "headers": {"Authorization": "Bearer mcpgw_at_x"}}, 401),
        ("DELETE", "/mcp", {"headers": {"Authorization": "Bearer " + "A" * 20000}}, 401),
    ]
    for method, path, options, status in cases:
        response = httpx.request(method, base + path, timeout=10, **options)
        assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text[:200]}"
        assert "location" not in response.headers, f"{method} {path} redirected"


def test_the_get_stream_and_session_end(stack: Stack):
    from gateway_stack import open_session, sign_in

    tokens = sign_in(stack.gateway_url)
    session = open_session(stack.mcp_url, tokens["access_token"])
    headers = {"Authorization": f"Bearer {tokens['access_token']}", "Mcp-Session-Id": session,
               "Mcp-Protocol-Version": "2025-11-25", "Accept": "text/event-stream"}
    with httpx.stream("GET", stack.mcp_url, headers=headers, timeout=10) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        first = next(stream.iter_lines())
        assert first.startswith("id: ")  # the priming event of a resumable stream
    # Only one standalone stream per session; ending the session ends it for good.
    deleted = httpx.delete(stack.mcp_url, headers=headers)
    assert deleted.status_code == 200
    assert httpx.post(stack.mcp_url, headers={**headers, "Accept": "application/json, text/event-stream"},
                      json={"jsonrpc": "2.0", "id": 3, "method": "tools/list"}).status_code == 404
