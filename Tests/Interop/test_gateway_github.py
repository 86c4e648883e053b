"""GitHub as the provider users sign in with: an OAuth app, not OpenID Connect (no discovery, no ID token). The
gateway is played against standin_providers.GitHubStandIn, which answers like GitHub's endpoints (errors with HTTP
200, tokens that never expire, the user from the REST API). The official Python MCP SDK signs in through it, and the
tools reach TodosAPI with tokens the gateway mints: GitHub's tokens are for GitHub."""

from __future__ import annotations

import anyio
import httpx2 as httpx
import pytest

from gateway_stack import GATEWAY_CLIENT_ID, GATEWAY_CLIENT_SECRET, Stack, connect, start_stack
from standin_providers import GitHubStandIn
from support import free_port


@pytest.fixture(scope="module")
def github_stack():
    port = free_port()
    github = GitHubStandIn(clients=[{
        "client_id": GATEWAY_CLIENT_ID, "client_secret": GATEWAY_CLIENT_SECRET,
        "redirect_uris": [f"http://127.0.0.1:{port}/callback"],
    }]).start()
    try:
        stack = start_stack(
            "given", gateway_port=port,
            gateway_env={
                "GITHUB_CLIENT_ID": GATEWAY_CLIENT_ID, "GITHUB_CLIENT_SECRET": GATEWAY_CLIENT_SECRET,
                "GITHUB_URL": github.base_url, "GITHUB_API_URL": github.api_base_url,
                "GRANTED_SCOPES": "read:todos write:todos",
            },
            api_env={"GATEWAY_ISSUER": "{gateway_url}"})
    except Exception:
        github.stop()
        raise
    yield github, stack
    stack.stop()
    github.stop()


def test_a_github_user_signs_in_and_uses_the_tools(github_stack):
    github, stack = github_stack

    async def run():
        async with connect(stack, "octocat") as connection:
            session = connection.session
            me = (await session.call_tool("whoami", {})).structured_content
            # The numeric id, which stays when the login changes; the primary verified email, the public one being
            # null.
            # A GitHub Enterprise Server (the stand-in's host) names its ids with its host.
            assert me["sub"] == "github|127.0.0.1|583231"
            assert me["name"] == "The Octocat"
            assert me["email"] == "octocat@github.example"
            assert set(me["scopes"]) >= {"read:todos", "write:todos"}
            added = await session.call_tool("add-todo", {"title": "Signed in with GitHub"})
            assert not added.is_error, added.content
            todos = await session.call_tool("list-todos", {})
            assert not todos.is_error, todos.content
            assert any(todo["title"] == "Signed in with GitHub" for todo in todos.structured_content["todos"])
            assert all(todo["owner"] == me["sub"] for todo in todos.structured_content["todos"])

    anyio.run(run)
    # The gateway sent GitHub what GitHub expects: PKCE, and the client's credentials in the form.
    authorizations = github.received("/login/oauth/authorize")
    assert authorizations and authorizations[0].params["code_challenge_method"] == "S256"
    exchanges = github.received("/login/oauth/access_token")
    assert exchanges and exchanges[-1].params["client_id"] == GATEWAY_CLIENT_ID
    assert exchanges[-1].params["client_secret"] == GATEWAY_CLIENT_SECRET
    assert "code_verifier" in exchanges[-1].params
    users = github.received("/api/v3/user")
    assert users and users[-1].headers["authorization"].startswith("Bearer gho_")
    assert users[-1].headers.get("user-agent")


def test_the_gateway_publishes_no_openid_configuration_of_github_and_github_tokens_do_not_reach_todos_api(github_stack):
    github, stack = github_stack
    # TodosAPI trusts only the gateway here: a GitHub token is nothing to it.
    assert httpx.get(f"{stack.api_url}/api/todos", headers={"Authorization": "Bearer gho_" + "a" * 36}).status_code == 401
    # GitHub was never asked for an OpenID configuration.
    assert not github.received("/.well-known/openid-configuration")
