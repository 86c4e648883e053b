"""The baseline for `make bench`: the same authenticated tool call written with the official Python MCP SDK.

A Streamable HTTP MCP server whose token verifier accepts a set of opaque bearer tokens (an in-memory lookup, cheaper
than the gateway's database), and whose `list-todos` tool calls TodosAPI with the user's upstream token through one
shared HTTP client: what the gateway does for the same call.
"""

import os

import httpx2 as httpx
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer

PORT = int(os.environ["PORT"])
URL = f"http://127.0.0.1:{PORT}"
TOKENS = set(os.environ["BENCH_TOKENS"].split(","))
UPSTREAM_TOKEN = os.environ["UPSTREAM_TOKEN"]
API_BASE_URL = os.environ["API_BASE_URL"]


class StaticTokens(TokenVerifier):
    async def verify_token(self, token: str) -> AccessToken | None:
        if token not in TOKENS:
            return None
        return AccessToken(token=token, client_id="bench", scopes=["read:todos"], expires_at=None, resource=URL + "/mcp")


api = httpx.AsyncClient(base_url=API_BASE_URL, timeout=10)
server = MCPServer(
    "python-baseline", token_verifier=StaticTokens(),
    auth=AuthSettings(issuer_url=URL, resource_server_url=URL + "/mcp", required_scopes=["read:todos"]),
    log_level="WARNING")


@server.tool(name="list-todos", description="List the user's todos")
async def list_todos() -> dict:
    response = await api.get("/api/todos", headers={"Authorization": f"Bearer {UPSTREAM_TOKEN}"})
    response.raise_for_status()
    return response.json()


if __name__ == "__main__":
    server.run("streamable-http", host="127.0.0.1", port=PORT, max_sessions=1000)
