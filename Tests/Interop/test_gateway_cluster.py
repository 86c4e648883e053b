"""Two gateway instances on one PostgreSQL database behind nginx, round robin, as docs/deployment.md sets them up:
the OAuth flow hops instances at every step, sessions and stateless requests work on either, a revocation on one is
refused on the other within a second, and an instance killed (SIGKILL) during a storm of refreshes and tool calls
loses nothing."""

import json
import threading
import time

import anyio
import httpx2 as httpx
import pytest

from cluster import Cluster, psql, start_cluster
from gateway_stack import HeadlessSignIn, call_tool, sdk_client, sign_in


@pytest.fixture(scope="module")
def cluster():
    # Five-second upstream tokens: every tool call a few seconds apart refreshes with DevIdP, on either instance.
    # Three-second gateway tokens: clients refresh their grants again and again.
    cluster = start_cluster(2, gateway_env={"ACCESS_TOKEN_TTL": "3"},
                            devidp_env={"DEVIDP_ACCESS_TOKEN_TTL": "5", "DEVIDP_REFRESH_REUSE_INTERVAL": "30s"})
    yield cluster
    cluster.stop()


def requests_served(cluster: Cluster) -> list[int]:
    """How many requests each instance logged."""
    return [sum(1 for line in gateway.output().splitlines() if " /" in line and "http.status=" in line)
            for gateway in cluster.gateways]


@pytest.mark.parametrize("mode", ["2026-07-28", "legacy"])
def test_the_python_sdk_signs_in_and_calls_tools_through_the_balancer(cluster: Cluster, mode: str):
    before = requests_served(cluster)

    async def run():
        signed_in = HeadlessSignIn("alice")
        async with sdk_client(cluster.mcp_url, signed_in, mode=mode) as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            assert "add-todo" in tools
            for index in range(6):
                added = await client.call_tool("add-todo", {"title": f"cluster {mode} {index}"})
                assert not added.is_error, added.content
            listed = await client.call_tool("list-todos", {})
            assert not listed.is_error
            titles = [todo["title"] for todo in listed.structured_content["todos"]]
            assert all(f"cluster {mode} {index}" in titles for index in range(6))
        assert signed_in.authorizations == 1

    anyio.run(run)
    after = requests_served(cluster)
    # Round robin: both instances took part in the sign-in and the session (or stateless requests).
    assert all(now - then >= 5 for now, then in zip(after, before)), (before, after)


def test_every_step_of_a_sign_in_may_land_on_another_instance(cluster: Cluster):
    # The raw flow against each instance in turn: register on 0, authorize on 1, token on 0, refresh on 1.
    first, second = cluster.gateway_url(0), cluster.gateway_url(1)
    tokens = sign_in(cluster.url)
    with httpx.Client(timeout=10) as http:
        assert call_tool(http, first, tokens["access_token"]).status_code == 200
        refreshed = http.post(f"{second}/token", data={
            "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": tokens["client_id"]})
        assert refreshed.status_code == 200, refreshed.text
        assert call_tool(http, first, refreshed.json()["access_token"]).status_code == 200
        # A code redeemed on one instance cannot be redeemed on the other: covered by the store conformance suite;
        # here, the reuse of an older refresh token on the other instance revokes the grant everywhere.
        rotated = http.post(f"{first}/token", data={
            "grant_type": "refresh_token", "refresh_token": refreshed.json()["refresh_token"],
            "client_id": tokens["client_id"]})
        assert rotated.status_code == 200
        reused = http.post(f"{second}/token", data={
            "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": tokens["client_id"]})
        assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
        assert call_tool(http, first, rotated.json()["access_token"]).status_code == 401


def test_a_session_opened_on_one_instance_works_on_the_other(cluster: Cluster):
    tokens = sign_in(cluster.url)
    headers = {"Authorization": f"Bearer {tokens['access_token']}", "Accept": "application/json, text/event-stream"}
    with httpx.Client(timeout=10) as http:
        opened = http.post(f"{cluster.gateway_url(0)}/mcp", headers=headers, json={
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "c", "version": "1"}},
        })
        session = opened.headers["mcp-session-id"]
        session_headers = {**headers, "Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"}
        listed = http.post(f"{cluster.gateway_url(1)}/mcp", headers=session_headers,
                           json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        assert listed.status_code == 200 and "list-todos" in listed.text
        # Another user's token does not find it, on either instance.
        bob = sign_in(cluster.url, "bob")
        for index in (0, 1):
            other = http.post(f"{cluster.gateway_url(index)}/mcp",
                              headers={**session_headers, "Authorization": f"Bearer {bob['access_token']}"},
                              json={"jsonrpc": "2.0", "id": 3, "method": "tools/list"})
            assert other.status_code == 404
        # DELETE ends it on the instance that receives it.
        assert http.delete(f"{cluster.gateway_url(1)}/mcp", headers=session_headers).status_code in (200, 204)
        assert http.post(f"{cluster.gateway_url(1)}/mcp", headers=session_headers,
                         json={"jsonrpc": "2.0", "id": 4, "method": "tools/list"}).status_code == 404


def test_a_revocation_on_one_instance_is_refused_on_the_other_within_a_second(cluster: Cluster):
    tokens = sign_in(cluster.url)
    first, second = cluster.gateway_url(0), cluster.gateway_url(1)
    with httpx.Client(timeout=10) as http:
        # Instance 0 has the token in its cache.
        for _ in range(3):
            assert call_tool(http, first, tokens["access_token"], "whoami").status_code == 200
        revoked = http.post(f"{second}/revoke", data={
            "token": tokens["refresh_token"], "client_id": tokens["client_id"]})
        assert revoked.status_code == 200
        started = time.monotonic()
        while call_tool(http, first, tokens["access_token"], "whoami").status_code != 401:
            assert time.monotonic() - started < 1.0, "instance 0 still accepts a token revoked on instance 1"
            time.sleep(0.02)


def revoked_grants(cluster: Cluster) -> int:
    return int(psql(cluster.database_url, "SELECT count(*) FROM oauth_grant WHERE revoked_at IS NOT NULL"))


def test_an_instance_killed_during_a_storm_loses_nothing(cluster: Cluster):
    users = [sign_in(cluster.url, name) for name in ("alice", "bob") * 3]
    revoked_before = revoked_grants(cluster)
    stop = threading.Event()
    failures: list[str] = []
    refreshes = [0]
    waits = [0]
    lock = threading.Lock()

    def storm(user: dict) -> None:
        """Tool calls and refreshes through nginx, as a client would make them: a 502 (the request was on the killed
        instance) is retried, with the refresh token the client holds."""
        with httpx.Client(timeout=10) as http:
            while not stop.is_set():
                try:
                    response = call_tool(http, cluster.url, user["access_token"])
                    if response.status_code == 401:
                        refreshed = http.post(f"{cluster.url}/token", data={
                            "grant_type": "refresh_token", "refresh_token": user["refresh_token"],
                            "client_id": user["client_id"]})
                        if refreshed.status_code in (502, 503, 504):
                            continue
                        if refreshed.status_code != 200:
                            failures.append(f"refresh {refreshed.status_code} {refreshed.text[:200]}")
                            return
                        user.update(refreshed.json())
                        with lock:
                            refreshes[0] += 1
                        continue
                    if response.status_code in (502, 503, 504):
                        continue
                    if response.status_code == 200 and response.json()["result"]["isError"] and (
                            "identity provider could not be reached" in response.text):
                        # A refresh the killed instance was doing holds the grant until its lease ends (the
                        # refresh's deadline plus a database call): meanwhile a call is told to try again.
                        with lock:
                            waits[0] += 1
                        continue
                    if response.status_code != 200 or response.json()["result"]["isError"]:
                        failures.append(f"tool {response.status_code} {response.text[:200]}")
                        return
                except httpx.HTTPError:
                    continue

    threads = [threading.Thread(target=storm, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    time.sleep(4)
    cluster.gateways[0].kill()
    # Past the lease of any refresh the killed instance held (16 s with the default deadlines): the other instance
    # has taken over every grant by then.
    time.sleep(20)
    stop.set()
    for thread in threads:
        thread.join()
    assert not failures, failures[:3]
    cluster.gateways[0] = cluster.gateways[0].restarted()
    # Nobody lost their grant: every user's current tokens work, on both instances.
    with httpx.Client(timeout=10) as http:
        for user in users:
            for index in (0, 1):
                response = call_tool(http, cluster.gateway_url(index), user["access_token"])
                if response.status_code == 401:
                    refreshed = http.post(f"{cluster.gateway_url(index)}/token", data={
                        "grant_type": "refresh_token", "refresh_token": user["refresh_token"],
                        "client_id": user["client_id"]})
                    assert refreshed.status_code == 200, refreshed.text
                    user.update(refreshed.json())
                    response = call_tool(http, cluster.gateway_url(index), user["access_token"])
                assert response.status_code == 200 and not response.json()["result"]["isError"], response.text
    assert refreshes[0] >= len(users), refreshes
    assert "Unexpected error" not in cluster.gateways[1].output()
    # No refresh was taken for a replay: no grant was revoked.
    assert revoked_grants(cluster) == revoked_before


def test_admin_revokes_a_users_access_on_every_instance(cluster: Cluster):
    first_client, second_client = sign_in(cluster.url, "alice"), sign_in(cluster.url, "alice")
    bob = sign_in(cluster.url, "bob")
    with httpx.Client(timeout=10) as http:
        for tokens in (first_client, second_client, bob):
            for index in (0, 1):  # both instances have the tokens in their caches
                assert call_tool(http, cluster.gateway_url(index), tokens["access_token"], "whoami").status_code == 200

        listed = cluster.admin("grants", "--user", "auth0|alice", "--json")
        assert listed.returncode == 0, listed.stderr
        grants = json.loads(listed.stdout)
        assert {first_client["client_id"], second_client["client_id"]} <= {grant["clientID"] for grant in grants}
        assert all(grant["user"] == "auth0|alice" for grant in grants)
        assert "token" not in listed.stdout.lower() and "digest" not in listed.stdout.lower()

        revoked = cluster.admin("revoke", "--user", "auth0|alice")
        assert revoked.returncode == 0, revoked.stderr
        assert f"Revoked {len(grants)} grant(s)." in revoked.stdout
        assert "audit grant_revoked" in revoked.stderr and "actor=admin" in revoked.stderr
        started = time.monotonic()
        for tokens in (first_client, second_client):
            for index in (0, 1):
                while call_tool(http, cluster.gateway_url(index), tokens["access_token"], "whoami").status_code != 401:
                    assert time.monotonic() - started < 1.0, f"instance {index} still accepts a revoked token"
                    time.sleep(0.02)
        # Bob is untouched.
        assert call_tool(http, cluster.gateway_url(0), bob["access_token"], "whoami").status_code == 200

    assert json.loads(cluster.admin("grants", "--user", "auth0|alice", "--json").stdout) == []
    counts = json.loads(cluster.admin("counts", "--json").stdout)
    assert counts["activeGrants"] >= 1 and counts["users"] >= 1
    missing = cluster.admin("revoke", "--grant", "no-such-grant")
    assert missing.returncode == 3 and "No active grant" in missing.stderr
    assert cluster.admin("revoke").returncode == 64
