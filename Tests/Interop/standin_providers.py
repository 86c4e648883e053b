"""Stand-in identity providers for interop tests: small in-process servers that behave like real providers the gateway
must support, with the quirks that matter to a client, on 127.0.0.1 in a background thread. Python stdlib and PyJWT.

- `OpaqueTokenProvider` mimics Google's OpenID Connect provider: discovery, the code flow (it insists on
  `response_type=code`, an exact registered `redirect_uri`, `state`, `nonce` and PKCE S256), a login form, a token
  endpoint (client_secret_basic or client_secret_post; refresh tokens rotate), `/userinfo`, `/jwks`. Its access tokens
  are OPAQUE random strings: nothing but the provider itself can check them. RS256 ID tokens carry `nonce`.
  Google's own quirks are options: `refresh_tokens=False` (Google gives none without `access_type=offline`) and
  `rejected_scopes=("offline_access",)` (Google refuses that scope with `invalid_scope`).
- `NoScopeJWTProvider` (the same class with `access_token_kind="jwt-no-scope"`) mimics Okta or Entra set-ups whose
  access tokens are RS256 JWTs with `aud` = the client id and no `scope`, `scp` or `permissions` claim.
- `GitHubStandIn` mimics a GitHub OAuth app, which is NOT OpenID Connect: no discovery, no ID token, no JWKS;
  `/login/oauth/authorize`, `/login/oauth/access_token` (which answers form-urlencoded unless asked for JSON, and
  reports errors with HTTP 200 and an `error` field), and the REST API under `/api/v3` (GitHub Enterprise's layout):
  `/user` (`email` is the PUBLIC email, often null) and `/user/emails` (needs the `user:email` or `user` scope;
  without it, 404 as GitHub does). Tokens are `gho_…` strings that never expire; there is no refresh token.
  The first authorization of an app by a user shows a consent page (as GitHub's "Authorize app" page), later ones
  go straight back; a denial redirects with `error=access_denied`.

Every provider records the requests it received (`requests`, `received(path)`), shows a login form that
headless_browser.HeadlessBrowser fills in (fields `username` and `password`, demo passwords `<user>-password`), or
with `auto_login_user="alice"` signs that user in at once. `revoke_user_sessions(user)` ends a user's sessions.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
import string
import threading
import time
from dataclasses import dataclass
from typing import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit

from support import SigningKey, free_port

Response = tuple[int, dict[str, str], bytes]
VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


@dataclass
class Received:
    """One request a provider answered: `params` merges the query and a form-urlencoded body; header names are
    lower-case."""
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]


def pkce_challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _json(status: int, document: object, headers: dict[str, str] | None = None) -> Response:
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(document).encode()


def _redirect(url: str, params: dict[str, str]) -> Response:
    query = urlencode({key: value for key, value in params.items() if value is not None})
    return 302, {"Location": url + ("&" if "?" in url else "?") + query}, b""


def _page(status: int, title: str, body: str) -> Response:
    document = f"<!doctype html><html><head><title>{html.escape(title)}</title></head><body>{body}</body></html>"
    return status, {"Content-Type": "text/html; charset=utf-8"}, document.encode()


class _StandIn:
    """The server, the request log, the login form and the pending authorizations; subclasses add the routes."""

    login_path = "/login"

    def __init__(self, users: dict[str, dict], clients: list[dict], auto_login_user: str | None) -> None:
        self.port = free_port()
        self.base_url = self.issuer = f"http://127.0.0.1:{self.port}"
        self.users = users
        self.clients = {client["client_id"]: dict(client) for client in clients}
        self.auto_login_user = auto_login_user
        self.requests: list[Received] = []
        self.routes: dict[tuple[str, str], Callable[[Received], Response]] = {("POST", self.login_path): self._login}
        self._pending: dict[str, dict] = {}  # login form ticket -> the authorization request
        self._codes: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> "_StandIn":
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self._serve("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._serve("POST")

            def _serve(self, method: str) -> None:
                url = urlsplit(self.path)
                params = dict(parse_qsl(url.query, keep_blank_values=True))
                body = self._body()
                if self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
                    params.update(parse_qsl(body.decode(errors="replace"), keep_blank_values=True))
                headers = {name.lower(): value for name, value in self.headers.items()}
                status, response_headers, payload = owner._dispatch(Received(method, url.path, params, headers))
                self.send_response(status)
                for name, value in {"Cache-Control": "no-store", **response_headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _body(self) -> bytes:
                if "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
                    return self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = b""
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    body += self.rfile.read(size)
                    self.rfile.readline()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                    pass
                return body

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "_StandIn":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def received(self, path: str) -> list[Received]:
        """The requests received at `path`, oldest first."""
        return [request for request in self.requests if request.path == path]

    def _dispatch(self, request: Received) -> Response:
        with self._lock:  # one request at a time: the state is plain dictionaries
            self.requests.append(request)
            route = self.routes.get((request.method, request.path))
            try:
                return route(request) if route else self._not_found()
            except Exception as error:  # noqa: BLE001 - a stand-in's bug shows as a 500 naming it
                return _json(500, {"error": "server_error", "error_description": repr(error)})

    def _not_found(self) -> Response:
        return _json(404, {"error": "not_found"})

    def _login_form(self, authorization: dict, error: str = "") -> Response:
        """Shows the login form, or with `auto_login_user` skips it. The form is what HeadlessBrowser fills in."""
        if self.auto_login_user:
            return self._signed_in(authorization, self.auto_login_user)
        ticket = secrets.token_urlsafe(16)
        self._pending[ticket] = authorization
        message = f'<p role="alert">{html.escape(error)}</p>' if error else ""
        return _page(200, "Sign in", f"""<h1>Sign in to {html.escape(type(self).__name__)}</h1>{message}
<form method="post" action="{self.login_path}"><input type="hidden" name="ticket" value="{ticket}">
<label>Username <input type="text" name="username" autocomplete="username"></label>
<label>Password <input type="password" name="password" autocomplete="current-password"></label>
<button type="submit">Sign in</button></form>""")

    def _login(self, request: Received) -> Response:
        authorization = self._pending.pop(request.params.get("ticket", ""), None)
        if authorization is None:
            return _page(400, "Error", "<p>This sign-in page has expired. Start again.</p>")
        username, password = request.params.get("username", ""), request.params.get("password", "")
        user = self.users.get(username)
        if not user or not secrets.compare_digest(user["password"], password):
            return self._login_form(authorization, "Wrong username or password.")
        return self._signed_in(authorization, username)

    def _signed_in(self, authorization: dict, username: str) -> Response:
        raise NotImplementedError

    def _new_code(self, authorization: dict, username: str) -> str:
        code = secrets.token_urlsafe(24)
        self._codes[code] = {**authorization, "user": username, "expires": time.time() + 600}
        return code

    def _take_code(self, code: str, client_id: str) -> dict | None:
        """The grant behind `code`, spent on its first use even when that use fails, as with real providers."""
        grant = self._codes.pop(code, None)
        if grant is None or grant["client_id"] != client_id or grant["expires"] < time.time():
            return None
        return grant

    @staticmethod
    def _bearer(request: Received, schemes: tuple[str, ...] = ("bearer",)) -> str | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return token.strip() if scheme.lower() in schemes and token.strip() else None


DEFAULT_OIDC_USERS = {
    "alice": {"password": "alice-password", "sub": "opaque|alice", "email": "alice@example.com",
              "name": "Alice Example", "email_verified": True},
    "bob": {"password": "bob-password", "sub": "opaque|bob", "email": "bob@example.com",
            "name": "Bob Example", "email_verified": True},
}
DEFAULT_OIDC_CLIENTS = [{"client_id": "mcp-gateway", "client_secret": "gateway-secret",
                         "redirect_uris": ["http://localhost:3030/callback"]}]


class OpaqueTokenProvider(_StandIn):
    """An OpenID Connect provider like Google, with opaque access tokens (or, with `access_token_kind="jwt-no-scope"`,
    JWT access tokens without scopes). `clients`: dicts with `client_id`, `client_secret`, `redirect_uris`."""

    def __init__(self, clients: list[dict] | None = None, users: dict[str, dict] | None = None, *,
                 access_token_kind: str = "opaque", access_token_ttl: int = 3600, refresh_tokens: bool = True,
                 rejected_scopes: tuple[str, ...] = (), auto_login_user: str | None = None,
                 token_auth_methods: tuple[str, ...] = ("client_secret_basic", "client_secret_post")) -> None:
        if access_token_kind not in ("opaque", "jwt-no-scope"):
            raise ValueError(f"access_token_kind: {access_token_kind!r}")
        super().__init__(users or DEFAULT_OIDC_USERS, clients or DEFAULT_OIDC_CLIENTS, auto_login_user)
        self.access_token_kind, self.access_token_ttl = access_token_kind, access_token_ttl
        self.refresh_tokens, self.rejected_scopes = refresh_tokens, rejected_scopes
        self.token_auth_methods = token_auth_methods
        self.key = SigningKey(f"standin-{secrets.token_hex(4)}")
        self._access: dict[str, dict] = {}
        self._refresh: dict[str, dict] = {}
        self.routes.update({
            ("GET", "/.well-known/openid-configuration"): self._discovery, ("GET", "/jwks"): self._jwks,
            ("GET", "/authorize"): self._authorize, ("POST", "/token"): self._token,
            ("GET", "/userinfo"): self._userinfo, ("POST", "/userinfo"): self._userinfo,
        })

    def revoke_user_sessions(self, username: str) -> None:
        """The user's refresh tokens stop working (`invalid_grant`), as after a password change or a revocation."""
        with self._lock:
            self._refresh = {token: grant for token, grant in self._refresh.items() if grant["user"] != username}

    def _discovery(self, request: Received) -> Response:
        base = self.base_url
        return _json(200, {
            "issuer": self.issuer, "authorization_endpoint": base + "/authorize", "token_endpoint": base + "/token",
            "userinfo_endpoint": base + "/userinfo", "jwks_uri": base + "/jwks",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"], "code_challenge_methods_supported": ["S256"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_methods_supported": list(self.token_auth_methods),
            "scopes_supported": ["openid", "email", "profile", "offline_access"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "email", "email_verified", "name"],
        }, {"Cache-Control": "public, max-age=3600"})

    def _jwks(self, request: Received) -> Response:
        return _json(200, {"keys": [self.key.public_jwk()]}, {"Cache-Control": "public, max-age=3600"})

    def _authorize(self, request: Received) -> Response:
        p = request.params
        client = self.clients.get(p.get("client_id", ""))
        if client is None:  # never redirect to an unverified URI: an error page, as Google does
            return _page(401, "Error 401: invalid_client", "<p>Error 401: invalid_client. The OAuth client was not "
                                                           "found.</p>")
        redirect_uri = p.get("redirect_uri", "")
        if redirect_uri not in client["redirect_uris"]:
            return _page(400, "Error 400: redirect_uri_mismatch", "<p>Error 400: redirect_uri_mismatch</p>")
        scopes = p.get("scope", "").split()
        problem = (
            ("unsupported_response_type", "response_type must be code") if p.get("response_type") != "code" else
            ("invalid_scope", "scope must include openid") if "openid" not in scopes else
            ("invalid_scope", "scope not allowed: " + " ".join(s for s in scopes if s in self.rejected_scopes))
            if any(s in self.rejected_scopes for s in scopes) else
            ("invalid_request", "state is required") if not p.get("state") else
            ("invalid_request", "nonce is required") if not p.get("nonce") else
            ("invalid_request", "PKCE code_challenge with code_challenge_method=S256 is required")
            if not p.get("code_challenge") or p.get("code_challenge_method") != "S256" else None)
        if problem:
            return _redirect(redirect_uri, {"error": problem[0], "error_description": problem[1], "state": p.get("state")})
        return self._login_form({"client_id": client["client_id"], "redirect_uri": redirect_uri,
                                 "scope": " ".join(scopes), "state": p["state"], "nonce": p["nonce"],
                                 "code_challenge": p["code_challenge"]})

    def _signed_in(self, authorization: dict, username: str) -> Response:
        code = self._new_code(authorization, username)
        return _redirect(authorization["redirect_uri"], {"code": code, "state": authorization["state"]})

    def _token_error(self, error: str, description: str, status: int = 400) -> Response:
        headers = {"WWW-Authenticate": 'Basic realm="standin"'} if error == "invalid_client" else {}
        return _json(status, {"error": error, "error_description": description}, headers)

    def _client(self, request: Received) -> tuple[str | None, str]:
        """The authenticated client id, or None, and the method it used (RFC 6749 section 2.3.1)."""
        if basic := self._bearer(request, ("basic",)):
            try:
                client_id, _, secret = base64.b64decode(basic).decode().partition(":")
            except ValueError:
                return None, "client_secret_basic"
            client_id, secret, method = unquote_plus(client_id), unquote_plus(secret), "client_secret_basic"
        else:
            client_id, secret = request.params.get("client_id", ""), request.params.get("client_secret", "")
            method = "client_secret_post"
        client = self.clients.get(client_id)
        valid = client is not None and secret and secrets.compare_digest(client["client_secret"], secret)
        return (client_id if valid and method in self.token_auth_methods else None), method

    def _token(self, request: Received) -> Response:
        client_id, method = self._client(request)
        if client_id is None:
            return self._token_error("invalid_client", f"client authentication failed ({method})", 401)
        p, grant_type = request.params, request.params.get("grant_type")
        if grant_type == "authorization_code":
            grant = self._take_code(p.get("code", ""), client_id)
            if grant is None:
                return self._token_error("invalid_grant", "the code is unknown, expired, used or not this client's")
            if p.get("redirect_uri") != grant["redirect_uri"]:
                return self._token_error("invalid_grant", "redirect_uri does not match the authorization request")
            verifier = p.get("code_verifier", "")
            if not VERIFIER.match(verifier) or pkce_challenge(verifier) != grant["code_challenge"]:
                return self._token_error("invalid_grant", "code_verifier does not match the code_challenge")
            return _json(200, self._issue(grant["user"], client_id, grant["scope"], grant["nonce"]))
        if grant_type == "refresh_token":
            grant = self._refresh.get(p.get("refresh_token", ""))
            if grant is None or grant["client_id"] != client_id:
                return self._token_error("invalid_grant", "the refresh token is invalid, rotated or revoked")
            del self._refresh[p["refresh_token"]]  # rotation: the old refresh token is spent
            return _json(200, self._issue(grant["user"], client_id, grant["scope"], grant["nonce"]))
        return self._token_error("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")

    def _issue(self, username: str, client_id: str, scope: str, nonce: str) -> dict:
        user, now = self.users[username], int(time.time())
        if self.access_token_kind == "opaque":
            access_token = secrets.token_urlsafe(32)
        else:  # deliberately no scope, scp or permissions claim
            access_token = self.key.sign({"iss": self.issuer, "sub": user["sub"], "aud": client_id, "iat": now,
                                          "exp": now + self.access_token_ttl, "jti": secrets.token_hex(8)})
        self._access[access_token] = {"user": username, "expires": now + self.access_token_ttl}
        id_token = self.key.sign({"iss": self.issuer, "sub": user["sub"], "aud": client_id, "azp": client_id,
                                  "iat": now, "exp": now + 3600, "nonce": nonce, "email": user["email"],
                                  "email_verified": user.get("email_verified", True), "name": user["name"]})
        response = {"access_token": access_token, "token_type": "Bearer", "expires_in": self.access_token_ttl,
                    "scope": scope, "id_token": id_token}
        if self.refresh_tokens:
            response["refresh_token"] = secrets.token_urlsafe(32)
            self._refresh[response["refresh_token"]] = {"user": username, "client_id": client_id, "scope": scope,
                                                        "nonce": nonce}
        return response

    def _userinfo(self, request: Received) -> Response:
        grant = self._access.get(self._bearer(request) or "")
        if grant is None or grant["expires"] <= time.time():
            return _json(401, {"error": "invalid_token"}, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        user = self.users[grant["user"]]
        return _json(200, {"sub": user["sub"], "email": user["email"], "name": user["name"],
                           "email_verified": user.get("email_verified", True)})


class NoScopeJWTProvider(OpaqueTokenProvider):
    """OpaqueTokenProvider whose access tokens are RS256 JWTs for the client (`aud`) without any scope claim."""

    def __init__(self, clients: list[dict] | None = None, users: dict[str, dict] | None = None, **options) -> None:
        super().__init__(clients, users, **{"access_token_kind": "jwt-no-scope", **options})


DEFAULT_GITHUB_USERS = {
    "octocat": {"password": "octocat-password", "id": 583231, "name": "The Octocat", "email": None, "emails": [
        {"email": "octocat@github.example", "primary": True, "verified": True, "visibility": "private"},
        {"email": "octocat@unverified.example", "primary": False, "verified": False, "visibility": None}]},
    "hubot": {"password": "hubot-password", "id": 480938, "name": "Hubot", "email": "hubot@github.example",
              "emails": [{"email": "hubot@github.example", "primary": True, "verified": True, "visibility": "public"}]},
}
DEFAULT_GITHUB_CLIENTS = [{"client_id": "Iv1.standin", "client_secret": "github-secret",
                           "redirect_uris": ["http://localhost:3030/callback"]}]
GITHUB_ERRORS = {
    "incorrect_client_credentials": "The client_id and/or client_secret passed are incorrect.",
    "redirect_uri_mismatch": "The redirect_uri MUST match the registered callback URL for this application.",
    "bad_verification_code": "The code passed is incorrect or expired.",
    "bad_refresh_token": "The refresh token passed is incorrect or expired.",
    "unsupported_grant_type": "The grant type is not supported.",
}


class GitHubStandIn(_StandIn):
    """A GitHub OAuth app and the REST API under `api_base_url` (`<base_url>/api/v3`). `clients`: dicts with
    `client_id`, `client_secret`, `redirect_uris` (the first is the app's callback URL)."""

    login_path = "/session"

    def __init__(self, clients: list[dict] | None = None, users: dict[str, dict] | None = None, *,
                 auto_login_user: str | None = None) -> None:
        super().__init__(users or DEFAULT_GITHUB_USERS, clients or DEFAULT_GITHUB_CLIENTS, auto_login_user)
        self.api_base_url = self.base_url + "/api/v3"
        self.authorize_url = self.base_url + "/login/oauth/authorize"
        self.token_url = self.base_url + "/login/oauth/access_token"
        self._tokens: dict[str, dict] = {}
        self._authorized: set[tuple[str, str]] = set()  # (user, client_id) pairs that approved the app
        self.routes.update({
            ("GET", "/login/oauth/authorize"): self._authorize, ("POST", "/login/oauth/authorize"): self._consent,
            ("POST", "/login/oauth/access_token"): self._access_token,
            ("GET", "/api/v3/user"): self._user, ("GET", "/api/v3/user/emails"): self._emails,
        })

    def revoke_user_sessions(self, username: str) -> None:
        """The user's tokens answer 401 Bad credentials and the app must be approved again, as when the user revokes
        the app in their settings."""
        with self._lock:
            self._tokens = {token: grant for token, grant in self._tokens.items() if grant["user"] != username}
            self._authorized = {pair for pair in self._authorized if pair[0] != username}

    @staticmethod
    def _matches(uri: str, registered: str) -> bool:
        """GitHub accepts the callback URL or a path below it."""
        return uri == registered or uri.startswith(registered.rstrip("/") + "/")

    def _authorize(self, request: Received) -> Response:
        p = request.params
        client = self.clients.get(p.get("client_id", ""))
        if client is None:
            return _page(404, "Not Found", "<p>404: this is not the web page you are looking for.</p>")
        callback = client["redirect_uris"][0]
        redirect_uri = p.get("redirect_uri") or callback
        if not any(self._matches(redirect_uri, registered) for registered in client["redirect_uris"]):
            return _redirect(callback, {"error": "redirect_uri_mismatch", "state": p.get("state"),
                                        "error_description": GITHUB_ERRORS["redirect_uri_mismatch"]})
        if p.get("code_challenge") and p.get("code_challenge_method", "S256") != "S256":
            return _redirect(redirect_uri, {"error": "invalid_request", "state": p.get("state"),
                                            "error_description": "code_challenge_method must be S256"})
        scopes = [scope for scope in re.split(r"[ ,]+", p.get("scope", "")) if scope]
        return self._login_form({"client_id": client["client_id"], "redirect_uri": redirect_uri,
                                 "scope": ",".join(scopes), "state": p.get("state"),
                                 "code_challenge": p.get("code_challenge")})

    def _signed_in(self, authorization: dict, username: str) -> Response:
        if (username, authorization["client_id"]) in self._authorized or self.auto_login_user:
            return self._back_with_code(authorization, username)
        ticket = secrets.token_urlsafe(16)
        self._pending[ticket] = {**authorization, "user": username}
        return _page(200, "Authorize application", f"""<h1>Authorize {html.escape(authorization['client_id'])}</h1>
<p>Signed in as {html.escape(username)}. Scopes: {html.escape(authorization['scope'] or '(public data only)')}</p>
<form method="post" action="/login/oauth/authorize"><input type="hidden" name="ticket" value="{ticket}">
<input type="hidden" name="decision" value="approve"><button type="submit">Authorize</button></form>""")

    def _consent(self, request: Received) -> Response:
        authorization = self._pending.pop(request.params.get("ticket", ""), None)
        if authorization is None or "user" not in authorization:
            return _page(400, "Error", "<p>This page has expired. Start again.</p>")
        if request.params.get("decision") != "approve":
            return _redirect(authorization["redirect_uri"], {
                "error": "access_denied", "state": authorization["state"],
                "error_description": "The user has denied your application access."})
        self._authorized.add((authorization["user"], authorization["client_id"]))
        return self._back_with_code(authorization, authorization["user"])

    def _back_with_code(self, authorization: dict, username: str) -> Response:
        code = self._new_code(authorization, username)
        return _redirect(authorization["redirect_uri"], {"code": code, "state": authorization["state"]})

    def _access_token(self, request: Received) -> Response:
        p = request.params
        as_json = "application/json" in request.headers.get("accept", "")

        def answer(document: dict) -> Response:  # errors too are HTTP 200, as on GitHub
            if as_json:
                return _json(200, document)
            return 200, {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, urlencode(document).encode()

        def error(name: str) -> Response:
            return answer({"error": name, "error_description": GITHUB_ERRORS[name],
                           "error_uri": "https://docs.github.com/apps/troubleshooting-oauth-errors"})

        client_id, secret = p.get("client_id", ""), p.get("client_secret", "")
        if basic := self._bearer(request, ("basic",)):  # GitHub takes HTTP Basic too
            client_id, _, secret = base64.b64decode(basic + "==").decode(errors="replace").partition(":")
        client = self.clients.get(client_id)
        if client is None or not secret or not secrets.compare_digest(client["client_secret"], secret):
            return error("incorrect_client_credentials")
        if p.get("grant_type") == "refresh_token":
            return error("bad_refresh_token")  # an OAuth app's tokens do not expire: nothing to refresh
        if p.get("grant_type") not in (None, "authorization_code"):
            return error("unsupported_grant_type")
        grant = self._take_code(p.get("code", ""), client_id)
        if grant is None:
            return error("bad_verification_code")
        if p.get("redirect_uri") and not self._matches(p["redirect_uri"], grant["redirect_uri"]):
            return error("redirect_uri_mismatch")
        if grant["code_challenge"] and pkce_challenge(p.get("code_verifier", "")) != grant["code_challenge"]:
            return error("bad_verification_code")
        alphabet = string.ascii_letters + string.digits
        token = "gho_" + "".join(secrets.choice(alphabet) for _ in range(36))
        self._tokens[token] = {"user": grant["user"], "scope": grant["scope"]}
        return answer({"access_token": token, "scope": grant["scope"], "token_type": "bearer"})

    def _api_grant(self, request: Received) -> tuple[dict | None, Response | None]:
        token = self._bearer(request, ("bearer", "token"))
        if token is None:
            return None, self._api_error(401, "Requires authentication")
        grant = self._tokens.get(token)
        return (grant, None) if grant else (None, self._api_error(401, "Bad credentials"))

    @staticmethod
    def _api_error(status: int, message: str) -> Response:
        return _json(status, {"message": message, "documentation_url": "https://docs.github.com/rest"})

    def _api_headers(self, grant: dict) -> dict[str, str]:
        return {"X-OAuth-Scopes": ", ".join(grant["scope"].split(",")) if grant["scope"] else "",
                "X-GitHub-Media-Type": "github.v3"}

    def _user(self, request: Received) -> Response:
        grant, failure = self._api_grant(request)
        if failure:
            return failure
        login = grant["user"]
        user = self.users[login]
        return _json(200, {"login": login, "id": user["id"], "type": "User", "name": user["name"],
                           "email": user["email"]}, self._api_headers(grant))

    def _emails(self, request: Received) -> Response:
        grant, failure = self._api_grant(request)
        if failure:
            return failure
        if not {"user", "user:email"} & set(grant["scope"].split(",")):
            return self._api_error(404, "Not Found")
        return _json(200, self.users[grant["user"]]["emails"], self._api_headers(grant))

    def _not_found(self) -> Response:
        return self._api_error(404, "Not Found")
