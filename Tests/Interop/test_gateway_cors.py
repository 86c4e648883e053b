"""CORS as MCP Inspector's Direct mode exercises it from http://localhost:6274: the requests a browser makes, in the
order it makes them, with the preflights it sends first and the response headers the page must be able to read."""

import base64
import hashlib
import secrets

import httpx2 as httpx
import pytest

from gateway_stack import Stack, start_stack
from headless_browser import HeadlessBrowser

INSPECTOR = "http://localhost:6274"
ALLOW_HEADERS = "Authorization, Content-Type, Accept, Mcp-Session-Id, Mcp-Protocol-Version, Last-Event-ID, DPoP"
EXPOSE_HEADERS = "Mcp-Session-Id, Mcp-Protocol-Version, WWW-Authenticate, DPoP-Nonce"


@pytest.fixture(scope="module")
def stack():
    stack = start_stack("devidp")
    yield stack
    stack.stop()


def preflight(url: str, method: str, headers: str, origin: str = INSPECTOR) -> httpx.Response:
    return httpx.options(url, headers={
        "Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers,
    })


def assert_readable(response: httpx.Response, origin: str = INSPECTOR) -> None:
    """What a browser checks before it lets the page see a response."""
    assert response.headers.get("access-control-allow-origin") == origin
    assert response.headers.get("access-control-expose-headers") == EXPOSE_HEADERS
    assert "access-control-allow-credentials" not in response.headers


def test_inspector_direct_mode_from_the_browser(stack: Stack):
    origin = {"Origin": INSPECTOR}

    # 1. The first MCP request, without a token: preflight, then a 401 whose challenge the page can read.
    answer = preflight(stack.mcp_url, "POST", "content-type,accept,mcp-protocol-version")
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == INSPECTOR
    assert answer.headers["access-control-allow-methods"] == "GET, POST, DELETE, OPTIONS"
    assert answer.headers["access-control-allow-headers"] == ALLOW_HEADERS
    unauthorized = httpx.post(stack.mcp_url, headers={**origin, "Accept": "application/json, text/event-stream"},
                              json={"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {}})
    assert unauthorized.status_code == 401
    assert_readable(unauthorized)
    metadata_url = unauthorized.headers["www-authenticate"].split('resource_metadata="')[1].rstrip('"')

    # 2. Discovery: public documents, readable from any origin.
    answer = preflight(metadata_url, "GET", "mcp-protocol-version")
    assert answer.status_code == 204 and answer.headers["access-control-allow-origin"] == "*"
    resource = httpx.get(metadata_url, headers={**origin, "MCP-Protocol-Version": "2025-11-25"})
    assert resource.status_code == 200 and resource.headers["access-control-allow-origin"] == "*"
    issuer = resource.json()["authorization_servers"][0]
    server = httpx.get(issuer + "/.well-known/oauth-authorization-server", headers=origin)
    assert server.headers["access-control-allow-origin"] == "*"
    server = server.json()

    # 3. Registration with the Inspector's own callbacks, and no configuration on the gateway's side.
    answer = preflight(server["registration_endpoint"], "POST", "content-type")
    assert answer.status_code == 204
    registered = httpx.post(server["registration_endpoint"], headers=origin, json={
        "client_name": "MCP Inspector", "token_endpoint_auth_method": "none",
        "redirect_uris": [f"{INSPECTOR}/oauth/callback", f"{INSPECTOR}/oauth/callback/debug"],
        "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
    })
    assert registered.status_code == 201
    assert_readable(registered)
    client_id = registered.json()["client_id"]

    # 4. The user signs in in a browser tab (a navigation: no CORS), and comes back to the debug callback.
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    callback = f"{INSPECTOR}/oauth/callback/debug"
    query = HeadlessBrowser(username="alice", password="alice-password").authorize(
        str(httpx.URL(server["authorization_endpoint"], params={
            "response_type": "code", "client_id": client_id, "redirect_uri": callback, "state": "inspector",
            "code_challenge": challenge, "code_challenge_method": "S256", "resource": stack.mcp_url,
        })), callback)
    assert query["state"] == "inspector"

    # 5. The token request: a form POST is a simple request, but the answer must still be readable.
    tokens = httpx.post(server["token_endpoint"], headers=origin, data={
        "grant_type": "authorization_code", "code": query["code"], "client_id": client_id,
        "redirect_uri": callback, "code_verifier": verifier, "resource": stack.mcp_url,
    })
    assert tokens.status_code == 200
    assert_readable(tokens)
    token = tokens.json()["access_token"]

    # 6. MCP with the token: the preflight names Authorization; the session id must be readable.
    answer = preflight(stack.mcp_url, "POST", "authorization,content-type,accept,mcp-protocol-version")
    assert answer.status_code == 204
    headers = {**origin, "Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"}
    initialized = httpx.post(stack.mcp_url, headers=headers, json={
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "inspector", "version": "1"}},
    })
    assert initialized.status_code == 200
    assert_readable(initialized)
    session = initialized.headers["mcp-session-id"]

    # 7. Ending the session: DELETE is preflighted with the session header.
    answer = preflight(stack.mcp_url, "DELETE", "authorization,mcp-session-id,mcp-protocol-version")
    assert answer.status_code == 204
    ended = httpx.delete(stack.mcp_url, headers={**headers, "Mcp-Session-Id": session,
                                                 "MCP-Protocol-Version": "2025-11-25"})
    assert ended.status_code == 200
    assert_readable(ended)


def test_a_site_that_is_not_allowed_cannot_use_the_gateway(stack: Stack):
    evil = "https://evil.example"
    answer = preflight(stack.mcp_url, "POST", "authorization,content-type", origin=evil)
    assert answer.status_code == 403
    assert "access-control-allow-origin" not in answer.headers
    # Without a preflight (a simple request), the gateway refuses it before authentication.
    refused = httpx.post(stack.mcp_url, headers={"Origin": evil, "Content-Type": "text/plain"}, content="{}")
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers
    token = httpx.post(stack.gateway_url + "/token", headers={"Origin": evil}, data={"grant_type": "refresh_token"})
    assert "access-control-allow-origin" not in token.headers
