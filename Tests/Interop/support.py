"""Helpers shared by the interop tests: free ports, service processes, a JWKS server the test controls."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx2 as httpx

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("BIN_PATH", ROOT / ".build" / "debug"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except Exception as error:  # noqa: BLE001 - keep polling until the deadline
            last = error
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s: {last}")


def raw_request(base: str, path: str, header_lines: list[bytes], method: bytes = b"GET", body: bytes | None = None,
                timeout: float = 10.0) -> tuple[int, dict, bytes]:
    """Sends bytes no HTTP client library would send (odd header values, repeated headers) and reads the answer.
    With `body`, a Content-Length is added unless `header_lines` frame the body themselves. `timeout` bounds the whole
    exchange (socket.timeout beyond it)."""
    host, port = base.removeprefix("http://").split(":")
    request = method + b" " + path.encode() + b" HTTP/1.1\r\nHost: " + host.encode() + b"\r\nConnection: close\r\n"
    framed = any(line.lower().startswith((b"content-length:", b"transfer-encoding:")) for line in header_lines)
    if body is not None and not framed:
        header_lines = [*header_lines, b"Content-Length: " + str(len(body)).encode()]
    request += b"".join(line + b"\r\n" for line in header_lines) + b"\r\n" + (body or b"")
    deadline = time.monotonic() + timeout
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while True:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


class Service:
    """A process started on 127.0.0.1 in its own working directory (so no stray .dev.vars is read)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], health_url: str):
        self.name, self.args, self.env, self.health_url = name, args, env, health_url
        self.workdir = tempfile.mkdtemp(prefix=f"{name}-")
        self.log_path = Path(self.workdir) / "output.log"
        clean_env = {key: value for key, value in os.environ.items() if not key.startswith(("AUTH0_", "OIDC_", "DEVIDP_"))}
        clean_env.update({"LOG_LEVEL": "debug", "DEV_VARS_FILE": str(Path(self.workdir) / "none.vars")})
        clean_env.update(env)
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(args, cwd=self.workdir, env=clean_env, stdout=self.log, stderr=subprocess.STDOUT)
        try:
            wait_for(health_url)
        except Exception:
            self.stop()
            raise RuntimeError(f"{name} did not start:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, no flushing; what the process had not committed is lost."""
        self.process.kill()
        self.process.wait()
        self.log.close()

    def restarted(self) -> "Service":
        """The same command with the same environment, started again."""
        return Service(self.name, self.args, self.env, self.health_url)

    def output(self) -> str:
        """What the process wrote so far. The services write `info` and `debug` lines in batches a few milliseconds
        after they are logged (LogOutput), so this waits a little first: a request's access line is in."""
        time.sleep(0.05)
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def start_todos_api(issuer_env: dict[str, str], extra: dict[str, str] | None = None) -> tuple[Service, str]:
    port = free_port()
    env = {"HOST": "127.0.0.1", "PORT": str(port), "TODOS_DATABASE": "todos.sqlite", "JWKS_REFRESH_COOLDOWN": "0"}
    env.update(issuer_env)
    env.update(extra or {})
    base = f"http://127.0.0.1:{port}"
    return Service("todos-api", [str(BIN / "TodosAPI")], env, base + "/api/health"), base


class JWKSServer:
    """Serves a JWKS document the test can change, or stop serving altogether."""

    def __init__(self) -> None:
        self.document: dict = {"keys": []}
        self.fetches = 0
        self.failing = False
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                owner.fetches += 1
                if owner.failing:
                    self.send_response(503)
                    self.end_headers()
                    return
                body = json.dumps(owner.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "public, max-age=600")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = self.base_url + "/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def publish(self, *keys: "SigningKey") -> None:
        self.document = {"keys": [key.public_jwk() for key in keys]}

    def shutdown(self) -> None:
        """The endpoint goes away: connections are refused from now on."""
        self.server.shutdown()
        self.server.server_close()


class SigningKey:
    """An RSA key that signs tokens with PyJWT, independently of the Swift code."""

    def __init__(self, kid: str, bits: int = 2048) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.kid = kid
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=bits)

    def public_jwk(self) -> dict:
        import jwt

        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key()))
        jwk.update({"kid": self.kid, "alg": "RS256", "use": "sig"})
        return jwk

    def public_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign_raw(self, payload: bytes) -> str:
        """A correctly signed token whose payload is arbitrary bytes."""
        import base64

        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        signing_input = b64(json.dumps({"alg": "RS256", "kid": self.kid}).encode()) + "." + b64(payload)
        signature = self.private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64(signature)

    def sign(self, claims: dict, headers: dict | None = None, algorithm: str = "RS256") -> str:
        import jwt

        return jwt.encode(claims, self.private_key, algorithm=algorithm, headers={"kid": self.kid, **(headers or {})})


class DocumentServer:
    """Serves fixed responses by path on a loopback port, counting requests per path; anything else is a 404."""

    def __init__(self) -> None:
        self.responses: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.hits: dict[str, int] = {}
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                owner.hits[self.path] = owner.hits.get(self.path, 0) + 1
                status, headers, body = owner.responses.get(self.path, (404, {}, b""))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def serve_json(self, path: str, document: object, headers: dict[str, str] | None = None) -> str:
        """Serves `document` as JSON at `path`; returns its URL."""
        self.responses[path] = (200, {"Content-Type": "application/json", **(headers or {})},
                                json.dumps(document).encode())
        return self.base_url + path

    def shutdown(self) -> None:
        self.server.shutdown()
        self.server.server_close()
