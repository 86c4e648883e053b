"""Plays the user's part in a browser, without a browser: follows redirects, keeps cookies, approves the gateway's
consent page and signs in on the identity provider's login form. Stops at the MCP client's redirect URI."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urljoin, urlparse

import httpx2 as httpx

FORM = re.compile(r"<form\b[^>]*>.*?</form>", re.S | re.I)
INPUT = re.compile(r"<(?:input|button)\b[^>]*>", re.I)
ATTR = re.compile(r'([a-zA-Z_:-]+)\s*=\s*"([^"]*)"')


@dataclass
class Page:
    url: str
    status: int
    text: str


@dataclass
class HeadlessBrowser:
    username: str = "alice"
    password: str = "alice-password"
    decision: str = "approve"
    client: httpx.Client = field(default_factory=lambda: httpx.Client(follow_redirects=False, timeout=20))
    pages: list[Page] = field(default_factory=list)

    def authorize(self, url: str, redirect_prefix: str) -> dict[str, str]:
        """Runs the authorization from `url` until the browser is sent to `redirect_prefix`; returns its query."""
        response = self.client.get(url)
        for _ in range(20):
            if response.is_redirect:
                location = urljoin(str(response.url), response.headers["location"])
                if location.startswith(redirect_prefix):
                    return {key: values[0] for key, values in parse_qs(urlparse(location).query).items()}
                response = self.client.get(location)
                continue
            self.pages.append(Page(str(response.url), response.status_code, response.text))
            form = self._form(response.text)
            if form is None:
                raise AssertionError(f"stuck at {response.url} ({response.status_code}): {response.text[:500]}")
            action, fields = form
            if "decision" in fields or "request_id" in fields:
                fields["decision"] = self.decision
            if "username" in fields or "password" in fields:
                fields.update({"username": self.username, "password": self.password})
                fields.setdefault("action", "login")
                if fields.get("action") == "cancel":
                    fields["action"] = "login"
            response = self.client.post(urljoin(str(response.url), action), data=fields)
        raise AssertionError("too many redirects")

    @staticmethod
    def _form(text: str) -> tuple[str, dict[str, str]] | None:
        match = FORM.search(text)
        if not match:
            return None
        form = match.group(0)
        action = dict(ATTR.findall(form[: form.find(">") + 1])).get("action", "")
        fields: dict[str, str] = {}
        for tag in INPUT.findall(form):
            attributes = {key.lower(): html.unescape(value) for key, value in ATTR.findall(tag)}
            name = attributes.get("name")
            if name and attributes.get("type", "text") not in ("submit",) and not tag.lower().startswith("<button"):
                fields[name] = attributes.get("value", "")
        return html.unescape(action), fields
