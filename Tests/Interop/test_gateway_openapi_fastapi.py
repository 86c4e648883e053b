"""Another API behind the gateway, built with another stack: a FastAPI application (notes_api.py) whose OpenAPI 3.1
document FastAPI itself generates, with OAuth2 scopes per operation. The gateway reads that document from the running
application at start-up (`API_OPENAPI`, an APIs file), offers its scopes, makes its tools, and calls it with tokens it
mints for the notes API's audience and exactly the operation's scopes. The MCP Python SDK signs users in through
DevIdP, whose users here hold notes permissions: alice may read and write, bob may only read."""

import json
import sys
from pathlib import Path

import anyio
import httpx2 as httpx
import pytest
from mcp.shared.exceptions import MCPError

from gateway_stack import call_tool, connect, start_stack
from support import Service, free_port

AUDIENCE = "https://notes.example/"
USERS = {
    "users": [
        {"username": "alice", "password": "alice-password", "user_id": "auth0|alice", "name": "Alice Example",
         "email": "alice@example.com", "permissions": ["notes:read", "notes:write"]},
        {"username": "bob", "password": "bob-password", "user_id": "auth0|bob", "name": "Bob Example",
         "email": "bob@example.com", "permissions": ["notes:read"]},
    ]
}


def start_notes_stack(folder: Path, watch: str):
    """The notes API, then DevIdP, TodosAPI and a gateway whose APIs file names the notes API's document by URL;
    `watch` is API_OPENAPI_WATCH."""
    gateway_port, notes_port = free_port(), free_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    notes_url = f"http://127.0.0.1:{notes_port}"
    api = Service("notes-api", [sys.executable, "-m", "uvicorn", "notes_api:app", "--host", "127.0.0.1",
                                "--port", str(notes_port), "--app-dir", str(Path(__file__).parent)],
                  {"NOTES_ISSUER": gateway_url, "NOTES_AUDIENCE": AUDIENCE}, notes_url + "/health")
    (folder / "users.json").write_text(json.dumps(USERS))
    apis = folder / "apis.yaml"
    apis.write_text(f"apis:\n  - openapi: '{notes_url}/openapi.json'\n    base_url: '{notes_url}'\n    audience: '{AUDIENCE}'\n")
    try:
        stack = start_stack(
            "devidp", gateway_port=gateway_port,
            gateway_env={"API_OPENAPI": str(apis), "DOWNSTREAM_TOKENS": "mint", "API_OPENAPI_WATCH": watch},
            devidp_env={"DEVIDP_USERS": str(folder / "users.json")})
    except Exception:
        api.stop()
        raise
    return stack, api, notes_url, apis


@pytest.fixture(scope="module")
def notes(tmp_path_factory):
    stack, api, notes_url, _ = start_notes_stack(tmp_path_factory.mktemp("notes"), watch="0")
    yield stack, notes_url
    stack.stop()
    api.stop()


def structured(result) -> dict:
    assert not result.is_error, result.content
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content


def test_the_document_fastapi_wrote_becomes_the_tools_and_the_scopes(notes):
    stack, _ = notes
    metadata = httpx.get(f"{stack.gateway_url}/.well-known/oauth-authorization-server").json()
    assert metadata["scopes_supported"] == ["notes:read", "notes:write", "offline_access"]
    unauthenticated = httpx.post(stack.mcp_url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert 'scope="notes:read notes:write offline_access"' in unauthenticated.headers["www-authenticate"]

    async def run():
        async with connect(stack, "alice") as connection:
            tools = {tool.name: tool for tool in (await connection.session.list_tools()).tools}
            # Read-only tools first; `/_seen` is open to anyone, so it is no tool without allow_unauthenticated.
            assert list(tools) == ["whoami", "list-notes", "get-note", "add-note", "delete-note"]
            add = tools["add-note"]
            assert add.title == "Add a note"
            assert add.input_schema["required"] == ["text"] and add.input_schema["additionalProperties"] is False
            assert add.input_schema["properties"]["text"]["maxLength"] == 200
            assert add.annotations.read_only_hint is False and add.annotations.idempotent_hint is False
            assert tools["list-notes"].output_schema["required"] == ["result"]
            assert tools["delete-note"].annotations.destructive_hint is True

    anyio.run(run)


def test_alice_writes_and_reads_her_notes_with_tokens_for_exactly_each_operation(notes):
    stack, notes_url = notes

    async def run():
        async with connect(stack, "alice") as connection:
            session = connection.session
            me = structured(await session.call_tool("whoami", {}))
            assert set(me["scopes"]) == {"notes:read", "notes:write", "offline_access"}
            before = len(httpx.get(notes_url + "/_seen").json())
            note = structured(await session.call_tool("add-note", {"text": "Call the gateway", "tags": ["mcp"]}))
            assert note["owner"] == "auth0|alice" and note["tags"] == ["mcp"]
            listed = structured(await session.call_tool("list-notes", {"tag": "mcp"}))["result"]
            assert [item["id"] for item in listed] == [note["id"]]
            assert structured(await session.call_tool("list-notes", {"tag": "other"}))["result"] == []
            assert structured(await session.call_tool("get-note", {"note_id": note["id"]}))["text"] == "Call the gateway"
            deleted = structured(await session.call_tool("delete-note", {"note_id": note["id"]}))
            assert deleted == {"deleted": True, "note_id": note["id"]}
            missing = await session.call_tool("get-note", {"note_id": note["id"]})
            assert missing.is_error and "No such note" in missing.content[0].text
            # What FastAPI received: tokens the gateway signed for its audience, each with the one scope it needed.
            seen = httpx.get(notes_url + "/_seen").json()[before:]
            assert [claims["scope"] for claims in seen] == [
                "notes:write", "notes:read", "notes:read", "notes:read", "notes:write", "notes:read"]
            assert all(claims["aud"] == AUDIENCE and claims["iss"] == stack.gateway_url for claims in seen)
            assert all(claims["sub"] == "auth0|alice" for claims in seen)

    anyio.run(run)


def test_arguments_are_checked_before_fastapi_sees_them(notes):
    stack, notes_url = notes

    async def run():
        async with connect(stack, "alice") as connection:
            session = connection.session
            before = len(httpx.get(notes_url + "/_seen").json())
            for arguments, message in [
                ({}, "'text' is required"),
                ({"text": ""}, "'text' must not be empty"),
                ({"text": "x" * 201}, "'text' must be at most 200 characters"),
                ({"text": "x", "tags": ["a"] * 6}, "'tags' must have at most 5 items"),
                ({"text": "x", "owner": "auth0|bob"}, "'owner' is not an argument this tool takes"),
                ({"text": 7}, "'text' must be a string"),
            ]:
                with pytest.raises(MCPError, match=message):
                    await session.call_tool("add-note", arguments)
            # A path argument cannot reach another route: encoded, it is one segment of get-note's path.
            for note_id in ["%2E%2E", "%2F_seen", "?owner=auth0|bob", "#x", "...", "a b"]:
                result = await session.call_tool("get-note", {"note_id": note_id})
                assert result.is_error and "No such note" in result.content[0].text, result.content
            # What a server that decodes %2F could still take for another path is refused before it is sent.
            for note_id in ["..", ".", "../_seen", "x/../../_seen", "..\\_seen"]:
                with pytest.raises(MCPError):
                    await session.call_tool("get-note", {"note_id": note_id})
            assert len(httpx.get(notes_url + "/_seen").json()) == before + 6  # only the six get-note calls arrived

    anyio.run(run)


def test_bob_may_read_but_not_write(notes):
    stack, _ = notes

    async def run():
        async with connect(stack, "bob") as connection:
            session = connection.session
            me = structured(await session.call_tool("whoami", {}))
            assert set(me["scopes"]) == {"notes:read", "offline_access"}
            assert structured(await session.call_tool("list-notes", {}))["result"] == []
            with pytest.raises(MCPError, match="notes:write"):
                await session.call_tool("add-note", {"text": "Not allowed"})
            token = connection.storage.tokens.access_token
        # On the wire: a 403 step-up challenge naming the scope the operation's security requires.
        response = call_tool(httpx, stack.gateway_url, token, "delete-note", {"note_id": "x"})
        assert response.status_code == 403
        assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
        assert "notes:write" in response.headers["www-authenticate"]

    anyio.run(run)


def test_reloaded_documents_change_the_tools_and_clients_hear_of_it(tmp_path):
    stack, api, notes_url, apis = start_notes_stack(tmp_path, watch="300ms")
    gateway = next(service for service in stack.services if service.name == "gateway")
    try:
        async def run():
            heard = []

            async def handler(message):
                if "ToolListChanged" in type(getattr(message, "root", message)).__name__:
                    heard.append(message)

            async def hear(after: str):
                """Waits up to five seconds for notifications/tools/list_changed."""
                for _ in range(100):
                    if heard:
                        return
                    await anyio.sleep(0.05)
                raise AssertionError(f"no notifications/tools/list_changed after {after}:\n{gateway.output()[-3000:]}")

            async with connect(stack, "alice", message_handler=handler) as connection:
                session = connection.session
                names = [tool.name for tool in (await session.list_tools()).tools]
                assert "delete-note" in names and "archive-note" not in names

                # The APIs file changes on disk: the gateway notices within its watch interval.
                apis.write_text(apis.read_text() + "    exclude: [{ operation_ids: [delete-note] }]\n")
                await hear("the APIs file changed")
                names = [tool.name for tool in (await session.list_tools()).tools]
                assert "delete-note" not in names
                with pytest.raises(MCPError, match="Unknown tool"):
                    await session.call_tool("delete-note", {"note_id": "x"})

                # The API gains an operation; a document read from a URL is read again on SIGHUP.
                heard.clear()
                httpx.post(notes_url + "/_grow").raise_for_status()
                gateway.process.send_signal(__import__("signal").SIGHUP)
                await hear("SIGHUP")
                note = structured(await session.call_tool("add-note", {"text": "Old news"}))
                archived = structured(await session.call_tool("archive-note", {"note_id": note["id"]}))
                assert archived["tags"] == ["archived"]

                # A broken document leaves the tools as they were.
                heard.clear()
                apis.write_text("apis: [ { openapi: nowhere.yaml, base_url: 'http://127.0.0.1:9' } ]\n")
                await anyio.sleep(1.5)
                assert not heard
                assert "archive-note" in [tool.name for tool in (await session.list_tools()).tools]
                assert "could not be reloaded" in gateway.output()

        anyio.run(run)
    finally:
        stack.stop()
        api.stop()


def test_a_2026_listen_stream_hears_of_a_changed_tool_list(tmp_path):
    stack, api, notes_url, apis = start_notes_stack(tmp_path, watch="0")
    gateway = next(service for service in stack.services if service.name == "gateway")
    try:
        async def run():
            async with connect(stack, "alice") as connection:
                return connection.storage.tokens.access_token

        token = anyio.run(run)
        meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream",
                   "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "subscriptions/listen"}
        body = {"jsonrpc": "2.0", "id": "sub-1", "method": "subscriptions/listen",
                "params": {"notifications": {"toolsListChanged": True}, "_meta": meta}}
        with httpx.Client(timeout=10) as client, client.stream("POST", stack.mcp_url, headers=headers, json=body) as stream:
            assert stream.status_code == 200
            messages = (json.loads(line[5:]) for line in stream.iter_lines() if line.startswith("data:"))
            ack = next(messages)
            assert ack["method"] == "notifications/subscriptions/acknowledged"
            assert ack["params"]["notifications"] == {"toolsListChanged": True}
            httpx.post(notes_url + "/_grow").raise_for_status()
            gateway.process.send_signal(__import__("signal").SIGHUP)
            changed = next(messages)
            assert changed["method"] == "notifications/tools/list_changed"
            assert changed["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == "sub-1"
    finally:
        stack.stop()
        api.stop()
