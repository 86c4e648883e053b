"""The official Python MCP SDK's `sse_client` (the HTTP+SSE transport of MCP 2024-11-05) against the gateway's
`/sse` and `/messages` endpoints: OAuth discovery from the 401 on /sse, sign-in, every tool, and the same session
binding as /mcp."""

import json

import anyio
import httpx2 as httpx
import pytest

from gateway_stack import Stack, connect, sign_in, start_stack


@pytest.fixture(scope="module")
def stack():
    stack = start_stack("devidp")
    yield stack
    stack.stop()


def test_the_sse_endpoint_has_its_own_resource_metadata(stack: Stack):
    response = httpx.get(stack.sse_url, headers={"Accept": "text/event-stream"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].endswith(
        f'resource_metadata="{stack.gateway_url}/.well-known/oauth-protected-resource/sse"')
    metadata = httpx.get(f"{stack.gateway_url}/.well-known/oauth-protected-resource/sse").json()
    assert metadata["resource"] == stack.sse_url
    assert metadata["authorization_servers"] == [stack.gateway_url]


def test_sse_client_signs_in_and_uses_the_tools(stack: Stack):
    async def run():
        async with connect(stack, "alice", transport="sse") as connection:
            session = connection.session
            tools = {tool.name for tool in (await session.list_tools()).tools}
            assert tools == {"whoami", "list-todos", "list-billing", "add-todo", "update-todo", "delete-todo"}
            me = (await session.call_tool("whoami", {})).structured_content
            assert me["sub"] == "auth0|alice"
            added = (await session.call_tool("add-todo", {"title": "Over the legacy transport"})).structured_content
            todos = (await session.call_tool("list-todos", {})).structured_content["todos"]
            assert added["todo"]["id"] in {todo["id"] for todo in todos}
            deleted = await session.call_tool("delete-todo", {"id": added["todo"]["id"]})
            assert not deleted.is_error
            # A few requests in flight at once all come back on the one stream.
            async with anyio.create_task_group() as group:
                results = []

                async def call():
                    results.append(await session.call_tool("whoami", {}))

                for _ in range(5):
                    group.start_soon(call)
            assert len(results) == 5 and all(not result.is_error for result in results)
            assert (await session.send_ping()) is not None

    anyio.run(run)


def test_another_user_cannot_post_to_the_session(stack: Stack):
    alice = sign_in(stack.gateway_url, "alice")
    bob = sign_in(stack.gateway_url, "bob")
    with httpx.Client(timeout=10) as client:
        with client.stream("GET", stack.sse_url, headers={
            "Authorization": f"Bearer {alice['access_token']}", "Accept": "text/event-stream",
        }) as stream:
            assert stream.status_code == 200
            lines = stream.iter_lines()
            assert next(lines) == "event: endpoint"
            endpoint = next(lines).removeprefix("data: ")
            assert endpoint.startswith("/messages?sessionId=")
            message = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            intruder = client.post(stack.gateway_url + endpoint, json=message,
                                   headers={"Authorization": f"Bearer {bob['access_token']}"})
            assert intruder.status_code == 404
            owner = client.post(stack.gateway_url + endpoint, json=message,
                                headers={"Authorization": f"Bearer {alice['access_token']}"})
            assert owner.status_code == 202
            for line in lines:
                if line.startswith("data: "):
                    assert json.loads(line.removeprefix("data: "))["id"] == 1
                    break
