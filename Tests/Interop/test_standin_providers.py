"""The stand-in providers on their own, driven with httpx and the headless browser the gateway tests use: they must
behave like the providers they mimic before a gateway test can trust them."""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs, urlencode, urlparse

import httpx2 as httpx
import jwt
import pytest

from headless_browser import HeadlessBrowser
from standin_providers import GitHubStandIn, NoScopeJWTProvider, OpaqueTokenProvider, pkce_challenge

CLIENT_ID, CLIENT_SECRET, REDIRECT_URI = "mcp-gateway", "gateway-secret", "http://localhost:3030/callback"
CLIENTS = [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": [REDIRECT_URI]}]
BASIC = (CLIENT_ID, CLIENT_SECRET)


@pytest.fixture(scope="module")
def opaque():
    with OpaqueTokenProvider(CLIENTS) as provider:
        yield provider


@pytest.fixture(scope="module")
def github():
    app = {"client_id": "Iv1.app", "client_secret": "gh-secret", "redirect_uris": [REDIRECT_URI]}
    with GitHubStandIn([app]) as provider:
        yield provider


def authorization_url(provider, **overrides) -> tuple[str, dict]:
    verifier = secrets.token_urlsafe(48)
    params = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI,
              "scope": "openid email profile", "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8),
              "code_challenge": pkce_challenge(verifier), "code_challenge_method": "S256", **overrides}
    params = {key: value for key, value in params.items() if value is not None}
    return provider.base_url + "/authorize?" + urlencode(params), {**params, "verifier": verifier}


def sign_in(provider, username: str = "alice", **overrides) -> tuple[dict, dict]:
    """A user signs in on the provider's login form; returns the callback's query and the request's parameters."""
    url, request = authorization_url(provider, **overrides)
    callback = HeadlessBrowser(username=username, password=f"{username}-password").authorize(url, REDIRECT_URI)
    return callback, request


def exchange(provider, code: str, verifier: str, auth=BASIC, data: dict | None = None) -> httpx.Response:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier}
    return httpx.post(provider.base_url + "/token", data={**form, **(data or {})}, auth=auth)


def verify_jwt(provider, token: str, **options) -> dict:
    keys = httpx.get(provider.base_url + "/jwks").json()["keys"]
    key = jwt.PyJWK(keys[0]).key
    return jwt.decode(token, key, algorithms=["RS256"], audience=CLIENT_ID, issuer=provider.issuer, **options)


def test_discovery_describes_the_code_flow_with_pkce(opaque):
    document = httpx.get(opaque.issuer + "/.well-known/openid-configuration").json()
    assert document["issuer"] == opaque.issuer
    for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"):
        assert document[name].startswith(opaque.base_url + "/")
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]
    assert "refresh_token" in document["grant_types_supported"]
    assert httpx.get(document["jwks_uri"]).json()["keys"][0]["kty"] == "RSA"


def test_code_flow_with_opaque_access_token_userinfo_and_rotating_refresh(opaque):
    callback, request = sign_in(opaque)
    assert callback["state"] == request["state"]
    response = exchange(opaque, callback["code"], request["verifier"])
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600
    assert tokens["access_token"].count(".") == 0  # opaque, not a JWT
    claims = verify_jwt(opaque, tokens["id_token"])
    assert claims["sub"] == "opaque|alice" and claims["nonce"] == request["nonce"]
    assert claims["email"] == "alice@example.com" and claims["name"] == "Alice Example"
    assert opaque.received("/token")[-1].params["code_verifier"] == request["verifier"]
    assert opaque.received("/token")[-1].headers["authorization"].startswith("Basic ")

    info = httpx.get(opaque.base_url + "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.json() == {"sub": "opaque|alice", "email": "alice@example.com", "name": "Alice Example",
                           "email_verified": True}

    refreshed = httpx.post(opaque.base_url + "/token", auth=BASIC,
                           data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["refresh_token"] != tokens["refresh_token"]
    assert verify_jwt(opaque, refreshed.json()["id_token"])["nonce"] == request["nonce"]
    reused = httpx.post(opaque.base_url + "/token", auth=BASIC,
                        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")


def test_client_secret_post_and_a_code_is_single_use(opaque):
    callback, request = sign_in(opaque, "bob")
    response = exchange(opaque, callback["code"], request["verifier"], auth=None,
                        data={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    assert response.status_code == 200, response.text
    assert verify_jwt(opaque, response.json()["id_token"])["sub"] == "opaque|bob"
    again = exchange(opaque, callback["code"], request["verifier"])
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")


def test_token_endpoint_errors(opaque):
    callback, request = sign_in(opaque)
    wrong_secret = exchange(opaque, callback["code"], request["verifier"], auth=(CLIENT_ID, "nope"))
    assert (wrong_secret.status_code, wrong_secret.json()["error"]) == (401, "invalid_client")
    assert "www-authenticate" in wrong_secret.headers
    wrong_verifier = exchange(opaque, callback["code"], secrets.token_urlsafe(48))
    assert (wrong_verifier.status_code, wrong_verifier.json()["error"]) == (400, "invalid_grant")
    callback, request = sign_in(opaque)
    wrong_redirect = exchange(opaque, callback["code"], request["verifier"], data={"redirect_uri": REDIRECT_URI + "x"})
    assert wrong_redirect.json()["error"] == "invalid_grant"
    grant = httpx.post(opaque.base_url + "/token", auth=BASIC, data={"grant_type": "password"})
    assert (grant.status_code, grant.json()["error"]) == (400, "unsupported_grant_type")
    for header in ({"Authorization": "Bearer not-a-token"}, {}):
        info = httpx.get(opaque.base_url + "/userinfo", headers=header)
        assert info.status_code == 401 and "invalid_token" in info.headers["www-authenticate"]


@pytest.mark.parametrize("overrides, error", [
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"scope": "email"}, "invalid_scope"),
    ({"nonce": None}, "invalid_request"),
    ({"code_challenge": None}, "invalid_request"),
    ({"code_challenge_method": "plain"}, "invalid_request"),
])
def test_authorize_insists_on_code_flow_nonce_and_pkce(opaque, overrides, error):
    url, request = authorization_url(opaque, **overrides)
    response = httpx.get(url)
    assert response.status_code == 302
    query = parse_qs(urlparse(response.headers["location"]).query)
    assert query["error"] == [error] and query["state"] == [request["state"]]


def test_authorize_never_redirects_to_an_unregistered_uri_or_for_an_unknown_client(opaque):
    for overrides in ({"redirect_uri": "http://localhost:3030/other"}, {"client_id": "stranger"}):
        response = httpx.get(authorization_url(opaque, **overrides)[0])
        assert response.status_code in (400, 401) and "location" not in response.headers


def test_authorize_without_state_is_an_error_at_the_redirect_uri(opaque):
    response = httpx.get(authorization_url(opaque, state=None)[0])
    assert parse_qs(urlparse(response.headers["location"]).query) == {
        "error": ["invalid_request"], "error_description": ["state is required"]}


def test_chunked_token_request(opaque):
    callback, request = sign_in(opaque)
    form = urlencode({"grant_type": "authorization_code", "code": callback["code"], "redirect_uri": REDIRECT_URI,
                      "code_verifier": request["verifier"]}).encode()
    response = httpx.post(opaque.base_url + "/token", auth=BASIC, content=iter([form[:10], form[10:]]),
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200, response.text
    assert "chunked" in opaque.received("/token")[-1].headers.get("transfer-encoding", "")


def test_wrong_password_shows_the_form_again(opaque):
    url, _ = authorization_url(opaque)
    browser = HeadlessBrowser(username="alice", password="wrong")
    with pytest.raises(AssertionError):
        browser.authorize(url, REDIRECT_URI)
    assert "Wrong username or password" in browser.pages[-1].text


def test_revoked_sessions_cannot_refresh(opaque):
    callback, request = sign_in(opaque, "bob")
    tokens = exchange(opaque, callback["code"], request["verifier"]).json()
    opaque.revoke_user_sessions("bob")
    response = httpx.post(opaque.base_url + "/token", auth=BASIC,
                          data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


def test_google_quirks_auto_login_and_expired_access_tokens():
    with OpaqueTokenProvider(CLIENTS, auto_login_user="bob", refresh_tokens=False, access_token_ttl=0,
                             rejected_scopes=("offline_access",), token_auth_methods=("client_secret_post",)) as google:
        refused = httpx.get(authorization_url(google, scope="openid offline_access")[0])
        assert parse_qs(urlparse(refused.headers["location"]).query)["error"] == ["invalid_scope"]
        url, request = authorization_url(google)
        redirect = httpx.get(url)  # no login form: straight back with a code
        code = parse_qs(urlparse(redirect.headers["location"]).query)["code"][0]
        assert exchange(google, code, request["verifier"]).json()["error"] == "invalid_client"  # Basic not allowed
        redirect = httpx.get(authorization_url(google, state="s", nonce="n", code_challenge=request["code_challenge"])[0])
        code = parse_qs(urlparse(redirect.headers["location"]).query)["code"][0]
        tokens = exchange(google, code, request["verifier"], auth=None,
                          data={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}).json()
        assert "refresh_token" not in tokens and tokens["expires_in"] == 0
        expired = httpx.get(google.base_url + "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert expired.status_code == 401


def test_jwt_access_tokens_without_scope():
    with NoScopeJWTProvider(CLIENTS) as provider:
        callback, request = sign_in(provider)
        tokens = exchange(provider, callback["code"], request["verifier"]).json()
        claims = verify_jwt(provider, tokens["access_token"])
        assert claims["aud"] == CLIENT_ID and claims["sub"] == "opaque|alice"
        assert not {"scope", "scp", "permissions"} & set(claims)
        info = httpx.get(provider.base_url + "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert info.json()["email"] == "alice@example.com"


def github_sign_in(github, username="octocat", scope="read:user user:email", browser=None, verifier=None):
    verifier = verifier or secrets.token_urlsafe(48)
    url = github.authorize_url + "?" + urlencode({
        "client_id": "Iv1.app", "redirect_uri": REDIRECT_URI, "scope": scope, "state": "xyz",
        "code_challenge": pkce_challenge(verifier), "code_challenge_method": "S256"})
    browser = browser or HeadlessBrowser(username=username, password=f"{username}-password")
    return browser.authorize(url, REDIRECT_URI), verifier, browser


def github_token(github, code, verifier, secret="gh-secret", headers=None) -> httpx.Response:
    return httpx.post(github.token_url, headers=headers or {}, data={
        "client_id": "Iv1.app", "client_secret": secret, "code": code, "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier})


def test_github_flow_form_encoded_token_user_and_emails(github):
    callback, verifier, browser = github_sign_in(github)
    assert callback["state"] == "xyz"
    assert [page.url.split("?")[0].removeprefix(github.base_url) for page in browser.pages] == [
        "/login/oauth/authorize", "/session"]  # the login form, then the "Authorize app" page
    response = github_token(github, callback["code"], verifier)
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/x-www-form")
    answer = {key: values[0] for key, values in parse_qs(response.text).items()}
    assert answer["token_type"] == "bearer" and answer["scope"] == "read:user,user:email"
    assert answer["access_token"].startswith("gho_") and "refresh_token" not in answer
    for scheme in ("Bearer", "token"):
        user = httpx.get(github.api_base_url + "/user", headers={"Authorization": f"{scheme} {answer['access_token']}"})
        assert user.json() == {"login": "octocat", "id": 583231, "type": "User", "name": "The Octocat", "email": None}
    emails = httpx.get(github.api_base_url + "/user/emails", headers={"Authorization": f"token {answer['access_token']}"})
    primary = [email for email in emails.json() if email["primary"]]
    assert primary == [{"email": "octocat@github.example", "primary": True, "verified": True, "visibility": "private"}]

    again, verifier, _ = github_sign_in(github, browser=browser)  # already approved: no consent page this time
    assert len(browser.pages) == 3
    response = github_token(github, again["code"], verifier, headers={"Accept": "application/json"})
    assert response.json()["access_token"].startswith("gho_")


def test_github_answers_errors_with_200(github):
    callback, verifier, _ = github_sign_in(github, "hubot")
    wrong_secret = github_token(github, callback["code"], verifier, secret="nope", headers={"Accept": "application/json"})
    assert (wrong_secret.status_code, wrong_secret.json()["error"]) == (200, "incorrect_client_credentials")
    wrong_verifier = github_token(github, callback["code"], secrets.token_urlsafe(48))
    assert wrong_verifier.status_code == 200 and parse_qs(wrong_verifier.text)["error"] == ["bad_verification_code"]
    spent = github_token(github, callback["code"], verifier, headers={"Accept": "application/json"})
    assert spent.json()["error"] == "bad_verification_code"
    refresh = httpx.post(github.token_url, headers={"Accept": "application/json"}, data={
        "client_id": "Iv1.app", "client_secret": "gh-secret", "grant_type": "refresh_token", "refresh_token": "x"})
    assert refresh.json()["error"] == "bad_refresh_token"
    for header, message in (({"Authorization": "token gho_unknown"}, "Bad credentials"), ({}, "Requires authentication")):
        response = httpx.get(github.api_base_url + "/user", headers=header)
        assert (response.status_code, response.json()["message"]) == (401, message)


def test_github_scopes_denial_revocation_and_redirect_mismatch(github):
    callback, verifier, _ = github_sign_in(github, "hubot", scope="")
    token = github_token(github, callback["code"], verifier, headers={"Accept": "application/json"}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert httpx.get(github.api_base_url + "/user", headers=headers).json()["email"] == "hubot@github.example"
    assert httpx.get(github.api_base_url + "/user/emails", headers=headers).status_code == 404  # needs user:email
    github.revoke_user_sessions("hubot")
    assert httpx.get(github.api_base_url + "/user", headers=headers).status_code == 401

    denied = HeadlessBrowser(username="hubot", password="hubot-password", decision="deny")
    assert github_sign_in(github, browser=denied)[0]["error"] == "access_denied"
    mismatch = httpx.get(github.authorize_url + "?" + urlencode({
        "client_id": "Iv1.app", "redirect_uri": "http://evil.example/callback", "state": "s"}))
    location = mismatch.headers["location"]
    assert location.startswith(REDIRECT_URI) and "error=redirect_uri_mismatch" in location
    assert github.received("/login/oauth/access_token")[0].params["client_id"] == "Iv1.app"


def test_github_auto_login_skips_the_form_and_the_consent():
    with GitHubStandIn(auto_login_user="octocat") as github:
        response = httpx.get(github.authorize_url + "?client_id=Iv1.standin&state=s")
        assert response.headers["location"].startswith("http://localhost:3030/callback?code=")
