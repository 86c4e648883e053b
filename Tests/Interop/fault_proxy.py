"""A TCP-level HTTP/1.1 proxy that puts faults between the gateway and one upstream service (TodosAPI, a provider).

The proxy reads each request off the client's connection as a unit (request line, headers, a Content-Length or chunked
body) and decides what to do with it by the mode in force when its headers arrived, so a mode switch applies to the
next request even on a connection the client keeps alive. Each client connection has its own upstream connection,
opened at its first forwarded request and kept alive as long as both ends allow it.

    with FaultProxy("127.0.0.1", api_port) as proxy:
        ...  # point the gateway at proxy.url
        proxy.set_mode("slow_answer", path_prefix="/oauth/token", delay=11.0, times=1)

Modes (parameters and defaults in `PARAMETERS`):
- `pass`: forwarded.
- `refuse`: for every request, the listening socket is closed (connecting fails with ECONNREFUSED) and kept-alive
  connections are reset at their next request; limited by `path_prefix` or `method`, only the matching requests are
  reset and the proxy keeps listening.
- `hang`: the request is read, never answered; the connection is held until the client closes it (or the proxy).
- `headers_then_silence`: forwarded; the upstream's status line and headers are sent, nothing more (held).
- `slow_body`: forwarded; the head at once, then the body as it is on the wire, `chunk` bytes every `interval` s.
- `slow_answer`: forwarded at once; the whole response is sent `delay` s later.
- `reset`: the request is read, then the connection reset (RST, SO_LINGER 0), no answer.
- `close`: the request is read, then the connection closed (FIN), no answer: a server's idle-timeout race.
- `status`: `status` with `body` and `headers` answered by the proxy, `Connection: close` unless `keep_alive`.
- `garbage`: `data` (not HTTP) answered by the proxy, then the connection closed.

Everything runs on one asyncio loop in one daemon thread; `close()` closes every socket (held connections too) and
joins the thread."""

from __future__ import annotations

import asyncio
import errno
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Awaitable, Callable, NamedTuple

MODES = ("pass", "refuse", "hang", "headers_then_silence", "slow_body", "slow_answer", "reset", "close", "status",
         "garbage")
UPSTREAM_MODES = ("pass", "headers_then_silence", "slow_body", "slow_answer")
"""The modes whose requests reach the upstream; the others answer (or not) on the proxy's own."""

PARAMETERS: dict[str, dict[str, object]] = {
    "pass": {},
    "refuse": {},
    "hang": {},
    "headers_then_silence": {},
    "slow_body": {"interval": 1.0, "chunk": 1},
    "slow_answer": {"delay": 11.0},
    "reset": {},
    "close": {},
    "status": {"status": 503, "body": None, "keep_alive": False, "headers": None},
    "garbage": {"data": b"\x00\xffthis is not HTTP\r\n\x16\x03\x01\x02\x00\r\n\r\n"},
}
"""Each mode's parameters and their defaults."""

HEAD_LIMIT = 64 * 1024
CHUNK = 64 * 1024

Sink = Callable[[bytes], Awaitable[None]]


class SeenRequest(NamedTuple):
    """A request the proxy read: its method, its target (path and query) and the mode it was handled in."""
    method: str
    path: str
    mode: str


@dataclass
class _Rule:
    mode: str = "pass"
    path_prefix: str | None = None
    method: str | None = None
    times: int | None = None
    params: dict[str, object] = field(default_factory=dict)

    def matches(self, method: str, path: str) -> bool:
        return ((self.path_prefix is None or path.startswith(self.path_prefix))
                and (self.method is None or method.upper() == self.method.upper()))

    @property
    def refuses_connections(self) -> bool:
        """`refuse` for every request: the listening socket is closed, so connecting fails at once."""
        return self.mode == "refuse" and self.path_prefix is None and self.method is None


class _Message:
    """A request's or response's head, parsed just enough to find where its body ends."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        lines = raw.decode("latin-1").split("\r\n")
        self.start = lines[0].split(" ", 2)
        if len(self.start) < 2:
            raise ValueError(f"malformed start line {lines[0]!r}")
        self.headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if not line:
                continue
            name, colon, value = line.partition(":")
            if not colon:
                raise ValueError(f"malformed header line {line!r}")
            self.headers.append((name.strip().lower(), value.strip()))

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]

    def tokens(self, name: str) -> list[str]:
        return [token.strip().lower() for value in self.values(name) for token in value.split(",") if token.strip()]

    @property
    def chunked(self) -> bool:
        codings = self.tokens("transfer-encoding")
        return bool(codings) and codings[-1] == "chunked"

    @property
    def content_length(self) -> int | None:
        values = {value for value in self.values("content-length")}
        if not values:
            return None
        if len(values) > 1 or not next(iter(values)).isdigit():
            raise ValueError(f"bad Content-Length {values}")
        return int(next(iter(values)))

    def keeps_alive(self, version: str) -> bool:
        connection = self.tokens("connection")
        if "close" in connection:
            return False
        return version == "HTTP/1.1" or "keep-alive" in connection


class _Request(_Message):
    def __init__(self, raw: bytes) -> None:
        super().__init__(raw)
        if len(self.start) != 3:
            raise ValueError(f"malformed request line {self.start!r}")
        self.method, self.path, self.version = self.start

    @property
    def keep_alive(self) -> bool:
        return self.keeps_alive(self.version)


class _Response(_Message):
    def __init__(self, raw: bytes) -> None:
        super().__init__(raw)
        self.version = self.start[0]
        self.status = int(self.start[1])

    @property
    def keep_alive(self) -> bool:
        return self.keeps_alive(self.version)


class _Closed(Exception):
    """The client connection is finished with (closed, reset or held until closed); nothing more to do."""


class FaultProxy:
    """Listens on 127.0.0.1 on a free port and forwards to `upstream_host:upstream_port`, faithfully until told
    otherwise by `set_mode`. `requests` lists every request it read (method, path, mode); `connections` counts the
    connections it accepted."""

    def __init__(self, upstream_host: str, upstream_port: int, name: str = "fault-proxy") -> None:
        # Resolved once here, so the loop never needs a resolver thread.
        self.upstream = socket.getaddrinfo(upstream_host, upstream_port, type=socket.SOCK_STREAM)[0][4][:2]
        self.requests: list[SeenRequest] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._rule = _Rule()
        self._closed = False
        self._tasks: set[asyncio.Task] = set()
        self._listener: socket.socket | None = None
        self._accepting: asyncio.Task | None = None
        self._listener = self._listen(0)
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=f"{name}-{self.port}", daemon=True)
        self._thread.start()
        self._call(self._start_accepting())

    # The test's side.

    def set_mode(self, mode: str, path_prefix: str | None = None, method: str | None = None, times: int | None = None,
                 **params: object) -> None:
        """From now on, handle requests whose target starts with `path_prefix` (and whose method is `method`), all by
        default, in `mode`; the others pass. With `times`, only the next `times` matching requests, then everything
        passes again. Requests already under way keep the mode they started in. See `PARAMETERS` for each mode's
        parameters: `slow_body` (interval, chunk: bytes per interval), `slow_answer` (delay), `status` (status,
        body, keep_alive, headers), `garbage` (data)."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}: one of {', '.join(MODES)}")
        unknown = set(params) - set(PARAMETERS[mode])
        if unknown:
            raise TypeError(f"{mode} takes no parameter {', '.join(sorted(unknown))}")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1")
        rule = _Rule(mode, path_prefix, method, times, {**PARAMETERS[mode], **params})
        if rule.refuses_connections and times is not None:
            raise ValueError("refuse for every request closes the listening socket: it cannot count, give no times")
        if self._closed:
            raise RuntimeError("the proxy is closed")
        with self._lock:
            self._rule = rule
        if rule.refuses_connections:
            self._call(self._stop_accepting())
        elif self._listener is None:
            self._reopen()

    def reset_counters(self) -> None:
        with self._lock:
            self.requests.clear()
            self.connections = 0

    def seen(self, path_prefix: str = "", mode: str | None = None) -> list[SeenRequest]:
        """The requests read so far whose target starts with `path_prefix` (and handled in `mode`)."""
        with self._lock:
            return [request for request in self.requests
                    if request.path.startswith(path_prefix) and (mode is None or request.mode == mode)]

    @property
    def forwarded(self) -> list[SeenRequest]:
        """The requests that reached the upstream (in `pass`, `headers_then_silence`, `slow_body`, `slow_answer`)."""
        with self._lock:
            return [request for request in self.requests if request.mode in UPSTREAM_MODES]

    def wait_for(self, count: int, path_prefix: str = "", mode: str | None = None,
                 timeout: float = 10.0) -> list[SeenRequest]:
        """Waits until at least `count` requests matching `seen(path_prefix, mode)` were read; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self.seen(path_prefix, mode)
            if len(seen) >= count:
                return seen
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(seen)} of {count} requests to {path_prefix or '/'} within {timeout}s: {seen}")
            time.sleep(0.02)

    def close(self) -> None:
        """Closes the listening socket and every connection (held ones too), and stops the thread."""
        if self._closed:
            return
        self._closed = True
        try:
            self._call(self._shutdown(), timeout=10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            if self._listener is not None:  # only if the loop could not close it
                self._listener.close()

    def __enter__(self) -> "FaultProxy":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FaultProxy({self.url} -> {self.upstream[0]}:{self.upstream[1]}, {self._rule.mode})"

    # The loop's side.

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.run_until_complete(self._loop.shutdown_default_executor())
        finally:
            self._loop.close()

    def _call(self, coroutine: Awaitable[object], timeout: float = 5.0) -> object:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def _listen(self, port: int) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", port))
            listener.listen(128)
            listener.setblocking(False)
        except OSError:
            listener.close()
            raise
        return listener

    def _reopen(self) -> None:
        """Listens on the same port again after `refuse`. Another socket may hold the port for a moment (a client's
        ephemeral port, say), so binding is retried for a while."""
        deadline = time.monotonic() + 5
        while True:
            try:
                listener = self._listen(self.port)
                break
            except OSError as error:
                if error.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self._listener = listener
        self._call(self._start_accepting())

    async def _start_accepting(self) -> None:
        self._accepting = asyncio.get_running_loop().create_task(self._accept(self._listener))

    async def _stop_accepting(self) -> None:
        if self._accepting is not None:
            self._accepting.cancel()
            await asyncio.gather(self._accepting, return_exceptions=True)
            self._accepting = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    async def _accept(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                connection, _ = await loop.sock_accept(listener)
            except OSError:
                await asyncio.sleep(0.01)  # EMFILE and the like: try again rather than stop serving
                continue
            with self._lock:
                self.connections += 1
            task = loop.create_task(self._serve(connection))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _shutdown(self) -> None:
        await self._stop_accepting()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0)  # lets the transports' close callbacks run, which close their sockets

    def _rule_for(self, method: str, path: str) -> _Rule:
        with self._lock:
            rule = self._rule
            if rule.mode == "pass" or not rule.matches(method, path):
                rule = _Rule()
            elif rule.times is not None:
                rule.times -= 1
                if rule.times == 0:
                    self._rule = _Rule()
            self.requests.append(SeenRequest(method, path, rule.mode))
            return rule

    async def _serve(self, connection: socket.socket) -> None:
        connection.setblocking(False)
        client: _Connection | None = None
        upstream: _Connection | None = None
        try:
            reader, writer = await asyncio.open_connection(sock=connection, limit=HEAD_LIMIT)
            client = _Connection(reader, writer)
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return  # closed between requests (or in the middle of a head)
                request = _Request(head)
                rule = self._rule_for(request.method, request.path)
                if "100-continue" in request.tokens("expect"):
                    # Answered here for every mode, so that no client waits for it before sending the body.
                    await client.send(b"HTTP/1.1 100 Continue\r\n\r\n")
                if rule.mode in UPSTREAM_MODES:
                    if upstream is None or upstream.dead:
                        if upstream is not None:
                            upstream.close()
                        try:
                            up_reader, up_writer = await asyncio.open_connection(*self.upstream, limit=HEAD_LIMIT)
                        except OSError:
                            client.reset()  # the upstream refused: the client sees a failed connection too
                            return
                        upstream = _Connection(up_reader, up_writer)
                    keep = await self._forward(request, rule, client, upstream)
                    if not keep:
                        return
                    continue
                await _copy_body(reader, request, _discard)
                if rule.mode in ("refuse", "reset"):
                    client.reset()
                    return
                if rule.mode == "close":
                    return  # closed below, gracefully: a FIN and no answer
                if rule.mode == "hang":
                    await client.hold()
                if rule.mode == "garbage":
                    await client.send(bytes(rule.params["data"]))
                    return
                if rule.mode == "status":
                    keep = bool(rule.params["keep_alive"]) and request.keep_alive
                    await client.send(_status_response(request, rule.params, keep))
                    if not keep:
                        return
        except (_Closed, asyncio.CancelledError):
            pass
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # a connection failed or spoke something other than HTTP/1.1: both are closed below
        finally:
            # When the proxy closes, aborted: a plain close waits until a client that reads nothing took what was
            # written, which may be never.
            for side in (upstream, client):
                if side is not None:
                    side.abort() if self._closed else side.close()
            if client is None:
                connection.close()

    async def _forward(self, request: _Request, rule: _Rule, client: "_Connection", upstream: "_Connection") -> bool:
        """Sends `request` upstream and its response back as `rule` says; whether both connections may carry
        another request."""
        await upstream.send(request.raw)
        await _copy_body(client.reader, request, upstream.send)
        while True:
            response = _Response(await upstream.reader.readuntil(b"\r\n\r\n"))
            if response.status < 100 or response.status >= 200 or response.status == 101:
                break
            await client.send(response.raw)  # an interim response (100 Continue, 103 Early Hints)
        if response.status == 101:
            await client.send(response.raw)
            await _tunnel(client, upstream)
            raise _Closed
        framing = _response_framing(request, response)
        keep = request.keep_alive and response.keep_alive and framing != "until-close"
        mode = rule.mode
        if mode == "pass":
            await client.send(response.raw)
            await _copy_response_body(upstream.reader, framing, response, client.send)
        elif mode == "headers_then_silence":
            await client.send(response.raw)
            # The upstream's body is read and dropped meanwhile: closing with it unread would reset the connection.
            draining = asyncio.ensure_future(_copy_response_body(upstream.reader, framing, response, _discard))
            try:
                await client.hold()
            finally:
                draining.cancel()
                await asyncio.gather(draining, return_exceptions=True)
        elif mode == "slow_answer":
            whole = bytearray(response.raw)

            async def collect(data: bytes) -> None:
                whole.extend(data)

            await _copy_response_body(upstream.reader, framing, response, collect)
            await asyncio.sleep(float(rule.params["delay"]))  # a client gone meanwhile fails the send below
            await client.send(bytes(whole))
        elif mode == "slow_body":
            await client.send(response.raw)
            await _dribble(upstream.reader, framing, response, client, float(rule.params["interval"]),
                           int(rule.params["chunk"]))
        if not keep:
            await client.finish()
        return keep


class _Connection:
    """One side's streams, with the ways the proxy ends a connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @property
    def dead(self) -> bool:
        """Closed by the other end (or fed bytes nobody asked for) while idle: not to be used for another request."""
        return self.reader.at_eof() or self.writer.is_closing() or bool(getattr(self.reader, "_buffer", b""))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def hold(self) -> None:
        """Answers nothing more and waits until the other end closes (what it sends meanwhile is read and dropped)."""
        while await self.reader.read(CHUNK):
            pass
        raise _Closed

    async def finish(self) -> None:
        """Closes the connection after what was sent (FIN), as a server does after `Connection: close`."""
        self.close()
        raise _Closed

    def reset(self) -> None:
        """Closes the connection with a TCP reset (SO_LINGER 0)."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        self.writer.transport.abort()

    def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()

    def abort(self) -> None:
        """Closes the socket at once, whatever is still to be sent."""
        self.writer.transport.abort()


async def _discard(data: bytes) -> None:
    pass


async def _copy_exactly(reader: asyncio.StreamReader, length: int, sink: Sink) -> None:
    while length > 0:
        data = await reader.read(min(length, CHUNK))
        if not data:
            raise asyncio.IncompleteReadError(b"", length)
        length -= len(data)
        await sink(data)


async def _copy_until_close(reader: asyncio.StreamReader, sink: Sink) -> None:
    while data := await reader.read(CHUNK):
        await sink(data)


async def _copy_chunked(reader: asyncio.StreamReader, sink: Sink) -> None:
    """Copies a chunked body as it is on the wire, chunk sizes and trailers included."""
    while True:
        line = await reader.readuntil(b"\r\n")
        await sink(line)
        size = int(line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while True:
                trailer = await reader.readuntil(b"\r\n")
                await sink(trailer)
                if trailer == b"\r\n":
                    return
        await _copy_exactly(reader, size + 2, sink)


async def _copy_body(reader: asyncio.StreamReader, request: _Request, sink: Sink) -> None:
    """A request's body: chunked, Content-Length or none (RFC 9112 §6.3)."""
    if request.chunked:
        await _copy_chunked(reader, sink)
    elif request.tokens("transfer-encoding"):
        raise ValueError("a request body whose length is unknown")
    else:
        await _copy_exactly(reader, request.content_length or 0, sink)


def _response_framing(request: _Request, response: _Response) -> str:
    if request.method == "HEAD" or response.status in (204, 304) or 100 <= response.status < 200:
        return "none"
    if request.method == "CONNECT" and 200 <= response.status < 300:
        return "until-close"
    if response.chunked:
        return "chunked"
    if response.tokens("transfer-encoding"):
        return "until-close"
    if response.content_length is not None:
        return "length"
    return "until-close"


async def _copy_response_body(reader: asyncio.StreamReader, framing: str, response: _Response, sink: Sink) -> None:
    if framing == "chunked":
        await _copy_chunked(reader, sink)
    elif framing == "length":
        await _copy_exactly(reader, response.content_length or 0, sink)
    elif framing == "until-close":
        await _copy_until_close(reader, sink)


async def _dribble(reader: asyncio.StreamReader, framing: str, response: _Response, client: _Connection,
                   interval: float, chunk: int) -> None:
    """Sends the response's body `chunk` bytes every `interval` seconds, as it arrives from upstream."""
    pending = bytearray()
    arrived = asyncio.Event()

    async def collect(data: bytes) -> None:
        pending.extend(data)
        arrived.set()

    filling = asyncio.ensure_future(_copy_response_body(reader, framing, response, collect))
    try:
        while pending or not filling.done():
            if not pending:
                arrived.clear()
                waiting = asyncio.ensure_future(arrived.wait())
                try:
                    await asyncio.wait([filling, waiting], return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiting.cancel()
                continue
            await asyncio.sleep(interval)
            piece = bytes(pending[:chunk])
            del pending[:chunk]
            await client.send(piece)
        filling.result()  # the upstream's failure mid-body ends the client's connection too
    finally:
        filling.cancel()
        if filling.done() and not filling.cancelled():
            filling.exception()  # retrieved, so that asyncio does not log it


async def _tunnel(client: _Connection, upstream: _Connection) -> None:
    """After 101 Switching Protocols: bytes both ways until either side closes."""

    async def pump(source: _Connection, target: _Connection) -> None:
        await _copy_until_close(source.reader, target.send)

    tasks = [asyncio.ensure_future(pump(client, upstream)), asyncio.ensure_future(pump(upstream, client))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _status_response(request: _Request, params: dict[str, object], keep_alive: bool) -> bytes:
    status = int(params["status"])
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Fault"
    body = params["body"]
    body = f"fault proxy: {status} {reason}\n".encode() if body is None else body
    body = body.encode() if isinstance(body, str) else bytes(body)
    headers = {"Content-Type": "text/plain; charset=utf-8", **(params["headers"] or {})}
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{name}: {value}" for name, value in headers.items()),
             f"Content-Length: {len(body)}", f"Connection: {'keep-alive' if keep_alive else 'close'}"]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if request.method == "HEAD" or status in (204, 304):
        return head
    return head + body
