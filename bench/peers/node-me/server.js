// The same `GET /api/me` as TodosAPI, written the usual Node way: node:http and jose, whose createRemoteJWKSet keeps
// the issuer's keys and fetches them again when a token names one it does not know.
//
// Run by `make bench` as a peer; configured by ISSUER, AUDIENCE, JWKS_URL and PORT. `jose` is Debian's node-jose
// (panva/jose 4), found through NODE_PATH=/usr/share/nodejs.
"use strict";
const http = require("node:http");
const { createRemoteJWKSet, jwtVerify } = require("jose");

const { ISSUER, AUDIENCE, JWKS_URL, PORT } = process.env;
const jwks = createRemoteJWKSet(new URL(JWKS_URL));

function send(response, status, body, headers = {}) {
  response.writeHead(status, { "Content-Type": "application/json", ...headers });
  response.end(JSON.stringify(body));
}

http
  .createServer(async (request, response) => {
    if (request.url === "/api/health") return send(response, 200, { status: "ok" });
    if (request.url !== "/api/me") return send(response, 404, { error: "not_found" });
    const [scheme, token] = (request.headers.authorization ?? "").split(" ");
    if (scheme?.toLowerCase() !== "bearer" || !token) {
      return send(response, 401, { error: "unauthorized" }, { "WWW-Authenticate": 'Bearer realm="todos-api"' });
    }
    try {
      const { payload } = await jwtVerify(token, jwks, { issuer: ISSUER, audience: AUDIENCE, algorithms: ["RS256"] });
      send(response, 200, payload);
    } catch (error) {
      const description = String(error.message).replace(/["\\]/g, "");
      send(response, 401, { error: "invalid_token" }, {
        "WWW-Authenticate": `Bearer error="invalid_token", error_description="${description}"`,
      });
    }
  })
  .listen(Number(PORT), "127.0.0.1");
