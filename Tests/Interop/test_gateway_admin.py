"""`McpGateway admin` on the embedded SQLite database, beside a running gateway, as an operator would use it from a
script: JSON output, exit codes, errors on stderr, nothing secret printed. (On PostgreSQL with two instances, see
test_gateway_cluster.py.)"""

import json
import os
import subprocess
import tempfile
from pathlib import Path

import httpx2 as httpx
import pytest

from gateway_stack import sign_in, start_stack
from support import BIN


@pytest.fixture(scope="module")
def stack():
    stack = start_stack("devidp")
    yield stack
    stack.stop()


def admin(stack, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **stack.services[-1].env, "DEV_VARS_FILE": "/nonexistent"}
    return subprocess.run([str(BIN / "McpGateway"), "admin", *args], env=env, capture_output=True, text=True,
                          timeout=60, cwd=stack.services[-1].workdir)


def test_listing_showing_and_counting(stack):
    alice = sign_in(stack.gateway_url, "alice")
    bob = sign_in(stack.gateway_url, "bob")
    clients = admin(stack, "clients", "--json")
    assert clients.returncode == 0, clients.stderr
    listed = {client["id"]: client for client in json.loads(clients.stdout)}
    assert listed[alice["client_id"]]["activeGrants"] == 1 and listed[alice["client_id"]]["authMethod"] == "none"
    assert "secret" not in clients.stdout.lower()

    shown = admin(stack, "client", alice["client_id"], "--json")
    assert shown.returncode == 0
    assert [grant["user"] for grant in json.loads(shown.stdout)["grants"]] == ["auth0|alice"]
    table = admin(stack, "client", alice["client_id"])
    assert f"Client:        {alice['client_id']}" in table.stdout and "auth0|alice" in table.stdout

    grants = json.loads(admin(stack, "grants", "--user", "auth0|bob", "--json").stdout)
    assert [grant["clientID"] for grant in grants] == [bob["client_id"]]
    counts = json.loads(admin(stack, "counts", "--json").stdout)
    assert counts["activeGrants"] >= 2 and counts["users"] >= 2 and counts["clients"] >= 2
    for token in (alice["access_token"], alice["refresh_token"], bob["access_token"], bob["refresh_token"]):
        for output in (clients.stdout, shown.stdout, table.stdout):
            assert token not in output


def test_revoking_and_deleting(stack):
    carol = sign_in(stack.gateway_url, "alice")
    revoked = admin(stack, "revoke", "--client", carol["client_id"])
    assert revoked.returncode == 0 and "Revoked 1 grant(s)." in revoked.stdout
    assert "audit grant_revoked" in revoked.stderr
    refreshed = httpx.post(f"{stack.gateway_url}/token", data={
        "grant_type": "refresh_token", "refresh_token": carol["refresh_token"], "client_id": carol["client_id"]})
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"

    dave = sign_in(stack.gateway_url, "bob")
    deleted = admin(stack, "delete-client", dave["client_id"])
    assert deleted.returncode == 0 and "its 1 active grant(s)" in deleted.stdout
    assert admin(stack, "client", dave["client_id"]).returncode == 3
    refreshed = httpx.post(f"{stack.gateway_url}/token", data={
        "grant_type": "refresh_token", "refresh_token": dave["refresh_token"], "client_id": dave["client_id"]})
    assert refreshed.status_code in (400, 401) and refreshed.json()["error"] in ("invalid_grant", "invalid_client")


def test_errors_and_maintenance(stack):
    missing = admin(stack, "delete-client", "no-such-client")
    assert missing.returncode == 3 and "No client no-such-client." in missing.stderr and missing.stdout == ""
    assert admin(stack, "revoke", "--user", "a", "--client", "b").returncode == 64
    assert admin(stack, "grants", "--user", "a", "--all").returncode == 64
    purged = json.loads(admin(stack, "purge", "--json").stdout)
    assert set(purged) == {"pendingSignIns", "accessTokens", "codes", "grants", "clients", "assertions"}
    resealed = admin(stack, "reseal")
    assert resealed.returncode == 0 and "Re-sealed" in resealed.stdout
    # Another mode keeps no clients or grants: a clear refusal, not a crash.
    external = subprocess.run([str(BIN / "McpGateway"), "admin", "counts"], capture_output=True, text=True, env={
        **os.environ, "AUTH_MODE": "external", "OIDC_ISSUER": "http://127.0.0.1:9/", "DEV_VARS_FILE": "/nonexistent",
        "GATEWAY_ENCRYPTION_KEY": "k" * 40, "GATEWAY_DATABASE": str(Path(tempfile.mkdtemp()) / "gateway.sqlite")},
        timeout=60)
    assert external.returncode == 1 and "keeps no clients or grants" in external.stderr, external.stderr
