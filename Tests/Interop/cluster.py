"""The production topology as processes: PostgreSQL, DevIdP, TodosAPI, several gateway instances sharing one database,
and nginx in front of them as a round-robin load balancer, all on free loopback ports.

PostgreSQL is the throw-away server `make test` starts (scripts/with-postgres.sh, GATEWAY_TEST_DATABASE_URL); each
cluster gets a database of its own. nginx is Debian's, installed by `make test` when missing."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from gateway_stack import GATEWAY_CLIENT_ID, GATEWAY_CLIENT_SECRET
from support import BIN, Service, free_port, wait_for

DATABASE_URL = os.environ.get("GATEWAY_TEST_DATABASE_URL", "")


def psql(url: str, sql: str) -> str:
    """Runs one statement with Debian's psql; returns what it printed."""
    result = subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
                            capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"psql failed: {result.stderr}")
    return result.stdout


def new_database() -> tuple[str, str]:
    """A new, empty database on the test server; returns its URL and name."""
    if not DATABASE_URL:
        raise RuntimeError("GATEWAY_TEST_DATABASE_URL is not set: run the tests with `make test`")
    name = "cluster_" + secrets.token_hex(6)
    psql(DATABASE_URL, f"CREATE DATABASE {name}")
    parts = urlsplit(DATABASE_URL)
    return urlunsplit(parts._replace(path="/" + name)), name


class Nginx:
    """nginx in the foreground, balancing round-robin over `upstreams` (host:port), as docs/deployment.md configures
    it: HTTP/1.1 to the instances, no response buffering (event streams), the client's address forwarded."""

    def __init__(self, upstreams: list[str], port: int | None = None) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.port = port or free_port()
        self.prefix = Path(tempfile.mkdtemp(prefix="nginx-"))
        os.chmod(self.prefix, 0o755)
        (self.prefix / "logs").mkdir()
        servers = "\n".join(f"        server {upstream} max_fails=0;" for upstream in upstreams)
        user = "user root;" if os.geteuid() == 0 else ""
        (self.prefix / "nginx.conf").write_text(f"""
{user}
worker_processes 1;
error_log {self.prefix}/logs/error.log warn;
pid {self.prefix}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log {self.prefix}/logs/access.log;
    client_body_temp_path {self.prefix}/body;
    proxy_temp_path {self.prefix}/proxy;
    fastcgi_temp_path {self.prefix}/fastcgi;
    uwsgi_temp_path {self.prefix}/uwsgi;
    scgi_temp_path {self.prefix}/scgi;
    upstream gateway {{
{servers}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{self.port};
        location / {{
            proxy_pass http://gateway;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_buffering off;
            proxy_read_timeout 1h;
            proxy_next_upstream error timeout http_502;
        }}
    }}
}}
""")
        self.log = open(self.prefix / "logs" / "output.log", "w")
        self.process = subprocess.Popen(
            [binary, "-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf"), "-g", "daemon off;"],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(f"http://127.0.0.1:{self.port}/health")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def access_log(self) -> str:
        return (self.prefix / "logs" / "access.log").read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.log.close()


@dataclass
class Cluster:
    url: str
    api_url: str
    database_url: str
    database_name: str
    gateway_env: dict[str, str]
    idp: Service
    api: Service
    gateways: list[Service] = field(default_factory=list)
    nginx: Nginx | None = None

    @property
    def mcp_url(self) -> str:
        return self.url + "/mcp"

    def gateway_url(self, index: int) -> str:
        return self.gateways[index].health_url.removesuffix("/health")

    def admin(self, *args: str) -> subprocess.CompletedProcess:
        """`McpGateway admin …` with the instances' settings."""
        env = {**os.environ, **self.gateway_env, "DEV_VARS_FILE": "/nonexistent"}
        return subprocess.run([str(BIN / "McpGateway"), "admin", *args], env=env, capture_output=True, text=True,
                              timeout=60)

    def stop(self) -> None:
        if self.nginx:
            self.nginx.stop()
        for service in [*reversed(self.gateways), self.api, self.idp]:
            service.stop()
        if not self.database_name:
            return
        try:
            psql(DATABASE_URL, f"DROP DATABASE IF EXISTS {self.database_name} WITH (FORCE)")
        except RuntimeError:
            pass


def start_cluster(instances: int = 2, gateway_env: dict[str, str] | None = None,
                  devidp_env: dict[str, str] | None = None, database_url: str | None = None) -> Cluster:
    """`database_url`: a database of the caller's own (a server it may restart); by default a new database on the
    shared test server, dropped with the cluster."""
    if database_url:
        database_name = ""
    else:
        database_url, database_name = new_database()
    workdir = Path(tempfile.mkdtemp(prefix="cluster-"))
    ports = [free_port() for _ in range(instances)]
    # nginx needs the instances' addresses, and the instances need nginx's URL (their PUBLIC_URL): pick its port first.
    nginx_port = free_port()
    public_url = f"http://127.0.0.1:{nginx_port}"
    idp_port, api_port = free_port(), free_port()
    issuer = f"http://127.0.0.1:{idp_port}/"
    started: list[Service] = []
    try:
        idp = Service("devidp", [str(BIN / "DevIdP"), "serve", "--port", str(idp_port)], {
            "DEVIDP_ISSUER": issuer, "DEVIDP_SIGNING_KEY": str(workdir / "devidp.pem"),
            "AUTH0_CLIENT_ID": GATEWAY_CLIENT_ID, "AUTH0_CLIENT_SECRET": GATEWAY_CLIENT_SECRET,
            "PUBLIC_URL": public_url, **(devidp_env or {}),
        }, issuer + "health")
        started.append(idp)
        api = Service("todos-api", [str(BIN / "TodosAPI"), "--port", str(api_port)], {
            "AUTH0_DOMAIN": issuer.rstrip("/"), "TODOS_DATABASE": str(workdir / "todos.sqlite"),
        }, f"http://127.0.0.1:{api_port}/api/health")
        started.append(api)
        env = {
            "AUTH0_DOMAIN": issuer.rstrip("/"), "PUBLIC_URL": public_url, "AUTH0_CLIENT_ID": GATEWAY_CLIENT_ID,
            "AUTH0_CLIENT_SECRET": GATEWAY_CLIENT_SECRET, "API_BASE_URL": f"http://127.0.0.1:{api_port}",
            "COOKIE_ENCRYPTION_KEY": secrets.token_urlsafe(32), "GATEWAY_ENCRYPTION_KEY": secrets.token_urlsafe(32),
            "GATEWAY_DATABASE_URL": database_url, "TRUSTED_PROXIES": "127.0.0.1", **(gateway_env or {}),
        }
        gateways = []
        for index, port in enumerate(ports):
            gateway = Service(f"gateway-{index}", [str(BIN / "McpGateway"), "--port", str(port)], env,
                              f"http://127.0.0.1:{port}/health")
            gateways.append(gateway)
            started.append(gateway)
        cluster = Cluster(public_url, f"http://127.0.0.1:{api_port}", database_url, database_name, env, idp, api,
                          gateways)
        cluster.nginx = Nginx([f"127.0.0.1:{port}" for port in ports], port=nginx_port)
        return cluster
    except Exception:
        for service in reversed(started):
            service.stop()
        if database_name:
            psql(DATABASE_URL, f"DROP DATABASE IF EXISTS {database_name} WITH (FORCE)")
        raise

