"""docs/openapi.yaml stays true to the code: every documented operation answers with a documented status and a body
that matches its documented schema."""

import copy
import time
from pathlib import Path

import httpx2 as httpx
import jsonschema
import pytest
import yaml

from support import ROOT, JWKSServer, SigningKey, start_todos_api

SPEC = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())
ISSUER = "https://tenant.example.test/"


def resolve(node):
    """Inlines every local $ref."""
    if isinstance(node, dict):
        if "$ref" in node:
            target = SPEC
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return resolve(copy.deepcopy(target))
        return {key: resolve(value) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve(item) for item in node]
    return node


def check(method: str, template: str, response: httpx.Response) -> None:
    operation = resolve(SPEC["paths"][template][method.lower()])
    documented = operation["responses"]
    status = str(response.status_code)
    assert status in documented, f"{method} {template} answered {status}, documented: {sorted(documented)}"
    content = documented[status].get("content", {}).get("application/json")
    if content:
        jsonschema.validate(response.json(), content["schema"], cls=jsonschema.Draft202012Validator)
    else:
        assert response.content == b"", f"{method} {template} {status} has an undocumented body"


@pytest.fixture(scope="module")
def api():
    key = SigningKey("openapi-key")
    jwks = JWKSServer()
    jwks.publish(key)
    service, base = start_todos_api({"AUTH0_DOMAIN": ISSUER, "JWKS_URL": jwks.url})
    now = int(time.time())
    token = key.sign({"iss": ISSUER, "sub": "auth0|contract", "aud": "urn:todos-api", "iat": now, "exp": now + 600,
                      "permissions": ["read:todos", "write:todos", "read:billing"]})
    yield base, {"Authorization": f"Bearer {token}"}
    service.stop()
    jwks.shutdown()


def test_every_documented_operation_matches_the_spec(api):
    base, auth = api
    client = httpx.Client(base_url=base, timeout=10)

    check("GET", "/api/health", client.get("/api/health"))
    check("GET", "/api/me", client.get("/api/me", headers=auth))
    check("GET", "/api/todos", client.get("/api/todos", headers=auth))
    check("GET", "/api/billing", client.get("/api/billing", headers=auth))

    created = client.post("/api/todos", headers=auth, json={"title": "Contract", "due": "2027-01-31"})
    check("POST", "/api/todos", created)
    todo_id = created.json()["todo"]["id"]
    check("GET", "/api/todos/{id}", client.get(f"/api/todos/{todo_id}", headers=auth))
    check("PATCH", "/api/todos/{id}", client.patch(f"/api/todos/{todo_id}", headers=auth, json={"completed": True}))
    check("DELETE", "/api/todos/{id}", client.delete(f"/api/todos/{todo_id}", headers=auth))
    check("DELETE", "/api/todos/{id}", client.delete(f"/api/todos/{todo_id}", headers=auth))

    check("POST", "/api/todos", client.post("/api/todos", headers=auth, json={"title": ""}))
    check("POST", "/api/todos", client.post("/api/todos", headers=auth, content=b"x", ))
    check("POST", "/api/todos", client.post("/api/todos", headers=auth, json={"title": "x" * 20000}))
    check("PATCH", "/api/todos/{id}", client.patch(f"/api/todos/{todo_id}", headers=auth, json={"title": "gone"}))


def test_every_documented_operation_refuses_anonymous_callers_as_documented(api):
    base, _ = api
    for template, operations in SPEC["paths"].items():
        path = template.replace("{id}", "00000000-0000-4000-8000-000000000000")
        for method, operation in operations.items():
            if method == "parameters" or operation.get("security") == []:
                continue
            response = httpx.request(method.upper(), base + path, timeout=10)
            assert response.status_code == 401, f"{method} {template}"
            check(method.upper(), template, response)


def test_methods_the_spec_does_not_list_are_405(api):
    base, auth = api
    for template, operations in SPEC["paths"].items():
        path = template.replace("{id}", "00000000-0000-4000-8000-000000000000")
        for method in ("get", "post", "put", "patch", "delete"):
            if method in operations:
                continue
            response = httpx.request(method.upper(), base + path, headers=auth, timeout=10)
            assert response.status_code == 405, f"{method} {template}: {response.status_code}"
            documented = {name.upper() for name in operations if name != "parameters"}
            assert set(response.headers["allow"].split(", ")) == documented
