"""Client ID Metadata Documents (MCP 2025-11-25): the official Python SDK identifies itself by the URL of its metadata
document instead of registering; the gateway fetches the document (served on loopback, allowed here by
CLIENT_ID_METADATA_ALLOW_PRIVATE) and signs the user in. Hostile documents and addresses are refused with a page,
never a redirect."""

import secrets
from urllib.parse import urlencode

import anyio
import httpx2 as httpx
import pytest

from gateway_stack import REDIRECT_URI, Stack, connect, start_stack
from support import DocumentServer


@pytest.fixture(scope="module")
def documents():
    server = DocumentServer()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def stack():
    stack = start_stack("devidp", gateway_env={"CLIENT_ID_METADATA_ALLOW_PRIVATE": "true"})
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def production_stack():
    """Default settings: documents must be on the public internet."""
    stack = start_stack("devidp")
    yield stack
    stack.stop()


def client_document(url: str, **changes) -> dict:
    document = {
        "client_id": url, "client_name": "Python SDK via metadata document", "client_uri": "https://sdk.example",
        "redirect_uris": [REDIRECT_URI], "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"], "token_endpoint_auth_method": "none",
    }
    document.update(changes)
    return {name: value for name, value in document.items() if value is not None}


def authorize(stack: Stack, client_id: str, redirect_uri: str = REDIRECT_URI) -> httpx.Response:
    return httpx.get(f"{stack.gateway_url}/authorize?" + urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "state": "s",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256",
    }))


def test_the_gateway_advertises_metadata_documents(stack: Stack):
    metadata = httpx.get(f"{stack.gateway_url}/.well-known/oauth-authorization-server").json()
    assert metadata["client_id_metadata_document_supported"] is True


def test_the_python_sdk_signs_in_with_its_metadata_document(stack: Stack, documents: DocumentServer):
    path = f"/{secrets.token_hex(4)}/client.json"
    url = documents.serve_json(path, client_document(documents.base_url + path))

    async def run():
        async with connect(stack, "alice", client_metadata_url=url) as connection:
            assert connection.storage.client_info.client_id == url
            me = (await connection.session.call_tool("whoami", {})).structured_content
            assert me["sub"] == "auth0|alice"
            consent = next(page for page in connection.browser.pages if "/authorize" in page.url)
            assert "Python SDK via metadata document" in consent.text
            assert "published by <strong>127.0.0.1</strong>" in consent.text
            # The tokens the SDK holds work at the token endpoint for this client id.
            tokens = connection.storage.tokens
            refreshed = httpx.post(f"{stack.gateway_url}/token", data={
                "grant_type": "refresh_token", "refresh_token": tokens.refresh_token, "client_id": url})
            assert refreshed.status_code == 200, refreshed.text

    anyio.run(run)
    assert documents.hits[path] == 1


@pytest.mark.parametrize("changes, reason", [
    ({"client_id": "https://someone-else.example/client.json"}, "client_id must be exactly its own URL"),
    ({"client_secret": "not-a-secret-anymore"}, "must not contain client_secret"),
    ({"token_endpoint_auth_method": "client_secret_basic"}, "token_endpoint_auth_method must be none"),
    ({"client_name": None}, "client_name is required"),
    ({"redirect_uris": None}, "redirect_uris is required"),
    ({"redirect_uris": ["http://attacker.example/callback"]}, "redirect URI"),
])
def test_unacceptable_documents_are_refused_with_a_page(stack: Stack, documents: DocumentServer, changes, reason):
    path = f"/{secrets.token_hex(4)}/client.json"
    url = documents.serve_json(path, client_document(documents.base_url + path, **changes))
    response = authorize(stack, url)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert_reason_only_in_the_log(stack, response, reason)


def assert_reason_only_in_the_log(stack: Stack, response, reason: str) -> None:
    """The page says only that the document was not accepted, with the request id; the reason is in the log (a page
    telling a refused connection from a timeout or a status would let anyone probe hosts that trust the gateway)."""
    request_id = response.headers["x-request-id"]
    assert f"request id {request_id}" in response.text
    assert reason not in response.text
    assert any(request_id in line and reason in line for line in stack.services[-1].output().splitlines()), reason


def test_redirects_large_documents_and_other_media_types_are_refused(stack: Stack, documents: DocumentServer):
    target = documents.serve_json("/real.json", client_document(documents.base_url + "/moved.json"))
    documents.responses["/moved.json"] = (302, {"Location": target}, b"")
    response = authorize(stack, documents.base_url + "/moved.json")
    assert response.status_code == 400
    assert_reason_only_in_the_log(stack, response, "redirects are not followed")
    assert documents.hits.get("/real.json", 0) == 0

    big = client_document(documents.base_url + "/big.json", padding="x" * 6000)
    documents.serve_json("/big.json", big)
    assert_reason_only_in_the_log(stack, authorize(stack, documents.base_url + "/big.json"), "larger than 5120 bytes")

    documents.responses["/page.json"] = (200, {"Content-Type": "text/html"}, b"<html></html>")
    assert_reason_only_in_the_log(stack, authorize(stack, documents.base_url + "/page.json"),
                                  "must be served as application/json")


def test_unregistered_redirect_uri_is_refused(stack: Stack, documents: DocumentServer):
    url = documents.serve_json("/fixed.json", client_document(documents.base_url + "/fixed.json"))
    response = authorize(stack, url, redirect_uri="http://localhost:3030/elsewhere")
    assert response.status_code == 400
    assert "location" not in response.headers


@pytest.mark.parametrize("client_id, status, reason", [
    ("http://127.0.0.1:9/client.json", 400, "must use https"),
    ("https://127.0.0.1/client.json", 400, "private, loopback or reserved address"),
    ("https://169.254.169.254/latest/meta-data/", 400, "private, loopback or reserved address"),
    ("https://[::1]/client.json", 400, "private, loopback or reserved address"),
    ("https://10.0.0.1/client.json", 400, "private, loopback or reserved address"),
    ("https://localhost/client.json", 400, "private, loopback or reserved address"),
    ("https://app.example:8443/client.json", 400, "https port (443)"),
    ("https://app.example/", 400, "must have a path"),
    ("https://app.example/a/../client.json", 400, ". or .. path segments"),
    ("https://user:pass@app.example/client.json", 400, "user name or password"),
])
def test_private_addresses_and_malformed_urls_are_refused_by_default(production_stack: Stack, client_id, status,
                                                                     reason):
    response = authorize(production_stack, client_id)
    assert response.status_code == status
    assert "location" not in response.headers
    assert_reason_only_in_the_log(production_stack, response, reason)
