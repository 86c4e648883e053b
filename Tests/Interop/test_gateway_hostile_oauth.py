"""Hostile and malformed requests against the gateway's OAuth 2.1 authorization server: POST /token, POST /revoke,
GET and POST /authorize, POST /register, GET /callback and the metadata documents.

Every exchange must be answered within DEADLINE seconds, never with a 5xx, and never with a redirect (Location) to an
address the client did not register. Where the RFCs say which status and error code, the exact ones are checked:

- RFC 6749 §3.1/§3.2 and §5.2: /token takes application/x-www-form-urlencoded only (anything else is
  `invalid_request`), a parameter sent twice is `invalid_request`, an unknown grant type `unsupported_grant_type`, an
  unknown client `invalid_client` (401 with `WWW-Authenticate: Basic`, or 400), a bad code, verifier or redirect_uri
  `invalid_grant`; `error_description` only holds %x20-21 / %x23-5B / %x5D-7E, whatever hostile input it quotes;
  every answer carries `Cache-Control: no-store`. No OAuth parameter holds a control character (%00-%1F, %7F,
  %C2%80-%C2%9F): such a request is `invalid_request`, and `client_id=<real id>%00zzz` never passes for the real client.
- RFC 7636: PKCE S256 only; a missing `code_verifier` is `invalid_request`, a wrong one `invalid_grant`.
- RFC 8707: a `resource` other than the gateway's MCP endpoints is `invalid_target`.
- RFC 6749 §4.1.2.1, RFC 9207, RFC 9700 §4.1 and §4.12: until the client and its redirect URI are validated, /authorize
  errors are a page (4xx) and nothing is redirected; after, errors go back to the registered redirect URI (302) with
  `error`, the `state` sent and `iss`; the consent form's answer is a 303.
- RFC 7009: /revoke answers 200 for unknown tokens and tokens of other clients (which stay valid).
- RFC 7591: /register refuses non-JSON bodies and bad metadata with `invalid_client_metadata`, unusable redirect URIs
  (not RFC 3986 absolute URIs, javascript:, data:, file:, fragments, user information, http off loopback) with
  `invalid_redirect_uri`.
- Bodies over 16 KiB: 413.

One stack serves the module (rate limits off, so that the corpus is not throttled).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
import socket
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import httpx2 as httpx
import pytest

from gateway_stack import Stack, open_session, sign_in, start_stack
from headless_browser import HeadlessBrowser
from support import free_port

DEADLINE = 2.0
LIMIT = 16 * 1024
FORM = "application/x-www-form-urlencoded"
#: RFC 6749 §5.2: error_description = 1*( %x20-21 / %x23-5B / %x5D-7E )
DESCRIPTION = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")
#: C0, DEL and C1: none may appear in an OAuth parameter.
CONTROLS = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]
#: A few of them, for the cases repeated per parameter.
SOME_CONTROLS = [0x00, 0x09, 0x0A, 0x0D, 0x1B, 0x1F, 0x7F, 0x80, 0x85, 0x9F]
VERIFIER = "v" * 20 + "-._~" + "V" * 40  # well formed (RFC 7636 §4.1), matches no code


def pct(codepoint: int) -> str:
    """The percent-encoded UTF-8 of a control character: %00…%1F, %7F, %C2%80…%C2%9F."""
    return f"%{codepoint:02X}" if codepoint < 0x80 else f"%C2%{codepoint:02X}"


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


CHALLENGE = s256(secrets.token_urlsafe(48))


# ----------------------------------------------------------------------------------------------------------------------
# The stack and its clients


@dataclass
class Ctx:
    stack: Stack
    host: str
    port: int
    #: A public client (token_endpoint_auth_method none) registered with `redirect` only.
    cid: str
    #: Another public client with the same redirect URI.
    cid2: str
    #: A confidential client (client_secret_basic).
    conf: str
    secret: str
    redirect: str
    #: A public client with two redirect URIs (`redirect` and another), so that /authorize must be told which.
    multi: str

    @property
    def gw(self) -> str:
        return self.stack.gateway_url

    def values(self) -> dict[str, str]:
        return {
            "cid": self.cid, "CID": self.cid.upper(), "cid2": self.cid2, "multi": self.multi, "conf": self.conf, "secret": self.secret, "gw": self.gw,
            "redirect": self.redirect, "redirect_q": quote(self.redirect, safe=""), "port": str(self.port),
            "cbport": str(urlsplit(self.redirect).port), "resource": self.gw + "/mcp",
            "resource_q": quote(self.gw + "/mcp", safe=""), "challenge": CHALLENGE, "verifier": VERIFIER,
        }

    def fill(self, text):
        """`text` (str or bytes) with {cid}, {redirect_q}, … replaced."""
        for key, value in self.values().items():
            if isinstance(text, bytes):
                text = text.replace(b"{" + key.encode() + b"}", value.encode())
            else:
                text = text.replace("{" + key + "}", value)
        return text


def register(gateway_url: str, **metadata) -> dict:
    response = httpx.post(gateway_url + "/register", json={"client_name": "hostile OAuth test", **metadata})
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture(scope="module")
def ctx():
    off = {name: "off" for name in ("RATE_LIMIT_REGISTER", "RATE_LIMIT_AUTHORIZE", "RATE_LIMIT_TOKEN",
                                    "RATE_LIMIT_REVOKE")}
    stack = start_stack("devidp", gateway_env=off)
    try:
        redirect = f"http://127.0.0.1:{free_port()}/cb"
        public = dict(redirect_uris=[redirect], token_endpoint_auth_method="none",
                      grant_types=["authorization_code", "refresh_token"])
        confidential = register(stack.gateway_url, redirect_uris=[redirect],
                                token_endpoint_auth_method="client_secret_basic")
        host, port = stack.gateway_url.removeprefix("http://").split(":")
        multi = register(stack.gateway_url, **{**public, "redirect_uris": [redirect, "https://app.example/cb"]})
        yield Ctx(stack, host, int(port), register(stack.gateway_url, **public)["client_id"],
                  register(stack.gateway_url, **public)["client_id"], confidential["client_id"],
                  confidential["client_secret"], redirect, multi["client_id"])
    finally:
        stack.stop()


# ----------------------------------------------------------------------------------------------------------------------
# The wire


@dataclass
class Answer:
    #: 0: the connection was closed without an answer.
    status: int
    headers: dict[str, str]
    body: bytes
    elapsed: float
    label: str

    def json(self):
        return json.loads(self.body)

    @property
    def location(self) -> str | None:
        return self.headers.get("location")


def dechunk(body: bytes) -> bytes:
    out, rest = b"", body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out, rest = out + rest[:size], rest[size + 2:]
    return out


def exchange(ctx: Ctx, method: str, target: bytes, headers: list[bytes], body: bytes | None,
             deadline: float = DEADLINE) -> Answer:
    """One request on its own connection, bytes as given (support.raw_request's framing, but an answer that never
    comes, or a connection closed without one, is reported instead of raised). A Content-Length is added to a body
    unless `headers` frame it. Fails the test unless the whole answer arrives within `deadline` (`check` fails it on
    a 5xx)."""
    framed = any(line.lower().startswith((b"content-length:", b"transfer-encoding:")) for line in headers)
    if body is not None and not framed:
        headers = [*headers, b"Content-Length: " + str(len(body)).encode()]
    request = (method.encode() + b" " + target + b" HTTP/1.1\r\nHost: " + f"{ctx.host}:{ctx.port}".encode()
               + b"\r\nConnection: close\r\n" + b"".join(line + b"\r\n" for line in headers) + b"\r\n" + (body or b""))
    label = f"{method} {target[:160]!r} {[line[:80] for line in headers]} {(body or b'')[:160]!r}"
    started = time.monotonic()
    data = b""
    with socket.create_connection((ctx.host, ctx.port), timeout=deadline) as sock:
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered (413) and closed before reading everything: read what it said
        try:
            while True:
                sock.settimeout(max(deadline - (time.monotonic() - started), 0.001))
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (socket.timeout, TimeoutError):
            pytest.fail(f"no complete answer within {deadline}s to {label}")
        except ConnectionResetError:
            pass
    elapsed = time.monotonic() - started
    if not data:
        return Answer(0, {}, b"", elapsed, label)
    head, _, raw = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers_in: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        headers_in[name] = headers_in[name] + ", " + value.strip() if name in headers_in else value.strip()
    if headers_in.get("transfer-encoding", "").lower() == "chunked":
        raw = dechunk(raw)
    assert elapsed <= deadline, f"{label} took {elapsed:.2f}s"
    return Answer(status, headers_in, raw, elapsed, label)


# ----------------------------------------------------------------------------------------------------------------------
# Requests and expectations


@dataclass(frozen=True)
class Req:
    method: str
    target: str | bytes
    #: None: no Content-Type line; "" an empty one.
    content_type: str | None = None
    body: str | bytes | None = None
    headers: tuple[str | bytes, ...] = ()
    #: Send the body with Transfer-Encoding: chunked (framed after the placeholders are filled).
    chunked: bool = False

    def send(self, ctx: Ctx) -> Answer:
        target = ctx.fill(self.target)
        lines = [line.encode("latin-1") if isinstance(line, str) else line for line in map(ctx.fill, self.headers)]
        # "<b64:text>" in a header: the base64 of text, placeholders filled (Basic credentials)
        lines = [re.sub(rb"<b64:(.*?)>", lambda m: base64.b64encode(m.group(1)), line, flags=re.S) for line in lines]
        if self.content_type is not None:
            lines.insert(0, b"Content-Type: " + self.content_type.encode("latin-1"))
        body = ctx.fill(self.body) if self.body is not None else None
        body = body.encode("utf-8") if isinstance(body, str) else body
        if self.chunked:
            lines.append(b"Transfer-Encoding: chunked")
            body = chunked(body)
        return exchange(ctx, self.method, target.encode("utf-8") if isinstance(target, str) else target, lines, body)


def token(body, content_type: str | None = FORM, headers=(), chunked: bool = False) -> Req:
    return Req("POST", "/token", content_type, body, tuple(headers), chunked)


def revoke(body, content_type: str | None = FORM, headers=(), chunked: bool = False) -> Req:
    return Req("POST", "/revoke", content_type, body, tuple(headers), chunked)


def consent(body, content_type: str | None = FORM, headers=(), chunked: bool = False) -> Req:
    return Req("POST", "/authorize", content_type, body, tuple(headers), chunked)


def registration(body, content_type: str | None = "application/json") -> Req:
    return Req("POST", "/register", content_type, json.dumps(body) if not isinstance(body, (str, bytes)) else body)


AUTHORIZE = {"response_type": "code", "client_id": "{cid}", "redirect_uri": "{redirect_q}", "state": "st-1",
             "code_challenge": "{challenge}", "code_challenge_method": "S256"}


def authorize(extra: str = "", **changes: str | None) -> Req:
    """GET /authorize with the fixture client's valid request, `changes` made (values as sent, percent-encoded; None
    leaves the parameter out) and `extra` appended as it is."""
    params = {**AUTHORIZE, **changes}
    return Req("GET", "/authorize?" + "&".join(f"{k}={v}" for k, v in params.items() if v is not None) + extra)


@dataclass(frozen=True)
class OAuth:
    """A JSON OAuth error (RFC 6749 §5.2 shape) with one of `errors`."""
    status: int | tuple[int, ...]
    errors: str | tuple[str, ...]


@dataclass(frozen=True)
class Page:
    """An HTML page, 400 (or one of `statuses`), and no redirect."""
    statuses: tuple[int, ...] = (400,)


@dataclass(frozen=True)
class Back:
    """A redirect to the client's registered redirect URI carrying `error`, the state sent and iss (RFC 9207)."""
    error: str
    status: int = 302


@dataclass(frozen=True)
class Status:
    """Any of `statuses` (0: closed without an answer); never a Location."""
    statuses: tuple[int, ...]


@dataclass(frozen=True)
class Either:
    options: tuple


REFUSED_HTTP = Status((0, *range(400, 500)))  # malformed HTTP: a 4xx, or the connection closed
ANY_4XX = Status(tuple(range(400, 500)))
INVALID_REQUEST = OAuth(400, "invalid_request")
INVALID_GRANT = OAuth(400, "invalid_grant")
INVALID_CLIENT = OAuth((400, 401), "invalid_client")
NO_CLIENT = OAuth((400, 401), ("invalid_client", "invalid_request"))
INVALID_TARGET = OAuth(400, "invalid_target")
UNSUPPORTED_GRANT = OAuth(400, "unsupported_grant_type")
TOO_LARGE = Status((413,))
METADATA = OAuth(400, "invalid_client_metadata")
REDIRECT_URI = OAuth(400, "invalid_redirect_uri")
REDIRECT_OR_METADATA = OAuth(400, ("invalid_redirect_uri", "invalid_client_metadata"))
REGISTERED = Status((201,))
OK = Status((200,))


def loopback_variant(location: str, registered: str) -> bool:
    """`location` goes to `registered`, up to the port of a loopback http URI (RFC 8252 §7.3)."""
    got, want = urlsplit(location), urlsplit(registered)
    return (got.scheme, got.hostname, got.path, got.username, got.password) == \
        (want.scheme, want.hostname, want.path, None, None) and want.scheme == "http" and want.hostname == "127.0.0.1"


def check(ctx: Ctx, req: Req, answer: Answer, expect) -> None:
    where = f"{answer.label}: answered {answer.status} {answer.headers.get('location', '')} {answer.body[:300]!r}"
    assert answer.status < 500, f"5xx: {where}"
    if isinstance(expect, Either):
        failures = []
        for option in expect.options:
            try:
                return check(ctx, req, answer, option)
            except AssertionError as failure:
                failures.append(str(failure).split("\n")[0])
        raise AssertionError(f"{where}: none of {expect.options}: {failures}")
    if isinstance(expect, Back):
        assert answer.status == expect.status, f"expected a {expect.status} to the client, {where}"
        location = answer.location
        assert location and loopback_variant(location, ctx.redirect), f"redirect elsewhere: {where}"
        sent = dict(parse_qsl(urlsplit(ctx.fill(req.target)).query, keep_blank_values=True))
        query = parse_qsl(urlsplit(location).query, keep_blank_values=True)
        names = [name for name, _ in query]
        params = dict(query)
        assert params.get("error") == expect.error, f"expected error={expect.error}, {where}"
        assert names.count("iss") == 1 and params["iss"] == ctx.gw, f"iss (RFC 9207) {where}"
        assert names.count("error") == 1 and "code" not in params, where
        if sent.get("state"):
            assert names.count("state") == 1 and params.get("state") == sent["state"], f"state not echoed: {where}"
        assert DESCRIPTION.fullmatch(params.get("error_description", "")), f"error_description: {where}"
        return
    assert not answer.location, f"unexpected redirect: {where}"
    if isinstance(expect, Status):
        assert answer.status in expect.statuses, f"expected {expect.statuses}, {where}"
    elif isinstance(expect, Page):
        assert answer.status in expect.statuses, f"expected a page {expect.statuses[:3]}, {where}"
        assert answer.headers.get("content-type", "").startswith("text/html"), f"not a page: {where}"
    elif isinstance(expect, OAuth):
        statuses = expect.status if isinstance(expect.status, tuple) else (expect.status,)
        errors = expect.errors if isinstance(expect.errors, tuple) else (expect.errors,)
        assert answer.status in statuses, f"expected {expect.status} {expect.errors}, {where}"
        assert answer.headers.get("content-type", "").startswith("application/json"), f"not JSON: {where}"
        body = answer.json()
        assert body.get("error") in errors, f"expected {expect.errors}, {where}"
        assert DESCRIPTION.fullmatch(body.get("error_description", "")), \
            f"error_description outside %x20-21/%x23-5B/%x5D-7E: {where}"
        if answer.status == 401:
            assert answer.headers.get("www-authenticate", "").lower().startswith("basic"), \
                f"401 without WWW-Authenticate: Basic (RFC 6749 §5.2): {where}"
    else:
        raise TypeError(expect)
    # RFC 6749 §5.1/§5.2: token endpoint answers are not cached (the server's own 400 for broken HTTP framing, sent
    # before any endpoint sees the request, is not one of them)
    if urlsplit(req.target if isinstance(req.target, str) else "").path in ("/token", "/revoke") and \
            (isinstance(expect, OAuth) or answer.status == 200):
        assert "no-store" in answer.headers.get("cache-control", ""), f"no Cache-Control: no-store: {where}"


@dataclass(frozen=True)
class Case:
    name: str
    req: Req
    expect: object
    #: Set for the cases the current build answers wrongly.
    known: str | None = None


def case(name, req, expect, known: str | None = None):
    marks = [pytest.mark.xfail(strict=True, reason=known)] if known else []
    return pytest.param(Case(name, req, expect, known), id=name, marks=marks)


# ----------------------------------------------------------------------------------------------------------------------
# POST /token


REFRESH = "grant_type=refresh_token&refresh_token=not-a-refresh-token&client_id={cid}"
CODE = "grant_type=authorization_code&code=not-a-code&code_verifier={verifier}&redirect_uri={redirect_q}&client_id={cid}"

BAD_MEDIA_TYPES = [
    "application/json", "text/plain", None, "", "multipart/form-data; boundary=XyZ", "application/xml", "text/html",
    "application/octet-stream", "application/x-www-form-urlencodedx", "application/x-www-form-urlencoded-utf8",
    "x-www-form-urlencoded", "application/*", "*/*", "text/x-www-form-urlencoded",
    "application/json; profile=application/x-www-form-urlencoded", "application/x-www-form-urlencoded/json",
    "form", "application /x-www-form-urlencoded",
]
GOOD_MEDIA_TYPES = [
    FORM, "Application/X-WWW-Form-URLEncoded", FORM + "; charset=utf-8", FORM + ";charset=UTF-8",
    FORM + " ; charset=utf-8",
]
FOREIGN_RESOURCES = [
    "https://evil.example/mcp", "{gw}", "{gw}/", "{gw}/mcpx", "{gw}/MCP", "{gw}/mcp/x", "{gw}/mcp?x=1",
    "{gw}/mcp#f", "{gw}/mcp/../mcp", "http://localhost:{port}/mcp", "https://127.0.0.1:{port}/mcp",
    "http://127.0.0.1:{port}.evil.example/mcp", "urn:example:mcp", "not a url", "{gw}/token", "/mcp",
]
OWN_RESOURCES = ["{gw}/mcp", "{gw}/mcp/", "{gw}/sse"]


def media_name(media: str | None) -> str:
    return "no Content-Type" if media is None else f"Content-Type '{media}'"


def token_cases():
    cases = [
        case("token baseline: garbage refresh token", token(REFRESH), INVALID_GRANT),
        case("token baseline: garbage code", token(CODE), INVALID_GRANT),
    ]
    # client_id of the real client with a control character and more after it: never authenticates as it
    for cp in CONTROLS:
        cases.append(case(f"token client_id=<real>{pct(cp)}zzz", token(REFRESH.replace("{cid}", "{cid}" + pct(cp)
                                                                                           + "zzz")), INVALID_REQUEST))
    for cp in [0x00, 0x0A, 0x7F, 0x85]:
        cases.append(case(f"token client_id=<real>{pct(cp)}", token(REFRESH + pct(cp)), INVALID_REQUEST))
        cases.append(case(f"token client_id={pct(cp)}<real>",
                          token(REFRESH.replace("{cid}", pct(cp) + "{cid}")), INVALID_REQUEST))
    # control characters in every other parameter, its name, and an unknown parameter
    for cp in SOME_CONTROLS:
        c = pct(cp)
        for field, body in [
            ("grant_type", REFRESH.replace("refresh_token&", "refresh_token" + c + "&", 1)),
            ("refresh_token", REFRESH.replace("not-a-refresh-token", "not-a-refresh-token" + c)),
            ("code", CODE.replace("not-a-code", "not" + c + "-a-code")),
            ("code_verifier", CODE.replace("{verifier}", "{verifier}" + c)),
            ("redirect_uri", CODE.replace("{redirect_q}", "{redirect_q}" + c)),
            ("resource", REFRESH + "&resource={resource_q}" + c),
            ("scope", REFRESH + "&scope=read:todos" + c),
            ("a parameter name", REFRESH.replace("grant_type", "grant" + c + "_type")),
            ("an unknown parameter", REFRESH + "&x=" + c),
            ("an unknown parameter's name", REFRESH + "&x" + c + "=1"),
        ]:
            cases.append(case(f"token {pct(cp)} in {field}", token(body), INVALID_REQUEST))
    # raw control bytes, not percent-encoded
    for raw in [b"\x00", b"\r\n", b"\t", b"\x1b", b"\x7f", b"\xc2\x85", b"\xc2\x9f"]:
        cases.append(case(f"token raw {raw!r} in client_id",
                          token(b"grant_type=refresh_token&refresh_token=x&client_id={cid}" + raw + b"zzz"),
                          INVALID_REQUEST))
    # raw bytes that are not UTF-8: never the real client (refused, or an unknown client)
    for raw in [b"\xff", b"\x80", b"\x85", b"\xc0\x80", b"\xed\xa0\x80"]:
        cases.append(case(f"token raw {raw!r} (not UTF-8) in client_id",
                          token(b"grant_type=refresh_token&refresh_token=x&client_id={cid}" + raw),
                          OAuth((400, 401), ("invalid_request", "invalid_client"))))
    # media types
    for media in BAD_MEDIA_TYPES:
        cases.append(case(f"token {media_name(media)}", token(REFRESH, media), INVALID_REQUEST))
    cases.append(case("token JSON body as JSON", token(json.dumps({
        "grant_type": "refresh_token", "refresh_token": "x", "client_id": "{cid}"}), "application/json"),
        INVALID_REQUEST))
    cases.append(case("token multipart body", token(
        "--XyZ\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nrefresh_token\r\n--XyZ\r\n"
        "Content-Disposition: form-data; name=\"client_id\"\r\n\r\n{cid}\r\n--XyZ--\r\n",
        "multipart/form-data; boundary=XyZ"), INVALID_REQUEST))
    cases.append(case("token no Content-Type, no body", token(None, None), INVALID_REQUEST))
    cases.append(case("token Content-Type twice (form, JSON)", token(REFRESH, FORM, ["Content-Type: application/json"]),
                      OAuth(400, ("invalid_request", "invalid_grant"))))
    for media in GOOD_MEDIA_TYPES:
        cases.append(case(f"token {media_name(media)} (accepted)", token(REFRESH, media), INVALID_GRANT))
    # repeated parameters (RFC 6749 §3.2: MUST NOT be included more than once)
    for name, base, value in [
        ("grant_type", REFRESH, "refresh_token"), ("grant_type", REFRESH, "authorization_code"),
        ("client_id", REFRESH, "{cid}"), ("client_id", REFRESH, "{cid2}"), ("refresh_token", REFRESH, "other"),
        ("refresh_token", REFRESH, "not-a-refresh-token"), 
        ("code", CODE, "not-a-code"),
        ("code", CODE, "other"), ("code_verifier", CODE, "{verifier}"), ("redirect_uri", CODE, "{redirect_q}"),
        ("redirect_uri", CODE, "https://evil.example/cb"),
    ]:
        cases.append(case(f"token {name} twice ({value})", token(base + f"&{name}={value}"), INVALID_REQUEST))
    # RFC 8707 allows resource more than once: a repeated acceptable one may be refused or ignored
    cases.append(case("token resource twice (own, own)", token(REFRESH + "&resource={resource_q}&resource={resource_q}"),
                      OAuth(400, ("invalid_request", "invalid_target", "invalid_grant"))))
    cases.append(case("token grant_type twice, first empty", token("grant_type=&" + REFRESH), INVALID_REQUEST))
    # grant types
    cases.append(case("token without grant_type", token("refresh_token=x&client_id={cid}"), INVALID_REQUEST))
    cases.append(case("token empty grant_type", token("grant_type=&refresh_token=x&client_id={cid}"), INVALID_REQUEST))
    # A grant the gateway has, that this (public, registered) client may not use.
    cases.append(case("token grant_type=client_credentials", token("grant_type=client_credentials&client_id={cid}"),
                      OAuth(400, "unauthorized_client")))
    for grant in ["password", "implicit", "token", "code",
                  "urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:jwt-bearer",
                  "urn:ietf:params:oauth:grant-type:token-exchange", "AUTHORIZATION_CODE", "Refresh_Token",
                  "refresh_token+", "+refresh_token", "refresh%5Ftoken%20", "authorization_code,refresh_token",
                  "%22quoted%22", "back%5Cslash", "%C3%A9t%C3%A9", "%E2%80%A8", "%F0%9F%98%80", "%3Cscript%3E",
                  "x" * 2000, "%22%5C" * 300]:
        cases.append(case(f"token grant_type={grant[:40]}", token(f"grant_type={grant}&client_id={{cid}}"),
                          UNSUPPORTED_GRANT))
    # broken form encoding
    for name, body in [("%ZZ", "grant_type=refresh%ZZtoken&client_id={cid}"), ("lone %", REFRESH + "&x=%"),
                       ("truncated UTF-8", REFRESH + "&x=%E2%82"), ("%FF", REFRESH + "&x=%FF"),
                       ("overlong UTF-8", REFRESH + "&x=%C0%AF"), ("surrogate", REFRESH + "&x=%ED%A0%80")]:
        cases.append(case(f"token broken encoding: {name}", token(body), INVALID_REQUEST))
    cases.append(case("token JSON text with the form media type",
                      token('{"grant_type":"refresh_token","client_id":"{cid}"}'), NO_CLIENT))
    cases.append(case("token empty form", token(""), NO_CLIENT))
    cases.append(case("token only separators", token("&&&=&="), NO_CLIENT))
    # clients
    cases.append(case("token without client_id", token("grant_type=refresh_token&refresh_token=x"), NO_CLIENT))
    for name, value in [("unknown", "nope"), ("real+x", "{cid}x"), ("prefix of real", "{cid}"[:-1]),
                        ("real, upper case", "{CID}"), ("real with a space", "{cid}+"),
                        ("real with %20", "%20{cid}"), ("path traversal", "..%2F..%2Fetc%2Fpasswd"),
                        ("SQL", "%27%20OR%201%3D1%20--"), ("non-ASCII", "%C3%A9"), ("4 KB", "c" * 4096),
                        ("quote and backslash", "%22%5C"), ("CIMD-looking URL", "https%3A%2F%2Fevil.example%2Fc.json")]:
        cases.append(case(f"token client_id {name}", token(f"grant_type=refresh_token&refresh_token=x&client_id={value}"),
                          INVALID_CLIENT))
    cases.append(case("token public client with a client_secret", token(REFRESH + "&client_secret=guess"),
                      INVALID_CLIENT))
    basic = lambda text: "Authorization: Basic <b64:" + text + ">"  # noqa: E731
    refresh_basic = "grant_type=refresh_token&refresh_token=x"
    cases += [
        case("token Basic, right secret (accepted)", token(refresh_basic, headers=[basic("{conf}:{secret}")]),
             INVALID_GRANT),
        case("token Basic, wrong secret", token(refresh_basic, headers=[basic("{conf}:wrong")]), INVALID_CLIENT),
        case("token Basic, empty secret", token(refresh_basic, headers=[basic("{conf}:")]), INVALID_CLIENT),
        case("token Basic, no colon", token(refresh_basic, headers=[basic("{conf}")]), INVALID_CLIENT),
        case("token Basic, empty id", token(refresh_basic, headers=[basic(":{secret}")]), INVALID_CLIENT),
        case("token Basic, not base64", token(refresh_basic, headers=["Authorization: Basic !!!"]), INVALID_CLIENT),
        case("token Basic, nothing", token(refresh_basic, headers=["Authorization: Basic"]), INVALID_CLIENT),
        case("token Basic, id with %00", token(refresh_basic, headers=[basic("{conf}%00:{secret}")]),
             OAuth((400, 401), ("invalid_client", "invalid_request"))),
        case("token Basic, raw NUL in id", token(refresh_basic, headers=[basic("{conf}\x00zz:{secret}")]),
             OAuth((400, 401), ("invalid_client", "invalid_request"))),
        case("token Basic, secret with %0A", token(refresh_basic, headers=[basic("{conf}:{secret}%0A")]),
             OAuth((400, 401), ("invalid_client", "invalid_request"))),
        case("token Bearer instead of Basic", token(refresh_basic, headers=["Authorization: Bearer {secret}"]),
             INVALID_CLIENT),
        case("token Basic twice", token(refresh_basic, headers=[basic("{conf}:{secret}"), basic("{conf}:{secret}")]),
             OAuth((400, 401), ("invalid_client", "invalid_request"))),
        case("token Basic and client_secret in the body",
             token(refresh_basic + "&client_secret={secret}", headers=[basic("{conf}:{secret}")]), INVALID_REQUEST),
        case("token Basic and another client_id in the body",
             token(refresh_basic + "&client_id={cid}", headers=[basic("{conf}:{secret}")]), INVALID_REQUEST),
        case("token confidential client by client_secret_post",
             token(refresh_basic + "&client_id={conf}&client_secret={secret}"), INVALID_CLIENT),
        case("token confidential client without a secret", token(refresh_basic + "&client_id={conf}"),
             INVALID_CLIENT),
        case("token public client id in Basic", token(refresh_basic, headers=[basic("{cid}:")]), INVALID_CLIENT),
    ]
    # codes and verifiers
    cases.append(case("token without code", token(CODE.replace("code=not-a-code&", "")), INVALID_REQUEST))
    cases.append(case("token empty code", token(CODE.replace("code=not-a-code", "code=")), INVALID_REQUEST))
    cases.append(case("token without code_verifier", token(CODE.replace("code_verifier={verifier}&", "")),
                      INVALID_REQUEST))
    cases.append(case("token empty code_verifier", token(CODE.replace("code_verifier={verifier}", "code_verifier=")),
                      INVALID_REQUEST))
    cases.append(case("token garbage code without redirect_uri", token(CODE.replace("redirect_uri={redirect_q}&", "")),
                      INVALID_GRANT))
    for name, code in [("10 KB", "c" * 10_000), ("SQL", "%27%20OR%20%271%27%3D%271"), ("non-ASCII", "%C3%A9"),
                       ("quote", "%22%5C%22"), ("a refresh-token-looking value", "gwr_" + "A" * 43),
                       ("path", "..%2F..%2F"), ("JSON", "%7B%7D"), ("spaces", "a+b+c")]:
        cases.append(case(f"token code {name}", token(CODE.replace("not-a-code", code)), INVALID_GRANT))
    cases.append(case("token without refresh_token", token("grant_type=refresh_token&client_id={cid}"),
                      INVALID_REQUEST))
    for name, value in [("10 KB", "r" * 10_000), ("non-ASCII", "%C3%A9"), ("quote", "%22"), ("SQL", "%27--"),
                        ("access-token-looking", "gwa_" + "A" * 43)]:
        cases.append(case(f"token refresh_token {name}", token(REFRESH.replace("not-a-refresh-token", value)),
                          INVALID_GRANT))
    cases.append(case("token garbage refresh with a foreign scope", token(REFRESH + "&scope=admin"),
                      OAuth(400, ("invalid_grant", "invalid_scope"))))
    # resource indicators (RFC 8707)
    for resource in FOREIGN_RESOURCES:
        cases.append(case(f"token resource={resource}", token(REFRESH + "&resource=" + quote(resource, safe="{}")),
                          INVALID_TARGET))
        cases.append(case(f"token (code) resource={resource}", token(CODE + "&resource=" + quote(resource, safe="{}")),
                          INVALID_TARGET))
    for resource in OWN_RESOURCES:
        cases.append(case(f"token resource={resource} (own)", token(REFRESH + "&resource=" + quote(resource, safe="{}")),
                          INVALID_GRANT))
    cases.append(case("token two resources, one foreign",
                      token(REFRESH + "&resource={resource_q}&resource=https%3A%2F%2Fevil.example%2F"),
                      INVALID_TARGET))
    cases.append(case("token two resources, foreign first",
                      token(REFRESH + "&resource=https%3A%2F%2Fevil.example%2F&resource={resource_q}"),
                      INVALID_TARGET))
    # sizes
    cases += [
        case("token body of 16 KiB - 1 KiB (accepted)", token(REFRESH + "&pad=" + "p" * (LIMIT - 1024)), INVALID_GRANT),
        case("token body of 16 KiB + 1", token(REFRESH + "&pad=" + "p" * LIMIT), TOO_LARGE),
        case("token body of 64 KiB", token(REFRESH + "&pad=" + "p" * 65536), TOO_LARGE),
        case("token body of 1 MiB", token(REFRESH + "&pad=" + "p" * 1_048_576), TOO_LARGE),
        case("token chunked body of 20 KiB", token(REFRESH + "&pad=" + "p" * 20_000, chunked=True), TOO_LARGE),
        case("token Content-Length 10^12, 20 KiB sent", token(REFRESH + "&pad=" + "p" * 20_000, FORM,
                                                              ["Content-Length: 1000000000000"]), TOO_LARGE),
        case("token chunked body (accepted)", token(REFRESH, chunked=True), INVALID_GRANT),
    ]
    return cases


def chunked(raw: bytes, size: int = 1000) -> bytes:
    out = b""
    for start in range(0, len(raw), size):
        piece = raw[start:start + size]
        out += f"{len(piece):x}".encode() + b"\r\n" + piece + b"\r\n"
    return out + b"0\r\n\r\n"


# ----------------------------------------------------------------------------------------------------------------------
# POST /revoke


REVOKE = "token=not-a-token&client_id={cid}"


def revoke_cases():
    cases = [case("revoke baseline: unknown token", revoke(REVOKE), OK)]
    for media in BAD_MEDIA_TYPES:
        cases.append(case(f"revoke {media_name(media)}", revoke(REVOKE, media), INVALID_REQUEST))
    cases.append(case("revoke JSON body", revoke(json.dumps({"token": "x", "client_id": "{cid}"}), "application/json"),
                      INVALID_REQUEST))
    for media in GOOD_MEDIA_TYPES:
        cases.append(case(f"revoke {media_name(media)} (accepted)", revoke(REVOKE, media), OK))
    for cp in CONTROLS:
        cases.append(case(f"revoke token with {pct(cp)}", revoke(REVOKE.replace("not-a-token", "not" + pct(cp))),
                          INVALID_REQUEST))
    for cp in SOME_CONTROLS:
        cases.append(case(f"revoke client_id=<real>{pct(cp)}zzz",
                          revoke(REVOKE.replace("{cid}", "{cid}" + pct(cp) + "zzz")), INVALID_REQUEST))
        cases.append(case(f"revoke {pct(cp)} in token_type_hint",
                          revoke(REVOKE + "&token_type_hint=access_token" + pct(cp)), INVALID_REQUEST))
    cases += [
        case("revoke hint access_token", revoke(REVOKE + "&token_type_hint=access_token"), OK),
        case("revoke hint refresh_token", revoke(REVOKE + "&token_type_hint=refresh_token"), OK),
        case("revoke unknown hint", revoke(REVOKE + "&token_type_hint=id_token"),
             Either((OK, OAuth(400, "unsupported_token_type")))),
        case("revoke without token", revoke("client_id={cid}"), INVALID_REQUEST),
        case("revoke empty token", revoke("token=&client_id={cid}"), INVALID_REQUEST),
        case("revoke token twice", revoke(REVOKE + "&token=other"), INVALID_REQUEST),
        case("revoke client_id twice", revoke(REVOKE + "&client_id={cid2}"), INVALID_REQUEST),
        case("revoke unknown client", revoke("token=x&client_id=nope"), INVALID_CLIENT),
        case("revoke confidential client without its secret", revoke("token=x&client_id={conf}"), INVALID_CLIENT),
        case("revoke confidential client, wrong secret", revoke("token=x", headers=[
            "Authorization: Basic <b64:{conf}:wrong>"]), INVALID_CLIENT),
        case("revoke confidential client, right secret", revoke("token=x", headers=[
            "Authorization: Basic <b64:{conf}:{secret}>"]), OK),
        case("revoke without client", revoke("token=x"), NO_CLIENT),
        case("revoke 10 KB token", revoke(REVOKE.replace("not-a-token", "t" * 10_000)), OK),
        case("revoke non-ASCII token", revoke(REVOKE.replace("not-a-token", "%C3%A9%F0%9F%98%80")), OK),
        case("revoke broken encoding", revoke(REVOKE + "&x=%ZZ"), INVALID_REQUEST),
        case("revoke body of 16 KiB + 1", revoke(REVOKE + "&pad=" + "p" * LIMIT), TOO_LARGE),
        case("revoke body of 1 MiB", revoke(REVOKE + "&pad=" + "p" * 1_048_576), TOO_LARGE),
        case("revoke chunked 20 KiB", revoke(REVOKE + "&pad=" + "p" * 20_000, chunked=True), TOO_LARGE),
    ]
    return cases


# ----------------------------------------------------------------------------------------------------------------------
# GET /authorize


#: Redirect URIs that are not the fixture client's (registered: http://127.0.0.1:<cbport>/cb).
UNREGISTERED_REDIRECTS = [
    "http://evil.example/cb", "https://evil.example/cb", "http://127.0.0.1:{cbport}/cb2", "http://127.0.0.1:{cbport}/CB",
    "http://127.0.0.1:{cbport}/cb/", "http://127.0.0.1:{cbport}/", "http://127.0.0.1:{cbport}",
    "http://127.0.0.1:{cbport}/cb/../cb", "http://127.0.0.1:{cbport}/%63b", "http://127.0.0.1:{cbport}/c%62", "http://127.0.0.1:{cbport}/cb#frag",
    "http://127.0.0.1:{cbport}/cb#", "http://127.0.0.1:{cbport}/cb?x=1", "http://127.0.0.1:{cbport}/cb?",
    "https://127.0.0.1:{cbport}/cb", "http://localhost:{cbport}/cb", "http://[::1]:{cbport}/cb",
    "http://127.0.0.2:{cbport}/cb", "http://user@127.0.0.1:{cbport}/cb", "http://user:pw@127.0.0.1:{cbport}/cb",
    "http://127.0.0.1:{cbport}@evil.example/cb", "http://127.0.0.1.evil.example:{cbport}/cb",
    "http://127.0.0.1:{cbport}\\@evil.example/cb", "//evil.example/cb", "/cb", "cb", "javascript:alert(1)",
    "javascript://127.0.0.1:{cbport}/cb\nalert(1)", "data:text/html,<script>alert(1)</script>",
    "file:///etc/passwd", "http://127.0.0.1:{cbport}/cb\r\nLocation: https://evil.example",
    "http://127.0.0.1:{cbport}/cb\x00", "http://127.0.0.1:{cbport}/cb ", "http://127.0.0.1:{cbport}/cbé",
    "http:/\\evil.example/cb", "http://2130706433:{cbport}/cb", "http://0x7f.1:{cbport}/cb",
]


def authorize_cases():
    cases = [
        case("authorize baseline: consent page", authorize(), OK),
        case("authorize loopback redirect on another port (RFC 8252 §7.3)",
             authorize(redirect_uri=quote("http://127.0.0.1:1/cb", safe="")), OK),
        case("authorize no query", Req("GET", "/authorize"), Page()),
        case("authorize empty query", Req("GET", "/authorize?"), Page()),
        case("authorize without client_id", authorize(client_id=None), Page()),
        case("authorize empty client_id", authorize(client_id=""), Page()),
        case("authorize client_id twice", authorize("&client_id={cid}"), Page()),
        case("authorize client_id twice, other client", authorize("&client_id={cid2}"), Page()),
        case("authorize redirect_uri twice", authorize("&redirect_uri={redirect_q}"), Page()),
        # RFC 6749 §3.1.2.3: with several registered, redirect_uri is required
        case("authorize without redirect_uri, two registered", authorize(client_id="{multi}", redirect_uri=None,
                                                                          response_type="token"), Page()),
        case("authorize the second registered redirect_uri (accepted)",
             authorize(client_id="{multi}", redirect_uri="https%3A%2F%2Fapp.example%2Fcb"), OK),
        case("authorize a query string of 64 KB", authorize("&x=" + "q" * 65536), Either((OK, REFUSED_HTTP))),
        case("authorize redirect_uri twice, one foreign", authorize("&redirect_uri=https%3A%2F%2Fevil.example%2F"),
             Page()),
    ]
    for name, value in [("unknown", "nope"), ("real+x", "{cid}x"), ("prefix of real", "{cid}"[:-1]),
                        ("real with a space", "{cid}+"), ("path traversal", "..%2F..%2Fetc%2Fpasswd"),
                        ("SQL", "%27%20OR%201%3D1%20--"), ("non-ASCII", "%C3%A9"), ("4 KB", "c" * 4096),
                        ("markup", "%3Cscript%3Ealert(1)%3C%2Fscript%3E"), ("quote", "%22%5C")]:
        cases.append(case(f"authorize client_id {name}", authorize(client_id=value), Page()))
    for cp in CONTROLS:
        cases.append(case(f"authorize client_id=<real>{pct(cp)}", authorize(client_id="{cid}" + pct(cp)), Page()))
        cases.append(case(f"authorize redirect_uri=<registered>{pct(cp)}",
                          authorize(redirect_uri="{redirect_q}" + pct(cp)), Page()))
    for uri in UNREGISTERED_REDIRECTS:
        cases.append(case(f"authorize redirect_uri={uri}", authorize(redirect_uri=quote(uri, safe="{}")), Page()))
    cases.append(case("authorize redirect_uri of another client's registration, unknown client",
                      authorize(client_id="nope", redirect_uri="{redirect_q}", response_type="token"), Page()))
    cases.append(case("authorize a redirect_uri registered by another client",
                      authorize(redirect_uri="https%3A%2F%2Fapp.example%2Fcb", response_type="token"), Page()))
    cases.append(case("authorize unregistered redirect_uri and an error after it",
                      authorize(redirect_uri=quote("https://evil.example/cb", safe=""), response_type="token"), Page()))
    # control characters in parameters checked after the redirect URI: a page too (the request is malformed)
    for cp in SOME_CONTROLS:
        c = pct(cp)
        for field, req in [
            ("state", authorize(state="st" + c)), ("scope", authorize(scope="read:todos" + c)),
            ("code_challenge", authorize(code_challenge="{challenge}" + c)),
            ("code_challenge_method", authorize(code_challenge_method="S256" + c)),
            ("response_type", authorize(response_type="code" + c)),
            ("resource", authorize(resource="{resource_q}" + c)),
            ("a parameter name", authorize("&sta" + c + "te=x")), ("an unknown parameter", authorize("&x=" + c)),
        ]:
            cases.append(case(f"authorize {c} in {field}", req, Page()))
    for name, extra in [("%ZZ", "&x=%ZZ"), ("lone %", "&x=%"), ("truncated UTF-8", "&state=%E2%82"),
                        ("%FF", "&x=%FF")]:
        cases.append(case(f"authorize broken encoding: {name}", authorize(extra), Page()))
    # raw bytes in the request target
    for raw in [b" ", b"\r\n", b"\x00", b"\t", b"\x7f", b"\x85", b"\xff", b"\xc3\xa9", b'"', b"<", b"\\"]:
        cases.append(case(f"authorize raw {raw!r} after client_id",
                          Req("GET", b"/authorize?response_type=code&client_id={cid}" + raw + b"x&state=s"),
                          Either((Page(), REFUSED_HTTP))))
    # "#" ends the query: what follows is not sent (state included); the rest is a valid client without PKCE
    cases.append(case("authorize raw #fragment after client_id",
                      Req("GET", b"/authorize?response_type=code&client_id={cid}#frag&state=s"),
                      Either((Back("invalid_request"), Page(), REFUSED_HTTP))))
    # Forged or broken cookies on a valid request: ignored, the consent page is shown
    for name, cookie in [("forged gw_approved", "gw_approved=eyJ4Ijp7fX0.AAAA"), ("empty gw_approved", "gw_approved="),
                         ("gw_approved without a signature", "gw_approved=e30"),
                         ("gw_approved of 8 KB", "gw_approved=" + "A" * 8000),
                         ("gw_approved with a quote", 'gw_approved="x\\"'),
                         ("forged consent and sign-in cookies", "gw_consent=x; gw_signin=y"),
                         ("100 cookies", "; ".join(f"c{n}=v" for n in range(100))),
                         ("cookie without a name", "=x; gw_approved"), ("cookie of non-ASCII", "gw_approved=é")]:
        cases.append(case(f"authorize cookie: {name}", Req("GET", authorize().target, headers=("Cookie: " + cookie,)),
                          OK))
    # After the client and redirect URI are validated: errors go back to the client
    cases += [
        case("authorize without response_type", authorize(response_type=None), Back("invalid_request")),
        case("authorize empty response_type", authorize(response_type=""), Back("invalid_request")),
        case("authorize without code_challenge", authorize(code_challenge=None), Back("invalid_request")),
        case("authorize without code_challenge_method", authorize(code_challenge_method=None),
             Back("invalid_request")),
        case("authorize code_challenge_method=plain", authorize(code_challenge_method="plain"),
             Back("invalid_request")),
        case("authorize plain with challenge=verifier", authorize(code_challenge="{verifier}",
                                                                  code_challenge_method="plain"),
             Back("invalid_request")),
        case("authorize code_challenge_method=s256", authorize(code_challenge_method="s256"), Back("invalid_request")),
        case("authorize code_challenge_method=S512", authorize(code_challenge_method="S512"), Back("invalid_request")),
        case("authorize code_challenge too short", authorize(code_challenge="abc"), Back("invalid_request")),
        case("authorize code_challenge too long", authorize(code_challenge="A" * 129), Back("invalid_request")),
        case("authorize code_challenge with padding", authorize(code_challenge="{challenge}%3D"),
             Back("invalid_request")),
        case("authorize code_challenge in base64 (+/)", authorize(code_challenge="+" * 21 + "/" * 22),
             Back("invalid_request")),
        case("authorize response_mode=fragment", authorize(response_mode="fragment"), Back("invalid_request")),
        case("authorize response_mode=form_post", authorize(response_mode="form_post"), Back("invalid_request")),
        case("authorize state of 4097 bytes", authorize(state="s" * 4097), Back("invalid_request")),
        case("authorize state of 4096 bytes (accepted)", authorize(state="s" * 4096), OK),
        case("authorize state of 2049 two-byte characters", authorize(state="%C3%A9" * 2049), Back("invalid_request")),
    ]
    for response_type in ["token", "id_token", "code+token", "code+id_token", "token+code", "none", "CODE", "Code",
                          "code%20", "%20code", "device_code", "code,token"]:
        cases.append(case(f"authorize response_type={response_type}", authorize(response_type=response_type),
                          Back("unsupported_response_type")))
    for scope in ["admin", "read:todos+admin", "openid", "READ:TODOS", "read%3Atodos%3Aall", "s" * 2000,
                  "read:todos+" * 200, "%22%5C", "%C3%A9"]:
        cases.append(case(f"authorize scope={scope[:40]}", authorize(scope=scope), Back("invalid_scope")))
    for resource in FOREIGN_RESOURCES:
        cases.append(case(f"authorize resource={resource}", authorize(resource=quote(resource, safe="{}")),
                          Back("invalid_target")))
    for resource in OWN_RESOURCES:
        cases.append(case(f"authorize resource={resource} (own)", authorize(resource=quote(resource, safe="{}")), OK))
    # Hostile states are echoed exactly, and cannot add parameters to the redirect
    for name, state in [("with &iss=", "a%26iss%3Dhttps%3A%2F%2Fevil.example"), ("with &code=", "a%26code%3Dx"),
                        ("with #", "a%23b"), ("quotes and markup", "%22%3E%3Cscript%3E"), ("non-ASCII", "%C3%A9%F0%9F%98%80"),
                        ("spaces", "a+b%20c"), ("URL", "https%3A%2F%2Fevil.example%2F%3Fx%3D1"), ("percent", "%2525")]:
        cases.append(case(f"authorize error with state {name}", authorize(state=state, response_type="token"),
                          Back("unsupported_response_type")))
    cases.append(case("authorize error to the loopback redirect on another port",
                      authorize(redirect_uri=quote("http://127.0.0.1:1/cb", safe=""), response_type="token"),
                      Back("unsupported_response_type")))
    cases.append(case("authorize error without redirect_uri (one registered)",
                      authorize(redirect_uri=None, response_type="token"), Back("unsupported_response_type")))
    # A repeated parameter after the client and redirect URI are validated is invalid_request (RFC 6749 §3.1), and
    # RFC 6749 §4.1.2.1 sends every such error back to the client. A repeated state cannot be echoed: either answer.
    cases.append(case("authorize state twice", authorize("&state=st-2"), Either((Page(), Back("invalid_request")))))
    for name, value in [("scope", "read:todos"), ("response_type", "code"), ("code_challenge", "{challenge}"),
                        ("code_challenge_method", "S256")]:
        cases.append(case(f"authorize {name} twice", authorize(f"&{name}={value}", **{name: value}),
                          Back("invalid_request")))
    # RFC 8707 §2: resource may be repeated; one the server does not accept is invalid_target, sent back to the client
    cases.append(case("authorize resource twice (own, own)", authorize("&resource={resource_q}", resource="{resource_q}"),
                      Either((OK, Back("invalid_request"), Back("invalid_target")))))
    cases.append(case("authorize resource twice (own, foreign)",
                      authorize("&resource=https%3A%2F%2Fevil.example%2Fmcp", resource="{resource_q}"),
                      Back("invalid_target")))
    return cases




# ----------------------------------------------------------------------------------------------------------------------
# POST /authorize (the consent form, without a valid ticket)


def consent_cases():
    cases = [case("consent no body", consent(None, None), ANY_4XX),
             case("consent empty form", consent(""), Page()),
             case("consent no request_id", consent("csrf_token=x&decision=approve"), Page())]
    for media in BAD_MEDIA_TYPES:
        cases.append(case(f"consent {media_name(media)}", consent("request_id=x&csrf_token=y&decision=approve", media),
                          ANY_4XX))
    for name, value in [("garbage", "x"), ("dot", "."), ("key id only", "k1."), ("fake ticket", "k1.AAAAAAAAAAAAAAAA"),
                        ("10 KB", "k1." + "A" * 10_000), ("non-ASCII", "k1.%C3%A9"), ("quote", "%22%3E"),
                        ("deny, garbage", "x&decision=deny")]:
        cases.append(case(f"consent request_id {name}",
                          consent(f"request_id={value}&csrf_token=y&decision=approve"), Page()))
    for cp in SOME_CONTROLS:
        cases.append(case(f"consent {pct(cp)} in request_id", consent(f"request_id=x{pct(cp)}&decision=approve"),
                          ANY_4XX))
    cases += [
        case("consent body of 16 KiB + 1", consent("request_id=x&pad=" + "p" * LIMIT), TOO_LARGE),
        case("consent chunked 20 KiB", consent("request_id=x&pad=" + "p" * 20_000, chunked=True), TOO_LARGE),
    ]
    return cases


# ----------------------------------------------------------------------------------------------------------------------
# POST /register


def client(**changes) -> dict:
    metadata = {"client_name": "hostile", "redirect_uris": ["http://127.0.0.1:8/cb"],
                "token_endpoint_auth_method": "none"}
    metadata.update(changes)
    return {name: value for name, value in metadata.items() if value is not ...}


BAD_REDIRECT_URIS = [
    "http://127.0.0.1:8/cb\r\nSet-Cookie: x=1", "http://127.0.0.1:8/c b", " http://127.0.0.1:8/cb",
    "http://127.0.0.1:8/cb ", "http://127.0.0.1:8/cé", "https://exämple.com/cb", "http://127.0.0.1:8/cb%zz",
    "http://127.0.0.1:8/cb%4", "http://127.0.0.1:8/cb%", "http://127.0.0.1:8/c<b>", 'http://127.0.0.1:8/c"b',
    "http://127.0.0.1:8/c\\b", "http://127.0.0.1:8/c{b}", "http://127.0.0.1:8/c|b", "http://127.0.0.1:8/c^b",
    "http://127.0.0.1:8/c`b", "javascript:alert(1)", "JavaScript:alert(1)", "javascript://localhost/%0aalert(1)",
    "data:text/html,<script>alert(1)</script>", "data:text/html;base64,PHNjcmlwdD4=", "file:///etc/passwd",
    "file://localhost/etc/passwd", "vbscript:msgbox(1)", "ftp://127.0.0.1/cb", "ws://127.0.0.1:8/cb",
    "https://app.example/cb#", "https://app.example/cb#frag", "http://127.0.0.1:8/cb#x", "https://user@app.example/cb",
    "https://user:pw@app.example/cb", "http://app.example/cb", "http://localhost.evil.example/cb",
    "http://127.0.0.1.nip.io/cb", "//app.example/cb", "/cb", "cb", "", "https://", "https:///cb", "https:app.example",
    "about:blank", "urn:ietf:wg:oauth:2.0:oob", "x" * 2100, "https://app.example/" + "x" * 2000, "\u2028https://a.b/",
]


def register_cases():
    cases = [case("register baseline", registration(client()), REGISTERED)]
    for media in ["text/plain", None, "", FORM, "multipart/form-data; boundary=x", "application/jsonx",
                  "application/json-seq", "text/json", "application/*", "*/*", "application/xml",
                  "application/jwt", "text/html; charset=application/json"]:
        cases.append(case(f"register {media_name(media)}", registration(client(), media), METADATA))
    for media in ["application/json; charset=utf-8", "Application/JSON"]:
        cases.append(case(f"register {media_name(media)} (accepted)", registration(client(), media), REGISTERED))
    cases.append(case("register form body", registration("redirect_uris=http://127.0.0.1:8/cb", FORM), METADATA))
    for name, body in [("empty", ""), ("whitespace", " \r\n"), ("null", "null"), ("array", "[]"),
                       ("array of the metadata", json.dumps([client()])), ("number", "42"), ("string", '"x"'),
                       ("true", "true"), ("truncated", json.dumps(client())[:-1]), ("trailing garbage",
                                                                                  json.dumps(client()) + "x"),
                       ("single quotes", "{'redirect_uris':['http://127.0.0.1:8/cb']}"),
                       ("NaN", '{"redirect_uris":["http://127.0.0.1:8/cb"],"x":NaN}'),
                       ("comment", '{/*c*/"redirect_uris":["http://127.0.0.1:8/cb"]}'),
                       ("invalid UTF-8", b'{"redirect_uris":["http://127.0.0.1:8/c\xffb"]}'),
                       ("raw NUL", b'{"redirect_uris":["http://127.0.0.1:8/cb"]}\x00'),
                       ("BOM", b"\xef\xbb\xbf" + json.dumps(client()).encode())]:
        expect = Either((METADATA, REGISTERED)) if name == "BOM" else METADATA
        cases.append(case(f"register body {name}", registration(body), expect))
    for name, body in [("8k nested arrays", "[" * 8000 + "]" * 8000),
                       ("16k unclosed arrays", "[" * 16_000),
                       ("2.5k nested objects", '{"a":' * 2500 + "1" + "}" * 2500),
                       ("nested in a member", '{"redirect_uris":["http://127.0.0.1:8/cb"],"x":' + "[" * 7000 + "]"
                        * 7000 + "}")]:
        cases.append(case(f"register {name}", registration(body), Either((METADATA, ANY_4XX))))
    cases += [
        case("register body of 16 KiB + 1", registration(json.dumps(client(client_name="n", x="p" * LIMIT))),
             TOO_LARGE),
        case("register body of 1 MiB", registration(json.dumps(client(x="p" * 1_048_576))), TOO_LARGE),
        case("register chunked 20 KiB", Req("POST", "/register", "application/json",
                                            json.dumps(client(x="p" * 20_000)), chunked=True), TOO_LARGE),
        case("register chunked (accepted)", Req("POST", "/register", "application/json", json.dumps(client()),
                                                chunked=True), REGISTERED),
    ]
    for cp in CONTROLS:
        cases.append(case(f"register redirect URI with U+{cp:04X}",
                          registration(client(redirect_uris=[f"http://127.0.0.1:8/c{chr(cp)}b"])), REDIRECT_URI))
    for uri in BAD_REDIRECT_URIS:
        cases.append(case(f"register redirect URI {uri[:60]!r}", registration(client(redirect_uris=[uri])),
                          REDIRECT_URI))
    cases.append(case("register one good and one bad redirect URI", registration(client(redirect_uris=[
        "http://127.0.0.1:8/cb", "javascript:alert(1)"])), REDIRECT_URI))
    cases.append(case("register lone surrogate in a redirect URI",
                      registration('{"redirect_uris":["http://127.0.0.1:8/c\\ud800b"],"token_endpoint_auth_method":'
                                   '"none"}'), Either((REDIRECT_URI, METADATA))))
    for name, value in [("missing", ...), ("null", None), ("a string", "http://127.0.0.1:8/cb"), ("empty", []),
                        ("a number", 5), ("an object", {"a": "http://127.0.0.1:8/cb"}), ("[1]", [1]),
                        ("[null]", [None]), ("nested", [["http://127.0.0.1:8/cb"]]),
                        ("11 URIs", [f"http://127.0.0.1:8/cb{n}" for n in range(11)])]:
        cases.append(case(f"register redirect_uris {name}", registration(client(redirect_uris=value)),
                          REDIRECT_OR_METADATA))
    for uri in ["https://app.example/cb", "https://app.example/cb?x=1", "http://localhost:1234/cb", "http://[::1]/cb",
                "HTTP://LOCALHOST/cb", "https://app.example:8443/a/b%20c"]:
        cases.append(case(f"register redirect URI {uri} (accepted)", registration(client(redirect_uris=[uri])),
                          REGISTERED))
    for name, value in [("password", ["password"]), ("implicit", ["implicit"]),
                        ("client_credentials", ["client_credentials"]), ("refresh only", ["refresh_token"]),
                        ("empty", []), ("a string", "authorization_code"), ("[1]", [1]),
                        ("device code", ["authorization_code", "urn:ietf:params:oauth:grant-type:device_code"]),
                        ("upper case", ["AUTHORIZATION_CODE"]), ("object", {"a": 1})]:
        cases.append(case(f"register grant_types {name}", registration(client(grant_types=value)), METADATA))
    for value in ["private_key_jwt", "client_secret_jwt", "tls_client_auth", "", "NONE", "None ", 5, ["none"], {}]:
        cases.append(case(f"register token_endpoint_auth_method {value!r}",
                          registration(client(token_endpoint_auth_method=value)), METADATA))
    for value in ["admin", "read:todos admin", "openid", "READ:TODOS", 5, ["read:todos"], "read:todos\u0000"]:
        cases.append(case(f"register scope {value!r}", registration(client(scope=value)), METADATA))
    for value in [["token"], ["code", "token"], ["id_token"], [], "code", [5]]:
        cases.append(case(f"register response_types {value!r}", registration(client(response_types=value)), METADATA))
    for name, value in [("newline", "a\nb"), ("NUL", "a\u0000b"), ("201 characters", "n" * 201), ("number", 5),
                        ("C1 control", "a\u0085b"), ("array", ["n"])]:
        cases.append(case(f"register client_name {name}", registration(client(client_name=value)), METADATA))
    for field in ["client_uri", "logo_uri"]:
        for value in ["javascript:alert(1)", "data:image/png;base64,AAAA", "http://app.example/", "not a url", 5,
                      "file:///etc/passwd"]:
            cases.append(case(f"register {field} {value!r}", registration(client(**{field: value})), METADATA))
    for name, value in [("1e400", "1e400"), ("a 40-digit integer", "1" * 40), ("-0", "-0"), ("a big exponent",
                                                                                             "1e999999999")]:
        cases.append(case(f"register a member of {name}", registration(
            '{"redirect_uris":["http://127.0.0.1:8/cb"],"token_endpoint_auth_method":"none","x":' + value + "}"),
            Either((METADATA, REGISTERED))))
    cases.append(case("register duplicate redirect_uris key, last one bad",
                      registration('{"redirect_uris":["http://127.0.0.1:8/cb"],"token_endpoint_auth_method":"none",'
                                   '"redirect_uris":["javascript:alert(1)"]}'), Either((REDIRECT_URI, REGISTERED))))
    return cases


# ----------------------------------------------------------------------------------------------------------------------
# GET /callback, metadata documents, other methods


def callback_cases():
    cases = [case("callback no query", Req("GET", "/callback"), Page()),
             case("callback unknown state", Req("GET", "/callback?state=garbage&code=x"), Page()),
             case("callback without state", Req("GET", "/callback?code=x"), Page()),
             case("callback state twice", Req("GET", "/callback?state=a&state=b&code=x"), Page()),
             case("callback 10 KB state", Req("GET", "/callback?code=x&state=" + "s" * 10_000), Page()),
             case("callback provider error, unknown state", Req("GET", "/callback?error=access_denied&state=garbage"),
                  Page()),
             case("callback provider error, no state", Req("GET", "/callback?error=server_error"), Page()),
             case("callback provider error with a hostile description",
                  Req("GET", "/callback?state=g&error=x&error_description=%3Cscript%3E%22%5C%C3%A9"), Page()),
             case("callback iss of another provider", Req("GET", "/callback?state=g&code=x&iss=https%3A%2F%2Fevil"),
                  Page()),
             case("callback broken encoding", Req("GET", "/callback?state=%ZZ&code=x"), Page()),
             case("callback raw NUL", Req("GET", b"/callback?state=a\x00b&code=x"), Either((Page(), REFUSED_HTTP))),
             case("callback POST", Req("POST", "/callback", FORM, "state=x&code=y"), ANY_4XX)]
    for cp in SOME_CONTROLS:
        for field in ["state", "code", "error", "iss"]:
            cases.append(case(f"callback {pct(cp)} in {field}",
                              Req("GET", f"/callback?state=g&code=x&{field}=a{pct(cp)}b"), Page()))
    return cases


METADATA_PATHS = ["/.well-known/oauth-authorization-server", "/.well-known/oauth-authorization-server/mcp",
                  "/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp",
                  "/.well-known/oauth-protected-resource/sse", "/.well-known/openid-configuration"]


def metadata_cases():
    cases = []
    for path in METADATA_PATHS:
        for method in ["POST", "PUT", "DELETE", "PATCH", "TRACE", "OPTIONS", "HEAD"]:
            body = "{}" if method in ("POST", "PUT", "PATCH") else None
            cases.append(case(f"{method} {path}", Req(method, path, "application/json" if body else None, body),
                              Status((200, 204, *range(400, 500)))))
        for query in ["?%00", "?%ZZ", "?a=1&a=2", "?" + "q" * 8000, "?resource=https%3A%2F%2Fevil.example",
                      "?%C0%AF", "?\u00e9", "?x=%0D%0ALocation:%20https://evil.example"]:
            cases.append(case(f"GET {path}{query[:30]}", Req("GET", path + query), Status((200, *range(400, 500)))))
        cases.append(case(f"GET {path} raw NUL", Req("GET", path.encode() + b"?\x00"),
                          Status((0, 200, *range(400, 500)))))
    for method, path in [("GET", "/token"), ("PUT", "/token"), ("DELETE", "/token"), ("GET", "/revoke"),
                         ("GET", "/register"), ("PUT", "/register"), ("DELETE", "/register"), ("PUT", "/authorize"),
                         ("DELETE", "/authorize"), ("POST", "/token/"), ("POST", "/TOKEN"), ("POST", "//token"),
                         ("POST", "/token;x"), ("POST", "/token%00"), ("POST", "/./token"), ("POST", "/x/../token"),
                         ("GET", "/authorize/"), ("GET", "/%61uthorize?client_id=x")]:
        body = REFRESH if method in ("POST", "PUT") else None
        cases.append(case(f"{method} {path}", Req(method, path, FORM if body else None, body),
                          Either((Status(tuple(range(400, 500))), OAuth((400, 401), ("invalid_grant", "invalid_request",
                                                                                     "invalid_client")), Page()))))
    return cases


BODY_ENDPOINTS = [("token", "/token", FORM, REFRESH), ("revoke", "/revoke", FORM, REVOKE),
                  ("consent", "/authorize", FORM, "request_id=x&decision=approve"),
                  ("register", "/register", "application/json", '{"redirect_uris":["http://127.0.0.1:8/cb"]}')]


#: Broken bodies the HTTP parser reports while the endpoint reads the body: the error reaches
#: ErrorRenderingMiddleware as an unknown error, hence a 500 (RFC 9112 §2.2 and §6.3: 400, then close).


def framing_cases():
    """Bodies whose HTTP framing is broken (RFC 9112 §6 and §7.1): a 400, or the connection closed; never a 5xx."""
    cases = []
    for name, path, media, body in BODY_ENDPOINTS:
        te = "Transfer-Encoding: chunked"
        for what, framed, headers in [
            ("chunk size smaller than the chunk", b"5\r\n" + body.encode() + b"\r\n0\r\n\r\n", [te]),
            ("chunk size not hex", b"zz\r\n" + body.encode() + b"\r\n0\r\n\r\n", [te]),
            ("chunk without CRLF", b"%x\r\n" % len(body) + body.encode() + b"XX0\r\n\r\n", [te]),
            ("negative chunk size", b"-5\r\n" + body.encode() + b"\r\n0\r\n\r\n", [te]),
            ("chunk size of 2^64", b"10000000000000000\r\n" + body.encode() + b"\r\n0\r\n\r\n", [te]),
            ("Content-Length and chunked", chunked(body.encode()), [te, f"Content-Length: {len(body)}"]),
            ("two Content-Lengths", body.encode(), [f"Content-Length: {len(body)}", f"Content-Length: {len(body) + 1}"]),
            ("Content-Length not a number", body.encode(), ["Content-Length: abc"]),
            ("negative Content-Length", body.encode(), ["Content-Length: -1"]),
            ("Transfer-Encoding gzip", body.encode(), ["Transfer-Encoding: gzip"]),
        ]:
            cases.append(case(f"{name} framing: {what}", Req("POST", path, media, framed, tuple(headers)), REFUSED_HTTP))
    return cases


CORPUS = [*token_cases(), *framing_cases(), *revoke_cases(), *authorize_cases(), *consent_cases(), *register_cases(), *callback_cases(),
          *metadata_cases()]


#: Request ids of the 5xx answers to cases known to be answered wrongly (their "Unexpected error" log lines are
#: expected; any other is not).
KNOWN_SERVER_ERRORS: set[str] = set()


@pytest.mark.parametrize("case", CORPUS)
def test_corpus(ctx: Ctx, case: Case):
    answer = case.req.send(ctx)
    if case.known and answer.status >= 500:
        KNOWN_SERVER_ERRORS.add(answer.headers.get("x-request-id", ""))
    check(ctx, case.req, answer, case.expect)


def test_corpus_is_large_and_names_are_unique():
    names = [param.values[0].name for param in CORPUS]
    assert len(names) == len(set(names)), sorted({name for name in names if names.count(name) > 1})
    assert len(names) >= 500


# ----------------------------------------------------------------------------------------------------------------------
# With a real authorization code: every wrong redemption is refused, and none of them spends the code


@dataclass
class Grant:
    code: str
    verifier: str


@pytest.fixture(scope="module")
def grant(ctx: Ctx) -> Grant:
    verifier = secrets.token_urlsafe(48)
    query = HeadlessBrowser().authorize(f"{ctx.gw}/authorize?" + urlencode({
        "response_type": "code", "client_id": ctx.cid, "redirect_uri": ctx.redirect, "state": "s",
        "code_challenge": s256(verifier), "code_challenge_method": "S256", "scope": "read:todos offline_access",
    }), ctx.redirect)
    assert "code" in query and query.get("iss") == ctx.gw, query
    return Grant(query["code"], verifier)


def redeem(ctx: Ctx, grant: Grant, **changes) -> Answer:
    params = {"grant_type": "authorization_code", "code": grant.code, "code_verifier": grant.verifier,
              "redirect_uri": ctx.redirect, "client_id": ctx.cid}
    params.update(changes)
    body = "&".join(f"{name}={quote(value, safe='')}" for name, value in params.items() if value is not None)
    return exchange(ctx, "POST", b"/token", [b"Content-Type: " + FORM.encode()], body.encode())


CODE_CASES = [
    ("another well-formed verifier", {"code_verifier": VERIFIER}, INVALID_GRANT),
    ("the challenge as verifier (plain downgrade)", {"code_verifier": "{challenge_of_grant}"}, INVALID_GRANT),
    ("a 42-character verifier", {"code_verifier": "v" * 42}, OAuth(400, ("invalid_grant", "invalid_request"))),
    ("a 129-character verifier", {"code_verifier": "v" * 129}, OAuth(400, ("invalid_grant", "invalid_request"))),
    ("the verifier with a space", {"code_verifier": "{verifier} "}, OAuth(400, ("invalid_grant", "invalid_request"))),
    ("the verifier with %00", {"code_verifier": "{verifier}%00"}, INVALID_REQUEST),
    ("no code_verifier", {"code_verifier": None}, INVALID_REQUEST),
    ("redirect_uri on another port", {"redirect_uri": "http://127.0.0.1:1/cb"}, INVALID_GRANT),
    ("redirect_uri with a trailing slash", {"redirect_uri": "{redirect}/"}, INVALID_GRANT),
    ("redirect_uri of localhost", {"redirect_uri": "{redirect_localhost}"}, INVALID_GRANT),
    ("redirect_uri with %00", {"redirect_uri": "{redirect_q}%00"}, INVALID_REQUEST),
    ("no redirect_uri (sent at /authorize)", {"redirect_uri": None}, INVALID_GRANT),
    ("redirect_uri twice", {"redirect_uri": "{redirect_q}&redirect_uri={redirect_q}"}, INVALID_REQUEST),
    ("code twice", {"code": "{code}&code={code}"}, INVALID_REQUEST),
    ("the code with %00 appended", {"code": "{code}%00"}, INVALID_REQUEST),
    ("the code with a character appended", {"code": "{code}x"}, INVALID_GRANT),
    ("the code, upper-cased", {"code": "{CODE}"}, INVALID_GRANT),
    ("another client", {"client_id": "{cid2}"}, INVALID_GRANT),
    ("the real client id with %00", {"client_id": "{cid}%00"}, INVALID_REQUEST),
    ("an unknown client", {"client_id": "nope"}, INVALID_CLIENT),
    ("a foreign resource", {"resource": "https%3A%2F%2Fevil.example%2Fmcp"}, INVALID_TARGET),
    ("the code as a refresh token", {"grant_type": "refresh_token", "refresh_token": "{code}", "code": None},
     INVALID_GRANT),
    ("JSON instead of a form", {"__json__": True}, INVALID_REQUEST),
]


@pytest.mark.parametrize("name,changes,expect", CODE_CASES, ids=[item[0] for item in CODE_CASES])
def test_wrong_redemptions_of_a_real_code(ctx: Ctx, grant: Grant, name, changes, expect):
    if changes.get("__json__"):
        body = json.dumps({"grant_type": "authorization_code", "code": grant.code, "code_verifier": grant.verifier,
                           "redirect_uri": ctx.redirect, "client_id": ctx.cid}).encode()
        answer = exchange(ctx, "POST", b"/token", [b"Content-Type: application/json"], body)
    else:
        fills = {"{challenge_of_grant}": s256(grant.verifier), "{verifier}": grant.verifier, "{CODE}": grant.code.upper(),
                 "{code}": quote(grant.code, safe=""), "{redirect_localhost}": ctx.redirect.replace("127.0.0.1",
                                                                                                   "localhost")}
        params = {"grant_type": "authorization_code", "code": quote(grant.code, safe=""),
                  "code_verifier": grant.verifier, "redirect_uri": quote(ctx.redirect, safe=""), "client_id": ctx.cid}
        for key, value in changes.items():
            if value is None:
                params.pop(key, None)
                continue
            for placeholder, filled in fills.items():
                value = value.replace(placeholder, filled)
            params[key] = ctx.fill(value).replace(" ", "+")
        body = "&".join(f"{key}={value}" for key, value in params.items()).encode()
        answer = exchange(ctx, "POST", b"/token", [b"Content-Type: " + FORM.encode()], body)
    check(ctx, token(""), answer, expect)


def test_the_real_code_then_works_once(ctx: Ctx, grant: Grant):
    """None of the refused redemptions spent the code; it redeems once, with no-store, and a replay is invalid_grant
    (and revokes what it produced, RFC 9700 §4.5)."""
    first = redeem(ctx, grant)
    assert first.status == 200, first.body
    assert "no-store" in first.headers.get("cache-control", "")
    tokens = first.json()
    assert tokens["token_type"].lower() == "bearer" and tokens["access_token"] and tokens.get("refresh_token")
    replay = redeem(ctx, grant)
    check(ctx, token(""), replay, INVALID_GRANT)
    refreshed = httpx.post(f"{ctx.gw}/token", data={"grant_type": "refresh_token",
                                                    "refresh_token": tokens["refresh_token"], "client_id": ctx.cid})
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant", \
        f"after a code replay the grant's refresh token still works: {refreshed.text}"


# ----------------------------------------------------------------------------------------------------------------------
# /revoke with real tokens of another client


def test_revoking_another_clients_tokens_revokes_nothing(ctx: Ctx):
    victim = sign_in(ctx.gw, "alice")  # its own client, registered by sign_in
    form = [b"Content-Type: " + FORM.encode()]
    for token_value in (victim["access_token"], victim["refresh_token"]):
        for hint in ("", "&token_type_hint=access_token", "&token_type_hint=refresh_token"):
            answer = exchange(ctx, "POST", b"/revoke", form, f"token={token_value}&client_id={ctx.cid}{hint}".encode())
            check(ctx, revoke(""), answer, OK)
        for hostile in (f"token={token_value}&client_id={victim['client_id']}%00",
                        f"token={token_value}%00&client_id={victim['client_id']}",
                        f"token={token_value}&client_id={victim['client_id']}&client_id={ctx.cid}"):
            check(ctx, revoke(""), exchange(ctx, "POST", b"/revoke", form, hostile.encode()), INVALID_REQUEST)
        check(ctx, revoke(""), exchange(ctx, "POST", b"/revoke", [b"Content-Type: application/json"], json.dumps({
            "token": token_value, "client_id": victim["client_id"]}).encode()), INVALID_REQUEST)
    open_session(ctx.stack.mcp_url, victim["access_token"])  # the access token still works
    refreshed = httpx.post(f"{ctx.gw}/token", data={"grant_type": "refresh_token",
                                                    "refresh_token": victim["refresh_token"],
                                                    "client_id": victim["client_id"]})
    assert refreshed.status_code == 200, f"the refresh token no longer works: {refreshed.text}"
    # The owner can revoke it (positive control)
    new_refresh = refreshed.json()["refresh_token"]
    assert httpx.post(f"{ctx.gw}/revoke", data={"token": new_refresh, "client_id": victim["client_id"]}).status_code == 200
    again = httpx.post(f"{ctx.gw}/token", data={"grant_type": "refresh_token", "refresh_token": new_refresh,
                                                "client_id": victim["client_id"]})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant", again.text


# ----------------------------------------------------------------------------------------------------------------------
# POST /authorize with real consent pages: forgeries are pages, the decision is a 303


@dataclass
class ConsentPage:
    request_id: str
    csrf: str
    cookie: str  # "name=value"


def consent_page(ctx: Ctx, state: str = "cs") -> ConsentPage:
    response = httpx.get(f"{ctx.gw}/authorize?" + urlencode({
        "response_type": "code", "client_id": ctx.cid, "redirect_uri": ctx.redirect, "state": state,
        "code_challenge": CHALLENGE, "code_challenge_method": "S256"}))
    assert response.status_code == 200, response.text
    fields = {name: html.unescape(value) for name, value in
              re.findall(r'name="(request_id|csrf_token)" value="([^"]*)"', response.text)}
    cookie = response.headers["set-cookie"].split(";")[0]
    return ConsentPage(fields["request_id"], fields["csrf_token"], cookie)


@pytest.fixture(scope="module")
def pages(ctx: Ctx) -> tuple[ConsentPage, ConsentPage]:
    return consent_page(ctx), consent_page(ctx)


FORGERIES = [
    ("no cookie", lambda a, b: (a.request_id, a.csrf, None, "approve")),
    ("another page's cookie", lambda a, b: (a.request_id, a.csrf, b.cookie, "approve")),
    ("another page's CSRF token", lambda a, b: (a.request_id, b.csrf, a.cookie, "approve")),
    ("another page's request_id", lambda a, b: (b.request_id, a.csrf, a.cookie, "approve")),
    ("no CSRF token", lambda a, b: (a.request_id, None, a.cookie, "approve")),
    ("empty CSRF token", lambda a, b: (a.request_id, "", a.cookie, "approve")),
    ("tampered request_id", lambda a, b: (a.request_id[:-2] + ("AA" if a.request_id[-2:] != "AA" else "BB"), a.csrf,
                                          a.cookie, "approve")),
    ("cookie value altered", lambda a, b: (a.request_id, a.csrf, a.cookie[:-1] + ("x" if a.cookie[-1] != "x" else "y"),
                                           "approve")),
    ("no cookie, deny", lambda a, b: (a.request_id, a.csrf, None, "deny")),
    ("another page's cookie, deny", lambda a, b: (a.request_id, a.csrf, b.cookie, "deny")),
    ("decision garbage", lambda a, b: (a.request_id, a.csrf, a.cookie, "maybe")),
    ("decision with %00", lambda a, b: (a.request_id, a.csrf, a.cookie, "deny%00")),
    ("decision twice", lambda a, b: (a.request_id, a.csrf, a.cookie, "deny&decision=approve")),
    ("request_id twice", lambda a, b: (a.request_id + "&request_id=" + a.request_id, a.csrf, a.cookie, "deny")),
]


@pytest.mark.parametrize("name,forge", FORGERIES, ids=[item[0] for item in FORGERIES])
def test_forged_consent_is_a_page(ctx: Ctx, pages, name, forge):
    request_id, csrf, cookie, decision = forge(*pages)
    parts = [f"request_id={request_id}", f"decision={decision}"]
    if csrf is not None:
        parts.insert(1, f"csrf_token={csrf}")
    headers = [b"Content-Type: " + FORM.encode()] + ([b"Cookie: " + cookie.encode()] if cookie else [])
    answer = exchange(ctx, "POST", b"/authorize", headers, "&".join(parts).encode())
    check(ctx, consent(""), answer, Either((Page((400, 403)), OAuth(400, "invalid_request"))))


def test_consent_deny_is_a_303_to_the_client(ctx: Ctx):
    page = consent_page(ctx, state="deny-state")
    answer = exchange(ctx, "POST", b"/authorize", [b"Content-Type: " + FORM.encode(), b"Cookie: " + page.cookie.encode()],
                      f"request_id={page.request_id}&csrf_token={page.csrf}&decision=deny".encode())
    check(ctx, authorize(state="deny-state"), answer, Back("access_denied", status=303))


def test_consent_approve_is_a_303_to_the_provider(ctx: Ctx):
    page = consent_page(ctx)
    answer = exchange(ctx, "POST", b"/authorize", [b"Content-Type: " + FORM.encode(), b"Cookie: " + page.cookie.encode()],
                      f"request_id={page.request_id}&csrf_token={page.csrf}&decision=approve".encode())
    assert answer.status == 303, answer.label + f" answered {answer.status}"
    assert answer.location.startswith(ctx.stack.idp_issuer), answer.location


# ----------------------------------------------------------------------------------------------------------------------
# POST /token with a real refresh token: every defective refresh is refused, and none of them spends the token


def test_defective_refreshes_of_a_real_refresh_token(ctx: Ctx):
    owner = sign_in(ctx.gw, "alice", "read:todos offline_access")
    refresh, client_id = quote(owner["refresh_token"], safe=""), owner["client_id"]
    base = f"grant_type=refresh_token&refresh_token={refresh}&client_id={client_id}"
    for body, expect in [
        (base + "&scope=read:todos&scope=read:todos", INVALID_REQUEST),
        (base + "&scope=read:todos&scope=offline_access", INVALID_REQUEST),
        (base + "&grant_type=refresh_token", INVALID_REQUEST),
        (base + f"&refresh_token={refresh}", INVALID_REQUEST),
        (base + "&scope=read:todos%00", INVALID_REQUEST),
        (base + "&x=%C2%85", INVALID_REQUEST),
        (base.replace(refresh, refresh + "%00"), INVALID_REQUEST),
        (base.replace(refresh, refresh + "%0A"), INVALID_REQUEST),
        (base.replace(client_id, client_id + "%00zzz"), INVALID_REQUEST),
        (base.replace(client_id, ctx.cid), INVALID_GRANT),  # another client's refresh token
        (base + "&resource=https%3A%2F%2Fevil.example%2Fmcp", INVALID_TARGET),
        (base + "&scope=write:todos", OAuth(400, "invalid_scope")),  # wider than granted
        (base + "&scope=admin", OAuth(400, "invalid_scope")),
    ]:
        answer = exchange(ctx, "POST", b"/token", [b"Content-Type: " + FORM.encode()], body.encode())
        check(ctx, token(""), answer, expect)
    for media in ("application/json", "text/plain", None):
        headers = [b"Content-Type: " + media.encode()] if media else []
        check(ctx, token(""), exchange(ctx, "POST", b"/token", headers, base.encode()), INVALID_REQUEST)
    answer = exchange(ctx, "POST", b"/token", [b"Content-Type: " + FORM.encode()], base.encode())
    assert answer.status == 200, f"the refresh token no longer works after refused refreshes: {answer.body[:300]!r}"
    assert "no-store" in answer.headers.get("cache-control", "")


# ----------------------------------------------------------------------------------------------------------------------
# GET /callback with a real pending sign-in: a page, never a redirect, and the pending sign-in bound to its browser


@dataclass
class Pending:
    state: str
    cookie: str  # gw_signin=…


def pending_sign_in(ctx: Ctx) -> Pending:
    page = consent_page(ctx)
    answer = exchange(ctx, "POST", b"/authorize", [b"Content-Type: " + FORM.encode(), b"Cookie: " + page.cookie.encode()],
                      f"request_id={page.request_id}&csrf_token={page.csrf}&decision=approve".encode())
    assert answer.status == 303 and answer.location.startswith(ctx.stack.idp_issuer), answer.label
    state = dict(parse_qsl(urlsplit(answer.location).query))["state"]
    cookie = next(part.split(";")[0].strip() for part in answer.headers["set-cookie"].split(",")
                  if part.strip().startswith("gw_signin="))
    return Pending(state, cookie)


CALLBACKS = [
    # name, query (after state=<real>), whether the browser's cookie is sent, expected
    ("no cookie (another browser)", "&code=x", None, Page((403, 400))),
    ("another sign-in's cookie", "&code=x", "other", Page((403, 400))),
    ("garbage code from the provider", "&code=garbage", "own", Page()),
    ("no code", "", "own", Page()),
    ("iss of another provider", "&code=x&iss=https%3A%2F%2Fevil.example", "own", Page()),
    ("code with %00", "&code=x%00y", "own", Page()),
    ("state twice", "&state=x&code=x", "own", Page()),
    # The provider's error: a page offering the way back (its status is not specified; never a redirect)
    ("provider error access_denied", "&error=access_denied", "own", Page((200, *range(400, 500)))),
    ("provider error with a hostile description",
     "&error=server_error&error_description=%3Cscript%3Ealert(1)%3C%2Fscript%3E%22%5C%C3%A9", "own",
     Page((200, *range(400, 500)))),
    ("provider error with a CRLF", "&error=x%0D%0ALocation:%20https://evil.example", "own", Page()),
]


@pytest.mark.parametrize("name,query,cookie,expect", CALLBACKS, ids=[item[0] for item in CALLBACKS])
def test_callback_of_a_real_pending_sign_in(ctx: Ctx, name, query, cookie, expect):
    pending = pending_sign_in(ctx)
    headers = []
    if cookie == "own":
        headers.append(b"Cookie: " + pending.cookie.encode())
    elif cookie == "other":
        headers.append(b"Cookie: " + pending_sign_in(ctx).cookie.encode())
    answer = exchange(ctx, "GET", f"/callback?state={quote(pending.state, safe='')}{query}".encode(), headers, None)
    check(ctx, Req("GET", "/callback"), answer, expect)
    assert b"<script>alert(1)" not in answer.body, "the provider's error_description is not escaped"
    for href in re.findall(rb'href="([^"]+)"', answer.body):
        link = html.unescape(href.decode())
        if link.startswith("http") and "/callback" not in link and not link.startswith(ctx.gw):
            assert loopback_variant(link, ctx.redirect), f"a link to an unregistered address: {link}"


def test_the_gateway_survived(ctx: Ctx):
    """The gateway is still running, and logged no unexpected error other than those of the known wrong answers."""
    gateway = ctx.stack.services[-1]
    assert gateway.process.poll() is None, gateway.output()[-3000:]
    unexpected = [line for line in gateway.output().splitlines() if "Unexpected error" in line
                  and not any(f"hb.request.id={id} " in line for id in KNOWN_SERVER_ERRORS if id)]
    assert not unexpected, "\n".join(unexpected[:20])
