"""Grants without a sign-in at the gateway's `/token`: machine clients (`client_credentials`, RFC 6749 §4.4) that
authenticate with a secret or with `private_key_jwt` (RFC 7523 §2.2), and clients of enterprise identity assertions
(the JWT-bearer grant with an ID-JAG, MCP's enterprise-managed authorization). The clients are the official Python
SDK's own providers; DevIdP is the enterprise's identity provider that issues ID-JAGs by token exchange, and an
enterprise the test runs itself (a discovery document and a JWKS on loopback) signs hostile assertions with PyJWT.
Every client is registered by the operator with `McpGateway admin add-client`, as a deployment would."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import tempfile
import threading
import time
import uuid

import anyio
import httpx2 as httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from mcp.client.auth.extensions.client_credentials import (
    ClientCredentialsOAuthProvider,
    PrivateKeyJWTOAuthProvider,
    SignedJWTParameters,
)
from mcp.client.auth.extensions.identity_assertion import IdentityAssertionOAuthProvider
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from gateway_stack import MemoryStorage, Stack, start_stack
from support import BIN, DocumentServer, JWKSServer, SigningKey, free_port

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_JAG_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id-jag"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
ID_JAG_TYP = "oauth-id-jag+jwt"
ALL_SCOPES = "read:todos write:todos read:billing"

# The enterprise's AI agent at DevIdP; the gateway knows it by the same client id, with a secret of its own.
AGENT_ID = "enterprise-agent"
AGENT_SECRET = secrets.token_urlsafe(24)
# Leaves a claim (or the `typ` header) out.
DROP = object()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Enterprise:
    """An enterprise identity provider the test controls: an OpenID discovery document and a JWKS on loopback, and
    ID-JAGs signed with PyJWT, valid unless told otherwise."""

    def __init__(self, kid: str = "enterprise-1") -> None:
        self.server = DocumentServer()
        self.issuer = self.server.base_url
        self.key = SigningKey(kid)
        self.server.serve_json("/.well-known/openid-configuration", {
            "issuer": self.issuer, "jwks_uri": self.issuer + "/jwks.json", "token_endpoint": self.issuer + "/token",
            "id_token_signing_alg_values_supported": ["RS256"]})
        self.server.serve_json("/jwks.json", {"keys": [self.key.public_jwk()]})

    def claims(self, gateway_url: str, for_client: str, **changes) -> dict:
        now = int(time.time())
        claims = {
            "iss": self.issuer, "sub": "enterprise|carol", "aud": gateway_url, "client_id": for_client,
            "resource": gateway_url + "/mcp", "jti": uuid.uuid4().hex, "iat": now, "exp": now + 300,
            "email": "carol@enterprise.example", "name": "Carol Enterprise",
        }
        claims.update(changes)
        return {name: value for name, value in claims.items() if value is not DROP}

    def id_jag(self, gateway_url: str, for_client: str, key: SigningKey | None = None, typ: object = ID_JAG_TYP,
               **changes) -> str:
        """An ID-JAG for the client `for_client` at the gateway; `changes` replace claims (DROP leaves one out)."""
        headers = {"typ": None if typ is DROP else typ}
        return (key or self.key).sign(self.claims(gateway_url, for_client, **changes), headers=headers)

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="module")
def enterprise():
    enterprise = Enterprise()
    yield enterprise
    enterprise.stop()


@pytest.fixture(scope="module")
def devidp_issuer() -> str:
    return f"http://127.0.0.1:{free_port()}/"


@pytest.fixture(scope="module")
def unreachable_issuer() -> str:
    """A trusted issuer nothing answers for: its keys cannot be fetched."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="module")
def stack(enterprise, devidp_issuer, unreachable_issuer):
    """DevIdP (with the enterprise agent), TodosAPI trusting the gateway's tokens, and the gateway trusting the ID-JAGs
    of DevIdP, of the test's enterprise and of an issuer that is down."""
    port = int(devidp_issuer.rstrip("/").rsplit(":", 1)[1])
    stack = start_stack(
        "devidp", idp_port=port,
        gateway_env={"IDENTITY_ASSERTION_ISSUERS": f"{devidp_issuer},{enterprise.issuer},{unreachable_issuer}"},
        devidp_env={"DEVIDP_AGENT_CLIENT_ID": AGENT_ID, "DEVIDP_AGENT_CLIENT_SECRET": AGENT_SECRET},
        api_env={"GATEWAY_ISSUER": "{gateway_url}"})
    yield stack
    stack.stop()


# --- the operator's registrations -------------------------------------------------------------------------------


def admin(stack: Stack, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **stack.services[-1].env, "DEV_VARS_FILE": "/nonexistent"}
    return subprocess.run([str(BIN / "McpGateway"), "admin", *args], env=env, capture_output=True, text=True,
                          timeout=60, cwd=stack.services[-1].workdir)


def add_client(stack: Stack, *, grant: str = "client_credentials", auth: str = "client_secret_basic",
               scope: str = "read:todos", name: str = "machine", extra: tuple[str, ...] = ()) -> tuple[str, str | None]:
    """Registers a client with `admin add-client --json`; returns its id and its secret (None for private_key_jwt)."""
    added = admin(stack, "add-client", "--name", name, "--grant", grant, "--auth", auth, "--scope", scope, *extra,
                  "--json")
    assert added.returncode == 0, added.stderr
    document = json.loads(added.stdout)
    client = document["client"]
    assert client["authMethod"] == auth and client["name"] == name
    assert client["grantTypes"] == ["client_credentials" if grant == "client_credentials" else JWT_BEARER]
    assert set(client["scope"].split()) == set(scope.split())
    secret = document.get("clientSecret")
    assert (secret is None) == (auth == "private_key_jwt")
    return client["id"], secret


def jwks_file(*keys: SigningKey) -> str:
    path = os.path.join(tempfile.mkdtemp(prefix="jwks-"), "client.jwks.json")
    with open(path, "w") as file:
        json.dump({"keys": [key.public_jwk() for key in keys]}, file)
    return path


def private_pem(key: SigningKey) -> str:
    return key.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()).decode()


# --- requests -----------------------------------------------------------------------------------------------------


def token_request(stack: Stack, data: dict, auth: tuple[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{stack.gateway_url}/token", data=data, auth=auth)


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> dict:
    """An RFC 6749 §5.2 error: the status, the code, JSON, never cached."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == error, body
    assert "access_token" not in body
    return body


def assert_issued(response: httpx.Response, scope: str) -> dict:
    """A token response of a grant without a sign-in: an opaque gateway token, no refresh token, never cached."""
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["access_token"].startswith("mcpgw_at_")
    assert set(body["scope"].split()) == set(scope.split())
    assert "refresh_token" not in body and 0 < body["expires_in"] <= 3600
    return body


def client_assertion(key: SigningKey, client_id: str, audience: str, *, headers: dict | None = None,
                     **changes) -> str:
    """A private_key_jwt assertion (RFC 7523 §3), RS256 with the key's kid, valid unless `changes` say otherwise."""
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": audience, "exp": now + 120, "iat": now,
              "jti": uuid.uuid4().hex}
    claims.update(changes)
    claims = {name: value for name, value in claims.items() if value is not DROP}
    return key.sign(claims, headers=headers)


def assertion_form(assertion: str, **extra: str) -> dict:
    return {"grant_type": "client_credentials", "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": assertion, **extra}


def unsigned(header: dict, claims: dict) -> str:
    """`alg: none`: no signature at all."""
    return b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode()) + "."


def hmac_signed(secret: bytes, header: dict, claims: dict) -> str:
    """HS256 with a key everyone has (the client's public key): the algorithm confusion attack."""
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    return signing_input + "." + b64url(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())


# --- MCP sessions -------------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def mcp_session(url: str, auth: httpx.Auth | None = None, token: str | None = None):
    """An initialized `ClientSession` on `url`, authenticated by an SDK provider (`auth`) or a bearer `token`."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with contextlib.AsyncExitStack() as exits:
        http = await exits.enter_async_context(httpx.AsyncClient(auth=auth, headers=headers, timeout=30))
        read, write = await exits.enter_async_context(streamable_http_client(url, http_client=http))
        session = await exits.enter_async_context(ClientSession(read, write))
        await session.initialize()
        yield session


def initialize(stack: Stack, token: str) -> httpx.Response:
    """A plain `initialize` request to /mcp with `token`."""
    return httpx.post(stack.mcp_url, headers={"Accept": "application/json, text/event-stream",
                                              "Authorization": f"Bearer {token}"}, json={
        "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}})


def leaves(error: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaves(inner)]
    return [error]


def structured(result) -> dict:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def check_machine_session(session: ClientSession, client_id: str, scope: str) -> None:
    """What a machine client can do: list the tools, ask who it is (itself, no user), and nothing with a user's
    todos, each refused as a tool error that says why."""
    tools = {tool.name for tool in (await session.list_tools()).tools}
    assert {"whoami", "list-todos"} <= tools
    me = structured(await session.call_tool("whoami", {}))
    assert me["sub"] == client_id and me["client_id"] == client_id
    assert me["name"] is None and me["email"] is None
    assert set(me["scopes"]) == set(scope.split())
    assert me.get("machine_client") is True, me
    todos = await session.call_tool("list-todos", {})
    assert todos.is_error, todos.content
    text = todos.content[0].text
    assert "machine client" in text and "no user" in text, text


# === 1. The Python SDK's machine clients ==========================================================================


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_sdk_client_credentials_provider(stack: Stack, method: str):
    client_id, secret = add_client(stack, auth=method, scope="read:todos", name=f"SDK {method}")
    storage = MemoryStorage()
    provider = ClientCredentialsOAuthProvider(stack.mcp_url, storage, client_id, secret, method,
                                              issuer=stack.gateway_url)

    async def run():
        async with mcp_session(stack.mcp_url, provider) as session:
            await check_machine_session(session, client_id, "read:todos")

    anyio.run(run)
    assert storage.tokens.access_token.startswith("mcpgw_at_") and storage.tokens.refresh_token is None


def test_sdk_private_key_jwt_provider_with_a_jwks_file(stack: Stack):
    """`SignedJWTParameters.create_assertion_provider()` as the SDK ships it: RS256, `iss`/`sub` the client id, `aud`
    the issuer, a `jti`, and no `kid` in the header (the client registered one key)."""
    key = SigningKey("sdk-client-1")
    client_id, _ = add_client(stack, auth="private_key_jwt", scope="read:todos write:todos",
                              name="SDK private_key_jwt", extra=("--jwks-file", jwks_file(key)))
    assertions = SignedJWTParameters(issuer=client_id, subject=client_id, signing_key=private_pem(key))
    provider = PrivateKeyJWTOAuthProvider(stack.mcp_url, MemoryStorage(), client_id,
                                          assertions.create_assertion_provider(), issuer=stack.gateway_url)

    async def run():
        async with mcp_session(stack.mcp_url, provider) as session:
            await check_machine_session(session, client_id, "read:todos write:todos")

    anyio.run(run)


def test_sdk_private_key_jwt_provider_with_a_jwks_uri_and_key_ids(stack: Stack):
    """The client's keys at a `jwks_uri`, and assertions that name their key: a rotated key is fetched when first
    used."""
    keys = JWKSServer()
    try:
        first, second = SigningKey("rotating-1"), SigningKey("rotating-2")
        keys.publish(first)
        client_id, _ = add_client(stack, auth="private_key_jwt", scope="read:todos",
                                  name="SDK private_key_jwt (jwks_uri)", extra=("--jwks-uri", keys.url))
        current = {"key": first}
        audiences: list[str] = []

        async def assertion_provider(audience: str) -> str:
            audiences.append(audience)
            return client_assertion(current["key"], client_id, audience)

        async def run():
            provider = PrivateKeyJWTOAuthProvider(stack.mcp_url, MemoryStorage(), client_id, assertion_provider,
                                                  issuer=stack.gateway_url)
            async with mcp_session(stack.mcp_url, provider) as session:
                await check_machine_session(session, client_id, "read:todos")

        anyio.run(run)
        assert audiences == [stack.gateway_url]
        assert keys.fetches >= 1

        # The client rotates its key: the gateway fetches the JWK Set again for the new kid.
        keys.publish(first, second)
        current["key"] = second
        time.sleep(5.5)  # JWKSCache refetches for an unknown kid at most every 5 s
        anyio.run(run)
    finally:
        keys.shutdown()


def test_machine_client_tools_with_a_token_of_its_own(stack: Stack):
    """The tools as a machine client sees them, whatever the SDK's flow: a token by a plain client_credentials
    request."""
    client_id, secret = add_client(stack, scope="read:todos read:billing")
    issued = assert_issued(token_request(stack, {"grant_type": "client_credentials"}, auth=(client_id, secret)),
                           "read:todos read:billing")

    async def run():
        async with mcp_session(stack.mcp_url, token=issued["access_token"]) as session:
            await check_machine_session(session, client_id, "read:todos read:billing")
            billing = await session.call_tool("list-billing", {})
            assert billing.is_error and "machine client" in billing.content[0].text
            # write:todos was not granted (and there is no user anyway): refused before the tool runs.
            with pytest.raises(MCPError, match="write:todos"):
                await session.call_tool("add-todo", {"title": "by a machine"})

    anyio.run(run)


def test_client_credentials_scope_rules(stack: Stack):
    client_id, secret = add_client(stack, scope="read:todos write:todos")
    everything = token_request(stack, {"grant_type": "client_credentials"}, auth=(client_id, secret))
    assert_issued(everything, "read:todos write:todos")
    narrowed = token_request(stack, {"grant_type": "client_credentials", "scope": "read:todos",
                                     "resource": stack.mcp_url}, auth=(client_id, secret))
    assert_issued(narrowed, "read:todos")
    # RFC 6749 §3.3: what was asked for within what the client may have (the SDK asks for a challenge's scope,
    # offline_access included); refused only when nothing is left.
    wider = token_request(stack, {"grant_type": "client_credentials", "scope": "read:todos read:billing offline_access"},
                          auth=(client_id, secret))
    assert_issued(wider, "read:todos")
    for outside in ["read:billing", "offline_access", "admin"]:
        refused = token_request(stack, {"grant_type": "client_credentials", "scope": outside},
                                auth=(client_id, secret))
        assert_oauth_error(refused, 400, "invalid_scope")
    elsewhere = token_request(stack, {"grant_type": "client_credentials", "resource": "https://other.example/mcp"},
                              auth=(client_id, secret))
    assert_oauth_error(elsewhere, 400, "invalid_target")
    # A machine client is not a client of authorization codes or assertions.
    code = token_request(stack, {"grant_type": "authorization_code", "code": "x", "code_verifier": "y" * 43},
                         auth=(client_id, secret))
    assert_oauth_error(code, 400, "unauthorized_client")
    wrong_secret = token_request(stack, {"grant_type": "client_credentials"}, auth=(client_id, secret + "x"))
    assert_oauth_error(wrong_secret, 401, "invalid_client")
    # Registered for Basic: the same secret in the body is another method, refused.
    posted = token_request(stack, {"grant_type": "client_credentials", "client_id": client_id,
                                   "client_secret": secret})
    assert_oauth_error(posted, 401, "invalid_client")
    # A confidential client registered at /register is a client of users, not a machine client.
    registered = httpx.post(f"{stack.gateway_url}/register", json={
        "client_name": "web app", "redirect_uris": ["http://localhost:3030/callback"],
        "token_endpoint_auth_method": "client_secret_basic"}).json()
    web_app = token_request(stack, {"grant_type": "client_credentials"},
                            auth=(registered["client_id"], registered["client_secret"]))
    assert_oauth_error(web_app, 400, "unauthorized_client")


# === 2. The Python SDK's identity assertion provider, with ID-JAGs from DevIdP =====================================


def devidp_assertions(devidp_issuer: str, username: str, scope: str | None, issued: list[dict]):
    """The SDK's `assertion_provider`: signs `username` in at DevIdP as the enterprise agent (password grant, an ID
    token) and exchanges the ID token for an ID-JAG to the gateway (RFC 8693)."""

    async def provider(audience: str, resource: str) -> str:
        async with httpx.AsyncClient(timeout=30) as http:
            signed_in = await http.post(devidp_issuer + "oauth/token", data={
                "grant_type": "password", "username": username, "password": f"{username}-password",
                "scope": "openid profile email", "client_id": AGENT_ID, "client_secret": AGENT_SECRET})
            assert signed_in.status_code == 200, signed_in.text
            exchange = {
                "grant_type": TOKEN_EXCHANGE, "requested_token_type": ID_JAG_TOKEN_TYPE,
                "subject_token": signed_in.json()["id_token"], "subject_token_type": ID_TOKEN_TYPE,
                "audience": audience, "resource": resource, "client_id": AGENT_ID, "client_secret": AGENT_SECRET}
            if scope is not None:
                exchange["scope"] = scope
            reply = await http.post(devidp_issuer + "oauth/token", data=exchange)
            assert reply.status_code == 200, reply.text
            body = reply.json()
            assert body["issued_token_type"] == ID_JAG_TOKEN_TYPE and body["token_type"] == "N_A"
            assertion = body["access_token"]
            assert jwt.get_unverified_header(assertion)["typ"] == ID_JAG_TYP
            issued.append(jwt.decode(assertion, options={"verify_signature": False}))
            return assertion

    return provider


@pytest.fixture(scope="module")
def agent_secret(stack: Stack) -> str:
    """The enterprise agent at the gateway: the client id DevIdP names in its ID-JAGs, a secret the gateway issued."""
    _, secret = add_client(stack, grant="jwt-bearer", auth="client_secret_post", scope=ALL_SCOPES,
                           name="Enterprise agent", extra=("--id", AGENT_ID))
    return secret


def agent_provider(stack: Stack, devidp_issuer: str, agent_secret: str, username: str, idp_scope: str | None,
                   issued: list[dict]) -> IdentityAssertionOAuthProvider:
    """The SDK's provider for the enterprise agent (client_secret_post), asking for no scope of its own."""
    return IdentityAssertionOAuthProvider(
        stack.mcp_url, MemoryStorage(), AGENT_ID, agent_secret, stack.gateway_url,
        devidp_assertions(devidp_issuer, username, idp_scope, issued))


def test_sdk_identity_assertion_provider_for_alice(stack: Stack, devidp_issuer: str, agent_secret: str):
    issued: list[dict] = []
    provider = agent_provider(stack, devidp_issuer, agent_secret, "alice", ALL_SCOPES, issued)

    async def run():
        async with mcp_session(stack.mcp_url, provider) as session:
            me = structured(await session.call_tool("whoami", {}))
            assert me["sub"] == "auth0|alice" and me["client_id"] == AGENT_ID
            assert me["email"] == "alice@example.com" and me["name"] == "Alice Example"
            assert set(me["scopes"]) == set(ALL_SCOPES.split())
            assert me.get("machine_client") is False, me
            title = f"From the enterprise agent {uuid.uuid4().hex[:8]}"
            added = structured(await session.call_tool("add-todo", {"title": title}))["todo"]
            assert added["owner"] == "auth0|alice"
            todos = structured(await session.call_tool("list-todos", {}))["todos"]
            assert title in [todo["title"] for todo in todos]
            assert all(todo["owner"] == "auth0|alice" for todo in todos)
            billing = structured(await session.call_tool("list-billing", {}))
            assert billing["billing"]["last4"] == "1234"

    anyio.run(run)
    # One ID-JAG, as DevIdP issued it: for the gateway, its MCP resource, the agent, alice, five minutes at most.
    assert len(issued) == 1
    claims = issued[0]
    assert claims["iss"] == devidp_issuer and claims["aud"] == stack.gateway_url
    assert claims["resource"] == stack.mcp_url and claims["client_id"] == AGENT_ID
    assert claims["sub"] == "auth0|alice" and 0 < claims["exp"] - claims["iat"] <= 300


def test_sdk_identity_assertion_provider_limits_bob_to_his_permissions(stack: Stack, devidp_issuer: str,
                                                                       agent_secret: str):
    issued: list[dict] = []
    provider = agent_provider(stack, devidp_issuer, agent_secret, "bob", ALL_SCOPES, issued)

    async def run():
        async with mcp_session(stack.mcp_url, provider) as session:
            me = structured(await session.call_tool("whoami", {}))
            assert me["sub"] == "auth0|bob" and me["email"] == "bob@example.com"
            assert me["scopes"] == ["read:todos"]
            todos = structured(await session.call_tool("list-todos", {}))["todos"]
            assert all(todo["owner"] == "auth0|bob" for todo in todos)

    anyio.run(run)

    async def write():
        async with mcp_session(stack.mcp_url, provider) as session:
            await session.call_tool("add-todo", {"title": "bob may not write"})

    # The SDK steps up on insufficient_scope with a new ID-JAG, which DevIdP again limits to read:todos: the gateway
    # grants read:todos again, and the SDK gives up on the tool.
    with pytest.raises(BaseException) as refused:
        anyio.run(write)
    errors = [str(error) for error in leaves(refused.value)]
    assert any("write:todos" in error for error in errors), errors
    assert issued[0]["scope"] == "read:todos"
    assert all(claims.get("scope") == "read:todos" for claims in issued)


def test_bob_gets_no_scope_beyond_his_permissions_when_the_agent_asks_for_none(stack: Stack, devidp_issuer: str,
                                                                             agent_secret: str):
    """The agent asks DevIdP for no particular scope (or only for scopes bob lacks): what the gateway grants must
    still stay within bob's permissions at the enterprise (read:todos), never the agent's whole allowance."""
    for idp_scope in (None, "read:billing"):
        issued: list[dict] = []
        assertion = anyio.run(devidp_assertions(devidp_issuer, "bob", idp_scope, issued), stack.gateway_url,
                              stack.mcp_url)
        reply = token_request(stack, {"grant_type": JWT_BEARER, "assertion": assertion, "client_id": AGENT_ID,
                                      "client_secret": agent_secret})
        if reply.status_code == 200:
            granted = set(reply.json()["scope"].split())
            assert granted <= {"read:todos"}, (idp_scope, issued[0], reply.json())
        else:
            assert_oauth_error(reply, 400, "invalid_scope")


def test_devidp_id_jags_are_used_once_and_its_other_tokens_are_no_id_jags(stack: Stack, devidp_issuer: str,
                                                                          agent_secret: str):
    issued: list[dict] = []
    assertion = anyio.run(devidp_assertions(devidp_issuer, "alice", "read:todos", issued), stack.gateway_url,
                          stack.mcp_url)
    form = {"grant_type": JWT_BEARER, "assertion": assertion, "client_id": AGENT_ID, "client_secret": agent_secret}
    assert_issued(token_request(stack, form), "read:todos")
    assert_oauth_error(token_request(stack, form), 400, "invalid_grant")
    # The same issuer's ID token and access token are signed by the same key, but they are not identity assertions.
    signed_in = httpx.post(devidp_issuer + "oauth/token", data={
        "grant_type": "password", "username": "alice", "password": "alice-password", "scope": "openid",
        "client_id": AGENT_ID, "client_secret": AGENT_SECRET}).json()
    for other in (signed_in["id_token"], signed_in["access_token"]):
        reply = token_request(stack, {**form, "assertion": other})
        assert_oauth_error(reply, 400, "invalid_grant")
    # DevIdP issues ID-JAGs only for the audiences it was told of.
    elsewhere = httpx.post(devidp_issuer + "oauth/token", data={
        "grant_type": TOKEN_EXCHANGE, "requested_token_type": ID_JAG_TOKEN_TYPE,
        "subject_token": signed_in["id_token"], "subject_token_type": ID_TOKEN_TYPE,
        "audience": "https://other-mcp.example", "resource": "https://other-mcp.example/mcp",
        "client_id": AGENT_ID, "client_secret": AGENT_SECRET})
    assert elsewhere.status_code == 400 and elsewhere.json()["error"] == "invalid_target"


# === 3. Hostile client assertions (private_key_jwt) ===============================================================


@pytest.fixture(scope="module")
def key_client(stack: Stack):
    """A private_key_jwt machine client with one registered key."""
    key = SigningKey("hostile-test-client")
    client_id, _ = add_client(stack, auth="private_key_jwt", scope="read:todos", name="key client",
                              extra=("--jwks-file", jwks_file(key)))
    return client_id, key


def test_a_valid_client_assertion_for_either_audience(stack: Stack, key_client):
    client_id, key = key_client
    for audience in (stack.gateway_url, stack.gateway_url + "/token"):
        for typ in ("JWT", "client-authentication+jwt", None):
            assertion = client_assertion(key, client_id, audience, headers={"typ": typ})
            assert_issued(token_request(stack, assertion_form(assertion)), "read:todos")
    with_id = assertion_form(client_assertion(key, client_id, stack.gateway_url), client_id=client_id)
    assert_issued(token_request(stack, with_id), "read:todos")


def test_a_replayed_client_assertion(stack: Stack, key_client):
    client_id, key = key_client
    form = assertion_form(client_assertion(key, client_id, stack.gateway_url))
    assert_issued(token_request(stack, form), "read:todos")
    body = assert_oauth_error(token_request(stack, form), 401, "invalid_client")
    assert "used before" in body["error_description"]


def hostile_client_assertions(stack: Stack, client_id: str, key: SigningKey) -> dict[str, tuple[dict, str]]:
    """Token requests with a bad client assertion, each with the reason the gateway must give."""
    gateway = stack.gateway_url
    now = int(time.time())
    other_key = SigningKey(key.kid)  # the client's kid, someone else's key
    public_pem = key.public_pem()
    valid_claims = {"iss": client_id, "sub": client_id, "aud": gateway, "exp": now + 120, "iat": now,
                    "jti": uuid.uuid4().hex}

    def signed(**changes) -> dict:
        headers = changes.pop("headers", None)
        signer = changes.pop("signer", key)
        return assertion_form(client_assertion(signer, client_id, gateway, headers=headers, **changes))

    return {
        "wrong audience": (signed(aud="https://other-as.example"), "audience"),
        "audience of another endpoint": (signed(aud=gateway + "/revoke"), "audience"),
        "signed by another key": (signed(signer=other_key), "signature is invalid"),
        "unknown kid": (signed(signer=SigningKey("not-registered")), "unknown key"),
        "expired": (signed(exp=now - 300, iat=now - 400), "expired"),
        "valid for more than 600 s": (signed(exp=now + 900), "more than 10 minutes"),
        "not yet valid": (signed(nbf=now + 300), "not valid yet"),
        "no exp": (signed(exp=DROP), "no expiry"),
        "no jti": (signed(jti=DROP), "no jti"),
        "empty jti": (signed(jti=""), "no jti"),
        "alg none": (assertion_form(unsigned({"alg": "none", "kid": key.kid, "typ": "JWT"}, valid_claims)),
                     "algorithm"),
        "HS256 keyed with the public key": (assertion_form(
            hmac_signed(public_pem, {"alg": "HS256", "kid": key.kid, "typ": "JWT"}, valid_claims)), "algorithm"),
        "iss is not sub": (signed(iss="someone-else"), "iss and sub"),
        "sub is not iss": (signed(sub="someone-else"), "iss and sub"),
        "client_id parameter of another client": (
            {**signed(), "client_id": "another-client"}, "client_id does not match"),
        "unknown client_assertion_type": (
            {**signed(), "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"},
            "client_assertion_type"),
        "an ID-JAG typed token": (signed(headers={"typ": ID_JAG_TYP}), "type"),
        "an access token typed token": (signed(headers={"typ": "at+jwt"}), "type"),
        "not a JWT": (assertion_form("not-a-jwt"), "must be a JWT"),
        "unknown client": (assertion_form(client_assertion(key, "no-such-client", gateway)), "No client"),
    }


def test_hostile_client_assertions_are_refused(stack: Stack, key_client):
    client_id, key = key_client
    for name, (form, reason) in hostile_client_assertions(stack, client_id, key).items():
        reply = token_request(stack, form)
        assert reply.status_code == 401, (name, reply.status_code, reply.text)
        body = assert_oauth_error(reply, 401, "invalid_client")
        assert reason in body["error_description"], (name, body)
        assert reply.headers["www-authenticate"].startswith("Basic ")
    # The client can still get tokens: nothing above consumed its key or locked it out.
    assert_issued(token_request(stack, assertion_form(client_assertion(key, client_id, stack.gateway_url))),
                  "read:todos")


def test_client_assertions_and_secrets_do_not_mix(stack: Stack, key_client):
    client_id, key = key_client
    secret_client, secret = add_client(stack, scope="read:todos")
    assertion = client_assertion(key, client_id, stack.gateway_url)
    # Two methods at once: an assertion with Basic, or with a client_secret.
    basic = token_request(stack, assertion_form(assertion), auth=(secret_client, secret))
    assert_oauth_error(basic, 400, "invalid_request")
    posted = token_request(stack, assertion_form(client_assertion(key, client_id, stack.gateway_url),
                                                 client_secret="anything"))
    assert_oauth_error(posted, 400, "invalid_request")
    # A client of secrets cannot authenticate with an assertion, nor a client of keys without one.
    secret_key = SigningKey("secret-client-key")
    by_assertion = token_request(stack, assertion_form(client_assertion(secret_key, secret_client, stack.gateway_url)))
    assert_oauth_error(by_assertion, 401, "invalid_client")
    by_id_only = token_request(stack, {"grant_type": "client_credentials", "client_id": client_id})
    assert_oauth_error(by_id_only, 401, "invalid_client")
    by_fake_secret = token_request(stack, {"grant_type": "client_credentials"}, auth=(client_id, "guess"))
    assert_oauth_error(by_fake_secret, 401, "invalid_client")


def test_keys_at_a_jwks_uri_rotate(stack: Stack):
    keys = JWKSServer()
    try:
        first, second = SigningKey("uri-1"), SigningKey("uri-2")
        keys.publish(first)
        client_id, _ = add_client(stack, auth="private_key_jwt", scope="read:todos", extra=("--jwks-uri", keys.url))
        assert_issued(token_request(stack, assertion_form(client_assertion(first, client_id, stack.gateway_url))),
                      "read:todos")
        keys.publish(second)
        time.sleep(5.5)  # a kid not seen yet refetches the JWK Set at most every 5 s
        assert_issued(token_request(stack, assertion_form(client_assertion(second, client_id, stack.gateway_url))),
                      "read:todos")
        # The retired key is gone with the set it was in.
        retired = token_request(stack, assertion_form(client_assertion(first, client_id, stack.gateway_url)))
        assert_oauth_error(retired, 401, "invalid_client")
    finally:
        keys.shutdown()


def test_machine_clients_revoke_their_tokens(stack: Stack, key_client):
    client_id, key = key_client
    secret_client = add_client(stack, scope="read:todos")
    by_secret = assert_issued(token_request(stack, {"grant_type": "client_credentials"}, auth=secret_client),
                              "read:todos")["access_token"]
    by_key = assert_issued(token_request(stack, assertion_form(client_assertion(key, client_id, stack.gateway_url))),
                           "read:todos")["access_token"]
    revoked = httpx.post(f"{stack.gateway_url}/revoke", data={"token": by_secret}, auth=secret_client)
    assert revoked.status_code == 200
    revoked = httpx.post(f"{stack.gateway_url}/revoke", data={
        "token": by_key, "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": client_assertion(key, client_id, stack.gateway_url)})
    assert revoked.status_code == 200
    for token in (by_secret, by_key):
        assert initialize(stack, token).status_code == 401
    # /revoke takes private_key_jwt, and the metadata should say so (RFC 8414 §2).
    metadata = httpx.get(f"{stack.gateway_url}/.well-known/oauth-authorization-server").json()
    assert "private_key_jwt" in metadata["revocation_endpoint_auth_methods_supported"], metadata


# === 4. Hostile ID-JAGs ===========================================================================================


@pytest.fixture(scope="module")
def enterprise_client(stack: Stack):
    """A client of the test enterprise's identity assertions, allowed to read and write todos."""
    return add_client(stack, grant="jwt-bearer", auth="client_secret_basic", scope="read:todos write:todos",
                      name="Enterprise client")


def jwt_bearer(stack: Stack, client: tuple[str, str], assertion: str, **extra: str) -> httpx.Response:
    return token_request(stack, {"grant_type": JWT_BEARER, "assertion": assertion, **extra}, auth=client)


def test_sdk_identity_assertion_provider_with_basic_authentication(stack: Stack, enterprise: Enterprise,
                                                                   enterprise_client):
    """The SDK's provider as a client_secret_basic client, with ID-JAGs from the test's enterprise."""
    client_id, secret = enterprise_client
    asked: list[tuple[str, str]] = []

    async def assertion_provider(audience: str, resource: str) -> str:
        asked.append((audience, resource))
        return enterprise.id_jag(audience, client_id, resource=resource, sub="enterprise|dave", email=DROP,
                                 name="Dave")

    provider = IdentityAssertionOAuthProvider(stack.mcp_url, MemoryStorage(), client_id, secret, stack.gateway_url,
                                              assertion_provider, scope="read:todos",
                                              token_endpoint_auth_method="client_secret_basic")

    async def run():
        async with mcp_session(stack.mcp_url, provider) as session:
            me = structured(await session.call_tool("whoami", {}))
            # Another issuer than the sign-in provider: its users are kept apart by the issuer's name.
            assert me["sub"] == f"{enterprise.issuer}|enterprise|dave" and me["name"] == "Dave"
            assert me["email"] is None
            assert me["scopes"] == ["read:todos"] and me["client_id"] == client_id
            structured(await session.call_tool("list-todos", {}))

    anyio.run(run)
    assert asked == [(stack.gateway_url, stack.mcp_url)]


def test_a_valid_id_jag_of_the_enterprise(stack: Stack, enterprise: Enterprise, enterprise_client):
    client_id, _ = enterprise_client
    gateway = stack.gateway_url
    issued = assert_issued(jwt_bearer(stack, enterprise_client, enterprise.id_jag(gateway, client_id)),
                           "read:todos write:todos")
    # `resource` as an array, the legacy SSE endpoint, the scope the assertion allows, a narrower request.
    assert_issued(jwt_bearer(stack, enterprise_client, enterprise.id_jag(
        gateway, client_id, resource=["https://elsewhere.example", gateway + "/mcp"])), "read:todos write:todos")
    assert_issued(jwt_bearer(stack, enterprise_client, enterprise.id_jag(gateway, client_id, resource=gateway + "/sse")),
                  "read:todos write:todos")
    assert_issued(jwt_bearer(stack, enterprise_client, enterprise.id_jag(gateway, client_id, scope="read:todos")),
                  "read:todos")
    assert_issued(jwt_bearer(stack, enterprise_client, enterprise.id_jag(gateway, client_id), scope="write:todos",
                             resource=stack.mcp_url), "write:todos")

    async def run():
        async with mcp_session(stack.mcp_url, token=issued["access_token"]) as session:
            me = structured(await session.call_tool("whoami", {}))
            assert me["sub"] == f"{enterprise.issuer}|enterprise|carol" and me["email"] == "carol@enterprise.example"
            assert me["name"] == "Carol Enterprise" and me["client_id"] == client_id
            title = f"Carol's {uuid.uuid4().hex[:6]}"
            structured(await session.call_tool("add-todo", {"title": title}))
            todos = structured(await session.call_tool("list-todos", {}))["todos"]
            assert title in [todo["title"] for todo in todos]
            assert all(todo["owner"] == f"{enterprise.issuer}|enterprise|carol" for todo in todos)

    anyio.run(run)


def hostile_id_jags(stack: Stack, enterprise: Enterprise, client_id: str) -> dict[str, tuple[str, str]]:
    """Bad ID-JAGs for `client_id`, each with the reason the gateway must give."""
    gateway = stack.gateway_url
    now = int(time.time())
    untrusted = Enterprise(enterprise.key.kid)  # the same kid, an issuer the gateway does not trust
    untrusted.stop()

    def jag(**changes) -> str:
        return enterprise.id_jag(gateway, client_id, **changes)

    return {
        "wrong audience": (jag(aud="https://other-as.example"), "audience"),
        "audience with a trailing slash": (jag(aud=gateway + "/"), "audience"),
        "the token endpoint as audience": (jag(aud=gateway + "/token"), "audience"),
        "another client": (enterprise.id_jag(gateway, "another-client"), "another client"),
        "no client_id": (jag(client_id=DROP), "another client"),
        "another resource": (jag(resource="https://other-mcp.example/mcp"), "resource"),
        "a resource on the gateway that is not MCP": (jag(resource=gateway + "/token"), "resource"),
        "no resource": (jag(resource=DROP), "resource"),
        "typ JWT": (jag(typ="JWT"), "type"),
        "no typ": (jag(typ=DROP), "type"),
        "expired": (jag(exp=now - 300, iat=now - 400), "expired"),
        "valid for more than 600 s": (jag(exp=now + 900), "more than 10 minutes"),
        "not yet valid": (jag(nbf=now + 300), "not valid yet"),
        "no exp": (jag(exp=DROP), "no expiry"),
        "no sub": (jag(sub=DROP), "no subject"),
        "empty sub": (jag(sub=""), "no subject"),
        "no jti": (jag(jti=DROP), "no jti"),
        "issuer not trusted": (untrusted.id_jag(gateway, client_id), "not a trusted"),
        "signed by a key not in the JWKS": (jag(key=SigningKey("rogue-kid")), "unknown key"),
        "signed by another key under the trusted kid": (jag(key=SigningKey(enterprise.key.kid)), "signature"),
        "alg none": (unsigned({"alg": "none", "kid": enterprise.key.kid, "typ": ID_JAG_TYP},
                              enterprise.claims(gateway, client_id)), "algorithm"),
        "HS256 keyed with the public key": (hmac_signed(
            enterprise.key.public_pem(), {"alg": "HS256", "kid": enterprise.key.kid, "typ": ID_JAG_TYP},
            enterprise.claims(gateway, client_id)), "algorithm"),
        "not a JWT": ("not-a-jwt", "not a JWT"),
    }


def test_hostile_id_jags_are_refused(stack: Stack, enterprise: Enterprise, enterprise_client):
    client_id, _ = enterprise_client
    for name, (assertion, reason) in hostile_id_jags(stack, enterprise, client_id).items():
        reply = jwt_bearer(stack, enterprise_client, assertion)
        assert reply.status_code == 400, (name, reply.status_code, reply.text)
        body = assert_oauth_error(reply, 400, "invalid_grant")
        assert reason in body["error_description"], (name, body)


def test_a_replayed_id_jag(stack: Stack, enterprise: Enterprise, enterprise_client):
    client_id, _ = enterprise_client
    assertion = enterprise.id_jag(stack.gateway_url, client_id)
    assert_issued(jwt_bearer(stack, enterprise_client, assertion), "read:todos write:todos")
    body = assert_oauth_error(jwt_bearer(stack, enterprise_client, assertion), 400, "invalid_grant")
    assert "used before" in body["error_description"]


def test_id_jag_scope_and_client_rules(stack: Stack, enterprise: Enterprise, enterprise_client):
    client_id, secret = enterprise_client
    gateway = stack.gateway_url
    # Beyond what the client may have, or beyond what the assertion grants.
    beyond_client = jwt_bearer(stack, enterprise_client, enterprise.id_jag(gateway, client_id), scope="read:billing")
    assert_oauth_error(beyond_client, 400, "invalid_scope")
    beyond_assertion = jwt_bearer(stack, enterprise_client, enterprise.id_jag(gateway, client_id, scope="read:todos"),
                                  scope="write:todos")
    assert_oauth_error(beyond_assertion, 400, "invalid_scope")
    # Another resource in the token request.
    elsewhere = jwt_bearer(stack, enterprise_client, enterprise.id_jag(gateway, client_id),
                           resource="https://other-mcp.example/mcp")
    assert_oauth_error(elsewhere, 400, "invalid_target")
    # Bad client authentication comes first.
    wrong_secret = jwt_bearer(stack, (client_id, secret + "x"), enterprise.id_jag(gateway, client_id))
    assert_oauth_error(wrong_secret, 401, "invalid_client")
    assert "basic" in wrong_secret.headers["www-authenticate"].lower()
    # A machine client is not registered for the grant, even with an assertion naming it.
    machine = add_client(stack, scope="read:todos")
    not_registered = jwt_bearer(stack, machine, enterprise.id_jag(gateway, machine[0]))
    assert_oauth_error(not_registered, 400, "unauthorized_client")
    # The client of assertions cannot use client credentials, nor omit the assertion.
    no_machine = token_request(stack, {"grant_type": "client_credentials"}, auth=enterprise_client)
    assert_oauth_error(no_machine, 400, "unauthorized_client")
    missing = token_request(stack, {"grant_type": JWT_BEARER}, auth=enterprise_client)
    assert_oauth_error(missing, 400, "invalid_request")


def test_an_id_jag_scope_claim_that_is_not_a_string_widens_nothing(stack: Stack, enterprise: Enterprise,
                                                                  enterprise_client):
    """The `scope` of an ID-JAG is a space-separated string. One the gateway cannot read (an array, a number) must
    not count as no restriction at all: it is refused, or read as the scopes it names."""
    client_id, _ = enterprise_client
    for claim, at_most in ((["read:todos"], {"read:todos"}), (7, set()), ({"read:todos": True}, set())):
        reply = jwt_bearer(stack, enterprise_client, enterprise.id_jag(stack.gateway_url, client_id, scope=claim))
        if reply.status_code == 200:
            assert set(reply.json()["scope"].split()) <= at_most, (claim, reply.json())
        else:
            assert_oauth_error(reply, 400, "invalid_grant")


def test_identity_assertions_for_a_client_of_keys(stack: Stack, enterprise: Enterprise):
    """jwt-bearer with private_key_jwt: the client proves itself with its key, the enterprise vouches for the user."""
    key = SigningKey("assertion-client")
    client_id, _ = add_client(stack, grant="jwt-bearer", auth="private_key_jwt", scope="read:todos",
                              extra=("--jwks-file", jwks_file(key)))
    form = {"grant_type": JWT_BEARER, "assertion": enterprise.id_jag(stack.gateway_url, client_id),
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": client_assertion(key, client_id, stack.gateway_url + "/token")}
    assert_issued(token_request(stack, form), "read:todos")
    # A new ID-JAG with the same client assertion: the client assertion is spent.
    again = {**form, "assertion": enterprise.id_jag(stack.gateway_url, client_id)}
    assert_oauth_error(token_request(stack, again), 401, "invalid_client")


def test_unreachable_keys_are_refused_not_server_errors(stack: Stack, unreachable_issuer: str, enterprise_client):
    client_id, _ = enterprise_client
    key = SigningKey("down-1")
    now = int(time.time())
    assertion = key.sign({
        "iss": unreachable_issuer, "sub": "someone", "aud": stack.gateway_url, "client_id": client_id,
        "resource": stack.mcp_url, "jti": uuid.uuid4().hex, "iat": now, "exp": now + 120}, headers={"typ": ID_JAG_TYP})
    # The enterprise provider is one the operator trusts, and down: not the assertion's fault, a 503 to retry.
    unavailable = jwt_bearer(stack, enterprise_client, assertion)
    assert_oauth_error(unavailable, 503, "temporarily_unavailable")
    assert int(unavailable.headers["retry-after"]) >= 1
    # A client whose jwks_uri is down: the client's own keys, so its authentication fails.
    keyed, _ = add_client(stack, auth="private_key_jwt", scope="read:todos",
                          extra=("--jwks-uri", f"http://127.0.0.1:{free_port()}/jwks.json"))
    reply = token_request(stack, assertion_form(client_assertion(key, keyed, stack.gateway_url)))
    assert_oauth_error(reply, 401, "invalid_client")


def concurrently(count: int, request) -> list[int]:
    statuses: list[int] = []
    barrier = threading.Barrier(count)

    def send() -> None:
        barrier.wait()
        statuses.append(request().status_code)

    threads = [threading.Thread(target=send) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(statuses)


def test_an_assertion_sent_many_times_at_once_is_used_once(stack: Stack, enterprise: Enterprise, enterprise_client,
                                                           key_client):
    client_id, key = key_client
    form = assertion_form(client_assertion(key, client_id, stack.gateway_url))
    assert concurrently(16, lambda: token_request(stack, form)) == [200] + [401] * 15
    id_jag = enterprise.id_jag(stack.gateway_url, enterprise_client[0])
    assert concurrently(16, lambda: jwt_bearer(stack, enterprise_client, id_jag)) == [200] + [400] * 15


# === 5. Registration and metadata =================================================================================


def test_register_refuses_what_only_the_operator_may_register(stack: Stack):
    base = {"client_name": "sneaky", "redirect_uris": ["http://localhost:3030/callback"]}
    attempts = {
        "client_credentials": {**base, "grant_types": ["client_credentials"], "token_endpoint_auth_method":
                               "client_secret_basic"},
        "client_credentials beside a code": {**base, "grant_types": ["authorization_code", "client_credentials"]},
        "jwt-bearer": {**base, "grant_types": ["authorization_code", JWT_BEARER]},
        "private_key_jwt": {**base, "token_endpoint_auth_method": "private_key_jwt",
                            "jwks": {"keys": [SigningKey("k").public_jwk()]}},
        "private_key_jwt with a jwks_uri": {**base, "token_endpoint_auth_method": "private_key_jwt",
                                            "jwks_uri": "https://client.example/jwks.json"},
    }
    for name, metadata in attempts.items():
        reply = httpx.post(f"{stack.gateway_url}/register", json=metadata)
        assert reply.status_code == 400, (name, reply.text)
        assert reply.json()["error"] == "invalid_client_metadata", (name, reply.json())
        assert "admin add-client" in reply.json()["error_description"]


def test_metadata_lists_the_grants_and_methods(stack: Stack):
    for path in ("/.well-known/oauth-authorization-server", "/.well-known/oauth-authorization-server/mcp"):
        metadata = httpx.get(stack.gateway_url + path).json()
        assert metadata["grant_types_supported"] == ["authorization_code", "refresh_token", "client_credentials",
                                                     JWT_BEARER]
        assert "private_key_jwt" in metadata["token_endpoint_auth_methods_supported"]
        assert {"client_secret_basic", "client_secret_post"} <= set(metadata["token_endpoint_auth_methods_supported"])
        assert {"RS256", "PS256", "ES256"} <= set(metadata["token_endpoint_auth_signing_alg_values_supported"])
        assert "none" not in metadata["token_endpoint_auth_signing_alg_values_supported"]
        assert "HS256" not in metadata["token_endpoint_auth_signing_alg_values_supported"]


def test_without_identity_assertion_issuers_there_is_no_jwt_bearer_grant():
    stack = start_stack("devidp")
    try:
        metadata = httpx.get(f"{stack.gateway_url}/.well-known/oauth-authorization-server").json()
        assert metadata["grant_types_supported"] == ["authorization_code", "refresh_token", "client_credentials"]
        assert "private_key_jwt" in metadata["token_endpoint_auth_methods_supported"]
        # A client registered for assertions anyway gets nothing for one.
        client = add_client(stack, grant="jwt-bearer", scope="read:todos")
        enterprise = Enterprise()
        try:
            reply = jwt_bearer(stack, client, enterprise.id_jag(stack.gateway_url, client[0]))
            assert_oauth_error(reply, 400, "unsupported_grant_type")
        finally:
            enterprise.stop()
        # Machine clients work in any case.
        machine = add_client(stack, scope="read:todos")
        assert_issued(token_request(stack, {"grant_type": "client_credentials"}, auth=machine), "read:todos")
    finally:
        stack.stop()


def test_admin_add_client_refuses_bad_registrations(stack: Stack):
    key_file = jwks_file(SigningKey("k"))
    bad = [
        ("--auth", "none", "--scope", "read:todos"),
        ("--auth", "client_secret_basic", "--scope", "offline_access"),
        ("--auth", "client_secret_basic", "--scope", "read:todos admin"),
        ("--auth", "private_key_jwt", "--scope", "read:todos"),
        ("--auth", "client_secret_basic", "--scope", "read:todos", "--jwks-file", key_file),
        ("--auth", "private_key_jwt", "--scope", "read:todos", "--jwks-uri", "http://keys.example/jwks.json"),
        ("--auth", "client_secret_basic", "--scope", "read:todos", "--id", "has space"),
    ]
    for args in bad:
        refused = admin(stack, "add-client", "--name", "bad", *args)
        assert refused.returncode != 0 and refused.stdout == "", (args, refused.stdout)
    not_a_jwks = os.path.join(tempfile.mkdtemp(), "x.json")
    with open(not_a_jwks, "w") as file:
        file.write('{"kty": "RSA"}')
    refused = admin(stack, "add-client", "--name", "bad", "--auth", "private_key_jwt", "--scope", "read:todos",
                    "--jwks-file", not_a_jwks)
    assert refused.returncode != 0
    # A JWK Set, but without a key the gateway could verify with (a symmetric key): refused at once, not at first use.
    with open(not_a_jwks, "w") as file:
        file.write('{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}')
    refused = admin(stack, "add-client", "--name", "bad", "--auth", "private_key_jwt", "--scope", "read:todos",
                    "--jwks-file", not_a_jwks)
    assert refused.returncode == 64 and "usable public key" in refused.stderr, refused.stderr
    client_id, _ = add_client(stack, scope="read:todos", extra=("--id", "fixed-machine-id"))
    again = admin(stack, "add-client", "--name", "again", "--scope", "read:todos", "--id", client_id)
    assert again.returncode != 0 and "exists already" in again.stderr


# === 6. A machine client deleted by the operator ==================================================================


def test_a_deleted_machine_client_loses_its_tokens(stack: Stack):
    key = SigningKey("deleted-client")
    secret_client = add_client(stack, scope="read:todos")
    key_client_id, _ = add_client(stack, auth="private_key_jwt", scope="read:todos",
                                  extra=("--jwks-file", jwks_file(key)))
    clients = {
        secret_client[0]: lambda: token_request(stack, {"grant_type": "client_credentials"}, auth=secret_client),
        key_client_id: lambda: token_request(stack, assertion_form(
            client_assertion(key, key_client_id, stack.gateway_url))),
    }
    for client_id, ask in clients.items():
        token = assert_issued(ask(), "read:todos")["access_token"]
        assert initialize(stack, token).status_code == 200
        shown = admin(stack, "client", client_id, "--json")
        assert shown.returncode == 0
        grants = json.loads(shown.stdout)["grants"]
        assert len(grants) == 1 and grants[0].get("user") is None  # a machine client's grant has no user

        deleted = admin(stack, "delete-client", client_id)
        assert deleted.returncode == 0, deleted.stderr
        assert "its 1 active grant(s)" in deleted.stdout
        assert admin(stack, "client", client_id).returncode == 3
        # On SQLite the running gateway is another process than the admin command: it refuses the token when its
        # cache entry ends, at most 10 seconds later (see `admin revoke --help`).
        deadline = time.monotonic() + 12
        while (refused := initialize(stack, token)).status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert refused.status_code == 401, refused.text
        assert refused.headers["www-authenticate"].startswith("Bearer ")
        # Nor does the deleted client get a new token (the gateway may still remember the client for a while; it
        # must refuse it all the same, never fail).
        assert_oauth_error(ask(), 401, "invalid_client")


def test_a_client_registered_again_under_its_id_answers_to_its_new_secret_only(stack: Stack):
    """The operator rotates a machine client's secret (and narrows its scope) by deleting it and adding it again with
    the same --id: from then on, the old secret gets nothing and the new one works."""
    old = add_client(stack, scope="read:todos write:todos", extra=("--id", f"rotated-{uuid.uuid4().hex[:8]}"))
    assert_issued(token_request(stack, {"grant_type": "client_credentials"}, auth=old), "read:todos write:todos")
    assert admin(stack, "delete-client", old[0]).returncode == 0
    new = add_client(stack, scope="read:todos", extra=("--id", old[0]))
    by_old_secret = token_request(stack, {"grant_type": "client_credentials"}, auth=old)
    assert_oauth_error(by_old_secret, 401, "invalid_client")
    assert_issued(token_request(stack, {"grant_type": "client_credentials"}, auth=new), "read:todos")
