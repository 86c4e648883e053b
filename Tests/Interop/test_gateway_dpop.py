"""DPoP (RFC 9449) for the gateway's own tokens (AUTH_MODE=gateway): a public client that proves a key at `/token`
gets an access token (and refresh tokens) bound to that key's thumbprint, and the MCP endpoints take such a token only
as `Authorization: DPoP <token>` with a fresh proof of that key for the very request. The client side is written here,
independently of the Swift code: proofs are signed with PyJWT (an EC P-256 key for ES256, RSA keys for RS256/PS256),
the thumbprints computed as RFC 7638 says, and the official Python MCP SDK is driven through an `httpx2.Auth` that
signs a proof for every request it sends. Hostile proofs (replays, other URLs, methods, keys, times, algorithms,
headers) must each be refused with the right error, never a server error."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlencode

import anyio
import httpx2 as httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from gateway_stack import REDIRECT_URI, Stack, connect, start_stack
from headless_browser import HeadlessBrowser
from support import BIN, DocumentServer, SigningKey

ACCEPT = "application/json, text/event-stream"
ALGORITHMS = "ES256 PS256 PS384 PS512 RS256 RS384 RS512"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ID_JAG_TYP = "oauth-id-jag+jwt"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Leaves a claim or a header out of a proof.
DROP = object()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def ath(token: str) -> str:
    """RFC 9449 §4.2: base64url(SHA-256(access token))."""
    return b64url(hashlib.sha256(token.encode()).digest())


def htu(url: httpx.URL) -> str:
    """The URL of a request as a proof names it: without query and fragment."""
    return f"{url.scheme}://{url.netloc.decode()}{url.path}"


def thumbprint(jwk: dict) -> str:
    """RFC 7638: SHA-256 over the required members, in lexicographic order, no whitespace."""
    members = ("crv", "kty", "x", "y") if jwk["kty"] == "EC" else ("e", "kty", "n")
    canonical = json.dumps({name: jwk[name] for name in members}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


class ProofKey:
    """A client's DPoP key: an EC P-256 key (ES256) or an RSA key (RS256, PS256...), signing proofs with PyJWT."""

    def __init__(self, kind: str = "EC", algorithm: str | None = None) -> None:
        if kind == "EC":
            self.private_key = ec.generate_private_key(ec.SECP256R1())
            self.algorithm = algorithm or "ES256"
            self.public_jwk = jwt.algorithms.ECAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
            self.private_jwk = jwt.algorithms.ECAlgorithm.to_jwk(self.private_key, as_dict=True)
        else:
            self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.algorithm = algorithm or "RS256"
            self.public_jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
            self.private_jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key, as_dict=True)
        assert "d" not in self.public_jwk and "d" in self.private_jwk

    @property
    def thumbprint(self) -> str:
        return thumbprint(self.public_jwk)

    def claims(self, method: str, url: str, token: str | None = None, nonce: str | None = None, **changes) -> dict:
        claims = {"jti": uuid.uuid4().hex, "htm": method, "htu": url, "iat": int(time.time())}
        if token is not None:
            claims["ath"] = ath(token)
        if nonce is not None:
            claims["nonce"] = nonce
        claims.update(changes)
        return {name: value for name, value in claims.items() if value is not DROP}

    def header(self, **changes) -> dict:
        header = {"typ": "dpop+jwt", "alg": self.algorithm, "jwk": self.public_jwk}
        header.update(changes)
        return {name: value for name, value in header.items() if value is not DROP}

    def proof(self, method: str, url: str, token: str | None = None, nonce: str | None = None,
              header: dict | None = None, **changes) -> str:
        """A proof for `method` on `url` (and `token`), valid unless `changes` (claims) or `header` say otherwise."""
        fields = self.header(**(header or {}))
        algorithm = fields.pop("alg")
        typ = fields.pop("typ", None)
        # PyJWT leaves `typ` out when it is None.
        return jwt.encode(self.claims(method, url, token, nonce, **changes), self.private_key, algorithm=algorithm,
                          headers={**fields, "typ": typ})


def unsigned(header: dict, claims: dict) -> str:
    """`alg: none`: no signature at all."""
    return b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode()) + "."


def hmac_signed(secret: bytes, header: dict, claims: dict) -> str:
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    return signing_input + "." + b64url(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())


# --- the stacks ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def enterprise():
    """An enterprise identity provider for ID-JAGs: a discovery document and a JWKS on loopback, signed by PyJWT."""
    server = DocumentServer()
    key = SigningKey("enterprise-dpop")
    server.serve_json("/.well-known/openid-configuration", {
        "issuer": server.base_url, "jwks_uri": server.base_url + "/jwks.json", "token_endpoint": server.base_url + "/t",
        "id_token_signing_alg_values_supported": ["RS256"]})
    server.serve_json("/jwks.json", {"keys": [key.public_jwk()]})
    yield server.base_url, key
    server.shutdown()


@pytest.fixture(scope="module")
def stack(enterprise):
    issuer, _ = enterprise
    stack = start_stack("devidp", gateway_env={"IDENTITY_ASSERTION_ISSUERS": issuer},
                        api_env={"GATEWAY_ISSUER": "{gateway_url}"})
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def nonce_stack(enterprise):
    issuer, _ = enterprise
    stack = start_stack("devidp", gateway_env={"DPOP_NONCE_REQUIRED": "true", "IDENTITY_ASSERTION_ISSUERS": issuer})
    yield stack
    stack.stop()


def id_jag(enterprise, gateway_url: str, client_id: str, subject: str = "enterprise|erin") -> str:
    """An ID-JAG of the test's enterprise for `client_id` at the gateway."""
    issuer, signing_key = enterprise
    now = int(time.time())
    return signing_key.sign({
        "iss": issuer, "sub": subject, "aud": gateway_url, "client_id": client_id, "resource": gateway_url + "/mcp",
        "jti": uuid.uuid4().hex, "iat": now, "exp": now + 300, "scope": "read:todos"}, headers={"typ": ID_JAG_TYP})


def admin(stack: Stack, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **stack.services[-1].env, "DEV_VARS_FILE": "/nonexistent"}
    return subprocess.run([str(BIN / "McpGateway"), "admin", *args], env=env, capture_output=True, text=True,
                          timeout=60, cwd=stack.services[-1].workdir)


def add_client(stack: Stack, grant: str = "client_credentials", scope: str = "read:todos",
               name: str = "DPoP machine") -> tuple[str, str]:
    """A client_secret_basic client registered by the operator; returns its id and secret."""
    added = admin(stack, "add-client", "--name", name, "--grant", grant, "--auth", "client_secret_basic",
                  "--scope", scope, "--json")
    assert added.returncode == 0, added.stderr
    document = json.loads(added.stdout)
    return document["client"]["id"], document["clientSecret"]


# --- requests -----------------------------------------------------------------------------------------------------


def register(stack: Stack, name: str = "DPoP public client") -> str:
    response = httpx.post(f"{stack.gateway_url}/register", json={
        "client_name": name, "redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"]})
    assert response.status_code == 201, response.text
    assert response.json()["token_endpoint_auth_method"] == "none"
    return response.json()["client_id"]


def authorization_code(stack: Stack, client_id: str, username: str = "alice",
                       scope: str = "read:todos write:todos offline_access", **extra: str) -> tuple[str, str]:
    """Signs `username` in through the headless browser (authorization code with PKCE S256); returns the code and
    the verifier. `extra` adds parameters to the authorization request (`dpop_jkt`)."""
    verifier = secrets.token_urlsafe(48)
    challenge = b64url(hashlib.sha256(verifier.encode()).digest())
    state = secrets.token_urlsafe(12)
    query = HeadlessBrowser(username=username, password=f"{username}-password").authorize(
        f"{stack.gateway_url}/authorize?" + urlencode({
            "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI, "state": state,
            "code_challenge": challenge, "code_challenge_method": "S256", "scope": scope,
            "resource": stack.mcp_url, **extra}), REDIRECT_URI)
    assert query.get("state") == state and "code" in query, query
    assert query.get("iss") == stack.gateway_url
    return query["code"], verifier


def token_request(stack: Stack, data: dict, proof: str | list[str] | None = None,
                  auth: tuple[str, str] | None = None) -> httpx.Response:
    headers = [("DPoP", value) for value in ([proof] if isinstance(proof, str) else proof or [])]
    return httpx.post(f"{stack.gateway_url}/token", data=data, headers=headers, auth=auth)


def sign_in(stack: Stack, key: ProofKey, username: str = "alice",
            scope: str = "read:todos write:todos offline_access") -> tuple[str, httpx.Response]:
    """A public client registered, `username` signed in, the code exchanged with a proof of `key`."""
    client_id = register(stack)
    code, verifier = authorization_code(stack, client_id, username, scope)
    response = token_request(stack, {
        "grant_type": "authorization_code", "code": code, "client_id": client_id, "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier, "resource": stack.mcp_url}, key.proof("POST", f"{stack.gateway_url}/token"))
    return client_id, response


def assert_bound(response: httpx.Response) -> dict:
    """A token response for a DPoP key: `token_type` DPoP, a `DPoP-Nonce` to use next, never cached."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "DPoP", body
    assert body["access_token"].startswith("mcpgw_at_")
    # RFC 9449 §8: never more than one DPoP-Nonce header.
    # A nonce is handed out only where nonces are required (RFC 9449 §11.3); never more than one.
    assert len(response.headers.get_list("dpop-nonce")) <= 1, dict(response.headers)
    assert response.headers["cache-control"] == "no-store"
    return body


def assert_token_error(response: httpx.Response, error: str = "invalid_dpop_proof") -> dict:
    """RFC 9449 §5: 400 with `invalid_dpop_proof` (or `use_dpop_nonce`), JSON, never cached."""
    assert response.status_code == 400, (response.status_code, response.text)
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == error, body
    assert "access_token" not in body
    assert len(response.headers.get_list("dpop-nonce")) <= 1
    if error == "use_dpop_nonce":
        assert response.headers.get("dpop-nonce"), dict(response.headers)
    return body


INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "dpop", "version": "1"}}}


def mcp_request(stack: Stack, token: str, proofs: str | list[str] | None, scheme: str = "DPoP") -> httpx.Response:
    """An `initialize` POSTed to /mcp with `Authorization: <scheme> <token>` and the DPoP headers given."""
    headers = [("Authorization", f"{scheme} {token}"), ("Accept", ACCEPT)]
    headers += [("DPoP", value) for value in ([proofs] if isinstance(proofs, str) else proofs or [])]
    return httpx.post(stack.mcp_url, headers=headers, json=INITIALIZE)


def assert_dpop_challenge(response: httpx.Response, error: str = "invalid_dpop_proof") -> str:
    """RFC 9449 §7.1: 401 and a `DPoP` challenge with the error, a description and the algorithms."""
    assert response.status_code == 401, (response.status_code, response.text)
    challenge = response.headers.get("www-authenticate", "")
    assert challenge.startswith(f'DPoP error="{error}"'), challenge
    assert 'error_description="' in challenge, challenge
    assert f'algs="{ALGORITHMS}"' in challenge, challenge
    # A nonce comes with use_dpop_nonce; otherwise only where nonces are required (RFC 9449 §11.3).
    nonces = response.headers.get_list("dpop-nonce")
    assert len(nonces) == (1 if error == "use_dpop_nonce" else len(nonces)) and len(nonces) <= 1, dict(response.headers)
    assert len(response.headers.get_list("www-authenticate")) == 1
    return challenge


def assert_bearer_invalid_token(response: httpx.Response) -> str:
    assert response.status_code == 401, (response.status_code, response.text)
    challenge = response.headers.get("www-authenticate", "")
    assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge, challenge
    return challenge


class DPoPAuth(httpx.Auth):
    """`Authorization: DPoP <token>` and a fresh proof on every request, `htm` and `htu` taken from the request; a
    `use_dpop_nonce` challenge is answered once with the nonce it carries. Records what it sent and got."""

    def __init__(self, key: ProofKey, token: str) -> None:
        self.key, self.token = key, token
        self.nonce: str | None = None
        self.exchanges: list[tuple[str, str, int]] = []

    def auth_flow(self, request: httpx.Request):
        request.headers["Authorization"] = f"DPoP {self.token}"
        request.headers["DPoP"] = self.key.proof(request.method, htu(request.url), self.token, self.nonce)
        response = yield request
        self.exchanges.append((request.method, request.url.path, response.status_code))
        self.nonce = response.headers.get("dpop-nonce", self.nonce)
        if response.status_code == 401 and 'error="use_dpop_nonce"' in response.headers.get("www-authenticate", ""):
            request.headers["DPoP"] = self.key.proof(request.method, htu(request.url), self.token, self.nonce)
            response = yield request
            self.exchanges.append((request.method, request.url.path, response.status_code))


@contextlib.asynccontextmanager
async def dpop_session(stack: Stack, auth: DPoPAuth):
    async with contextlib.AsyncExitStack() as exits:
        http = await exits.enter_async_context(httpx.AsyncClient(auth=auth, timeout=30))
        read, write = await exits.enter_async_context(streamable_http_client(stack.mcp_url, http_client=http))
        session = await exits.enter_async_context(ClientSession(read, write))
        await session.initialize()
        yield session


def structured(result) -> dict:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def test_the_thumbprints_of_the_rfcs_examples():
    """The test's own thumbprints, against RFC 7638 §3.1 and RFC 9449 §6.1."""
    assert thumbprint({"kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29", "n": (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3"
        "oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdA"
        "ZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur"
        "-kEgU8awapJzKnqDKgw")}) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    example = {"kty": "EC", "crv": "P-256", "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
               "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}
    assert thumbprint(example) == "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"


# === 1. A public client bound to its key, end to end ==============================================================


@pytest.fixture(scope="module")
def alice(stack: Stack):
    """Alice signed in by a public client that proved an EC key: (key, token response)."""
    key = ProofKey("EC")
    _, response = sign_in(stack, key)
    return key, assert_bound(response)


def test_the_code_exchange_with_a_proof_gives_bound_tokens(stack: Stack, alice):
    key, tokens = alice
    assert tokens["refresh_token"].startswith("mcpgw_rt_")
    assert set(tokens["scope"].split()) == {"read:todos", "write:todos", "offline_access"}
    # Bound to this key: a proof of it makes the token work, with the DPoP scheme only.
    token = tokens["access_token"]
    response = mcp_request(stack, token, key.proof("POST", stack.mcp_url, token))
    assert response.status_code == 200, response.text
    assert response.headers.get("mcp-session-id")


def test_the_python_sdk_uses_the_tools_with_a_bound_token(stack: Stack, alice):
    key, tokens = alice
    auth = DPoPAuth(key, tokens["access_token"])
    title = f"Bound to a key {uuid.uuid4().hex[:6]}"

    async def run():
        async with dpop_session(stack, auth) as session:
            tools = {tool.name for tool in (await session.list_tools()).tools}
            assert {"whoami", "add-todo", "list-todos"} <= tools
            me = structured(await session.call_tool("whoami", {}))
            assert me["sub"] == "auth0|alice" and me["email"] == "alice@example.com"
            assert set(me["scopes"]) == {"read:todos", "write:todos", "offline_access"}
            added = structured(await session.call_tool("add-todo", {"title": title}))["todo"]
            assert added["title"] == title
            todos = structured(await session.call_tool("list-todos", {}))["todos"]
            assert title in [todo["title"] for todo in todos]
            assert all(todo["owner"] == "auth0|alice" for todo in todos)

    anyio.run(run)
    # Every request the SDK sent carried its own proof, and none was refused (the GET stream may be unsupported).
    assert auth.exchanges, auth.exchanges
    assert [exchange for exchange in auth.exchanges if exchange[2] in (400, 401, 403) or exchange[2] >= 500] == []
    assert {"POST", "DELETE"} <= {method for method, _, _ in auth.exchanges}


def test_refresh_needs_a_proof_of_the_same_key(stack: Stack):
    key, other = ProofKey("EC"), ProofKey("RSA")
    client_id, response = sign_in(stack, key)
    tokens = assert_bound(response)
    token_url = f"{stack.gateway_url}/token"

    def refresh(refresh_token: str, proof: str | None) -> httpx.Response:
        return token_request(stack, {"grant_type": "refresh_token", "refresh_token": refresh_token,
                                     "client_id": client_id}, proof)

    # Without a proof, or with a proof of another key: refused, and the refresh token is not spent.
    assert_token_error(refresh(tokens["refresh_token"], None))
    assert_token_error(refresh(tokens["refresh_token"], other.proof("POST", token_url)))
    # With a proof of the key: new tokens, bound to the same key.
    renewed = assert_bound(refresh(tokens["refresh_token"], key.proof("POST", token_url)))
    assert renewed["access_token"] != tokens["access_token"]
    assert renewed["refresh_token"] != tokens["refresh_token"]
    token = renewed["access_token"]
    assert mcp_request(stack, token, key.proof("POST", stack.mcp_url, token)).status_code == 200
    assert_dpop_challenge(mcp_request(stack, token, other.proof("POST", stack.mcp_url, token)))
    assert_bearer_invalid_token(mcp_request(stack, token, None, scheme="Bearer"))
    # The binding survives the rotation: the new refresh token wants the same key too.
    assert_token_error(refresh(renewed["refresh_token"], None))
    assert_token_error(refresh(renewed["refresh_token"], other.proof("POST", token_url)))
    assert_bound(refresh(renewed["refresh_token"], key.proof("POST", token_url)))


def test_a_refresh_with_a_proof_binds_the_refresh_tokens_of_a_grant_begun_without_one(stack: Stack):
    """RFC 9449 §5: "When an authorization server supporting DPoP issues a refresh token to a public client that
    presents a valid DPoP proof at the token endpoint, the refresh token MUST be bound to the respective public key."
    A public client that signed in without DPoP and then refreshes with a proof gets a bound access token; the refresh
    token issued with it must be bound too, or whoever steals it can go on refreshing without the key."""
    key, other = ProofKey("EC"), ProofKey("EC")
    client_id = register(stack)
    code, verifier = authorization_code(stack, client_id, "alice", "read:todos offline_access")
    first = token_request(stack, {"grant_type": "authorization_code", "code": code, "client_id": client_id,
                                  "redirect_uri": REDIRECT_URI, "code_verifier": verifier}).json()
    assert first["token_type"] == "Bearer"
    token_url = f"{stack.gateway_url}/token"

    def refresh(refresh_token: str, proof: str | None) -> httpx.Response:
        return token_request(stack, {"grant_type": "refresh_token", "refresh_token": refresh_token,
                                     "client_id": client_id}, proof)

    renewed = assert_bound(refresh(first["refresh_token"], key.proof("POST", token_url)))
    assert_token_error(refresh(renewed["refresh_token"], None))
    assert_token_error(refresh(renewed["refresh_token"], other.proof("POST", token_url)))
    assert_bound(refresh(renewed["refresh_token"], key.proof("POST", token_url)))


def test_an_authorization_code_bound_by_dpop_jkt_needs_a_proof_of_that_key(stack: Stack):
    """RFC 9449 §10: with `dpop_jkt` in the authorization request, "the authorization server computes the JWK
    Thumbprint of the proof-of-possession public key in the DPoP proof and verifies that it matches the dpop_jkt
    parameter value in the authorization request. If they do not match, it MUST reject the request." The code is then
    of no use to whoever intercepts it without the key."""
    key, other = ProofKey("EC"), ProofKey("EC")
    token_url = f"{stack.gateway_url}/token"
    client_id = register(stack)

    def exchange(proof: str | None) -> httpx.Response:
        code, verifier = authorization_code(stack, client_id, "bob", "read:todos", dpop_jkt=key.thumbprint)
        return token_request(stack, {"grant_type": "authorization_code", "code": code, "client_id": client_id,
                                     "redirect_uri": REDIRECT_URI, "code_verifier": verifier}, proof)

    for refused in (exchange(other.proof("POST", token_url)), exchange(None)):
        assert refused.status_code == 400, (refused.status_code, refused.text)
        assert refused.json()["error"] in ("invalid_grant", "invalid_dpop_proof"), refused.text
    assert_bound(exchange(key.proof("POST", token_url)))


def test_an_rsa_key_binds_as_well(stack: Stack):
    for algorithm in ("RS256", "PS256"):
        key = ProofKey("RSA", algorithm)
        _, response = sign_in(stack, key, "bob", scope="read:todos")
        token = assert_bound(response)["access_token"]
        assert mcp_request(stack, token, key.proof("POST", stack.mcp_url, token)).status_code == 200
        # The same key signing with another RSA algorithm is the same key: the binding is to the key, not the alg.
        other_alg = "PS384" if algorithm == "RS256" else "RS512"
        proof = key.proof("POST", stack.mcp_url, token, header={"alg": other_alg})
        assert mcp_request(stack, token, proof).status_code == 200


# === 2. Hostile proofs at the MCP endpoint ========================================================================


def hostile_mcp_proofs(stack: Stack, key: ProofKey, token: str) -> dict[str, list[str]]:
    """Bad proofs for a POST to /mcp with `token`, each as the DPoP headers to send."""
    mcp = stack.mcp_url
    port = stack.gateway_url.rsplit(":", 1)[1]
    other = ProofKey("EC")
    now = int(time.time())
    claims = key.claims("POST", mcp, token)
    private_header = key.header(jwk=key.private_jwk)
    return {
        "another path": [key.proof("POST", stack.gateway_url + "/messages", token)],
        "the token endpoint": [key.proof("POST", stack.gateway_url + "/token", token)],
        "another host": [key.proof("POST", f"http://localhost:{port}/mcp", token)],
        "another port": [key.proof("POST", f"http://127.0.0.1:{int(port) + 1}/mcp", token)],
        "another scheme": [key.proof("POST", f"https://127.0.0.1:{port}/mcp", token)],
        "a relative htu": [key.proof("POST", "/mcp", token)],
        "another method": [key.proof("GET", mcp, token)],
        "a lowercase method": [key.proof("post", mcp, token)],
        "another key": [other.proof("POST", mcp, token)],
        "another key's jwk": [key.proof("POST", mcp, token, header={"jwk": other.public_jwk})],
        "expired iat": [key.proof("POST", mcp, token, iat=now - 600)],
        "iat in the future": [key.proof("POST", mcp, token, iat=now + 300)],
        "no iat": [key.proof("POST", mcp, token, iat=DROP)],
        "iat as a string": [key.proof("POST", mcp, token, iat=str(now))],
        "no jti": [key.proof("POST", mcp, token, jti=DROP)],
        "no htm": [key.proof("POST", mcp, token, htm=DROP)],
        "no htu": [key.proof("POST", mcp, token, htu=DROP)],
        "no ath": [key.proof("POST", mcp, token, ath=DROP)],
        "wrong ath": [key.proof("POST", mcp, token, ath=ath(token + "x"))],
        "ath of the token unhashed": [key.proof("POST", mcp, token, ath=token)],
        "typ JWT": [key.proof("POST", mcp, token, header={"typ": "JWT"})],
        "no typ": [key.proof("POST", mcp, token, header={"typ": DROP})],
        "alg none": [unsigned({"typ": "dpop+jwt", "alg": "none", "jwk": key.public_jwk}, claims)],
        "HS256": [hmac_signed(json.dumps(key.public_jwk).encode(),
                              {"typ": "dpop+jwt", "alg": "HS256", "jwk": key.public_jwk}, claims)],
        "HS256 with an oct jwk": [hmac_signed(b"shared", {"typ": "dpop+jwt", "alg": "HS256", "jwk": {
            "kty": "oct", "k": b64url(b"shared")}}, claims)],
        "RS256 claimed for an EC key": [unsigned({"typ": "dpop+jwt", "alg": "RS256", "jwk": key.public_jwk},
                                                 claims) + "c2ln"],
        "a private key in jwk": [jwt.encode(claims, key.private_key, algorithm="ES256", headers={
            "typ": "dpop+jwt", "jwk": private_header["jwk"]})],
        "no jwk": [key.proof("POST", mcp, token, header={"jwk": DROP})],
        "jwk not an object": [key.proof("POST", mcp, token, header={"jwk": json.dumps(key.public_jwk)})],
        "two DPoP headers": [key.proof("POST", mcp, token), key.proof("POST", mcp, token)],
        "malformed base64": ["eyJ!!!.@@@.###"],
        "not a JWT": ["not-a-jwt"],
        "an empty proof": [""],
        "a JWE-like five parts": ["a.b.c.d.e"],
        "a forged signature": [key.proof("POST", mcp, token)[:-6] + "AAAAAA"],
        "an oversized proof": [key.proof("POST", mcp, token, padding="x" * 9000)],
        "a jti too long": [key.proof("POST", mcp, token, jti="j" * 300)],
        "a jwk off the curve": [key.proof("POST", mcp, token, header={"jwk": {**key.public_jwk,
                                                                             "x": b64url(b"\x01" * 32)}})],
        "a nonce the gateway never issued": [key.proof("POST", mcp, token, nonce="made-up-nonce")],
    }


# What each hostile proof must get; the rest get `invalid_dpop_proof`.
MCP_EXPECTED_ERRORS = {"a nonce the gateway never issued": "use_dpop_nonce"}


MCP_CASES = [
    "another path", "the token endpoint", "another host", "another port", "another scheme", "a relative htu",
    "another method", "a lowercase method", "another key", "another key's jwk", "expired iat", "iat in the future",
    "no iat", "iat as a string", "no jti", "no htm", "no htu", "no ath", "wrong ath", "ath of the token unhashed",
    "typ JWT", "no typ", "alg none", "HS256", "HS256 with an oct jwk", "RS256 claimed for an EC key",
    "a private key in jwk", "no jwk", "jwk not an object", "two DPoP headers", "malformed base64", "not a JWT",
    "an empty proof", "a JWE-like five parts", "a forged signature", "an oversized proof", "a jti too long",
    "a jwk off the curve",
    "a nonce the gateway never issued"]


@pytest.mark.parametrize("case", MCP_CASES)
def test_hostile_proofs_at_mcp_are_refused_with_a_dpop_challenge(stack: Stack, alice, case: str):
    key, tokens = alice
    token = tokens["access_token"]
    proofs = hostile_mcp_proofs(stack, key, token)[case]
    response = mcp_request(stack, token, proofs)
    assert response.status_code < 500, (case, response.status_code, response.text)
    challenge = assert_dpop_challenge(response, MCP_EXPECTED_ERRORS.get(case, "invalid_dpop_proof"))
    # The description is a quoted-string with nothing that would break the header.
    assert challenge.count('"') % 2 == 0, challenge
    # The token is not harmed: a good proof still works.
    assert mcp_request(stack, token, key.proof("POST", stack.mcp_url, token)).status_code == 200


def test_a_replayed_proof_at_mcp(stack: Stack, alice):
    key, tokens = alice
    token = tokens["access_token"]
    proof = key.proof("POST", stack.mcp_url, token)
    assert mcp_request(stack, token, proof).status_code == 200
    challenge = assert_dpop_challenge(mcp_request(stack, token, proof))
    assert "jti" in challenge
    # Replayed with the proof's other parts intact but a new jti, it is a new proof.
    assert mcp_request(stack, token, key.proof("POST", stack.mcp_url, token)).status_code == 200


def test_a_proof_sent_many_times_at_once_is_used_once(stack: Stack, alice):
    key, tokens = alice
    token = tokens["access_token"]
    proof = key.proof("POST", stack.mcp_url, token)
    statuses: list[int] = []
    lock = threading.Lock()

    def send() -> None:
        status = mcp_request(stack, token, proof).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=send) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] + [401] * 11, statuses


def test_a_bound_token_needs_the_dpop_scheme_and_a_proof(stack: Stack, alice):
    key, tokens = alice
    token = tokens["access_token"]
    # As a bearer token, with or without a proof: the Bearer challenge, invalid_token.
    assert_bearer_invalid_token(mcp_request(stack, token, None, scheme="Bearer"))
    assert_bearer_invalid_token(mcp_request(stack, token, key.proof("POST", stack.mcp_url, token), scheme="Bearer"))
    # The DPoP scheme without a proof: the DPoP challenge.
    assert_dpop_challenge(mcp_request(stack, token, None))
    # The scheme's name is case-insensitive (RFC 9110 §11.1).
    assert mcp_request(stack, token, key.proof("POST", stack.mcp_url, token), scheme="dpop").status_code == 200


def test_an_unbound_token_with_the_dpop_scheme_is_refused(stack: Stack):
    async def run():
        async with connect(stack, "bob") as connection:
            return connection.storage.tokens

    tokens = anyio.run(run)
    assert tokens.token_type.lower() == "bearer"
    token = tokens.access_token
    key = ProofKey("EC")
    assert_bearer_invalid_token(mcp_request(stack, token, key.proof("POST", stack.mcp_url, token)))
    assert_bearer_invalid_token(mcp_request(stack, token, None))
    # As the bearer token it is, it works.
    assert mcp_request(stack, token, None, scheme="Bearer").status_code == 200


def test_an_unknown_token_with_the_dpop_scheme_is_refused(stack: Stack):
    key = ProofKey("EC")
    token = "mcpgw_at_" + secrets.token_urlsafe(32)
    response = mcp_request(stack, token, key.proof("POST", stack.mcp_url, token))
    assert response.status_code == 401, response.text


def test_get_and_delete_need_proofs_of_their_own_method(stack: Stack, alice):
    key, tokens = alice
    token = tokens["access_token"]
    opened = mcp_request(stack, token, key.proof("POST", stack.mcp_url, token))
    assert opened.status_code == 200
    session = opened.headers["mcp-session-id"]

    def delete(proof: str) -> httpx.Response:
        return httpx.delete(stack.mcp_url, headers={"Authorization": f"DPoP {token}", "DPoP": proof,
                                                    "Mcp-Session-Id": session, "Mcp-Protocol-Version": "2025-11-25"})

    assert_dpop_challenge(delete(key.proof("POST", stack.mcp_url, token)))
    deleted = delete(key.proof("DELETE", stack.mcp_url, token))
    assert deleted.status_code in (200, 202, 204), (deleted.status_code, deleted.text)


def test_the_legacy_sse_transport_takes_bound_tokens(stack: Stack, alice):
    key, tokens = alice
    token = tokens["access_token"]
    sse = f"{stack.gateway_url}/sse"
    refused = httpx.get(sse, headers={"Authorization": f"DPoP {token}", "DPoP": key.proof("POST", sse, token)})
    assert_dpop_challenge(refused)
    headers = {"Authorization": f"DPoP {token}", "DPoP": key.proof("GET", sse, token), "Accept": "text/event-stream"}
    with httpx.stream("GET", sse, headers=headers, timeout=10) as stream:
        assert stream.status_code == 200, stream.read()
        # Kept open: a generator given up on would close the stream, and the session with it.
        lines = stream.iter_lines()
        assert next(lines) == "event: endpoint"
        endpoint = next(lines).removeprefix("data: ")
        assert endpoint.startswith("/messages?sessionId="), endpoint
        messages = stack.gateway_url + endpoint
        # The proof's htu is the endpoint without its query (RFC 9449 §4.3).
        posted = httpx.post(messages, headers={"Authorization": f"DPoP {token}",
                                               "DPoP": key.proof("POST", htu(httpx.URL(messages)), token)},
                            json=INITIALIZE)
        assert posted.status_code in (200, 202), (posted.status_code, posted.text)
        wrong = httpx.post(messages, headers={"Authorization": f"DPoP {token}",
                                              "DPoP": key.proof("POST", sse, token)}, json=INITIALIZE)
        assert_dpop_challenge(wrong)


# === 3. Hostile proofs at /token ==================================================================================


@pytest.fixture(scope="module")
def machine(stack: Stack):
    return add_client(stack, scope="read:todos")


def client_credentials(stack: Stack, machine, proof: str | list[str] | None, **extra: str) -> httpx.Response:
    return token_request(stack, {"grant_type": "client_credentials", **extra}, proof, auth=machine)


def test_a_machine_client_gets_a_bound_token(stack: Stack, machine):
    client_id, _ = machine
    token_url = f"{stack.gateway_url}/token"
    for key in (ProofKey("EC"), ProofKey("RSA", "PS256")):
        issued = assert_bound(client_credentials(stack, machine, key.proof("POST", token_url)))
        assert "refresh_token" not in issued
        token = issued["access_token"]
        assert_bearer_invalid_token(mcp_request(stack, token, None, scheme="Bearer"))
        auth = DPoPAuth(key, token)

        async def run():
            async with dpop_session(stack, auth) as session:
                me = structured(await session.call_tool("whoami", {}))
                assert me["sub"] == client_id and me.get("machine_client") is True

        anyio.run(run)
    # Without a proof the same client gets a bearer token, as before.
    plain = client_credentials(stack, machine, None)
    assert plain.status_code == 200 and plain.json()["token_type"] == "Bearer"
    assert "dpop-nonce" not in plain.headers


def test_proofs_at_token_are_compared_without_query_and_with_a_normalized_url(stack: Stack, machine):
    key = ProofKey("EC")
    port = stack.gateway_url.rsplit(":", 1)[1]
    for url in (f"{stack.gateway_url}/token?x=1", f"{stack.gateway_url}/token#f", f"HTTP://127.0.0.1:{port}/token"):
        assert_bound(client_credentials(stack, machine, key.proof("POST", url)))


def test_an_identity_assertion_gets_a_bound_token(stack: Stack, enterprise):
    issuer, _ = enterprise
    client_id, secret = add_client(stack, grant="jwt-bearer", scope="read:todos", name="DPoP enterprise client")
    assertion = id_jag(enterprise, stack.gateway_url, client_id)
    key = ProofKey("EC")
    issued = assert_bound(token_request(stack, {"grant_type": JWT_BEARER, "assertion": assertion},
                                        key.proof("POST", f"{stack.gateway_url}/token"), auth=(client_id, secret)))
    token = issued["access_token"]
    assert_bearer_invalid_token(mcp_request(stack, token, None, scheme="Bearer"))
    auth = DPoPAuth(key, token)

    async def run():
        async with dpop_session(stack, auth) as session:
            me = structured(await session.call_tool("whoami", {}))
            assert me["sub"] == f"{issuer}|enterprise|erin"

    anyio.run(run)


def hostile_token_proofs(stack: Stack, key: ProofKey) -> dict[str, list[str]]:
    token_url = f"{stack.gateway_url}/token"
    port = stack.gateway_url.rsplit(":", 1)[1]
    now = int(time.time())
    claims = key.claims("POST", token_url)
    return {
        "another path": [key.proof("POST", stack.mcp_url)],
        "another host": [key.proof("POST", f"http://localhost:{port}/token")],
        "another method": [key.proof("GET", token_url)],
        "expired iat": [key.proof("POST", token_url, iat=now - 600)],
        "iat in the future": [key.proof("POST", token_url, iat=now + 300)],
        "no jti": [key.proof("POST", token_url, jti=DROP)],
        "typ JWT": [key.proof("POST", token_url, header={"typ": "JWT"})],
        "alg none": [unsigned({"typ": "dpop+jwt", "alg": "none", "jwk": key.public_jwk}, claims)],
        "HS256": [hmac_signed(json.dumps(key.public_jwk).encode(),
                              {"typ": "dpop+jwt", "alg": "HS256", "jwk": key.public_jwk}, claims)],
        "a private key in jwk": [jwt.encode(claims, key.private_key, algorithm="ES256", headers={
            "typ": "dpop+jwt", "jwk": key.private_jwk})],
        "no jwk": [key.proof("POST", token_url, header={"jwk": DROP})],
        "two DPoP headers": [key.proof("POST", token_url), key.proof("POST", token_url)],
        "malformed base64": ["eyJ!!!.@@@.###"],
        "an empty proof": [""],
    }


TOKEN_CASES = ["another path", "another host", "another method", "expired iat", "iat in the future", "no jti",
               "typ JWT", "alg none", "HS256", "a private key in jwk", "no jwk", "two DPoP headers",
               "malformed base64", "an empty proof"]


@pytest.mark.parametrize("case", TOKEN_CASES)
def test_hostile_proofs_at_token_are_refused(stack: Stack, machine, case: str):
    key = ProofKey("EC")
    response = client_credentials(stack, machine, hostile_token_proofs(stack, key)[case])
    assert response.status_code < 500, (case, response.status_code, response.text)
    assert_token_error(response)


def test_a_replayed_proof_at_token(stack: Stack, machine):
    key = ProofKey("EC")
    proof = key.proof("POST", f"{stack.gateway_url}/token")
    assert_bound(client_credentials(stack, machine, proof))
    body = assert_token_error(client_credentials(stack, machine, proof))
    assert "jti" in body.get("error_description", ""), body


def test_a_proof_does_not_spend_the_code_when_it_is_refused(stack: Stack):
    """A code exchange with a bad proof is refused before the code is redeemed: the retry with a good proof works."""
    key = ProofKey("EC")
    client_id = register(stack)
    code, verifier = authorization_code(stack, client_id, "bob", "read:todos")
    form = {"grant_type": "authorization_code", "code": code, "client_id": client_id, "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier}
    assert_token_error(token_request(stack, form, key.proof("POST", stack.mcp_url)))
    assert_bound(token_request(stack, form, key.proof("POST", f"{stack.gateway_url}/token")))


def test_a_made_up_nonce_at_token_without_nonces_required(stack: Stack, machine):
    key = ProofKey("EC")
    response = client_credentials(stack, machine, key.proof("POST", f"{stack.gateway_url}/token", nonce="made-up"))
    assert_token_error(response, "use_dpop_nonce")
    assert response.headers.get("dpop-nonce")


def test_a_nonce_that_is_not_a_string_is_refused(stack: Stack, machine, alice):
    """RFC 9449 §8: "If the nonce claim in the DPoP proof does not exactly match a nonce recently supplied by the
    authorization server to the client, the authorization server MUST reject the request." A number is no nonce the
    gateway supplied, whether or not nonces are required."""
    key = ProofKey("EC")
    at_token = client_credentials(stack, machine, key.proof("POST", f"{stack.gateway_url}/token", nonce=12345))
    assert at_token.status_code == 400, (at_token.status_code, at_token.text)
    assert at_token.json()["error"] in ("use_dpop_nonce", "invalid_dpop_proof"), at_token.text
    key, tokens = alice
    token = tokens["access_token"]
    at_mcp = mcp_request(stack, token, key.proof("POST", stack.mcp_url, token, nonce=12345))
    assert at_mcp.status_code == 401, (at_mcp.status_code, at_mcp.text)


def test_iat_within_the_window_is_accepted(stack: Stack, machine):
    key = ProofKey("EC")
    now = int(time.time())
    for iat in (now - 280, now + 50, now + 0.5):
        assert_bound(client_credentials(stack, machine, key.proof("POST", f"{stack.gateway_url}/token", iat=iat)))


def test_a_confidential_clients_refresh_tokens_are_not_bound(stack: Stack):
    """RFC 9449 §5: refresh tokens of confidential clients are sender-constrained by client authentication, not by
    the key; the access tokens are bound whenever a proof is sent."""
    registered = httpx.post(f"{stack.gateway_url}/register", json={
        "client_name": "DPoP confidential client", "redirect_uris": [REDIRECT_URI],
        "token_endpoint_auth_method": "client_secret_basic", "grant_types": ["authorization_code", "refresh_token"]})
    assert registered.status_code == 201, registered.text
    client = (registered.json()["client_id"], registered.json()["client_secret"])
    key = ProofKey("EC")
    token_url = f"{stack.gateway_url}/token"
    code, verifier = authorization_code(stack, client[0], "alice", "read:todos offline_access")
    tokens = assert_bound(token_request(stack, {"grant_type": "authorization_code", "code": code,
                                                "redirect_uri": REDIRECT_URI, "code_verifier": verifier},
                                        key.proof("POST", token_url), auth=client))
    plain = token_request(stack, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                          auth=client)
    assert plain.status_code == 200 and plain.json()["token_type"] == "Bearer", plain.text
    assert_bound(token_request(stack, {"grant_type": "refresh_token", "refresh_token": plain.json()["refresh_token"]},
                               ProofKey("RSA").proof("POST", token_url), auth=client))


# === 4. Nonces ====================================================================================================


def test_nonces_required_at_token_and_mcp(nonce_stack: Stack):
    stack = nonce_stack
    key = ProofKey("EC")
    token_url = f"{stack.gateway_url}/token"
    client_id = register(stack)
    code, verifier = authorization_code(stack, client_id, "alice", "read:todos write:todos offline_access")
    form = {"grant_type": "authorization_code", "code": code, "client_id": client_id, "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier}
    # No nonce: use_dpop_nonce with one to use; the code is not spent.
    asked = token_request(stack, form, key.proof("POST", token_url))
    assert_token_error(asked, "use_dpop_nonce")
    nonce = asked.headers["dpop-nonce"]
    assert nonce
    # A made-up nonce: the same.
    made_up = token_request(stack, form, key.proof("POST", token_url, nonce="made-up-" + nonce[:8]))
    assert_token_error(made_up, "use_dpop_nonce")
    tokens = assert_bound(token_request(stack, form, key.proof("POST", token_url, nonce=nonce)))
    token = tokens["access_token"]

    # At /mcp: no nonce, then the nonce of the challenge.
    refused = mcp_request(stack, token, key.proof("POST", stack.mcp_url, token))
    assert_dpop_challenge(refused, "use_dpop_nonce")
    mcp_nonce = refused.headers["dpop-nonce"]
    assert mcp_request(stack, token, key.proof("POST", stack.mcp_url, token, nonce=mcp_nonce)).status_code == 200
    assert_dpop_challenge(mcp_request(stack, token, key.proof("POST", stack.mcp_url, token, nonce="made-up")),
                          "use_dpop_nonce")
    # The nonce of /token serves at /mcp as well (one server-wide nonce per window).
    assert mcp_request(stack, token, key.proof("POST", stack.mcp_url, token, nonce=nonce)).status_code == 200
    # A bad proof with a good nonce is still a bad proof.
    assert_dpop_challenge(mcp_request(stack, token, key.proof("GET", stack.mcp_url, token, nonce=nonce)))

    # The refresh needs the nonce too.
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": client_id}
    assert_token_error(token_request(stack, refresh, key.proof("POST", token_url)), "use_dpop_nonce")
    assert_bound(token_request(stack, refresh, key.proof("POST", token_url, nonce=nonce)))

    # The SDK through an auth that answers the challenge: the tools work.
    auth = DPoPAuth(key, token)

    async def run():
        async with dpop_session(stack, auth) as session:
            me = structured(await session.call_tool("whoami", {}))
            assert me["sub"] == "auth0|alice"

    anyio.run(run)


def test_nonces_required_for_machine_clients(nonce_stack: Stack):
    machine = add_client(nonce_stack, scope="read:todos")
    key = ProofKey("RSA", "PS256")
    token_url = f"{nonce_stack.gateway_url}/token"
    asked = client_credentials(nonce_stack, machine, key.proof("POST", token_url))
    assert_token_error(asked, "use_dpop_nonce")
    assert_bound(client_credentials(nonce_stack, machine, key.proof("POST", token_url,
                                                                    nonce=asked.headers["dpop-nonce"])))
    # Without any proof the client still gets a bearer token: nonces are for DPoP requests.
    plain = client_credentials(nonce_stack, machine, None)
    assert plain.status_code == 200 and plain.json()["token_type"] == "Bearer"


def test_a_use_dpop_nonce_answer_does_not_spend_the_identity_assertion(nonce_stack: Stack, enterprise):
    """RFC 9449 §8: after `use_dpop_nonce` "the client is expected to retry its token request using a DPoP proof
    including the supplied nonce": the retry carries the same grant, which must still be good."""
    client_id, secret = add_client(nonce_stack, grant="jwt-bearer", scope="read:todos", name="nonce enterprise")
    form = {"grant_type": JWT_BEARER, "assertion": id_jag(enterprise, nonce_stack.gateway_url, client_id)}
    key = ProofKey("EC")
    token_url = f"{nonce_stack.gateway_url}/token"
    asked = token_request(nonce_stack, form, key.proof("POST", token_url), auth=(client_id, secret))
    assert_token_error(asked, "use_dpop_nonce")
    assert_bound(token_request(nonce_stack, form, key.proof("POST", token_url, nonce=asked.headers["dpop-nonce"]),
                               auth=(client_id, secret)))


def test_a_use_dpop_nonce_answer_does_not_spend_the_client_assertion(nonce_stack: Stack, tmp_path):
    """The same retry for a private_key_jwt client (RFC 7523 §2.2): the token request it repeats with the nonce
    carries the same client assertion. If the gateway records the assertion's jti before it asks for a nonce, the
    retry RFC 9449 §8 describes fails as a replayed assertion (invalid_client), and the client must know to sign a
    new assertion for it."""
    signing_key = SigningKey("nonce-client")
    jwks = tmp_path / "client.jwks.json"
    jwks.write_text(json.dumps({"keys": [signing_key.public_jwk()]}))
    added = admin(nonce_stack, "add-client", "--name", "nonce key client", "--grant", "client_credentials", "--auth",
                  "private_key_jwt", "--scope", "read:todos", "--jwks-file", str(jwks), "--json")
    assert added.returncode == 0, added.stderr
    client_id = json.loads(added.stdout)["client"]["id"]
    now = int(time.time())
    assertion = signing_key.sign({"iss": client_id, "sub": client_id, "aud": nonce_stack.gateway_url,
                                  "exp": now + 120, "iat": now, "jti": uuid.uuid4().hex})
    form = {"grant_type": "client_credentials", "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": assertion}
    key = ProofKey("EC")
    token_url = f"{nonce_stack.gateway_url}/token"
    asked = token_request(nonce_stack, form, key.proof("POST", token_url))
    assert_token_error(asked, "use_dpop_nonce")
    assert_bound(token_request(nonce_stack, form, key.proof("POST", token_url, nonce=asked.headers["dpop-nonce"])))


# === 5. Metadata ==================================================================================================


def test_metadata_announces_dpop(stack: Stack):
    server = httpx.get(f"{stack.gateway_url}/.well-known/oauth-authorization-server").json()
    assert server["dpop_signing_alg_values_supported"] == ALGORITHMS.split()
    assert "none" not in server["dpop_signing_alg_values_supported"]
    assert not any(alg.startswith("HS") for alg in server["dpop_signing_alg_values_supported"])
    for path in ("/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp",
                 "/.well-known/oauth-protected-resource/sse"):
        resource = httpx.get(stack.gateway_url + path).json()
        assert resource["dpop_signing_alg_values_supported"] == ALGORITHMS.split(), path
        assert resource["dpop_bound_access_tokens_required"] is False, path


def test_cors_lets_a_browser_client_send_proofs_and_read_nonces(stack: Stack, alice):
    """A browser client (MCP Inspector's Direct mode, from http://localhost:6274) must be allowed to send the `DPoP`
    header to /token and /mcp, and to read `DPoP-Nonce` (RFC 9449 §8) and the challenge."""
    origin = "http://localhost:6274"
    for url in (f"{stack.gateway_url}/token", stack.mcp_url):
        preflight = httpx.options(url, headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                                "Access-Control-Request-Headers": "authorization,dpop,content-type"})
        assert preflight.status_code == 204, (url, preflight.status_code, preflight.text)
        allowed = [name.strip().lower() for name in preflight.headers["access-control-allow-headers"].split(",")]
        assert "dpop" in allowed and "authorization" in allowed, allowed
    key, tokens = alice
    token = tokens["access_token"]
    refused = httpx.post(stack.mcp_url, headers={"Origin": origin, "Authorization": f"DPoP {token}",
                                                 "DPoP": key.proof("GET", stack.mcp_url, token), "Accept": ACCEPT},
                         json=INITIALIZE)
    assert_dpop_challenge(refused)
    exposed = [name.strip().lower() for name in refused.headers["access-control-expose-headers"].split(",")]
    assert "dpop-nonce" in exposed and "www-authenticate" in exposed, exposed


# === 6. Two instances on one database ============================================================================


@dataclass
class Endpoint:
    """Where the helpers send requests: the balancer of a cluster, or one instance behind it (the proofs name the
    public URL either way)."""
    gateway_url: str

    @property
    def mcp_url(self) -> str:
        return self.gateway_url + "/mcp"


@pytest.mark.skipif(not os.environ.get("GATEWAY_TEST_DATABASE_URL"),
                    reason="needs PostgreSQL (scripts/with-postgres.sh, as make test runs it)")
def test_proofs_and_nonces_hold_on_every_instance():
    """A proof used at one instance is refused at the other (jti recorded in the shared database); a nonce either
    issued is good at both (derived from the shared secret); a token bound at one is bound at the other."""
    from cluster import start_cluster

    cluster = start_cluster(2, gateway_env={"DPOP_NONCE_REQUIRED": "true"})
    try:
        public = Endpoint(cluster.url)
        first, second = Endpoint(cluster.gateway_url(0)), Endpoint(cluster.gateway_url(1))
        key = ProofKey("EC")
        token_url = f"{cluster.url}/token"
        client_id = register(public)
        code, verifier = authorization_code(public, client_id, "alice", "read:todos offline_access")
        form = {"grant_type": "authorization_code", "code": code, "client_id": client_id,
                "redirect_uri": REDIRECT_URI, "code_verifier": verifier}
        # The nonce of the first instance, at the second.
        asked = token_request(first, form, key.proof("POST", token_url))
        assert_token_error(asked, "use_dpop_nonce")
        nonce = asked.headers["dpop-nonce"]
        tokens = assert_bound(token_request(second, form, key.proof("POST", token_url, nonce=nonce)))
        token = tokens["access_token"]
        # One proof, both instances: used once.
        proof = key.proof("POST", public.mcp_url, token, nonce=nonce)
        assert mcp_request(first, token, proof).status_code == 200
        challenge = assert_dpop_challenge(mcp_request(second, token, proof))
        assert "jti" in challenge
        # The binding, at either instance.
        for instance in (first, second):
            assert_bearer_invalid_token(mcp_request(instance, token, None, scheme="Bearer"))
            proof = key.proof("POST", public.mcp_url, token, nonce=nonce)
            assert mcp_request(instance, token, proof).status_code == 200
        refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": client_id}
        assert_token_error(token_request(second, refresh, ProofKey("EC").proof("POST", token_url, nonce=nonce)))
        assert_bound(token_request(first, refresh, key.proof("POST", token_url, nonce=nonce)))
    finally:
        cluster.stop()
