"""The pages people meet, in a real browser (headless Chromium, real_browser.py): the official MCP Python SDK signs a
user in through its own OAuth flow (dynamic registration, PKCE) while Chromium does the user's part on the gateway's
consent page and DevIdP's sign-in page, by keyboard alone in one test and by clicks on a phone in another; a denied
consent; the error pages; the home page. Every page gets the same checks (`RealBrowser.check_page`): no SEVERE console
entry (so the Content Security Policy blocks nothing the page needs), no serious or critical axe-core violation, a
phone-width layout without horizontal scrolling, screenshots. headless_browser.py stays for storms and hostile tests."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from urllib.parse import urlencode

import anyio
import httpx2 as httpx
import pytest
from mcp.client.auth import OAuthClientProvider
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata

from gateway_stack import MemoryStorage, Stack, sdk_client, start_stack
from real_browser import DESKTOP, PHONE, Keys, RealBrowser, RedirectTarget, missing_browser, query_of

CLIENT_NAME = "Browser test (Python SDK)"


@pytest.fixture(scope="module")
def stack():
    stack = start_stack("devidp")
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def issuer(stack: Stack) -> str:
    return httpx.get(f"{stack.gateway_url}/.well-known/oauth-authorization-server", timeout=30).json()["issuer"]


@pytest.fixture
def browser():
    problem = missing_browser()
    if problem:
        pytest.fail(problem)
    browser = RealBrowser()
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture
def redirect_target():
    target = RedirectTarget()
    try:
        yield target
    finally:
        target.shutdown()


# The user's part, as a person does it.

CONSENT_CONTROLS = ["button[value=approve]", "button[value=deny]"]
LOGIN_CONTROLS = ["#username", "#password", "button[value=login]", "button[value=cancel]"]


def consent_page(browser: RealBrowser, stack: Stack, client_name: str, page: str = "consent", end=DESKTOP) -> None:
    browser.wait_for_url(stack.gateway_url + "/authorize?")
    browser.wait_for("button[value=approve]")
    assert browser.text("h1") == f"Allow {client_name} to use your Todos?"
    assert browser.driver.title == f"Allow {client_name}? · MCP gateway"
    browser.check_page(page, CONSENT_CONTROLS, end=end)


def login_page(browser: RealBrowser, stack: Stack, page: str = "devidp-login", end=DESKTOP) -> None:
    browser.wait_for_url(stack.idp_issuer + "authorize")
    browser.wait_for("#username")
    assert browser.text("h1") == "Sign in"
    assert "alice-password" in browser.text("table")  # DevIdP shows its demo users
    browser.check_page(page, LOGIN_CONTROLS, end=end)


def by_keyboard(stack: Stack, username: str):
    """Approves and signs in with the keyboard alone, never a click nor a script: Tab from the top of the consent
    page to its buttons and Space on Approve; on DevIdP's page, typing where the focus is, Tab to the password,
    Enter to submit."""

    def act(browser: RealBrowser) -> None:
        consent_page(browser, stack, CLIENT_NAME)
        # The primary action is the first Tab stop, the other one the next (tab order follows reading order).
        assert browser.tab_to("button[value=approve]") == 1
        assert browser.tab_to("button[value=deny]") == 1
        browser.shift_tab()
        assert browser.focused().get_attribute("value") == "approve"
        browser.press(Keys.SPACE)

        login_page(browser, stack)
        # DevIdP puts the caret in the username field (autofocus); the password is the next Tab stop, then the
        # default button.
        browser.wait(lambda _: browser.focused().get_attribute("id") == "username",
                     "the username field does not get the focus when the page opens")
        browser.press(username)
        assert browser.tab_to("#password") == 1
        browser.press(f"{username}-password")
        assert browser.find("#username").get_attribute("value") == username
        assert browser.find("#password").get_attribute("value") == f"{username}-password"
        assert browser.tab_to("button[value=login]") == 1
        browser.shift_tab()
        assert browser.focused().get_attribute("id") == "password"
        browser.press(Keys.ENTER)

    return act


def by_clicks_on_a_phone(stack: Stack, username: str):
    """Approves and signs in with clicks (and typing) at phone width, with a wrong password first."""

    def act(browser: RealBrowser) -> None:
        browser.use(PHONE)
        consent_page(browser, stack, CLIENT_NAME, end=PHONE)
        browser.find("button[value=approve]").click()

        login_page(browser, stack, end=PHONE)
        browser.find("#username").click()
        browser.find("#username").send_keys(username)
        browser.find("#password").click()
        browser.find("#password").send_keys("not-the-password")
        browser.find("button[value=login]").click()
        alert = browser.wait_for("[role=alert]")
        assert alert.text == "Wrong username or password."
        assert browser.find("#username").get_attribute("value") == username
        browser.check_page("devidp-login-refused", LOGIN_CONTROLS, end=PHONE)
        browser.find("#password").click()
        browser.find("#password").send_keys(f"{username}-password")
        browser.find("button[value=login]").click()

    return act


class BrowserSignIn:
    """The MCP SDK's `redirect_handler` and `callback_handler` with Chromium in the user's place: the authorization URL
    is opened in the browser, `act` plays the user, and the code and state are read from the URL the browser ends at,
    the client's redirect URI."""

    def __init__(self, browser: RealBrowser, redirect_uri: str, act) -> None:
        self.browser, self.redirect_uri, self.act = browser, redirect_uri, act
        self.storage = MemoryStorage()
        self.authorization_urls: list[str] = []
        self.final_urls: list[str] = []

    def _sign_in(self, url: str) -> None:
        self.browser.open(url)
        self.act(self.browser)
        self.final_urls.append(self.browser.wait_for_url(self.redirect_uri + "?"))

    async def redirect_handler(self, url: str) -> None:
        self.authorization_urls.append(url)
        await anyio.to_thread.run_sync(self._sign_in, url)

    async def callback_handler(self) -> AuthorizationCodeResult:
        query = query_of(self.final_urls[-1])
        if "code" not in query:
            raise RuntimeError(f"authorization failed: {query}")
        return AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))

    def provider(self, url: str) -> OAuthClientProvider:
        metadata = OAuthClientMetadata(
            client_name=CLIENT_NAME, redirect_uris=[self.redirect_uri], grant_types=["authorization_code",
            "refresh_token"], response_types=["code"], token_endpoint_auth_method="none")
        return OAuthClientProvider(url, metadata, self.storage, self.redirect_handler, self.callback_handler)


def sign_in_and_list_todos(stack: Stack, issuer: str, browser: RealBrowser, target: RedirectTarget, username: str,
                           act) -> None:
    signed_in = BrowserSignIn(browser, target.uri, act)

    async def run():
        async with sdk_client(stack.mcp_url, signed_in) as client:
            result = await client.call_tool("list-todos", {})
            assert not result.is_error, result.content
            todos = result.structured_content["todos"]
            assert len(todos) >= 3 and all(todo["owner"] == f"auth0|{username}" for todo in todos)

    anyio.run(run)
    # One sign-in, through the browser, back at the registered redirect URI with the code, the client's state and the
    # gateway as issuer (RFC 9207); the client registered itself and holds gateway tokens.
    assert len(signed_in.authorization_urls) == 1 and len(signed_in.final_urls) == 1
    sent, back = query_of(signed_in.authorization_urls[0]), query_of(signed_in.final_urls[0])
    assert sent["code_challenge_method"] == "S256" and sent["redirect_uri"] == target.uri
    assert back["state"] == sent["state"] and back["iss"] == issuer and back["code"]
    assert target.requests == ["/callback?" + signed_in.final_urls[0].split("?", 1)[1]]
    assert signed_in.storage.client_info.client_id == sent["client_id"]
    assert signed_in.storage.tokens.access_token.startswith("mcpgw_at_")
    assert browser.text("h1") == "You can close this window"


def test_the_sdk_signs_in_with_the_keyboard_alone(stack: Stack, issuer: str, browser: RealBrowser,
                                                  redirect_target: RedirectTarget):
    sign_in_and_list_todos(stack, issuer, browser, redirect_target, "alice", by_keyboard(stack, "alice"))


def test_the_sdk_signs_in_with_clicks_on_a_phone(stack: Stack, issuer: str, browser: RealBrowser,
                                                 redirect_target: RedirectTarget):
    sign_in_and_list_todos(stack, issuer, browser, redirect_target, "bob", by_clicks_on_a_phone(stack, "bob"))


# Pages reached without the SDK: a client registered by hand, an authorization request built by hand.

def register(stack: Stack, redirect_uri: str, name: str = "Hand-made client") -> str:
    response = httpx.post(f"{stack.gateway_url}/register", timeout=30, json={
        "client_name": name, "redirect_uris": [redirect_uri], "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
    })
    assert response.status_code == 201, response.text
    return response.json()["client_id"]


def authorize_url(stack: Stack, client_id: str, redirect_uri: str, state: str) -> str:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return f"{stack.gateway_url}/authorize?" + urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "state": state,
        "code_challenge": challenge, "code_challenge_method": "S256", "scope": "read:todos",
        "resource": stack.mcp_url,
    })


def test_denying_consent_returns_access_denied_to_the_client(stack: Stack, issuer: str, browser: RealBrowser,
                                                             redirect_target: RedirectTarget):
    # Clients name themselves at registration; a long name without spaces must still fit a phone.
    name = "AnApplicationWhoseNameHasNoSpaceToBreakTheLineAt"
    client_id = register(stack, redirect_target.uri, name)
    state = secrets.token_urlsafe(16)
    browser.open(authorize_url(stack, client_id, redirect_target.uri, state))
    consent_page(browser, stack, name, page="consent-long-name")
    assert browser.text("ul.scopes").splitlines() == ["See your todos", "read:todos"]  # what was asked, in words
    browser.find("button[value=deny]").click()

    query = query_of(browser.wait_for_url(redirect_target.uri + "?"))
    assert query["error"] == "access_denied"
    assert query["state"] == state
    assert query["iss"] == issuer
    assert "code" not in query
    assert len(redirect_target.requests) == 1


REQUEST_ID = re.compile(r"Request id (\S+): quote it")


def assert_error_page(browser: RealBrowser, stack: Stack, url: str, page: str, heading: str, message: str) -> None:
    """A gateway error page, not a redirect: the browser stays at `url`, which says what happened and shows the id the
    gateway logged the request under."""
    browser.open(url)
    browser.wait_for("main h1")
    assert browser.url == url, f"redirected to {browser.url}"
    assert browser.text("h1") == heading
    assert message in browser.text()
    shown = REQUEST_ID.search(browser.text())
    assert shown, f"no request id on the page: {browser.text()}"
    assert browser.find("main p code").text == shown.group(1)
    gateway = stack.services[-1]
    browser.wait(lambda _: shown.group(1) in gateway.output(), "the request id shown is not in the gateway's log")
    browser.check_page(page, ["main h1", "main p code"])


def test_authorize_with_an_unknown_client_shows_a_page(stack: Stack, browser: RealBrowser,
                                                       redirect_target: RedirectTarget):
    url = authorize_url(stack, "no-such-client", redirect_target.uri, "s1")
    assert_error_page(browser, stack, url, "error-unknown-client", "Unknown application",
                      "No application is registered with this client_id.")
    assert redirect_target.requests == []


def test_authorize_with_an_unregistered_redirect_uri_shows_a_page(stack: Stack, browser: RealBrowser,
                                                                  redirect_target: RedirectTarget):
    client_id = register(stack, redirect_target.uri)
    elsewhere = redirect_target.base_url + "/elsewhere"
    url = authorize_url(stack, client_id, elsewhere, "s2")
    assert_error_page(browser, stack, url, "error-unregistered-redirect", "Unregistered redirect URI",
                      "Nothing was sent there.")
    assert redirect_target.requests == []


def test_callback_with_an_unknown_state_shows_a_page(stack: Stack, browser: RealBrowser):
    url = f"{stack.gateway_url}/callback?" + urlencode({"code": "forged", "state": secrets.token_urlsafe(16)})
    assert_error_page(browser, stack, url, "error-callback-state", "This sign-in has expired",
                      "It is unknown, older than ten minutes, or was already completed.")


def test_devidp_error_page(stack: Stack, browser: RealBrowser):
    url = stack.idp_issuer + "authorize?" + urlencode({"client_id": "no-such-client", "response_type": "code"})
    browser.open(url)
    browser.wait_for("main h1")
    assert browser.url == url
    assert browser.text("h1") == "Unknown application"
    assert "No application has the client_id 'no-such-client'." in browser.text()
    browser.check_page("devidp-error", ["main h1"])


def test_the_gateway_home_page(stack: Stack, browser: RealBrowser):
    browser.open(stack.gateway_url + "/")
    browser.wait_for("main h1")
    assert browser.text("h1") == "Todos MCP gateway"
    codes = [element.text for element in browser.driver.find_elements("css selector", "main code")]
    assert codes[0] == stack.mcp_url
    assert f"{stack.gateway_url}/.well-known/oauth-protected-resource/mcp" in codes
    browser.check_page("home", ["main h1", "main code"])


def test_devidp_sign_in_page_with_a_long_client_name(stack: Stack, browser: RealBrowser):
    # DevIdP's own dynamic registration lets a client name itself too; the sign-in page must still fit a phone.
    name = "AnApplicationWhoseNameHasNoSpaceToBreakTheLineAt"
    redirect_uri = "http://127.0.0.1:9/callback"  # never reached: the test stops at the sign-in page
    response = httpx.post(stack.idp_issuer + "oidc/register", timeout=30, json={
        "client_name": name, "redirect_uris": [redirect_uri], "token_endpoint_auth_method": "none"})
    assert response.status_code == 201, response.text
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    browser.open(stack.idp_issuer + "authorize?" + urlencode({
        "client_id": response.json()["client_id"], "redirect_uri": redirect_uri, "response_type": "code",
        "scope": "openid", "state": "s", "code_challenge": challenge, "code_challenge_method": "S256"}))
    browser.wait_for("#username")
    assert browser.text("main p.muted").startswith(f"to continue to {name}")
    browser.check_page("devidp-login-long-name", LOGIN_CONTROLS)
