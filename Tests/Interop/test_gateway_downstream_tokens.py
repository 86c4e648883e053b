"""No token passthrough, with providers whose tokens TodosAPI cannot use: the gateway signs users in with a Google-like
provider of opaque access tokens, and with an Okta-like one whose JWTs name the client as audience and carry no scope
(both from standin_providers), and its tools reach TodosAPI with short-lived tokens the gateway signs itself. What
TodosAPI receives is checked independently: a stand-in API records it, and PyJWT verifies it against the gateway's
published keys. `DOWNSTREAM_TOKENS=exchange` is tried against DevIdP, which exchanges tokens as RFC 8693 says."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anyio
import httpx2 as httpx
import jwt
import pytest
from mcp.shared.exceptions import MCPError

from gateway_stack import GATEWAY_CLIENT_ID, GATEWAY_CLIENT_SECRET, Stack, connect, start_stack
from standin_providers import NoScopeJWTProvider, OpaqueTokenProvider
from support import free_port

API_SCOPES = "read:todos write:todos read:billing"


class RecordingAPI:
    """Stands in for TodosAPI: answers `GET /api/todos` with an empty list and keeps the Authorization headers."""

    def __init__(self) -> None:
        self.authorizations: list[str | None] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                owner.authorizations.append(self.headers.get("Authorization"))
                body = json.dumps({"todos": []}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def provider_for_gateway(kind, gateway_port: int, **options):
    return kind(clients=[{
        "client_id": GATEWAY_CLIENT_ID, "client_secret": GATEWAY_CLIENT_SECRET,
        "redirect_uris": [f"http://127.0.0.1:{gateway_port}/callback"],
    }], **options).start()


def start_with(provider_kind, api_env: dict | None = None, gateway_env: dict | None = None, **options):
    port = free_port()
    provider = provider_for_gateway(provider_kind, port, **options)
    try:
        stack = start_stack(
            "given", provider_issuer=provider.issuer, gateway_port=port,
            gateway_env={"GRANTED_SCOPES": API_SCOPES, **(gateway_env or {})},
            api_env={"GATEWAY_ISSUER": "{gateway_url}", **(api_env or {})})
    except Exception:
        provider.stop()
        raise
    return provider, stack


def use_the_tools(stack: Stack, username: str = "alice") -> dict:
    async def run():
        async with connect(stack, username) as connection:
            session = connection.session
            me = (await session.call_tool("whoami", {})).structured_content
            added = await session.call_tool("add-todo", {"title": f"for {username}"})
            assert not added.is_error, added.content
            todos = await session.call_tool("list-todos", {})
            assert not todos.is_error, todos.content
            titles = [todo["title"] for todo in todos.structured_content["todos"]]
            assert f"for {username}" in titles
            assert all(todo["owner"] == me["sub"] for todo in todos.structured_content["todos"])
            return me, connection.storage.tokens.access_token

    return anyio.run(run)


def provider_access_token(provider, username: str) -> str:
    """An access token of the provider for `username`, by a code flow of our own as the gateway's client."""
    import secrets

    from standin_providers import pkce_challenge
    from headless_browser import HeadlessBrowser

    verifier = secrets.token_urlsafe(48)
    redirect = provider.clients[GATEWAY_CLIENT_ID]["redirect_uris"][0]
    url = httpx.URL(f"{provider.issuer}/authorize", params={
        "response_type": "code", "client_id": GATEWAY_CLIENT_ID, "redirect_uri": redirect, "scope": "openid",
        "state": "s", "nonce": "n", "code_challenge": pkce_challenge(verifier), "code_challenge_method": "S256"})
    query = HeadlessBrowser(username=username, password=f"{username}-password").authorize(str(url), redirect)
    reply = httpx.post(f"{provider.issuer}/token", auth=(GATEWAY_CLIENT_ID, GATEWAY_CLIENT_SECRET), data={
        "grant_type": "authorization_code", "code": query["code"], "redirect_uri": redirect,
        "code_verifier": verifier})
    assert reply.status_code == 200, reply.text
    return reply.json()["access_token"]


def test_a_provider_of_opaque_access_tokens_like_google():
    # Google's quirks: no refresh token, and offline_access refused.
    provider, stack = start_with(
        OpaqueTokenProvider, gateway_env={"OIDC_SCOPE": "openid email profile"},
        refresh_tokens=False, rejected_scopes=("offline_access",))
    try:
        me, gateway_token = use_the_tools(stack)
        assert me["sub"] == "opaque|alice"
        # What TodosAPI was given is not the provider's token: TodosAPI could not have checked that one.
        issued = [request.params for request in provider.received("/token")]
        assert issued and all(params["grant_type"] == "authorization_code" for params in issued)
        for token in [gateway_token, provider_access_token(provider, "alice")]:
            refused = httpx.get(f"{stack.api_url}/api/todos", headers={"Authorization": f"Bearer {token}"})
            assert refused.status_code == 401
    finally:
        stack.stop()
        provider.stop()


def test_a_provider_whose_jwts_carry_no_scope_and_name_the_client_as_audience():
    provider, stack = start_with(NoScopeJWTProvider)
    try:
        me, _ = use_the_tools(stack, "bob")
        assert me["sub"] == "opaque|bob"
        # The provider's own access token is of no use at TodosAPI: its audience is the gateway's client id.
        provider_token = provider_access_token(provider, "bob")
        assert "scope" not in jwt.decode(provider_token, options={"verify_signature": False})
        refused = httpx.get(f"{stack.api_url}/api/todos", headers={"Authorization": f"Bearer {provider_token}"})
        assert refused.status_code == 401
    finally:
        stack.stop()
        provider.stop()


def test_what_todos_api_receives_is_a_short_lived_token_signed_by_the_gateway():
    api = RecordingAPI()
    provider, stack = start_with(OpaqueTokenProvider, gateway_env={"API_BASE_URL": api.url})
    try:
        async def run():
            async with connect(stack, "alice", scope="read:todos write:todos") as connection:
                result = await connection.session.call_tool("list-todos", {})
                assert not result.is_error, result.content
                return connection.storage.client_info.client_id, connection.storage.tokens.access_token

        client_id, gateway_token = anyio.run(run)
        header = api.authorizations[-1]
        assert header and header.startswith("Bearer ")
        token = header.removeprefix("Bearer ")
        assert token != gateway_token
        assert jwt.get_unverified_header(token)["typ"] == "at+jwt"
        keys = jwt.PyJWKClient(f"{stack.gateway_url}/.well-known/jwks.json")
        claims = jwt.decode(token, keys.get_signing_key_from_jwt(token).key, algorithms=["RS256"],
                            audience="urn:todos-api", issuer=stack.gateway_url,
                            options={"require": ["exp", "iat", "sub", "jti"]})
        assert claims["sub"] == "opaque|alice"
        # Only what the call needs: list-todos reads, so write:todos, though granted, is not in it.
        assert claims["scope"] == "read:todos"
        assert claims["client_id"] == client_id and claims["act"] == {"sub": client_id}
        assert 0 < claims["exp"] - claims["iat"] <= 300
        assert abs(claims["iat"] - time.time()) < 60
        # The same token does nothing at an API of another audience, and the gateway's keys sign nothing else.
        with pytest.raises(jwt.InvalidAudienceError):
            jwt.decode(token, keys.get_signing_key_from_jwt(token).key, algorithms=["RS256"], audience="urn:other")
        jwks = httpx.get(f"{stack.gateway_url}/.well-known/jwks.json")
        assert jwks.headers["content-type"] == "application/jwk-set+json"
        assert all("d" not in key and key["alg"] == "RS256" for key in jwks.json()["keys"])
    finally:
        stack.stop()
        provider.stop()
        api.stop()


def test_token_exchange_at_the_provider():
    """DOWNSTREAM_TOKENS=exchange: the sign-in's tokens are for an audience TodosAPI does not accept, so every tool
    call that works proves the exchange at DevIdP gave a token for TodosAPI's."""
    stack = start_stack(
        "devidp",
        gateway_env={"DOWNSTREAM_TOKENS": "exchange", "AUTH0_AUDIENCE": "urn:sign-in-only",
                     "DOWNSTREAM_AUDIENCE": "urn:todos-api"},
        devidp_env={"AUTH0_AUDIENCE": "urn:sign-in-only,urn:todos-api"},
        api_env={"AUTH0_AUDIENCE": "urn:todos-api"})
    try:
        me, _ = use_the_tools(stack, "alice")
        assert me["sub"] == "auth0|alice"
        # Nothing widens what the sign-in granted: bob has no read:billing at DevIdP.

        async def bob():
            async with connect(stack, "bob", scope="read:todos read:billing") as connection:
                todos = await connection.session.call_tool("list-todos", {})
                assert not todos.is_error, todos.content
                with pytest.raises(MCPError):
                    await connection.session.call_tool("list-billing", {})

        anyio.run(bob)
    finally:
        stack.stop()
