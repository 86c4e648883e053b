"""Starts the whole system for an interop test: an identity provider (DevIdP or nanoidp), TodosAPI and the gateway,
on free loopback ports, and connects the official Python MCP SDK to it through OAuth, headlessly."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import anyio
import httpx2 as httpx
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.client import Client
from mcp.client.session import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from headless_browser import HeadlessBrowser
from nanoidp_server import NanoIDP
from support import BIN, Service, free_port

GATEWAY_CLIENT_ID = "mcp-gateway"
GATEWAY_CLIENT_SECRET = secrets.token_urlsafe(32)
REDIRECT_URI = "http://localhost:3030/callback"


@dataclass
class Stack:
    gateway_url: str
    api_url: str
    idp_issuer: str
    services: list[Service] = field(default_factory=list)
    idp: Service | None = None

    @property
    def mcp_url(self) -> str:
        return self.gateway_url + "/mcp"

    @property
    def sse_url(self) -> str:
        return self.gateway_url + "/sse"

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()


def start_stack(upstream: str = "devidp", gateway_env: dict[str, str] | None = None,
                devidp_env: dict[str, str] | None = None, common_env: dict[str, str] | None = None,
                api_env: dict[str, str] | None = None, nanoidp_options: dict | None = None,
                gateway_port: int | None = None, launcher: list[str] | None = None,
                provider_issuer: str | None = None, idp_port: int | None = None,
                gateway_binary: Path | None = None) -> Stack:
    """`api_env`, `gateway_env` and `devidp_env` may use `{gateway_url}`, filled in once the gateway's port is known.
    `launcher` prefixes every command (the benchmarks pin the services to one core with `taskset -c 0`).
    `upstream="given"` signs users in with a provider the test runs itself (`provider_issuer`, an OpenID provider
    of `standin_providers`, say), registered with `GATEWAY_CLIENT_ID`/`GATEWAY_CLIENT_SECRET`; a provider without
    OpenID Connect is configured by `gateway_env` alone. `idp_port` fixes DevIdP's port, so that its issuer
    (`http://127.0.0.1:<idp_port>/`) can be named in `gateway_env` beforehand. `gateway_binary` runs another build
    of the gateway (the benchmarks compare two versions side by side)."""
    launcher = launcher or []
    workdir = Path(tempfile.mkdtemp(prefix="stack-"))
    gateway_port, api_port = gateway_port or free_port(), free_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}"

    def filled(env: dict[str, str] | None) -> dict[str, str]:
        return {key: value.format(gateway_url=gateway_url) for key, value in (env or {}).items()}

    services: list[Service] = []
    try:
        if upstream == "given":
            issuer = provider_issuer or ""
            issuer_env = {"OIDC_ISSUER": issuer} if provider_issuer else {}
            idp = None
        elif upstream == "devidp":
            idp_port = idp_port or free_port()
            issuer = f"http://127.0.0.1:{idp_port}/"
            idp = Service("devidp", [*launcher, str(BIN / "DevIdP"), "serve", "--port", str(idp_port)], {
                "DEVIDP_ISSUER": issuer, "DEVIDP_SIGNING_KEY": str(workdir / "devidp.pem"),
                "AUTH0_CLIENT_ID": GATEWAY_CLIENT_ID, "AUTH0_CLIENT_SECRET": GATEWAY_CLIENT_SECRET,
                "PUBLIC_URL": gateway_url, **(common_env or {}), **filled(devidp_env),
            }, issuer + "health")
            services.append(idp)
            issuer_env = {"AUTH0_DOMAIN": issuer.rstrip("/")}
        else:
            nano = NanoIDP(clients=[{
                "client_id": GATEWAY_CLIENT_ID, "client_secret": GATEWAY_CLIENT_SECRET,
                "redirect_uris": [gateway_url + "/callback"],
            }], **(nanoidp_options or {}))
            idp = nano.service
            services.append(idp)
            issuer = nano.issuer
            issuer_env = {"OIDC_ISSUER": issuer}
        api = Service("todos-api", [*launcher, str(BIN / "TodosAPI"), "--port", str(api_port)], {
            **issuer_env, "TODOS_DATABASE": str(workdir / "todos.sqlite"), **(common_env or {}), **filled(api_env),
        }, f"http://127.0.0.1:{api_port}/api/health")
        services.append(api)
        gateway = Service("gateway", [*launcher, str(gateway_binary or BIN / "McpGateway"), "--port", str(gateway_port)], {
            **issuer_env, "PUBLIC_URL": gateway_url, "AUTH0_CLIENT_ID": GATEWAY_CLIENT_ID,
            "AUTH0_CLIENT_SECRET": GATEWAY_CLIENT_SECRET, "API_BASE_URL": f"http://127.0.0.1:{api_port}",
            "COOKIE_ENCRYPTION_KEY": secrets.token_urlsafe(32), "GATEWAY_ENCRYPTION_KEY": secrets.token_urlsafe(32),
            "GATEWAY_DATABASE": str(workdir / "gateway.sqlite"), **(common_env or {}), **filled(gateway_env),
        }, gateway_url + "/health")
        services.append(gateway)
    except Exception:
        for service in reversed(services):
            service.stop()
        raise
    return Stack(gateway_url, f"http://127.0.0.1:{api_port}", issuer, services, idp)


class MemoryStorage(TokenStorage):
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class HeadlessSignIn:
    """One user's OAuth client state (registration, tokens) and the headless browser that signs them in, as the MCP
    SDK's `redirect_handler` and `callback_handler`. Providers made by `provider()` share the state, so a user signs in
    once and later connections reuse the tokens; `authorizations` counts the sign-ins."""

    def __init__(self, username: str = "alice", password: str | None = None, storage: MemoryStorage | None = None,
                 redirect_uri: str = REDIRECT_URI) -> None:
        self.browser = HeadlessBrowser(username=username, password=password or f"{username}-password")
        self.storage = storage or MemoryStorage()
        self.redirect_uri = redirect_uri
        self.authorization_urls: list[str] = []
        self._pending: dict[str, str] | None = None

    @property
    def authorizations(self) -> int:
        """How many times the user was sent through the browser (sign-ins, step-ups included)."""
        return len(self.authorization_urls)

    async def redirect_handler(self, url: str) -> None:
        self.authorization_urls.append(url)
        self._pending = await anyio.to_thread.run_sync(self.browser.authorize, url, self.redirect_uri)

    async def callback_handler(self) -> AuthorizationCodeResult:
        query, self._pending = self._pending, None
        if query is None or "error" in query:
            raise RuntimeError(f"authorization failed: {query}")
        return AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))

    def provider(self, url: str, scope: str | None = None, client_metadata_url: str | None = None,
                 client_name: str = "Interop test (Python SDK)") -> OAuthClientProvider:
        """An `OAuthClientProvider` for the MCP endpoint `url` that signs in through this browser."""
        metadata = OAuthClientMetadata(
            client_name=client_name, redirect_uris=[self.redirect_uri], scope=scope,
            grant_types=["authorization_code", "refresh_token"], response_types=["code"],
            token_endpoint_auth_method="none")
        auth = OAuthClientProvider(url, metadata, self.storage, self.redirect_handler, self.callback_handler)
        if client_metadata_url:
            # Set after construction: the SDK accepts only https URLs, and tests serve the document over http on
            # loopback (which the gateway allows with CLIENT_ID_METADATA_ALLOW_PRIVATE). The flow is the SDK's own.
            auth.context.client_metadata_url = client_metadata_url
        return auth


@dataclass
class Connection:
    session: ClientSession
    signed_in: HeadlessSignIn

    @property
    def storage(self) -> MemoryStorage:
        return self.signed_in.storage

    @property
    def browser(self) -> HeadlessBrowser:
        return self.signed_in.browser

    @property
    def authorizations(self) -> int:
        """How many times the user was sent through the browser."""
        return self.signed_in.authorizations


@contextlib.asynccontextmanager
async def connect(stack: Stack, username: str = "alice", password: str | None = None, scope: str | None = None,
                  storage: MemoryStorage | None = None, transport: str = "streamable-http",
                  client_metadata_url: str | None = None, message_handler=None):
    """An MCP client session through the gateway, signed in as `username` by OAuth, with no human involved, over
    Streamable HTTP (`/mcp`) or the legacy HTTP+SSE transport (`transport="sse"`, `/sse`). With
    `client_metadata_url`, the client identifies itself by that Client ID Metadata Document instead of registering."""
    signed_in = HeadlessSignIn(username, password, storage)
    url = stack.sse_url if transport == "sse" else stack.mcp_url
    auth = signed_in.provider(url, scope=scope, client_metadata_url=client_metadata_url)
    async with contextlib.AsyncExitStack() as exits:
        if transport == "sse":
            read, write = await exits.enter_async_context(sse_client(url, auth=auth, timeout=30))
        else:
            http = await exits.enter_async_context(httpx.AsyncClient(auth=auth, timeout=30))
            read, write = await exits.enter_async_context(streamable_http_client(url, http_client=http))
        session = await exits.enter_async_context(ClientSession(read, write, message_handler=message_handler))
        await session.initialize()
        yield Connection(session, signed_in)


@dataclass
class WireRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: object


class WireLog:
    """What an HTTP client sent to the MCP endpoints (`/mcp`, `/messages`), recorded by an httpx event hook: the
    revision a client claims to speak is checked against the requests it actually made."""

    def __init__(self, paths: tuple[str, ...] = ("/mcp", "/messages")) -> None:
        self.paths = paths
        self.requests: list[WireRequest] = []

    async def __call__(self, request: httpx.Request) -> None:
        if request.url.path not in self.paths:
            return
        try:
            body = json.loads(request.content) if request.content else None
        except (httpx.RequestNotRead, ValueError):
            body = None
        self.requests.append(WireRequest(request.method, request.url.path,
                                         {key.lower(): value for key, value in request.headers.items()}, body))

    def hook(self, client: httpx.AsyncClient) -> httpx.AsyncClient:
        client.event_hooks.setdefault("request", []).append(self)
        return client

    @property
    def posts(self) -> list[WireRequest]:
        return [request for request in self.requests if request.method == "POST"]

    @property
    def methods(self) -> list[str]:
        """The JSON-RPC methods POSTed, in order (the authentication retries of one request appear once per try)."""
        return [request.body.get("method") for request in self.posts if isinstance(request.body, dict)]


@contextlib.asynccontextmanager
async def sdk_client(url: str, signed_in: HeadlessSignIn, mode: str = "auto", transport: str = "streamable-http",
                     wire: WireLog | None = None):
    """The SDK's high-level `mcp.Client` on the MCP endpoint `url`, authenticated by OAuth through `signed_in` (which
    signs the user in on the first 401 and reuses its tokens afterwards). `mode` is the client's own: "auto" (probe
    `server/discover`, fall back to `initialize`), "legacy" (`initialize`) or a stateless revision ("2026-07-28").
    `transport="sse"` uses the SDK's HTTP+SSE client (`/sse`) instead of Streamable HTTP. `wire` records the
    requests."""
    auth = signed_in.provider(url)
    async with contextlib.AsyncExitStack() as exits:
        if transport == "sse":
            def factory(headers=None, timeout=None, auth=None) -> httpx.AsyncClient:
                client = create_mcp_http_client(headers=headers, timeout=timeout, auth=auth)
                return wire.hook(client) if wire else client

            connection = sse_client(url, auth=auth, timeout=30, httpx_client_factory=factory)
        else:
            http = httpx.AsyncClient(auth=auth, timeout=30)
            http = await exits.enter_async_context(wire.hook(http) if wire else http)
            connection = streamable_http_client(url, http_client=http)
        client = await exits.enter_async_context(Client(connection, mode=mode, read_timeout_seconds=30))
        yield client


def sign_in(gateway_url: str, username: str = "alice", scope: str = "read:todos offline_access") -> dict[str, str]:
    """Registers a public client and signs `username` in with plain OAuth requests (no MCP SDK); returns the token
    response with the client id added."""
    registered = httpx.post(f"{gateway_url}/register", json={
        "client_name": "raw OAuth client", "redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
    })
    # A failed registration says what the gateway answered (a 429, a 503 with its reason), not only that a key is missing.
    assert registered.status_code == 201, f"POST /register: {registered.status_code} {registered.text[:500]}"
    client_id = registered.json()["client_id"]
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = HeadlessBrowser(username=username, password=f"{username}-password").authorize(
        f"{gateway_url}/authorize?" + urlencode({
            "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI, "state": "s",
            "code_challenge": challenge, "code_challenge_method": "S256", "scope": scope,
        }), REDIRECT_URI)
    tokens = httpx.post(f"{gateway_url}/token", data={
        "grant_type": "authorization_code", "code": query["code"], "client_id": client_id,
        "redirect_uri": REDIRECT_URI, "code_verifier": verifier,
    }).json()
    return {**tokens, "client_id": client_id}


def open_session(mcp_url: str, access_token: str) -> str:
    """Initializes an MCP session with plain HTTP requests; returns its id."""
    headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json, text/event-stream"}
    response = httpx.post(mcp_url, headers=headers, json={
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
    })
    response.raise_for_status()
    session = response.headers["mcp-session-id"]
    httpx.post(mcp_url, headers={**headers, "Mcp-Session-Id": session},
               json={"jsonrpc": "2.0", "method": "notifications/initialized"}).raise_for_status()
    return session


def call_tool(http: httpx.Client, url: str, access_token: str, name: str = "list-todos",
              arguments: dict | None = None, client_name: str = "interop-test") -> httpx.Response:
    """One MCP 2026-07-28 stateless `tools/call` as raw HTTP (no SDK): the headers and `_meta` that revision asks for.
    `url` is the gateway's base URL."""
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": client_name, "version": "1"}}
    return http.post(f"{url}/mcp", headers={
        "Authorization": f"Bearer {access_token}", "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": name,
    }, json={"jsonrpc": "2.0", "id": 1, "method": "tools/call",
             "params": {"name": name, "arguments": arguments or {}, "_meta": meta}})
