"""The files an operator copies from deploy/, and docs/deployment.md that explains them.

Nothing here needs a Docker engine or a cluster: the compose files are checked against the Compose specification's
JSON schema (the copy check-jsonschema ships), the Kubernetes manifests against the Kubernetes schemas
(kubernetes-validate ships them), the units with `systemd-analyze`, the nginx files with `nginx -t` and by running
them in front of stand-in instances, the Dockerfile by reading it. Every environment variable the files give a service
must be one that service reads: a misspelt setting would otherwise be ignored without a word."""

from __future__ import annotations

import copy
import fnmatch
import importlib.resources
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import httpx2 as httpx
import jsonschema
import kubernetes_validate
import pytest
import yaml

from support import BIN, ROOT, free_port, raw_request

DEPLOY = ROOT / "deploy"
DOCKER = DEPLOY / "docker"
COMPOSE = DEPLOY / "compose"
SYSTEMD = DEPLOY / "systemd"
KUBERNETES = DEPLOY / "kubernetes"
DOCS = ROOT / "docs" / "deployment.md"

# Which binary each image target, unit and manifest runs.
TARGETS = {"mcp-gateway": "McpGateway", "todos-api": "TodosAPI", "devidp": "DevIdP"}
DEFAULT_PORTS = {"McpGateway": 8788, "TodosAPI": 8789, "DevIdP": 8790}
READINESS = {"McpGateway": "/ready", "TodosAPI": "/api/ready", "DevIdP": "/ready"}
LIVENESS = {"McpGateway": "/health", "TodosAPI": "/api/health", "DevIdP": "/health"}
# Variables of other programs that the files set on purpose.
POSTGRES_IMAGE_VARIABLES = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}
SWIFT_RUNTIME_VARIABLES = {"SWIFT_BACKTRACE"}
# Values that must never be committed: placeholders only (empty, or <something>).
SECRET_NAME = re.compile(r"(SECRET|_KEY$|_KEYS_OLD$|PASSWORD|TOKEN$|DATABASE_URL$)")


# --- what the services read ----------------------------------------------------------------------------------------

def settings_read_by(binary: str) -> set[str]:
    """Every upper-case string literal in the service's sources and the shared ones. Settings are read through several
    helpers (`settings.string("X")`, `oneOf(["X", "Y"])`, `required("X", …)`, `secret(settings, "X")`, `limit("X")`,
    extensions such as `string("METRICS_TOKEN")`), so any literal counts; what matters is that a name in a deploy file
    that appears nowhere in the code is caught."""
    names: set[str] = set()
    for path in [*(ROOT / "Services" / binary).rglob("*.swift"), *(ROOT / "Shared").rglob("*.swift")]:
        for line in path.read_text().splitlines():
            code = line.split("//", 1)[0] if not line.lstrip().startswith("///") else ""
            names.update(re.findall(r'"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*)"', code))
    return names


SETTINGS = {binary: settings_read_by(binary) for binary in DEFAULT_PORTS}
ALL_SETTINGS = set().union(*SETTINGS.values())


def test_the_settings_collector_finds_what_the_services_read():
    # A collector that found nothing would let every name through.
    assert {"PUBLIC_URL", "GATEWAY_DATABASE_URL", "COOKIE_ENCRYPTION_KEY", "TRUSTED_PROXIES", "AUTH0_CLIENT_SECRET",
            "OIDC_CLIENT_SECRET", "HOST", "PORT", "LOG_LEVEL"} <= SETTINGS["McpGateway"]
    assert {"TODOS_DATABASE", "JWKS_URL", "AUTH0_DOMAIN"} <= SETTINGS["TodosAPI"]
    assert {"DEVIDP_ISSUER", "DEVIDP_HOST", "DEVIDP_SIGNING_KEY"} <= SETTINGS["DevIdP"]
    assert "TODOS_DATABASE" not in SETTINGS["McpGateway"] and "TRUSTED_PROXIES" not in SETTINGS["TodosAPI"]


def test_the_settings_this_guide_relies_on_are_read():
    """LOG_FORMAT and METRICS_TOKEN were added for this deployment; every service reads them."""
    for binary in ("McpGateway", "TodosAPI"):
        assert {"LOG_FORMAT", "METRICS_TOKEN", "LOG_LEVEL"} <= SETTINGS[binary], binary
    assert {"MCP_SESSION_KEY", "MCP_SESSION_LIFETIME", "GATEWAY_DATABASE_MAX_CONNECTIONS"} <= SETTINGS["McpGateway"]


def assert_known(names, binary: str, where: str, also: set[str] = frozenset()) -> None:
    unknown = sorted(set(names) - SETTINGS[binary] - set(also))
    assert not unknown, f"{where} sets {unknown}, which {binary} does not read (misspelt?)"


def tool(binary: str, package: str) -> str:
    """A program from Debian's packages, installed by scripts/install-system-deps.sh when missing."""
    found = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/sbin")
    if not found:
        subprocess.run([str(ROOT / "scripts" / "install-system-deps.sh"), package], check=True)
        found = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/sbin")
    assert found, f"{binary} ({package}) is missing"
    return found


# --- YAML -----------------------------------------------------------------------------------------------------------

def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml"))


def test_every_yaml_file_parses():
    files = yaml_files()
    assert len(files) >= 8, files
    for path in files:
        documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
        assert documents, f"{path} is empty"
        for document in documents:
            assert isinstance(document, dict), path


# --- Compose ----------------------------------------------------------------------------------------------------------

def env_file(path: Path) -> dict[str, str]:
    """KEY=value lines (compose's .env and systemd's EnvironmentFile agree on the simple form used here)."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, separator, value = line.partition("=")
            assert separator and re.fullmatch(r"[A-Z][A-Z0-9_]*", name), f"{path}: {line!r}"
            assert name not in values, f"{path}: {name} twice"
            values[name] = value
    return values


INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


class MissingVariable(Exception):
    pass


def interpolate(value, variables: dict[str, str]):
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error}, applied to every string of a parsed file."""
    if isinstance(value, dict):
        return {key: interpolate(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, variables) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match) -> str:
        name, operator, argument = match.group(1), match.group(2), match.group(3)
        current = variables.get(name)
        unset = current is None or (operator is not None and operator.startswith(":") and current == "")
        if operator in (":?", "?") and unset:
            raise MissingVariable(f"{name}: {argument}")
        if operator in (":-", "-") and unset:
            return argument
        return current or ""

    return INTERPOLATION.sub(replace, value)


def interpolated_names(text: str) -> set[str]:
    return {match.group(1) for match in INTERPOLATION.finditer(text)}


def merge(base, override):
    """Compose's merge of an override file for the mappings used here (lists are replaced, as for `command`)."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(override)


def load_compose(*names: str) -> dict:
    config: dict = {}
    for name in names:
        config = merge(config, yaml.safe_load((COMPOSE / name).read_text()))
    return config


def filled_env() -> dict[str, str]:
    """.env.example with the secrets generated, as the file tells the operator to."""
    values = env_file(COMPOSE / ".env.example")
    for name, value in values.items():
        if SECRET_NAME.search(name) and value == "" and name not in ("GATEWAY_ENCRYPTION_KEYS_OLD", "MCP_SESSION_KEY"):
            values[name] = secrets.token_hex(24)
    return values


COMPOSE_VARIANTS = [("compose.yaml",), ("compose.yaml", "compose.devidp.yaml"), ("compose.yaml", "compose.tls.yaml")]


def compose_schema() -> dict:
    source = importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    return json.loads(source.read_text())


def test_compose_files_follow_the_compose_specification():
    validator = jsonschema.Draft202012Validator(compose_schema())
    for path in sorted(COMPOSE.glob("compose*.yaml")):
        errors = sorted(validator.iter_errors(yaml.safe_load(path.read_text())), key=str)
        assert not errors, f"{path.name}: {errors[0].message} at {list(errors[0].absolute_path)}"
    for variant in COMPOSE_VARIANTS:
        config = interpolate(load_compose(*variant), filled_env())
        errors = sorted(validator.iter_errors(config), key=str)
        assert not errors, f"{variant}: {errors[0].message} at {list(errors[0].absolute_path)}"


def test_the_schema_check_catches_a_mistake():
    config = load_compose("compose.yaml")
    config["services"]["gateway-1"]["depends_on"]["postgres"]["condition"] = "service_ready"
    assert list(jsonschema.Draft202012Validator(compose_schema()).iter_errors(config))


def test_compose_refuses_to_start_with_the_example_secrets_left_empty():
    example = env_file(COMPOSE / ".env.example")
    for name, value in example.items():
        if SECRET_NAME.search(name):
            assert value == "" or re.fullmatch(r"<[^>]+>", value), f".env.example commits a value for {name}"
    for variant in COMPOSE_VARIANTS:
        with pytest.raises(MissingVariable):
            interpolate(load_compose(*variant), example)
    # Each required secret is refused on its own.
    for name in ("COOKIE_ENCRYPTION_KEY", "GATEWAY_ENCRYPTION_KEY", "AUTH0_CLIENT_SECRET", "POSTGRES_PASSWORD"):
        values = filled_env()
        values[name] = ""
        with pytest.raises(MissingVariable, match=name):
            interpolate(load_compose("compose.yaml", "compose.devidp.yaml"), values)


def test_every_compose_variable_is_documented_in_env_example():
    example = env_file(COMPOSE / ".env.example")
    used = set()
    for path in COMPOSE.glob("compose*.yaml"):
        used |= interpolated_names(path.read_text())
    assert used - set(example) == set(), "variables compose.yaml uses but .env.example does not name"
    compose_only = {"COMPOSE_FILE", "NGINX_PUBLISH"} | POSTGRES_IMAGE_VARIABLES
    unused = set(example) - used - {"COMPOSE_FILE"}
    assert not unused, f".env.example names {sorted(unused)}, which no compose file uses"
    assert_known(set(example) - compose_only, "McpGateway", ".env.example",
                 also=SETTINGS["TodosAPI"] | SETTINGS["DevIdP"])
    # COMPOSE_FILE names files that exist.
    for name in example["COMPOSE_FILE"].split(":"):
        assert (COMPOSE / name).is_file(), name


def dockerfile_target(service: dict) -> str | None:
    build = service.get("build")
    if not build:
        return None
    assert build["context"] == "../.." and build["dockerfile"] == "deploy/docker/Dockerfile", build
    return build["target"]


def test_compose_services_are_given_only_settings_they_read():
    for variant in COMPOSE_VARIANTS[1:]:
        config = load_compose(*variant)
        for name, service in config["services"].items():
            environment = service.get("environment", {})
            assert isinstance(environment, dict), f"{name}: environment as a mapping"
            target = dockerfile_target(service)
            if target:
                assert_known(environment, TARGETS[target], f"{variant} service {name}")
            elif service["image"].startswith("postgres:"):
                assert set(environment) <= POSTGRES_IMAGE_VARIABLES, name
            else:
                assert not environment, name


def test_compose_topology():
    config = interpolate(load_compose("compose.yaml", "compose.devidp.yaml"), filled_env())
    services = config["services"]
    gateways = sorted(name for name, service in services.items() if dockerfile_target(service) == "mcp-gateway")
    assert gateways == ["gateway-1", "gateway-2"]
    # Both instances get the same settings: every secret is shared.
    assert services["gateway-1"]["environment"] == services["gateway-2"]["environment"]
    gateway = services["gateway-1"]["environment"]

    # PostgreSQL 16, healthy before the gateways start, reached without TLS on the private network.
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:16")
    assert "pg_isready" in postgres["healthcheck"]["test"]
    assert any(volume.endswith(":/var/lib/postgresql/data") for volume in postgres["volumes"])
    database = urlsplit(gateway["GATEWAY_DATABASE_URL"])
    assert (database.scheme, database.hostname, database.port) == ("postgres", "postgres", 5432)
    assert database.password == postgres["environment"]["POSTGRES_PASSWORD"]
    assert database.username == postgres["environment"]["POSTGRES_USER"]
    assert database.path == "/" + postgres["environment"]["POSTGRES_DB"]
    assert "sslmode=disable" in database.query
    assert urlsplit(gateway["API_BASE_URL"]).hostname == "todos-api"

    # Every dependency waits for health, and every service waited for has a health check (its own, or its image's).
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert condition == {"condition": "service_healthy"}, f"{name} -> {dependency}"
            waited = services[dependency]
            target = dockerfile_target(waited)
            assert "healthcheck" in waited or (target and "HEALTHCHECK" in dockerfile_stages()[target]), dependency
    for name in gateways:
        assert "postgres" in services[name]["depends_on"]
    assert set(services["nginx"]["depends_on"]) == set(gateways)

    # nginx is the only way in: it and (in the local try) DevIdP publish ports, DevIdP on loopback only.
    published = {name: service["ports"] for name, service in services.items() if service.get("ports")}
    assert set(published) == {"nginx", "devidp"}
    assert all(port.startswith("127.0.0.1:") for port in published["devidp"])
    nginx_address = services["nginx"]["networks"]["backend"]["ipv4_address"]
    assert gateway["TRUSTED_PROXIES"] == nginx_address
    subnet = config["networks"]["backend"]["ipam"]["config"][0]["subnet"]
    assert nginx_address.rsplit(".", 1)[0] == subnet.split("/")[0].rsplit(".", 1)[0]
    assert any(volume.startswith("./nginx.conf:") for volume in services["nginx"]["volumes"])

    # nginx balances exactly these instances, on the gateway's port.
    assert nginx_upstreams(COMPOSE / "nginx.conf") == {
        "gateway": [f"{name}:8788" for name in gateways], "gateway_sse": [f"{name}:8788" for name in gateways]}

    # The gateway gets longer than Docker's 10 s to stop (it gives requests 10 s).
    for name in gateways:
        assert int(services[name]["stop_grace_period"].rstrip("s")) >= 15
        assert services[name]["environment"]["LOG_FORMAT"] == "json"
        assert services[name]["read_only"] is True and services[name]["cap_drop"] == ["ALL"]


def test_the_local_try_agrees_on_one_issuer():
    """DevIdP's issuer is what the browser reaches (loopback, published); the gateway and TodosAPI name the same issuer
    but fetch tokens and keys from DevIdP's service name."""
    config = interpolate(load_compose("compose.yaml", "compose.devidp.yaml"), filled_env())
    services = config["services"]
    devidp, gateway, api = (services[name]["environment"] for name in ("devidp", "gateway-1", "todos-api"))
    issuer = devidp["DEVIDP_ISSUER"]
    assert issuer.endswith("/") and urlsplit(issuer).hostname == "localhost"
    for environment in (gateway, api):
        assert environment["AUTH0_DOMAIN"].rstrip("/") + "/" == issuer
        assert not environment.get("OIDC_ISSUER")
    issuer_port = urlsplit(issuer).port
    assert f"127.0.0.1:{issuer_port}:{issuer_port}" in services["devidp"]["ports"]
    assert gateway["OIDC_AUTHORIZATION_URL"] == issuer + "authorize"
    assert gateway["OIDC_TOKEN_URL"] == f"http://devidp:{issuer_port}/oauth/token"
    assert gateway["OIDC_JWKS_URL"] == api["JWKS_URL"] == f"http://devidp:{issuer_port}/.well-known/jwks.json"
    # The gateway's application at DevIdP is the one the gateways use, with its callback behind nginx.
    assert (devidp["AUTH0_CLIENT_ID"], devidp["AUTH0_CLIENT_SECRET"]) == (
        gateway["AUTH0_CLIENT_ID"], gateway["AUTH0_CLIENT_SECRET"])
    assert devidp["PUBLIC_URL"] == gateway["PUBLIC_URL"] == "http://localhost:8788"
    assert services["nginx"]["ports"] == ["127.0.0.1:8788:80"]


def test_the_tls_variant_publishes_https_and_mounts_the_tls_configuration():
    config = interpolate(load_compose("compose.yaml", "compose.tls.yaml"), filled_env() | {"NGINX_PUBLISH": "80"})
    nginx = config["services"]["nginx"]
    assert "443:443" in nginx["ports"]
    assert "./nginx-tls.conf:/etc/nginx/nginx.conf:ro" in nginx["volumes"]
    assert nginx_upstreams(COMPOSE / "nginx-tls.conf") == nginx_upstreams(COMPOSE / "nginx.conf")


# --- nginx ------------------------------------------------------------------------------------------------------------

def nginx_upstreams(path: Path) -> dict[str, list[str]]:
    text = path.read_text()
    return {name: re.findall(r"^\s*server\s+(\S+?)\s*;", body, re.M)
            for name, body in re.findall(r"upstream\s+(\w+)\s*\{(.*?)\}", text, re.S)}


def nginx_locations(path: Path) -> dict[str, str]:
    return {spec.strip(): body for spec, body in re.findall(r"location\s+([^{]+)\{([^}]*)\}", path.read_text())}


def test_nginx_proxies_as_the_cluster_tests_do_and_blocks_metrics():
    for path in (COMPOSE / "nginx.conf", COMPOSE / "nginx-tls.conf"):
        text = path.read_text()
        for directive in ('proxy_http_version 1.1;', 'proxy_set_header Connection "";',
                          'proxy_set_header Host $http_host;',
                          'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
                          'proxy_set_header X-Forwarded-Proto $scheme;', 'proxy_buffering off;',
                          'proxy_read_timeout 1h;', 'proxy_next_upstream error timeout http_502;'):
            assert directive in text, f"{path.name}: {directive}"
        locations = nginx_locations(path)
        assert "return 404;" in locations["^~ /metrics"], path.name
        assert "gateway_sse" in locations["= /sse"] and "gateway_sse" in locations["= /messages"]
        assert "http://gateway;" in locations["/"]
        upstreams = re.findall(r"upstream\s+(\w+)\s*\{(.*?)\}", text, re.S)
        sse = dict(upstreams)["gateway_sse"]
        assert "hash $remote_addr consistent;" in sse
        assert "hash" not in dict(upstreams)["gateway"]


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mcp.example.com")])
    now = datetime.now(timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=1))
                   .not_valid_after(now + timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "fullchain.pem", directory / "privkey.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def local_nginx_config(path: Path, prefix: Path, upstreams: dict[str, str], listens: dict[str, int]) -> Path:
    """The file with the compose names replaced by loopback addresses, the listen ports by free ones, and the logs
    and temporary files in `prefix`: what nginx needs to run here as it would in its container."""
    text = path.read_text()
    for host, address in upstreams.items():
        text = text.replace(f"server {host};", f"server {address} max_fails=0;")
    for port, local in listens.items():
        text = re.sub(rf"listen {port}( ssl)?;", rf"listen 127.0.0.1:{local}\1;", text)
    text = text.replace("access_log /dev/stdout;", f"access_log {prefix}/access.log upstream;")
    text = text.replace("/etc/nginx/certs/", f"{prefix}/")
    kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    temp = "".join(f"    {kind}_temp_path {prefix}/{kind};\n" for kind in kinds)
    text = text.replace("http {\n", "http {\n" + temp
                        + "    log_format upstream '$request_uri $upstream_addr';\n", 1)
    assert "server gateway-" not in text and "listen 80;" not in text
    config = prefix / path.name
    config.write_text(text)
    return config


def nginx_command(config: Path, prefix: Path, *args: str) -> list[str]:
    directives = f"pid {prefix}/nginx.pid;" + (" user root;" if os.geteuid() == 0 else "")
    return [tool("nginx", "nginx-light"), "-p", str(prefix), "-c", str(config), "-g", directives, *args]


@pytest.fixture
def prefix():
    directory = Path(tempfile.mkdtemp(prefix="nginx-deploy-"))
    os.chmod(directory, 0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.parametrize("name", ["nginx.conf", "nginx-tls.conf"])
def test_nginx_configuration_is_valid(name, prefix):
    self_signed_certificate(prefix)
    upstreams = {"gateway-1:8788": "127.0.0.1:9", "gateway-2:8788": "127.0.0.1:9"}
    config = local_nginx_config(COMPOSE / name, prefix, upstreams, {80: free_port(), 443: free_port()})
    result = subprocess.run(nginx_command(config, prefix, "-t"), capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
    # And the check can fail: a misspelt directive is refused.
    config.write_text(config.read_text().replace("proxy_buffering off;", "proxy_bufering off;"))
    result = subprocess.run(nginx_command(config, prefix, "-t"), capture_output=True, text=True, timeout=30)
    assert result.returncode != 0 and "proxy_bufering" in result.stderr


class Instance(BaseHTTPRequestHandler):
    """A stand-in gateway instance: answers with its name and what nginx sent; /stream sends one event, waits, then
    another (is the first one passed on before the second?)."""

    def do_GET(self):
        if self.path == "/stream":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.write(b"data: first\n\n")
            self.wfile.flush()
            time.sleep(1.5)
            self.wfile.write(b"data: second\n\n")
            return
        body = json.dumps({"instance": self.server.name, "path": self.path,
                           "forwarded_for": self.headers.get("X-Forwarded-For"),
                           "host": self.headers.get("Host")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args):
        pass


@pytest.fixture
def balanced(prefix):
    """The compose nginx.conf running in front of two stand-in instances."""
    servers = []
    for name in ("gateway-1", "gateway-2"):
        server = ThreadingHTTPServer(("127.0.0.1", 0), Instance)
        server.name = name
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    port = free_port()
    config = local_nginx_config(COMPOSE / "nginx.conf", prefix, {
        f"{server.name}:8788": f"127.0.0.1:{server.server_address[1]}" for server in servers}, {80: port})
    log = open(prefix / "output.log", "w")
    process = subprocess.Popen(nginx_command(config, prefix, "-g", "daemon off;"), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, (prefix / "output.log").read_text()
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
        for server in servers:
            server.shutdown()


def test_nginx_balances_streams_and_hides_metrics(balanced):
    with httpx.Client(base_url=balanced, timeout=10) as client:
        # Round robin: consecutive requests reach both instances.
        seen = {client.get("/mcp").json()["instance"] for _ in range(4)}
        assert seen == {"gateway-1", "gateway-2"}
        # The client's address and Host reach the instance.
        answer = client.get("/.well-known/oauth-authorization-server", headers={"Host": "mcp.example.com"}).json()
        assert answer["forwarded_for"] == "127.0.0.1" and answer["host"] == "mcp.example.com"
        # /sse and /messages: always the same instance for one client address.
        sticky = {client.get("/sse").json()["instance"] for _ in range(4)}
        sticky |= {client.post("/messages?sessionId=x").json()["instance"] for _ in range(4)}
        assert len(sticky) == 1
        # /metrics never reaches an instance, however it is spelt (sent as is: HTTP clients tidy paths up).
        for path in ("/metrics", "/metrics/", "//metrics", "/%6Detrics", "/metrics?format=prometheus", "/./metrics",
                     "/x/../metrics"):
            status, _, body = raw_request(balanced, path, [])
            assert status == 404 and b"instance" not in body, path
        assert raw_request(balanced, "/metricsx", [])[0] == 404
        # Events are passed on as they come (no buffering): the first one long before the second.
        started = time.monotonic()
        with client.stream("GET", "/stream") as response:
            first = next(response.iter_raw())
            assert b"first" in first and time.monotonic() - started < 1.0


# --- Kubernetes -------------------------------------------------------------------------------------------------------

def manifests() -> list[tuple[Path, dict]]:
    found = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        found += [(path, document) for document in yaml.safe_load_all(path.read_text()) if document]
    return found


def resource(kind: str, name: str) -> dict:
    matches = [doc for _, doc in manifests() if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(matches) == 1, (kind, name)
    return matches[0]


@pytest.mark.parametrize("version", ["1.29.0", kubernetes_validate.latest_version()])
def test_kubernetes_manifests_follow_the_schemas(version):
    for path, document in manifests():
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{path.name} {document['kind']}/{document['metadata']['name']} (Kubernetes {version}): "
                        f"{error.message} at {list(error.path)}")


def test_the_kubernetes_schema_check_catches_a_mistake():
    deployment = copy.deepcopy(resource("Deployment", "mcp-gateway"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/ready"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, kubernetes_validate.latest_version(), strict=True)


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    files = sorted(p.name for p in KUBERNETES.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(kustomization["resources"]) == files
    assert {doc["metadata"]["namespace"] for _, doc in manifests() if doc["kind"] != "Namespace"} == {
        kustomization["namespace"]}


def pod_spec(name: str) -> dict:
    return resource("Deployment", name)["spec"]["template"]["spec"]


def labels_match(selector: dict, labels: dict) -> bool:
    return selector and all(labels.get(key) == value for key, value in selector.items())


def test_kubernetes_gateway():
    deployment = resource("Deployment", "mcp-gateway")
    spec = deployment["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    labels = spec["template"]["metadata"]["labels"]
    assert labels_match(spec["selector"]["matchLabels"], labels)
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    assert container["startupProbe"]["httpGet"]["path"] == "/health"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["lifecycle"]["preStop"]["exec"]["command"][0:2] == ["/bin/sleep", "5"]
    # preStop, then the gateway's own 10 s, within the grace period.
    assert pod["terminationGracePeriodSeconds"] >= 5 + 10
    # Start-up may wait 30 s for PostgreSQL: the startup probe allows more.
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] > 30
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": DEFAULT_PORTS["McpGateway"]}

    # Every Service, the PodDisruptionBudget and the spread constraint select exactly these pods.
    for service in ("mcp-gateway", "mcp-gateway-sse"):
        assert labels_match(resource("Service", service)["spec"]["selector"], labels)
    pdb = resource("PodDisruptionBudget", "mcp-gateway")
    assert pdb["spec"]["minAvailable"] == 1
    assert labels_match(pdb["spec"]["selector"]["matchLabels"], labels)
    for constraint in pod["topologySpreadConstraints"]:
        assert labels_match(constraint["labelSelector"]["matchLabels"], labels)


def test_kubernetes_todos_api_is_one_pod_with_a_volume():
    spec = resource("Deployment", "todos-api")["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/api/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/api/health"
    claim = {volume["name"]: volume for volume in pod["volumes"]}["data"]["persistentVolumeClaim"]["claimName"]
    assert resource("PersistentVolumeClaim", claim)["spec"]["accessModes"] == ["ReadWriteOnce"]
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    config = resource("ConfigMap", "todos-api-config")["data"]
    assert Path(config["TODOS_DATABASE"]).parent == Path(mounts["data"])
    assert pod["securityContext"]["fsGroup"] == 10001
    assert labels_match(resource("Service", "todos-api")["spec"]["selector"], spec["template"]["metadata"]["labels"])
    gateway_config = resource("ConfigMap", "mcp-gateway-config")["data"]
    assert urlsplit(gateway_config["API_BASE_URL"]).hostname == "todos-api"
    assert urlsplit(gateway_config["API_BASE_URL"]).port == resource("Service", "todos-api")["spec"]["ports"][0]["port"]


@pytest.mark.parametrize("name", ["mcp-gateway", "todos-api"])
def test_kubernetes_pods_are_locked_down_and_read_secrets_by_name(name):
    pod = pod_spec(name)
    binary = TARGETS[name]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False and context["readOnlyRootFilesystem"] is True
    assert context["capabilities"]["drop"] == ["ALL"]
    assert "memory" in container["resources"]["limits"] and "cpu" in container["resources"]["requests"]

    names = set()
    for source in container.get("envFrom", []):
        assert "configMapRef" in source, "secrets are read key by key, never as a whole"
        names |= set(resource("ConfigMap", source["configMapRef"]["name"])["data"])
    for variable in container.get("env", []):
        assert "value" not in variable, f"{variable['name']}: no value in a manifest, only references"
        reference = variable["valueFrom"]["secretKeyRef"]
        assert reference["name"] == "mcp-gateway-secrets" and reference["key"] == variable["name"]
        names.add(variable["name"])
    assert_known(names, binary, f"Deployment {name}")
    for key, value in resource("ConfigMap", f"{name}-config")["data"].items():
        assert not SECRET_NAME.search(key), f"{key} belongs in the Secret"
    # No Secret is committed: the docs create it with kubectl.
    assert not [doc for _, doc in manifests() if doc["kind"] == "Secret"]


def test_kubernetes_gateway_reads_every_shared_secret():
    container = pod_spec("mcp-gateway")["containers"][0]
    env = {variable["name"]: variable["valueFrom"]["secretKeyRef"] for variable in container["env"]}
    for required in ("COOKIE_ENCRYPTION_KEY", "GATEWAY_ENCRYPTION_KEY", "AUTH0_CLIENT_SECRET", "GATEWAY_DATABASE_URL"):
        assert not env[required].get("optional", False), required
    for optional in ("GATEWAY_ENCRYPTION_KEYS_OLD", "MCP_SESSION_KEY", "METRICS_TOKEN"):
        assert env[optional]["optional"] is True, optional
    # The docs' kubectl command creates every key that is not for rotations and options.
    for name in set(env) - {"GATEWAY_ENCRYPTION_KEYS_OLD", "MCP_SESSION_KEY"}:
        assert f"--from-literal={name}=" in DOCS.read_text(), name


def gateway_routes() -> set[str]:
    """The gateway's routes, from its sources: router.get("x"), router.group("x")."""
    routes = set()
    for path in (ROOT / "Services" / "McpGateway").rglob("*.swift"):
        for match in re.finditer(r'router\.(?:get|post|put|delete|patch|group|on)\(\s*"([^"]*)"', path.read_text()):
            routes.add("/" + match.group(1).lstrip("/"))
    return routes


def test_the_ingress_routes_the_public_paths_only():
    routes = gateway_routes()
    assert {"/mcp", "/sse", "/messages", "/token", "/health"} <= routes
    routed: dict[str, tuple[str, str]] = {}
    for name in ("mcp-gateway", "mcp-gateway-sse"):
        ingress = resource("Ingress", name)
        (rule,) = ingress["spec"]["rules"]
        assert ingress["spec"]["tls"][0]["hosts"] == [rule["host"]]
        for path in rule["http"]["paths"]:
            routed[path["path"]] = (path["pathType"], path["backend"]["service"]["name"])
    private = {"/health", "/ready", "/metrics"}

    def reached(route: str) -> bool:
        return any(route == path or (kind == "Prefix" and route.startswith(path.rstrip("/") + "/"))
                   for path, (kind, _) in routed.items())

    for route in routes - private:
        assert reached(route), f"the gateway serves {route}, which the Ingress does not route"
    for route in private | {"/metrics/x"}:
        assert not reached(route), f"{route} must not be public"
    assert routed["/sse"][1] == routed["/messages"][1] == "mcp-gateway-sse"
    assert resource("Ingress", "mcp-gateway-sse")["metadata"]["annotations"][
        "nginx.ingress.kubernetes.io/upstream-hash-by"] == "$remote_addr"
    public_url = urlsplit(resource("ConfigMap", "mcp-gateway-config")["data"]["PUBLIC_URL"])
    assert public_url.scheme == "https"
    assert public_url.hostname == resource("Ingress", "mcp-gateway")["spec"]["rules"][0]["host"]


# --- systemd ----------------------------------------------------------------------------------------------------------

HARDENING = {
    "DynamicUser": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
    "PrivateDevices": "yes", "NoNewPrivileges": "yes", "CapabilityBoundingSet": "",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "MemoryDenyWriteExecute": "yes",
    "LockPersonality": "yes", "RestrictNamespaces": "yes", "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes", "ProtectControlGroups": "yes", "RestrictSUIDSGID": "yes",
    "SystemCallArchitectures": "native", "Restart": "on-failure", "TimeoutStopSec": "15",
}


def unit_settings(path: Path) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


UNITS = {"mcp-gateway@.service": "McpGateway", "todos-api.service": "TodosAPI"}


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_systemd_unit_is_hardened(unit):
    settings = unit_settings(SYSTEMD / unit)
    for key, value in HARDENING.items():
        assert settings.get(key) == [value], f"{unit}: {key}={value}"
    assert "@system-service" in settings["SystemCallFilter"]
    binary = UNITS[unit]
    (exec_start,) = settings["ExecStart"]
    assert exec_start.split()[0] == f"/usr/local/lib/mcp-gateway/{binary}"
    (environment_file,) = settings["EnvironmentFile"]
    assert environment_file.startswith("/etc/mcp-gateway/")
    state = settings["StateDirectory"][0]
    for value in settings.get("Environment", []):
        name, _, path = value.partition("=")
        assert_known([name], binary, unit)
        assert path.startswith(f"/var/lib/{state}/"), "SQLite files live in the state directory"
    example = SYSTEMD / (Path(environment_file).name + ".example")
    values = env_file(example)
    assert_known(values, binary, example.name)
    for name, value in values.items():
        if SECRET_NAME.search(name):
            assert value == "" or "<" in value, f"{example.name} commits a value for {name}"


def test_systemd_template_takes_the_port_from_the_instance_name():
    settings = unit_settings(SYSTEMD / "mcp-gateway@.service")
    assert settings["ExecStart"] == ["/usr/local/lib/mcp-gateway/McpGateway serve --port %i"]
    values = env_file(SYSTEMD / "mcp-gateway.env.example")
    assert "PORT" not in values and values["TRUSTED_PROXIES"] == "127.0.0.1" and values["HOST"] == "127.0.0.1"
    assert values["PUBLIC_URL"].startswith("https://")


@pytest.fixture(scope="module")
def units_here(tmp_path_factory):
    """Copies of the units whose ExecStart runs this build's binaries (verify checks that they exist)."""
    directory = tmp_path_factory.mktemp("units")
    for unit in UNITS:
        text = (SYSTEMD / unit).read_text().replace("/usr/local/lib/mcp-gateway/", f"{BIN}/")
        name = unit.replace("@.service", "@8781.service")
        (directory / name).write_text(text)
    return directory


def systemd_analyze(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([tool("systemd-analyze", "systemd"), *args], capture_output=True, text=True, timeout=120)


def test_systemd_analyze_verifies_the_units(units_here):
    units = sorted(str(path) for path in units_here.glob("*.service"))
    result = systemd_analyze("verify", "--man=no", "--generators=no", *units)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    # The check can fail: a misspelt directive is reported.
    broken = units_here / "broken.service"
    broken.write_text((units_here / "todos-api.service").read_text().replace("ProtectHome=yes", "ProtectHomee=yes"))
    try:
        result = systemd_analyze("verify", "--man=no", "--generators=no", str(broken))
        assert "ProtectHomee" in result.stderr
    finally:
        broken.unlink()


def test_systemd_security_rates_the_units_ok(units_here):
    for path in sorted(units_here.glob("*.service")):
        result = systemd_analyze("security", "--offline=true", "--no-pager", str(path))
        assert result.returncode == 0, result.stderr
        level = float(re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout).group(1))
        assert level < 2.0, f"{path.name}: exposure {level}\n{result.stdout}"


def refuse_writable_executable_memory() -> None:
    """PR_SET_MDWE (Linux 6.3+): from now on, and in what this process executes, no memory may become both writable
    and executable: what MemoryDenyWriteExecute=yes enforces (systemd uses this prctl where the kernel has it)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
        raise OSError(ctypes.get_errno(), "PR_SET_MDWE")


def test_the_services_run_without_writable_executable_memory(tmp_path):
    """MemoryDenyWriteExecute=yes in the units is safe: the services start and serve under the kernel's own
    refusal of writable-and-executable memory (Swift compiles ahead of time; nothing generates code at run time)."""
    try:
        probe = subprocess.run(["true"], preexec_fn=refuse_writable_executable_memory)
    except (OSError, subprocess.SubprocessError) as error:
        pytest.skip(f"this kernel cannot refuse writable-executable memory (PR_SET_MDWE, Linux 6.3+): {error}")
    assert probe.returncode == 0
    idp_port, gateway_port = free_port(), free_port()
    issuer = f"http://127.0.0.1:{idp_port}/"
    base = {"PATH": os.environ["PATH"], "DEV_VARS_FILE": str(tmp_path / "none"), "LOG_LEVEL": "warning"}
    commands = [
        ([str(BIN / "DevIdP"), "serve", "--port", str(idp_port)], base | {
            "DEVIDP_ISSUER": issuer, "DEVIDP_SIGNING_KEY": str(tmp_path / "key.pem"), "AUTH0_CLIENT_ID": "gateway",
            "AUTH0_CLIENT_SECRET": secrets.token_hex(16), "PUBLIC_URL": f"http://127.0.0.1:{gateway_port}"},
         issuer + "ready"),
        ([str(BIN / "McpGateway"), "serve", "--port", str(gateway_port)], base | {
            "AUTH0_DOMAIN": issuer, "AUTH0_CLIENT_ID": "gateway", "AUTH0_CLIENT_SECRET": secrets.token_hex(16),
            "PUBLIC_URL": f"http://127.0.0.1:{gateway_port}", "COOKIE_ENCRYPTION_KEY": secrets.token_hex(32),
            "GATEWAY_ENCRYPTION_KEY": secrets.token_hex(32), "GATEWAY_DATABASE": str(tmp_path / "gateway.sqlite")},
         f"http://127.0.0.1:{gateway_port}/ready"),
    ]
    processes = []
    try:
        for command, env, ready in commands:
            processes.append(subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                              stderr=subprocess.STDOUT, preexec_fn=refuse_writable_executable_memory))
            deadline = time.monotonic() + 30
            while True:
                assert processes[-1].poll() is None, processes[-1].stdout.read().decode()
                try:
                    if httpx.get(ready, timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"{ready} not ready"
                time.sleep(0.1)
        registration = httpx.post(f"http://127.0.0.1:{gateway_port}/register", json={
            "redirect_uris": ["http://localhost:3030/callback"], "token_endpoint_auth_method": "none",
            "client_name": "mdwe"}, timeout=10)
        assert registration.status_code == 201, registration.text
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=15)


# --- Docker -----------------------------------------------------------------------------------------------------------

def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        keyword, _, arguments = full.partition(" ")
        assert keyword.isupper(), f"{path.name}: {full!r}"
        instructions.append((keyword, arguments.strip()))
    assert not pending, "a continuation at the end"
    return instructions


def dockerfile_stages() -> dict[str, str]:
    """Each stage's name and its instructions as text (for simple assertions)."""
    stages: dict[str, list[str]] = {}
    current = None
    for keyword, arguments in dockerfile_instructions(DOCKER / "Dockerfile"):
        if keyword == "FROM":
            match = re.fullmatch(r"(?:--platform=\S+\s+)?(\S+)\s+AS\s+([a-z0-9-]+)", arguments, re.I)
            assert match, f"FROM {arguments}: every stage is named"
            current = match.group(2)
            stages[current] = [f"FROM {match.group(1)}"]
        else:
            assert current or keyword == "ARG", keyword
            if current:
                stages[current].append(f"{keyword} {arguments}")
    return {name: "\n".join(lines) for name, lines in stages.items()}


# Docker's reference grammar: [registry/]name[/name…][:tag].
IMAGE_REFERENCE = re.compile(r"^(?:[a-z0-9.-]+(?::\d+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*"
                             r"(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$")


def test_dockerfile_is_multi_stage_and_static():
    stages = dockerfile_stages()
    assert list(stages) == ["build", "runtime", "mcp-gateway", "todos-api", "devidp"]
    arguments = dict(re.findall(r"^ARG (\w+)=(\S+)$", (DOCKER / "Dockerfile").read_text(), re.M))
    swift_version = arguments["SWIFT_VERSION"]
    assert re.fullmatch(r"6\.3(\.\d+)?", swift_version)
    assert stages["build"].startswith("FROM swift:${SWIFT_VERSION}-bookworm")
    assert stages["runtime"].startswith("FROM debian:bookworm-slim")
    for name in TARGETS:
        assert stages[name].startswith("FROM runtime")
    for image in (f"swift:{swift_version}-bookworm", "debian:bookworm-slim"):
        assert IMAGE_REFERENCE.match(image), image
    build = stages["build"]
    assert "libsqlite3-dev" in build
    # The image's build is the one `make bench` measures: scripts/release-build.sh, static and in function order.
    assert "scripts/release-build.sh" in build and "swift build" not in build
    release_build = (ROOT / "scripts" / "release-build.sh").read_text()
    for flag in ("-c release", "--static-swift-stdlib", "-function-sections", "deploy/McpGateway.ld"):
        assert flag in release_build, flag
    assert "target=/src/.build-release" in build
    # The runtime has no compiler and no Swift toolchain.
    assert "swift" not in stages["runtime"].split("COPY --from=build")[0].lower().replace("swift_backtrace", "")


def test_dockerfile_runtime_installs_what_the_binaries_link():
    """ldd names the shared libraries; each one outside glibc and the Swift toolchain must come from a package the
    runtime stage installs (the static build drops the Swift libraries, not these)."""
    installed = set(re.search(r"apt-get install -y --no-install-recommends ([^&]+)", dockerfile_stages()["runtime"])
                    .group(1).split())
    assert "ca-certificates" in installed and "curl" not in installed
    glibc = {"libc.so.6", "libm.so.6", "ld-linux-x86-64.so.2", "libpthread.so.0", "libdl.so.2", "librt.so.1",
             "linux-vdso.so.1", "ld-linux-aarch64.so.1", "libutil.so.1"}
    for binary in TARGETS.values():
        output = subprocess.run(["ldd", str(BIN / binary)], capture_output=True, text=True, check=True).stdout
        for line in output.splitlines():
            parts = line.split()
            library = parts[0]
            location = parts[2] if len(parts) > 2 and parts[1] == "=>" else parts[0]
            if Path(library).name in glibc or "/swift/" in location:
                continue
            # With merged /usr, dpkg knows a file under one of its two names.
            real = os.path.realpath(location)
            candidates = {location, real, real.removeprefix("/usr"), "/usr" + real.removeprefix("/usr")}
            owner = subprocess.run(["dpkg", "-S", *sorted(candidates)], capture_output=True, text=True)
            assert owner.stdout.strip(), f"{binary} links {location}, from no Debian package"
            package = owner.stdout.split(":")[0]
            assert package in installed, f"{binary} links {library} from {package}, which the runtime lacks"


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_dockerfile_service_images(target):
    stage = dockerfile_stages()[target]
    runtime = dockerfile_stages()["runtime"]
    binary = TARGETS[target]
    assert re.search(r"^USER 10001:10001$", runtime, re.M), "a fixed, non-root user"
    assert "STOPSIGNAL SIGTERM" in runtime and 'VOLUME ["/data"]' in runtime
    assert f"EXPOSE {DEFAULT_PORTS[binary]}" in stage
    assert f'ENTRYPOINT ["/app/{binary}"]' in stage
    port_setting = "DEVIDP_PORT" if binary == "DevIdP" else "PORT"
    health = re.search(r"HEALTHCHECK (.*) CMD (.*)$", stage, re.M)
    assert "--start-period=" in health.group(1)
    assert health.group(2) == f'healthcheck "${{{port_setting}:-{DEFAULT_PORTS[binary]}}}" {READINESS[binary]}'
    assert port_setting in SETTINGS[binary]
    # The stage copies the binary and, where there is one, its resources bundle (by the name the build gives it).
    build = dockerfile_stages()["build"]
    assert f'cp "$bin/{binary}" /staging/{target}/' in build
    assert f"COPY --from=build /staging/{target}/ /app/" in stage
    bundles = sorted(path.name for path in BIN.glob(f"*_{binary}.resources"))
    assert bool(bundles) == (binary in ("McpGateway", "DevIdP")), bundles
    for bundle in bundles:
        assert f'cp -R "$bin/{bundle}" /staging/{target}/' in build, f"{target} lacks {bundle}"
    # ENV: settings of this service (HOST for the two that read it, DevIdP's own names) and the Swift runtime's.
    names = set()
    for line in re.findall(r"^ENV (.*)$", runtime + "\n" + stage, re.M):
        names |= set(re.findall(r"(?:^|\s)([A-Z][A-Z0-9_]*)=", line))
    assert_known(names, binary, f"Dockerfile stage {target}", also=SWIFT_RUNTIME_VARIABLES)
    listen = "DEVIDP_HOST" if binary == "DevIdP" else "HOST"
    assert re.search(rf"\b{listen}=0\.0\.0\.0\b", stage)


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule, simplified: the last matching pattern wins; a pattern matches a path or a folder above it."""
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: index + 1]) for index in range(len(parts))]
        if any(fnmatch.fnmatchcase(prefix, pattern) or fnmatch.fnmatchcase(prefix, pattern.replace("**/", ""))
               for prefix in prefixes):
            ignored = not negated
    return ignored


def test_dockerignore_keeps_build_output_and_secrets_out_of_the_context():
    patterns = [line.strip() for line in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for path in (".build/release/McpGateway", ".build-release/release/McpGateway", ".dev.vars", ".venv/bin/python", ".data/gateway.sqlite", ".git/HEAD",
                 "Services/McpGateway/__pycache__/x.pyc"):
        assert dockerignored(path, patterns), path
    # What the build needs: the manifest, every target's sources (test targets too: Package.swift names their
    # folders), the release build's script and function order, and the health check script.
    needed = ["Package.swift", "deploy/docker/healthcheck.sh", "deploy/McpGateway.ld", "scripts/release-build.sh"]
    needed += [f"{target}/x.swift" for target in re.findall(r'path: "([^"]+)"', (ROOT / "Package.swift").read_text())]
    for path in needed:
        assert not dockerignored(path, patterns), path
    for source in re.findall(r"^COPY (?!--from)(?:--\S+ )*(\S+) ", (DOCKER / "Dockerfile").read_text(), re.M):
        assert source == "." or not dockerignored(source, patterns), source


# --- the health check script ------------------------------------------------------------------------------------------

class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/stall":
            time.sleep(6)
            return
        status = 200 if self.path == "/ready" else 503
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_healthcheck_script():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = str(server.server_address[1])
    script = str(DOCKER / "healthcheck.sh")

    def check(*args: str) -> int:
        return subprocess.run(["bash", script, *args], capture_output=True, timeout=10).returncode

    try:
        assert check(port, "/ready") == 0
        assert check(port, "/not-ready") == 1
        assert check(str(free_port()), "/ready") == 1
        started = time.monotonic()
        assert check(port, "/stall") == 1
        assert time.monotonic() - started < 5
        assert check() != 0
    finally:
        server.shutdown()


# --- docs/deployment.md -----------------------------------------------------------------------------------------------

def test_deployment_guide_links_and_names():
    text = DOCS.read_text()
    for target in re.findall(r"\]\((\.\./[^)#]+|[a-z-]+\.md)(?:#[^)]*)?\)", text):
        assert (DOCS.parent / target).resolve().exists(), target
    for path in DEPLOY.rglob("*"):
        if path.is_file():
            assert path.name in text or path.parent.name in text, f"docs/deployment.md never mentions {path.name}"
    names = set(re.findall(r"`([A-Z][A-Z0-9]*_[A-Z0-9_]+)(?:=[^`]*)?`", text))
    others = {"COMPOSE_FILE", "NGINX_PUBLISH"} | POSTGRES_IMAGE_VARIABLES
    unknown = sorted(names - ALL_SETTINGS - others)
    assert not unknown, f"docs/deployment.md names {unknown}, which no service reads"
    for section in ("## Docker Compose", "## systemd", "## Kubernetes", "### TLS in front", "### `TRUSTED_PROXIES`",
                    "### PostgreSQL", "### Sessions across instances", "### Upgrades", "### Rotating keys",
                    "### Admin commands", "### Logs"):
        assert section in text, section
    assert "Rotating `GATEWAY_ENCRYPTION_KEY`" in text
    assert "Rotating `GATEWAY_ENCRYPTION_KEY`" in (ROOT / "docs" / "configuration.md").read_text()
    # The admin commands are shown for each way of running it.
    assert "docker compose exec gateway-1 /app/McpGateway admin" in text
    assert "systemd-run" in text and "EnvironmentFile=/etc/mcp-gateway/mcp-gateway.env" in text
    assert "kubectl -n mcp-todos exec deploy/mcp-gateway -- /app/McpGateway admin" in text


# --- the local try, run as processes -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def local_try():
    """compose.yaml + compose.devidp.yaml as processes on this machine, with the settings the files give each
    container. Only what a container changes is changed: the names of the compose network and the published ports
    become loopback addresses and free ports, listen addresses are 127.0.0.1, files go to a temporary folder, and
    PostgreSQL is the test server (`make test` starts it). nginx runs the real nginx.conf."""
    from cluster import DATABASE_URL, new_database, psql
    from support import Service, wait_for

    services = interpolate(load_compose("compose.yaml", "compose.devidp.yaml"), filled_env())["services"]
    ports = {name: free_port() for name in ("devidp", "todos-api", "gateway-1", "gateway-2", "nginx")}
    # What the browser reaches on the host (published ports), and what containers reach by service name.
    names = {"localhost:8790": f"localhost:{ports['devidp']}", "devidp:8790": f"127.0.0.1:{ports['devidp']}",
             "todos-api:8789": f"127.0.0.1:{ports['todos-api']}", "localhost:8788": f"localhost:{ports['nginx']}"}

    def environment(service: str, **overrides: str) -> dict[str, str]:
        values = {}
        for key, value in services[service]["environment"].items():
            for name, address in names.items():
                value = value.replace(name, address)
            values[key] = value
        return values | overrides

    workdir = Path(tempfile.mkdtemp(prefix="local-try-"))
    prefix = workdir / "nginx"
    prefix.mkdir()
    os.chmod(workdir, 0o755)
    database_url, database_name = new_database()
    started: list = []
    nginx = None
    try:
        devidp = Service("devidp", [str(BIN / "DevIdP"), "serve", "--port", str(ports["devidp"])], environment(
            "devidp", DEVIDP_HOST="127.0.0.1", DEVIDP_SIGNING_KEY=str(workdir / "devidp" / "signing-key.pem")),
            f"http://127.0.0.1:{ports['devidp']}/health")
        started.append(devidp)
        api = Service("todos-api", [str(BIN / "TodosAPI")], environment(
            "todos-api", HOST="127.0.0.1", PORT=str(ports["todos-api"]), TODOS_DATABASE=str(workdir / "todos.sqlite")),
            f"http://127.0.0.1:{ports['todos-api']}/api/health")
        started.append(api)
        gateways = []
        for name in ("gateway-1", "gateway-2"):
            gateway = Service(name, [str(BIN / "McpGateway"), "serve"], environment(
                name, HOST="127.0.0.1", PORT=str(ports[name]), GATEWAY_DATABASE_URL=database_url,
                TRUSTED_PROXIES="127.0.0.1"), f"http://127.0.0.1:{ports[name]}/health")
            started.append(gateway)
            gateways.append(gateway)
        config = local_nginx_config(COMPOSE / "nginx.conf", prefix, {
            f"{name}:8788": f"127.0.0.1:{ports[name]}" for name in ("gateway-1", "gateway-2")}, {80: ports["nginx"]})
        nginx = subprocess.Popen(nginx_command(config, prefix, "-g", "daemon off;"), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.STDOUT)
        wait_for(f"http://127.0.0.1:{ports['nginx']}/health")
        gateway = services["gateway-1"]["environment"]
        yield {"url": gateway["PUBLIC_URL"].replace("localhost:8788", names["localhost:8788"]), "ports": ports,
               "gateways": gateways, "prefix": prefix, "metrics_token": gateway["METRICS_TOKEN"]}
    finally:
        if nginx:
            nginx.terminate()
            nginx.wait(timeout=10)
        for service in reversed(started):
            service.stop()
            shutil.rmtree(service.workdir, ignore_errors=True)
        psql(DATABASE_URL, f"DROP DATABASE IF EXISTS {database_name} WITH (FORCE)")
        shutil.rmtree(workdir, ignore_errors=True)


def test_the_local_try_signs_a_user_in_through_nginx(local_try):
    """The settings of the compose files make a working system: a user signs in at DevIdP through the gateway, the
    tools reach TodosAPI with DevIdP's token, both instances serve, and /metrics is only on the instances."""
    import anyio

    from gateway_stack import HeadlessSignIn, sdk_client

    ports = local_try["ports"]
    for name, path in (("gateway-1", "/ready"), ("gateway-2", "/ready"), ("todos-api", "/api/ready"),
                       ("devidp", "/ready")):
        response = httpx.get(f"http://127.0.0.1:{ports[name]}{path}", timeout=10)
        assert response.status_code == 200, f"{name}: {response.text}"

    async def run():
        for mode in ("2026-07-28", "legacy"):
            async with sdk_client(local_try["url"] + "/mcp", HeadlessSignIn("alice"), mode=mode) as client:
                added = await client.call_tool("add-todo", {"title": f"deployed ({mode})"})
                assert not added.is_error, added.content
                listed = await client.call_tool("list-todos", {})
                assert f"deployed ({mode})" in [todo["title"] for todo in listed.structured_content["todos"]]

    anyio.run(run)
    upstreams = {line.split()[1] for line in (local_try["prefix"] / "access.log").read_text().splitlines()
                 if line.startswith("/mcp") and len(line.split()) > 1}
    assert upstreams == {f"127.0.0.1:{ports['gateway-1']}", f"127.0.0.1:{ports['gateway-2']}"}, upstreams

    assert httpx.get(local_try["url"] + "/metrics", timeout=10).status_code == 404
    direct = f"http://127.0.0.1:{ports['gateway-1']}/metrics"
    assert httpx.get(direct, timeout=10).status_code == 401
    metrics = httpx.get(direct, headers={"Authorization": f"Bearer {local_try['metrics_token']}"}, timeout=10)
    assert metrics.status_code == 200 and "http_server_requests_total" in metrics.text
    # LOG_FORMAT=json: every line a JSON object.
    for gateway in local_try["gateways"]:
        for line in gateway.output().splitlines():
            assert isinstance(json.loads(line), dict), line
