"""A byte-for-byte TCP proxy that a test can use to cut the network under a protocol it does not speak (PostgreSQL's):
every connection reset at once, or every connection silently black-holed (bytes swallowed, nothing closed), as a
firewall that drops a flow does."""

from __future__ import annotations

import selectors
import socket
import struct
import threading


class TCPProxy:
    """Listens on 127.0.0.1 on a free port (``port``) and forwards each connection to `target_port`."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._blackholed = False
        self._closed = False
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = socket.socketpair()
        self._selector.register(self._listener, selectors.EVENT_READ, "accept")
        self._selector.register(self._wake_read, selectors.EVENT_READ, "wake")
        self._thread = threading.Thread(target=self._run, name=f"tcp-proxy-{self.port}", daemon=True)
        self._thread.start()

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    def reset_all(self) -> None:
        """Every open connection is reset (RST) on both sides, as a network cut the endpoints notice."""
        self._call(self._reset_all)

    def blackhole(self, on: bool = True) -> None:
        """While on, bytes in either direction are read and dropped and nothing is closed: both ends wait for ever,
        as behind a firewall that silently drops the flow. New connections are accepted and black-holed too."""
        with self._lock:
            self._blackholed = on

    def close(self) -> None:
        self._closed = True
        self._wake_write.send(b"x")
        self._thread.join(timeout=5)
        for sock in (self._listener, self._wake_read, self._wake_write):
            sock.close()

    # The selector loop owns the sockets; other threads ask it through the wake-up pair.

    def _call(self, action) -> None:
        done = threading.Event()
        with self._lock:
            self._pending = (action, done)
        self._wake_write.send(b"x")
        done.wait(5)

    def _reset_all(self) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                self._abort(sock)

    def _abort(self, sock: socket.socket) -> None:
        try:
            self._selector.unregister(sock)
        except (KeyError, ValueError):
            pass
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        sock.close()

    def _run(self) -> None:
        self._pending = None
        while not self._closed:
            for key, _ in self._selector.select(timeout=0.5):
                if key.data == "wake":
                    self._wake_read.recv(64)
                    with self._lock:
                        pending, self._pending = self._pending, None
                    if pending:
                        action, done = pending
                        action()
                        done.set()
                elif key.data == "accept":
                    self._accept()
                else:
                    self._forward(key.fileobj, key.data)
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                self._abort(sock)
        self._selector.close()

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except OSError:
            return
        try:
            server = socket.create_connection(self.target, timeout=2)
        except OSError:
            self._abort(client)
            return
        # Blocking with a timeout: reads happen only when the selector says data is there, and a send to a peer that
        # stopped reading gives up after a while instead of spinning.
        client.settimeout(5)
        server.settimeout(5)
        with self._lock:
            self._pairs.append((client, server))
        self._selector.register(client, selectors.EVENT_READ, server)
        self._selector.register(server, selectors.EVENT_READ, client)

    def _forward(self, source: socket.socket, destination: socket.socket) -> None:
        try:
            data = source.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._drop(source, destination)
            return
        with self._lock:
            if self._blackholed:
                return
        try:
            destination.sendall(data)
        except OSError:
            self._drop(source, destination)

    def _drop(self, first: socket.socket, second: socket.socket) -> None:
        with self._lock:
            self._pairs = [pair for pair in self._pairs if first not in pair]
        for sock in (first, second):
            try:
                self._selector.unregister(sock)
            except (KeyError, ValueError):
                pass
            sock.close()
