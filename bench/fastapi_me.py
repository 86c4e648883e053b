"""The same `GET /api/me` as TodosAPI, written the usual Python way: FastAPI, PyJWT and a cached JWKS client.

Run by `make bench` as the baseline; configured by ISSUER, AUDIENCE and JWKS_URL.
"""

import os

import jwt
from fastapi import FastAPI, Header, HTTPException

ISSUER = os.environ["ISSUER"]
AUDIENCE = os.environ["AUDIENCE"]
jwks = jwt.PyJWKClient(os.environ["JWKS_URL"], cache_keys=True, lifespan=3600)
app = FastAPI()


@app.get("/api/health")
def health() -> dict:
    return {"status": "ok"}


@app.get("/api/me")
def me(authorization: str = Header(default="")) -> dict:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, headers={"WWW-Authenticate": 'Bearer realm="todos-api"'})
    try:
        key = jwks.get_signing_key_from_jwt(token)
        return jwt.decode(token, key.key, algorithms=["RS256"], audience=AUDIENCE, issuer=ISSUER, leeway=60)
    except jwt.PyJWTError as error:
        raise HTTPException(401, headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{error}"'})
