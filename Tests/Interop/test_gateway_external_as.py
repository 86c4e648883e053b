"""AUTH_MODE=external, the set-up of the Zuplo + Auth0 guide: MCP clients register and sign in with another
authorization server (nanoidp here, written independently of this project), and the gateway is only a resource
server. The official Python MCP SDK discovers nanoidp from the gateway's protected resource metadata, registers
there dynamically, gets a JWT access token whose audience is the gateway's /mcp URL, and calls the tools. The tools
never forward that token (token passthrough): they reach TodosAPI with short-lived tokens the gateway signs, and
TodosAPI trusts the gateway (GATEWAY_ISSUER) beside nanoidp, for its own audience only."""

import time

import anyio
import httpx2 as httpx
import jwt
import pytest
from mcp.shared.exceptions import MCPError

from gateway_stack import GATEWAY_CLIENT_ID, GATEWAY_CLIENT_SECRET, Stack, connect, start_stack
from support import SigningKey


@pytest.fixture(scope="module")
def stack():
    stack = start_stack(
        "nanoidp",
        nanoidp_options={"dynamic_registration": True},
        gateway_env={"AUTH_MODE": "external"},
        api_env={"GATEWAY_ISSUER": "{gateway_url}"},
    )
    yield stack
    stack.stop()


def test_the_gateway_names_the_external_authorization_server(stack: Stack):
    metadata = httpx.get(f"{stack.gateway_url}/.well-known/oauth-protected-resource/mcp").json()
    assert metadata["resource"] == stack.mcp_url
    assert metadata["authorization_servers"] == [stack.idp_issuer]
    # The gateway runs no authorization server of its own.
    for path in ["/.well-known/oauth-authorization-server", "/authorize", "/token", "/register", "/revoke", "/callback"]:
        response = httpx.request("POST" if path in ("/token", "/register", "/revoke") else "GET",
                                 stack.gateway_url + path)
        assert response.status_code == 404, path


def test_python_sdk_signs_in_with_the_external_server_and_calls_tools(stack: Stack):
    async def run():
        async with connect(stack, "alice") as connection:
            session = connection.session
            token = connection.storage.tokens.access_token
            claims = jwt.decode(token, options={"verify_signature": False})
            me = (await session.call_tool("whoami", {})).structured_content
            assert me["sub"] == "alice"
            # The tools see exactly the scopes of nanoidp's token (the SDK asked for those of the 401 challenge).
            assert set(me["scopes"]) == set(claims["scope"].split())
            assert {"read:todos", "write:todos", "read:billing"} <= set(me["scopes"])
            todos = await session.call_tool("list-todos", {})
            assert not todos.is_error, todos.content
            assert all(todo["owner"] == "alice" for todo in todos.structured_content["todos"])
            added = await session.call_tool("add-todo", {"title": "Through an external authorization server"})
            assert not added.is_error, added.content
            billing = await session.call_tool("list-billing", {})
            assert not billing.is_error, billing.content
            # The token came from nanoidp, not from the gateway, and is bound to the gateway's /mcp URL.
            assert claims["iss"] == stack.idp_issuer
            assert stack.mcp_url in ([claims["aud"]] if isinstance(claims["aud"], str) else claims["aud"])
            assert any("transaction_id" in page.text for page in connection.browser.pages)
            # TodosAPI does not take the client's own token: it is for the gateway, not for the API.
            direct = httpx.get(f"{stack.api_url}/api/todos", headers={"Authorization": f"Bearer {token}"})
            assert direct.status_code == 401, direct.text
            assert "audience" in direct.headers["www-authenticate"]

    anyio.run(run)


def test_forged_and_misdirected_tokens_are_refused(stack: Stack):
    jwks_uri = httpx.get(f"{stack.idp_issuer}/.well-known/openid-configuration").json()["jwks_uri"]
    kid = httpx.get(jwks_uri).json()["keys"][0]["kid"]
    rogue = SigningKey(kid)  # a key of our own under nanoidp's key id
    now = int(time.time())
    claims = {"iss": stack.idp_issuer, "aud": stack.mcp_url, "sub": "alice", "iat": now, "exp": now + 300,
              "scope": "read:todos"}
    for token in [
        rogue.sign(claims),
        rogue.sign({**claims, "iss": "http://127.0.0.1:1"}),
        jwt.encode(claims, "a-shared-secret-nobody-should-accept!", algorithm="HS256", headers={"kid": kid}),
    ]:
        response = httpx.post(stack.mcp_url, headers={"Authorization": f"Bearer {token}"},
                              json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
        assert response.headers["www-authenticate"].endswith(
            f'resource_metadata="{stack.gateway_url}/.well-known/oauth-protected-resource/mcp"')


def test_a_token_nanoidp_issued_for_todos_api_is_not_a_gateway_token(stack: Stack):
    # Without `resource`, nanoidp issues tokens for its default audience, urn:todos-api: valid at TodosAPI, and
    # exactly what the gateway must not accept (RFC 8707: a token is for one resource).
    reply = httpx.post(f"{stack.idp_issuer}/token", auth=(GATEWAY_CLIENT_ID, GATEWAY_CLIENT_SECRET), data={
        "grant_type": "client_credentials", "scope": "read:todos",
    })
    assert reply.status_code == 200, reply.text
    token = reply.json()["access_token"]
    assert jwt.decode(token, options={"verify_signature": False})["aud"] in ("urn:todos-api", ["urn:todos-api"])
    assert httpx.get(f"{stack.api_url}/api/todos", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    response = httpx.post(stack.mcp_url, headers={"Authorization": f"Bearer {token}"},
                          json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert "audience" in response.headers["www-authenticate"]


def test_devidp_as_the_external_server_as_docs_describe():
    """The local recipe of docs/external-authorization-server.md: DevIdP plays an Auth0 tenant whose default audience
    is the MCP endpoint, TodosAPI trusts DevIdP and the gateway for its own audience only, and the Python SDK
    registers and signs in at DevIdP."""
    stack = start_stack(
        "devidp", gateway_env={"AUTH_MODE": "external", "DOWNSTREAM_AUDIENCE": "urn:todos-api"},
        devidp_env={"AUTH0_AUDIENCE": "{gateway_url}/mcp,urn:todos-api"},
        api_env={"AUTH0_AUDIENCE": "urn:todos-api", "GATEWAY_ISSUER": "{gateway_url}"})
    try:
        metadata = httpx.get(f"{stack.gateway_url}/.well-known/oauth-protected-resource/mcp").json()
        assert metadata["authorization_servers"] == [stack.idp_issuer]

        async def run():
            async with connect(stack, "bob") as connection:
                me = (await connection.session.call_tool("whoami", {})).structured_content
                assert me["sub"] == "auth0|bob"
                assert "read:billing" not in me["scopes"]
                todos = await connection.session.call_tool("list-todos", {})
                assert not todos.is_error, todos.content
                assert all(todo["owner"] == "auth0|bob" for todo in todos.structured_content["todos"])
                with pytest.raises(MCPError):  # 403 insufficient_scope: DevIdP does not grant bob read:billing
                    await connection.session.call_tool("list-billing", {})
                token = connection.storage.tokens.access_token
                claims = jwt.decode(token, options={"verify_signature": False})
                assert claims["aud"] == stack.mcp_url or stack.mcp_url in claims["aud"]
                direct = httpx.get(f"{stack.api_url}/api/todos", headers={"Authorization": f"Bearer {token}"})
                assert direct.status_code == 401

        anyio.run(run)
    finally:
        stack.stop()
