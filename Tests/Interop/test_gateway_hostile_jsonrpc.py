"""Hostile and malformed JSON-RPC against the gateway's MCP endpoints, with valid tokens: POST /mcp stateless
(2026-07-28) and inside sessions (2025-11-25, and 2025-03-26 for batches), POST /messages of an open GET /sse
(2024-11-05), GET and DELETE /mcp.

Every exchange must be answered within DEADLINE seconds with a 2xx or 4xx (never a 5xx, never a hang); a request whose
id is valid gets a JSON-RPC response or error echoing that id (on the /sse stream for /messages), any other refusal a
JSON-RPC error with "id": null; a notification gets 202. Where MCP or the gateway's documented limits say which
status and code, the exact ones are checked:

- ids: a string of at most 128 bytes or an integer, anything else 400 -32600 (MCP: "string or integer", never null);
- bodies over MCP_MAX_REQUEST_BYTES (256 KiB): 413;
- 2026-07-28: an unknown method 404 -32601, header/body mismatch 400 -32020, an unsupported version 400 -32022 with
  data.supported; JSON-RPC batches only in 2025-03-26 sessions;
- in flight: 32 requests per user (429), 16 sessions per user (the oldest retired), MCP_MAX_SESSIONS in total (503
  with Retry-After; lowered to SESSION_CAP for this module so the test can reach it), 8 subscriptions/listen streams
  per user (429);
- a stream whose client stopped reading is closed after MCP_STREAM_STALL_TIMEOUT (STALL_TIMEOUT here).

One stack serves the module (MCP_KEEPALIVE_INTERVAL 1 s, so that streams notice clients that left); its last test
stops it (shutdown while clients hold connections).
"""

from __future__ import annotations

import base64
import json
import queue
import re
import signal
import socket
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway_stack import Stack, sign_in, start_stack
from support import raw_request

DEADLINE = 1.0
MAX_BODY = 262_144
SESSION_CAP = 64
STALL_TIMEOUT = 2
PER_USER_SESSIONS = 16
PER_USER_IN_FLIGHT = 32
MODERN = "2026-07-28"
SUPPORTED = ["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"]
META = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}
#: DevIdP users of this module, each with its own part (sessions are capped per user).
USERS = {
    "alice": "the corpus: stateless requests, the sessions and the /sse stream the corpus uses",
    "bob": "another user, whose sessions alice must not reach",
    "carol": "in-flight limits (slow bodies)",
    "dave": "the per-user session cap",
    "erin": "races between DELETE and requests",
    "frank": "subscriptions/listen limits", "grace": "session cap filler", "heidi": "session cap filler",
    "ivan": "session cap filler", "judy": "session cap filler", "mallory": "session cap filler",
    "oscar": "batches against the in-flight limit",
}
SCOPES = "read:todos read:billing write:todos offline_access"


# ----------------------------------------------------------------------------------------------------------------------
# The wire


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    elapsed: float
    request: str

    def json(self):
        if self.headers.get("content-type", "").startswith("text/event-stream"):
            data = [line[6:] for line in self.body.decode().split("\n") if line.startswith("data: ")]
            return json.loads("\n".join(data))
        return json.loads(self.body)

    @property
    def error(self) -> dict:
        message = self.json()
        assert isinstance(message, dict) and "error" in message, f"{self.request}: not a JSON-RPC error: {self.body[:300]!r}"
        return message["error"]


def dechunk(body: bytes) -> bytes:
    out, rest = b"", body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out, rest = out + rest[:size], rest[size + 2:]
    return out


class Gateway:
    def __init__(self, stack: Stack, tokens: dict[str, str]):
        self.stack, self.tokens = stack, tokens
        self.base = stack.gateway_url
        self.host, port = self.base.removeprefix("http://").split(":")
        self.port = int(port)
        self.process = stack.services[-1].process

    def exchange(self, method: str, path: str, headers: list[bytes | str] = (), body: bytes | None = None,
                 user: str | None = "alice", deadline: float = DEADLINE, allow: tuple[int, ...] = ()) -> Answer:
        """One request on its own connection, through support.raw_request (bytes as given); fails the test unless a
        complete answer arrives within `deadline`, and is not a 5xx (other than those in `allow`)."""
        lines = [line.encode("latin-1") if isinstance(line, str) else line for line in headers]
        if user:
            lines.insert(0, b"Authorization: Bearer " + self.tokens[user].encode())
        label = f"{method} {path} {[line[:80] for line in lines if not line.startswith(b'Authorization')]} " \
                f"{(body or b'')[:120]!r}"
        started = time.monotonic()
        try:
            status, response_headers, response_body = raw_request(
                self.base, path, lines, method=method.encode(), body=body, timeout=deadline)
        except (socket.timeout, TimeoutError):
            pytest.fail(f"no complete answer within {deadline}s to {label}")
        elapsed = time.monotonic() - started
        if response_headers.get("transfer-encoding", "").lower() == "chunked":
            response_body = dechunk(response_body)
        answer = Answer(status, response_headers, response_body, elapsed, label)
        assert status < 500 or status in allow, f"{label} answered {status}: {response_body[:300]!r}"
        assert elapsed <= deadline, f"{label} took {elapsed:.2f}s"
        return answer

    def post(self, body, headers: list[bytes | str] = (), path: str = "/mcp", user: str | None = "alice",
             content_type: bytes | None = b"application/json", accept: bytes | None = b"application/json, text/event-stream",
             deadline: float = DEADLINE, allow: tuple[int, ...] = ()) -> Answer:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        lines: list[bytes | str] = []
        if content_type is not None:
            lines.append(b"Content-Type: " + content_type)
        if accept is not None:
            lines.append(b"Accept: " + accept)
        return self.exchange("POST", path, [*lines, *headers], raw, user=user, deadline=deadline, allow=allow)

    def initialize(self, user: str, version: str = "2025-11-25") -> str:
        answer = self.post({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "hostile", "version": "1"}}},
            user=user)
        assert answer.status == 200, answer.body
        session = answer.headers["mcp-session-id"]
        initialized = self.post({"jsonrpc": "2.0", "method": "notifications/initialized"},
                                [f"Mcp-Session-Id: {session}"], user=user)
        assert initialized.status == 202, initialized.body
        return session

    def delete(self, session: str, user: str) -> Answer:
        return self.exchange("DELETE", "/mcp", [f"Mcp-Session-Id: {session}"], user=user)

    def alive(self, session: str, user: str) -> bool:
        answer = self.post({"jsonrpc": "2.0", "id": "alive?", "method": "ping"}, [f"Mcp-Session-Id: {session}"],
                           user=user)
        assert answer.status in (200, 404), answer.body
        return answer.status == 200

    def connect(self, rcvbuf: int | None = None) -> socket.socket:
        sock = socket.socket()
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(DEADLINE)
        sock.connect((self.host, self.port))
        return sock


class Stream:
    """A long-lived event stream (GET /sse, GET /mcp, subscriptions/listen) on a raw socket. With `read`, a thread
    decodes the chunked body into events; without, nothing is ever read (a client that stopped reading)."""

    def __init__(self, gateway: Gateway, request: bytes, read: bool = True, rcvbuf: int | None = None):
        self.sock = gateway.connect(rcvbuf)
        self.sock.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            byte = self.sock.recv(1)
            assert byte, f"connection closed before an answer: {head!r}"
            head += byte
        self.head = head.decode("latin-1")
        self.status = int(self.head.split()[1])
        self.events: queue.Queue[str | None] = queue.Queue()
        self.ended = threading.Event()
        if read:
            threading.Thread(target=self._read, daemon=True).start()

    @classmethod
    def get(cls, gateway: Gateway, path: str, headers: list[str] = (), user: str = "alice", **options) -> "Stream":
        lines = [f"GET {path} HTTP/1.1", f"Host: {gateway.host}", f"Authorization: Bearer {gateway.tokens[user]}",
                 *headers]
        return cls(gateway, ("\r\n".join(lines) + "\r\n\r\n").encode(), **options)

    @classmethod
    def post(cls, gateway: Gateway, body: dict, headers: list[str], user: str = "alice", **options) -> "Stream":
        raw = json.dumps(body)
        lines = ["POST /mcp HTTP/1.1", f"Host: {gateway.host}", f"Authorization: Bearer {gateway.tokens[user]}",
                 "Content-Type: application/json", f"Content-Length: {len(raw)}", *headers]
        return cls(gateway, ("\r\n".join(lines) + "\r\n\r\n" + raw).encode(), **options)

    def _read(self) -> None:
        self.sock.settimeout(None)
        raw, text = b"", ""
        try:
            while chunk := self.sock.recv(65536):
                raw += chunk
                while True:  # whole chunks only
                    size_line, separator, rest = raw.partition(b"\r\n")
                    if not separator:
                        break
                    size = int(size_line.split(b";")[0], 16)
                    if size == 0:
                        raise EOFError
                    if len(rest) < size + 2:
                        break
                    text += rest[:size].decode()
                    raw = rest[size + 2:]
                while "\n\n" in text:
                    event, text = text.split("\n\n", 1)
                    if not event.startswith(":"):  # keep-alive comments
                        self.events.put(event)
        except (OSError, EOFError):
            pass
        self.ended.set()
        self.events.put(None)

    def next_event(self, timeout: float = DEADLINE) -> str | None:
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no event within {timeout}s")

    def message(self, timeout: float = DEADLINE) -> dict:
        event = self.next_event(timeout)
        assert event is not None, "the stream ended"
        data = [line[6:] for line in event.split("\n") if line.startswith("data: ")]
        return json.loads("\n".join(data))

    def message_for(self, id, timeout: float = DEADLINE) -> dict:
        """The next message answering `id` (None: an error without an id), skipping answers to earlier requests."""
        deadline = time.monotonic() + timeout
        while True:
            message = self.message(max(deadline - time.monotonic(), 0.001))
            if message.get("id") == id and type(message.get("id")) is type(id):
                return message

    def drain(self) -> None:
        while not self.events.empty():
            self.events.get_nowait()

    def close(self) -> None:
        self.sock.close()


# ----------------------------------------------------------------------------------------------------------------------
# The stack


@pytest.fixture(scope="module")
def gw():
    users = Path(tempfile.mkdtemp(prefix="hostile-users-")) / "users.json"
    users.write_text(json.dumps({"users": [{
        "username": name, "password": f"{name}-password", "user_id": f"auth0|{name}", "name": name.title(),
        "email": f"{name}@example.com", "permissions": ["read:todos", "read:billing", "write:todos"],
    } for name in USERS]}))
    stack = start_stack("devidp", devidp_env={"DEVIDP_USERS": str(users)}, gateway_env={
        "MCP_MAX_SESSIONS": str(SESSION_CAP),
        # /sse sessions end with their stream, which notices a client that left on its next write.
        "MCP_KEEPALIVE_INTERVAL": "1",
        "MCP_STREAM_STALL_TIMEOUT": str(STALL_TIMEOUT),
    })
    try:
        with ThreadPoolExecutor(4) as pool:
            tokens = dict(zip(USERS, pool.map(lambda name: sign_in(stack.gateway_url, name, SCOPES)["access_token"], USERS)))
        yield Gateway(stack, tokens)
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def sessions(gw: Gateway) -> dict[str, str]:
    """alice's sessions of each revision the corpus runs in, and one of bob's."""
    return {"session": gw.initialize("alice", "2025-11-25"), "batching": gw.initialize("alice", "2025-03-26"),
            "2025-06-18": gw.initialize("alice", "2025-06-18"), "bob": gw.initialize("bob", "2025-11-25")}


@pytest.fixture(scope="module")
def legacy(gw: Gateway):
    """alice's GET /sse stream, read throughout, and the /messages path its endpoint event names."""
    stream = Stream.get(gw, "/sse", ["Accept: text/event-stream"])
    assert stream.status == 200, stream.head
    endpoint = stream.next_event()
    assert endpoint.startswith("event: endpoint"), endpoint
    path = re.search(r"data: (\S+)", endpoint).group(1)
    assert path.startswith("/messages?sessionId=")
    yield stream, path
    stream.close()


# ----------------------------------------------------------------------------------------------------------------------
# The corpus: one body, sent through each transport


ECHO, NULL = "echo", "null"


@dataclass(frozen=True)
class Expect:
    """`status`: the HTTP status (on /messages, 202 means the answer comes on the stream). `code`: the JSON-RPC error
    code, or None for a result, or ANY. `id`: ECHO (the request's id), NULL or None (no body: a 202)."""
    status: int | tuple[int, ...]
    code: int | tuple[int, ...] | None = None
    id: str | None = ECHO


ANY = "any"
ANSWERED = Expect(200, None)
ACCEPTED = Expect(202, None, None)
PARSE = Expect(400, -32700, NULL)
BAD_REQUEST = Expect(400, -32600, NULL)
BAD_REQUEST_ECHO = Expect(400, -32600, ECHO)
BAD_PARAMS = Expect(400, -32602, ECHO)
TOO_LARGE = Expect(413, ANY, NULL)

TRANSPORTS = ("stateless", "session", "batching", "legacy")


@dataclass(frozen=True)
class Case:
    name: str
    body: object
    expect: Expect | dict[str, Expect]
    #: For dict bodies: add the 2026-07-28 `_meta` (stateless transport) and mirror the headers.
    dress: bool = True

    def expected(self, transport: str) -> Expect:
        if isinstance(self.expect, Expect):
            return self.expect
        return self.expect.get(transport, self.expect.get("default"))


def per(default: Expect | None = None, **transports: Expect) -> dict[str, Expect]:
    return {"default": default, **transports}


def request(method, id=1, params=None, **members) -> dict:
    message = {"jsonrpc": "2.0", "id": id, "method": method, **members}
    if params is not None:
        message["params"] = params
    return message


def notification(method, params=None) -> dict:
    message = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    return message


#: A request every transport answers: tools/list.
LISTED = per(ANSWERED, legacy=Expect(202, None))
#: A method no transport knows: 404 in 2026-07-28, a 200 error in sessions, an error on the /sse stream.
UNKNOWN = per(Expect(200, -32601), stateless=Expect(404, -32601), legacy=Expect(202, -32601))
#: Invalid params: 400 in 2026-07-28, a 200 error in sessions.
INVALID_PARAMS = per(Expect(200, -32602), stateless=Expect(400, -32602), legacy=Expect(202, -32602))
#: A response or error posted by the client: 2026-07-28 refuses it (clients send none); sessions accept it (202).
CLIENT_RESPONSE = per(ACCEPTED, stateless=Expect(400, -32600, NULL))

VALID_IDS = [0, -1, 2**63 - 1, -(2**63), "", "1", "x" * 128, "é" * 64, "\u0000\n\"\\", "😀" * 32, " id with spaces "]
INVALID_IDS = {
    "true": True, "false": False, "null": None, "1.5": 1.5, "object": {}, "array": [1], "nested array": [[1]],
    "129-byte string": "x" * 129, "129 bytes of multibyte UTF-8": "€" * 43, "2^63": 2**63, "-2^63-1": -(2**63) - 1,
    "-1.5e3": -1.5e3,
}


def deep(levels: int, inner: str = "1", opener: str = "[", closer: str = "]") -> bytes:
    return (opener * levels + inner + closer * levels).encode()


def deep_object(levels: int) -> bytes:
    return ('{"a":' * levels + "1" + "}" * levels).encode()


PING = b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}'
RAW_META = b'"params":{"_meta":' + json.dumps(META).encode() + b"}"

CORPUS: list[Case] = [
    # Not JSON
    Case("empty body", b"", PARSE),
    Case("whitespace only", b"  \r\n\t ", PARSE),
    Case("invalid JSON", b"{jsonrpc: 2.0}", PARSE),
    Case("single quotes", b"{'jsonrpc':'2.0','id':1,'method':'tools/list'}", PARSE),
    Case("truncated", PING[:-1], PARSE),
    Case("truncated in a string", PING[:30], PARSE),
    Case("trailing comma", PING[:-1] + b",}", PARSE),
    Case("trailing garbage", PING + b"x", PARSE),
    Case("two messages back to back", PING + PING, PARSE),
    Case("NaN id", b'{"jsonrpc":"2.0","id":NaN,"method":"tools/list"}', PARSE),
    Case("Infinity", b'{"jsonrpc":"2.0","id":Infinity,"method":"tools/list"}', PARSE),
    Case("leading zero id", b'{"jsonrpc":"2.0","id":01,"method":"tools/list"}', PARSE),
    Case("comment", b'{"jsonrpc":"2.0",/* c */"id":1,"method":"tools/list"}', PARSE),
    Case("invalid UTF-8", b'{"jsonrpc":"2.0","id":1,"method":"tools/l\xffst"}', PARSE),
    Case("overlong UTF-8", b'{"jsonrpc":"2.0","id":1,"method":"tools\xc0\xaflist"}', PARSE),
    Case("lone surrogate escape", b'{"jsonrpc":"2.0","id":"\\ud800","method":"tools/list"}', PARSE),
    Case("raw control character", b'{"jsonrpc":"2.0","id":"a\x01b","method":"tools/list"}', PARSE),
    Case("NUL byte", b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}\x00', PARSE),
    Case("10k nested arrays", deep(10_000), PARSE),
    Case("10k nested objects", deep_object(10_000), PARSE),
    Case("10k nested in params", b'{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"x":' + deep(10_000)
         + b"}}", PARSE),
    Case("100k unclosed brackets", b"[" * 100_000, PARSE),
    Case("1e400 in params", b'{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"x":1e400}}',
         per(PARSE, legacy=PARSE)),
    Case("1e400 id", b'{"jsonrpc":"2.0","id":1e400,"method":"tools/list"}', Expect(400, (-32700, -32600), NULL)),
    Case("5000-digit integer id", b'{"jsonrpc":"2.0","id":' + b"9" * 5000 + b',"method":"tools/list"}',
         Expect(400, (-32700, -32600), NULL)),
    # JSON, but not a JSON-RPC message
    Case("null", b"null", BAD_REQUEST),
    Case("number", b"42", BAD_REQUEST),
    Case("string", b'"tools/list"', BAD_REQUEST),
    Case("true", b"true", BAD_REQUEST),
    Case("empty object", {}, BAD_REQUEST, dress=False),
    Case("empty array", [], BAD_REQUEST),
    Case("jsonrpc missing", {"id": 1, "method": "tools/list"}, BAD_REQUEST_ECHO),
    Case("jsonrpc 1.0", {"jsonrpc": "1.0", "id": 1, "method": "tools/list"}, BAD_REQUEST_ECHO),
    Case("jsonrpc as a number", {"jsonrpc": 2.0, "id": 1, "method": "tools/list"}, BAD_REQUEST_ECHO),
    Case("jsonrpc null", {"jsonrpc": None, "id": 1, "method": "tools/list"}, BAD_REQUEST_ECHO),
    Case("method missing", {"jsonrpc": "2.0", "id": 1}, BAD_REQUEST_ECHO),
    Case("method a number", request(5), BAD_REQUEST_ECHO),
    Case("method null", request(None), BAD_REQUEST_ECHO),
    Case("method an array", request(["tools/list"]), BAD_REQUEST_ECHO),
    Case("method an object", request({"name": "tools/list"}), BAD_REQUEST_ECHO),
    Case("method empty", request(""), BAD_REQUEST_ECHO),
    Case("params an array", request("tools/list", params=[1]), BAD_PARAMS, dress=False),
    Case("params empty array", request("tools/list", params=[]), BAD_PARAMS, dress=False),
    Case("params a string", request("tools/list", params="x"), BAD_PARAMS, dress=False),
    Case("params a number", request("tools/list", params=1), BAD_PARAMS, dress=False),
    Case("params null", request("tools/list", params=None) | {"params": None}, Expect(400, (-32602, -32600), ECHO),
         dress=False),
    Case("notification with params an array", notification("notifications/initialized", [1]),
         Expect(400, (-32602, -32600), NULL), dress=False),
    Case("notification without jsonrpc", {"method": "notifications/initialized"}, BAD_REQUEST),
    # Responses posted by the client
    Case("result response", {"jsonrpc": "2.0", "id": 1, "result": {}}, CLIENT_RESPONSE),
    Case("error response", {"jsonrpc": "2.0", "id": "s-1", "error": {"code": -1, "message": "no"}}, CLIENT_RESPONSE),
    Case("response without id", {"jsonrpc": "2.0", "result": {}}, BAD_REQUEST),
    Case("error response with null id", {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "x"}},
         BAD_REQUEST),
    Case("response with a 129-byte id", {"jsonrpc": "2.0", "id": "r" * 129, "result": {}}, BAD_REQUEST),
    Case("result and error", {"jsonrpc": "2.0", "id": 1, "result": {}, "error": {"code": 1, "message": "m"}},
         per(ACCEPTED, stateless=Expect(400, -32600, (NULL, ECHO)))),
    # Notifications of every kind: 202, whatever they name
    *[Case(f"notification {method}", notification(method, params), ACCEPTED) for method, params in [
        ("notifications/initialized", None), ("notifications/cancelled", {"requestId": 1, "reason": "x"}),
        ("notifications/cancelled", {"requestId": "never-sent"}), ("notifications/progress",
                                                                   {"progressToken": 1, "progress": 5}),
        ("notifications/roots/list_changed", {}), ("notifications/message", {"level": "info", "data": "x"}),
        ("notifications/tools/list_changed", None), ("notifications/unknown", {"a": [1, 2]}),
        ("not-a-notification-method", None), ("notifications/x" + "y" * 10_000, None),
        ("notifications/big", {"pad": "p" * 200_000}),
    ]],
    # "initialize" without an id: a notification; 2026-07-28 may refuse it (initialize always means a session).
    Case("notification initialize", notification("initialize", {"protocolVersion": "2025-11-25", "capabilities": {}}),
         per(ACCEPTED, stateless=Expect((202, 400), ANY, NULL))),
    # Requests with a valid id of every shape: answered, the id echoed exactly
    *[Case(f"valid id {json.dumps(id)[:24]}", request("tools/list", id), LISTED) for id in VALID_IDS],
    Case("id 1.0 (an integer to JSON Schema)", b'{"jsonrpc":"2.0","id":1.0,"method":"tools/list",' + RAW_META + b"}",
         per(Expect((200, 400), ANY, (ECHO, NULL)), legacy=Expect((202, 400), ANY, (ECHO, NULL)))),
    # Invalid ids: 400 -32600, id null, never an answer without an id
    *[Case(f"id {name}", request("tools/list", id), BAD_REQUEST) for name, id in INVALID_IDS.items()],
    *[Case(f"id {name} in a notification-looking message", {"jsonrpc": "2.0", "id": id, "method": "notifications/x"},
           BAD_REQUEST) for name, id in [("true", True), ("null", None), ("1.5", 1.5), ("{}", {})]],
    Case("id of 1 MB", request("tools/list", "i" * 1_000_000), TOO_LARGE),
    # Methods
    Case("unknown method", request("no/such/method"), UNKNOWN),
    Case("unknown method of 10 KB", request("m" * 10_000), UNKNOWN),
    Case("rpc.discover", request("rpc.discover"), UNKNOWN),
    Case("LSP-style method", request("$/cancelRequest"), UNKNOWN),
    Case("resources/list (no such capability)", request("resources/list"), UNKNOWN),
    Case("prompts/get (no such capability)", request("prompts/get", params={"name": "p"}), UNKNOWN),
    Case("ping", request("ping"), per(ANSWERED, stateless=Expect(404, -32601), legacy=Expect(202, None))),
    Case("server/discover", request("server/discover"), per(Expect(200, -32601), stateless=ANSWERED,
                                                            legacy=Expect(202, -32601))),
    Case("tools/call without a name", request("tools/call", params={}), INVALID_PARAMS),
    Case("tools/call with a numeric name", request("tools/call", params={"name": 7}), INVALID_PARAMS),
    Case("tools/call of an unknown tool", request("tools/call", params={"name": "rm-rf"}), INVALID_PARAMS),
    Case("tools/call with arguments an array", request("tools/call", params={"name": "whoami", "arguments": []}),
         INVALID_PARAMS),
    Case("tools/list with a cursor", request("tools/list", params={"cursor": "zzz"}), INVALID_PARAMS),
    Case("extra members", request("tools/list", extra={"x": 1}), LISTED),
    Case("method and result", request("tools/list", result={}), LISTED),
    Case("duplicate members (last wins)",
         b'{"jsonrpc":"2.0","id":"first","id":"last","method":"tools/list",' + RAW_META + b"}", LISTED),
    Case("500-level nesting in params (within the parser's limit)",
         b'{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":' + json.dumps(META).encode() + b',"x":'
         + deep(500) + b"}}", LISTED),
]


def dress(case: Case, transport: str) -> tuple[bytes, list[str]]:
    """The body and MCP headers of `case` for `transport`: a 2026-07-28 request carries `_meta` and mirrors its
    method and name in headers, so that only the defect under test is wrong."""
    body = case.body
    headers: list[str] = []
    if transport == "stateless":
        headers.append(f"MCP-Protocol-Version: {MODERN}")
        if isinstance(body, dict):
            if case.dress and isinstance(body.get("params", {}), dict):
                body = {**body, "params": {**body.get("params", {}), "_meta": META}}
            if isinstance(body.get("method"), str) and body["method"].isascii():
                headers.append(f"Mcp-Method: {body['method']}")
            name = body.get("params", {}).get("name") if isinstance(body.get("params"), dict) else None
            if isinstance(name, str):
                headers.append(f"Mcp-Name: {name}")
        else:
            headers.append("Mcp-Method: tools/list")
    return (body if isinstance(body, bytes) else json.dumps(body).encode()), headers


def sent_id(case: Case):
    """The request id the gateway must echo, or None when the body has no valid one."""
    body = case.body
    if isinstance(body, bytes):
        try:
            body = json.loads(body)
        except (ValueError, RecursionError):
            return None
    if not isinstance(body, dict) or "id" not in body:
        return None
    id = body["id"]
    if isinstance(id, bool) or not isinstance(id, (int, str)):
        return "1.0" if isinstance(id, float) and id == 1.0 else None
    if isinstance(id, str) and len(id.encode("utf-8", "surrogatepass")) > 128 or \
            isinstance(id, int) and not -(2**63) <= id < 2**63:
        return None
    return id


def check(answer: Answer, expect: Expect, id, stream: Stream | None = None) -> None:
    """`answer` (and, for a 202 on /messages, the message on the /sse stream) is what `expect` says, and echoes `id`
    (the request's valid id, or None) whenever `expect` asks for it."""
    statuses = expect.status if isinstance(expect.status, tuple) else (expect.status,)
    assert answer.status in statuses, f"{answer.request}: expected {expect.status}, got {answer.status}: " \
                                      f"{answer.body[:300]!r}"
    ids = expect.id if isinstance(expect.id, tuple) else (expect.id,)
    if answer.status == 202:
        if stream is None:
            assert answer.body == b"", answer.body
            return
        if expect.id is None:
            return  # a notification or a response on /messages: nothing comes back
        message = stream.message_for(id if ECHO in ids and id not in (None, "1.0") else None)
    else:
        message = answer.json()
    assert isinstance(message, dict) and message.get("jsonrpc") == "2.0", message
    codes = expect.code if isinstance(expect.code, tuple) else (expect.code,)
    if expect.code is None:
        assert "result" in message and "error" not in message, f"{answer.request}: {message}"
    elif expect.code != ANY:
        assert "error" in message, f"{answer.request}: {message}"
        assert message["error"]["code"] in codes, f"{answer.request}: {message}"
        assert isinstance(message["error"].get("message"), str)
    actual = message.get("id")
    if id == "1.0":
        assert actual in (1, None), message
    elif NULL in ids and actual is None:
        pass
    elif ECHO in ids and id is not None:
        assert actual == id and type(actual) is type(id), f"{answer.request}: id {id!r} not echoed: {message}"
    else:
        assert actual is None, f"{answer.request}: {message}"


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("case", CORPUS, ids=lambda case: case.name)
def test_corpus(gw: Gateway, sessions, legacy, case: Case, transport: str):
    expect = case.expected(transport)
    body, headers = dress(case, transport)
    stream = None
    path = "/mcp"
    if transport in ("session", "batching"):
        headers.append(f"Mcp-Session-Id: {sessions[transport]}")
    elif transport == "legacy":
        stream, path = legacy
        stream.drain()
    answer = gw.post(body, headers, path=path)
    id = None if expect == PARSE else sent_id(case)  # an id in text that is not JSON cannot be read
    if transport == "legacy" and answer.status == 400 and id not in (None, "1.0"):
        # A refusal of a request whose id could be read also goes to the stream, where the client waits for it.
        assert stream.message_for(id)["error"]["code"] == answer.error["code"]
    check(answer, expect, id, stream)


# ----------------------------------------------------------------------------------------------------------------------
# Batches: 2025-03-26 sessions only


PINGS = lambda count, start=0: [request("ping", id) for id in range(start, start + count)]  # noqa: E731

BATCHES = [
    # name, body, {revision: (status, code or None, expected answer ids or None)}
    ("empty", [], {"default": (400, -32600, None)}),
    ("one ping", PINGS(1), {"default": (400, -32600, None), "2025-03-26": (200, None, [0])}),
    ("16 pings", PINGS(16), {"default": (400, -32600, None), "2025-03-26": (200, None, list(range(16)))}),
    ("17 pings (MCP_MAX_BATCH is 32)", PINGS(17),
     {"default": (400, -32600, None), "2025-03-26": (200, None, list(range(17)))}),
    ("32 pings (MCP_MAX_BATCH)", PINGS(32),
     {"default": (400, -32600, None), "2025-03-26": (200, None, list(range(32)))}),
    ("33 pings", PINGS(33), {"default": (400, -32600, None)}),
    ("5000 pings", PINGS(5000), {"default": (400, -32600, None)}),
    ("10000 notifications (over 256 KiB)", [notification("notifications/progress")] * 10_000,
     {"default": (413, None, None)}),
    ("notifications only", [notification("notifications/initialized"), notification("notifications/x")],
     {"default": (400, -32600, None), "2025-03-26": (202, None, None)}),
    ("responses only", [{"jsonrpc": "2.0", "id": 5, "result": {}}, {"jsonrpc": "2.0", "id": 6, "error": {
        "code": 1, "message": "m"}}], {"default": (400, -32600, None), "2025-03-26": (202, None, None)}),
    ("mixed", [request("ping", "a"), notification("notifications/x"), {"jsonrpc": "2.0", "id": 9, "result": {}}, 5,
               request("ping", True), request("nope", "b"), request("tools/list", "c", params=[1])],
     {"default": (400, -32600, None), "2025-03-26": (200, None, ["a", None, None, "b", "c"])}),
    # MCP: "the initialize request MUST NOT be part of a JSON-RPC batch": refused whole, or answered with an error.
    ("with initialize", [request("ping", "a"), request("initialize", "d", params={
        "protocolVersion": "2025-03-26", "capabilities": {}})],
     {"default": (400, -32600, None), "2025-03-26": ((400, 200), -32600, ["a", "d"])}),
    ("nested", [PINGS(2)], {"default": (400, -32600, None), "2025-03-26": (200, None, [None])}),
    ("scalars", [1, "x", None, True], {"default": (400, -32600, None), "2025-03-26": (200, None, [None] * 4)}),
    ("duplicate ids", [request("ping", 7), request("ping", 7)],
     {"default": (400, -32600, None), "2025-03-26": (200, None, [7, 7])}),
]


@pytest.mark.parametrize("revision", ["2025-03-26", "2025-06-18", "2025-11-25", "stateless", "legacy"])
@pytest.mark.parametrize("name,body,expected", BATCHES, ids=[batch[0] for batch in BATCHES])
def test_batches(gw: Gateway, sessions, legacy, name, body, expected, revision):
    status, code, ids = expected.get(revision, expected["default"])
    if isinstance(status, tuple):  # either refused whole (status[0], code) or answered per message (status[1], ids)
        answer = gw.post(json.dumps(body).encode(), ["Mcp-Session-Id: " + sessions["batching"]])
        assert answer.status in status, answer.body
        if answer.status == 400:
            assert answer.error["code"] == code
        else:
            answers = answer.json()
            assert [item.get("id") for item in answers] == ids and answers[-1]["error"]["code"] == code, answers
        return
    headers: list[str] = []
    path = "/mcp"
    if revision in ("2025-03-26", "2025-11-25", "2025-06-18"):
        headers.append("Mcp-Session-Id: " + {"2025-03-26": sessions["batching"], "2025-11-25": sessions["session"],
                                             "2025-06-18": sessions["2025-06-18"]}[revision])
    elif revision == "stateless":
        headers += [f"MCP-Protocol-Version: {MODERN}", "Mcp-Method: ping"]
    else:
        path = legacy[1]
    answer = gw.post(json.dumps(body).encode(), headers, path=path)
    assert answer.status == status, f"{name} in {revision}: {answer.status} {answer.body[:300]!r}"
    if code is not None:
        assert answer.error["code"] == code and answer.json()["id"] is None, answer.body
    if ids is not None:
        answers = answer.json()
        assert isinstance(answers, list) and [item.get("id") for item in answers] == ids, answers
        for item in answers:
            assert item["jsonrpc"] == "2.0" and ("result" in item) != ("error" in item), item


# ----------------------------------------------------------------------------------------------------------------------
# 2026-07-28 headers: MCP-Protocol-Version, Mcp-Method, Mcp-Name


def b64(value: str | bytes) -> str:
    raw = value.encode() if isinstance(value, str) else value
    return "=?base64?" + base64.b64encode(raw).decode() + "?="


def modern(method: str, params: dict | None = None, id=1, meta: dict | None = None) -> dict:
    return request(method, id, {**(params or {}), "_meta": META if meta is None else meta})


CALL = modern("tools/call", {"name": "list-todos", "arguments": {}})
CALL_UNICODE = modern("tools/call", {"name": "tödo", "arguments": {}})
LIST = modern("tools/list")
OLD_META = {**META, "io.modelcontextprotocol/protocolVersion": "1999-01-01"}
MISMATCH, UNSUPPORTED = Expect(400, -32020), Expect(400, -32022)
V, M = f"MCP-Protocol-Version: {MODERN}", "Mcp-Method: "

HEADER_CASES = [
    # name, body, header lines (str, or bytes as sent), expected
    ("all headers right", CALL, [V, M + "tools/call", "Mcp-Name: list-todos"], ANSWERED),
    ("MCP-Protocol-Version missing", LIST, [M + "tools/list"], MISMATCH),
    ("MCP-Protocol-Version differs from _meta", modern("tools/list", meta={
        **META, "io.modelcontextprotocol/protocolVersion": "2025-11-25"}), [V, M + "tools/list"], MISMATCH),
    ("MCP-Protocol-Version unknown, _meta 2026-07-28", LIST, ["MCP-Protocol-Version: 2026-07-28-x", M + "tools/list"],
     Expect(400, (-32020, -32022))),
    # Repeated lines combine into one list value ("2026-07-28, 2026-07-28"): malformed (-32020) or unknown (-32022).
    ("MCP-Protocol-Version twice", LIST, [V, V, M + "tools/list"], Expect(400, (-32020, -32022))),
    ("MCP-Protocol-Version twice, different", LIST, [V, "MCP-Protocol-Version: 2025-06-18", M + "tools/list"],
     Expect(400, (-32020, -32022))),
    ("MCP-Protocol-Version lower-case name", LIST, ["mcp-protocol-version: 2026-07-28", M + "tools/list"], ANSWERED),
    ("MCP-Protocol-Version with spaces around", LIST, ["MCP-Protocol-Version:    2026-07-28   ", M + "tools/list"],
     ANSWERED),
    ("MCP-Protocol-Version non-ASCII", LIST, [b"MCP-Protocol-Version: 2026-07-28\xc3\xa9", M + "tools/list"],
     Expect(400, (-32020, -32022))),
    ("MCP-Protocol-Version of 8 KB", LIST, ["MCP-Protocol-Version: " + "9" * 8192, M + "tools/list"],
     Expect(400, (-32020, -32022))),
    ("unsupported version in both", modern("tools/list", meta=OLD_META),
     ["MCP-Protocol-Version: 1999-01-01", M + "tools/list"], UNSUPPORTED),
    ("unsupported version, no _meta (a client of another era)", request("tools/list"),
     ["MCP-Protocol-Version: 1999-01-01", M + "tools/list"], UNSUPPORTED),
    ("unsupported version header on a notification", notification("notifications/x"),
     ["MCP-Protocol-Version: 1999-01-01", M + "notifications/x"], Expect(400, -32022, NULL)),
    ("_meta of 2026-07-28 under a session-era version header", LIST,
     ["MCP-Protocol-Version: 2025-06-18", M + "tools/list"], MISMATCH),
    ("_meta version not a string", modern("tools/list", meta={**META, "io.modelcontextprotocol/protocolVersion": 20260728}),
     [V, M + "tools/list"], Expect(400, (-32602, -32020))),
    ("_meta without clientCapabilities", modern("tools/list", meta={"io.modelcontextprotocol/protocolVersion": MODERN}),
     [V, M + "tools/list"], Expect(400, -32602)),
    ("_meta an array", request("tools/list", params={"_meta": [MODERN]}), [V, M + "tools/list"], Expect(400, -32602)),
    ("Mcp-Method missing", LIST, [V], MISMATCH),
    ("Mcp-Method differs", LIST, [V, M + "tools/call"], MISMATCH),
    ("Mcp-Method in other case", LIST, [V, M + "Tools/List"], MISMATCH),
    ("Mcp-Method twice", LIST, [V, M + "tools/list", M + "tools/list"], MISMATCH),
    ("Mcp-Method comma-joined", LIST, [V, M + "tools/list, tools/list"], MISMATCH),
    ("Mcp-Method empty", LIST, [V, "Mcp-Method:"], MISMATCH),
    ("Mcp-Method of 16 KB", LIST, [V, M + "x" * 16_384], MISMATCH),
    ("Mcp-Method non-ASCII", LIST, [V, b"Mcp-Method: tools/l\xc3\xafst"], MISMATCH),
    ("Mcp-Method Base64-encoded", LIST, [V, M + b64("tools/list")], Expect((200, 400), ANY)),
    ("Mcp-Name missing", CALL, [V, M + "tools/call"], MISMATCH),
    ("Mcp-Name differs", CALL, [V, M + "tools/call", "Mcp-Name: list-billing"], MISMATCH),
    ("Mcp-Name twice", CALL, [V, M + "tools/call", "Mcp-Name: list-todos", "Mcp-Name: list-todos"], MISMATCH),
    ("Mcp-Name Base64", CALL, [V, M + "tools/call", "Mcp-Name: " + b64("list-todos")], ANSWERED),
    ("Mcp-Name Base64 without padding", CALL, [V, M + "tools/call", "Mcp-Name: =?base64?bGlzdC10b2Rvcw?="],
     Expect((200, 400), (None, -32020))),
    ("Mcp-Name Base64 not Base64", CALL, [V, M + "tools/call", "Mcp-Name: =?base64?!!!!?="], MISMATCH),
    ("Mcp-Name Base64 of invalid UTF-8", CALL, [V, M + "tools/call", "Mcp-Name: " + b64(b"\xff\xfe")], MISMATCH),
    ("Mcp-Name Base64 sentinel in capitals", CALL,
     [V, M + "tools/call", "Mcp-Name: =?BASE64?" + base64.b64encode(b"list-todos").decode() + "?="], MISMATCH),
    ("Mcp-Name sentinel alone", CALL, [V, M + "tools/call", "Mcp-Name: =?base64??="], MISMATCH),
    ("Mcp-Name of 64 KB", CALL, [V, M + "tools/call", "Mcp-Name: " + "n" * 65_536], Expect((400, 431), ANY, (NULL, ECHO))),
    ("Mcp-Name Base64 of a non-ASCII name", CALL_UNICODE, [V, M + "tools/call", "Mcp-Name: " + b64("tödo")],
     Expect(400, -32602)),  # the headers match; the tool does not exist
    # A header value must be visible ASCII: raw UTF-8 or Latin-1 bytes are "invalid characters" (-32020), which an
    # intermediary may decode differently from the server.
    ("Mcp-Name raw UTF-8 bytes", CALL_UNICODE, [V, M + "tools/call", "Mcp-Name: tödo".encode()], MISMATCH),
    ("Mcp-Name raw Latin-1 byte", CALL_UNICODE, [V, M + "tools/call", "Mcp-Name: tödo".encode("latin-1")], MISMATCH),
    ("Mcp-Name with a control character", CALL, [V, M + "tools/call", b"Mcp-Name: list\x01todos"],
     Expect(400, ANY, (NULL, ECHO))),
    ("Mcp-Name on a tools/call without a name", modern("tools/call", {"arguments": {}}),
     [V, M + "tools/call", "Mcp-Name: list-todos"], Expect(400, (-32020, -32602))),
    ("Mcp-Session-Id of another user is ignored", LIST, [V, M + "tools/list", "Mcp-Session-Id: {bob}"], ANSWERED),
    ("garbage Mcp-Session-Id is ignored", LIST, [V, M + "tools/list", "Mcp-Session-Id: garbage!"], ANSWERED),
    ("Last-Event-ID is ignored", LIST, [V, M + "tools/list", "Last-Event-ID: 42"], ANSWERED),
]


@pytest.mark.parametrize("name,body,headers,expect", HEADER_CASES, ids=[case[0] for case in HEADER_CASES])
def test_modern_headers(gw: Gateway, sessions, name, body, headers, expect: Expect):
    headers = [line.replace("{bob}", sessions["bob"]) if isinstance(line, str) else line for line in headers]
    answer = gw.post(body, headers)
    assert answer.status in (expect.status if isinstance(expect.status, tuple) else (expect.status,)), \
        f"{name}: {answer.status} {answer.body[:300]!r}"
    if not answer.body:
        return
    message = answer.json()
    if expect.code is None:
        assert "result" in message, message
    elif expect.code != ANY:
        codes = expect.code if isinstance(expect.code, tuple) else (expect.code,)
        assert message.get("error", {}).get("code") in codes, f"{name}: {message}"
    if "id" in body and expect.id == ECHO and "error" in message and answer.status != 431:
        assert message["id"] == body["id"], message
    if message.get("error", {}).get("code") == -32022:
        data = message["error"]["data"]
        assert data["supported"] == SUPPORTED and isinstance(data["requested"], str), data


# ----------------------------------------------------------------------------------------------------------------------
# Media types, Accept, body limits


JSON, SSE = b"application/json", b"text/event-stream"
PLAIN, CHUNKED = "plain", "chunked"
BODY_CASES = [
    # name, Content-Type, Accept, body size (None: the message as is), framing, extra header lines, expected status
    ("Content-Type text/plain", b"text/plain", JSON, None, PLAIN, [], 415),
    ("no Content-Type", None, JSON, None, PLAIN, [], 415),
    ("Content-Type application/json-seq", b"application/json-seq", JSON, None, PLAIN, [], 415),
    ("Content-Type application/jsonx", b"application/jsonx", JSON, None, PLAIN, [], 415),
    ("Content-Type form", b"application/x-www-form-urlencoded", JSON, None, PLAIN, [], 415),
    ("Content-Type twice", b"text/plain", JSON, None, PLAIN, [b"Content-Type: application/json"], 415),
    ("Content-Type with parameters and capitals", b"Application/JSON; charset=utf-8", JSON, None, PLAIN, [], 200),
    ("Accept text/html", JSON, b"text/html", None, PLAIN, [], 406),
    ("Accept empty", JSON, b"", None, PLAIN, [], 406),
    ("Accept q=0 for both", JSON, b"application/json;q=0, text/event-stream;q=0.0", None, PLAIN, [], 406),
    ("Accept image/*", JSON, b"image/*", None, PLAIN, [], 406),
    ("no Accept", JSON, None, None, PLAIN, [], 200),
    ("Accept */*", JSON, b"*/*", None, PLAIN, [], 200),
    ("Accept text/event-stream only", JSON, SSE, None, PLAIN, [], 200),
    ("body of exactly 256 KiB", JSON, JSON, MAX_BODY, PLAIN, [], 200),
    ("body of 256 KiB + 1", JSON, JSON, MAX_BODY + 1, PLAIN, [], 413),
    ("body of 1 MiB", JSON, JSON, 1 << 20, PLAIN, [], 413),
    ("chunked body within the limit", JSON, JSON, 100_000, CHUNKED, [], 200),
    ("chunked body over the limit", JSON, JSON, MAX_BODY + 1, CHUNKED, [], 413),
    ("Content-Length and Transfer-Encoding", JSON, JSON, None, "smuggle", [], 400),
    ("two different Content-Lengths", JSON, JSON, None, "two-lengths", [], 400),
    ("negative Content-Length", JSON, JSON, None, "negative-length", [], 400),
    ("malformed chunk size", JSON, JSON, None, "bad-chunk", [], 400),
]


def framed(message: bytes, size: int | None, framing: str) -> tuple[bytes, list[bytes]]:
    """`message` padded with whitespace to `size` bytes, and framed as `framing` says (the header lines to add)."""
    body = message + b" " * (size - len(message)) if size else message
    if framing == CHUNKED:
        chunks = [body[at:at + 65_536] for at in range(0, len(body), 65_536)]
        return b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for chunk in chunks) + b"0\r\n\r\n", \
            [b"Transfer-Encoding: chunked"]
    if framing == "smuggle":
        return b"0\r\n\r\n" + body, [b"Content-Length: %d" % (len(body) + 5), b"Transfer-Encoding: chunked"]
    if framing == "two-lengths":
        return body, [b"Content-Length: %d" % len(body), b"Content-Length: 3"]
    if framing == "negative-length":
        return body, [b"Content-Length: -1"]
    if framing == "bad-chunk":
        return b"zz\r\n" + body + b"\r\n0\r\n\r\n", [b"Transfer-Encoding: chunked"]
    return body, []


@pytest.mark.parametrize("transport", ["stateless", "session", "legacy"])
@pytest.mark.parametrize("name,content_type,accept,size,framing,extra,status", BODY_CASES,
                         ids=[case[0] for case in BODY_CASES])
def test_media_types_and_sizes(gw: Gateway, sessions, legacy, name, content_type, accept, size, framing, extra, status,
                               transport):
    message = b'{"jsonrpc":"2.0","id":1,"method":"tools/list",' + RAW_META + b"}"
    headers: list = list(extra)
    path = "/mcp"
    if transport == "stateless":
        headers += [f"MCP-Protocol-Version: {MODERN}", "Mcp-Method: tools/list"]
    elif transport == "session":
        headers.append(f"Mcp-Session-Id: {sessions['session']}")
    else:
        path = legacy[1]
        legacy[0].drain()
        if status in (200, 406):
            status = 202  # /messages answers on the stream, whatever Accept says
    body, framing_lines = framed(message, size, framing)
    answer = gw.post(body, [*headers, *framing_lines], path=path, content_type=content_type, accept=accept)
    assert answer.status == status, f"{name} ({transport}): {answer.status} {answer.body[:300]!r}"
    if status == 200:
        assert answer.json()["id"] == 1 and "result" in answer.json()
        if accept == SSE:
            assert answer.headers["content-type"].startswith("text/event-stream")
    elif status == 202:
        assert "result" in legacy[0].message_for(1)
    elif status in (406, 413, 415):
        assert answer.error["code"] == -32600 and answer.json()["id"] is None, answer.body


def test_content_length_over_the_limit_is_refused_before_the_body(gw: Gateway):
    """A client that announces more than MCP_MAX_REQUEST_BYTES is answered 413 at once: the gateway must not wait
    for (and hold a place among the user's requests for) a body it will refuse."""
    for extra in ([], [b"Expect: 100-continue"]):
        sock = gw.connect()
        sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + gw.tokens["alice"].encode()
                     + b"\r\nContent-Type: application/json\r\nAccept: application/json\r\n"
                     + b"".join(line + b"\r\n" for line in extra) + b"Content-Length: 100000000000\r\n\r\n{")
        try:
            head = sock.recv(4096)
        except socket.timeout:
            head = b"(nothing within 1 s)"
        finally:
            sock.close()
        assert head.startswith((b"HTTP/1.1 413", b"HTTP/1.1 417")), f"Content-Length 10^11 {extra}: {head[:200]!r}"


# ----------------------------------------------------------------------------------------------------------------------
# Sessions: GET, DELETE, another user's session, garbage ids


def test_session_ids_that_are_not_yours(gw: Gateway, sessions, legacy):
    legacy_session = legacy[1].split("=", 1)[1]
    ping = request("ping", "p")
    for label, value in [("another user's", sessions["bob"]), ("garbage", "garbage"), ("empty", ""),
                         ("10 KB", "s" * 10_000), ("an /sse session's", legacy_session),
                         ("non-ASCII", "sé".encode()), ("own, twice", None)]:
        lines = [b"Mcp-Session-Id: " + (value if isinstance(value, bytes) else value.encode())] if value is not None \
            else [f"Mcp-Session-Id: {sessions['session']}"] * 2
        posted = gw.post(ping, lines)
        assert posted.status in (400, 404) and posted.error["code"] == -32600 and posted.json()["id"] == "p", \
            f"POST with {label} session id: {posted.status} {posted.body[:200]!r}"
        got = gw.exchange("GET", "/mcp", [b"Accept: text/event-stream", *lines])
        assert got.status in (400, 404), f"GET with {label} session id: {got.status} {got.body[:200]!r}"
        deleted = gw.exchange("DELETE", "/mcp", lines)
        assert deleted.status in (400, 404), f"DELETE with {label} session id: {deleted.status}"
    # bob's session survived alice's attempts; alice's /sse session too
    assert gw.alive(sessions["bob"], "bob")
    assert gw.post(request("ping", "still"), path=legacy[1]).status == 202
    assert "result" in legacy[0].message_for("still")


@pytest.mark.parametrize("name,headers,status,codes", [
    ("its own version", ["MCP-Protocol-Version: 2025-11-25"], 200, None),
    ("no version header (a server MAY assume 2025-03-26)", [], 200, None),
    ("another session revision", ["MCP-Protocol-Version: 2025-06-18"], 400, (-32600, -32022)),
    ("an unknown version", ["MCP-Protocol-Version: 1999-01-01"], 400, (-32022,)),
    ("an unknown version, twice", ["MCP-Protocol-Version: 1999-01-01"] * 2, 400, (-32020, -32022)),
    ("2026-07-28 without _meta", [f"MCP-Protocol-Version: {MODERN}", "Mcp-Method: ping"], 400, (-32602, -32020)),
])
def test_version_header_inside_a_session(gw: Gateway, sessions, name, headers, status, codes):
    """2025-06-18 on: the client repeats the negotiated version; "an invalid or unsupported MCP-Protocol-Version" is a
    400 (and 2026-07-28's UnsupportedProtocolVersionError lists what the gateway speaks)."""
    answer = gw.post(request("ping", "v"), [f"Mcp-Session-Id: {sessions['session']}", *headers])
    assert answer.status == status, f"{name}: {answer.status} {answer.body[:200]!r}"
    message = answer.json()
    assert message["id"] == "v", message
    if codes:
        assert message["error"]["code"] in codes, message
    if message.get("error", {}).get("code") == -32022:
        assert message["error"]["data"]["supported"] == SUPPORTED


@pytest.mark.parametrize("name,request_line,headers,status", [
    ("GET without a session", "GET /mcp", ["Accept: text/event-stream"], 405),
    ("DELETE without a session", "DELETE /mcp", [], 405),
    ("GET accepting only JSON", "GET /mcp", ["Accept: application/json", "Mcp-Session-Id: {session}"], 406),
    ("GET accepting nothing", "GET /mcp", ["Accept: text/html;q=1, text/event-stream;q=0", "Mcp-Session-Id: {session}"],
     406),
    ("PUT", "PUT /mcp", ["Mcp-Session-Id: {session}"], 405),
    ("PATCH", "PATCH /mcp", [], 405),
    ("GET /sse accepting only JSON", "GET /sse", ["Accept: application/json"], 406),
    ("POST /sse", "POST /sse", ["Content-Type: application/json"], 405),
    ("GET /messages", "GET /messages", [], 405),
    ("POST /messages without sessionId", "POST /messages", ["Content-Type: application/json"], 400),
    ("POST /messages with an unknown sessionId", "POST /messages?sessionId=nope", ["Content-Type: application/json"],
     404),
    ("POST /messages with another user's sessionId", "POST /messages?sessionId={bob-sse}",
     ["Content-Type: application/json"], 404),
    ("POST /messages with a /mcp session's id", "POST /messages?sessionId={session}", ["Content-Type: application/json"],
     404),
])
def test_other_methods_and_paths(gw: Gateway, sessions, name, request_line, headers, status):
    bob_sse = Stream.get(gw, "/sse", ["Accept: text/event-stream"], user="bob") if "{bob-sse}" in request_line else None
    try:
        if bob_sse:
            endpoint = bob_sse.next_event()
            request_line = request_line.replace("{bob-sse}", re.search(r"sessionId=([\w-]+)", endpoint).group(1))
        verb, path = request_line.replace("{session}", sessions["session"]).split(" ")
        lines = [line.replace("{session}", sessions["session"]) for line in headers]
        answer = gw.exchange(verb, path, lines, PING if verb == "POST" else None)
        assert answer.status == status, f"{name}: {answer.status} {answer.body[:200]!r}"
    finally:
        if bob_sse:
            bob_sse.close()


def test_get_stream_is_single_and_ends_with_delete(gw: Gateway):
    session = gw.initialize("erin", "2025-11-25")
    stream = Stream.get(gw, "/mcp", ["Accept: text/event-stream", f"Mcp-Session-Id: {session}"], user="erin")
    try:
        assert stream.status == 200 and "text/event-stream" in stream.head
        second = gw.exchange("GET", "/mcp", ["Accept: text/event-stream", f"Mcp-Session-Id: {session}"], user="erin")
        assert second.status == 409 and second.error["code"] == -32600
        assert gw.delete(session, "erin").status == 200
        assert stream.ended.wait(DEADLINE), "the GET stream outlived DELETE of its session"
        assert gw.delete(session, "erin").status == 404
        assert not gw.alive(session, "erin")
    finally:
        stream.close()


def test_delete_races_requests(gw: Gateway):
    """DELETE while requests of the session are in flight: each request gets its answer or a 404, none a 5xx."""
    for round in range(3):
        session = gw.initialize("erin", "2025-11-25")
        headers = [f"Mcp-Session-Id: {session}"]
        call = lambda n: gw.post(request("tools/call", f"r{n}", {"name": "list-todos", "arguments": {}}), headers,  # noqa: E731
                                 user="erin")
        with ThreadPoolExecutor(12) as pool:
            futures = [pool.submit(call, n) for n in range(12)]
            time.sleep(0.005 * round)
            deleted = pool.submit(gw.delete, session, "erin")
            answers = [future.result() for future in futures]
        assert deleted.result().status == 200
        for n, answer in enumerate(answers):
            assert answer.status in (200, 404, 429), answer.body
            assert answer.json()["id"] == f"r{n}"


def test_sse_session_ends_when_its_client_leaves(gw: Gateway):
    stream = Stream.get(gw, "/sse", ["Accept: text/event-stream"], user="erin")
    path = re.search(r"data: (\S+)", stream.next_event()).group(1)
    assert gw.post(request("ping", 1), path=path, user="erin").status == 202
    assert stream.message()["id"] == 1
    stream.close()
    deadline = time.monotonic() + 3  # MCP_KEEPALIVE_INTERVAL is 1 s here: the next keep-alive finds the socket gone
    while time.monotonic() < deadline:
        if gw.post(request("ping", 2), path=path, user="erin").status == 404:
            return
        time.sleep(0.2)
    pytest.fail("/messages still accepts requests 3 s after the /sse client left")


# ----------------------------------------------------------------------------------------------------------------------
# Limits: in flight per user, sessions per user and in total, listen streams


def test_in_flight_per_user_and_places_given_back(gw: Gateway):
    """carol holds 32 requests open (bodies that never finish): the 33rd is a 429 with Retry-After, at once; when the
    32 connections drop, carol's places come back."""
    held = []
    try:
        for _ in range(PER_USER_IN_FLIGHT):
            sock = gw.connect()
            sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + gw.tokens["carol"].encode()
                         + b"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
            held.append(sock)
        time.sleep(0.3)
        refused = gw.post(LIST, [V, M + "tools/list"], user="carol")
        assert refused.status == 429 and "retry-after" in refused.headers, refused.body
        assert refused.error["code"] == -31000
        assert gw.post(LIST, [V, M + "tools/list"], user="alice").status == 200  # other users are not affected
        refused_sse = gw.post(request("ping", 1), path="/messages?sessionId=x", user="carol")
        assert refused_sse.status in (404, 429)
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 2
    while (answer := gw.post(LIST, [V, M + "tools/list"], user="carol")).status == 429:
        assert time.monotonic() < deadline, "carol's places were not given back after her connections closed"
        time.sleep(0.1)
    assert answer.status == 200


def test_batches_count_against_the_in_flight_limit(gw: Gateway):
    """While TodosAPI does not answer (SIGSTOP), two 2025-03-26 batches of 16 tools/call put 32 of oscar's requests in
    flight: a 33rd request of his is a 429 at once, as it would be after 32 single requests."""
    sessions = [gw.initialize("oscar", "2025-03-26") for _ in range(2)]
    batch = [request("tools/call", n, {"name": "list-todos", "arguments": {}}) for n in range(16)]
    upstream = gw.stack.services[1].process
    upstream.send_signal(signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(2) as pool:
            batches = [pool.submit(gw.post, batch, [f"Mcp-Session-Id: {session}"], user="oscar", deadline=30)
                       for session in sessions]
            time.sleep(0.5)
            sock = gw.connect()
            body = json.dumps(modern("tools/call", {"name": "list-todos", "arguments": {}})).encode()
            sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + gw.tokens["oscar"].encode()
                         + b"\r\nContent-Type: application/json\r\nAccept: application/json\r\n"
                         + f"{V}\r\n{M}tools/call\r\nMcp-Name: list-todos\r\n".encode()
                         + b"Content-Length: %d\r\n\r\n" % len(body) + body)
            try:
                head = sock.recv(200)
            except socket.timeout:
                head = b"nothing within 1 s: the request was let through, to wait for TodosAPI"
            finally:
                sock.close()
                upstream.send_signal(signal.SIGCONT)
            answers = [future.result() for future in batches]
    finally:
        upstream.send_signal(signal.SIGCONT)
    assert all(answer.status == 200 and len(answer.json()) == 16 for answer in answers)
    assert head.startswith(b"HTTP/1.1 429"), f"33rd request with 32 batched tool calls in flight: {head[:120]!r}"


def test_sessions_per_user_retire_the_oldest(gw: Gateway):
    opened = [gw.initialize("dave") for _ in range(PER_USER_SESSIONS)]
    assert all(gw.alive(session, "dave") for session in opened)
    # 24 more at once: every initialize is answered, and dave keeps 16 live sessions, the newest
    with ThreadPoolExecutor(8) as pool:
        more = list(pool.map(lambda _: gw.initialize("dave"), range(24)))
    alive = [session for session in opened + more if gw.alive(session, "dave")]
    assert len(alive) == PER_USER_SESSIONS, len(alive)
    assert not any(gw.alive(session, "dave") for session in opened), "an older session outlived 16 newer ones"
    for session in alive:
        gw.delete(session, "dave")


def test_listen_streams(gw: Gateway):
    listen = modern("subscriptions/listen", {"notifications": {"toolsListChanged": True}})
    headers = [V, M + "subscriptions/listen"]
    assert gw.post(listen, headers, accept=JSON, user="frank").status == 406
    bad = gw.post(modern("subscriptions/listen", {"notifications": {"toolsListChanged": "yes"}}), headers, user="frank")
    assert bad.status == 400 and bad.error["code"] == -32602 and bad.json()["id"] == 1
    missing = gw.post(modern("subscriptions/listen"), headers, user="frank")
    assert missing.status == 400 and missing.error["code"] == -32602
    streams = []
    try:
        for n in range(8):
            body = modern("subscriptions/listen", {"notifications": {}}, id=f"L{n}")
            stream = Stream.post(gw, body, [f"MCP-Protocol-Version: {MODERN}", "Mcp-Method: subscriptions/listen",
                                            "Accept: text/event-stream"], user="frank", read=n % 2 == 0)
            streams.append(stream)
            assert stream.status == 200
            if n % 2 == 0:
                ack = stream.message()
                assert ack["method"] == "notifications/subscriptions/acknowledged"
                assert ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == f"L{n}"
        ninth = gw.post(modern("subscriptions/listen", {"notifications": {}}, id="L8"), headers, user="frank")
        assert ninth.status == 429 and ninth.json()["id"] == "L8" and "retry-after" in ninth.headers
    finally:
        for stream in streams:
            stream.close()
    deadline = time.monotonic() + 4  # closed streams are noticed at the next keep-alive (1 s here)
    while True:
        probe = Stream.post(gw, modern("subscriptions/listen", {"notifications": {}}, id="again"),
                            [f"MCP-Protocol-Version: {MODERN}", "Mcp-Method: subscriptions/listen",
                             "Accept: text/event-stream"], user="frank", read=False)
        probe.close()
        if probe.status == 200:
            break
        assert probe.status == 429 and time.monotonic() < deadline, "listen places were not given back"
        time.sleep(0.3)


def test_session_cap_503_then_room_again(gw: Gateway):
    """MCP_MAX_SESSIONS (64 here): a new session beyond it is refused with 503 and Retry-After, on /mcp and /sse,
    without ending anyone else's; room comes back when sessions end."""
    fillers = ["grace", "heidi", "ivan", "judy", "mallory"]
    opened: list[tuple[str, str]] = []
    refused = None
    try:
        for user in fillers:
            for _ in range(PER_USER_SESSIONS):
                answer = gw.post({"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": {
                    "protocolVersion": "2025-11-25", "capabilities": {}}}, user=user, allow=(503,))
                if answer.status == 503:
                    refused = answer
                    break
                assert answer.status == 200, answer.body
                opened.append((user, answer.headers["mcp-session-id"]))
            if refused:
                break
        assert refused is not None and len(opened) <= SESSION_CAP, f"no 503 after {len(opened)} new sessions"
        assert "retry-after" in refused.headers and refused.json()["id"] == "init"
        sse = gw.exchange("GET", "/sse", ["Accept: text/event-stream"], user="mallory", allow=(503,))
        assert sse.status == 503 and "retry-after" in sse.headers
        assert all(gw.alive(session, user) for user, session in opened[:3])
        gw.delete(opened[0][1], opened[0][0])
        assert gw.post({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}}}, user="mallory").status == 200
    finally:
        for user, session in opened:
            gw.delete(session, user)


def server_side_state(gw: Gateway, client: socket.socket) -> str | None:
    """The TCP state of the gateway's end of `client`'s connection, from /proc/net/tcp (None: no such socket)."""
    states = {"01": "ESTABLISHED", "04": "FIN_WAIT1", "05": "FIN_WAIT2", "06": "TIME_WAIT", "07": "CLOSE",
              "08": "CLOSE_WAIT", "09": "LAST_ACK", "0B": "CLOSING"}
    peer = client.getsockname()[1]
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state = fields[1], fields[2], fields[3]
        if int(local.split(":")[1], 16) == gw.port and int(remote.split(":")[1], 16) == peer:
            return states.get(state, state)
    return None


def fill_unread_sse(gw: Gateway, user: str) -> tuple[Stream, str]:
    """A GET /sse whose client never reads, and as many tools/list answers queued for it as the gateway takes."""
    unread = Stream.get(gw, "/sse", ["Accept: text/event-stream"], user=user, read=False, rcvbuf=4096)
    data = b""
    while not re.search(rb"sessionId=[\w-]+\n", data):
        data += unread.sock.recv(1)
    path = "/messages?" + re.search(rb"sessionId=[\w-]+", data).group(0).decode()
    for n in range(3000):
        if gw.post(request("tools/list", n), path=path, user=user, deadline=3).status != 202:
            break
    return unread, path


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads the server's socket state from /proc")
def test_a_stream_nobody_reads_is_closed(gw: Gateway):
    """A GET /sse whose client stopped reading: once MCP_STREAM_STALL_TIMEOUT (2 s here) has passed with answers
    waiting, the gateway closes the connection: its session, the answers it holds and the socket are let go."""
    unread, path = fill_unread_sse(gw, "erin")
    try:
        assert gw.post(request("ping", "late"), path=path, user="erin").status == 404  # the session has ended
        time.sleep(STALL_TIMEOUT + 2)
        state = server_side_state(gw, unread.sock)
        assert state != "ESTABLISHED", \
            f"{STALL_TIMEOUT + 2}s after its stream was given up, the gateway's end of the connection is still {state}"
    finally:
        unread.close()


# ----------------------------------------------------------------------------------------------------------------------
# Last: shutdown while clients hold connections (stops the module's stack)


def test_shutdown_is_not_held_up_by_clients(gw: Gateway):
    """SIGTERM with a POST whose body never completes and a GET /sse that stopped reading (its events queued): the
    gateway ends the streams and exits within a few seconds instead of waiting for those clients forever."""
    slow = gw.connect()
    slow.sendall(b"POST /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + gw.tokens["alice"].encode()
                 + b"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
    unread, _ = fill_unread_sse(gw, "bob")  # the gateway's writes to this stream now wait
    started = time.monotonic()
    gw.process.send_signal(signal.SIGTERM)
    try:
        gw.process.wait(timeout=5)
    except Exception:  # noqa: BLE001 - reported below
        pass
    finally:
        exited = gw.process.poll() is not None
        waited = time.monotonic() - started
        slow.close()
        unread.close()
        if not exited:
            gw.process.kill()
            gw.process.wait()
    assert exited, f"the gateway was still running {waited:.1f}s after SIGTERM (a stalled upload and an unread /sse)"
