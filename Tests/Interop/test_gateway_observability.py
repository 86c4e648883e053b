"""What an operator watches: /health and /ready on every service, /metrics scraped and parsed by the Prometheus
project's own parser (prometheus_client), JSON logs a collector can read line by line, audit lines for security events
without secrets, and a W3C traceparent followed from the MCP client through the gateway to TodosAPI's log."""

import json
import secrets

import httpx2 as httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway_stack import sign_in, start_stack

META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "observability-test", "version": "1"}}
METRICS_TOKEN = secrets.token_hex(16)


@pytest.fixture(scope="module")
def stack():
    stack = start_stack("devidp", common_env={"LOG_FORMAT": "json"},
                        gateway_env={"METRICS_TOKEN": METRICS_TOKEN})
    yield stack
    stack.stop()


def call_tool(url: str, access_token: str, name: str, headers: dict | None = None) -> httpx.Response:
    return httpx.post(f"{url}/mcp", headers={
        "Authorization": f"Bearer {access_token}", "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": name, **(headers or {}),
    }, json={"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": {}, "_meta": META}})


def metrics(url: str, token: str | None = METRICS_TOKEN) -> dict[str, list]:
    response = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"} if token else {})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {family.name: family.samples for family in text_string_to_metric_families(response.text)}


def value(samples: list, name: str, **labels: str) -> float:
    return sum(sample.value for sample in samples
               if sample.name == name and all(sample.labels.get(key) == wanted for key, wanted in labels.items()))


def log_lines(service) -> list[dict]:
    lines = [line for line in service.output().splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"{service.name} wrote a line that is not JSON: {line[:300]}")
    return parsed


def test_health_and_readiness(stack):
    api = stack.services[1]
    for url in (f"{stack.gateway_url}/health", f"{api.health_url}", stack.idp_issuer + "health"):
        assert httpx.get(url).json()["status"] == "ok"
    ready = httpx.get(f"{stack.gateway_url}/ready")
    assert ready.status_code == 200 and ready.json() == {
        "status": "ready", "checks": {"database": "ok", "downstream_signing_keys": "ok"}}
    api_ready = httpx.get(api.health_url.replace("/api/health", "/api/ready"))
    assert api_ready.status_code == 200 and api_ready.json()["checks"]["database"] == "ok"
    assert httpx.get(stack.idp_issuer + "ready").status_code == 200


def test_metrics_are_scraped_and_parsed(stack):
    assert httpx.get(f"{stack.gateway_url}/metrics").status_code == 401
    assert httpx.get(f"{stack.gateway_url}/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    tokens = sign_in(stack.gateway_url)
    for name in ("whoami", "list-todos"):
        assert call_tool(stack.gateway_url, tokens["access_token"], name).status_code == 200
    refreshed = httpx.post(f"{stack.gateway_url}/token", data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": tokens["client_id"]})
    assert refreshed.status_code == 200
    bad = httpx.post(f"{stack.gateway_url}/token", data={
        "grant_type": "refresh_token", "refresh_token": "nope", "client_id": tokens["client_id"]})
    assert bad.status_code == 400

    families = metrics(stack.gateway_url)
    requests = families["http_server_requests"]
    assert value(requests, "http_server_requests_total", route="/mcp", method="POST", status="200") >= 2
    assert value(requests, "http_server_requests_total", route="/token", status="400") >= 1
    durations = families["http_server_request_duration_seconds"]
    assert value(durations, "http_server_request_duration_seconds_count", route="/mcp") >= 2
    grants = families["oauth_token_requests"]
    assert value(grants, "oauth_token_requests_total", grant_type="authorization_code", outcome="issued") >= 1
    assert value(grants, "oauth_token_requests_total", grant_type="refresh_token", outcome="issued") >= 1
    assert value(grants, "oauth_token_requests_total", grant_type="refresh_token", outcome="invalid_grant") >= 1
    database = families["gateway_database_operation_duration_seconds"]
    assert value(database, "gateway_database_operation_duration_seconds_count", backend="sqlite") >= 5
    # No user, client or token is ever a label.
    text = httpx.get(f"{stack.gateway_url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
    assert tokens["client_id"] not in text and "auth0|alice" not in text
    # TodosAPI's own, without a token (none configured there).
    api_url = stack.services[1].health_url.removesuffix("/api/health")
    api_families = metrics(api_url, token=None)
    assert value(api_families["http_server_requests"], "http_server_requests_total", route="/api/todos") >= 1


def test_logs_are_json_with_audit_lines_and_no_secrets(stack):
    tokens = sign_in(stack.gateway_url, "bob")
    revoked = httpx.post(f"{stack.gateway_url}/revoke", data={
        "token": tokens["refresh_token"], "client_id": tokens["client_id"]})
    assert revoked.status_code == 200
    gateway = stack.services[-1]
    gateway_lines = log_lines(gateway)
    for line in gateway_lines:
        assert {"timestamp", "level", "logger", "message"} <= set(line), line
    audit = [line for line in gateway_lines if line.get("logger") == "McpGateway.audit"]
    events = {(line["audit.event"], line.get("user.id")) for line in audit}
    assert ("sign_in", "auth0|bob") in events and ("code_issued", "auth0|bob") in events
    assert ("token_revoked", "auth0|bob") in events
    assert any(line["audit.event"] == "consent" and line["consent.decision"] == "approve" for line in audit)
    assert all(line["level"] == "notice" and line.get("oauth.client_id") for line in audit)
    output = gateway.output()
    for secret in (tokens["access_token"], tokens["refresh_token"]):
        assert secret not in output
    access = [line for line in gateway_lines if line.get("http.status") and line["message"].startswith("POST /token")]
    assert access and all("?" not in line["message"] for line in access)
    for service in stack.services:
        log_lines(service)  # every service's output is JSON, line by line


def test_a_traceparent_reaches_todos_api_and_its_log(stack):
    tokens = sign_in(stack.gateway_url)
    trace_id = secrets.token_hex(16)
    traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    response = call_tool(stack.gateway_url, tokens["access_token"], "list-todos", {"traceparent": traceparent})
    assert response.status_code == 200
    api_lines = log_lines(stack.services[1])
    assert any(line.get("trace.id") == trace_id and "/api/todos" in line["message"] for line in api_lines), \
        "TodosAPI did not log the caller's trace id"
    assert any(line.get("trace.id") == trace_id and line["message"].startswith("POST /mcp")
               for line in log_lines(stack.services[-1]))
    # A malformed traceparent is ignored, not passed on.
    call_tool(stack.gateway_url, tokens["access_token"], "list-todos", {"traceparent": "00-zz-bad"})
    assert not any(line.get("trace.id") == "zz" for line in log_lines(stack.services[1]))
