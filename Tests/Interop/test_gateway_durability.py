"""The gateway killed with SIGKILL during a storm of refreshes and restarted loses nothing: every refresh token a
client received still works, by the rotation rule."""

import threading
import time

import httpx2 as httpx

from gateway_stack import sign_in, start_stack


def test_no_refresh_token_is_lost_when_the_gateway_is_killed():
    stack = start_stack("devidp")
    try:
        clients = [[tokens["client_id"], tokens["refresh_token"]] for tokens in (sign_in(stack.gateway_url) for _ in range(6))]
        stop = threading.Event()
        received = [0] * len(clients)

        def storm(index: int) -> None:
            with httpx.Client(timeout=5) as http:
                while not stop.is_set():
                    client_id, token = clients[index]
                    try:
                        response = http.post(f"{stack.gateway_url}/token", data={
                            "grant_type": "refresh_token", "refresh_token": token, "client_id": client_id})
                    except httpx.HTTPError:
                        continue  # the gateway is down: the response never arrived
                    assert response.status_code == 200, response.text
                    clients[index][1] = response.json()["refresh_token"]
                    received[index] += 1

        threads = [threading.Thread(target=storm, args=(index,)) for index in range(len(clients))]
        for thread in threads:
            thread.start()
        time.sleep(1.5)
        gateway = stack.services[-1]
        gateway.kill()
        stop.set()
        for thread in threads:
            thread.join()
        assert all(count > 0 for count in received), received

        stack.services[-1] = gateway.restarted()
        for client_id, token in clients:
            response = httpx.post(f"{stack.gateway_url}/token", data={
                "grant_type": "refresh_token", "refresh_token": token, "client_id": client_id})
            assert response.status_code == 200, response.text
            assert response.json()["access_token"].startswith("mcpgw_at_")
    finally:
        stack.stop()
