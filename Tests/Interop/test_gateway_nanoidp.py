"""The whole flow with nanoidp, an OpenID provider written independently of this project, as the upstream provider:
the gateway relies only on discovery, the code flow with PKCE, and standard ID tokens."""

import anyio
import pytest

from gateway_stack import connect, start_stack


@pytest.fixture(scope="module")
def stack():
    stack = start_stack("nanoidp")
    yield stack
    stack.stop()


def test_python_sdk_signs_in_through_nanoidp_and_calls_tools(stack):
    async def run():
        async with connect(stack, "alice") as connection:
            session = connection.session
            me = (await session.call_tool("whoami", {})).structured_content
            assert me["sub"] == "alice"
            assert me["email"] == "alice@example.com"
            result = await session.call_tool("list-todos", {})
            assert not result.is_error, result.content
            todos = result.structured_content["todos"]
            assert todos and all(todo["owner"] == "alice" for todo in todos)
            added = await session.call_tool("add-todo", {"title": "Via nanoidp"})
            assert not added.is_error, added.content
            # nanoidp's login page was used, not DevIdP's.
            assert any("transaction_id" in page.text for page in connection.browser.pages)

    anyio.run(run)
