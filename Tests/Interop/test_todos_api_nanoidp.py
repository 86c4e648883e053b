"""TodosAPI verifying tokens issued by nanoidp, an OpenID provider written independently of this project."""

import httpx2 as httpx
import pytest

from nanoidp_server import NanoIDP
from support import start_todos_api


@pytest.fixture(scope="module")
def setup():
    idp = NanoIDP(audience="urn:todos-api")
    # OIDC_ISSUER: nanoidp's issuer has no trailing slash; the keys are found by OIDC discovery.
    api, base = start_todos_api({"OIDC_ISSUER": idp.issuer})
    yield idp, base
    api.stop()
    idp.stop()


def token(idp: NanoIDP, **form) -> str:
    response = httpx.post(idp.issuer + "/token", data=form, auth=("interop-client", "interop-secret"), timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def test_accepts_nanoidp_client_credentials_tokens(setup):
    idp, base = setup
    response = httpx.get(base + "/api/me", headers={"Authorization": "Bearer " + token(idp, grant_type="client_credentials")})
    assert response.status_code == 200, response.text
    assert response.json()["iss"] == idp.issuer
    assert response.json()["sub"] == "interop-client"


def test_user_tokens_are_scoped(setup):
    idp, base = setup
    access = token(idp, grant_type="password", username="alice", password="alice-password", scope="openid read:todos")
    headers = {"Authorization": "Bearer " + access}
    todos = httpx.get(base + "/api/todos", headers=headers)
    assert todos.status_code == 200, todos.text
    assert len(todos.json()["todos"]) == 3
    billing = httpx.get(base + "/api/billing", headers=headers)
    assert billing.status_code == 403
    assert 'scope="read:billing"' in billing.headers["www-authenticate"]


def test_refuses_nanoidp_tokens_for_another_audience(setup):
    idp, base = setup
    other = token(idp, grant_type="client_credentials", resource="urn:other-api")
    response = httpx.get(base + "/api/me", headers={"Authorization": "Bearer " + other})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        'Bearer realm="todos-api", error="invalid_token", '
        'error_description="The access token is not meant for this API (audience)"'
    )
