"""A PostgreSQL server of a test's own, which the test may restart, stop, and start again: the shared server of
`make test` (scripts/with-postgres.sh) must not be restarted under other tests.

Debian's binaries (installed by `make test` when missing); as root (CI), the server runs as the `postgres` user, since
PostgreSQL refuses to run as root. Listens on a free loopback port with scram password authentication."""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from support import free_port


def _binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda path: [int(part) for part in
                                                                           Path(path).parent.name.split(".")])
    if not found:
        raise RuntimeError("PostgreSQL's server binaries are missing: run the tests with `make test`")
    return Path(os.environ.get("GATEWAY_TEST_POSTGRES_BIN", found[-1]))


class PostgresServer:
    """initdb in a temporary directory, then `pg_ctl start` on a free port; `url` is a superuser's URL to the
    `gateway` database."""

    def __init__(self, max_connections: int = 200) -> None:
        self.bin = _binaries()
        self.port = free_port()
        self.password = secrets.token_urlsafe(18)
        self.directory = Path(tempfile.mkdtemp(prefix="faults-pg-"))
        self.directory.chmod(0o755)
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"
        self.max_connections = max_connections
        self._as_root = os.geteuid() == 0
        if self._as_root:
            shutil.chown(self.directory, "postgres")
        password_file = self.directory / "pwfile"
        password_file.write_text(self.password + "\n")
        if self._as_root:
            shutil.chown(password_file, "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "gateway", f"--pwfile={password_file}",
                  "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--locale=C.UTF-8")
        password_file.unlink()
        self.start()
        self._run("createdb", "-h", str(self.directory), "-p", str(self.port), "-U", "gateway", "gateway")

    @property
    def url(self) -> str:
        return self.url_via(self.port)

    def url_via(self, port: int) -> str:
        """The URL of the `gateway` database, reached at `port` (a proxy in front of the server)."""
        return f"postgres://gateway:{self.password}@127.0.0.1:{port}/gateway?sslmode=disable"

    def _run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self.bin / program), *args]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise RuntimeError(f"{program} failed: {result.stdout}{result.stderr}\n{self.server_log()}")
        return result

    def server_log(self) -> str:
        try:
            return self.log.read_text()[-4000:]
        except OSError:
            return ""

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off "
                   f"-c synchronous_commit=off -c full_page_writes=off -c max_connections={self.max_connections}")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        """`fast` ends every session and stops; `immediate` stops without a clean shutdown, as a crash."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def restart(self, mode: str = "fast", down_for: float = 0.0) -> None:
        self.stop(mode)
        if down_for:
            time.sleep(down_for)
        self.start()

    def sql(self, statement: str) -> str:
        """Runs one statement as the superuser over the local socket; returns what psql printed."""
        result = subprocess.run(
            ["psql", "-h", str(self.directory), "-p", str(self.port), "-U", "gateway", "-d", "gateway",
             "-v", "ON_ERROR_STOP=1", "-At", "-c", statement],
            capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr}")
        return result.stdout.strip()

    def hold(self, statements: list[str]) -> subprocess.Popen:
        """A psql session that runs `statements` and then waits for its standard input: a transaction held open
        (`BEGIN; LOCK TABLE …`) until ``release`` is called with it."""
        session = subprocess.Popen(
            ["psql", "-h", str(self.directory), "-p", str(self.port), "-U", "gateway", "-d", "gateway",
             "-v", "ON_ERROR_STOP=1", "-q"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert session.stdin is not None
        for statement in statements:
            session.stdin.write(statement.rstrip(";") + ";\n")
        session.stdin.write("\\echo held\n")
        session.stdin.flush()
        assert session.stdout is not None
        if session.stdout.readline().strip() != "held":
            raise RuntimeError(f"psql did not hold: {session.stderr.read() if session.stderr else ''}")
        return session

    @staticmethod
    def release(session: subprocess.Popen) -> None:
        assert session.stdin is not None
        try:
            session.stdin.write("ROLLBACK;\n\\q\n")
            session.stdin.flush()
            session.wait(timeout=10)
        except (BrokenPipeError, subprocess.TimeoutExpired):
            session.kill()

    def close(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)
