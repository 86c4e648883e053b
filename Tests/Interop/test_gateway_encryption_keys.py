"""GATEWAY_ENCRYPTION_KEY mistakes and rotation, on a real gateway process: a restart with a new key and without the
old one is refused with one line (the grants are not touched); with the old key kept, everything works; after
`McpGateway admin reseal`, the old key can be dropped."""

import secrets
import subprocess

import httpx2 as httpx

from gateway_stack import sign_in, start_stack
from support import Service

META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "keys-test", "version": "1"}}


def list_todos(gateway_url: str, access_token: str) -> dict:
    response = httpx.post(f"{gateway_url}/mcp", headers={
        "Authorization": f"Bearer {access_token}", "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "list-todos",
    }, json={"jsonrpc": "2.0", "id": 1, "method": "tools/call",
             "params": {"name": "list-todos", "arguments": {}, "_meta": META}}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["result"]


def with_env(service: Service, **changes: str | None) -> Service:
    env = {**service.env, **{key: value for key, value in changes.items() if value is not None}}
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
    return Service(service.name, service.args, env, service.health_url)


def test_a_key_change_is_refused_at_start_up_and_reseal_retires_the_old_key():
    stack = start_stack("devidp")
    try:
        tokens = sign_in(stack.gateway_url)
        assert list_todos(stack.gateway_url, tokens["access_token"])["isError"] is False
        gateway = stack.services[-1]
        old_key = gateway.env["GATEWAY_ENCRYPTION_KEY"]
        new_key = secrets.token_urlsafe(32)
        gateway.stop()

        # A new key alone: the gateway refuses to start, in one line that says what to do.
        refused = subprocess.run(gateway.args, env={**gateway.env, "GATEWAY_ENCRYPTION_KEY": new_key},
                                 cwd=gateway.workdir, capture_output=True, text=True, timeout=60)
        assert refused.returncode == 1
        message = refused.stderr.strip().splitlines()
        assert len(message) == 1, refused.stderr
        assert "GATEWAY_ENCRYPTION_KEYS_OLD" in message[0] and "key id" in message[0]
        assert old_key not in refused.stderr and new_key not in refused.stderr

        # The new key with the old one kept: the grant works, nothing was revoked.
        rotated = with_env(gateway, GATEWAY_ENCRYPTION_KEY=new_key, GATEWAY_ENCRYPTION_KEYS_OLD=old_key)
        stack.services[-1] = rotated
        assert list_todos(stack.gateway_url, tokens["access_token"])["isError"] is False

        # Re-sealing moves every token to the new key (while the gateway runs) ...
        reseal = subprocess.run([*gateway.args[:-2], "admin", "reseal"], env=rotated.env, cwd=rotated.workdir,
                                capture_output=True, text=True, timeout=60)
        assert reseal.returncode == 0, reseal.stdout + reseal.stderr
        assert "Re-sealed 1 grant(s)" in reseal.stdout
        rotated.stop()

        # ... so the old key can go.
        stack.services[-1] = with_env(rotated, GATEWAY_ENCRYPTION_KEYS_OLD=None)
        assert list_todos(stack.gateway_url, tokens["access_token"])["isError"] is False
        refreshed = httpx.post(f"{stack.gateway_url}/token", data={
            "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": tokens["client_id"]})
        assert refreshed.status_code == 200, refreshed.text
    finally:
        stack.stop()
