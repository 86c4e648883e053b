"""TodosAPI against tokens minted with PyJWT from a JWKS this test serves itself."""

import base64
import hashlib
import hmac
import json
import time

import httpx2 as httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from support import JWKSServer, SigningKey, raw_request, start_todos_api

ISSUER = "https://tenant.example.test/"
AUDIENCE = "urn:todos-api"


def claims(**changes) -> dict:
    now = int(time.time())
    base = {
        "iss": ISSUER, "sub": "auth0|interop", "aud": [AUDIENCE, ISSUER + "userinfo"], "iat": now, "exp": now + 600,
        "scope": "openid read:todos", "permissions": ["read:todos"],
    }
    base.update(changes)
    return {key: value for key, value in base.items() if value is not None}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: dict) -> str:
    return b64(json.dumps(value).encode())


@pytest.fixture(scope="module")
def keys():
    return {"a": SigningKey("key-a"), "b": SigningKey("key-b"), "rogue": SigningKey("key-a")}


@pytest.fixture(scope="module")
def api(keys):
    jwks = JWKSServer()
    jwks.publish(keys["a"])
    service, base = start_todos_api({"AUTH0_DOMAIN": "tenant.example.test", "JWKS_URL": jwks.url})
    yield base
    service.stop()
    jwks.shutdown()


def get(base: str, path: str, token: str | None = None, authorization: str | None = None) -> httpx.Response:
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if authorization is not None:
        headers["Authorization"] = authorization
    return httpx.get(base + path, headers=headers, timeout=10)


def test_accepts_tokens_signed_by_an_independent_library(api, keys):
    token = keys["a"].sign(claims(custom={"nested": [1, 2]}))
    response = get(api, "/api/me", token)
    assert response.status_code == 200
    assert response.json()["sub"] == "auth0|interop"
    assert response.json()["custom"] == {"nested": [1, 2]}
    todos = get(api, "/api/todos", token)
    assert todos.status_code == 200
    assert {todo["owner"] for todo in todos.json()["todos"]} == {"auth0|interop"}


def forgeries(keys) -> dict[str, str]:
    a, rogue = keys["a"], keys["rogue"]
    good = a.sign(claims())
    header, payload, signature = good.split(".")
    hs_header = segment({"alg": "HS256", "typ": "JWT", "kid": a.kid})
    hs_payload = segment(claims())
    hs_signature = b64(hmac.new(a.public_pem(), f"{hs_header}.{hs_payload}".encode(), hashlib.sha256).digest())
    ec_key = ec.generate_private_key(ec.SECP256R1())
    return {
        "alg none": jwt.encode(claims(), None, algorithm="none", headers={"kid": a.kid}),
        "alg none uppercase": f"{segment({'alg': 'NONE', 'kid': a.kid})}.{payload}.",
        "HS256 keyed with the public key": f"{hs_header}.{hs_payload}.{hs_signature}",
        "signed by another key under a known kid": rogue.sign(claims()),
        "unknown kid": a.sign(claims(), headers={"kid": "no-such-key"}),
        "kid path traversal": a.sign(claims(), headers={"kid": "../../../../dev/null"}),
        "jku pointing elsewhere": rogue.sign(claims(), headers={"jku": "https://evil.example/jwks.json"}),
        "embedded jwk": rogue.sign(claims(), headers={"jwk": rogue.public_jwk()}),
        "expired": a.sign(claims(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200)),
        "not yet valid": a.sign(claims(nbf=int(time.time()) + 3600)),
        "issued in the future": a.sign(claims(iat=int(time.time()) + 3600)),
        "issuer without trailing slash": a.sign(claims(iss=ISSUER.rstrip("/"))),
        "other issuer": a.sign(claims(iss="https://evil.example.test/")),
        "wrong audience": a.sign(claims(aud="urn:other-api")),
        "audience list without ours": a.sign(claims(aud=["urn:other-api", ISSUER + "userinfo"])),
        "no expiry": a.sign(claims(exp=None)),
        "string expiry": a.sign(claims(exp="tomorrow")),
        "RS384": a.sign(claims(), algorithm="RS384"),
        "PS256": a.sign(claims(), algorithm="PS256"),
        "ES256": jwt.encode(claims(), ec_key, algorithm="ES256", headers={"kid": a.kid}),
        "critical header": a.sign(claims(), headers={"crit": ["exp"]}),
        "tampered payload": f"{header}.{segment(claims(sub='auth0|admin'))}.{signature}",
        "truncated signature": f"{header}.{payload}.{signature[:-10]}",
        "empty signature": f"{header}.{payload}.",
        "two segments": f"{header}.{payload}",
        "four segments": f"{good}.{signature}",
        "JWE-shaped": f"{header}.{payload}.{signature}.{signature}.{signature}",
        "header not JSON": f"{b64(b'not json')}.{payload}.{signature}",
        "header is a JSON array": f"{b64(b'[1]')}.{payload}.{signature}",
        "validly signed payload that is not JSON": a.sign_raw(b"not json"),
        "padding in base64": f"{header}=.{payload}.{signature}",
        "oversized": a.sign(claims(padding="x" * 20000)),
        "garbage": "abc.def.ghi",
        "just dots": "..",
        "random base64": b64(b"\x00" * 300),
    }


def test_forged_and_malformed_tokens_get_a_401_challenge(api, keys):
    for name, token in forgeries(keys).items():
        response = get(api, "/api/me", token)
        assert response.status_code == 401, f"{name}: {response.status_code} {response.text}"
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith('Bearer realm="todos-api", error="invalid_token", error_description="'), name
        assert response.json()["error"] == "invalid_token", name
        assert response.headers["cache-control"] == "no-store", name


@pytest.mark.parametrize(
    "header_lines",
    [
        [b"Authorization: Bearer"],
        [b"Authorization: Bearer a b"],
        [b"Authorization: Bearer a,b"],
        [b"Authorization: Bearer a, Bearer b"],
        [b"Authorization: Bearer a", b"Authorization: Bearer b"],
    ],
)
def test_malformed_authorization_headers_are_400(api, header_lines):
    status, headers, body = raw_request(api, "/api/me", header_lines)
    assert status == 400, body
    assert headers["www-authenticate"].startswith('Bearer realm="todos-api", error="invalid_request"')
    assert json.loads(body)["error"] == "invalid_request"


@pytest.mark.parametrize(
    "token", [b'"quoted"', "tok\u00e9n".encode(), b"a=b", b"a\\b", b"<script>", b"\xff\xfe", b"a;b"]
)
def test_tokens_with_forbidden_characters_are_401(api, token):
    status, headers, body = raw_request(api, "/api/me", [b"Authorization: Bearer " + token])
    assert status == 401, body
    assert headers["www-authenticate"].startswith('Bearer realm="todos-api", error="invalid_token"')


def test_no_credentials_is_401_without_error_attribute(api):
    for authorization in (None, "Basic dXNlcjpwYXNz"):
        response = get(api, "/api/me", authorization=authorization)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer realm="todos-api"'


def test_scopes_are_enforced(api, keys):
    token = keys["a"].sign(claims())
    response = get(api, "/api/billing", token)
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    assert 'scope="read:billing"' in response.headers["www-authenticate"]
    billing = keys["a"].sign(claims(permissions=["read:billing"]))
    assert get(api, "/api/billing", billing).json() == {
        "billing": {"method": "credit-card", "last4": "1234", "expiration": "01/2027"}
    }


def test_key_rotation_while_running_and_the_jwks_going_away():
    old, new, later = SigningKey("rotate-old"), SigningKey("rotate-new"), SigningKey("rotate-later")
    jwks = JWKSServer()
    jwks.publish(old)
    service, base = start_todos_api({"AUTH0_DOMAIN": "tenant.example.test", "JWKS_URL": jwks.url})
    try:
        old_token = old.sign(claims())
        assert get(base, "/api/me", old_token).status_code == 200

        # The issuer adds a key and signs with it: the unknown kid makes TodosAPI refresh.
        jwks.publish(old, new)
        new_token = new.sign(claims())
        assert get(base, "/api/me", new_token).status_code == 200
        assert get(base, "/api/me", old_token).status_code == 200

        # Later the old key is withdrawn; the next refresh drops it and its tokens stop working.
        jwks.publish(new)
        assert get(base, "/api/me", later.sign(claims())).status_code == 401
        assert get(base, "/api/me", old_token).status_code == 401
        assert get(base, "/api/me", new_token).status_code == 200

        # The JWKS endpoint goes away: cached keys keep working, unknown keys are refused, nothing is a 500.
        jwks.shutdown()
        for _ in range(20):
            assert get(base, "/api/me", new.sign(claims())).status_code == 200
            response = get(base, "/api/me", later.sign(claims()))
            assert response.status_code == 401
            assert 'error="invalid_token"' in response.headers["www-authenticate"]
        failures = [line for line in service.output().splitlines() if "JWKS refresh failed" in line and " error " in line]
        assert len(failures) == 1, service.output()
    finally:
        service.stop()
