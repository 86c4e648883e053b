"""AUTH_MODE=access: the gateway behind a Cloudflare Access self-hosted application. Access itself is played by the
test: it signs assertions with PyJWT under a key published at a test team domain's /cdn-cgi/access/certs, and adds
them to requests as Access would (Cf-Access-Jwt-Assertion). The official Python MCP SDK connects with that header
and no OAuth at all. The tools never forward the assertion: they reach TodosAPI with short-lived tokens the gateway
signs for the user, with ACCESS_SCOPES, and TodosAPI trusts the gateway (GATEWAY_ISSUER) for its own audience."""

import time

import anyio
import httpx2 as httpx
import pytest
from mcp.client.session import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from gateway_stack import Stack, start_stack
from support import JWKSServer, SigningKey

GATEWAY_AUD = "0f6b3c1c5f0c4e4d9a7f6c2a1b3d5e7f0f6b3c1c5f0c4e4d9a7f6c2a1b3d5e7f"


@pytest.fixture(scope="module")
def access():
    server = JWKSServer()
    key = SigningKey("access-key-1")
    # The shape of Access's certs document: a JWK set, plus the certificates in PEM.
    server.document = {"keys": [key.public_jwk()], "public_cert": {"kid": key.kid, "cert": "..."}, "public_certs": []}
    yield server, key
    server.shutdown()


@pytest.fixture(scope="module")
def stack(access):
    server, _ = access
    stack = start_stack(
        "devidp",
        gateway_env={"AUTH_MODE": "access", "TEAM_DOMAIN": server.base_url, "POLICY_AUD": GATEWAY_AUD},
        api_env={"GATEWAY_ISSUER": "{gateway_url}"},
    )
    yield stack
    stack.stop()


def assertion(access, **changes) -> str:
    server, key = access
    now = int(time.time())
    claims = {
        "aud": [GATEWAY_AUD], "email": "erin@example.com", "exp": now + 600, "iat": now, "nbf": now,
        "iss": server.base_url, "type": "app", "identity_nonce": "6ei69kawdKzMIAPF",
        "sub": "7335d417-61da-459d-899c-0a01c76a2f94", "country": "US",
    }
    claims.update(changes)
    return key.sign({name: value for name, value in claims.items() if value is not None})


def ping(stack: Stack, headers: dict) -> httpx.Response:
    return httpx.post(stack.mcp_url, headers={"Accept": "application/json, text/event-stream", **headers},
                      json={"jsonrpc": "2.0", "id": 1, "method": "ping"})


def test_the_python_sdk_behind_access(stack: Stack, access):
    async def run():
        headers = {"Cf-Access-Jwt-Assertion": assertion(access)}
        async with httpx.AsyncClient(headers=headers, timeout=30) as http:
            async with streamable_http_client(stack.mcp_url, http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    me = (await session.call_tool("whoami", {})).structured_content
                    assert me["sub"] == "7335d417-61da-459d-899c-0a01c76a2f94"
                    assert me["email"] == "erin@example.com"
                    added = await session.call_tool("add-todo", {"title": "Behind Cloudflare Access"})
                    assert not added.is_error, added.content
                    todos = (await session.call_tool("list-todos", {})).structured_content["todos"]
                    # TodosAPI saw the same user: the gateway's token named them.
                    assert all(todo["owner"] == me["sub"] for todo in todos)
                    assert added.structured_content["todo"]["id"] in {todo["id"] for todo in todos}

    anyio.run(run)


def test_the_legacy_sse_client_behind_access(stack: Stack, access):
    async def run():
        headers = {"Cf-Access-Jwt-Assertion": assertion(access, sub="sse-user", email="sse@example.com")}
        async with sse_client(stack.sse_url, headers=headers) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                me = (await session.call_tool("whoami", {})).structured_content
                assert me["sub"] == "sse-user"

    anyio.run(run)


def test_missing_and_invalid_assertions(stack: Stack, access):
    server, _ = access
    missing = ping(stack, {})
    assert missing.status_code == 401
    assert missing.json()["error"] == "unauthorized"
    now = int(time.time())
    invalid = {
        "expired": assertion(access, exp=now - 120, iat=now - 900, nbf=now - 900),
        "wrong audience": assertion(access, aud=["another-application"]),
        "wrong issuer": assertion(access, iss="https://evil.cloudflareaccess.com"),
        "unknown key": SigningKey("access-key-1").sign({"aud": [GATEWAY_AUD], "iss": server.base_url,
                                                         "sub": "x", "exp": now + 600}),
        "not a JWT": "this-is-not-a-jwt",
    }
    for name, value in invalid.items():
        response = ping(stack, {"Cf-Access-Jwt-Assertion": value})
        assert response.status_code == 403, name
        assert response.json()["error"] == "forbidden", name
    # A bearer token is no way around Access.
    assert ping(stack, {"Authorization": f"Bearer {assertion(access)}"}).status_code == 401
    # And there is no OAuth to discover.
    assert httpx.get(f"{stack.gateway_url}/.well-known/oauth-protected-resource/mcp").status_code == 404


def test_the_assertion_is_no_key_to_todos_api(stack: Stack, access):
    """The gateway's Access assertion is for the gateway: TodosAPI takes it neither as a linked app token nor as a
    bearer token."""
    for headers in [{"Cf-Access-Token": assertion(access)}, {"Cf-Access-Jwt-Assertion": assertion(access)},
                    {"Authorization": f"Bearer {assertion(access)}"}]:
        response = httpx.get(f"{stack.api_url}/api/todos", headers=headers)
        assert response.status_code == 401, (headers.keys(), response.text)
