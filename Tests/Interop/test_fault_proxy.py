"""The fault proxy itself, against a small keep-alive HTTP/1.1 server started here: it forwards faithfully by default,
each mode does what it says, a mode switch reaches the next request of a kept-alive connection, and `close()` leaves
no thread or socket behind."""

from __future__ import annotations

import http.client
import os
import socket
import threading
import time
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fault_proxy import FaultProxy, SeenRequest

TICK = 0.2


class Upstream:
    """A keep-alive HTTP/1.1 server recording every request it answers: (method, path, client port, time, body).
    `GET /hello` is "hello world" with a Content-Length, `GET /chunked` is chunked, `POST /echo` echoes its body
    (Content-Length or chunked), `/oauth/token` is a token response, `/then-close` closes the connection after its
    answer (as a server does at its idle timeout), anything else is a 404."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, int, float, bytes]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while (size := int(self.rfile.readline().split(b";")[0], 16)) > 0:
                        data += self.rfile.read(size)
                        self.rfile.readline()
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass
                    return data
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))

            def answer(self) -> None:
                body = self.body()
                owner.seen.append((self.command, self.path, self.client_address[1], time.monotonic(), body))
                if self.path == "/chunked":
                    self.send_response(200)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for piece in (b"first ", b"second ", b"third"):
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.write(b"0\r\n\r\n")
                    return
                status, reply = {"/hello": (200, b"hello world"), "/short": (200, b"abcde"), "/echo": (200, body),
                                 "/oauth/token": (200, b'{"access_token":"t"}'),
                                 "/then-close": (200, b"bye")}.get(self.path.split("?")[0], (404, b"not found"))
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(reply)
                if self.path == "/then-close":
                    self.close_connection = True  # closed after the answer, which did not say so

            do_GET = do_POST = do_HEAD = answer  # noqa: N815 - http.server's naming

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), name="upstream", daemon=True)
        self.thread.start()

    def paths(self) -> list[str]:
        return [path for _, path, *_ in self.seen]

    def shutdown(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def upstream():
    server = Upstream()
    yield server
    server.shutdown()


@pytest.fixture
def proxy(upstream):
    with FaultProxy("127.0.0.1", upstream.port) as proxy:
        yield proxy


def connect(proxy: FaultProxy, timeout: float = 5.0) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=timeout)


def get(connection: http.client.HTTPConnection, path: str, method: str = "GET",
        body: bytes | None = None) -> tuple[int, bytes]:
    connection.request(method, path, body=body)
    response = connection.getresponse()
    return response.status, response.read()


def raw(proxy: FaultProxy, path: str = "/hello", timeout: float = 5.0) -> socket.socket:
    """A socket to the proxy on which a GET of `path` was sent."""
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=timeout)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: upstream\r\n\r\n".encode())
    return sock


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_pass_forwards_several_requests_on_one_kept_alive_connection(upstream, proxy):
    connection = connect(proxy)
    assert get(connection, "/hello") == (200, b"hello world")
    assert get(connection, "/chunked") == (200, b"first second third")
    assert get(connection, "/echo", "POST", b"x" * 100_000) == (200, b"x" * 100_000)
    connection.request("POST", "/echo", body=iter([b"in ", b"chunks"]), encode_chunked=True)
    response = connection.getresponse()
    assert (response.status, response.read()) == (200, b"in chunks")
    assert get(connection, "/hello", "HEAD") == (200, b"")  # a Content-Length but no body: the next request follows
    assert get(connection, "/missing?x=1") == (404, b"not found")
    connection.close()

    assert upstream.paths() == ["/hello", "/chunked", "/echo", "/echo", "/hello", "/missing?x=1"]
    assert len({port for _, _, port, *_ in upstream.seen}) == 1, "one upstream connection for the kept-alive one"
    assert proxy.connections == 1
    assert proxy.requests[0] == SeenRequest("GET", "/hello", "pass")
    assert [mode for *_, mode in proxy.requests] == ["pass"] * 6


def test_pass_forwards_pipelined_requests_in_order(upstream, proxy):
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /short HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = read_all(sock)
    sock.close()
    assert data.count(b"HTTP/1.1 200") == 2
    assert data.index(b"hello world") < data.index(b"abcde")
    assert upstream.paths() == ["/hello", "/short"]


def test_an_upstream_connection_closed_while_idle_is_replaced(upstream, proxy):
    connection = connect(proxy)
    assert get(connection, "/then-close") == (200, b"bye")
    time.sleep(TICK)  # the upstream's FIN reaches the proxy before the next request does
    assert get(connection, "/hello") == (200, b"hello world")  # the client's connection goes on
    connection.close()
    assert proxy.connections == 1
    assert len({port for _, _, port, *_ in upstream.seen}) == 2


def test_refuse_refuses_new_connections_and_resets_kept_alive_ones(upstream, proxy):
    kept = connect(proxy)
    assert get(kept, "/hello")[0] == 200
    proxy.set_mode("refuse")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
    with pytest.raises(ConnectionResetError):
        get(kept, "/hello")
    kept.close()

    proxy.set_mode("pass")  # listening again, on the same port
    with closing(connect(proxy)) as fresh:
        assert get(fresh, "/hello") == (200, b"hello world")
    assert upstream.paths() == ["/hello", "/hello"]
    assert [mode for *_, mode in proxy.requests] == ["pass", "refuse", "pass"]


def test_refuse_for_a_path_resets_only_its_requests(upstream, proxy):
    proxy.set_mode("refuse", path_prefix="/oauth/")
    connection = connect(proxy)
    assert get(connection, "/hello")[0] == 200
    with pytest.raises(ConnectionResetError):
        get(connection, "/oauth/token", "POST", b"grant_type=refresh_token")
    assert upstream.paths() == ["/hello"]


def test_hang_reads_the_request_and_never_answers(upstream, proxy):
    proxy.set_mode("hang")
    connection = connect(proxy, timeout=3 * TICK)
    with pytest.raises(socket.timeout):
        get(connection, "/echo", "POST", b"payload")
    connection.close()
    assert upstream.seen == []
    assert proxy.requests == [SeenRequest("POST", "/echo", "hang")]


def test_headers_then_silence_sends_the_upstreams_head_and_nothing_more(upstream, proxy):
    proxy.set_mode("headers_then_silence")
    sock = raw(proxy, timeout=3 * TICK)
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(65536)
    assert head.startswith(b"HTTP/1.1 200") and b"Content-Length: 11" in head
    assert head.endswith(b"\r\n\r\n"), "no byte of the body"
    with pytest.raises(socket.timeout):
        sock.recv(65536)
    sock.close()
    assert upstream.paths() == ["/hello"]
    assert proxy.forwarded == [SeenRequest("GET", "/hello", "headers_then_silence")]


def test_slow_body_sends_the_head_at_once_and_the_body_a_byte_per_interval(upstream, proxy):
    proxy.set_mode("slow_body", interval=TICK)
    start = time.monotonic()
    connection = connect(proxy)
    connection.request("GET", "/short")
    response = connection.getresponse()
    headers_after = time.monotonic() - start
    assert response.read() == b"abcde"
    body_after = time.monotonic() - start
    assert headers_after < 1.0
    assert body_after >= 5 * TICK * 0.9
    proxy.set_mode("pass")  # the same connection goes on at full speed
    assert get(connection, "/hello") == (200, b"hello world")
    connection.close()


def test_slow_body_with_a_chunked_body(upstream, proxy):
    proxy.set_mode("slow_body", interval=0.01, chunk=4)
    connection = connect(proxy)
    assert get(connection, "/chunked") == (200, b"first second third")
    assert get(connection, "/hello") == (200, b"hello world")  # the chunked body ended where it should
    connection.close()


def test_slow_answer_forwards_at_once_and_answers_after_the_delay(upstream, proxy):
    delay = 5 * TICK
    proxy.set_mode("slow_answer", path_prefix="/oauth/token", delay=delay)
    connection = connect(proxy)
    start = time.monotonic()
    connection.request("POST", "/oauth/token", body=b"grant_type=refresh_token")
    response = connection.getresponse()
    answered = time.monotonic() - start
    assert (response.status, response.read()) == (200, b'{"access_token":"t"}')
    [(method, path, _, reached, body)] = upstream.seen
    assert (method, path, body) == ("POST", "/oauth/token", b"grant_type=refresh_token")
    assert reached - start < 0.5, "the upstream acted on the request at once"
    assert answered >= delay
    start = time.monotonic()
    assert get(connection, "/hello") == (200, b"hello world")  # not matching the prefix: passes at once
    assert time.monotonic() - start < 0.5
    connection.close()
    assert [mode for *_, mode in proxy.requests] == ["slow_answer", "pass"]


def test_reset_reads_the_request_and_resets(upstream, proxy):
    proxy.set_mode("reset")
    with raw(proxy) as sock, pytest.raises(ConnectionResetError):
        sock.recv(65536)
    assert upstream.seen == []
    assert proxy.requests == [SeenRequest("GET", "/hello", "reset")]


def test_close_reads_the_request_and_closes_without_an_answer(upstream, proxy):
    proxy.set_mode("close")
    with raw(proxy) as sock:
        assert sock.recv(65536) == b""  # a FIN, not a reset
    with closing(connect(proxy)) as connection, pytest.raises(http.client.RemoteDisconnected):
        get(connection, "/hello")
    assert upstream.seen == []
    assert [mode for *_, mode in proxy.requests] == ["close", "close"]


def test_expect_100_continue_is_answered_by_the_proxy(upstream, proxy):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"ping")
        data = b""
        while not data.endswith(b"ping"):
            data += sock.recv(65536)
    assert b"HTTP/1.1 200" in data
    assert [body for *_, body in upstream.seen] == [b"ping"]


def test_status_answers_without_the_upstream(upstream, proxy):
    proxy.set_mode("status", status=502)
    sock = raw(proxy)
    data = read_all(sock)  # Connection: close, so the proxy closes after the answer
    sock.close()
    assert data.startswith(b"HTTP/1.1 502 Bad Gateway\r\n")
    assert b"Connection: close\r\n" in data

    proxy.set_mode("status", status=503, keep_alive=True, body=b"busy", headers={"Retry-After": "1"})
    connection = connect(proxy)
    connection.request("GET", "/hello")
    response = connection.getresponse()
    assert (response.status, response.getheader("Retry-After"), response.read()) == (503, "1", b"busy")
    proxy.set_mode("pass")
    assert get(connection, "/hello") == (200, b"hello world")  # the same connection, kept alive
    connection.close()
    assert upstream.paths() == ["/hello"]


def test_garbage_answers_bytes_that_are_not_http(upstream, proxy):
    proxy.set_mode("garbage")
    sock = raw(proxy)
    data = read_all(sock)
    sock.close()
    assert data and not data.startswith(b"HTTP/")
    with closing(connect(proxy)) as connection, pytest.raises(http.client.HTTPException):
        get(connection, "/hello")
    proxy.set_mode("garbage", data=b"\x15\x03\x03\x00\x02\x02\x50")
    with raw(proxy) as sock:
        assert read_all(sock) == b"\x15\x03\x03\x00\x02\x02\x50"
    assert upstream.seen == []


def test_a_mode_switch_applies_to_the_next_request_of_a_kept_alive_connection(upstream, proxy):
    connection = connect(proxy, timeout=3 * TICK)
    assert get(connection, "/hello") == (200, b"hello world")
    proxy.set_mode("status", status=500, keep_alive=True)
    assert get(connection, "/hello")[0] == 500
    proxy.set_mode("hang")
    with pytest.raises(socket.timeout):
        get(connection, "/hello")
    connection.close()
    assert proxy.connections == 1
    assert [mode for *_, mode in proxy.requests] == ["pass", "status", "hang"]
    assert upstream.paths() == ["/hello"]


def test_times_limits_the_fault_to_the_next_matching_requests(upstream, proxy):
    proxy.set_mode("status", path_prefix="/oauth/token", method="POST", times=2, status=503, keep_alive=True)
    connection = connect(proxy)
    assert get(connection, "/oauth/token")[0] == 200  # a GET: not matching
    assert get(connection, "/oauth/token", "POST", b"a")[0] == 503
    assert get(connection, "/hello")[0] == 200
    assert get(connection, "/oauth/token", "POST", b"b")[0] == 503
    assert get(connection, "/oauth/token", "POST", b"c")[0] == 200
    connection.close()
    assert len(proxy.seen("/oauth/token", mode="status")) == 2
    assert [body for *_, body in upstream.seen] == [b"", b"", b"c"]


def test_an_upstream_that_is_down_looks_like_a_failed_connection(upstream):
    port = upstream.port
    upstream.shutdown()
    with FaultProxy("127.0.0.1", port) as proxy:
        with closing(connect(proxy)) as connection:
            with pytest.raises(ConnectionResetError):
                get(connection, "/hello")


def test_set_mode_checks_its_arguments(proxy):
    with pytest.raises(ValueError):
        proxy.set_mode("explode")
    with pytest.raises(TypeError):
        proxy.set_mode("hang", delay=1)
    with pytest.raises(ValueError):
        proxy.set_mode("refuse", times=1)


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def wait_until(condition, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_close_closes_held_connections_and_leaves_no_thread_or_socket(upstream):
    threads, descriptors = set(threading.enumerate()), open_descriptors()
    proxy = FaultProxy("127.0.0.1", upstream.port)
    held = []
    for mode in ("hang", "headers_then_silence", "slow_body", "slow_answer"):
        proxy.set_mode(mode, **({"interval": 10.0} if mode == "slow_body" else {}))
        held.append(raw(proxy))
        proxy.wait_for(len(held))
    proxy.set_mode("refuse")
    proxy.set_mode("pass")
    proxy.set_mode("refuse")  # closed while not listening
    started = time.monotonic()
    proxy.close()
    assert time.monotonic() - started < 2
    for sock in held:
        sock.settimeout(2)
        try:
            read_all(sock)  # the proxy closed it: EOF (after what was sent), not a timeout
        except ConnectionResetError:
            pass
        sock.close()
    assert not proxy._thread.is_alive()  # noqa: SLF001
    # The upstream's handler threads end once the proxy closed its connections to them.
    assert wait_until(lambda: set(threading.enumerate()) <= threads), set(threading.enumerate()) - threads
    assert wait_until(lambda: open_descriptors() <= descriptors), (open_descriptors(), descriptors)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
    proxy.close()  # twice is fine
