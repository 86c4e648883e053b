"""A real browser for the interop tests: Debian's Chromium, headless, driven by Selenium through Debian's chromedriver
(named explicitly, so Selenium Manager never looks for a driver to download). Each browser has a fresh temporary
profile, talks to loopback only, and logs its console, where Chromium reports what a page's Content Security Policy
blocked. The checks every page gets: no SEVERE console entry, no serious or critical axe-core violation, a layout that
fits a phone, and screenshots at desktop and phone width kept under `BROWSER_ARTIFACTS_DIR`
(`.build/test-artifacts/browser/` by default, which git ignores).

`HeadlessSignIn` (headless_browser.py) plays the user with regular expressions over HTTP, fast enough for storms and
hostile tests; this one sees what a person sees."""

from __future__ import annotations

import base64
import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from selenium import webdriver
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from support import ROOT

CHROMIUM = Path(os.environ.get("CHROMIUM_BINARY", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("CHROMEDRIVER_BINARY", "/usr/bin/chromedriver"))
ARTIFACTS = Path(os.environ.get("BROWSER_ARTIFACTS_DIR", ROOT / ".build" / "test-artifacts" / "browser"))
AXE_SCRIPT = Path(__import__("axe_selenium_python").__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
WAIT = 30.0  # seconds: generous, for a loaded two-core CI machine


@dataclass(frozen=True)
class Viewport:
    name: str
    width: int
    height: int
    mobile: bool


DESKTOP = Viewport("desktop", 1280, 800, mobile=False)
PHONE = Viewport("phone", 390, 844, mobile=True)


def missing_browser() -> str | None:
    """Why a real browser cannot run here, or None."""
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not os.access(binary, os.X_OK):
            return f"{binary} is missing: install Debian's chromium and chromium-driver (make test does)"
    return None


class RealBrowser:
    """One headless Chromium with its own profile. Close it with `quit()` (the `browser` fixture does)."""

    def __init__(self) -> None:
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        arguments = [
            "--headless=new", f"--user-data-dir={self.profile}", f"--window-size={DESKTOP.width},{DESKTOP.height}",
            # Loopback only: no proxy, every host name but localhost unresolvable, nothing fetched in the background.
            "--no-proxy-server", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-default-apps", "--disable-extensions", "--no-first-run", "--no-default-browser-check",
            "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
            "--password-store=basic", "--disable-dev-shm-usage", "--disable-gpu", "--lang=en-US",
        ]
        if os.geteuid() == 0:
            arguments.append("--no-sandbox")  # Chromium's sandbox refuses to run as root
        for argument in arguments:
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.log_path = Path(self.profile + ".chromedriver.log")
        service = DriverService(executable_path=str(CHROMEDRIVER), log_output=str(self.log_path))
        try:
            self.driver = webdriver.Chrome(service=service, options=options)
        except Exception:
            shutil.rmtree(self.profile, ignore_errors=True)
            self.log_path.unlink(missing_ok=True)
            raise
        try:
            self.driver.set_page_load_timeout(WAIT)
            self.driver.set_script_timeout(WAIT)
            self.viewport = DESKTOP
            self.use(DESKTOP)
            self.color_scheme("light")
        except Exception:
            self.quit()
            raise

    def quit(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)
            self.log_path.unlink(missing_ok=True)

    # Navigation and waiting

    def open(self, url: str) -> None:
        self.driver.get(url)

    @property
    def url(self) -> str:
        return self.driver.current_url

    def wait(self, condition, message: str = "", timeout: float = WAIT):
        """Waits until `condition(driver)` is truthy (WebDriverWait); returns its value."""
        return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(condition, message)

    def wait_for_url(self, prefix: str, timeout: float = WAIT) -> str:
        """Waits until the browser is at a URL starting with `prefix` and the page there has loaded."""
        self.wait(lambda driver: driver.current_url.startswith(prefix)
                  and driver.execute_script("return document.readyState") == "complete",
                  f"the browser never reached {prefix} (it is at {self.driver.current_url})", timeout)
        return self.driver.current_url

    def wait_for(self, css: str, timeout: float = WAIT) -> WebElement:
        """Waits until an element matching `css` is displayed; returns it."""
        def displayed(driver):
            for element in driver.find_elements(By.CSS_SELECTOR, css):
                if element.is_displayed():
                    return element
            return False
        return self.wait(displayed, f"no visible {css} at {self.driver.current_url}", timeout)

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def text(self, css: str = "main") -> str:
        """The text of the page (or of `css`) as a person reads it."""
        return self.find(css).text

    # The keyboard

    def focused(self) -> WebElement:
        return self.driver.switch_to.active_element

    def press(self, *keys: str) -> None:
        """Key presses sent to whatever has the focus, as a person types them."""
        ActionChains(self.driver).send_keys(*keys).perform()

    def shift_tab(self) -> None:
        """Shift+Tab: the focus goes back one stop."""
        ActionChains(self.driver).key_down(Keys.SHIFT).send_keys(Keys.TAB).key_up(Keys.SHIFT).perform()

    def tab_to(self, css: str, limit: int = 12) -> int:
        """Presses Tab until the element matching `css` has the focus; returns how many presses it took. Fails if it
        is not reached within `limit` presses (not focusable, or buried behind too many other controls)."""
        target = self.find(css)
        for presses in range(1, limit + 1):
            self.press(Keys.TAB)
            if self.focused() == target:
                return presses
        raise AssertionError(f"{css} was not reached by {limit} presses of Tab at {self.driver.current_url}")

    # The checks every page gets

    def use(self, viewport: Viewport) -> None:
        """Makes the page's viewport exactly `viewport` (a phone is emulated as one: the page's meta viewport applies).
        The page is not reloaded, so a form on it stays usable."""
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": viewport.width, "height": viewport.height, "deviceScaleFactor": 1, "mobile": viewport.mobile,
            "screenWidth": viewport.width, "screenHeight": viewport.height,
        })
        self.viewport = viewport
        self.wait(lambda driver: driver.execute_script("return screen.width") == viewport.width,
                  f"the browser did not take the {viewport.name} viewport")

    def severe_console_entries(self) -> list[str]:
        """The console entries at SEVERE since the last call (Chromium logs what a Content Security Policy blocked
        there, and scripts' uncaught errors). The browser reporting the status of a page it was asked to open (an
        error page's 400) is not a problem of that page and is left out."""
        entries = self.driver.get_log("browser")
        current = self.driver.current_url.split("#")[0]
        severe = []
        for entry in entries:
            if entry.get("level") != "SEVERE":
                continue
            message = entry.get("message", "")
            if message.startswith(current + " - Failed to load resource: the server responded with a status of"):
                continue
            severe.append(message)
        return severe

    def axe_violations(self) -> list[dict]:
        """The axe-core violations of impact serious or critical on the current page."""
        self.driver.execute_script(AXE_SCRIPT.read_text(encoding="utf-8"))
        results = self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {resultTypes: ['violations']}).then(done, error => done({error: String(error)}));")
        assert "error" not in results, f"axe-core failed: {results['error']}"
        return [violation for violation in results["violations"] if violation.get("impact") in ("serious", "critical")]

    def phone_layout_problems(self, controls: list[str]) -> list[str]:
        """At the current (phone) viewport: horizontal scrolling, and the `controls` (CSS selectors) that are hidden,
        clipped or wider than the screen."""
        problems = []
        screen_width = self.viewport.width
        scroll_width, inner_width = self.driver.execute_script(
            "return [document.scrollingElement.scrollWidth, window.innerWidth]")
        if inner_width != screen_width:
            # No `width=device-width` meta viewport, or content too wide for it: the phone zooms out to show it all.
            problems.append(f"lays out {inner_width} px wide on a {screen_width} px screen")
        if scroll_width > inner_width:
            problems.append(f"scrolls horizontally: {scroll_width} px of content in {inner_width} px")
        for css in controls:
            elements = self.driver.find_elements(By.CSS_SELECTOR, css)
            if not elements:
                problems.append(f"{css} is missing")
                continue
            for element in elements:
                box = self.driver.execute_script(
                    "const r = arguments[0].getBoundingClientRect();"
                    "return {left: r.left + scrollX, right: r.right + scrollX, width: r.width, height: r.height};",
                    element)
                if not element.is_displayed() or box["width"] == 0 or box["height"] == 0:
                    problems.append(f"{css} is not visible")
                elif box["left"] < 0 or box["right"] > min(inner_width, screen_width):
                    problems.append(f"{css} sticks out of the screen ({box['left']:.0f}..{box['right']:.0f} px)")
        return problems

    def screenshot(self, page: str) -> Path:
        """The whole page at the current viewport, as `<page>-<desktop|phone>.png` in the artifacts folder."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        metrics = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": max(size["width"], self.viewport.width),
                     "height": max(size["height"], self.viewport.height), "scale": 1},
        })
        path = ARTIFACTS / f"{safe_name(page)}-{self.viewport.name}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def color_scheme(self, scheme: str) -> None:
        """Emulates the user's `prefers-color-scheme` ("light" or "dark")."""
        self.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {
            "features": [{"name": "prefers-color-scheme", "value": scheme}]})
        self.wait(lambda driver: driver.execute_script(
            "return matchMedia(arguments[0]).matches", f"(prefers-color-scheme: {scheme})"),
            f"the page did not switch to the {scheme} color scheme")

    def check_page(self, page: str, controls: list[str], end: Viewport = DESKTOP) -> None:
        """Every page's checks. Nothing blocked or broken in the console; no serious or critical accessibility
        violation at desktop and phone width, nor in the dark color scheme the pages also style; on a phone, no
        horizontal scrolling and `controls` (CSS selectors) visible. Screenshots: `<page>-desktop.png`,
        `<page>-phone.png` and `<page>-dark-desktop.png`. Leaves the page as it was loaded (nothing reloaded or
        submitted), at `end`'s width, so that the test can go on using it."""
        console = self.severe_console_entries()  # first: nothing the checks do may hide or add entries
        assert not console, f"{page}: SEVERE console entries at {self.url}:\n" + "\n".join(console)
        problems: list[str] = []
        for viewport in (DESKTOP, PHONE):
            self.use(viewport)
            self.screenshot(page)
            problems += [f"{viewport.name}: {describe(violation)}" for violation in self.axe_violations()]
            if viewport is PHONE:
                problems += [f"phone: {problem}" for problem in self.phone_layout_problems(controls)]
        self.use(DESKTOP)
        self.color_scheme("dark")
        try:
            self.screenshot(page + "-dark")
            problems += [f"dark: {describe(violation)}" for violation in self.axe_violations()]
        finally:
            self.color_scheme("light")
        self.use(end)
        assert not problems, f"{page} ({self.url}):\n" + "\n".join(problems)
        console = self.severe_console_entries()
        assert not console, f"{page}: SEVERE console entries while checked:\n" + "\n".join(console)


def describe(violation: dict) -> str:
    targets = [" ".join(map(str, node.get("target", []))) for node in violation.get("nodes", [])]
    return f"axe {violation['impact']} {violation['id']}: {violation['help']} ({', '.join(targets)})"


def safe_name(page: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", page).strip("-") or "page"


def query_of(url: str) -> dict[str, str]:
    """The query parameters of `url` (the first value of each)."""
    return {key: values[0] for key, values in parse_qs(urlparse(url).query, keep_blank_values=True).items()}


class RedirectTarget:
    """An MCP client's loopback redirect URI (`http://127.0.0.1:<free port>/callback`), as a native client serves it:
    answers every GET with a small page and records the paths and queries it was sent. Stop it with `shutdown()`."""

    PAGE = (b'<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">'
            b'<title>Signed in</title></head><body><main><h1>You can close this window</h1></main></body></html>')

    def __init__(self) -> None:
        self.requests: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                owner.requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(owner.PAGE)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(owner.PAGE)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.uri = self.base_url + "/callback"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def shutdown(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


