"""The gateway killed (SIGKILL) while it refreshes users' upstream tokens: with 5-second upstream tokens every tool call
refreshes with DevIdP, so the kill lands between "the provider spent the refresh token" and "the gateway stored the new
one" for some users. With a provider that allows a reuse interval (Auth0's rotation setting, modelled by DevIdP) nobody
loses anything; with strict rotation an interrupted user is asked, with a 401, to authorize again, and nobody gets a
5xx or a tool result saying the sign-in ended."""

import threading
import time

import httpx2 as httpx
import pytest

from gateway_stack import call_tool, sign_in, start_stack


def storm_and_kill(stack, users: list[dict]) -> None:
    stop = threading.Event()
    failures: list[str] = []

    def storm(tokens: dict) -> None:
        with httpx.Client(timeout=5) as http:
            while not stop.is_set():
                try:
                    response = call_tool(http, stack.gateway_url, tokens["access_token"])
                except httpx.HTTPError:
                    continue  # the gateway is down
                if response.status_code != 200 or response.json()["result"]["isError"]:
                    failures.append(f"{response.status_code} {response.text[:200]}")

    threads = [threading.Thread(target=storm, args=(tokens,)) for tokens in users]
    for thread in threads:
        thread.start()
    time.sleep(2.5)
    gateway = stack.services[-1]
    gateway.kill()
    stop.set()
    for thread in threads:
        thread.join()
    assert not failures, failures[:3]
    stack.services[-1] = gateway.restarted()


@pytest.mark.parametrize("reuse_interval", ["30s", "0"])
def test_a_kill_during_upstream_refreshes_loses_nothing_it_need_not(reuse_interval):
    stack = start_stack("devidp", devidp_env={
        "DEVIDP_ACCESS_TOKEN_TTL": "5", "DEVIDP_REFRESH_REUSE_INTERVAL": reuse_interval})
    try:
        users = [sign_in(stack.gateway_url) for _ in range(6)]
        storm_and_kill(stack, users)
        asked_again = 0
        with httpx.Client(timeout=10) as http:
            for tokens in users:
                response = call_tool(http, stack.gateway_url, tokens["access_token"])
                if response.status_code == 401:
                    # The MCP client's normal re-authorization: invalid_token, pointing at the resource metadata.
                    challenge = response.headers["www-authenticate"]
                    assert 'error="invalid_token"' in challenge and "resource_metadata=" in challenge
                    asked_again += 1
                    continue
                assert response.status_code == 200, response.text
                assert response.json()["result"]["isError"] is False, response.text
                # The client's own refresh token still works too.
                refreshed = http.post(f"{stack.gateway_url}/token", data={
                    "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
                    "client_id": tokens["client_id"]})
                assert refreshed.status_code == 200, refreshed.text
        log = stack.services[-1].output()
        print(f"reuse interval {reuse_interval}: {asked_again} of {len(users)} asked to authorize again")
        if reuse_interval != "0":
            assert asked_again == 0, log[-3000:]
        else:
            # Every user asked again was interrupted mid-refresh, and the log says so.
            assert log.count("not a reuse attack") >= asked_again, log[-3000:]
        assert "Unexpected error" not in log
    finally:
        stack.stop()
